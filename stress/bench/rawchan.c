/* rawchan.c - the raw baselines of `ipcproof bench` built on kernel queues (bench.h): the
 * channel rows' mechanisms as struct ipcp_channel_ops that the chan family drives like the
 * built-in protocols (one producer process, one consumer), and the handoff's slots + queues.
 *
 *   raw msg        raw msgsnd/msgrcv of the same bytes (messages above msgmax in msgmax-sized
 *                  pieces, as a hand-written program must send them): sysv-msg's baseline
 *   raw mq         raw mq_send/mq_receive (pieces of mq_msgsize, a queue of 10): mq-chan's
 *   plain cvq      a plain process-shared mutex + two condvars over the same slots, without
 *                  robustness (no EOWNERDEAD repair, no peer checks): condvar-queue's
 *   raw handoff    slots in a shared mapping, READY and OK queues carrying (slot, len), no
 *                  checksum, no validation: the mq handoff's
 *
 * The raw sides know the message size in advance (the bench sends one size per row) and check
 * nothing: they are the floor the protocols are measured against. Their waits are bounded by
 * mq_timed* and pthread_cond_timedwait deadlines, and msgsnd/msgrcv and mq_send/mq_receive
 * (blocking, as a plain program calls them) by the bench's alarms. */
#include <errno.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/handoff.h"

/* A limit from /proc, or dflt. */
static long proc_long(const char *path, long dflt)
{
    FILE *f = fopen(path, "re");
    long v = 0;
    int ok = f != NULL && fscanf(f, "%ld", &v) == 1 && v > 0;
    if (f != NULL) fclose(f);
    return ok ? v : dflt;
}

/* The absolute time timeout_ms from now on clock clk, for the timed waits. */
static struct timespec deadline_on(clockid_t clk, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Piece size of a message on a raw queue: the whole message, or the queue's limit. */
static size_t piece(size_t left, size_t limit)
{
    return left < limit ? left : limit;
}

/* ---- raw SysV message queue ------------------------------------------------------------- */

struct rawmsg {
    int id;
    size_t msgmax, size;
    long *buf; /* mtype, then msgmax bytes */
};

static int rawmsg_create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    struct rawmsg *q = calloc(1, sizeof(*q));
    if (q == NULL) return -ENOMEM;
    q->size = cfg->max_msg;
    q->msgmax = (size_t)proc_long("/proc/sys/kernel/msgmax", 8192);
    q->id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (q->id < 0) {
        int rc = -errno;
        free(q);
        return rc;
    }
    *ctx = q;
    return 0;
}

static int rawmsg_open(void *ctx, int role, uint32_t index, void **ep)
{
    (void)role;
    (void)index;
    struct rawmsg *q = ctx, *e = malloc(sizeof(*e));
    if (e == NULL) return -ENOMEM;
    *e = *q;
    e->buf = malloc(sizeof(long) + q->msgmax);
    if (e->buf == NULL) {
        free(e);
        return -ENOMEM;
    }
    *ep = e;
    return 0;
}

/* Blocking msgsnd/msgrcv, as a plain program makes them: the bench's watchdog (SIGALRM without
 * SA_RESTART in the consumer, the child's own alarm in the producer) bounds the wait. */
static int rawmsg_op(struct rawmsg *e, int snd, size_t n)
{
    ssize_t r = snd ? msgsnd(e->id, e->buf, n, 0) : msgrcv(e->id, e->buf, e->msgmax, 0, 0);
    return r < 0 ? -errno : (int)r;
}

static int rawmsg_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    (void)timeout_ms;
    struct rawmsg *e = ep;
    e->buf[0] = 1;
    size_t done = 0;
    do {
        size_t n = piece(len - done, e->msgmax);
        memcpy(e->buf + 1, (const uint8_t *)msg + done, n);
        int rc = rawmsg_op(e, 1, n);
        if (rc < 0) return rc;
        done += n;
    } while (done < len);
    return 0;
}

static ssize_t rawmsg_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    (void)timeout_ms;
    struct rawmsg *e = ep;
    size_t done = 0;
    do {
        int n = rawmsg_op(e, 0, 0);
        if (n < 0) return n;
        if (done + (size_t)n > cap) return -EMSGSIZE;
        memcpy((uint8_t *)buf + done, e->buf + 1, (size_t)n);
        done += (size_t)n;
    } while (done < e->size);
    return (ssize_t)done;
}

static void rawmsg_close(void *ep)
{
    struct rawmsg *e = ep;
    free(e->buf);
    free(e);
}

static void rawmsg_destroy(void *ctx)
{
    struct rawmsg *q = ctx;
    msgctl(q->id, IPC_RMID, NULL);
    free(q);
}

const struct ipcp_channel_ops bench_raw_msg_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "raw msgsnd/msgrcv",
    .create = rawmsg_create,
    .open = rawmsg_open,
    .send = rawmsg_send,
    .recv = rawmsg_recv,
    .close = rawmsg_close,
    .destroy = rawmsg_destroy,
};

/* ---- raw POSIX message queue ------------------------------------------------------------ */

struct rawmq {
    mqd_t q;
    size_t msgsize, size;
    uint8_t *buf;
};

static int rawmq_create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    struct rawmq *m = calloc(1, sizeof(*m));
    if (m == NULL) return -ENOMEM;
    m->size = cfg->max_msg;
    long smax = proc_long("/proc/sys/fs/mqueue/msgsize_max", 8192);
    long nmax = proc_long("/proc/sys/fs/mqueue/msg_max", 10);
    m->msgsize = piece(cfg->max_msg ? cfg->max_msg : 1, (size_t)smax);
    char name[64];
    snprintf(name, sizeof(name), "/ipcp-bench-rawmq.%ld.%s", (long)getpid(), cfg->run_id);
    struct mq_attr a = {.mq_maxmsg = nmax < 10 ? nmax : 10, .mq_msgsize = (long)m->msgsize};
    m->q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
    if (m->q == (mqd_t)-1) {
        int rc = -errno;
        free(m);
        return rc;
    }
    mq_unlink(name); /* the descriptor, inherited over fork, is all the bench needs */
    *ctx = m;
    return 0;
}

static int rawmq_open(void *ctx, int role, uint32_t index, void **ep)
{
    (void)role;
    (void)index;
    struct rawmq *m = ctx, *e = malloc(sizeof(*e));
    if (e == NULL) return -ENOMEM;
    *e = *m;
    e->buf = malloc(m->msgsize);
    if (e->buf == NULL) {
        free(e);
        return -ENOMEM;
    }
    *ep = e;
    return 0;
}

static int rawmq_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct rawmq *e = ep;
    struct timespec dl = deadline_on(CLOCK_REALTIME, timeout_ms);
    size_t done = 0;
    do {
        size_t n = piece(len - done, e->msgsize);
        while (mq_timedsend(e->q, (const char *)msg + done, n, 0, &dl) < 0)
            if (errno != EINTR) return -errno;
        done += n;
    } while (done < len);
    return 0;
}

static ssize_t rawmq_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct rawmq *e = ep;
    struct timespec dl = deadline_on(CLOCK_REALTIME, timeout_ms);
    size_t done = 0;
    do {
        ssize_t n;
        while ((n = mq_timedreceive(e->q, (char *)e->buf, e->msgsize, NULL, &dl)) < 0)
            if (errno != EINTR) return -errno;
        if (done + (size_t)n > cap) return -EMSGSIZE;
        memcpy((uint8_t *)buf + done, e->buf, (size_t)n);
        done += (size_t)n;
    } while (done < e->size);
    return (ssize_t)done;
}

static void rawmq_close(void *ep)
{
    struct rawmq *e = ep;
    free(e->buf);
    free(e);
}

static void rawmq_destroy(void *ctx)
{
    struct rawmq *m = ctx;
    mq_close(m->q);
    free(m);
}

const struct ipcp_channel_ops bench_raw_mq_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "raw mq_send/mq_receive",
    .create = rawmq_create,
    .open = rawmq_open,
    .send = rawmq_send,
    .recv = rawmq_recv,
    .close = rawmq_close,
    .destroy = rawmq_destroy,
};

/* ---- plain mutex + condvar queue -------------------------------------------------------- */

struct plainq {
    pthread_mutex_t mu; /* process-shared, not robust */
    pthread_cond_t not_empty, not_full;
    uint32_t head, count, nslots;
    size_t slot;
    size_t len[64];
    uint8_t data[]; /* nslots * slot */
};

struct plainq_ctx {
    struct plainq *q;
    size_t bytes;
};

static int plainq_create(const struct ipcp_chan_cfg *cfg, void **ctx)
{
    size_t slot = cfg->max_msg ? cfg->max_msg : 1;
    size_t n = cfg->capacity / slot; /* as condvar-queue: max(2, capacity / max_msg) */
    if (n < 2) n = 2;
    if (n > 64) n = 64;
    struct plainq_ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    x->bytes = sizeof(struct plainq) + n * slot;
    void *m = mmap(NULL, x->bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        free(x);
        return -ENOMEM;
    }
    struct plainq *q = m;
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&q->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->not_empty, &ca);
    pthread_cond_init(&q->not_full, &ca);
    pthread_condattr_destroy(&ca);
    q->nslots = (uint32_t)n;
    q->slot = slot;
    x->q = q;
    *ctx = x;
    return 0;
}

static int plainq_open(void *ctx, int role, uint32_t index, void **ep)
{
    (void)role;
    (void)index;
    *ep = ((struct plainq_ctx *)ctx)->q;
    return 0;
}

static int plainq_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct plainq *q = ep;
    if (len > q->slot) return -EMSGSIZE;
    struct timespec dl = deadline_on(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    while (q->count == q->nslots && rc == 0)
        rc = pthread_cond_timedwait(&q->not_full, &q->mu, &dl);
    if (rc == 0) {
        uint32_t i = (q->head + q->count) % q->nslots;
        memcpy(q->data + (size_t)i * q->slot, msg, len);
        q->len[i] = len;
        q->count++;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->mu);
    return -rc;
}

static ssize_t plainq_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct plainq *q = ep;
    struct timespec dl = deadline_on(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    while (q->count == 0 && rc == 0)
        rc = pthread_cond_timedwait(&q->not_empty, &q->mu, &dl);
    ssize_t n = -rc;
    if (rc == 0) {
        size_t len = q->len[q->head];
        n = len > cap ? -EMSGSIZE : (ssize_t)len;
        if (n >= 0) {
            memcpy(buf, q->data + (size_t)q->head * q->slot, len);
            q->head = (q->head + 1) % q->nslots;
            q->count--;
            pthread_cond_signal(&q->not_full);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return n;
}

static void plainq_close(void *ep)
{
    (void)ep;
}

static void plainq_destroy(void *ctx)
{
    struct plainq_ctx *x = ctx;
    munmap(x->q, x->bytes);
    free(x);
}

const struct ipcp_channel_ops bench_plain_cvq_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "plain mutex+condvar queue",
    .create = plainq_create,
    .open = plainq_open,
    .send = plainq_send,
    .recv = plainq_recv,
    .close = plainq_close,
    .destroy = plainq_destroy,
};

/* ---- the handoff's mechanism without the protocol ------------------------------------------ */

/* Slots in a shared mapping, a READY and an OK queue of 32-byte messages carrying (slot, len). */
struct rawho {
    uint8_t *slots;
    size_t slot_size, map_len;
    uint32_t nslots;
    mqd_t ready, ok;
};

struct rawho_msg {
    uint32_t slot, len;
    uint64_t pad[3];
};

static void rawho_close(struct rawho *h)
{
    if (h->ready != (mqd_t)-1) mq_close(h->ready);
    if (h->ok != (mqd_t)-1) mq_close(h->ok);
    if (h->slots) munmap(h->slots, h->map_len);
    h->ready = h->ok = (mqd_t)-1;
    h->slots = NULL;
}

static int rawho_open(struct rawho *h, uint32_t nslots, size_t slot_size, char *err, size_t cap)
{
    memset(h, 0, sizeof(*h));
    h->ready = h->ok = (mqd_t)-1;
    h->nslots = nslots;
    h->slot_size = (slot_size + IPCP_CACHELINE - 1) & ~(size_t)(IPCP_CACHELINE - 1);
    h->map_len = h->slot_size * nslots;
    h->slots = mmap(NULL, h->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (h->slots == MAP_FAILED) {
        h->slots = NULL;
        return bench_fail(err, cap, "mmap: %s", strerror(errno));
    }
    h->ready = bench_mq_open(nslots, sizeof(struct rawho_msg));
    h->ok = bench_mq_open(nslots, sizeof(struct rawho_msg));
    if (h->ready == (mqd_t)-1 || h->ok == (mqd_t)-1) {
        int e = errno;
        rawho_close(h);
        return bench_fail(err, cap, "mq_open: %s", strerror(e));
    }
    return 0;
}

static int mq_put(mqd_t q, uint32_t slot, uint32_t len)
{
    struct rawho_msg m = {.slot = slot, .len = len};
    for (;;) {
        if (mq_send(q, (const char *)&m, sizeof(m), 0) == 0) return 0;
        if (errno != EINTR || bench_expired) return -1;
    }
}

static int mq_get(mqd_t q, struct rawho_msg *m)
{
    for (;;) {
        ssize_t n = mq_receive(q, (char *)m, sizeof(*m), NULL);
        if (n == (ssize_t)sizeof(*m)) return m->slot < HO_SLOTS ? 0 : -1;
        if (n >= 0 || errno != EINTR || bench_expired) return -1;
    }
}

/* Sender: waits for the slot's OK once all slots are in flight, copies, sends READY. */
static int rawho_send(struct rawho *h, uint64_t i, const void *src, size_t len)
{
    uint32_t slot = (uint32_t)(i % h->nslots);
    struct rawho_msg m;
    if (i >= h->nslots && mq_get(h->ok, &m) < 0) return -1;
    memcpy(h->slots + (size_t)slot * h->slot_size, src, len);
    return mq_put(h->ready, slot, (uint32_t)len);
}

/* Receiver: READY, copy out, OK (round trips send none: the reply is the flow control).
 * Returns the length. */
static ssize_t rawho_recv(struct rawho *h, void *dst, size_t cap, int send_ok)
{
    struct rawho_msg m;
    if (mq_get(h->ready, &m) < 0 || m.len > cap) return -1;
    memcpy(dst, h->slots + (size_t)m.slot * h->slot_size, m.len);
    if (send_ok && mq_put(h->ok, m.slot, 0) < 0) return -1;
    return (ssize_t)m.len;
}

struct rawho_state {
    struct rawho a, b; /* throughput: a; round trips: a parent -> child, b back */
    uint8_t *buf;
};

static int rawho_setup(struct bench_side *s)
{
    struct rawho_state *t = s->st;
    t->a.ready = t->a.ok = t->b.ready = t->b.ok = (mqd_t)-1;
    int rtt = s->c->kind == K_RTT;
    size_t size = rtt ? B_SMALL : s->c->size;
    if (rawho_open(&t->a, rtt ? 2 : HO_SLOTS, size, s->err, s->cap) < 0) return -1;
    if (rtt && rawho_open(&t->b, 2, B_SMALL, s->err, s->cap) < 0) return -1;
    t->buf = bench_alloc(size);
    if (t->buf == NULL) return bench_fail(s->err, s->cap, "out of memory");
    memset(t->buf, 0x5a, size);
    return 0;
}

static void rawho_teardown(struct bench_side *s)
{
    struct rawho_state *t = s->st;
    rawho_close(&t->a);
    rawho_close(&t->b);
    free(t->buf);
}

/* Sends n messages, then collects the OKs still in flight. */
static int rawho_sender(struct bench_side *s)
{
    struct rawho_state *t = s->st;
    if (bench_child_ready(s) < 0) return 12;
    for (long i = 0; i < s->n; i++)
        if (rawho_send(&t->a, (uint64_t)i, t->buf, s->c->size) < 0) return 14;
    struct rawho_msg m;
    for (long i = 0; i < (s->n < HO_SLOTS ? s->n : (long)HO_SLOTS); i++)
        if (mq_get(t->a.ok, &m) < 0) return 16;
    return 0;
}

static int rawho_recv_step(struct bench_side *s, long i)
{
    struct rawho_state *t = s->st;
    if (rawho_recv(&t->a, t->buf, s->c->size, 1) == (ssize_t)s->c->size) return 0;
    return bench_fail(s->err, s->cap, "receive of message %ld: failed", i);
}

/* Echoes until a 1-byte message; one message in flight each way: the round trip is the flow
 * control. */
static int rawho_echo(struct bench_side *s)
{
    struct rawho_state *t = s->st;
    uint8_t buf[B_SMALL];
    if (bench_child_ready(s) < 0) return 12;
    for (uint64_t i = 0;; i++) {
        ssize_t n = rawho_recv(&t->a, buf, sizeof(buf), 0);
        if (n == 1) return 0;
        if (n != (ssize_t)sizeof(buf)) return 13;
        uint32_t slot = (uint32_t)(i % t->b.nslots);
        memcpy(t->b.slots + (size_t)slot * t->b.slot_size, buf, sizeof(buf));
        if (mq_put(t->b.ready, slot, sizeof(buf)) < 0) return 15;
    }
}

static int rawho_rtt_step(struct bench_side *s, long i)
{
    struct rawho_state *t = s->st;
    uint32_t slot = (uint32_t)((uint64_t)i % t->a.nslots);
    memcpy(t->a.slots + (size_t)slot * t->a.slot_size, t->buf, B_SMALL);
    struct rawho_msg m = {0};
    if (mq_put(t->a.ready, slot, B_SMALL) < 0 || mq_get(t->b.ready, &m) < 0 || m.len != B_SMALL)
        return bench_fail(s->err, s->cap, "round trip %ld: failed", i);
    memcpy(t->buf, t->b.slots + (size_t)m.slot * t->b.slot_size, B_SMALL);
    return 0;
}

/* A 1-byte message ends the echo process. */
static int rawho_rtt_stop(struct bench_side *s)
{
    return mq_put(((struct rawho_state *)s->st)->a.ready, 0, 1);
}

const struct bench_pair bench_rawho_tput = {
    .state_size = sizeof(struct rawho_state),
    .setup = rawho_setup,
    .child = rawho_sender,
    .step = rawho_recv_step,
    .teardown = rawho_teardown,
};

const struct bench_pair bench_rawho_rtt = {
    .state_size = sizeof(struct rawho_state),
    .setup = rawho_setup,
    .child = rawho_echo,
    .step = rawho_rtt_step,
    .stop = rawho_rtt_stop,
    .teardown = rawho_teardown,
};

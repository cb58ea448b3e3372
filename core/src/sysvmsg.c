/* sysvmsg.c - messages over System V message queues (see sysvmsg.h): the chunk header codec and
 * the per-producer reassembler (pure), and a thin layer of non-blocking msgsnd/msgrcv calls
 * with deadlines over them. */
#include <errno.h>
#include <sched.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "eptab.h"
#include "os.h"
#include "ipcproof/err.h"
#include "ipcproof/registry.h"
#include "ipcproof/sysvmsg.h"

/* ==== chunk header ========================================================================== */

void ipcp_sysvmsg_hdr_encode(const struct ipcp_sysvmsg_hdr *h, uint8_t out[IPCP_SYSVMSG_HDR_SIZE])
{
    uint32_t magic = IPCP_SYSVMSG_MAGIC;
    memcpy(out, &magic, 4);
    memcpy(out + 4, &h->producer, 4);
    memcpy(out + 8, &h->seq, 8);
    memcpy(out + 16, &h->total, 4);
    memcpy(out + 20, &h->index, 4);
    memcpy(out + 24, &h->count, 4);
    memcpy(out + 28, &h->len, 4);
}

int ipcp_sysvmsg_hdr_decode(const void *buf, size_t n, struct ipcp_sysvmsg_hdr *h)
{
    if (n < IPCP_SYSVMSG_HDR_SIZE) return -EBADMSG;
    const uint8_t *p = buf;
    uint32_t magic;
    memcpy(&magic, p, 4);
    if (magic != IPCP_SYSVMSG_MAGIC) return -EBADMSG;
    memcpy(&h->producer, p + 4, 4);
    memcpy(&h->seq, p + 8, 8);
    memcpy(&h->total, p + 16, 4);
    memcpy(&h->index, p + 20, 4);
    memcpy(&h->count, p + 24, 4);
    memcpy(&h->len, p + 28, 4);
    return 0;
}

uint32_t ipcp_sysvmsg_chunks(size_t total, size_t room)
{
    if (room == 0) return 0;
    if (total == 0) return 1;
    size_t c = (total - 1) / room + 1;
    return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

/* ==== reassembly ============================================================================ */

int ipcp_sysvmsg_rx_init(struct ipcp_sysvmsg_rx *rx, uint32_t producers, uint32_t consumers,
                         uint32_t consumer, size_t room, size_t max_msg)
{
    memset(rx, 0, sizeof(*rx));
    if (producers == 0 || producers > IPCP_SYSVMSG_MAX_EP || consumers == 0 ||
        consumers > IPCP_SYSVMSG_MAX_EP || consumer >= consumers || room == 0 || max_msg == 0 ||
        max_msg > IPCP_SYSVMSG_MAX_MSG)
        return -EINVAL;
    rx->producers = producers;
    rx->consumers = consumers;
    rx->consumer = consumer;
    rx->room = room;
    rx->max_msg = max_msg;
    rx->nslots = consumer < producers ? (producers - consumer - 1) / consumers + 1 : 0;
    rx->slot = calloc(rx->nslots ? rx->nslots : 1, sizeof(*rx->slot));
    if (rx->slot == NULL) return -ENOMEM;
    for (uint32_t i = 0; i < rx->nslots; i++)
        ipcp_reasm_init(&rx->slot[i].r, max_msg); /* max_msg checked above: cannot fail */
    return 0;
}

void ipcp_sysvmsg_rx_fini(struct ipcp_sysvmsg_rx *rx)
{
    for (uint32_t i = 0; rx->slot != NULL && i < rx->nslots; i++)
        ipcp_reasm_fini(&rx->slot[i].r);
    free(rx->slot);
    memset(rx, 0, sizeof(*rx));
}

static void slot_drop(struct ipcp_sysvmsg_slot *s)
{
    ipcp_reasm_reset(&s->r);
    s->next_index = 0;
}

int ipcp_sysvmsg_rx_feed(struct ipcp_sysvmsg_rx *rx, long mtype, const void *msg, size_t n)
{
    rx->done = 0;
    struct ipcp_sysvmsg_hdr h;
    if (ipcp_sysvmsg_hdr_decode(msg, n, &h) < 0) return -EBADMSG;
    /* the type is the kernel's routing, the header the sender's word: both must agree */
    if (h.producer >= rx->producers || mtype != (long)h.producer + 1 ||
        h.producer % rx->consumers != rx->consumer || h.len != n - IPCP_SYSVMSG_HDR_SIZE)
        return -EBADMSG;
    struct ipcp_sysvmsg_slot *s = &rx->slot[h.producer / rx->consumers];
    if (h.total > rx->max_msg) {
        slot_drop(s);
        return -IPCP_E_TOOBIG;
    }
    uint32_t count = ipcp_sysvmsg_chunks(h.total, rx->room);
    size_t want = h.index + 1 < count ? rx->room : h.total - (size_t)(count - 1) * rx->room;
    if (h.count != count || h.index >= count || h.len != want) {
        slot_drop(s);
        return -IPCP_E_FRAGMENT;
    }
    if (h.index == 0) {
        /* a new message: the producer's next seq, the one it gave up half-way again, or a
         * later one (a message of it was refused); never an earlier one (a repeat) */
        if (h.seq < s->expect_seq) {
            slot_drop(s);
            return -IPCP_E_SEQUENCE;
        }
    } else if (h.index != s->next_index) {
        slot_drop(s);
        return -IPCP_E_FRAGMENT;
    }
    unsigned flags =
        (h.index == 0 ? IPCP_CHUNK_FIRST : 0u) | (h.index + 1 == count ? IPCP_CHUNK_LAST : 0u);
    int rc = ipcp_reasm_feed(&s->r, flags, h.seq, h.total,
                             (const uint8_t *)msg + IPCP_SYSVMSG_HDR_SIZE, h.len);
    if (rc < 0) {
        slot_drop(s);
        return rc;
    }
    if (rc == 0) {
        s->next_index = h.index + 1;
        return 0;
    }
    s->next_index = 0;
    s->expect_seq = h.seq + 1;
    rx->done = 1;
    rx->last = h.producer / rx->consumers;
    return 1;
}

const void *ipcp_sysvmsg_rx_message(const struct ipcp_sysvmsg_rx *rx, size_t *len,
                                    uint32_t *producer, uint64_t *seq)
{
    if (!rx->done) {
        if (len) *len = 0;
        return NULL;
    }
    if (producer) *producer = rx->last * rx->consumers + rx->consumer;
    return ipcp_reasm_message(&rx->slot[rx->last].r, len, seq);
}

uint64_t ipcp_sysvmsg_rx_abandoned(const struct ipcp_sysvmsg_rx *rx)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < rx->nslots; i++)
        n += rx->slot[i].r.abandoned;
    return n;
}

int ipcp_sysvmsg_rx_valid(const struct ipcp_sysvmsg_rx *rx)
{
    if (rx->consumers == 0 || rx->consumer >= rx->consumers || rx->room == 0) return 0;
    if (rx->done && (rx->last >= rx->nslots || !rx->slot[rx->last].r.done)) return 0;
    for (uint32_t i = 0; i < rx->nslots; i++) {
        const struct ipcp_sysvmsg_slot *s = &rx->slot[i];
        if (!ipcp_reasm_valid(&s->r)) return 0;
        if (s->r.active != (s->next_index != 0)) return 0;
        if (s->r.active && s->next_index >= ipcp_sysvmsg_chunks(s->r.total, rx->room)) return 0;
        if (s->r.active && s->r.have != (size_t)s->next_index * rx->room) return 0;
    }
    return 1;
}

/* ==== over the queues ======================================================================= */

#define SPIN_YIELDS  64       /* a waiter first yields this often: the peer is usually busy */
#define PAUSE_MIN_NS 20000L   /* then its first pause */
#define PAUSE_MAX_NS 1000000L /* longest pause */
#define PEER_EVERY   20       /* look at the peers every this many ms of waiting */

struct ipcp_sysvmsg {
    int ids[IPCP_SYSVMSG_MAX_EP]; /* per consumer; -1 none */
    uint32_t producers, consumers;
    size_t max_msg;
    size_t msgcap; /* bytes below the type of one queue message */
    size_t room;
    struct ipcp__eptab tab; /* who opened which endpoint, shared by the forked endpoints */
    pid_t creator;
};

struct ipcp_sysvmsg_ep {
    struct ipcp_sysvmsg *q;
    int role;
    uint32_t index;
    int id;       /* the queue this endpoint sends to or receives from */
    uint64_t seq; /* producer: messages sent */
    int pending;  /* consumer: rx holds a message refused for a small buffer */
    long *mbuf;   /* mtype then msgcap bytes */
    struct ipcp_sysvmsg_rx rx;
};

/* a value that makes no sense: the kernel's default */
static long read_limit(const char *path, long dflt)
{
    uint64_t v = ipcp__proc_u64(path, (uint64_t)dflt);
    return v > LONG_MAX ? LONG_MAX : (long)v;
}

void ipcp_sysvmsg_limits(long *msgmax, long *msgmnb, long *msgmni)
{
    if (msgmax) *msgmax = read_limit("/proc/sys/kernel/msgmax", 8192);
    if (msgmnb) *msgmnb = read_limit("/proc/sys/kernel/msgmnb", 16384);
    if (msgmni) *msgmni = read_limit("/proc/sys/kernel/msgmni", 32000);
}

static void unregister(int id)
{
    char name[16];
    snprintf(name, sizeof(name), "%d", id);
    (void)ipcp_registry_remove("sysv-msg", name);
}

void ipcp_sysvmsg_destroy(struct ipcp_sysvmsg *q)
{
    if (q == NULL) return;
    for (uint32_t j = 0; j < q->consumers; j++) {
        if (q->ids[j] < 0 || getpid() != q->creator) continue;
        msgctl(q->ids[j], IPC_RMID, NULL);
        unregister(q->ids[j]);
    }
    ipcp__eptab_destroy(&q->tab);
    free(q);
}

/* msgget + registry + msg_qbytes; the id or a negative code. */
static int make_queue(key_t key, unsigned long qbytes, unsigned long *got)
{
    int id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    if (id < 0) return errno == ENOSPC ? -IPCP_E_MSGMNI : -errno;
    char name[16];
    snprintf(name, sizeof(name), "%d", id);
    (void)ipcp_registry_add("sysv-msg", name); /* best effort */
    struct msqid_ds ds;
    int rc = msgctl(id, IPC_STAT, &ds) < 0 ? -errno : 0;
    if (rc == 0 && qbytes != 0 && qbytes != ds.msg_qbytes) {
        ds.msg_qbytes = qbytes;
        if (msgctl(id, IPC_SET, &ds) < 0) rc = errno == EPERM ? -IPCP_E_MSGMNB : -errno;
    }
    if (rc < 0) {
        msgctl(id, IPC_RMID, NULL);
        unregister(id);
        return rc;
    }
    *got = ds.msg_qbytes;
    return id;
}

int ipcp_sysvmsg_create(const struct ipcp_sysvmsg_cfg *cfg, struct ipcp_sysvmsg **out)
{
    *out = NULL;
    if (cfg == NULL || cfg->producers == 0 || cfg->producers > IPCP_SYSVMSG_MAX_EP ||
        cfg->consumers == 0 || cfg->consumers > IPCP_SYSVMSG_MAX_EP || cfg->max_msg == 0 ||
        cfg->max_msg > IPCP_SYSVMSG_MAX_MSG)
        return -EINVAL;
    long msgmax, msgmnb;
    ipcp_sysvmsg_limits(&msgmax, &msgmnb, NULL);
    if (cfg->qbytes > (unsigned long)msgmnb) return -IPCP_E_MSGMNB; /* unless privileged */
    struct ipcp_sysvmsg *q = calloc(1, sizeof(*q));
    if (q == NULL) return -ENOMEM;
    for (uint32_t j = 0; j < IPCP_SYSVMSG_MAX_EP; j++)
        q->ids[j] = -1;
    q->producers = cfg->producers;
    q->consumers = cfg->consumers;
    q->max_msg = cfg->max_msg;
    q->creator = getpid();
    int rc = ipcp__eptab_create(&q->tab, cfg->producers, cfg->consumers);
    if (rc < 0) goto fail;
    unsigned long qb = ULONG_MAX;
    for (uint32_t j = 0; j < cfg->consumers; j++) {
        unsigned long got = 0;
        key_t key = cfg->key == IPC_PRIVATE ? IPC_PRIVATE : (key_t)(cfg->key + (key_t)j);
        rc = make_queue(key, cfg->qbytes, &got);
        if (rc < 0) goto fail;
        q->ids[j] = rc;
        if (got < qb) qb = got;
    }
    /* every chunk must fit in an empty queue, and in msgmax */
    q->msgcap = (size_t)(qb < (unsigned long)msgmax ? qb : (unsigned long)msgmax);
    if (q->msgcap <= IPCP_SYSVMSG_HDR_SIZE) {
        rc = -EMSGSIZE;
        goto fail;
    }
    q->room = q->msgcap - IPCP_SYSVMSG_HDR_SIZE;
    *out = q;
    return 0;
fail:
    ipcp_sysvmsg_destroy(q);
    return rc;
}

int ipcp_sysvmsg_id(const struct ipcp_sysvmsg *q, uint32_t consumer)
{
    return consumer < q->consumers ? q->ids[consumer] : -EINVAL;
}

size_t ipcp_sysvmsg_room(const struct ipcp_sysvmsg *q)
{
    return q->room;
}

int ipcp_sysvmsg_open(struct ipcp_sysvmsg *q, int role, uint32_t index,
                      struct ipcp_sysvmsg_ep **out)
{
    *out = NULL;
    int prod = role == IPCP_SYSVMSG_PRODUCER;
    if ((!prod && role != IPCP_SYSVMSG_CONSUMER) || index >= (prod ? q->producers : q->consumers))
        return -EINVAL;
    struct ipcp_sysvmsg_ep *ep = calloc(1, sizeof(*ep));
    if (ep == NULL) return -ENOMEM;
    ep->mbuf = malloc(sizeof(long) + q->msgcap);
    if (ep->mbuf == NULL || (!prod && ipcp_sysvmsg_rx_init(&ep->rx, q->producers, q->consumers,
                                                           index, q->room, q->max_msg) < 0)) {
        free(ep->mbuf);
        free(ep);
        return -ENOMEM;
    }
    int rc = ipcp__eptab_claim(&q->tab, prod ? IPCP__EPTAB_PRODUCER : IPCP__EPTAB_CONSUMER, index);
    if (rc < 0) {
        if (!prod) ipcp_sysvmsg_rx_fini(&ep->rx);
        free(ep->mbuf);
        free(ep);
        return rc;
    }
    ep->q = q;
    ep->role = role;
    ep->index = index;
    ep->id = q->ids[prod ? index % q->consumers : index];
    *out = ep;
    return 0;
}

void ipcp_sysvmsg_close(struct ipcp_sysvmsg_ep *ep)
{
    if (ep == NULL) return;
    int prod = ep->role == IPCP_SYSVMSG_PRODUCER;
    /* what this endpoint sent happens before a peer sees it closed */
    ipcp__eptab_close(&ep->q->tab, prod ? IPCP__EPTAB_PRODUCER : IPCP__EPTAB_CONSUMER, ep->index);
    if (!prod) ipcp_sysvmsg_rx_fini(&ep->rx);
    free(ep->mbuf);
    free(ep);
}

/* The queue went away under us (msgsnd/msgrcv said EINVAL or EIDRM): -EIDRM; else -e. */
static int queue_error(int id, int e)
{
    if (e == EIDRM) return -EIDRM;
    struct msqid_ds ds;
    if (e == EINVAL && msgctl(id, IPC_STAT, &ds) < 0 && (errno == EINVAL || errno == EIDRM))
        return -EIDRM;
    return -e;
}

struct waiter {
    struct ipcp_deadline dl;
    unsigned spins;
    long pause_ns;
    int64_t next_peer_ns;
};

/* Progress was made: the next wait starts with yields and short pauses again. Without this a
 * message of many chunks through a small queue (msgmnb 16 KiB holds two) paid the longest pause
 * for every chunk once it had waited a few times: 1 MiB ran at 1 % of raw msgsnd/msgrcv. */
static void waiter_progress(struct waiter *w)
{
    w->spins = 0;
    w->pause_ns = PAUSE_MIN_NS;
}

static void waiter_init(struct waiter *w, int timeout_ms)
{
    ipcp__deadline_init(&w->dl, timeout_ms);
    waiter_progress(w);
    w->next_peer_ns = 0;
}

/* Nothing could be done: 1 when it is time to look at the peers, after a yield or a pause;
 * -ETIMEDOUT once the deadline passed; 0 otherwise. */
static int waiter_pause(struct waiter *w)
{
    int left = ipcp__deadline_left_ms(&w->dl);
    if (left == 0) return -ETIMEDOUT;
    if (w->spins < SPIN_YIELDS) {
        w->spins++;
        sched_yield();
        return 0;
    }
    long ns = w->pause_ns;
    if (left > 0 && (int64_t)left * 1000000 < ns) ns = (long)left * 1000000L;
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL); /* EINTR: look again at once */
    if (w->pause_ns < PAUSE_MAX_NS) w->pause_ns *= 2;
    int64_t now = ipcp__now_ns();
    if (now < w->next_peer_ns) return 0;
    w->next_peer_ns = now + (int64_t)PEER_EVERY * 1000000;
    return 1;
}

/* Sends one chunk: 0 or a negative code. */
static int send_chunk(struct ipcp_sysvmsg_ep *ep, size_t n, struct waiter *w)
{
    struct ipcp_sysvmsg *q = ep->q;
    for (;;) {
        if (msgsnd(ep->id, ep->mbuf, n, IPC_NOWAIT) == 0) {
            waiter_progress(w);
            return 0;
        }
        int e = errno;
        if (e == EINTR) continue;
        if (e != EAGAIN) return queue_error(ep->id, e);
        int rc = waiter_pause(w);
        if (rc < 0) return rc;
        if (rc == 1 &&
            (rc = ipcp__eptab_state(&q->tab, IPCP__EPTAB_CONSUMER, ep->index % q->consumers)) < 0)
            return rc;
    }
}

int ipcp_sysvmsg_send(struct ipcp_sysvmsg_ep *ep, const void *data, size_t len, int timeout_ms)
{
    if (ep->role != IPCP_SYSVMSG_PRODUCER) return -IPCP_E_STATE;
    struct ipcp_sysvmsg *q = ep->q;
    if (len > q->max_msg) return -EMSGSIZE;
    struct waiter w;
    waiter_init(&w, timeout_ms);
    struct ipcp_sysvmsg_hdr h = {.producer = ep->index,
                                 .seq = ep->seq,
                                 .total = (uint32_t)len,
                                 .count = ipcp_sysvmsg_chunks(len, q->room)};
    uint8_t *body = (uint8_t *)(ep->mbuf + 1);
    ep->mbuf[0] = (long)ep->index + 1;
    for (h.index = 0; h.index < h.count; h.index++) {
        size_t off = (size_t)h.index * q->room;
        h.len = (uint32_t)(len - off < q->room ? len - off : q->room);
        ipcp_sysvmsg_hdr_encode(&h, body);
        if (h.len > 0) memcpy(body + IPCP_SYSVMSG_HDR_SIZE, (const uint8_t *)data + off, h.len);
        /* a failure after chunk 0 leaves a partial message: our next one replaces it */
        int rc = send_chunk(ep, IPCP_SYSVMSG_HDR_SIZE + h.len, &w);
        if (rc < 0) return rc;
    }
    ep->seq++;
    return 0;
}

ssize_t ipcp_sysvmsg_recv(struct ipcp_sysvmsg_ep *ep, void *buf, size_t cap, int timeout_ms)
{
    if (ep->role != IPCP_SYSVMSG_CONSUMER) return -IPCP_E_STATE;
    struct waiter w;
    waiter_init(&w, timeout_ms);
    size_t len;
    const void *m;
    if (ep->pending) goto deliver;
    int gone = 0; /* looked at before the queue: nothing can arrive once it says so */
    for (;;) {
        /* MSG_NOERROR: a forged oversize message is cut (and then refused), not stuck */
        ssize_t n = msgrcv(ep->id, ep->mbuf, ep->q->msgcap, 0, IPC_NOWAIT | MSG_NOERROR);
        if (n >= 0) {
            /* the kernel copied the message into our buffer: it is read once, from there */
            int rc = ipcp_sysvmsg_rx_feed(&ep->rx, ep->mbuf[0], ep->mbuf + 1, (size_t)n);
            if (rc < 0) return rc;
            if (rc == 1) break;
            waiter_progress(&w); /* the rest of the message is on its way */
            continue;
        }
        int e = errno;
        if (e == EINTR) continue;
        if (e != ENOMSG) return queue_error(ep->id, e);
        if (gone < 0) return gone;
        int rc = waiter_pause(&w);
        if (rc < 0) return rc;
        /* a consumer waits while a producer of the channel may still send: the end of the
         * stream is the channel's, not this queue's */
        if (rc == 1) gone = ipcp__eptab_gone(&ep->q->tab, IPCP__EPTAB_PRODUCER);
    }
deliver:
    m = ipcp_sysvmsg_rx_message(&ep->rx, &len, NULL, NULL);
    if (len > cap) {
        ep->pending = 1;
        return -EMSGSIZE;
    }
    ep->pending = 0;
    if (len > 0) memcpy(buf, m, len);
    return (ssize_t)len;
}

/* raw.c - the raw baselines of `ipcproof bench` (bench.h): each does the same bytes as a row's
 * protocol without the protocol, or is the physical limit of a transfer.
 *
 *   plain fd transfers   blocking write/read on the same kind of fd (64 KiB packets on seqpacket)
 *   memcpy               one thread copying into a region the size of the ring
 *   minimal SPSC ring    the real limit of a queue between two processes
 *   spin ping-pong       a counter and 64 bytes each way, both sides spinning
 *   futex mutex, mq token   the lock rows' baselines
 *   handoff slots        shm slots + READY/OK queues without checksum or validation
 *
 * The channel baselines that run through the plugin ABI are in rawchan.c. */
#include <errno.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/xport.h"

/* ---- plain fd transfers ------------------------------------------------------------------- */

static int full_write(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR && !bench_expired) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int full_read(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR && !bench_expired) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int packet_send(int fd, const uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR && !bench_expired) continue;
        return r == (ssize_t)n ? 0 : -1;
    }
}

static int packet_recv(int fd, uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t r = recv(fd, p, n, MSG_TRUNC);
        if (r < 0 && errno == EINTR && !bench_expired) continue;
        return r == (ssize_t)n ? 0 : -1;
    }
}

void bench_ends_close(struct bench_ends *e)
{
    if (e->w >= 0 && e->w != e->r) close(e->w);
    if (e->r >= 0) close(e->r);
    e->r = e->w = -1;
}

/* Fresh fds of kind xk. duplex = 0: the parent reads what the child writes; 1: both ways. */
int bench_xopen(int xk, int duplex, struct bench_ends *par, struct bench_ends *chi)
{
    int fds[2], rc;
    par->r = par->w = chi->r = chi->w = -1;
    switch (xk) {
    case XK_PIPE:
        if ((rc = ipcp_xport_pipe(fds, 1u << 20)) < 0) return rc;
        par->r = fds[0];
        chi->w = fds[1];
        if (duplex) {
            if ((rc = ipcp_xport_pipe(fds, 1u << 20)) < 0) {
                bench_ends_close(par);
                bench_ends_close(chi);
                return rc;
            }
            chi->r = fds[0];
            par->w = fds[1];
        }
        return 0;
    case XK_UNIX:
    case XK_SEQPACKET:
        rc = ipcp_xport_unix_pair(xk == XK_UNIX ? SOCK_STREAM : SOCK_SEQPACKET, fds,
                                  xk == XK_UNIX ? 0 : 1 << 20);
        if (rc < 0) return rc;
        par->r = par->w = fds[0];
        chi->r = chi->w = fds[1];
        return 0;
    case XK_TCP: {
        uint16_t port = 0;
        int l = ipcp_xport_tcp_listen(&port);
        if (l < 0) return l;
        int c = ipcp_xport_tcp_connect(port, B_OP_MS);
        if (c < 0) {
            close(l);
            return c;
        }
        int a = ipcp_xport_accept(l, B_OP_MS);
        close(l);
        if (a < 0) {
            close(c);
            return a;
        }
        par->r = par->w = a;
        chi->r = chi->w = c;
        return 0;
    }
    default:
        return -EINVAL;
    }
}

/* Raw message of size bytes: one write/read on a stream, 64 KiB packets on seqpacket. */
int bench_raw_send(int xk, int fd, const uint8_t *buf, size_t size)
{
    if (xk != XK_SEQPACKET) return full_write(fd, buf, size);
    for (size_t off = 0; off < size; off += B_PIECE) {
        size_t n = size - off < B_PIECE ? size - off : B_PIECE;
        if (packet_send(fd, buf + off, n) < 0) return -1;
    }
    return 0;
}

int bench_raw_recv(int xk, int fd, uint8_t *buf, size_t size)
{
    if (xk != XK_SEQPACKET) return full_read(fd, buf, size);
    for (size_t off = 0; off < size; off += B_PIECE) {
        size_t n = size - off < B_PIECE ? size - off : B_PIECE;
        if (packet_recv(fd, buf + off, n) < 0) return -1;
    }
    return 0;
}

int bench_rawfd_setup(struct bench_side *s, int duplex)
{
    struct bench_fdstate *f = s->st;
    int rc = bench_xopen(s->c->xk, duplex, &f->par, &f->chi);
    if (rc < 0) {
        f->par.r = f->par.w = f->chi.r = f->chi.w = -1;
        return bench_fail(s->err, s->cap, "transport: %s", ipcp_strerror(rc));
    }
    f->buf = bench_alloc(duplex ? B_SMALL : s->c->size);
    if (f->buf == NULL) return bench_fail(s->err, s->cap, "out of memory");
    memset(f->buf, 0x5a, duplex ? B_SMALL : s->c->size);
    return 0;
}

static int rawfd_tput_setup(struct bench_side *s)
{
    return bench_rawfd_setup(s, 0);
}

static int rawfd_rtt_setup(struct bench_side *s)
{
    return bench_rawfd_setup(s, 1);
}

/* After the fork: the parent keeps its own ends only. */
int bench_rawfd_started(struct bench_side *s)
{
    bench_ends_close(&((struct bench_fdstate *)s->st)->chi);
    return 0;
}

void bench_rawfd_teardown(struct bench_side *s)
{
    struct bench_fdstate *f = s->st;
    if (f->ch) ipcp_fdchan_close(f->ch, 0);
    f->ch = NULL;
    bench_ends_close(&f->par);
    bench_ends_close(&f->chi);
    free(f->buf);
}

/* Sends n messages once the parent says go. */
static int rawfd_sender(struct bench_side *s)
{
    struct bench_fdstate *f = s->st;
    bench_ends_close(&f->par);
    if (bench_child_ready(s) < 0) return 12;
    for (long i = 0; i < s->n; i++)
        if (bench_raw_send(s->c->xk, f->chi.w, f->buf, s->c->size) < 0) return 15;
    return 0;
}

static int rawfd_recv_step(struct bench_side *s, long i)
{
    struct bench_fdstate *f = s->st;
    if (bench_raw_recv(s->c->xk, f->par.r, f->buf, s->c->size) == 0) return 0;
    return bench_fail(s->err, s->cap, "raw receive of message %ld failed", i);
}

/* Echoes 64-byte messages until the parent closes its end. */
static int rawfd_echo(struct bench_side *s)
{
    struct bench_fdstate *f = s->st;
    uint8_t buf[B_SMALL];
    bench_ends_close(&f->par);
    if (bench_child_ready(s) < 0) return 12;
    for (;;) {
        if (bench_raw_recv(s->c->xk, f->chi.r, buf, sizeof(buf)) < 0) return 0; /* EOF: done */
        if (bench_raw_send(s->c->xk, f->chi.w, buf, sizeof(buf)) < 0) return 16;
    }
}

static int rawfd_rtt_step(struct bench_side *s, long i)
{
    struct bench_fdstate *f = s->st;
    if (bench_raw_send(s->c->xk, f->par.w, f->buf, B_SMALL) == 0 &&
        bench_raw_recv(s->c->xk, f->par.r, f->buf, B_SMALL) == 0)
        return 0;
    return bench_fail(s->err, s->cap, "raw round trip %ld failed", i);
}

/* The echo process sees EOF and ends. */
int bench_rawfd_stop(struct bench_side *s)
{
    struct bench_fdstate *f = s->st;
    if (f->ch) ipcp_fdchan_close(f->ch, 0);
    f->ch = NULL;
    bench_ends_close(&f->par);
    return 0;
}

const struct bench_pair bench_rawfd_tput = {
    .state_size = sizeof(struct bench_fdstate),
    .setup = rawfd_tput_setup,
    .child = rawfd_sender,
    .started = bench_rawfd_started,
    .step = rawfd_recv_step,
    .teardown = bench_rawfd_teardown,
};

const struct bench_pair bench_rawfd_rtt = {
    .state_size = sizeof(struct bench_fdstate),
    .setup = rawfd_rtt_setup,
    .child = rawfd_echo,
    .started = bench_rawfd_started,
    .step = rawfd_rtt_step,
    .stop = bench_rawfd_stop,
    .teardown = bench_rawfd_teardown,
};

/* ---- memcpy: the physical limit of a shared-memory transfer -----------------------------------
 */

/* One thread copying the same bytes from a private buffer into a region the size of the ring,
 * at the offsets a ring would use (a message larger than the region in region-sized pieces). */
int bench_run_memcpy(const struct bench_case *c, int side, double v[2], char *err, size_t cap)
{
    (void)side;
    uint8_t *src = bench_alloc(c->size), *dst = bench_alloc(B_RING_CAP);
    if (src == NULL || dst == NULL) {
        free(src);
        free(dst);
        return bench_fail(err, cap, "out of memory");
    }
    memset(src, 0x5a, c->size);
    memset(dst, 0, B_RING_CAP);
    size_t off = 0;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < c->count; i++) {
        for (size_t done = 0; done < c->size;) {
            size_t n = c->size - done;
            if (n > B_RING_CAP - off) n = B_RING_CAP - off;
            memcpy(dst + off, src + done, n);
            off = (off + ((n + IPCP_CACHELINE - 1) & ~(size_t)(IPCP_CACHELINE - 1))) % B_RING_CAP;
            done += n;
        }
        bench_escape(dst);
    }
    int64_t dt = bench_now_ns() - t0;
    free(src);
    free(dst);
    if (dt <= 0) dt = 1;
    v[0] = (double)c->size * (double)c->count / ((double)dt / 1e9) / 1e6;
    v[1] = (double)c->count / ((double)dt / 1e9);
    return 0;
}

/* ---- the minimal SPSC ring ----------------------------------------------------------------- */

/* What any ring between two processes must do, and nothing more: the producer's and the
 * consumer's positions (free-running byte counts) each on its own cache line, a data area of
 * B_RING_CAP bytes, length-prefixed records copied in and out. A record is a 16-byte header (the
 * payload length in its first 8 bytes) and the payload padded to 16 bytes - the footprint of an
 * ipcp_ring record - and a record that crosses the end of the area is copied in two pieces (no
 * padding). A message above MR_CHUNK bytes travels as consecutive records of at most MR_CHUNK
 * payload bytes, the size of ipcp_ring's default chunk (a quarter of the ring less a header), so
 * producer and consumer overlap on a 1 MiB message as they do in the ring; the consumer copies
 * them one after the other into its buffer: like the raw fd baselines, it knows the message size.
 * No magic, sequence numbers, liveness checks or sleeping: a side that must wait spins
 * (spin_pause); each re-reads the other's
 * position only when the one it cached says wait. The one check left keeps the consumer's copy
 * inside its buffer. */
#define MR_HDR   16u
#define MR_CHUNK (B_RING_CAP / 4 - MR_HDR)

struct minring {
    _Alignas(64) _Atomic uint64_t tail; /* bytes published by the producer */
    _Alignas(64) _Atomic uint64_t head; /* bytes released by the consumer */
    _Alignas(64) uint8_t data[B_RING_CAP];
};

/* One side: its own position and its cached copy of the other's. */
struct mr_end {
    struct minring *m;
    uint64_t pos, peer;
};

static uint64_t mr_rec(uint64_t n)
{
    return MR_HDR + ((n + MR_HDR - 1) & ~(uint64_t)(MR_HDR - 1));
}

/* Refreshes e->peer from w until there is room for need bytes (room) or need bytes to read;
 * -1 when the watchdog fired. */
static int mr_wait(struct mr_end *e, _Atomic uint64_t *w, int room, uint64_t need)
{
    unsigned n = 0;
    for (;;) {
        /* Acquire: the records (or the free space) the peer published are visible. */
        e->peer = ipcp_load_acquire64(w);
        if (room ? B_RING_CAP - (e->pos - e->peer) >= need : e->peer - e->pos >= need) return 0;
        if (bench_spin_pause(&n) < 0) return -1;
    }
}

static void mr_copy_in(struct minring *m, uint64_t pos, const uint8_t *src, size_t n)
{
    size_t off = (size_t)(pos & (B_RING_CAP - 1)), first = B_RING_CAP - off;
    if (first >= n) {
        memcpy(m->data + off, src, n);
    } else {
        memcpy(m->data + off, src, first);
        memcpy(m->data, src + first, n - first);
    }
}

static void mr_copy_out(const struct minring *m, uint64_t pos, uint8_t *dst, size_t n)
{
    size_t off = (size_t)(pos & (B_RING_CAP - 1)), first = B_RING_CAP - off;
    if (first >= n) {
        memcpy(dst, m->data + off, n);
    } else {
        memcpy(dst, m->data + off, first);
        memcpy(dst + first, m->data, n - first);
    }
}

static int mr_send(struct mr_end *e, const uint8_t *p, size_t size)
{
    size_t done = 0;
    do {
        size_t n = size - done < MR_CHUNK ? size - done : MR_CHUNK;
        uint64_t rec = mr_rec(n);
        if (B_RING_CAP - (e->pos - e->peer) < rec && mr_wait(e, &e->m->head, 1, rec) < 0) return -1;
        uint64_t len = n; /* a header never wraps: positions and the area are 16-aligned */
        memcpy(e->m->data + (e->pos & (B_RING_CAP - 1)), &len, sizeof(len));
        mr_copy_in(e->m, e->pos + MR_HDR, p + done, n);
        e->pos += rec;
        /* Release: the record's bytes before the position that publishes them. */
        ipcp_store_release64(&e->m->tail, e->pos);
        done += n;
    } while (done < size);
    return 0;
}

static int mr_recv(struct mr_end *e, uint8_t *dst, size_t size)
{
    size_t done = 0;
    do {
        if (e->peer - e->pos < MR_HDR && mr_wait(e, &e->m->tail, 0, MR_HDR) < 0) return -1;
        uint64_t len;
        memcpy(&len, e->m->data + (e->pos & (B_RING_CAP - 1)), sizeof(len));
        if (len > size - done) return -1; /* keeps the copy inside dst */
        /* the producer publishes whole records: the payload is there with its header */
        mr_copy_out(e->m, e->pos + MR_HDR, dst + done, (size_t)len);
        e->pos += mr_rec(len);
        /* Release: our reads of the record before the producer may overwrite it. */
        ipcp_store_release64(&e->m->head, e->pos);
        done += (size_t)len;
    } while (done < size);
    return 0;
}

struct mrstate {
    struct minring *m;
    struct mr_end e;
    uint8_t *buf;
};

static int minring_setup(struct bench_side *s)
{
    struct mrstate *t = s->st;
    t->m = mmap(NULL, sizeof(*t->m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t->m == MAP_FAILED) {
        t->m = NULL;
        return bench_fail(s->err, s->cap, "mmap: %s", strerror(errno));
    }
    t->e.m = t->m;
    t->buf = bench_alloc(s->c->size);
    if (t->buf == NULL) return bench_fail(s->err, s->cap, "out of memory");
    memset(t->buf, 0x5a, s->c->size);
    return 0;
}

static int minring_producer(struct bench_side *s)
{
    struct mrstate *t = s->st;
    struct mr_end e = {.m = t->m};
    if (bench_child_ready(s) < 0) return 12;
    for (long i = 0; i < s->n; i++)
        if (mr_send(&e, t->buf, s->c->size) < 0) return 13;
    return 0;
}

static int minring_step(struct bench_side *s, long i)
{
    struct mrstate *t = s->st;
    if (mr_recv(&t->e, t->buf, s->c->size) == 0) return 0;
    return bench_fail(s->err, s->cap, "minimal ring: receive of message %ld failed", i);
}

static void minring_teardown(struct bench_side *s)
{
    struct mrstate *t = s->st;
    if (t->m) munmap(t->m, sizeof(*t->m));
    if (t->buf) bench_escape(t->buf);
    free(t->buf);
}

/* The same messages, capacity and processes as the ring rows. */
const struct bench_pair bench_minring_tput = {
    .state_size = sizeof(struct mrstate),
    .setup = minring_setup,
    .child = minring_producer,
    .step = minring_step,
    .teardown = minring_teardown,
};

/* ---- the raw spin ping-pong: a counter and 64 payload bytes each way ----------------------- */

struct spinpp {
    _Alignas(64) _Atomic uint64_t ping;
    _Alignas(64) uint8_t ping_data[B_SMALL];
    _Alignas(64) _Atomic uint64_t pong;
    _Alignas(64) uint8_t pong_data[B_SMALL];
};

#define SPIN_STOP UINT64_MAX /* ping value that ends the echo process */

/* Spins until *w is v (or SPIN_STOP); returns what it saw, 0 when the watchdog fired. */
static uint64_t spin_until(_Atomic uint64_t *w, uint64_t v)
{
    unsigned n = 0;
    for (;;) {
        /* Acquire: the payload the peer wrote before publishing v is visible once v is. */
        uint64_t x = ipcp_load_acquire64(w);
        if (x == v || x == SPIN_STOP) return x;
        if (bench_spin_pause(&n) < 0) return 0;
    }
}

struct spinstate {
    struct spinpp *s;
    uint8_t buf[B_SMALL];
};

static int spin_setup(struct bench_side *s)
{
    struct spinstate *t = s->st;
    t->s = mmap(NULL, sizeof(*t->s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t->s == MAP_FAILED) {
        t->s = NULL;
        return bench_fail(s->err, s->cap, "mmap: %s", strerror(errno));
    }
    memset(t->buf, 0x5a, sizeof(t->buf));
    return 0;
}

static int spin_echo(struct bench_side *s)
{
    struct spinpp *p = ((struct spinstate *)s->st)->s;
    uint8_t buf[B_SMALL];
    if (bench_child_ready(s) < 0) return 12;
    for (uint64_t i = 1;; i++) {
        uint64_t x = spin_until(&p->ping, i);
        if (x == SPIN_STOP) return 0;
        if (x != i) return 13;
        memcpy(buf, p->ping_data, sizeof(buf));
        memcpy(p->pong_data, buf, sizeof(buf));
        bench_escape(buf);
        /* Release: the reply's bytes are written before its counter. */
        ipcp_store_release64(&p->pong, i);
    }
}

static int spin_step(struct bench_side *s, long i)
{
    struct spinstate *t = s->st;
    uint64_t k = (uint64_t)i + 1;
    memcpy(t->s->ping_data, t->buf, sizeof(t->buf));
    /* Release: the request's bytes are written before its counter. */
    ipcp_store_release64(&t->s->ping, k);
    if (spin_until(&t->s->pong, k) != k)
        return bench_fail(s->err, s->cap, "spin round trip %ld timed out", i);
    memcpy(t->buf, t->s->pong_data, sizeof(t->buf));
    return 0;
}

static int spin_stop(struct bench_side *s)
{
    /* Release: orders nothing, just publishes the stop value. */
    ipcp_store_release64(&((struct spinstate *)s->st)->s->ping, SPIN_STOP);
    return 0;
}

static void spin_teardown(struct bench_side *s)
{
    struct spinstate *t = s->st;
    if (t->s) munmap(t->s, sizeof(*t->s));
}

const struct bench_pair bench_spin_rtt = {
    .state_size = sizeof(struct spinstate),
    .setup = spin_setup,
    .child = spin_echo,
    .step = spin_step,
    .stop = spin_stop,
    .teardown = spin_teardown,
};

/* ---- lock baselines: a raw futex mutex and a raw POSIX mq token ----------------------------- */

/* A plain futex mutex (0 free, 1 held, 2 held with waiters), shared between processes. */
static void futex_wait_word(_Atomic uint32_t *w, uint32_t val)
{
    struct timespec ts = {1, 0}; /* bounded: the caller rechecks the word */
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake_one(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int bench_rawfutex_lock(_Atomic uint32_t *w)
{
    uint32_t c = 0;
    /* Acquire on success (ipcp_cas32): the critical section starts after the owner's release. */
    if (ipcp_cas32(w, &c, 1)) return 0;
    for (;;) {
        if (bench_expired) return -ETIMEDOUT;
        if (c == 0) { /* free again: take it as "held with waiters", others may sleep */
            if (ipcp_cas32(w, &c, 2)) return 0;
            continue;
        }
        if (c == 1 && !ipcp_cas32(w, &c, 2)) continue; /* announce a waiter */
        futex_wait_word(w, 2);
        c = ipcp_load_relaxed32(w); /* only a hint: the next CAS decides */
    }
}

void bench_rawfutex_unlock(_Atomic uint32_t *w)
{
    uint32_t c = 1;
    /* Release (ipcp_cas32 / ipcp_store_release32): the critical section's writes before the
     * word says free. */
    if (ipcp_cas32(w, &c, 0)) return; /* nobody waits */
    ipcp_store_release32(w, 0);
    futex_wake_one(w);
}

static unsigned g_mq_seq;

/* A queue of maxmsg messages of msgsize bytes, unlinked at once (the descriptor stays valid; no
 * name can be left behind). */
mqd_t bench_mq_open(long maxmsg, long msgsize)
{
    char name[64];
    snprintf(name, sizeof(name), "/ipcp.bench.%ld.%u", (long)getpid(), ++g_mq_seq);
    struct mq_attr at = {.mq_maxmsg = maxmsg, .mq_msgsize = msgsize};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
    if (q != (mqd_t)-1) mq_unlink(name);
    return q;
}

/* A queue of one 8-byte token. */
mqd_t bench_mq_token_open(char *err, size_t cap)
{
    mqd_t q = bench_mq_open(1, 8);
    if (q == (mqd_t)-1) {
        bench_fail(err, cap, "mq_open: %s", strerror(errno));
        return q;
    }
    uint64_t tok = 1;
    if (mq_send(q, (const char *)&tok, sizeof(tok), 0) < 0) {
        bench_fail(err, cap, "mq_send: %s", strerror(errno));
        mq_close(q);
        return (mqd_t)-1;
    }
    return q;
}

int bench_mq_token_lock(mqd_t q)
{
    uint64_t tok;
    for (;;) {
        ssize_t n = mq_receive(q, (char *)&tok, sizeof(tok), NULL);
        if (n == (ssize_t)sizeof(tok)) return 0;
        if (n < 0 && errno == EINTR && !bench_expired) continue;
        return -1;
    }
}

int bench_mq_token_unlock(mqd_t q)
{
    uint64_t tok = 1;
    return mq_send(q, (const char *)&tok, sizeof(tok), 0) == 0 ? 0 : -1;
}

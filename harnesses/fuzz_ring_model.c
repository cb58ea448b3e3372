/* fuzz_ring_model.c - the SPSC ring (ring.h) over in-process memory, one producer and one
 * consumer handle, driven by an operation stream and compared step by step with a reference: a
 * plain queue of messages plus the ring's placement rule (records never wrap; a record that does
 * not fit before the end is preceded by a pad once the pad fits).
 *
 * Input: byte 0 configures: bits 0-1 capacity 128, 256, 1024, 4096; bits 2-3 max_msg
 * capacity - 16 (no chunking), 100, 3 x capacity + 5, 65536; bits 4-5 chunk size default, 16,
 * 40, capacity / 2; bit 6 the ending (the producer closes, or the consumer does); bit 7 allows
 * operations 5 and 6 (without it they act as 4: they cost a millisecond or a thread). Then
 * operations (op byte, then operands):
 *   0 send one record (length: 0, a u8, capacity - 16, max_msg + 1), timeout 0
 *   1 reserve (same lengths), then commit n (all of it, part, one more than reserved: -EINVAL,
 *     or nothing: the next reserve replaces it, a send in between gets -IPCP_E_STATE)
 *   2 recv with a buffer of the exact size, one byte short (-EMSGSIZE, nothing consumed) or
 *     max_msg, timeout 0
 *   3 peek, peek again (same message), release; or release/recv out of order (-IPCP_E_STATE)
 *   4 a message larger than the ring with timeout 0: -EAGAIN, nothing published
 *   5 a message larger than the ring with a 1 ms timeout and nobody consuming: it is abandoned
 *     after its first chunks (once per input); the consumer must drop its chunks, count it
 *     in ipcp_ring_abandoned() and never deliver a part of it
 *   6 a message larger than the ring sent while a consumer thread drains the ring (once per
 *     input): every message queued before it, then it, arrive whole and in order
 * Checked after every operation: the return code the reference predicts (exactly for whole
 * records; for abandoned chunks the set of results the contract allows), the bytes and lengths
 * received, next_len after -EMSGSIZE, the shared tail equal to the reference's, head <= tail
 * <= head + capacity, both aligned, ipcp_ring_valid() on both handles, ipcp_ring_abandoned().
 * At the end: after the producer closed, every message is still delivered, then -EPIPE (or
 * -IPCP_E_TRUNCATED after an abandoned message); after the consumer closed, sends fail -EPIPE.
 *
 * Time is virtual while only this thread runs (vtime.h): the 1 ms wait of operation 5 ends as
 * the real one does, without the millisecond. Operation 6 runs on the real clocks. The ring's
 * memory and the receive buffer are allocated once per geometry, each to its exact size (ASan
 * guards their ends), and the ring's memory is filled with the same bytes before every input. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/ring.h"
#include "vtime.h"

#define MAX_OPS     512
#define MAX_Q       1024
#define MAX_SLOW    1
#define MAX_THREAD  1
#define LONG_MS     10000
#define PATTERN_LEN (65536 + 4096)

static uint8_t pattern[PATTERN_LEN];

static const uint8_t *bytes_of(uint32_t id)
{
    return pattern + (id * 977u) % 4096u;
}

enum { ITEM_MSG, ITEM_PARTIAL };
struct item {
    int kind;
    uint32_t len; /* MSG: its length; PARTIAL: the abandoned message's total */
    uint32_t id;
};

struct model {
    uint32_t cap, mask;
    size_t max_msg;
    uint32_t t; /* the producer's tail as the reference places records */
    struct item q[MAX_Q];
    size_t qh, qn; /* queue head index and count */
    uint64_t abandoned;
    int reserved;
    uint32_t res_len;
    int peeked;
    uint32_t next_id;
};

struct ring_pair {
    struct ipcp_ring p, c;
    uint8_t *mem;
    size_t size;
};

static _Atomic uint32_t *tail_word(const struct ring_pair *rp)
{
    return (_Atomic uint32_t *)(void *)(rp->mem + IPCP_RING_OFF_TAIL);
}
static _Atomic uint32_t *head_word(const struct ring_pair *rp)
{
    return (_Atomic uint32_t *)(void *)(rp->mem + IPCP_RING_OFF_HEAD);
}

static uint32_t rec_size(uint32_t len)
{
    return IPCP_RING_REC_HDR + ((len + IPCP_RING_ALIGN - 1) & ~(IPCP_RING_ALIGN - 1));
}

/* The placement rule: 1 the record fits at the (possibly padded) tail, 0 it must wait. */
static int model_room(struct model *m, uint32_t head, uint32_t rsz)
{
    for (;;) {
        uint32_t o = m->t & m->mask, to_end = m->cap - o, free_ = m->cap - (m->t - head);
        if (rsz <= to_end) return rsz <= free_;
        if (to_end > free_) return 0;
        m->t += to_end; /* a pad up to the end, published at once */
    }
}

static void push(struct model *m, int kind, uint32_t len, uint32_t id)
{
    FZ_CHECK(m->qn < MAX_Q, "model queue full");
    m->q[(m->qh + m->qn) % MAX_Q] = (struct item){kind, len, id};
    m->qn++;
}

static struct item *front(struct model *m, size_t k)
{
    return k < m->qn ? &m->q[(m->qh + k) % MAX_Q] : NULL;
}

static void pop(struct model *m)
{
    m->qh = (m->qh + 1) % MAX_Q;
    m->qn--;
}

/* The shared indices, read relaxed: only this thread runs when they are read (the consumer
 * thread, if it ran, finished its job: sem_wait), and the values are only compared. */
FZ_NO_COVERAGE static void check_shared(const struct ring_pair *rp, const struct model *m,
                                        unsigned op)
{
    uint32_t t = ipcp_load_relaxed32(tail_word(rp));
    uint32_t h = ipcp_load_relaxed32(head_word(rp));
    FZ_CHECK(ipcp_ring_valid(&rp->p), "op %u: producer handle invalid", op);
    FZ_CHECK(ipcp_ring_valid(&rp->c), "op %u: consumer handle invalid", op);
    FZ_CHECK(((t | h) & (IPCP_RING_ALIGN - 1)) == 0, "op %u: unaligned tail %u head %u", op, t, h);
    FZ_CHECK(t - h <= m->cap, "op %u: tail %u more than the capacity ahead of head %u", op, t, h);
    FZ_CHECK(t == m->t, "op %u: tail %u, the reference placed records up to %u", op, t, m->t);
    /* Abandoned messages still queued in the reference may already have been passed. */
    uint64_t pending = 0;
    for (size_t k = 0; k < m->qn; k++)
        pending += m->q[(m->qh + k) % MAX_Q].kind == ITEM_PARTIAL;
    uint64_t ab = ipcp_ring_abandoned(&rp->c);
    FZ_CHECK(ab >= m->abandoned && ab <= m->abandoned + pending,
             "op %u: abandoned %llu, want %llu..%llu", op, (unsigned long long)ab,
             (unsigned long long)m->abandoned, (unsigned long long)(m->abandoned + pending));
}

/* Checks a result of recv or peek against the reference's next complete message. Abandoned
 * messages before it are popped (and counted) when that message is delivered; the caller pops
 * the message itself when n >= 0. */
FZ_NO_COVERAGE static void expect_result(struct model *m, ssize_t n, const uint8_t *got, size_t cap,
                                         size_t next_len, const char *what, unsigned op)
{
    struct item *it = front(m, 0);
    size_t k = 0;
    while (it != NULL && it->kind == ITEM_PARTIAL)
        it = front(m, ++k);
    if (k > 0) {
        /* Abandoned chunks first: nothing of them is ever delivered. The consumer may stop in
         * them (-EAGAIN when nothing follows), or refuse a buffer too small for the abandoned
         * message's total, or for the next message. */
        int known = it != NULL && next_len == it->len;
        for (size_t i = 0; i < k; i++)
            known |= next_len == front(m, i)->len;
        if (n == -EAGAIN && it == NULL) return;
        if (n == -EMSGSIZE && known && next_len > cap) return;
        FZ_CHECK(it != NULL, "op %u: %s returned %zd (%s) with only abandoned chunks queued", op,
                 what, n, n < 0 ? ipcp_errname((int)n) : "data");
        FZ_CHECK(n >= 0, "op %u: %s returned %zd (%s) after abandoned chunks", op, what, n,
                 ipcp_errname((int)n));
        while (k-- > 0) {
            pop(m);
            m->abandoned++;
        }
    }
    if (it == NULL) {
        FZ_CHECK_RC(n, -EAGAIN, what);
        return;
    }
    if (it->len > cap) {
        FZ_CHECK_RC(n, -EMSGSIZE, what);
        FZ_CHECK(next_len == it->len, "op %u: next_len %zu, want %u", op, next_len, it->len);
        return;
    }
    FZ_CHECK(n == (ssize_t)it->len, "op %u: %s returned %zd (%s), want message %u of %u bytes", op,
             what, n, n < 0 ? ipcp_errname((int)n) : "len", it->id, it->len);
    FZ_CHECK(n == 0 || memcmp(got, bytes_of(it->id), (size_t)n) == 0,
             "op %u: %s: bytes of message %u differ", op, what, it->id);
}

/* ---- a consumer thread, for messages larger than the ring ------------------------------------ */

struct drain {
    struct ipcp_ring *c;
    size_t count;
    size_t cap;
    uint8_t *buf;
    uint32_t *lens;
    uint8_t **msgs;
    int err;
};

static void drain(struct drain *d)
{
    for (size_t i = 0; i < d->count; i++) {
        ssize_t n = ipcp_ring_recv(d->c, d->buf, d->cap, LONG_MS);
        if (n < 0) {
            d->err = (int)n;
            return;
        }
        d->lens[i] = (uint32_t)n;
        d->msgs[i] = malloc(n ? (size_t)n : 1);
        if (d->msgs[i] == NULL) {
            d->err = -ENOMEM;
            return;
        }
        memcpy(d->msgs[i], d->buf, (size_t)n);
    }
}

/* The consumer thread lives as long as the process and drains one job at a time: a thread per
 * input cost more than the rest of the input. */
static struct {
    sem_t go, done;
    struct drain *job;
} worker;

static void *drain_main(void *arg)
{
    (void)arg;
    for (;;) {
        while (sem_wait(&worker.go) != 0)
            continue; /* EINTR */
        drain(worker.job);
        sem_post(&worker.done);
    }
    return NULL;
}

/* Runs d on the consumer thread, started on first use; drain_wait() waits for its end. */
static void drain_start(struct drain *d)
{
    static int started;
    if (!started) {
        FZ_CHECK(sem_init(&worker.go, 0, 0) == 0 && sem_init(&worker.done, 0, 0) == 0, "sem_init");
        pthread_t th;
        FZ_CHECK(pthread_create(&th, NULL, drain_main, NULL) == 0, "pthread_create");
        pthread_detach(th);
        started = 1;
    }
    worker.job = d;
    sem_post(&worker.go);
}

static void drain_wait(void)
{
    while (sem_wait(&worker.done) != 0)
        continue; /* EINTR */
}

/* ---- the run -------------------------------------------------------------------------------- */

static const uint32_t caps[4] = {128, 256, 1024, 4096};

/* The ring's memory for capacity caps[i], allocated to its exact size on first use. */
static uint8_t *ring_mem(unsigned i, size_t size)
{
    static uint8_t *mem[4];
    if (mem[i] == NULL) mem[i] = aligned_alloc(64, size);
    FZ_CHECK(mem[i] != NULL, "aligned_alloc");
    memset(mem[i], 0xbe, size); /* what ASan's malloc leaves in a new block */
    return mem[i];
}

/* A receive buffer of exactly len bytes (len = max_msg + 1: 16 values), kept for the process. */
static uint8_t *recv_buf(size_t len)
{
    static struct {
        size_t len;
        uint8_t *p;
    } bufs[16];
    unsigned k = 0;
    while (k < 16 && bufs[k].p != NULL && bufs[k].len != len)
        k++;
    FZ_CHECK(k < 16, "more than 16 buffer sizes");
    if (bufs[k].p == NULL) {
        bufs[k].p = malloc(len);
        bufs[k].len = len;
    }
    FZ_CHECK(bufs[k].p != NULL, "malloc");
    return bufs[k].p;
}

FZ_NO_COVERAGE int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (pattern[0] == 0 && pattern[1] == 0) fz_fill(pattern, sizeof(pattern), 0x7219);
    struct fz_in in = fz_in_make(data, size);
    uint8_t cfgb = fz_u8(&in);
    static struct model m;
    memset(&m, 0, sizeof(m));
    m.cap = caps[cfgb & 3];
    m.mask = m.cap - 1;
    static const size_t maxes[4] = {0, 100, 0, 65536};
    m.max_msg = maxes[(cfgb >> 2) & 3];
    if (((cfgb >> 2) & 3) == 0) m.max_msg = m.cap - IPCP_RING_REC_HDR;
    if (((cfgb >> 2) & 3) == 2) m.max_msg = 3 * m.cap + 5;
    size_t chunks[4] = {0, 16, 40, m.cap / 2};
    struct ipcp_ring_cfg cfg = {
        .capacity = m.cap, .max_msg = m.max_msg, .chunk = chunks[(cfgb >> 4) & 3], .spin = 64};
    int consumer_closes = (cfgb >> 6) & 1;
    int may_wait = (cfgb >> 7) & 1; /* ops 5 and 6 cost a millisecond or a thread */

    struct ring_pair rp;
    rp.size = ipcp_ring_mem_size(m.cap);
    rp.mem = ring_mem(cfgb & 3, rp.size);
    fz_vtime_on(1);
    FZ_CHECK_RC(ipcp_ring_init_mem(&rp.p, rp.mem, rp.size, IPCP_RING_PRODUCER, &cfg), 0,
                "init_mem producer");
    FZ_CHECK_RC(ipcp_ring_attach_mem(&rp.c, rp.mem, rp.size, IPCP_RING_CONSUMER, &cfg), 0,
                "attach_mem consumer");
    size_t bufcap = m.max_msg + 1;
    uint8_t *buf = recv_buf(bufcap);
    unsigned slow = 0, threads = 0;
    const uint32_t one_rec = m.cap - IPCP_RING_REC_HDR;

    for (unsigned op = 1; op <= MAX_OPS && fz_left(&in) > 0; op++) {
        uint8_t o = fz_u8(&in);
        uint32_t head = ipcp_load_relaxed32(head_word(&rp));
        switch (o & 7) {
        case 0:
        case 1: { /* send one record, or reserve + commit */
            uint8_t sel = fz_u8(&in);
            size_t len;
            switch (sel & 3) {
            case 0:
                len = 0;
                break;
            case 1:
                len = fz_u8(&in) % (one_rec + 1);
                break;
            case 2:
                len = one_rec;
                break;
            default:
                len = m.max_msg + 1;
                break;
            }
            if (len > m.max_msg && (sel & 3) != 3) len = m.max_msg;
            int too_big = len > one_rec || len > m.max_msg;
            uint32_t id = m.next_id;
            if ((o & 7) == 0) {
                int rc = ipcp_ring_send(&rp.p, bytes_of(id), len, 0);
                if (m.reserved) {
                    FZ_CHECK_RC(rc, -IPCP_E_STATE, "send during a reservation");
                } else if (len > m.max_msg) {
                    FZ_CHECK_RC(rc, -EMSGSIZE, "send above max_msg");
                } else if (model_room(&m, head, rec_size((uint32_t)len))) {
                    FZ_CHECK_RC(rc, 0, "send of a record that fits");
                    m.t += rec_size((uint32_t)len);
                    push(&m, ITEM_MSG, (uint32_t)len, id);
                    m.next_id++;
                } else {
                    FZ_CHECK_RC(rc, -EAGAIN, "send of a record that does not fit");
                }
                break;
            }
            void *ptr = (void *)1;
            int rc = ipcp_ring_reserve(&rp.p, len, &ptr, 0);
            if (too_big) {
                FZ_CHECK_RC(rc, -EMSGSIZE, "reserve too big");
                FZ_CHECK(ptr == NULL, "reserve failed but gave a pointer");
                break;
            }
            m.reserved = 0; /* a reserve of a valid size drops an earlier reservation */
            if (!model_room(&m, head, rec_size((uint32_t)len))) {
                FZ_CHECK_RC(rc, -EAGAIN, "reserve of a record that does not fit");
                break;
            }
            FZ_CHECK_RC(rc, 0, "reserve of a record that fits");
            FZ_CHECK(ptr == rp.mem + IPCP_RING_HDR_SIZE + (m.t & m.mask) + IPCP_RING_REC_HDR,
                     "op %u: reserved space is not at the tail", op);
            m.reserved = 1;
            m.res_len = (uint32_t)len;
            if (len) memcpy(ptr, bytes_of(id), len);
            uint8_t how = fz_u8(&in);
            size_t n = len;
            if ((how & 3) == 3) break; /* left reserved */
            if ((how & 3) == 1) n = len ? fz_u8(&in) % (len + 1) : 0;
            if ((how & 3) == 2)
                FZ_CHECK_RC(ipcp_ring_commit(&rp.p, len + 1), -EINVAL, "commit above reserved");
            FZ_CHECK_RC(ipcp_ring_commit(&rp.p, n), 0, "commit");
            m.reserved = 0;
            m.t += rec_size((uint32_t)n);
            push(&m, ITEM_MSG, (uint32_t)n, id);
            m.next_id++;
            FZ_CHECK_RC(ipcp_ring_commit(&rp.p, 0), -IPCP_E_STATE, "commit twice");
            break;
        }
        case 2: { /* recv */
            uint8_t sel = fz_u8(&in);
            const struct item *it = front(&m, 0);
            size_t cap = bufcap - 1;
            if ((sel & 3) == 1 && it != NULL) cap = it->len;
            if ((sel & 3) == 2 && it != NULL && it->len > 0) cap = it->len - 1;
            ssize_t n = ipcp_ring_recv(&rp.c, buf, cap, 0);
            if (m.peeked) {
                FZ_CHECK_RC(n, -IPCP_E_STATE, "recv between peek and release");
                break;
            }
            expect_result(&m, n, buf, cap, ipcp_ring_next_len(&rp.c), "recv", op);
            if (n >= 0) pop(&m);
            break;
        }
        case 3: { /* peek / release */
            uint8_t sel = fz_u8(&in);
            if (sel & 1) {
                int rc = ipcp_ring_release(&rp.c);
                if (!m.peeked) {
                    FZ_CHECK_RC(rc, -IPCP_E_STATE, "release without peek");
                } else {
                    FZ_CHECK_RC(rc, 0, "release");
                    m.peeked = 0;
                    pop(&m);
                }
                break;
            }
            const void *p1 = NULL, *p2 = NULL;
            ssize_t n = ipcp_ring_peek(&rp.c, &p1, 0);
            if (m.peeked) { /* the same message again */
                const struct item *it = front(&m, 0);
                FZ_CHECK(n == (ssize_t)it->len && memcmp(p1, bytes_of(it->id), it->len) == 0,
                         "op %u: a second peek differs", op);
                break;
            }
            expect_result(&m, n, p1, SIZE_MAX, 0, "peek", op);
            if (n < 0) break;
            m.peeked = 1;
            ssize_t n2 = ipcp_ring_peek(&rp.c, &p2, 0);
            FZ_CHECK(n2 == n && p2 == p1, "op %u: peek again gave %zd %p, first %zd %p", op, n2, p2,
                     n, p1);
            break;
        }
        case 4:
        case 5:
        case 6: { /* a message larger than the ring */
            if (m.max_msg <= one_rec) break;
            /* At most 8 capacities: each chunk beyond the first ring-full is a futex
             * hand-off between the threads, and those are slow. */
            size_t span = m.max_msg - one_rec < 8u * m.cap ? m.max_msg - one_rec : 8u * m.cap;
            size_t len = one_rec + 1 + fz_u16(&in) % span;
            uint32_t id = m.next_id;
            if ((o & 7) == 4 || m.reserved || !may_wait) {
                int rc = ipcp_ring_send(&rp.p, bytes_of(id), len, 0);
                FZ_CHECK_RC(rc, m.reserved ? -IPCP_E_STATE : -EAGAIN, "chunked send, timeout 0");
                break;
            }
            if ((o & 7) == 5) {
                if (slow >= MAX_SLOW) break;
                slow++;
                uint32_t seq0 = rp.p.p.seq;
                int rc = ipcp_ring_send(&rp.p, bytes_of(id), len, 1);
                FZ_CHECK_RC(rc, -ETIMEDOUT, "chunked send with nobody consuming");
                m.t = ipcp_load_relaxed32(tail_word(&rp));
                if (rp.p.p.seq != seq0) { /* chunks went out: an abandoned message */
                    push(&m, ITEM_PARTIAL, (uint32_t)len, id);
                    m.next_id++;
                }
                break;
            }
            /* A consumer thread takes everything queued, then this message. */
            if (threads >= MAX_THREAD || m.peeked) break;
            int partial = 0;
            for (size_t k = 0; k < m.qn; k++)
                partial |= front(&m, k)->kind == ITEM_PARTIAL;
            if (partial || rp.c.c.mode != 0) break;
            threads++;
            push(&m, ITEM_MSG, (uint32_t)len, id);
            m.next_id++;
            struct drain d = {.c = &rp.c, .count = m.qn, .cap = bufcap - 1, .buf = buf};
            d.lens = calloc(d.count, sizeof(*d.lens));
            d.msgs = calloc(d.count, sizeof(*d.msgs));
            FZ_CHECK(d.lens != NULL && d.msgs != NULL, "calloc");
            fz_vtime_off(); /* the consumer wakes this thread */
            drain_start(&d);
            int rc = ipcp_ring_send(&rp.p, bytes_of(id), len, LONG_MS);
            drain_wait();
            fz_vtime_on(0);
            FZ_CHECK_RC(rc, 0, "chunked send with a consumer");
            FZ_CHECK_RC(d.err, 0, "the consumer thread");
            for (size_t k = 0; k < d.count; k++) {
                const struct item *it = front(&m, 0);
                FZ_CHECK(d.lens[k] == it->len && memcmp(d.msgs[k], bytes_of(it->id), it->len) == 0,
                         "op %u: message %zu of %zu from the consumer thread differs", op, k,
                         d.count);
                pop(&m);
                free(d.msgs[k]);
            }
            free(d.msgs);
            free(d.lens);
            m.t = ipcp_load_relaxed32(tail_word(&rp));
            break;
        }
        default: { /* release out of order, or recv while peeked (both -IPCP_E_STATE) */
            if (!m.peeked) {
                FZ_CHECK_RC(ipcp_ring_release(&rp.c), -IPCP_E_STATE, "release without peek");
            } else {
                FZ_CHECK_RC(ipcp_ring_recv(&rp.c, buf, bufcap - 1, 0), -IPCP_E_STATE,
                            "recv while peeked");
            }
            break;
        }
        }
        check_shared(&rp, &m, op);
    }

    /* The ending. */
    if (m.peeked) {
        FZ_CHECK_RC(ipcp_ring_release(&rp.c), 0, "final release");
        m.peeked = 0;
        pop(&m);
    }
    if (consumer_closes) {
        ipcp_ring_close(&rp.c);
        FZ_CHECK_RC(ipcp_ring_send(&rp.p, bytes_of(0), 1, 0), -EPIPE, "send after consumer close");
        void *ptr;
        FZ_CHECK_RC(ipcp_ring_reserve(&rp.p, 1, &ptr, 0), -EPIPE, "reserve after consumer close");
        ipcp_ring_close(&rp.p);
    } else {
        ipcp_ring_close(&rp.p);
        /* Everything published before the close is still delivered, complete messages only. */
        while (m.qn > 0) {
            ssize_t n = ipcp_ring_recv(&rp.c, buf, bufcap - 1, 1);
            if (n == -IPCP_E_TRUNCATED) { /* only abandoned chunks were left */
                for (size_t k = 0; k < m.qn; k++)
                    FZ_CHECK(front(&m, k)->kind == ITEM_PARTIAL,
                             "truncated with a complete message queued");
                m.qn = 0;
                break;
            }
            expect_result(&m, n, buf, bufcap - 1, ipcp_ring_next_len(&rp.c), "final recv",
                          MAX_OPS + 1);
            if (n >= 0) pop(&m);
            if (n == -EAGAIN) break;
        }
        ssize_t n = ipcp_ring_recv(&rp.c, buf, bufcap - 1, 1);
        FZ_CHECK(n == -EPIPE || n == -IPCP_E_TRUNCATED, "after the producer closed: %zd (%s)", n,
                 n < 0 ? ipcp_errname((int)n) : "data");
        ipcp_ring_close(&rp.c);
    }
    fz_vtime_off();
    return 0;
}

/* ring.c - SPSC ring in shared memory with chunked messages; see ring.h and docs/ring.md.
 *
 * The file has two layers. The protocol core (placing records, validating what the peer wrote,
 * chunk sequencing) works on the region's memory only, so a fuzzer can drive it in-process
 * with timeout 0. The waiting layer below it (spin, futex, peer liveness through pidfd or
 * kill) is only entered when a call has to wait. Shared memory is untrusted throughout: each
 * side trusts only its private copy of its own index; the other side's index and every record
 * header are read once into locals and checked before use. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "ipcproof/err.h"
#include "ipcproof/ring.h"

/* ---- shared layout ---------------------------------------------------------------------- */

struct ring_shared {
    /* 0: written once by ipcp_ring_format, read once by each attach */
    uint32_t magic;
    uint32_t version;
    uint32_t hdr_size; /* offset of the data area */
    uint32_t rec_hdr;  /* record header size */
    uint32_t capacity; /* data area bytes, power of two */
    uint32_t max_msg;
    _Atomic uint32_t state;    /* ST_* bits */
    _Atomic uint32_t prod_pid; /* 0 until the producer attached */
    _Atomic uint32_t cons_pid;
    uint8_t pad0[IPCP_RING_OFF_TAIL - 36];
    /* 128: the producer's line (the 128-byte pair defeats adjacent-line prefetch sharing) */
    _Atomic uint32_t tail;        /* free-running byte index, futex word of a sleeping consumer */
    _Atomic uint32_t cons_sleeps; /* set by a consumer about to sleep on tail */
    uint8_t pad1[IPCP_RING_OFF_HEAD - IPCP_RING_OFF_TAIL - 8];
    /* 256: the consumer's line */
    _Atomic uint32_t head;        /* free-running byte index, futex word of a sleeping producer */
    _Atomic uint32_t prod_sleeps; /* set by a producer about to sleep on head */
    uint8_t pad2[IPCP_RING_HDR_SIZE - IPCP_RING_OFF_HEAD - 8];
};
_Static_assert(sizeof(struct ring_shared) == IPCP_RING_HDR_SIZE, "header size");
_Static_assert(offsetof(struct ring_shared, state) == 24, "state offset");
_Static_assert(offsetof(struct ring_shared, tail) == IPCP_RING_OFF_TAIL, "tail offset");
_Static_assert(offsetof(struct ring_shared, head) == IPCP_RING_OFF_HEAD, "head offset");
_Static_assert(sizeof(_Atomic uint32_t) == 4 && ATOMIC_INT_LOCK_FREE == 2,
               "shared-memory atomics must be lock-free words");

#define ST_PROD_ATTACHED 0x1u
#define ST_CONS_ATTACHED 0x2u
#define ST_PROD_CLOSED   0x4u
#define ST_CONS_CLOSED   0x8u

/* A record: this header, then len payload bytes, padded to IPCP_RING_ALIGN. Records never wrap:
 * one that would is preceded by a PAD record filling the data area up to its end. */
struct ring_rec {
    uint32_t len;   /* payload bytes in this record */
    uint32_t flags; /* REC_MARK | FIRST/LAST (MIDDLE: neither) | PAD */
    uint32_t seq;   /* message sequence number, shared by all chunks of a message */
    uint32_t total; /* length of the whole message */
};
_Static_assert(sizeof(struct ring_rec) == IPCP_RING_REC_HDR, "record header size");

#define REC_FIRST IPCP_CHUNK_FIRST
#define REC_LAST  IPCP_CHUNK_LAST
#define REC_WHOLE IPCP_CHUNK_WHOLE
#define REC_PAD   IPCP_RING_REC_PAD
#define REC_BITS  0xffu
#define REC_MARK  IPCP_RING_REC_MARK /* upper half of flags: a record read at a wrong offset */

enum { MODE_IDLE = 0, MODE_REASM, MODE_SKIP };

#define SLICE_MS 20 /* longest futex sleep between two peer checks */

static inline struct ring_shared *sh(const struct ipcp_ring *r)
{
    return (struct ring_shared *)r->base;
}

static inline uint32_t rec_size(uint32_t len)
{
    return IPCP_RING_REC_HDR + ((len + (IPCP_RING_ALIGN - 1)) & ~(IPCP_RING_ALIGN - 1));
}

static inline uint32_t min32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

static int ring_fail(struct ipcp_ring *r, int err)
{
    if (r->err == 0) r->err = err;
    return r->err;
}

/* ---- waiting layer: futex, peer liveness -------------------------------------------------- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Shared futexes (no FUTEX_PRIVATE_FLAG): the words live in memory other processes map. */
static void futex_wait(_Atomic uint32_t *word, uint32_t seen, int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static int pidfd_open_cloexec(pid_t pid)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0); /* pidfds are always close-on-exec */
    return fd < 0 ? -errno : (int)fd;
#else
    (void)pid;
    return -ENOSYS;
#endif
}

/* Without pidfds: a zombie still answers kill(pid, 0), so its state is read from /proc. */
static int pid_is_zombie(pid_t pid)
{
    char path[48], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may contain anything */
    return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Did the peer close or die? 0: no (or not attached yet), -EPIPE, -IPCP_E_PEERDEAD, or
 * -IPCP_E_CORRUPT for a recorded pid no process can have. */
static int peer_gone(struct ipcp_ring *r)
{
    struct ring_shared *s = sh(r);
    int prod = r->role == IPCP_RING_PRODUCER;
    /* Acquire: if the peer closed, its last index store (made before) is visible to the
     * re-check the caller does next. */
    uint32_t st = ipcp_load_acquire32(&s->state);
    if (st & (prod ? ST_CONS_CLOSED : ST_PROD_CLOSED)) return -EPIPE;
    uint32_t raw = ipcp_load_relaxed32(prod ? &s->cons_pid : &s->prod_pid); /* read once */
    if (raw == 0) return 0;
    if (raw > INT_MAX) return ring_fail(r, -IPCP_E_CORRUPT);
    pid_t pid = (pid_t)raw;
    if (pid == getpid()) return 0; /* both sides are threads of this process */
    if ((int32_t)pid != r->peer_pid) {
        if (r->peer_pid != 0 && r->peer_fd >= 0) close(r->peer_fd);
        r->peer_pid = (int32_t)pid;
        r->peer_fd = pidfd_open_cloexec(pid);
        if (r->peer_fd == -ESRCH) return -IPCP_E_PEERDEAD;
        if (r->peer_fd < 0) r->peer_fd = -1; /* ENOSYS, EMFILE...: kill(pid, 0) instead */
    }
    if (r->peer_fd >= 0) {
        /* A pidfd turns readable when the process exits, reaped or not. */
        struct pollfd p = {.fd = r->peer_fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
            return -IPCP_E_PEERDEAD;
        return 0;
    }
    if ((kill(pid, 0) < 0 && errno == ESRCH) || pid_is_zombie(pid)) return -IPCP_E_PEERDEAD;
    return 0;
}

/* Deadline of one call that may wait several times. The clock is first read when a wait gets
 * past its spin, so that the fast path (and a short spin) reads no clock: the deadline counts
 * from there, at most one spin later than the call began. */
struct waiter {
    int timeout_ms;
    int started;
    struct ipcp_deadline dl;
};

/* Waits until *word differs from seen (0), the deadline passes (-ETIMEDOUT; -EAGAIN at once for
 * timeout 0), or the peer closed or died. The caller re-reads the index itself, with acquire,
 * and re-checks. */
static int ring_wait(struct ipcp_ring *r, _Atomic uint32_t *word, _Atomic uint32_t *sleeps,
                     uint32_t seen, struct waiter *w)
{
    if (w->timeout_ms == 0) {
        /* A try never waits and makes no syscall, but it does report a peer that closed
         * (acquire: the peer's last index store is then visible to the re-check). A dead peer
         * is only noticed by a call that waits. */
        uint32_t bit = r->role == IPCP_RING_PRODUCER ? ST_CONS_CLOSED : ST_PROD_CLOSED;
        if (!(ipcp_load_acquire32(&sh(r)->state) & bit)) return -EAGAIN;
        return ipcp_load_acquire32(word) != seen ? 0 : -EPIPE;
    }
    for (unsigned i = 0; i < r->spin; i++) {
        /* Relaxed: only notices a change; nothing is read on the strength of it. */
        if (ipcp_load_relaxed32(word) != seen) return 0;
        cpu_relax();
    }
    if (!w->started) {
        ipcp__deadline_init(&w->dl, w->timeout_ms);
        w->started = 1;
    }
    const struct ipcp_deadline *dl = &w->dl;
    int rc = 0;
    for (;;) {
        /* Announce the sleep, then look at the index, both seq_cst. The peer publishes its
         * index, then looks at the flag, both seq_cst: one of us sees the other's store. Either
         * we see the new index here, or the peer sees the flag and wakes us; its wake cannot
         * get lost in between, since FUTEX_WAIT only sleeps while *word still equals seen. */
        ipcp_store_seqcst32(sleeps, 1);
        if (ipcp_load_seqcst32(word) != seen) break;
        rc = peer_gone(r);
        if (rc < 0) {
            if (ipcp_load_acquire32(word) != seen) rc = 0; /* it published before leaving */
            break;
        }
        int left = ipcp__deadline_left_ms(dl);
        if (left == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        futex_wait(word, seen, left < 0 || left > SLICE_MS ? SLICE_MS : left);
        if (ipcp_load_relaxed32(word) != seen) break;
    }
    /* Only the sleeper writes its flag. Between a wake and this store the peer may wake us
     * again for each record it publishes: a few spare FUTEX_WAKE calls, never a lost one. */
    ipcp_store_relaxed32(sleeps, 0);
    return rc;
}

/* ---- producer core ----------------------------------------------------------------------- */

static void prod_publish(struct ipcp_ring *r)
{
    struct ring_shared *s = sh(r);
    /* seq_cst store (a release): the records written before it are visible to a consumer that
     * acquire-loads tail; seq_cst also orders it before the load of cons_sleeps (ring_wait). */
    ipcp_store_seqcst32(&s->tail, r->p.tail);
    /* The flag is the sleeper's alone: clearing it here could erase a newer announcement made
     * after our load, and the wake of the next publish would then be skipped. */
#ifdef IPCP_RING_REVERT_WAKE_FIX /* only the fuzz target's revert check builds this */
    if (ipcp_load_seqcst32(&s->cons_sleeps)) {
        ipcp_store_relaxed32(&s->cons_sleeps, 0);
        futex_wake(&s->tail);
    }
#else
    if (ipcp_load_seqcst32(&s->cons_sleeps)) futex_wake(&s->tail);
#endif
}

/* Reads the consumer's head once: it must be aligned and lie in [head_seen, tail]. */
static int prod_refresh(struct ipcp_ring *r)
{
    /* Acquire: pairs with the consumer's store of head, so its reads of the records before
     * head are finished before we overwrite them. */
    uint32_t h = ipcp_load_acquire32(&sh(r)->head);
    if ((h & (IPCP_RING_ALIGN - 1)) != 0 || r->p.tail - h > r->cap ||
        h - r->p.head_seen > r->p.tail - r->p.head_seen)
        return ring_fail(r, -IPCP_E_CORRUPT);
    r->p.head_seen = h;
    return 0;
}

static void write_rec(struct ipcp_ring *r, uint32_t off, uint32_t flags, uint32_t seq, uint32_t len,
                      uint32_t total, const void *payload)
{
    struct ring_rec h = {.len = len, .flags = REC_MARK | flags, .seq = seq, .total = total};
    memcpy(r->data + off, &h, sizeof(h));
    if (len > 0) memcpy(r->data + off + IPCP_RING_REC_HDR, payload, len);
    r->p.tail += rec_size(len);
}

static void prod_pad(struct ipcp_ring *r, uint32_t off, uint32_t n)
{
    struct ring_rec h = {.len = n - IPCP_RING_REC_HDR, .flags = REC_MARK | REC_PAD};
    memcpy(r->data + off, &h, sizeof(h));
    r->p.tail += n;
    prod_publish(r);
}

/* Where the next chunk of a message with `left` (> 0) bytes to go can be placed, given the
 * tail t and `free_` free bytes. Returns 1 (place *n payload bytes), 2 (pad up to
 * the end first), 0 (wait for room). A chunk takes what is contiguous when that is at least a
 * quarter chunk, so producer and consumer overlap instead of waiting for whole chunks. */
static int chunk_plan(const struct ipcp_ring *r, uint32_t t, uint32_t free_, size_t left,
                      uint32_t *n)
{
    uint32_t want = left < r->p.chunk ? (uint32_t)left : (uint32_t)r->p.chunk;
    uint32_t part = min32(want, r->p.chunk / 4 > 16 ? (uint32_t)r->p.chunk / 4 : 16);
    uint32_t to_end = r->cap - (t & r->mask);
    uint32_t contig = min32(to_end, free_);
    if (contig >= rec_size(want)) {
        *n = want;
        return 1;
    }
    if (contig >= IPCP_RING_REC_HDR + part) {
        *n = contig - IPCP_RING_REC_HDR; /* contig is aligned: the record fills it exactly */
        return 1;
    }
    if (to_end < IPCP_RING_REC_HDR + part && to_end <= free_) return 2;
    return 0;
}

/* Room for the next chunk: 1 (*off, *n), 0 (wait), or an error. May publish a pad. */
static int prod_room_chunk(struct ipcp_ring *r, size_t left, uint32_t *off, uint32_t *n)
{
    int refreshed = 0;
    for (;;) {
        uint32_t free_ = r->cap - (r->p.tail - r->p.head_seen);
        int k = chunk_plan(r, r->p.tail, free_, left, n);
        if (k == 1) {
            *off = r->p.tail & r->mask;
            return 1;
        }
        if (k == 2) {
            prod_pad(r, r->p.tail & r->mask, r->cap - (r->p.tail & r->mask));
            continue;
        }
        if (refreshed) return 0;
        int rc = prod_refresh(r);
        if (rc < 0) return rc;
        refreshed = 1;
    }
}

/* Room for one record of rsz bytes, contiguous: 1 (*off), 0 (wait), or an error. A record that
 * does not fit before the end is preceded by a pad, published as soon as the pad fits. */
static int prod_room(struct ipcp_ring *r, uint32_t rsz, uint32_t *off)
{
    int refreshed = 0;
    for (;;) {
        uint32_t o = r->p.tail & r->mask;
        uint32_t to_end = r->cap - o;
        uint32_t free_ = r->cap - (r->p.tail - r->p.head_seen);
        if (rsz <= to_end) {
            if (rsz <= free_) {
                *off = o;
                return 1;
            }
        } else if (to_end <= free_) {
            prod_pad(r, o, to_end);
            continue;
        }
        if (refreshed) return 0;
        int rc = prod_refresh(r);
        if (rc < 0) return rc;
        refreshed = 1;
    }
}

static int prod_usable(struct ipcp_ring *r)
{
    if (r->role != IPCP_RING_PRODUCER) return -EINVAL;
    if (r->err) return r->err;
    /* Relaxed: a hint; a close that races with this send is found by the next call. */
    if (ipcp_load_relaxed32(&sh(r)->state) & ST_CONS_CLOSED) return -EPIPE;
    return 0;
}

static int prod_wait(struct ipcp_ring *r, struct waiter *w)
{
    struct ring_shared *s = sh(r);
    return ring_wait(r, &s->head, &s->prod_sleeps, r->p.head_seen, w);
}

int ipcp_ring_send(struct ipcp_ring *r, const void *msg, size_t len, int timeout_ms)
{
    int rc = prod_usable(r);
    if (rc < 0) return rc;
    if (r->p.reserved) return -IPCP_E_STATE;
    if (len > 0 && msg == NULL) return -EINVAL;
    if (len > r->max_msg) return -EMSGSIZE;
    const uint8_t *src = msg;
    struct waiter w = {.timeout_ms = timeout_ms};
    uint32_t off;

    if (len <= r->cap - IPCP_RING_REC_HDR) { /* one record */
        uint32_t rsz = rec_size((uint32_t)len);
        while ((rc = prod_room(r, rsz, &off)) == 0)
            if ((rc = prod_wait(r, &w)) < 0) return rc;
        if (rc < 0) return rc;
        write_rec(r, off, REC_WHOLE, r->p.seq, (uint32_t)len, (uint32_t)len, src);
        r->p.seq++;
        prod_publish(r);
        return 0;
    }

    /* Chunked means len + its record headers exceed the capacity: such a message can never
     * be in the ring whole, so it cannot go without waiting for the consumer. */
    if (timeout_ms == 0) return -EAGAIN;
    size_t done = 0;
    while (done < len) {
        uint32_t n;
        while ((rc = prod_room_chunk(r, len - done, &off, &n)) == 0)
            if ((rc = prod_wait(r, &w)) < 0) break;
        if (rc < 0) {
            /* Chunks already published: the message is abandoned and its sequence number used
             * up; the consumer drops it when the next FIRST arrives. */
            if (done > 0) r->p.seq++;
            return rc;
        }
        uint32_t flags = (done == 0 ? REC_FIRST : 0) | (done + n == len ? REC_LAST : 0);
        write_rec(r, off, flags, r->p.seq, n, (uint32_t)len, src + done);
        prod_publish(r);
        done += n;
    }
    r->p.seq++;
    return 0;
}

int ipcp_ring_reserve(struct ipcp_ring *r, size_t len, void **ptr, int timeout_ms)
{
    int rc = prod_usable(r);
    if (rc < 0) return rc;
    if (ptr == NULL) return -EINVAL;
    *ptr = NULL;
    if (len > r->cap - IPCP_RING_REC_HDR || len > r->max_msg) return -EMSGSIZE;
    r->p.reserved = 0;
    struct waiter w = {.timeout_ms = timeout_ms};
    uint32_t off;
    while ((rc = prod_room(r, rec_size((uint32_t)len), &off)) == 0)
        if ((rc = prod_wait(r, &w)) < 0) return rc;
    if (rc < 0) return rc;
    r->p.reserved = 1;
    r->p.res_off = off;
    r->p.res_len = len;
    *ptr = r->data + off + IPCP_RING_REC_HDR;
    return 0;
}

int ipcp_ring_commit(struct ipcp_ring *r, size_t len)
{
    if (r->role != IPCP_RING_PRODUCER) return -EINVAL;
    if (r->err) return r->err;
    if (!r->p.reserved) return -IPCP_E_STATE;
    if (len > r->p.res_len) return -EINVAL;
    struct ring_rec h = {.len = (uint32_t)len,
                         .flags = REC_MARK | REC_WHOLE,
                         .seq = r->p.seq,
                         .total = (uint32_t)len};
    memcpy(r->data + r->p.res_off, &h, sizeof(h));
    r->p.tail += rec_size((uint32_t)len);
    r->p.seq++;
    r->p.reserved = 0;
    prod_publish(r);
    return 0;
}

/* ---- consumer core ----------------------------------------------------------------------- */

struct rec_view {
    uint32_t len, flags, seq, total, rsz;
    const uint8_t *payload;
};

static void cons_publish(struct ipcp_ring *r)
{
    struct ring_shared *s = sh(r);
    /* seq_cst store (a release): our reads of the consumed records are done before the
     * producer, acquire-loading head, reuses the space; seq_cst also orders it before the load
     * of prod_sleeps (ring_wait). */
    ipcp_store_seqcst32(&s->head, r->c.head);
#ifdef IPCP_RING_REVERT_WAKE_FIX
    if (ipcp_load_seqcst32(&s->prod_sleeps)) {
        ipcp_store_relaxed32(&s->prod_sleeps, 0);
        futex_wake(&s->head);
    }
#else
    if (ipcp_load_seqcst32(&s->prod_sleeps)) futex_wake(&s->head); /* the flag is not ours */
#endif
}

static void cons_consume(struct ipcp_ring *r, uint32_t rsz)
{
    r->c.head += rsz;
    cons_publish(r);
}

/* Reads the producer's tail once: aligned, at most capacity ahead of head, not behind the last
 * tail seen. */
static int cons_refresh(struct ipcp_ring *r)
{
    /* Acquire: pairs with the producer's store of tail; the records before it are visible. */
    uint32_t t = ipcp_load_acquire32(&sh(r)->tail);
    uint32_t avail = t - r->c.head;
    if ((t & (IPCP_RING_ALIGN - 1)) != 0 || avail > r->cap || avail < r->c.tail_seen - r->c.head)
        return ring_fail(r, -IPCP_E_CORRUPT);
    r->c.tail_seen = t;
    if (avail > 0) { /* ask for the next record's first two lines together, not one by one */
        uint32_t off = r->c.head & r->mask;
        __builtin_prefetch(r->data + off, 0, 3);
        if (off + IPCP_CACHELINE < r->cap) __builtin_prefetch(r->data + off + IPCP_CACHELINE, 0, 3);
    }
    return 0;
}

/* The record at head: 1 (*v), 0 (none published), or a sticky error. Pads are consumed. */
static int cons_next(struct ipcp_ring *r, struct rec_view *v)
{
    for (;;) {
        uint32_t avail = r->c.tail_seen - r->c.head;
        if (avail == 0) {
            int rc = cons_refresh(r);
            if (rc < 0) return rc;
            avail = r->c.tail_seen - r->c.head;
            if (avail == 0) return 0;
        }
        /* avail is a non-zero multiple of 16 and off is aligned: the header lies inside. */
        uint32_t off = r->c.head & r->mask;
        struct ring_rec h;
        memcpy(&h, r->data + off, sizeof(h));
        ipcp_compiler_barrier(); /* read once: only h is used from here on */
        if ((h.flags & ~REC_BITS) != REC_MARK) return ring_fail(r, -IPCP_E_CORRUPT);
        uint32_t fl = h.flags & REC_BITS;
        if (fl & REC_PAD) {
            if (fl != REC_PAD || off == 0 || r->cap - off > avail)
                return ring_fail(r, -IPCP_E_CORRUPT);
            cons_consume(r, r->cap - off);
            continue;
        }
        if (fl & ~REC_WHOLE) return ring_fail(r, -IPCP_E_CORRUPT);
        if (h.len > r->cap - IPCP_RING_REC_HDR) return ring_fail(r, -IPCP_E_CORRUPT);
        uint32_t rsz = rec_size(h.len);
        if (rsz > r->cap - off || rsz > avail) return ring_fail(r, -IPCP_E_CORRUPT);
        v->len = h.len;
        v->flags = fl;
        v->seq = h.seq;
        v->total = h.total;
        v->rsz = rsz;
        v->payload = r->data + off + IPCP_RING_REC_HDR;
        return 1;
    }
}

/* Checks a FIRST record, whatever the API. 0: the caller takes it (it is whole, or starts a
 * chunked message). < 0: an error to return; the record was consumed or stays as documented. */
static int cons_first(struct ipcp_ring *r, const struct rec_view *v, int *direct)
{
    if (*direct || r->c.mode != MODE_IDLE) {
        /* A FIRST in the middle of a message: its producer gave that one up. */
        if (r->c.mode != MODE_SKIP) r->c.abandoned++;
        ipcp_reasm_reset(&r->c.reasm);
        r->c.mode = MODE_IDLE;
        *direct = 0;
    }
    if (v->seq != r->c.expect) { /* reported once; the record is delivered by the next call */
        r->c.expect = v->seq;
        return -IPCP_E_SEQUENCE;
    }
    int bad = 0;
    if (v->total > r->max_msg)
        bad = -IPCP_E_TOOBIG;
    else if (v->len > v->total || ((v->flags & REC_LAST) && v->len != v->total))
        bad = -IPCP_E_FRAGMENT;
    if (bad < 0) { /* dropped, and the rest of its chunks after it */
        r->c.expect = v->seq + 1;
        if (!(v->flags & REC_LAST)) {
            r->c.mode = MODE_SKIP;
            r->c.skip_seq = v->seq;
        }
        cons_consume(r, v->rsz);
        return bad;
    }
    return 0;
}

/* A MIDDLE or LAST record while no message is being copied directly. 1: consumed silently
 * (skipping), 0: the reassembler takes it, or an error (the record is consumed). */
static int cons_cont(struct ipcp_ring *r, const struct rec_view *v)
{
    if (r->c.mode == MODE_REASM) return 0;
    cons_consume(r, v->rsz);
    if (r->c.mode == MODE_SKIP && v->seq == r->c.skip_seq) {
        if (v->flags & REC_LAST) r->c.mode = MODE_IDLE;
        return 1;
    }
    r->c.mode = MODE_IDLE;
    return -IPCP_E_FRAGMENT;
}

/* Feeds a record of the message in progress to the reassembler; consumes it. 1: the message
 * is complete, 0: more to come, or the reassembler's error (the message is dropped). */
static int cons_feed(struct ipcp_ring *r, const struct rec_view *v)
{
    int rc =
        ipcp_reasm_feed(&r->c.reasm, v->flags & REC_WHOLE, v->seq, v->total, v->payload, v->len);
    cons_consume(r, v->rsz); /* after the copy: the producer may reuse the space now */
    if (rc != 0) r->c.mode = MODE_IDLE;
    return rc;
}

static int cons_usable(struct ipcp_ring *r)
{
    if (r->role != IPCP_RING_CONSUMER) return -EINVAL;
    return r->err;
}

static int cons_wait(struct ipcp_ring *r, struct waiter *w)
{
    struct ring_shared *s = sh(r);
    return ring_wait(r, &s->tail, &s->cons_sleeps, r->c.tail_seen, w);
}

ssize_t ipcp_ring_recv(struct ipcp_ring *r, void *buf, size_t cap, int timeout_ms)
{
    int rc = cons_usable(r);
    if (rc < 0) return rc;
    if (r->c.peeked) return -IPCP_E_STATE;
    if (cap > 0 && buf == NULL) return -EINVAL;
    if (r->c.mode == MODE_REASM && r->c.reasm.total > cap) {
        r->c.next_len = r->c.reasm.total;
        return -EMSGSIZE;
    }
    uint8_t *dst = buf;
    /* A chunked message that fits buf is copied straight into it ("direct"); only if this call
     * ends before its LAST do its bytes move to the reassembler (cons_park). */
    int direct = 0;
    uint32_t dseq = 0;
    size_t dtotal = 0, dhave = 0;
    struct waiter w = {.timeout_ms = timeout_ms};
    for (;;) {
        struct rec_view v;
        rc = cons_next(r, &v);
        if (rc == 0) {
            rc = cons_wait(r, &w);
            if (rc == 0) continue;
            if (rc == -EPIPE && (direct || r->c.mode == MODE_REASM)) rc = -IPCP_E_TRUNCATED;
            if (direct) {
                int prc = ipcp_reasm_feed(&r->c.reasm, REC_FIRST, dseq, dtotal, dst, dhave);
                if (prc == 0) {
                    r->c.mode = MODE_REASM;
                } else { /* no memory to keep it: the rest of the message is skipped */
                    r->c.mode = MODE_SKIP;
                    r->c.skip_seq = dseq;
                    rc = prc;
                }
            }
            return rc;
        }
        if (rc < 0) return rc;
        if (v.flags & REC_FIRST) {
            if ((rc = cons_first(r, &v, &direct)) < 0) return rc;
            size_t need = (v.flags & REC_LAST) ? v.len : v.total;
            if (need > cap) { /* not consumed: the next recv with a larger buffer gets it */
                r->c.next_len = need;
                return -EMSGSIZE;
            }
            if (v.len > 0) memcpy(dst, v.payload, v.len);
            r->c.expect = v.seq + 1;
            cons_consume(r, v.rsz);
            if (v.flags & REC_LAST) return (ssize_t)v.len;
            direct = 1;
            dseq = v.seq;
            dtotal = v.total;
            dhave = v.len;
            continue;
        }
        if (direct) {
            /* The same rules as ipcp_reasm_feed, applied to the message being copied. */
            if (v.seq != dseq || v.total != dtotal || v.len > dtotal - dhave ||
                ((v.flags & REC_LAST) && dhave + v.len != dtotal)) {
                cons_consume(r, v.rsz);
                if (!(v.flags & REC_LAST)) { /* its remaining chunks are dropped silently */
                    r->c.mode = MODE_SKIP;
                    r->c.skip_seq = dseq;
                }
                return -IPCP_E_FRAGMENT;
            }
            if (v.len > 0) memcpy(dst + dhave, v.payload, v.len);
            dhave += v.len;
            cons_consume(r, v.rsz);
            if (v.flags & REC_LAST) return (ssize_t)dtotal;
            continue;
        }
        if ((rc = cons_cont(r, &v)) < 0) return rc;
        if (rc == 1) continue;
        if ((rc = cons_feed(r, &v)) < 0) return rc;
        if (rc == 1) {
            size_t n;
            const void *m = ipcp_reasm_message(&r->c.reasm, &n, NULL);
            if (n > cap) { /* cannot happen: total was checked on entry; be safe anyway */
                r->c.next_len = n;
                return -IPCP_E_STATE;
            }
            if (n > 0) memcpy(dst, m, n);
            return (ssize_t)n;
        }
    }
}

size_t ipcp_ring_next_len(const struct ipcp_ring *r)
{
    return r->role == IPCP_RING_CONSUMER ? r->c.next_len : 0;
}

ssize_t ipcp_ring_peek(struct ipcp_ring *r, const void **ptr, int timeout_ms)
{
    int rc = cons_usable(r);
    if (rc < 0) return rc;
    if (ptr == NULL) return -EINVAL;
    if (r->c.peeked) {
        *ptr = r->c.peek_ptr;
        return (ssize_t)r->c.peek_len;
    }
    *ptr = NULL;
    struct waiter w = {.timeout_ms = timeout_ms};
    int direct = 0;
    for (;;) {
        struct rec_view v;
        rc = cons_next(r, &v);
        if (rc == 0) {
            rc = cons_wait(r, &w);
            if (rc == 0) continue;
            if (rc == -EPIPE && r->c.mode == MODE_REASM) rc = -IPCP_E_TRUNCATED;
            return rc;
        }
        if (rc < 0) return rc;
        if (v.flags & REC_FIRST) {
            if ((rc = cons_first(r, &v, &direct)) < 0) return rc;
            r->c.expect = v.seq + 1;
            if (v.flags & REC_LAST) { /* zero-copy: stays in the ring until release */
                r->c.peeked = 1;
                r->c.peek_ptr = v.payload;
                r->c.peek_len = v.len;
                r->c.peek_rsz = v.rsz;
                *ptr = v.payload;
                return (ssize_t)v.len;
            }
            r->c.mode = MODE_REASM;
        } else {
            if ((rc = cons_cont(r, &v)) < 0) return rc;
            if (rc == 1) continue;
        }
        if ((rc = cons_feed(r, &v)) < 0) {
            if (rc != -IPCP_E_FRAGMENT && (v.flags & REC_FIRST) && !(v.flags & REC_LAST)) {
                r->c.mode = MODE_SKIP; /* no memory for it: skip its other chunks */
                r->c.skip_seq = v.seq;
            }
            return rc;
        }
        if (rc == 1) {
            size_t n;
            r->c.peek_ptr = ipcp_reasm_message(&r->c.reasm, &n, NULL);
            r->c.peek_len = n;
            r->c.peeked = 2;
            *ptr = r->c.peek_ptr;
            return (ssize_t)n;
        }
    }
}

int ipcp_ring_release(struct ipcp_ring *r)
{
    int rc = cons_usable(r);
    if (rc < 0) return rc;
    if (!r->c.peeked) return -IPCP_E_STATE;
    if (r->c.peeked == 1) cons_consume(r, r->c.peek_rsz);
    r->c.peeked = 0;
    r->c.peek_ptr = NULL;
    r->c.peek_len = 0;
    r->c.peek_rsz = 0;
    return 0;
}

uint64_t ipcp_ring_abandoned(const struct ipcp_ring *r)
{
    return r->role == IPCP_RING_CONSUMER ? r->c.abandoned : 0;
}

/* ---- setup --------------------------------------------------------------------------------- */

static int cfg_capacity(const struct ipcp_ring_cfg *cfg, size_t *cap)
{
    size_t c = cfg != NULL && cfg->capacity != 0 ? cfg->capacity : IPCP_RING_DEFAULT_CAP;
    if (c < IPCP_RING_MIN_CAP || c > IPCP_RING_MAX_CAP || (c & (c - 1)) != 0) return -EINVAL;
    *cap = c;
    return 0;
}

static int cfg_max_msg(const struct ipcp_ring_cfg *cfg, size_t *max)
{
    size_t m = cfg != NULL && cfg->max_msg != 0 ? cfg->max_msg : IPCP_RING_DEFAULT_MAXMSG;
    if (m > IPCP_RING_MAX_MSG_LIMIT) return -EINVAL;
    *max = m;
    return 0;
}

size_t ipcp_ring_mem_size(size_t capacity)
{
    if (capacity < IPCP_RING_MIN_CAP || capacity > IPCP_RING_MAX_CAP ||
        (capacity & (capacity - 1)) != 0)
        return 0;
    return IPCP_RING_HDR_SIZE + capacity;
}

int ipcp_ring_format(void *mem, size_t size, const struct ipcp_ring_cfg *cfg)
{
    size_t cap, max;
    int rc;
    if ((rc = cfg_capacity(cfg, &cap)) < 0 || (rc = cfg_max_msg(cfg, &max)) < 0) return rc;
    if (mem == NULL || ((uintptr_t)mem & (IPCP_CACHELINE - 1)) != 0 ||
        size < IPCP_RING_HDR_SIZE + cap)
        return -EINVAL;
    struct ring_shared *s = mem;
    memset(s, 0, sizeof(*s));
    s->magic = IPCP_RING_MAGIC;
    s->version = IPCP_RING_VERSION;
    s->hdr_size = IPCP_RING_HDR_SIZE;
    s->rec_hdr = IPCP_RING_REC_HDR;
    s->capacity = (uint32_t)cap;
    s->max_msg = (uint32_t)max;
    return 0;
}

static void ring_reset(struct ipcp_ring *r)
{
    memset(r, 0, sizeof(*r));
    r->shm.fd = -1;
    r->shm.shmid = -1;
    r->peer_fd = -1;
}

/* Validates the region and opens side `role` over it. On failure the handle holds nothing
 * (the caller releases r->shm). */
static int ring_open(struct ipcp_ring *r, void *mem, size_t size, int role,
                     const struct ipcp_ring_cfg *cfg)
{
    if (role != IPCP_RING_NONE && role != IPCP_RING_PRODUCER && role != IPCP_RING_CONSUMER)
        return -EINVAL;
    if (mem == NULL || ((uintptr_t)mem & (IPCP_CACHELINE - 1)) != 0 ||
        size < IPCP_RING_HDR_SIZE + IPCP_RING_MIN_CAP)
        return -EINVAL;
    size_t own_max;
    int rc = cfg_max_msg(cfg, &own_max);
    if (rc < 0) return rc;
    size_t want_cap = cfg != NULL ? cfg->capacity : 0;

    struct ring_shared *s = mem;
    uint32_t f[6]; /* magic, version, hdr_size, rec_hdr, capacity, max_msg: read once */
    memcpy(f, s, sizeof(f));
    ipcp_compiler_barrier();
    if (f[0] != IPCP_RING_MAGIC) return -IPCP_E_BADMAGIC;
    if (f[1] != IPCP_RING_VERSION) return -IPCP_E_BADVERSION;
    uint32_t cap = f[4], hmax = f[5];
    if (f[2] != IPCP_RING_HDR_SIZE || f[3] != IPCP_RING_REC_HDR || cap < IPCP_RING_MIN_CAP ||
        cap > IPCP_RING_MAX_CAP || (cap & (cap - 1)) != 0 || size - IPCP_RING_HDR_SIZE < cap ||
        (want_cap != 0 && want_cap != cap) || hmax == 0 || hmax > own_max)
        return -IPCP_E_LAYOUT;
    /* Acquire: a producer that attached earlier may have published records already. */
    uint32_t t = ipcp_load_acquire32(&s->tail), h = ipcp_load_acquire32(&s->head);
    if (((t | h) & (IPCP_RING_ALIGN - 1)) != 0 || t - h > cap) return -IPCP_E_CORRUPT;

    r->role = role;
    r->base = mem;
    r->data = (uint8_t *)mem + IPCP_RING_HDR_SIZE;
    r->size = size;
    r->cap = cap;
    r->mask = cap - 1;
    r->max_msg = hmax;
    r->spin = cfg != NULL && cfg->spin != 0 ? cfg->spin : IPCP_RING_DEFAULT_SPIN;
    if (role == IPCP_RING_PRODUCER) {
        r->p.tail = t;
        r->p.head_seen = h;
        size_t ch = cfg != NULL && cfg->chunk != 0 ? cfg->chunk : cap / 4 - IPCP_RING_REC_HDR;
        if (ch < 16) ch = 16;
        if (ch > cap - IPCP_RING_REC_HDR) ch = cap - IPCP_RING_REC_HDR;
        r->p.chunk = ch;
    } else if (role == IPCP_RING_CONSUMER) {
        r->c.head = h;
        r->c.tail_seen = h;
        if ((rc = ipcp_reasm_init(&r->c.reasm, hmax)) < 0) return rc;
    }
    if (role != IPCP_RING_NONE) {
        uint32_t bit = role == IPCP_RING_PRODUCER ? ST_PROD_ATTACHED : ST_CONS_ATTACHED;
        uint32_t st = ipcp_load_relaxed32(&s->state);
        do {
            if (st & bit) {
                ipcp_reasm_fini(&r->c.reasm);
                return -EBUSY;
            }
        } while (!ipcp_cas32(&s->state, &st, st | bit)); /* acq_rel: one side per role */
        /* Release: the pid is complete before the peer reads it (relaxed there, once). */
        ipcp_store_release32(role == IPCP_RING_PRODUCER ? &s->prod_pid : &s->cons_pid,
                             (uint32_t)getpid());
    }
    return 0;
}

int ipcp_ring_attach_mem(struct ipcp_ring *r, void *mem, size_t size, int role,
                         const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ring_open(r, mem, size, role, cfg);
    if (rc < 0) ring_reset(r);
    return rc;
}

int ipcp_ring_init_mem(struct ipcp_ring *r, void *mem, size_t size, int role,
                       const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ipcp_ring_format(mem, size, cfg);
    if (rc < 0) return rc;
    return ipcp_ring_attach_mem(r, mem, size, role, cfg);
}

/* Both sides attached: the name has done its job. */
static void unlink_when_paired(struct ipcp_ring *r)
{
    uint32_t st = ipcp_load_acquire32(&sh(r)->state);
    if ((st & (ST_PROD_ATTACHED | ST_CONS_ATTACHED)) == (ST_PROD_ATTACHED | ST_CONS_ATTACHED))
        ipcp_shm_unlink(&r->shm);
}

static int ring_finish_open(struct ipcp_ring *r, int rc, int role, const struct ipcp_ring_cfg *cfg,
                            int fmt)
{
    if (rc == 0 && fmt) rc = ipcp_ring_format(r->shm.addr, r->shm.size, cfg);
    if (rc == 0) rc = ring_open(r, r->shm.addr, r->shm.size, role, cfg);
    if (rc < 0) {
        ipcp_shm_close(&r->shm);
        ring_reset(r);
        return rc;
    }
    r->own_shm = 1;
    return 0;
}

int ipcp_ring_create(struct ipcp_ring *r, const char *stem, int role,
                     const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    size_t cap;
    int rc = cfg_capacity(cfg, &cap);
    if (rc < 0) return rc;
    rc = ipcp_shm_create(&r->shm, "ring", stem, IPCP_RING_HDR_SIZE + cap);
    return ring_finish_open(r, rc, role, cfg, 1);
}

int ipcp_ring_attach(struct ipcp_ring *r, const char *name, int role,
                     const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ipcp_shm_attach(&r->shm, name, IPCP_RING_HDR_SIZE + IPCP_RING_MIN_CAP,
                             IPCP_RING_HDR_SIZE + IPCP_RING_MAX_CAP);
    rc = ring_finish_open(r, rc, role, cfg, 0);
    if (rc == 0) unlink_when_paired(r);
    return rc;
}

int ipcp_ring_create_memfd(struct ipcp_ring *r, int role, const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    size_t cap;
    int rc = cfg_capacity(cfg, &cap);
    if (rc < 0) return rc;
    rc = ipcp_shm_create_memfd(&r->shm, "ring", IPCP_RING_HDR_SIZE + cap);
    return ring_finish_open(r, rc, role, cfg, 1);
}

int ipcp_ring_attach_fd(struct ipcp_ring *r, int fd, int role, const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ipcp_shm_attach_fd(&r->shm, fd, IPCP_RING_HDR_SIZE + IPCP_RING_MIN_CAP,
                                IPCP_RING_HDR_SIZE + IPCP_RING_MAX_CAP);
    return ring_finish_open(r, rc, role, cfg, 0);
}

int ipcp_ring_create_sysv(struct ipcp_ring *r, key_t key, int role, const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    size_t cap;
    int rc = cfg_capacity(cfg, &cap);
    if (rc < 0) return rc;
    rc = ipcp_shm_create_sysv(&r->shm, key, IPCP_RING_HDR_SIZE + cap);
    return ring_finish_open(r, rc, role, cfg, 1);
}

int ipcp_ring_attach_sysv(struct ipcp_ring *r, int shmid, int role, const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ipcp_shm_attach_sysv(&r->shm, shmid, IPCP_RING_HDR_SIZE + IPCP_RING_MIN_CAP,
                                  IPCP_RING_HDR_SIZE + IPCP_RING_MAX_CAP);
    rc = ring_finish_open(r, rc, role, cfg, 0);
    if (rc == 0) unlink_when_paired(r);
    return rc;
}

int ipcp_ring_shmid(const struct ipcp_ring *r)
{
    return r->own_shm && r->shm.backend == IPCP_SHM_SYSV ? r->shm.shmid : -1;
}

int ipcp_ring_nattch(const struct ipcp_ring *r)
{
    return r->own_shm ? ipcp_shm_nattch(&r->shm) : -EINVAL;
}

const char *ipcp_ring_name(const struct ipcp_ring *r)
{
    return r->own_shm ? r->shm.name : "";
}

int ipcp_ring_fd(const struct ipcp_ring *r)
{
    return r->own_shm ? r->shm.fd : -1;
}

void *ipcp_ring_mem(const struct ipcp_ring *r, size_t *size)
{
    if (size != NULL) *size = r->size;
    return r->base;
}

void ipcp_ring_close(struct ipcp_ring *r)
{
    if (r->base != NULL && r->role != IPCP_RING_NONE) {
        struct ring_shared *s = sh(r);
        int prod = r->role == IPCP_RING_PRODUCER;
        /* acq_rel: every record we published (or consumed) is ordered before the close mark,
         * which the peer acquire-loads before its final re-check. */
        ipcp_fetch_or32(&s->state, prod ? ST_PROD_CLOSED : ST_CONS_CLOSED);
        futex_wake(prod ? &s->tail : &s->head); /* the peer sleeps on our index */
    }
    if (r->peer_pid != 0 && r->peer_fd >= 0) close(r->peer_fd);
    if (r->role == IPCP_RING_CONSUMER) ipcp_reasm_fini(&r->c.reasm);
    if (r->own_shm) ipcp_shm_close(&r->shm);
    ring_reset(r);
}

int ipcp_ring_valid(const struct ipcp_ring *r)
{
    if (r->role == IPCP_RING_NONE) return 1;
    if (r->role != IPCP_RING_PRODUCER && r->role != IPCP_RING_CONSUMER) return 0;
    if (r->base == NULL || r->data != r->base + IPCP_RING_HDR_SIZE) return 0;
    if (r->cap < IPCP_RING_MIN_CAP || r->cap > IPCP_RING_MAX_CAP || (r->cap & r->mask) != 0 ||
        r->mask != r->cap - 1 || r->size < IPCP_RING_HDR_SIZE + (size_t)r->cap)
        return 0;
    if (r->max_msg == 0 || r->max_msg > IPCP_RING_MAX_MSG_LIMIT || r->spin == 0) return 0;
    const uint32_t am = IPCP_RING_ALIGN - 1;
    if (r->role == IPCP_RING_PRODUCER) {
        if (((r->p.tail | r->p.head_seen) & am) != 0 || r->p.tail - r->p.head_seen > r->cap)
            return 0;
        if (r->p.chunk < 16 || r->p.chunk > r->cap - IPCP_RING_REC_HDR) return 0;
        if (r->p.reserved &&
            (r->p.res_off != (r->p.tail & r->mask) || r->p.res_len > r->cap - IPCP_RING_REC_HDR ||
             r->p.res_off + rec_size((uint32_t)r->p.res_len) > r->cap ||
             rec_size((uint32_t)r->p.res_len) > r->cap - (r->p.tail - r->p.head_seen)))
            return 0;
        return 1;
    }
    if (((r->c.head | r->c.tail_seen) & am) != 0 || r->c.tail_seen - r->c.head > r->cap) return 0;
    if (r->c.mode != MODE_IDLE && r->c.mode != MODE_REASM && r->c.mode != MODE_SKIP) return 0;
    if ((r->c.mode == MODE_REASM) != (r->c.reasm.active != 0)) return 0;
    if (!ipcp_reasm_valid(&r->c.reasm) || r->c.reasm.max_msg != r->max_msg) return 0;
    if (r->c.peeked == 1 && (r->c.peek_rsz == 0 || r->c.peek_rsz > r->c.tail_seen - r->c.head ||
                             r->c.peek_len > r->c.peek_rsz - IPCP_RING_REC_HDR))
        return 0;
    if (r->c.peeked == 2 && !r->c.reasm.done) return 0;
    if (r->c.peeked < 0 || r->c.peeked > 2) return 0;
    return 1;
}

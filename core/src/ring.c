/* ring.c - SPSC ring in shared memory with chunked messages: the data path (send, reserve,
 * commit; recv, peek, release); see ring.h and docs/ring.md.
 *
 * The protocol core here (placing records, validating what the peer wrote, chunk sequencing)
 * works on the region's memory only, so a fuzzer can drive it in-process with timeout 0. The
 * waiting layer (ring_wait.c: spin, futex, peer liveness through pidfd or kill) is only entered
 * when a call has to wait; ring_setup.c formats, attaches and closes. Shared memory is untrusted
 * throughout: each side trusts only its private copy of its own index; the other side's index
 * and every record header are read once into locals and checked before use. */
#include <errno.h>
#include <string.h>

#include "ring_impl.h"

/* ---- publishing an index ---------------------------------------------------------------- */

/* Stores our index v into *idx (a release: the records we wrote before it, or read before it, are
 * done for whoever acquire-loads it), then looks whether the peer announced that it sleeps on
 * *idx (*sleeps) and wakes it: the publisher's half of the store-buffering handshake of
 * docs/ring.md ("Blocking and wake-up"). The flag is the sleeper's alone: clearing it here could
 * erase a newer announcement made after our load, and the wake of the next publish would then be
 * skipped.
 *
 * A sleeper announces the index value it sleeps on (SLEEPS_ON | seen): only the publish that
 * moves the index off that value (prev == seen) has to wake it; a later one finds the sleeper
 * woken already, or about to see the index moved (FUTEX_WAIT returns at once when the word
 * differs), so it makes no syscall while the sleeper is on its way out (on this VM a wake-up
 * takes 50-100 us, during which every publish used to call FUTEX_WAKE again). Any other non-zero
 * flag (a peer that announces a plain 1) is woken at every publish.
 *
 * When both sides announced at attach that they issue membarrier(2) before sleeping
 * (ST_ASYM_BOTH: each side's process is registered for its barriers), the store is a plain
 * release and the flag a plain load: a sleeper's membarrier stands in for the full fence this
 * side would otherwise need between the two, so the fast path pays no fence (on x86, no locked
 * instruction waiting for the index's cache line on every message). Otherwise both are
 * sequentially consistent. A peer that sets the bits or the flag falsely only loses its own
 * wake-ups. */
static inline void ring_publish(struct ipcp_ring *r, _Atomic uint32_t *idx, uint32_t v,
                                uint32_t prev, _Atomic uint32_t *sleeps)
{
    uint32_t st = ipcp_load_relaxed32(&sh(r)->state); /* a word nobody writes while running */
    uint32_t f;
    if ((st & ST_ASYM_BOTH) == ST_ASYM_BOTH) {
        ipcp_store_release32(idx, v);
        ipcp_compiler_barrier(); /* the load stays after the store in program order */
        f = ipcp_load_relaxed32(sleeps);
    } else {
        ipcp_store_seqcst32(idx, v);
        f = ipcp_load_seqcst32(sleeps);
    }
    if (f == 0 || ((f & SLEEPS_ON) && (f & ~SLEEPS_LOW) != prev)) return;
#ifdef IPCP_RING_REVERT_WAKE_FIX /* only the fuzz target's revert check builds this */
    ipcp_store_relaxed32(sleeps, 0);
#endif
    ipcp__ring_wake(idx);
}

/* ---- producer core ----------------------------------------------------------------------- */

/* Publishes the n bytes written at the tail. */
static void prod_advance(struct ipcp_ring *r, uint32_t n)
{
    struct ring_shared *s = sh(r);
    uint32_t prev = r->p.tail;
    r->p.tail += n;
    /* the records written before it are visible to a consumer that acquire-loads tail */
    ring_publish(r, &s->tail, r->p.tail, prev, &s->cons_sleeps);
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
}

static void prod_pad(struct ipcp_ring *r, uint32_t off, uint32_t n)
{
    struct ring_rec h = {.len = n - IPCP_RING_REC_HDR, .flags = REC_MARK | REC_PAD};
    memcpy(r->data + off, &h, sizeof(h));
    prod_advance(r, n);
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
    return ipcp__ring_wait(r, &s->head, &s->prod_sleeps, r->p.head_seen, w);
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
        prod_advance(r, rsz);
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
        prod_advance(r, rec_size(n));
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
    r->p.seq++;
    r->p.reserved = 0;
    prod_advance(r, rec_size((uint32_t)len));
    return 0;
}

/* ---- consumer core ----------------------------------------------------------------------- */

struct rec_view {
    uint32_t len, flags, seq, total, rsz;
    const uint8_t *payload;
};

/* Gives the rsz bytes at head back to the producer. */
static void cons_consume(struct ipcp_ring *r, uint32_t rsz)
{
    struct ring_shared *s = sh(r);
    uint32_t prev = r->c.head;
    r->c.head += rsz;
    /* our reads of the consumed records are done before the producer, acquire-loading head,
     * reuses the space */
    ring_publish(r, &s->head, r->c.head, prev, &s->prod_sleeps);
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
    return ipcp__ring_wait(r, &s->tail, &s->cons_sleeps, r->c.tail_seen, w);
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

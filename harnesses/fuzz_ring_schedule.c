/* fuzz_ring_schedule.c - the ring's publication and sleep/wake protocol as explicit producer and
 * consumer step machines, one step per shared-memory access, interleaved as the fuzzer chooses;
 * invariants are checked after every step. This is the deterministic way to look for ordering
 * bugs, as schedule explorers such as loom and shuttle do.
 *
 * WHAT THIS IS, HONESTLY: ring.c cannot be single-stepped (a send or recv performs all of its
 * shared accesses in one call), so this file re-states its protocol as step machines, access
 * for access, in the order ring.c performs them (ring.c as of this file's writing: prod_room /
 * prod_pad / write_rec / prod_publish, cons_next / cons_consume / cons_publish, ring_wait and
 * the futex calls), over the same shared layout (ring.h: tail and cons_sleeps at
 * IPCP_RING_OFF_TAIL, head and prod_sleeps at IPCP_RING_OFF_HEAD, 16-byte record headers
 * {len, flags, seq, total} with IPCP_RING_REC_MARK, pads to the end of the data area). It checks
 * the protocol, not the compiled code: a change of order in ring.c must be mirrored here (the
 * comments name the ring.c function each step comes from). Interleavings are sequentially
 * consistent; reorderings by the CPU or compiler are TSan's and the acquire/release
 * annotations' business (ring_test under TSan), not this target's. Not modelled: chunked
 * messages, peek/release (same publication order as recv), peer death and close.
 *
 * Input: byte 0: bit 0 capacity 128 or 256; byte 1: message count (1..24); then one length byte
 * per message (0 .. capacity - 16); the rest is the schedule: each byte picks the thread that
 * takes the next step (bit 0), and for a thread blocked in futex_wait, bit 1 lets its 20 ms
 * slice expire (ring_wait's SLICE_MS) instead of stepping the other. When the schedule runs out
 * the threads alternate.
 *
 * Invariants after every step:
 *   - published tail - head <= capacity, both aligned; the producer's private tail and the
 *     consumer's private head never behind what they published;
 *   - the producer never writes into bytes the consumer has not finished reading (its write
 *     ends at most one capacity after the consumer's real position);
 *   - the consumer reads only records completely written: every record header and payload it
 *     reads is exactly the next message, in order (stale bytes would differ);
 *   - no lost wake-up: a thread never stays asleep in futex_wait on a word that has changed
 *     while the other thread is finished or asleep too (it would sleep a whole slice: latency),
 *     and never both asleep on unchanged words (a deadlock the slices would only hide);
 *   - at the end every message was received, whole and in order.
 * IPCP_FUZZ_TRACE=1 prints every step with the shared words, to read a schedule.
 * The publisher only wakes; the sleeper clears its own flag (ring.c since the lost wake-up this
 * target found: a publisher that cleared the flag could wipe a sleeper's fresh one). The input
 * that found it is kept in corpora/regressions/ring_schedule/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ipcproof/ring.h"

#define MAX_MSGS  24
#define MAX_STEPS 20000

/* Shared region, laid out as ring.h says. Offsets into `mem`. */
#define OFF_TAIL        IPCP_RING_OFF_TAIL
#define OFF_CONS_SLEEPS (IPCP_RING_OFF_TAIL + 4)
#define OFF_HEAD        IPCP_RING_OFF_HEAD
#define OFF_PROD_SLEEPS (IPCP_RING_OFF_HEAD + 4)

struct shared {
    uint8_t mem[IPCP_RING_HDR_SIZE + 256];
    uint32_t cap, mask;
};

static uint32_t ld(const struct shared *s, size_t off)
{
    uint32_t v;
    memcpy(&v, s->mem + off, 4);
    return v;
}
static void st(struct shared *s, size_t off, uint32_t v)
{
    memcpy(s->mem + off, &v, 4);
}
static uint8_t *area(struct shared *s)
{
    return s->mem + IPCP_RING_HDR_SIZE;
}

static uint32_t rec_size(uint32_t len)
{
    return IPCP_RING_REC_HDR + ((len + 15u) & ~15u);
}

/* Message i's payload byte k: distinct per message, never the fill byte 0xee. */
static uint8_t msg_byte(unsigned i, unsigned k)
{
    uint8_t b = (uint8_t)(i * 37u + k * 11u + 1u);
    return b == 0xee ? 0x11 : b;
}

/* ---- ring_wait as steps (shared by both sides) ----------------------------------------------- */

enum wstate { W_SPIN, W_SET, W_LOAD, W_FUTEX, W_BLOCKED, W_RECHECK, W_EXIT };

struct waiter {
    enum wstate ws;
    size_t word, sleeps; /* offsets: the index waited on, the flag announcing the sleep */
    uint32_t seen;
};

/* One step of ring_wait. Returns 1 when the wait is over (the caller resumes). */
FZ_NOINLINE static int wait_step(struct shared *s, struct waiter *w)
{
    switch (w->ws) {
    case W_SPIN: /* the spin loop, reduced to one relaxed look; it returns without the flag */
        if (ld(s, w->word) != w->seen) return 1;
        w->ws = W_SET;
        return 0;
    case W_SET: /* ipcp_store_seqcst32(sleeps, 1) */
        st(s, w->sleeps, 1);
        w->ws = W_LOAD;
        return 0;
    case W_LOAD: /* ipcp_load_seqcst32(word) != seen -> break */
        w->ws = ld(s, w->word) != w->seen ? W_EXIT : W_FUTEX;
        return 0;
    case W_FUTEX: /* futex_wait(word, seen): sleeps only while *word == seen (atomically) */
        w->ws = ld(s, w->word) == w->seen ? W_BLOCKED : W_RECHECK;
        return 0;
    case W_BLOCKED: /* woken by futex_wake or the slice: the caller moved us to W_RECHECK */
        return 0;
    case W_RECHECK: /* after futex_wait: relaxed load, break if changed, else loop */
        w->ws = ld(s, w->word) != w->seen ? W_EXIT : W_SET;
        return 0;
    case W_EXIT: /* ipcp_store_relaxed32(sleeps, 0) */
        st(s, w->sleeps, 0);
        return 1;
    }
    return 0;
}

/* ---- the producer: ipcp_ring_send of one-record messages ------------------------------------- */

enum pstate {
    P_NEXT,
    P_PLAN,    /* prod_room's loop after a pad: decide again, refreshed unchanged */
    P_REFRESH, /* prod_refresh: load head */
    P_PAD,     /* prod_pad: write the pad header */
    P_HDR,     /* write_rec: the record header */
    P_PAY,     /* write_rec: the payload */
    P_PUB_STORE,
    P_PUB_LOAD,
    P_PUB_WAKE,
    P_WAIT,
    P_DONE
};

struct producer {
    enum pstate pc, ret; /* ret: where a publish returns to */
    uint32_t tail, head_seen, seq;
    int refreshed;
    unsigned sent;
    uint32_t off;
    struct waiter w;
};

enum cstate {
    C_NEXT,
    C_REFRESH, /* cons_refresh: load tail */
    C_HDR,     /* cons_next: read the record header once */
    C_PAY,     /* recv: copy the payload out */
    C_PUB_STORE,
    C_PUB_LOAD,
    C_PUB_WAKE,
    C_WAIT,
    C_DONE
};

struct consumer {
    enum cstate pc, ret;
    uint32_t head, tail_seen;
    unsigned received;
    uint32_t len, rsz, off;
    struct waiter w;
};

struct world {
    struct shared s;
    unsigned n;
    uint32_t lens[MAX_MSGS];
    struct producer p;
    struct consumer c;
    unsigned lost_wakeups;
    int trace;
};

static const char *const pnames[] = {
    "next",          "plan",       "load head",        "write pad",         "write header",
    "write payload", "store tail", "load cons_sleeps", "clear cons_sleeps", "futex_wake(tail)",
    "wait",          "done"};
static const char *const cnames[] = {"next",
                                     "load tail",
                                     "read header",
                                     "read payload",
                                     "store head",
                                     "load prod_sleeps",
                                     "clear prod_sleeps",
                                     "futex_wake(head)",
                                     "wait",
                                     "done"};
static const char *const wnames[] = {"spin: load",  "set sleeps", "load (seq_cst)",
                                     "futex_wait",  "asleep",     "recheck after futex",
                                     "clear sleeps"};

/* IPCP_FUZZ_TRACE=1: one line per step, to read an interleaving the fuzzer found. */
FZ_NO_COVERAGE static void trace_step(const struct world *wd, int consumer, const char *note)
{
    if (!wd->trace) return;
    const struct waiter *w = consumer ? &wd->c.w : &wd->p.w;
    int waiting = consumer ? wd->c.pc == C_WAIT : wd->p.pc == P_WAIT;
    uint32_t t, h, cs, ps;
    memcpy(&t, wd->s.mem + OFF_TAIL, 4);
    memcpy(&h, wd->s.mem + OFF_HEAD, 4);
    memcpy(&cs, wd->s.mem + OFF_CONS_SLEEPS, 4);
    memcpy(&ps, wd->s.mem + OFF_PROD_SLEEPS, 4);
    fprintf(stderr, "%-8s %-22s %-20s | tail %4u head %4u cons_sleeps %u prod_sleeps %u%s\n",
            consumer ? "consumer" : "producer", consumer ? cnames[wd->c.pc] : pnames[wd->p.pc],
            waiting ? wnames[w->ws] : "", t, h, cs, ps, note);
}

FZ_NOINLINE static void futex_wake(struct world *wd, size_t word)
{
    if (wd->p.pc == P_WAIT && wd->p.w.ws == W_BLOCKED && wd->p.w.word == word)
        wd->p.w.ws = W_RECHECK;
    if (wd->c.pc == C_WAIT && wd->c.w.ws == W_BLOCKED && wd->c.w.word == word)
        wd->c.w.ws = W_RECHECK;
}

/* prod_room's decision, made on private state before the next shared access. */
FZ_NOINLINE static void producer_plan(struct world *wd)
{
    struct producer *p = &wd->p;
    uint32_t cap = wd->s.cap, rsz = rec_size(wd->lens[p->sent]);
    uint32_t o = p->tail & wd->s.mask, to_end = cap - o, free_ = cap - (p->tail - p->head_seen);
    p->off = o;
    if (rsz <= to_end) {
        if (rsz <= free_) {
            p->pc = P_HDR;
            return;
        }
    } else if (to_end <= free_) {
        p->pc = P_PAD;
        return;
    }
    if (!p->refreshed) {
        p->pc = P_REFRESH;
        return;
    }
    /* prod_wait -> ring_wait(head, prod_sleeps, head_seen) */
    p->pc = P_WAIT;
    p->w = (struct waiter){W_SPIN, OFF_HEAD, OFF_PROD_SLEEPS, p->head_seen};
}

/* The producer's write of [off, off + n) must not reach bytes the consumer has not read. */
FZ_NO_COVERAGE static void check_write(const struct world *wd, uint32_t at_tail, uint32_t n)
{
    uint32_t reader = wd->c.head; /* its private position: it moves on after the copy */
    FZ_CHECK(at_tail + n - reader <= wd->s.cap,
             "producer writes [%u, +%u) over unread bytes (consumer at %u, capacity %u)", at_tail,
             n, reader, wd->s.cap);
}

FZ_NOINLINE static void producer_step(struct world *wd)
{
    struct producer *p = &wd->p;
    struct shared *s = &wd->s;
    switch (p->pc) {
    case P_NEXT:
        if (p->sent == wd->n) {
            p->pc = P_DONE;
            return;
        }
        p->refreshed = 0;
        producer_plan(wd);
        return; /* a private decision; the next step makes the access */
    case P_PLAN:
        producer_plan(wd);
        return;
    case P_REFRESH: {
        uint32_t h = ld(s, OFF_HEAD); /* acquire */
        FZ_CHECK((h & 15) == 0 && p->tail - h <= s->cap &&
                     h - p->head_seen <= p->tail - p->head_seen,
                 "producer reads an impossible head %u (tail %u, head seen %u)", h, p->tail,
                 p->head_seen);
        p->head_seen = h;
        p->refreshed = 1;
        producer_plan(wd);
        return;
    }
    case P_PAD: {
        uint32_t n = s->cap - p->off;
        check_write(wd, p->tail, IPCP_RING_REC_HDR);
        uint32_t hdr[4] = {n - IPCP_RING_REC_HDR, IPCP_RING_REC_MARK | IPCP_RING_REC_PAD, 0, 0};
        memcpy(area(s) + p->off, hdr, sizeof(hdr));
        p->tail += n;
        p->pc = P_PUB_STORE;
        p->ret = P_PLAN; /* prod_room's loop: plan again (refreshed stays, as in ring.c) */
        return;
    }
    case P_HDR: {
        uint32_t len = wd->lens[p->sent];
        check_write(wd, p->tail, IPCP_RING_REC_HDR);
        uint32_t hdr[4] = {len, IPCP_RING_REC_MARK | 3u, p->seq, len};
        memcpy(area(s) + p->off, hdr, sizeof(hdr));
        p->pc = P_PAY;
        return;
    }
    case P_PAY: {
        uint32_t len = wd->lens[p->sent];
        check_write(wd, p->tail, rec_size(len));
        for (uint32_t k = 0; k < len; k++)
            area(s)[p->off + IPCP_RING_REC_HDR + k] = msg_byte(p->sent, k);
        p->tail += rec_size(len);
        p->seq++;
        p->sent++;
        p->pc = P_PUB_STORE;
        p->ret = P_NEXT;
        return;
    }
    case P_PUB_STORE: /* prod_publish: store tail (seq_cst) */
        st(s, OFF_TAIL, p->tail);
        p->pc = P_PUB_LOAD;
        return;
    case P_PUB_LOAD: /* ... then load cons_sleeps (seq_cst) */
        p->pc = ld(s, OFF_CONS_SLEEPS) ? P_PUB_WAKE : p->ret; /* only wakes */
        return;
    case P_PUB_WAKE:
        futex_wake(wd, OFF_TAIL);
        p->pc = p->ret;
        return;
    case P_WAIT:
        if (wait_step(s, &p->w)) {
            p->refreshed = 0; /* send's loop calls prod_room afresh */
            producer_plan(wd);
        }
        return;
    case P_DONE:
        return;
    }
}

FZ_NOINLINE static void consumer_step(struct world *wd)
{
    struct consumer *c = &wd->c;
    struct shared *s = &wd->s;
    switch (c->pc) {
    case C_NEXT:
        if (c->received == wd->n) {
            c->pc = C_DONE;
            return;
        }
        c->pc = c->tail_seen == c->head ? C_REFRESH : C_HDR;
        return;
    case C_REFRESH: {
        uint32_t t = ld(s, OFF_TAIL); /* acquire */
        uint32_t avail = t - c->head;
        FZ_CHECK((t & 15) == 0 && avail <= s->cap && avail >= c->tail_seen - c->head,
                 "consumer reads an impossible tail %u (head %u)", t, c->head);
        c->tail_seen = t;
        if (avail == 0) { /* cons_wait -> ring_wait(tail, cons_sleeps, tail_seen) */
            c->pc = C_WAIT;
            c->w = (struct waiter){W_SPIN, OFF_TAIL, OFF_CONS_SLEEPS, c->tail_seen};
        } else {
            c->pc = C_HDR;
        }
        return;
    }
    case C_HDR: {
        c->off = c->head & s->mask;
        uint32_t h[4];
        memcpy(h, area(s) + c->off, sizeof(h)); /* read once */
        FZ_CHECK((h[1] & ~0xffu) == IPCP_RING_REC_MARK,
                 "consumer at %u reads a record header that was not written (flags %#x)", c->head,
                 h[1]);
        if (h[1] & IPCP_RING_REC_PAD) {
            FZ_CHECK(c->off != 0 && s->cap - c->off <= c->tail_seen - c->head,
                     "a pad at offset %u not published whole", c->off);
            c->head += s->cap - c->off; /* cons_consume */
            c->pc = C_PUB_STORE;
            c->ret = C_NEXT;
            return;
        }
        uint32_t want = wd->lens[c->received];
        FZ_CHECK(h[0] == want && h[2] == c->received && h[3] == want &&
                     (h[1] & 0xffu) == IPCP_CHUNK_WHOLE,
                 "consumer reads header {len %u seq %u total %u} for message %u of %u bytes", h[0],
                 h[2], h[3], c->received, want);
        c->len = h[0];
        c->rsz = rec_size(h[0]);
        FZ_CHECK(c->rsz <= c->tail_seen - c->head, "record of %u bytes not published whole",
                 c->rsz);
        c->pc = C_PAY;
        return;
    }
    case C_PAY:
        for (uint32_t k = 0; k < c->len; k++)
            FZ_CHECK(area(s)[c->off + IPCP_RING_REC_HDR + k] == msg_byte(c->received, k),
                     "message %u byte %u differs: read before it was written, or overwritten",
                     c->received, k);
        c->head += c->rsz; /* cons_consume, after the copy */
        c->received++;
        c->pc = C_PUB_STORE;
        c->ret = C_NEXT;
        return;
    case C_PUB_STORE: /* cons_publish: store head (seq_cst) */
        st(s, OFF_HEAD, c->head);
        c->pc = C_PUB_LOAD;
        return;
    case C_PUB_LOAD:
        c->pc = ld(s, OFF_PROD_SLEEPS) ? C_PUB_WAKE : c->ret; /* only wakes */
        return;
    case C_PUB_WAKE:
        futex_wake(wd, OFF_HEAD);
        c->pc = c->ret;
        return;
    case C_WAIT:
        if (wait_step(s, &c->w)) c->pc = C_NEXT; /* recv's loop: cons_next again */
        return;
    case C_DONE:
        return;
    }
}

static int p_blocked(const struct world *wd)
{
    return wd->p.pc == P_WAIT && wd->p.w.ws == W_BLOCKED;
}
static int c_blocked(const struct world *wd)
{
    return wd->c.pc == C_WAIT && wd->c.w.ws == W_BLOCKED;
}

/* Lost wake-ups and deadlocks: a sleeper that nobody will wake. Returns 1 when the sleeper's
 * slice has to expire for the run to go on. */
FZ_NO_COVERAGE static int check_sleepers(struct world *wd)
{
    int pb = p_blocked(wd), cb = c_blocked(wd);
    int p_idle = pb || wd->p.pc == P_DONE, c_idle = cb || wd->c.pc == C_DONE;
    if (!(p_idle && c_idle) || !(pb || cb)) return 0;
    int p_lost = pb && ld(&wd->s, OFF_HEAD) != wd->p.w.seen;
    int c_lost = cb && ld(&wd->s, OFF_TAIL) != wd->c.w.seen;
    FZ_CHECK(p_lost || c_lost || !(pb && cb),
             "deadlock: producer waits for room and consumer for data (tail %u head %u)",
             ld(&wd->s, OFF_TAIL), ld(&wd->s, OFF_HEAD));
    FZ_CHECK(p_lost || c_lost, "a thread sleeps on an unchanged index while the other is done");
    wd->lost_wakeups++;
    FZ_CHECK(0,
             "lost wake-up: the %s sleeps in futex_wait although the %s changed (tail %u head "
             "%u, %s sleeps flag %u): it would sleep a whole 20 ms slice",
             p_lost ? "producer" : "consumer", p_lost ? "head" : "tail", ld(&wd->s, OFF_TAIL),
             ld(&wd->s, OFF_HEAD), p_lost ? "prod" : "cons",
             ld(&wd->s, p_lost ? OFF_PROD_SLEEPS : OFF_CONS_SLEEPS));
    return 1;
}

FZ_NO_COVERAGE static void check_world(const struct world *wd)
{
    uint32_t t = ld(&wd->s, OFF_TAIL), h = ld(&wd->s, OFF_HEAD);
    FZ_CHECK(((t | h) & 15) == 0 && t - h <= wd->s.cap, "published tail %u head %u", t, h);
    FZ_CHECK(wd->p.tail - t <= wd->s.cap && wd->c.head - h <= wd->s.cap &&
                 wd->c.head - h < 0x80000000u && wd->p.tail - t < 0x80000000u,
             "a private index behind its published value");
    FZ_CHECK(wd->c.received <= wd->p.sent, "received %u of %u sent", wd->c.received, wd->p.sent);
}

FZ_NO_COVERAGE int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    struct fz_in in = fz_in_make(data, size);
    static struct world wd;
    memset(&wd, 0, sizeof(wd));
    const char *tr = getenv("IPCP_FUZZ_TRACE");
    wd.trace = tr != NULL && tr[0] == '1';
    wd.s.cap = (fz_u8(&in) & 1) ? 256 : 128;
    wd.s.mask = wd.s.cap - 1;
    memset(area(&wd.s), 0xee, wd.s.cap);
    wd.n = 1 + fz_u8(&in) % MAX_MSGS;
    for (unsigned i = 0; i < wd.n; i++)
        wd.lens[i] = fz_u8(&in) % (wd.s.cap - IPCP_RING_REC_HDR + 1);
    wd.p.pc = P_NEXT;
    wd.c.pc = C_NEXT;
    unsigned steps = 0, turn = 0;
    while ((wd.p.pc != P_DONE || wd.c.pc != C_DONE) && steps++ < MAX_STEPS) {
        uint8_t b = fz_left(&in) ? fz_u8(&in) : (uint8_t)(turn++ & 1);
        int pick_c = b & 1, expire = (b >> 1) & 1;
        int pb = p_blocked(&wd), cb = c_blocked(&wd);
        if (check_sleepers(&wd)) { /* nobody will wake it: its slice expires */
            if (pb) wd.p.w.ws = W_RECHECK;
            if (cb) wd.c.w.ws = W_RECHECK;
            continue;
        }
        if (pick_c ? (cb || wd.c.pc == C_DONE) : (pb || wd.p.pc == P_DONE)) {
            if (expire && (pick_c ? cb : pb)) { /* the 20 ms slice ends: it looks again */
                trace_step(&wd, pick_c, "   <- slice expires");
                if (pick_c)
                    wd.c.w.ws = W_RECHECK;
                else
                    wd.p.w.ws = W_RECHECK;
                continue;
            }
            pick_c = !pick_c; /* that one cannot move: the other steps */
        }
        trace_step(&wd, pick_c, "");
        if (pick_c)
            consumer_step(&wd);
        else
            producer_step(&wd);
        check_world(&wd);
    }
    FZ_CHECK(steps <= MAX_STEPS, "no progress after %u steps (sent %u, received %u of %u)",
             MAX_STEPS, wd.p.sent, wd.c.received, wd.n);
    FZ_CHECK(wd.c.received == wd.n, "received %u of %u", wd.c.received, wd.n);
    return 0;
}

/* chanworker.c - the endpoints of a channel case: the producer and the consumer (worker.c has
 * what every worker shares and the frame around them; its header comment tells what each
 * endpoint publishes, and in which order). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipcproof/err.h"
#include "checker.h"
#include "spawn.h"
#include "stress.h"

#define CONSUMER_TIMEOUT_MS 50
#define TORN_STOP           1000

/* Messages sent by the producers other than `self` plus messages received: whether the channel
 * kept moving while one producer waited (unfair to it, or a slow consumer's back-pressure) or
 * stopped (starvation). */
static uint64_t others_moved(const struct st_case *cs, uint32_t self)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < cs->producers + cs->consumers; i++)
        if (i != self) n += atomic_load_explicit(&cs->slots[i].ops, memory_order_relaxed);
    return n;
}

/* A producer's send() is done (or given up): the wait ends, and when it was the longest, how
 * many messages moved through the channel after its first timeout is recorded with it. */
static void send_wait_end(struct st_case *cs, uint32_t self, struct st_waitmark *m, uint64_t seq)
{
    int counted = m->others_set;
    uint64_t before = m->others_at;
    if (st_wait_end(&cs->slots[self], m, seq))
        atomic_store_explicit(&cs->slots[self].gap_others,
                              counted ? others_moved(cs, self) - before : 0, memory_order_relaxed);
}

/* A buffer whose last byte is followed by an inaccessible page (and whose first byte follows
 * one): an endpoint that writes past the buffer it was handed dies of SIGSEGV, reported as the
 * crash it is, instead of corrupting what the harness keeps next to it. */
struct guarded {
    void *base;
    size_t len;
};

static void *guarded_alloc(struct guarded *g, size_t cap)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t need = (cap + 15u) & ~(size_t)15u; /* 16-byte aligned start */
    size_t data = (need + pg - 1) / pg * pg;
    g->len = data + 2 * pg;
    g->base = mmap(NULL, g->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->base == MAP_FAILED) {
        g->base = NULL;
        return NULL;
    }
    if (mprotect((char *)g->base + pg, data, PROT_READ | PROT_WRITE) < 0) {
        munmap(g->base, g->len);
        g->base = NULL;
        return NULL;
    }
    return (char *)g->base + pg + data - need;
}

static void guarded_free(struct guarded *g)
{
    if (g->base != NULL) munmap(g->base, g->len);
    g->base = NULL;
}

static int producers_all_ended(const struct st_case *cs)
{
    for (uint32_t i = 0; i < cs->producers; i++) {
        const struct st_slot *s = &cs->slots[i];
        if (!atomic_load_explicit(&s->done, memory_order_acquire) &&
            !atomic_load_explicit(&s->dead, memory_order_acquire))
            return 0;
    }
    return 1;
}

/* Every producer is closing its endpoint, or has ended: the channel may report end-of-stream
 * (-EPIPE) from now on. */
static int producers_closing(const struct st_case *cs)
{
    for (uint32_t i = 0; i < cs->producers; i++) {
        const struct st_slot *s = &cs->slots[i];
        if (atomic_load_explicit(&s->phase, memory_order_acquire) < ST_PH_CLOSE &&
            !atomic_load_explicit(&s->dead, memory_order_acquire))
            return 0;
    }
    return 1;
}

/* Every message recorded as sent has been delivered once (or more were delivered). */
static int all_delivered(const struct st_case *cs)
{
    uint64_t sent = 0, got = 0;
    for (uint32_t i = 0; i < cs->producers; i++)
        sent += atomic_load_explicit(&cs->slots[i].ops, memory_order_acquire);
    for (uint32_t i = 0; i < cs->consumers; i++)
        got += atomic_load_explicit(&cs->slots[cs->producers + i].unique, memory_order_acquire);
    return got >= sent;
}

/* ---- producer ------------------------------------------------------------------------------- */

void st_run_producer(struct st_worker *w, void *ep)
{
    struct st_case *cs = w->cs;
    const struct st_config *c = cs->cfg;
    struct st_slot *s = &cs->slots[w->index];
    uint64_t limit = c->messages ? c->messages : cs->seq_cap;
    if (limit > cs->seq_cap) limit = cs->seq_cap;
    /* a private copy of the pool: messages are sent from it in place (see payload.c) */
    uint8_t *arena = malloc(cs->pl.pool_len);
    if (arena == NULL) {
        st_record_err(s, -ENOMEM, ST_PH_SEND, 0);
        return;
    }
    memcpy(arena, cs->pl.pool, cs->pl.pool_len);
    struct st_restore undo = {0};
    struct st_waitmark wm;
    st_wait_begin(s, &wm);
    /* when the clock ends the run, a few more messages (0..12, from the seed): the producer
     * stops where the seed says, not where the stop found it - mostly blocked at the end of one
     * of the protocol's own batches, which hid a close() that loses the last partial batch */
    uint64_t extra = splitmix64_mix(c->seed ^ 0x7461696cull ^ w->index) % 13;
    uint64_t seq = 0;
    for (; seq < limit && !st_aborted(cs); seq++) {
        if (st_stopped(cs) && limit > seq + extra) limit = seq + extra;
        if (seq >= limit) break;
        st_delay_us(c->producer_delay_us);
        size_t len;
        st_payload_restore(&undo);
        const void *msg = st_payload_prepare(&cs->pl, arena, w->rindex, seq, &len, cs->verify,
                                             st_now_ns(), &undo);
        int crash_now = st_crash_victim(cs, w->index) && seq == cs->kill_at;
        if (crash_now) st_crash_begin(cs, s, w->index); /* this send(), retries included */
        for (;;) {
            st_set_phase(s, ST_PH_SEND, seq);
            int r = cs->chan->send(ep, msg, len, ST_OP_TIMEOUT_MS);
            if (crash_now && (r == 0 || !st_retryable(r))) st_crash_end(cs, s);
            if (r == 0) {
                /* release: the record "seqs [0, seq] sent" is published after the send
                 * returned; consumers and the checker read it with acquire */
                atomic_store_explicit(&s->ops, seq + 1, memory_order_release);
                atomic_fetch_add_explicit(&s->bytes, len, memory_order_relaxed);
                atomic_store_explicit(&s->last_ns, st_now_ns(), memory_order_relaxed);
                send_wait_end(cs, w->index, &wm, seq);
                break;
            }
            if (st_retryable(r)) {
                st_count_retry(s, r);
                if (!wm.others_set) {
                    wm.others_at = others_moved(cs, w->index);
                    wm.others_set = 1;
                }
                if (st_stopped(cs)) goto out;
                continue;
            }
            st_record_err(s, r, ST_PH_SEND, seq);
            goto out;
        }
    }
out:
    if (seq >= limit)
        atomic_store_explicit(&s->quota_met, 1, memory_order_relaxed);
    else
        send_wait_end(cs, w->index, &wm, seq); /* it gave up waiting: that wait counts too */
    atomic_store_explicit(&s->end_ns, st_now_ns(), memory_order_relaxed);
    free(arena);
}

/* ---- consumer ------------------------------------------------------------------------------- */

/* sched mode: time is virtual and passes only while every thread waits or spins, so a receive
 * that returns a message ST_SCHED_STALL_MS after it was both sent and asked for slept through it:
 * every thread waited that long while the message was there (a lost wake-up that only the
 * receive's timeout slice repaired; in real time a latency spike that passes unnoticed). */
static void judge_stall(struct st_worker *w, const struct st_msginfo *mi, int64_t asked,
                        int64_t now)
{
    int64_t since = mi->send_ns > asked ? mi->send_ns : asked;
    if (st_sched_mode(w->cs) && mi->send_ns > 0 &&
        now - since >= (int64_t)ST_SCHED_STALL_MS * 1000000)
        st_add_violation(&w->cs->slots[w->index], ST_V_STARVATION, mi->producer, mi->seq,
                         (uint64_t)(now - since), 0);
}

/* One received message: checked, counted, recorded. `asked`: when its recv() began. */
static void take_message(struct st_worker *w, const uint8_t *buf, size_t len, uint64_t *last,
                         int64_t asked)
{
    struct st_case *cs = w->cs;
    struct st_slot *s = &cs->slots[w->index];
    struct st_msginfo mi;
    int64_t now = st_now_ns();
    int v = st_payload_check(&cs->pl, buf, len, cs->producers, cs->seq_cap, cs->verify, &mi);
    atomic_fetch_add_explicit(&s->ops, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes, len, memory_order_relaxed);
    atomic_store_explicit(&s->last_ns, now, memory_order_relaxed);
    if (v != ST_MSG_OK) {
        st_add_violation(s, ST_V_TORN, mi.producer, mi.seq, len, (uint64_t)mi.why);
        return;
    }
    if (mi.send_ns > 0 && now >= mi.send_ns)
        s->hist[stats_hist_bucket((uint64_t)(now - mi.send_ns))]++;
    judge_stall(w, &mi, asked, now);
    if (!cs->verify) {
        atomic_fetch_add_explicit(&s->unique, 1, memory_order_release);
        return;
    }
    uint64_t bit = 1ull << (mi.seq % 64);
    _Atomic uint64_t *word = &cs->bitmaps[(size_t)mi.producer * cs->bitmap_words + mi.seq / 64];
    /* relaxed: the bitmap only has to be exact once every worker has ended (the checker reads
     * it after reaping); the fetch-or makes two deliveries of one seq collide either way */
    uint64_t old = atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
    if (old & bit) {
        st_add_violation(s, ST_V_DUPLICATE, mi.producer, mi.seq, 0, 0);
        return;
    }
    atomic_fetch_add_explicit(&s->unique, 1, memory_order_release);
    uint64_t prev = last[mi.producer];
    if (cs->fifo && prev != UINT64_MAX && mi.seq < prev)
        st_add_violation(s, ST_V_REORDER, mi.producer, mi.seq, prev, 0);
    if (prev == UINT64_MAX || mi.seq > prev) last[mi.producer] = mi.seq;
}

/* Receives until every message recorded as sent has arrived and the channel is drained (a
 * receive timed out, or the channel reports its end); then anything that still arrives has been
 * checked too: a duplicate of the last message is not missed. */
void st_run_consumer(struct st_worker *w, void *ep)
{
    struct st_case *cs = w->cs;
    const struct st_config *c = cs->cfg;
    struct st_slot *s = &cs->slots[w->index];
    size_t cap = cs->pl.max_size;
    struct guarded gb = {0}, gl = {0};
    uint8_t *buf = guarded_alloc(&gb, cap);
    uint64_t *last = guarded_alloc(&gl, sizeof(uint64_t) * cs->producers);
    if (buf == NULL || last == NULL) {
        st_record_err(s, -ENOMEM, ST_PH_RECV, 0);
        goto out;
    }
    for (uint32_t i = 0; i < cs->producers; i++)
        last[i] = UINT64_MAX;
    int64_t idle_since = 0, drain_since = 0;
    unsigned since_check = 0;
    uint64_t n = 0;
    while (!st_aborted(cs)) {
        st_set_phase(s, ST_PH_RECV, n);
        int crash_now = st_crash_victim(cs, w->index) && n == cs->kill_at &&
                        atomic_load_explicit(&s->crash_seen, memory_order_relaxed) == 0;
        if (crash_now) st_crash_begin(cs, s, w->index);
        int64_t asked = st_now_ns();
        ssize_t r = cs->chan->recv(ep, buf, cap, CONSUMER_TIMEOUT_MS);
        if (crash_now) st_crash_end(cs, s);
        if (r >= 0) {
            n++;
            take_message(w, buf, (size_t)r, last, asked);
            /* a channel that delivers this much garbage will not recover; stop reading so the
             * run ends (the producers stop once no consumer is left) */
            if (atomic_load_explicit(&s->vcount[ST_V_TORN], memory_order_relaxed) >= TORN_STOP)
                break;
            idle_since = 0;
            if (drain_since == 0 && ++since_check >= 64) {
                since_check = 0;
                if (producers_all_ended(cs) && all_delivered(cs)) drain_since = st_now_ns();
            }
            /* messages keep coming although everything was delivered: a channel replaying
             * garbage; what it delivered so far has been checked */
            if (drain_since && st_now_ns() - drain_since > (int64_t)ST_DRAIN_MS * 1000000) break;
            /* slow while the producers run; once they stop, drain at full speed (a slow consumer
             * behind a deep buffer would otherwise outlast the case) */
            if (!st_stopped(cs) && drain_since == 0) st_delay_us(c->consumer_delay_us);
            continue;
        }
        if (st_retryable((int)r)) {
            atomic_fetch_add_explicit(&s->retries, 1, memory_order_relaxed);
            if (drain_since) break; /* drained */
            if (producers_all_ended(cs)) {
                /* a dead consumer's messages never come: do not wait for them either */
                if (all_delivered(cs) || st_consumer_lost(cs)) {
                    drain_since = st_now_ns(); /* one more timeout with nothing: drained */
                    continue;
                }
                int64_t now = st_now_ns();
                if (idle_since == 0)
                    idle_since = now;
                else if (now - idle_since > (int64_t)ST_DRAIN_MS * 1000000)
                    break; /* what is missing now is lost */
            }
            continue;
        }
        if (r == -EMSGSIZE) {
            /* the run never sends more than cap bytes: the channel merged or corrupted data */
            st_add_violation(s, ST_V_TORN, 0, n, cap, ST_TW_EMSGSIZE);
            break;
        }
        /* end of stream: the producers closed (-EPIPE), or, for a protocol that only notices
         * processes, they closed and their processes exited (-IPCP_E_PEERDEAD) */
        if ((r == -EPIPE || r == -IPCP_E_PEERDEAD) && producers_closing(cs)) break;
        st_record_err(s, (int)r, ST_PH_RECV, n);
        break;
    }
out:
    atomic_store_explicit(&s->end_ns, st_now_ns(), memory_order_relaxed);
    guarded_free(&gb);
    guarded_free(&gl);
}

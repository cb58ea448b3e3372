/* fuzz_lock_schedule.c - the mq token lock (mqlock.h) with N clients and the READY/OK handoff
 * (handoff.h), stepped under an interleaving the fuzzer chooses.
 *
 * The decisions are the library's own pure functions: ipcp_mqlock_on_token, _on_timeout,
 * _on_unlock and the token and word codecs; ipcp_handoff_tx_* and ipcp_handoff_rx_* with the
 * message codec. Around them this file models what the I/O layer does, one step per queue or
 * shared-word access, in the order mqlock.c and handoff.c do it (ipcp_mqlock_lock: receive or
 * time out, take_token, after_timeout, recover; ipcp_mqlock_unlock: CAS, then send;
 * ipcp_handoff_send/recv: drain OKs, next, write, READY; READY, copy, verify, done, OK). The
 * queues are FIFOs of the encoded messages, the owner word and the acquisition counter plain
 * words, time a counter; a process dies when the fuzzer says, anywhere, losing what it held in
 * hand. If mqlock.c or handoff.c change their order of accesses, this model must follow.
 *
 * IPCP_FUZZ_TRACE=1 prints every event of the mq token lock model with the word and the queue.
 *
 * Input: byte 0 bit 0 chooses the model.
 * mq token lock: byte 1: clients 2..4; then events, each one byte e: e % 8 in 0..4 steps client
 *   (e >> 3) % N; 5 kills it (wherever it is: holding, between its CAS and its send, with a
 *   token just received...); 6 starts a new process in a dead client's place, under the same
 *   pid (a reused pid: only the start time differs) or another; 7 lets (e >> 3) ms pass.
 *   Recovery time 10 ms, receive slices 2 ms, queue depth 4 (mqlock's defaults scaled down).
 * Invariants after every step:
 *   - never two holders: at most one live client holds the lock, and the word names it;
 *   - never two tokens: tokens of the word's epoch - in the queue, just received, held, or
 *     on their way back - number at most one (on_token never sees a duplicate);
 *   - a live holder's unlock CAS always succeeds (nobody recovers from a live holder);
 *   - lock() reports a death (returns 1) exactly when the previous holder died holding it;
 *   - recovery after a death: at the end, the live clients (a new one if none is left) take
 *     turns, time passing only by their receive timeouts; each must acquire the lock within a
 *     bounded number of steps, also when a live process reuses the dead holder's pid
 *     (corpora/regressions/lock_schedule/ keeps the input that found that bug).
 * READY/OK handoff: byte 1: slots 1..4 and slot size 8, 16 or 64 bytes; byte 2: messages
 *   (1..32), then events: e % 8 in 0..2 steps the sender, 3..5 the receiver, 6 puts a forged OK
 *   into the OK queue (a replayed OK, another slot or seq, garbage), 7 a forged READY.
 *   Invariants after every step: tx/rx_valid; no slot is written again before its OK (the
 *   receiver has copied it out: a READY for it is neither queued nor being read); a forged
 *   message is refused with the documented error and changes nothing; the receiver gets every
 *   message, in order, with its bytes; the queues never overflow (at most nslots each).
 *   A perfect forgery (exactly the message the peer is about to send) is not injected: no
 *   protocol can tell it from the real one. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ipcproof/err.h"
#include "ipcproof/handoff.h"
#include "ipcproof/mqlock.h"

/* ======================================== mq token lock ========================================
 */

#define NCLI        4
#define DEPTH       4
#define RECOVERY_MS 10
#define CHECK_MS    2
#define CAS_RETRIES 64
#define MAX_EVENTS  4000
#define LIVE_STEPS  20000
#define MS          1000000LL

enum cstate {
    CL_IDLE,
    CL_RECV,        /* mq_timedreceive, one slice */
    CL_TAKE_READ,   /* take_token: decode, load the word */
    CL_TAKE_CAS,    /* on_token, CAS (retried with the reloaded word) */
    CL_TIMEOUT,     /* after_timeout: load the word */
    CL_TIMEOUT_ACQ, /* ... load the acquisition counter, on_timeout */
    CL_DRAIN,       /* recover: receive without waiting */
    CL_REC_CAS,     /* recover: CAS seen -> desired */
    CL_HOLD,
    CL_UNLOCK_CAS,
    CL_UNLOCK_SEND,
    CL_DEAD
};

struct client {
    uint32_t pid;
    uint64_t start;
    int alive;
    enum cstate st;
    uint8_t msg[IPCP_MQLOCK_TOKEN_SIZE]; /* a message received, not yet decided on */
    struct ipcp_mqlock_token tok;
    uint64_t seen;     /* take_token's own load of the word */
    uint64_t rec_seen; /* after_timeout's load, which recover() CASes from */
    uint64_t desired, acq_seen;
    int died, from_recover, drains, tries;
    uint16_t epoch; /* held */
    struct ipcp_mqlock_watch watch;
    unsigned acquired;
};

struct lockworld {
    int n;
    uint8_t q[DEPTH][IPCP_MQLOCK_TOKEN_SIZE];
    int qn;
    uint64_t word, acq;
    int64_t now;
    struct client c[NCLI];
    int pending_death; /* a holder died holding: the next acquisition must say so */
    uint32_t next_pid;
};

static int q_pop(struct lockworld *w, uint8_t out[IPCP_MQLOCK_TOKEN_SIZE])
{
    if (w->qn == 0) return 0;
    memcpy(out, w->q[0], IPCP_MQLOCK_TOKEN_SIZE);
    memmove(w->q[0], w->q[1], (size_t)(w->qn - 1) * IPCP_MQLOCK_TOKEN_SIZE);
    w->qn--;
    return 1;
}

static int q_push(struct lockworld *w, const uint8_t m[IPCP_MQLOCK_TOKEN_SIZE])
{
    if (w->qn == DEPTH) return 0;
    memcpy(w->q[w->qn++], m, IPCP_MQLOCK_TOKEN_SIZE);
    return 1;
}

static int alive_fn(void *ctx, uint32_t pid, uint32_t start)
{
    const struct lockworld *w = ctx;
    for (int i = 0; i < w->n; i++)
        if (w->c[i].alive && (w->c[i].pid & ((1u << IPCP_MQLOCK_PID_BITS) - 1)) == pid &&
            (uint32_t)(w->c[i].start & IPCP_MQLOCK_START_MASK) == start)
            return 1;
    return 0;
}

static struct ipcp_mqlock_self self_of(const struct client *c)
{
    struct ipcp_mqlock_self s = {c->pid, c->start};
    return s;
}

static uint16_t word_epoch(uint64_t w)
{
    struct ipcp_mqlock_owner o;
    ipcp_mqlock_word_unpack(w, &o);
    return o.epoch;
}

/* The client acquired (by a token or a recovery). */
FZ_NO_COVERAGE static void acquired(struct lockworld *w, struct client *c, uint16_t epoch, int died)
{
    FZ_CHECK(died == w->pending_death,
             "client %u acquired reporting died=%d, but the previous holder %s", c->pid, died,
             w->pending_death ? "died holding it" : "did not die holding it");
    w->pending_death = 0;
    c->st = CL_HOLD;
    c->epoch = epoch;
    c->acquired++;
}

/* One step of client i: one queue or word access, as mqlock.c makes them. */
FZ_NOINLINE static void client_step(struct lockworld *w, struct client *c)
{
    struct ipcp_mqlock_self self = self_of(c);
    switch (c->st) {
    case CL_IDLE: /* ipcp_mqlock_lock begins (the handle's watch goes on counting) */
        c->st = CL_RECV;
        return;
    case CL_RECV:
        if (q_pop(w, c->msg)) {
            c->from_recover = 0;
            c->st = CL_TAKE_READ;
        } else { /* the slice passes with nothing received */
            w->now += CHECK_MS * MS;
            c->st = CL_TIMEOUT;
        }
        return;
    case CL_TAKE_READ: {
        int rc = ipcp_mqlock_token_decode(c->msg, sizeof(c->msg), &c->tok);
        FZ_CHECK(rc == 0, "a token in the queue does not decode: %d", rc);
        c->seen = w->word; /* acquire */
        c->tries = 0;
        c->st = CL_TAKE_CAS;
        return;
    }
    case CL_TAKE_CAS: {
        uint64_t desired;
        int act = ipcp_mqlock_on_token(&c->tok, c->seen, &self, &desired);
        FZ_CHECK(act != -IPCP_E_TOKEN,
                 "client %u received a second valid token of epoch %u (word %#llx)", c->pid,
                 c->tok.epoch, (unsigned long long)c->seen);
        FZ_CHECK(act == IPCP_MQLOCK_TAKE || act == IPCP_MQLOCK_DROP,
                 "on_token returned %d for word %#llx", act, (unsigned long long)c->seen);
        if (act == IPCP_MQLOCK_DROP) { /* stale: discarded */
            c->st = c->from_recover ? CL_DRAIN : CL_RECV;
            return;
        }
        if (w->word == c->seen) { /* CAS succeeds */
            w->word = desired;
            w->acq++;
            acquired(w, c, c->tok.epoch, 0);
            return;
        }
        c->seen = w->word; /* the CAS reloads it */
        FZ_CHECK(++c->tries < CAS_RETRIES, "client %u: the word keeps changing", c->pid);
        return;
    }
    case CL_TIMEOUT:
        c->rec_seen = w->word; /* acquire */
        c->st = CL_TIMEOUT_ACQ;
        return;
    case CL_TIMEOUT_ACQ: {
        c->acq_seen = w->acq;
        int died = 0;
        int act = ipcp_mqlock_on_timeout(&c->watch, c->rec_seen, c->acq_seen, w->now,
                                         (int64_t)RECOVERY_MS * MS, &self, alive_fn, w, &c->desired,
                                         &died);
        FZ_CHECK(act == IPCP_MQLOCK_WAIT || act == IPCP_MQLOCK_RECOVER,
                 "on_timeout returned %d for word %#llx", act, (unsigned long long)c->rec_seen);
        if (act == IPCP_MQLOCK_WAIT) {
            c->st = CL_RECV;
            return;
        }
        c->died = died;
        c->drains = 0;
        c->st = CL_DRAIN;
        return;
    }
    case CL_DRAIN:
        if (c->drains > DEPTH) { /* tokens keep arriving: not lost */
            ipcp_mqlock_watch_reset(&c->watch);
            c->st = CL_RECV;
            return;
        }
        if (q_pop(w, c->msg)) { /* one receive of recover()'s loop */
            c->drains++;
            c->from_recover = 1;
            c->st = CL_TAKE_READ;
            return;
        }
        c->st = CL_REC_CAS;
        return;
    case CL_REC_CAS:
        if (w->word == c->rec_seen) {
            w->word = c->desired;
            w->acq++;
            acquired(w, c, word_epoch(c->desired), c->died);
        } else {
            ipcp_mqlock_watch_reset(&c->watch);
            c->st = CL_RECV;
        }
        return;
    case CL_HOLD:
        c->st = CL_UNLOCK_CAS;
        return;
    case CL_UNLOCK_CAS: {
        uint64_t expected, desired;
        ipcp_mqlock_on_unlock(c->epoch, &self, &expected, &desired);
        FZ_CHECK(w->word == expected,
                 "client %u unlocks epoch %u but the word changed under it: %#llx, want %#llx",
                 c->pid, c->epoch, (unsigned long long)w->word, (unsigned long long)expected);
        w->word = desired;
        c->st = CL_UNLOCK_SEND;
        return;
    }
    case CL_UNLOCK_SEND: {
        uint8_t tok[IPCP_MQLOCK_TOKEN_SIZE], old[IPCP_MQLOCK_TOKEN_SIZE];
        ipcp_mqlock_token_encode(tok, c->epoch, c->pid);
        for (int i = 0; i <= DEPTH + 1 && !q_push(w, tok); i++) { /* full: drop one */
            struct ipcp_mqlock_token t;
            if (!q_pop(w, old)) continue;
            FZ_CHECK(ipcp_mqlock_token_decode(old, sizeof(old), &t) == 0, "foreign message");
            FZ_CHECK(t.epoch != c->epoch, "a duplicate of the token being returned (epoch %u)",
                     c->epoch);
        }
        c->st = CL_IDLE;
        return;
    }
    case CL_DEAD:
        return;
    }
}

/* Tokens of the word's epoch anywhere; live holders. */
FZ_NO_COVERAGE static void check_lock(const struct lockworld *w)
{
    uint16_t e = word_epoch(w->word);
    FZ_CHECK(ipcp_mqlock_word_valid(w->word), "impossible word %#llx", (unsigned long long)w->word);
    int tokens = 0, holders = 0;
    for (int i = 0; i < w->qn; i++) {
        struct ipcp_mqlock_token t;
        FZ_CHECK(ipcp_mqlock_token_decode(w->q[i], IPCP_MQLOCK_TOKEN_SIZE, &t) == 0, "foreign");
        tokens += t.epoch == e;
    }
    for (int i = 0; i < w->n; i++) {
        const struct client *c = &w->c[i];
        if (!c->alive) continue;
        if (c->st == CL_TAKE_READ || c->st == CL_TAKE_CAS) {
            struct ipcp_mqlock_token t;
            if (ipcp_mqlock_token_decode(c->msg, sizeof(c->msg), &t) == 0) tokens += t.epoch == e;
        }
        if (c->st == CL_HOLD || c->st == CL_UNLOCK_CAS) {
            holders++;
            tokens += c->epoch == e;
            struct ipcp_mqlock_self s = self_of(c);
            uint64_t expected, desired;
            ipcp_mqlock_on_unlock(c->epoch, &s, &expected, &desired);
            FZ_CHECK(w->word == expected,
                     "holder %u (epoch %u) is not the one the word names "
                     "(%#llx)",
                     c->pid, c->epoch, (unsigned long long)w->word);
        }
        if (c->st == CL_UNLOCK_SEND) tokens += c->epoch == e;
    }
    FZ_CHECK(holders <= 1, "%d live holders", holders);
    FZ_CHECK(tokens <= 1, "%d valid tokens of epoch %u", tokens, e);
}

static const char *const state_names[] = {"idle",           "receive",       "take: read word",
                                          "take: CAS",      "timeout: word", "timeout: acq",
                                          "recover: drain", "recover: CAS",  "hold",
                                          "unlock: CAS",    "unlock: send",  "dead"};

/* IPCP_FUZZ_TRACE=1: one line per event with the word and the queued tokens' epochs. */
FZ_NO_COVERAGE static void trace_event(const struct lockworld *w, const char *what, int i)
{
    static int trace = -1;
    if (trace < 0) {
        const char *e = getenv("IPCP_FUZZ_TRACE");
        trace = e != NULL && e[0] == '1';
    }
    if (!trace) return;
    struct ipcp_mqlock_owner o;
    ipcp_mqlock_word_unpack(w->word, &o);
    fprintf(stderr,
            "t=%3lldms %-7s client %d (pid %u start %llu) %-15s | word e%u %s pid %u "
            "start %u acq %llu | queue",
            (long long)(w->now / MS), what, i, w->c[i].pid, (unsigned long long)w->c[i].start,
            state_names[w->c[i].st], o.epoch, o.released ? "released" : "held", o.pid, o.start,
            (unsigned long long)w->acq);
    for (int k = 0; k < w->qn; k++) {
        struct ipcp_mqlock_token t;
        if (ipcp_mqlock_token_decode(w->q[k], IPCP_MQLOCK_TOKEN_SIZE, &t) == 0)
            fprintf(stderr, " e%u", t.epoch);
    }
    fputc('\n', stderr);
}

FZ_NO_COVERAGE static void run_lock(struct fz_in *in)
{
    static struct lockworld w;
    memset(&w, 0, sizeof(w));
    w.n = 2 + fz_u8(in) % 3;
    w.next_pid = 1000;
    for (int i = 0; i < w.n; i++) {
        w.c[i].pid = w.next_pid++;
        w.c[i].start = 5000 + (uint64_t)i;
        w.c[i].alive = 1;
        w.c[i].st = CL_IDLE;
        ipcp_mqlock_watch_reset(&w.c[i].watch); /* ipcp_mqlock_open */
    }
    w.word = ipcp_mqlock_word_initial();
    uint8_t first[IPCP_MQLOCK_TOKEN_SIZE];
    ipcp_mqlock_token_encode(first, 1, 1);
    q_push(&w, first);
    uint64_t starts = 9000;

    for (unsigned ev = 0; ev < MAX_EVENTS && fz_left(in) > 0; ev++) {
        uint8_t e = fz_u8(in);
        struct client *c = &w.c[(e >> 3) % w.n];
        static const char *const kinds[8] = {"step", "step", "step",    "step",
                                             "step", "kill", "respawn", "time"};
        trace_event(&w, kinds[e & 7], (int)(c - w.c));
        switch (e & 7) {
        case 5: /* dies where it stands */
            if (!c->alive) break;
            if (c->st == CL_HOLD || c->st == CL_UNLOCK_CAS) w.pending_death = 1;
            c->alive = 0;
            c->st = CL_DEAD;
            break;
        case 6: /* a new process in its place */
            if (c->alive) break;
            if ((e >> 6) & 1) c->pid = w.next_pid++; /* else the dead one's pid, reused */
            c->start = starts++;
            c->alive = 1;
            c->st = CL_IDLE;
            ipcp_mqlock_watch_reset(&c->watch); /* its own handle */
            break;
        case 7:
            w.now += (int64_t)(e >> 3) * MS;
            break;
        default:
            if (c->alive) client_step(&w, c);
            break;
        }
        check_lock(&w);
    }

    /* Recovery after deaths: every live client gets the lock within a bounded number of steps,
     * time passing only through receive timeouts. */
    int any = 0;
    for (int i = 0; i < w.n; i++)
        any |= w.c[i].alive;
    if (!any) {
        w.c[0] = (struct client){.pid = w.next_pid++, .start = starts++, .alive = 1};
        w.c[0].st = CL_IDLE;
        ipcp_mqlock_watch_reset(&w.c[0].watch);
    }
    unsigned base[NCLI];
    for (int i = 0; i < w.n; i++)
        base[i] = w.c[i].acquired;
    for (unsigned step = 0;; step++) {
        int done = 1;
        for (int i = 0; i < w.n; i++)
            if (w.c[i].alive && (w.c[i].acquired == base[i] || w.c[i].st != CL_IDLE)) done = 0;
        if (done) break;
        if (step == LIVE_STEPS)
            for (int i = 0; i < w.n; i++)
                fprintf(stderr, "client %d: pid %u start %llu %s, state %d, acquired %u\n", i,
                        w.c[i].pid, (unsigned long long)w.c[i].start,
                        w.c[i].alive ? "alive" : "dead", (int)w.c[i].st, w.c[i].acquired);
        FZ_CHECK(step < LIVE_STEPS,
                 "no progress: after %u steps some live client still waits for the lock (word "
                 "%#llx, %d tokens queued, time %lld ms)",
                 step, (unsigned long long)w.word, w.qn, (long long)(w.now / MS));
        struct client *c = &w.c[step % (unsigned)w.n];
        if (!c->alive || (c->acquired != base[c - w.c] && c->st == CL_IDLE)) continue;
        trace_event(&w, "final", (int)(c - w.c));
        client_step(&w, c);
        check_lock(&w);
    }
}

/* ======================================== READY/OK handoff =====================================
 */

#define MAX_MSGS 32

enum sstate { S_IDLE, S_DRAIN, S_NEXT, S_WAIT_OK, S_WRITE, S_SEND, S_DONE };
enum rstate { R_WAIT, R_COPY, R_DONE_OK, R_FINISHED };

struct hmq {
    uint8_t m[IPCP_HANDOFF_MAX_SLOTS][IPCP_HANDOFF_MSG_SIZE];
    int n, cap;
};

struct handworld {
    uint32_t nslots, slot_size;
    uint8_t slots[4][64];
    struct hmq ready, ok;
    struct ipcp_handoff_tx tx;
    struct ipcp_handoff_rx rx;
    unsigned nmsg, sent, received;
    uint32_t lens[MAX_MSGS];
    enum sstate ss;
    enum rstate rs;
    uint32_t cur_slot;
    uint8_t ready_msg[IPCP_HANDOFF_MSG_SIZE];
    uint8_t copy[64];
    struct ipcp_handoff_msg rmsg;
    int unread[4]; /* a READY for the slot is queued or its copy not taken yet */
    uint8_t last_ok[IPCP_HANDOFF_MSG_SIZE];
    int have_last_ok;
};

static uint8_t hbyte(unsigned msg, unsigned k)
{
    return (uint8_t)(msg * 29u + k * 7u + 3u);
}

static int hq_push(struct hmq *q, const uint8_t *m)
{
    if (q->n == q->cap) return 0;
    memcpy(q->m[q->n++], m, IPCP_HANDOFF_MSG_SIZE);
    return 1;
}

static int hq_pop(struct hmq *q, uint8_t *m)
{
    if (q->n == 0) return 0;
    memcpy(m, q->m[0], IPCP_HANDOFF_MSG_SIZE);
    memmove(q->m[0], q->m[1], (size_t)(q->n - 1) * IPCP_HANDOFF_MSG_SIZE);
    q->n--;
    return 1;
}

/* An OK or READY taken from a queue: real, or a forgery the machine must refuse. Returns the
 * machine's result. */
FZ_NOINLINE static int sender_take_ok(struct handworld *h, const uint8_t *m)
{
    struct ipcp_handoff_tx before = h->tx;
    uint32_t slot = 99;
    int rc = ipcp_handoff_tx_on_ok(&h->tx, m, IPCP_HANDOFF_MSG_SIZE, &slot);
    if (rc < 0) {
        FZ_CHECK(rc == -EBADMSG || rc == -IPCP_E_STATE || rc == -IPCP_E_SEQUENCE,
                 "tx_on_ok refused with %d (%s)", rc, ipcp_errname(rc));
        FZ_CHECK(memcmp(&before, &h->tx, sizeof(before)) == 0, "a refused OK changed the sender");
    } else {
        FZ_CHECK(!h->unread[slot], "slot %u freed by an OK while its READY is unread", slot);
    }
    return rc;
}

FZ_NOINLINE static void sender_step(struct handworld *h)
{
    uint8_t m[IPCP_HANDOFF_MSG_SIZE];
    uint64_t seq;
    switch (h->ss) {
    case S_IDLE:
        h->ss = h->sent == h->nmsg ? S_DONE : S_DRAIN;
        return;
    case S_DRAIN: /* drain_oks: whatever OKs are there, without waiting */
        if (hq_pop(&h->ok, m))
            sender_take_ok(h, m);
        else
            h->ss = S_NEXT;
        return;
    case S_NEXT: {
        int rc = ipcp_handoff_tx_next(&h->tx, &h->cur_slot, &seq);
        FZ_CHECK(rc == 0 || rc == -EAGAIN, "tx_next: %d", rc);
        h->ss = rc == 0 ? S_WRITE : S_WAIT_OK;
        return;
    }
    case S_WAIT_OK: /* blocks until an OK comes */
        if (hq_pop(&h->ok, m)) {
            sender_take_ok(h, m);
            h->ss = S_NEXT;
        }
        return;
    case S_WRITE: {
        uint32_t s = h->cur_slot, len = h->lens[h->sent];
        FZ_CHECK(!h->unread[s], "slot %u written again before the receiver copied it out", s);
        for (uint32_t k = 0; k < len; k++)
            h->slots[s][k] = hbyte(h->sent, k);
        int rc = ipcp_handoff_tx_written(&h->tx, s, len, ipcp_handoff_checksum(h->slots[s], len),
                                         h->ready_msg);
        FZ_CHECK_RC(rc, 0, "tx_written");
        h->ss = S_SEND;
        return;
    }
    case S_SEND:
        FZ_CHECK(hq_push(&h->ready, h->ready_msg), "the READY queue is full (%d slots)",
                 h->ready.cap);
        h->unread[h->cur_slot] = 1;
        FZ_CHECK_RC(ipcp_handoff_tx_sent(&h->tx, h->cur_slot), 0, "tx_sent");
        h->sent++;
        h->ss = S_IDLE;
        return;
    case S_DONE:
        if (hq_pop(&h->ok, m)) sender_take_ok(h, m); /* flush */
        return;
    }
}

FZ_NOINLINE static void receiver_step(struct handworld *h)
{
    uint8_t m[IPCP_HANDOFF_MSG_SIZE], ok[IPCP_HANDOFF_MSG_SIZE];
    switch (h->rs) {
    case R_WAIT: {
        if (!hq_pop(&h->ready, m)) return; /* blocks */
        struct ipcp_handoff_rx before = h->rx;
        int rc = ipcp_handoff_rx_on_ready(&h->rx, m, sizeof(m), &h->rmsg);
        if (rc < 0) { /* a forgery: refused, nothing changed; the receiver goes on */
            FZ_CHECK(rc == -EBADMSG || rc == -IPCP_E_SEQUENCE || rc == -IPCP_E_STATE,
                     "rx_on_ready refused with %d (%s)", rc, ipcp_errname(rc));
            FZ_CHECK(memcmp(&before, &h->rx, sizeof(before)) == 0,
                     "a refused READY changed the receiver");
            return;
        }
        h->rs = R_COPY;
        return;
    }
    case R_COPY: { /* read the slot once, then check the copy */
        uint32_t s = h->rmsg.slot, len = h->rmsg.len;
        memcpy(h->copy, h->slots[s], len);
        h->unread[s] = 0;
        FZ_CHECK_RC(ipcp_handoff_rx_verify(&h->rx, h->copy, len), 0, "rx_verify of a real READY");
        FZ_CHECK(len == h->lens[h->received], "message %u: %u bytes, want %u", h->received, len,
                 h->lens[h->received]);
        for (uint32_t k = 0; k < len; k++)
            FZ_CHECK(h->copy[k] == hbyte(h->received, k), "message %u byte %u differs", h->received,
                     k);
        FZ_CHECK_RC(ipcp_handoff_rx_done(&h->rx, ok), 0, "rx_done");
        memcpy(h->last_ok, ok, sizeof(ok));
        h->have_last_ok = 1;
        h->received++;
        h->rs = R_DONE_OK;
        return;
    }
    case R_DONE_OK:
        FZ_CHECK(hq_push(&h->ok, h->last_ok), "the OK queue is full (%d slots)", h->ok.cap);
        h->rs = h->received == h->nmsg ? R_FINISHED : R_WAIT;
        return;
    case R_FINISHED:
        return;
    }
}

/* A forged message for a queue, unless the machine could ever accept it: a message of the
 * queue's own type with a sequence number not yet used would be a perfect forgery (now or
 * later), which no protocol can tell from the real one. Forgeries take at most 4 places. */
FZ_NO_COVERAGE static void forge(struct handworld *h, struct fz_in *in, int ok)
{
    uint8_t sel = fz_u8(in), m[IPCP_HANDOFF_MSG_SIZE];
    struct ipcp_handoff_msg f = {.type = ok ? IPCP_HANDOFF_OK : IPCP_HANDOFF_READY,
                                 .slot = fz_u8(in) % (h->nslots + 1),
                                 .seq = fz_u8(in),
                                 .len = ok ? 0 : fz_u8(in) % (h->slot_size + 2),
                                 .sum = 0};
    switch (sel & 3) {
    case 0: /* a replay of the last OK (or of a READY already read) */
        if (ok && h->have_last_ok) {
            memcpy(m, h->last_ok, sizeof(m));
            break;
        }
        f.seq = h->rx.expect_seq ? h->rx.expect_seq - 1 : 0;
        f.slot = (uint32_t)(f.seq % h->nslots);
        ipcp_handoff_msg_encode(&f, m);
        break;
    case 1:
        ipcp_handoff_msg_encode(&f, m);
        break;
    case 2: /* the other type */
        f.type = ok ? IPCP_HANDOFF_READY : IPCP_HANDOFF_OK;
        ipcp_handoff_msg_encode(&f, m);
        break;
    default: { /* garbage */
        size_t got;
        const uint8_t *b = fz_bytes(in, sizeof(m), &got);
        memset(m, 0, sizeof(m));
        memcpy(m, b, got);
        break;
    }
    }
    struct ipcp_handoff_msg d;
    uint8_t own = ok ? IPCP_HANDOFF_OK : IPCP_HANDOFF_READY;
    uint64_t past = ok ? h->tx.acked : h->rx.expect_seq; /* seqs below this are used up */
    if (ipcp_handoff_msg_decode(m, sizeof(m), &d) == 0 && d.type == own && d.seq >= past) return;
    struct hmq *q = ok ? &h->ok : &h->ready;
    if (q->n < 4) hq_push(q, m);
}

FZ_NO_COVERAGE static void run_handoff(struct fz_in *in)
{
    static struct handworld h;
    memset(&h, 0, sizeof(h));
    uint8_t g = fz_u8(in);
    static const uint32_t sizes[3] = {8, 16, 64};
    h.nslots = 1 + (g & 3);
    h.slot_size = sizes[((g >> 2) & 3) % 3];
    /* Room for the protocol's messages and a few forgeries; overflow by real ones is checked. */
    h.ready.cap = (int)h.nslots + 4;
    h.ok.cap = (int)h.nslots + 4;
    h.nmsg = 1 + fz_u8(in) % MAX_MSGS;
    for (unsigned i = 0; i < h.nmsg; i++)
        h.lens[i] = (uint32_t)((i * 13u + g) % (h.slot_size + 1));
    FZ_CHECK_RC(ipcp_handoff_tx_init(&h.tx, h.nslots, h.slot_size), 0, "tx_init");
    FZ_CHECK_RC(ipcp_handoff_rx_init(&h.rx, h.nslots, h.slot_size), 0, "rx_init");
    unsigned steps = 0;
    for (; steps < MAX_EVENTS && fz_left(in) > 0; steps++) {
        uint8_t e = fz_u8(in);
        int k = e & 7;
        if (k <= 2)
            sender_step(&h);
        else if (k <= 5)
            receiver_step(&h);
        else
            forge(&h, in, k == 6);
        FZ_CHECK(ipcp_handoff_tx_valid(&h.tx), "tx invalid");
        FZ_CHECK(ipcp_handoff_rx_valid(&h.rx), "rx invalid");
        FZ_CHECK(ipcp_handoff_tx_inflight(&h.tx) <= h.nslots, "more than nslots in flight");
    }
    /* Then both sides run to the end. */
    for (unsigned i = 0; h.rs != R_FINISHED || h.ss != S_DONE || h.ok.n > 0; i++) {
        FZ_CHECK(i < 20000, "handoff stuck: sent %u received %u of %u", h.sent, h.received, h.nmsg);
        if (i & 1)
            sender_step(&h);
        else
            receiver_step(&h);
        FZ_CHECK(ipcp_handoff_tx_valid(&h.tx) && ipcp_handoff_rx_valid(&h.rx), "invalid");
    }
    FZ_CHECK(h.received == h.nmsg && ipcp_handoff_tx_inflight(&h.tx) == 0,
             "received %u of %u, %u in flight", h.received, h.nmsg,
             ipcp_handoff_tx_inflight(&h.tx));
}

FZ_NO_COVERAGE int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    struct fz_in in = fz_in_make(data, size);
    if (fz_u8(&in) & 1)
        run_handoff(&in);
    else
        run_lock(&in);
    return 0;
}

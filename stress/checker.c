/* checker.c - the verdict of one case; see checker.h.
 *
 * Exits: an endpoint process may end only through the harness's own paths: exit 0 or
 * ST_EXIT_SETUP after the harness marked its slot done. Any other end (a signal nobody sent on
 * purpose, a sanitizer's exit status, or exit(0) called by the protocol from inside send() or
 * recv()) is a `crash`. A ThreadSanitizer report (exit 66) is a `race` only when the supervisor
 * says it can be trusted (the plugin was built with -fsanitize=thread).
 *
 * Channels: torn, duplicate and reorder come from the consumers' own records; loss compares
 * each producer's "seqs [0, N) sent" with the delivery bitmap; "whole message or nothing"
 * looks for the seq whose send() did not return 0. Locks: the owner word and the counter.
 * Every case: errors returned by the protocol, starvation (an endpoint that kept timing out for
 * a long share of the case while its peers ran), and the results area's own consistency. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "checker.h"
#include "exec.h"
#include "ipcproof/err.h"

#define TSAN_EXIT     66
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const char *st_endpoint_name(const struct st_case *cs, uint32_t i, char *buf, size_t cap)
{
    if (i >= cs->nworkers) {
        snprintf(buf, cap, "endpoint %" PRIu32, i);
        return buf;
    }
    const struct st_worker *w = &cs->w[i];
    const char *r = w->role == ST_ROLE_PRODUCER   ? "producer"
                    : w->role == ST_ROLE_CONSUMER ? "consumer"
                                                  : "worker";
    snprintf(buf, cap, "%s %" PRIu32, r, w->rindex);
    return buf;
}

/* "-EPIPE (Broken pipe)", or the value itself when nobody knows the code. */
static const char *errstr(int err, char *buf, size_t cap)
{
    const char *name = ipcp_errname(err);
    if (strcmp(name, "E?") == 0)
        snprintf(buf, cap, "%d (not an errno value or IPCP_E_* code)", err);
    else
        snprintf(buf, cap, "-%s (%s)", name, ipcp_strerror(err));
    return buf;
}

int st_tolerated_after_kill(int err)
{
    switch (-err) {
    case EPIPE:
    case ECONNRESET:
    case ETIMEDOUT:
    case ENOTCONN:
    case IPCP_E_PEERDEAD:
    case IPCP_E_TRUNCATED:
    case IPCP_E_SEQUENCE:
    case IPCP_E_BROKEN:
    case IPCP_E_FRAGMENT:
    case EIO:
    case EBADMSG:
    case ECONNABORTED:
    case ESHUTDOWN:
    case EOWNERDEAD:
    case ENOTRECOVERABLE:
        return 1;
    default:
        return 0;
    }
}

static uint64_t ld(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}

static uint64_t sum_ops(const struct st_case *cs, uint32_t from, uint32_t n)
{
    uint64_t t = 0;
    for (uint32_t i = from; i < from + n && i < cs->nworkers; i++)
        t += ld(&cs->slots[i].ops);
    return t;
}

static int slot_done(const struct st_slot *s)
{
    return atomic_load_explicit(&s->done, memory_order_acquire) != 0;
}

/* Was process pi killed on purpose (watchdog, kill fault)? */
static int killed_on_purpose(const struct st_case *cs, const struct st_outcome *o, uint32_t pi)
{
    return o->watchdog_killed || o->killed_by_fault == pi + 1 ||
           (!cs->is_chan && cs->kill_victim == pi + 1);
}

/* ---- how the endpoint processes ended ------------------------------------------------------- */

static void check_exits(const struct st_case *cs, const struct st_outcome *o, struct st_report *rep)
{
    int thread = cs->cfg->mode != ST_MODE_PROCESS; /* one process runs every endpoint */
    for (uint32_t i = 0; i < o->nproc; i++) {
        if (!o->reaped[i]) continue;
        int st = o->status[i];
        char who[96], nm[48];
        if (thread)
            snprintf(who, sizeof(who), "thread-mode child (pid %d)", (int)o->pids[i]);
        else
            snprintf(who, sizeof(who), "%s (pid %d)", st_endpoint_name(cs, i, nm, sizeof(nm)),
                     (int)o->pids[i]);
        /* a fatal signal the worker recorded before its sanitizer turned it into an exit */
        uint32_t sig = 0;
        for (uint32_t k = 0; k < cs->nworkers && !sig; k++)
            if (thread || k == i)
                sig = atomic_load_explicit(&cs->slots[k].crash_sig, memory_order_relaxed);
        if (sig >= 65) sig = 0; /* not a signal number: ignore the garbage */
        if (WIFEXITED(st) && sig != 0) {
            st_report_add(rep, ST_V_CRASH, 1, "%s died of signal %u (%s) (exit status %d)", who,
                          sig, strsignal((int)sig), WEXITSTATUS(st));
            continue;
        }
        if (WIFEXITED(st)) {
            int code = WEXITSTATUS(st);
            if (code == ST_EXIT_SCHED && cs->cfg->mode == ST_MODE_SCHED && cs->sched_rep &&
                cs->sched_rep->status >= ST_SCHED_DEADLOCK)
                continue; /* the deadlock or race the scheduler found, from its report */
            if (code == 0 || code == ST_EXIT_SETUP) {
                /* the harness marks its slot(s) done just before it exits: anything else that
                 * exits with these statuses is the protocol calling exit() */
                uint32_t notdone = UINT32_MAX;
                for (uint32_t k = 0; k < cs->nworkers && notdone == UINT32_MAX; k++)
                    if ((thread || k == i) && !slot_done(&cs->slots[k])) notdone = k;
                if (notdone == UINT32_MAX) continue;
                const struct st_slot *s = &cs->slots[notdone];
                uint32_t ph = atomic_load_explicit(&s->phase, memory_order_relaxed);
                char where[96] = "";
                if (thread)
                    snprintf(where, sizeof(where), " while %s was",
                             st_endpoint_name(cs, notdone, nm, sizeof(nm)));
                st_report_add(rep, ST_V_CRASH, 1,
                              "%s exited with status %d%s inside %s #%" PRIu64
                              ": the protocol ended the process (exit() called from its code?)",
                              who, code, where, st_phase_name((int)ph),
                              atomic_load_explicit(&s->cur_seq, memory_order_relaxed));
                continue;
            }
            if (code == TSAN_EXIT && o->race_trusted)
                st_report_add(rep, ST_V_RACE, 1,
                              "%s exited with status 66: a ThreadSanitizer report", who);
            else if (code == TSAN_EXIT)
                st_report_note(rep,
                               "%s exited with status 66 (a ThreadSanitizer report) that is not a "
                               "verdict: %s",
                               who, o->race_why);
            else
                st_report_add(rep, ST_V_CRASH, 1, "%s exited with status %d%s", who, code,
                              code == 1 ? " (a sanitizer report?)" : "");
        } else if (WIFSIGNALED(st)) {
            int s = WTERMSIG(st);
            if (s == SIGKILL && killed_on_purpose(cs, o, i)) continue;
            st_report_add(rep, ST_V_CRASH, 1, "%s killed by signal %d (%s)%s", who, s, strsignal(s),
                          WCOREDUMP(st) ? ", core dumped" : "");
        }
    }
}

/* ---- errors returned by the protocol -------------------------------------------------------- */

static void check_errors(const struct st_case *cs, const struct st_outcome *o, int killed,
                         struct st_report *rep)
{
    int64_t kill_ns = atomic_load_explicit(&cs->sh->kill_ns, memory_order_relaxed);
    const int robust_lock = !cs->is_chan && (cs->proto_flags & IPCP_LOCK_ROBUST) != 0;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        const struct st_slot *s = &cs->slots[i];
        int err = atomic_load_explicit(&s->err, memory_order_acquire);
        if (err == 0) continue;
        /* an exec endpoint's -EPROTO stands for its program's failure, reported by check_exec */
        if (cs->exec && err == -EPROTO && atomic_load(&s->exec_why) != ST_EX_NONE) continue;
        uint32_t ph = atomic_load_explicit(&s->err_op, memory_order_relaxed);
        char who[48], eb[96];
        st_endpoint_name(cs, i, who, sizeof(who));
        int64_t at = atomic_load_explicit(&s->err_ns, memory_order_relaxed);
        /* a lock that claims IPCP_LOCK_ROBUST promised to survive a holder's death: an error
         * after one (ENOTRECOVERABLE: nobody made the mutex consistent) is its failure */
        if (robust_lock && (killed || o->crash_ns) && at >= (killed ? kill_ns : o->crash_ns)) {
            st_report_add(rep, ST_V_ERROR, 1,
                          "%s: %s #%" PRIu64 " returned %s after a holder died: a lock that "
                          "claims IPCP_LOCK_ROBUST must go on working (made consistent again)",
                          who, st_phase_name((int)ph),
                          atomic_load_explicit(&s->err_seq, memory_order_relaxed),
                          errstr(err, eb, sizeof(eb)));
            continue;
        }
        if (killed && at >= kill_ns && st_tolerated_after_kill(err)) {
            st_report_note(rep, "%s: %s returned %s after the kill fault", who,
                           st_phase_name((int)ph), ipcp_errname(err));
            continue;
        }
        if (o->crash_ns && at >= o->crash_ns - 100000000) { /* a consequence of the crash */
            st_report_note(rep, "%s: %s returned %s after a peer crashed", who,
                           st_phase_name((int)ph), ipcp_errname(err));
            continue;
        }
        st_report_add(
            rep, ST_V_ERROR, 1, "%s: %s #%" PRIu64 " returned %s", who, st_phase_name((int)ph),
            atomic_load_explicit(&s->err_seq, memory_order_relaxed), errstr(err, eb, sizeof(eb)));
    }
}

/* ---- channels ------------------------------------------------------------------------------- */

static uint64_t popcount_range(const _Atomic uint64_t *bm, uint64_t n, uint64_t *first_missing)
{
    uint64_t have = 0;
    *first_missing = UINT64_MAX;
    for (uint64_t w = 0; w * 64 < n; w++) {
        uint64_t v = atomic_load_explicit(&bm[w], memory_order_relaxed);
        uint64_t bits = n - w * 64 >= 64 ? 64 : n - w * 64;
        uint64_t mask = bits == 64 ? ~0ull : ((1ull << bits) - 1);
        have += (uint64_t)__builtin_popcountll(v & mask);
        if (*first_missing == UINT64_MAX && (v & mask) != mask)
            *first_missing = w * 64 + (uint64_t)__builtin_ctzll(~v & mask);
    }
    return have;
}

static void check_consumer_records(const struct st_case *cs, struct st_report *rep)
{
    static const int kinds[] = {ST_V_TORN, ST_V_DUPLICATE, ST_V_REORDER, ST_V_STARVATION};
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        int kind = kinds[k];
        for (uint32_t i = cs->producers; i < cs->nworkers; i++) {
            const struct st_slot *s = &cs->slots[i];
            uint64_t n = ld(&s->vcount[kind]);
            if (n == 0) continue;
            const struct st_vfirst *f = &s->vfirst[kind];
            char who[48];
            st_endpoint_name(cs, i, who, sizeof(who));
            if (kind == ST_V_TORN)
                st_report_add(rep, kind, n,
                              "%s: message of %" PRIu64 " bytes (header says producer %" PRIu32
                              " seq %" PRIu64 "): %s",
                              who, f->a, f->producer, f->seq, st_torn_why_text(f->b));
            else if (kind == ST_V_DUPLICATE)
                st_report_add(rep, kind, n,
                              "%s: producer %" PRIu32 " seq %" PRIu64 " delivered again", who,
                              f->producer, f->seq);
            else if (kind == ST_V_REORDER)
                st_report_add(rep, kind, n,
                              "%s: producer %" PRIu32 " seq %" PRIu64 " arrived after seq %" PRIu64,
                              who, f->producer, f->seq, f->a);
            else /* sched mode only (worker.c, stall_judge) */
                st_report_add(rep, kind, n,
                              "%s: producer %" PRIu32 " seq %" PRIu64 " arrived %.1f ms of virtual "
                              "time after it was sent and its receive() began: every thread "
                              "waited that long while it was there to take (a lost wake-up that "
                              "only a timeout repaired)",
                              who, f->producer, f->seq, (double)f->a / 1e6);
        }
    }
}

/* One past the highest bit set in the first n bits of bm (0: none). */
static uint64_t last_set(const _Atomic uint64_t *bm, uint64_t n)
{
    for (uint64_t w = (n + 63) / 64; w-- > 0;) {
        uint64_t x = atomic_load_explicit(&bm[w], memory_order_relaxed);
        if (w == n / 64) x &= (n % 64) ? (1ull << (n % 64)) - 1 : 0;
        if (x) return w * 64 + 64 - (uint64_t)__builtin_clzll(x);
    }
    return 0;
}

int st_consumer_lost(const struct st_case *cs)
{
    uint32_t killed = atomic_load(&cs->sh->killed);
    if (killed > cs->nworkers) killed = 0;
    int64_t kill_ns = atomic_load_explicit(&cs->sh->kill_ns, memory_order_relaxed);
    /* a consumer that died or failed took what it had read with it; one that stopped on the
     * death of a producer (a tolerated error after the kill) must have received everything the
     * dead producer had sent before */
    for (uint32_t i = cs->producers; i < cs->nworkers; i++) {
        const struct st_slot *s = &cs->slots[i];
        int err = atomic_load_explicit(&s->err, memory_order_acquire);
        int tolerated = killed != 0 && killed <= cs->producers && st_tolerated_after_kill(err) &&
                        atomic_load_explicit(&s->err_ns, memory_order_relaxed) >= kill_ns;
        if (atomic_load(&s->dead) || (err != 0 && !tolerated)) return 1;
    }
    return 0;
}

static void check_loss(const struct st_case *cs, uint32_t killed, struct st_report *rep)
{
    int consumer_lost = st_consumer_lost(cs);
    if (!cs->verify) return;
    if (atomic_load(&cs->sh->violated)) {
        st_report_note(rep, "loss not checked: the schedule stopped at its first violation");
        return;
    }
    if (cs->sched_rep != NULL && cs->sched_rep->status >= ST_SCHED_DEADLOCK) {
        st_report_note(rep, "loss not checked: the schedule ended in a %s",
                       cs->sched_rep->status == ST_SCHED_RACE ? "data race" : "deadlock");
        return;
    }
    if (consumer_lost) {
        st_report_note(rep, "loss not checked: a consumer died or failed, taking what it had "
                            "read with it");
        return;
    }
    uint64_t lost = 0;
    char first[256] = "";
    for (uint32_t p = 0; p < cs->producers; p++) {
        const struct st_slot *s = &cs->slots[p];
        uint64_t sent = ld(&s->ops);
        if (sent > cs->seq_cap) sent = cs->seq_cap; /* untrusted: never past the bitmap */
        const _Atomic uint64_t *bm = &cs->bitmaps[(size_t)p * cs->bitmap_words];
        /* an exec producer's messages were written to its stdin: when its program was killed
         * or failed, those after the last one that arrived may never have left it; it sends in
         * order, so what it did send is every message up to the last that arrived */
        if (cs->exec && (killed == p + 1 || atomic_load(&s->exec_why) != ST_EX_NONE))
            sent = last_set(bm, sent);
        uint64_t fm;
        uint64_t have = popcount_range(bm, sent, &fm);
        if (have < sent) {
            if (lost == 0)
                snprintf(first, sizeof(first),
                         "producer %" PRIu32 ": %" PRIu64 " of %" PRIu64
                         " messages whose send() returned 0 never arrived, the first seq %" PRIu64,
                         p, sent - have, sent, fm);
            lost += sent - have;
        }
        /* a seq past the recorded ones arrived: fine for the killed producer (its send had not
         * returned yet), otherwise send() failed or timed out but delivered */
        if (killed == p + 1 || atomic_load(&s->dead) || sent >= cs->seq_cap) continue;
        if (atomic_load(&s->err) != 0) continue;
        uint64_t w = atomic_load_explicit(&bm[sent / 64], memory_order_relaxed);
        if (w & (1ull << (sent % 64)))
            st_report_add(rep, ST_V_ERROR, 1,
                          "producer %" PRIu32 ": seq %" PRIu64
                          " arrived although send() did not return 0 for it (\"whole message or "
                          "nothing\")",
                          p, sent);
    }
    if (lost) st_report_add(rep, ST_V_LOSS, lost, "%s", first);
}

/* The consumers count each first delivery as they set its bit: the two must agree when nobody
 * was killed mid-way. If they do not, something wrote into ipcproof's memory. */
static void check_consistency(const struct st_case *cs, const struct st_outcome *o,
                              struct st_report *rep)
{
    if (!cs->is_chan || !cs->verify || o->crash_ns || o->killed_by_fault || o->watchdog_killed)
        return;
    uint64_t unique = 0, bits = 0, fm;
    for (uint32_t i = cs->producers; i < cs->nworkers; i++)
        unique += ld(&cs->slots[i].unique);
    for (uint32_t p = 0; p < cs->producers; p++)
        bits += popcount_range(&cs->bitmaps[(size_t)p * cs->bitmap_words], cs->seq_cap, &fm);
    if (unique != bits)
        st_report_add(rep, ST_V_CRASH, 1,
                      "ipcproof's results area is inconsistent (%" PRIu64
                      " first deliveries counted, %" PRIu64
                      " recorded): the protocol wrote into memory it does not own",
                      unique, bits);
}

/* ---- exec endpoints: how each program kept the contract ------------------------------------ */

static void check_exec(const struct st_case *cs, uint32_t killed, struct st_report *rep)
{
    /* consumers first: a consumer's failure is the cause of its producers' (a FIFO whose reader
     * died fails their writes), never the other way round */
    char cause[96] = "";
    if (killed) snprintf(cause, sizeof(cause), "the kill fault");
    for (uint32_t k = 0; k < cs->nworkers; k++) {
        uint32_t i = (k + cs->producers) % cs->nworkers;
        const struct st_slot *s = &cs->slots[i];
        uint32_t why = atomic_load_explicit(&s->exec_why, memory_order_acquire);
        if (why == ST_EX_NONE || killed == i + 1) continue;
        int64_t val = atomic_load_explicit(&s->exec_val, memory_order_relaxed);
        char who[48], text[256];
        st_endpoint_name(cs, i, who, sizeof(who));
        st_exec_why_text((int)why, val, text, sizeof(text));
        if ((why == ST_EX_STATUS || why == ST_EX_EARLY) && (val == 127 || val == 126) &&
            rep->status != 2) {
            /* the shell's own codes: the command could not be found, or found but not run: a
             * usage error, not a verdict about the protocol */
            rep->status = 2;
            snprintf(rep->error, sizeof(rep->error),
                     "%s's command could not be run: /bin/sh exited with status %lld (%s; its "
                     "output is below)",
                     who, (long long)val,
                     val == 127 ? "command not found" : "found but not executable");
            return;
        }
        const char *hint = "";
        if (cause[0] && (why == ST_EX_STATUS || why == ST_EX_EARLY || why == ST_EX_NOEXIT)) {
            /* a program may end on the error its protocol reported after a peer died */
            st_report_note(rep, "%s's program %s after %s", who, text, cause);
            continue;
        }
        if (i >= cs->producers && !cause[0])
            snprintf(cause, sizeof(cause), "%s's program failed", who);
        st_report_add(rep, why == ST_EX_SIGNAL ? ST_V_CRASH : ST_V_ERROR, 1,
                      "%s's program %s%s (its output is below)", who, text, hint);
    }
}

static void check_channel(const struct st_case *cs, const struct st_outcome *o,
                          struct st_report *rep)
{
    uint32_t killed = atomic_load(&cs->sh->killed);
    if (killed > cs->nworkers) killed = 0;
    if (cs->exec) check_exec(cs, killed, rep);
    check_errors(cs, o, killed != 0, rep);
    check_consumer_records(cs, rep);
    check_loss(cs, killed, rep);
    check_consistency(cs, o, rep);
}

/* ---- locks ---------------------------------------------------------------------------------- */

static void check_lock(const struct st_case *cs, const struct st_outcome *o, struct st_report *rep)
{
    uint32_t v = cs->kill_victim;
    int died = v != 0 && v <= o->nproc && o->reaped[v - 1] && WIFSIGNALED(o->status[v - 1]);
    if (cs->exec) check_exec(cs, died ? v : 0, rep);
    check_errors(cs, o, died, rep);
    uint64_t total = sum_ops(cs, 0, cs->nworkers);
    uint64_t counter = cs->sh->counter;
    rep->counter = counter;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        const struct st_slot *s = &cs->slots[i];
        rep->recovered += ld(&s->recovered);
        uint64_t n = ld(&s->vcount[ST_V_EXCLUSION]);
        if (n) {
            const struct st_vfirst *f = &s->vfirst[ST_V_EXCLUSION];
            if (f->a == 0)
                st_report_add(rep, ST_V_EXCLUSION, n,
                              "worker %" PRIu32
                              " entered the critical section (acquisition #%" PRIu64
                              ") while worker %" PRIu32 " was inside",
                              i, f->seq, f->producer);
            else if (f->producer == UINT32_MAX) /* the owner word was empty again at its exit */
                st_report_add(rep, ST_V_EXCLUSION, n,
                              "worker %" PRIu32 ": another worker entered and left while it was "
                              "inside (acquisition #%" PRIu64 ")",
                              i, f->seq);
            else
                st_report_add(rep, ST_V_EXCLUSION, n,
                              "worker %" PRIu32 ": worker %" PRIu32
                              " entered while it was inside (acquisition #%" PRIu64 ")",
                              i, f->producer, f->seq);
        }
        n = ld(&s->vcount[ST_V_ERROR]);
        if (n) {
            const struct st_vfirst *f = &s->vfirst[ST_V_ERROR];
            if (f->a == 1 && o->crash_ns) /* a worker that crashed died holding it */
                st_report_note(rep, "worker %" PRIu32 ": lock() returned 1 after a worker crashed",
                               i);
            else if (f->a == 1)
                st_report_add(rep, ST_V_ERROR, n,
                              "worker %" PRIu32 ": lock() returned 1 (previous holder died) but "
                              "no holder died",
                              i);
            else
                st_report_add(rep, ST_V_ERROR, n,
                              "worker %" PRIu32 ": lock() returned 0 although worker %" PRIu32
                              " died holding the lock; a lock claiming IPCP_LOCK_ROBUST returns 1",
                              i, f->producer);
        }
    }
    if (counter != total)
        st_report_add(rep, ST_V_EXCLUSION, counter > total ? counter - total : total - counter,
                      "the counter incremented inside the critical section reads %" PRIu64
                      " but %" PRIu64 " increments completed: %s",
                      counter, total,
                      counter < total ? "increments were lost to overlapping holders"
                                      : "more increments than acquisitions");
}

/* ---- liveness ------------------------------------------------------------------------------- */

/* From the start barrier to the last completed operation, or to when an endpoint that had not
 * met its quota gave up (a channel that stopped delivering is measured over the whole case). */
static double case_seconds(const struct st_case *cs, const struct st_outcome *o)
{
    if (cs->cfg->mode == ST_MODE_SCHED) /* the endpoints' clocks are virtual: the wall time */
        return o->end_ns > o->start_ns ? (double)(o->end_ns - o->start_ns) / 1e9 : 1e-9;
    int64_t end = o->start_ns, cap = o->start_ns + (int64_t)86400e9;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        const struct st_slot *s = &cs->slots[i];
        int64_t l = atomic_load_explicit(&s->last_ns, memory_order_relaxed);
        if (l > end && l < cap) end = l;
        if (cs->w[i].role == ST_ROLE_CONSUMER || atomic_load(&s->quota_met)) continue;
        int64_t e = atomic_load_explicit(&s->end_ns, memory_order_relaxed);
        if (e > end && e < cap) end = e;
    }
    double s = o->start_ns && end > o->start_ns ? (double)(end - o->start_ns) / 1e9 : 0;
    return s > 0 ? s : 1e-9;
}

/* Producers must each keep making progress: one that waited for a single send() longer than a
 * fifth of the case (and ST_STARVE_MIN_MS), with the protocol timing out meanwhile, while a
 * consumer was there to receive, and nothing moved through the channel meanwhile (after its
 * first timeout no other producer's message got in and no consumer received one), starved: the
 * channel stopped. While messages moved, it was back-pressure from a slow consumer or
 * unfairness between producers: a note, as for an unfair lock. Consumers are not held to it one by
 * one (which consumer gets a message is the protocol's business); a channel that stops delivering
 * starves its producers. A consumer's death excuses the producers (a channel is not required to
 * reroute to the survivors). Lock contenders are held to it only by a lock that claims
 * IPCP_LOCK_FAIR: ordinary mutexes are unfair by design, and a contender losing every race for a
 * while is what they promise; for them a long wait is a note. */
/* The longest time any endpoint was runnable but had no CPU during its loop, in seconds (0 when
 * not measured). A protocol that stops its endpoints leaves them blocked in system calls, which
 * is no CPU wait; a machine too loaded to run them makes the same silence with a long one. */
static double most_cpu_wait(const struct st_case *cs)
{
    uint64_t most = 0;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        uint64_t w = atomic_load_explicit(&cs->slots[i].cpu_wait_ns, memory_order_relaxed);
        if (w != ST_CPU_WAIT_UNKNOWN && w > most) most = w;
    }
    return (double)most / 1e9;
}

static void check_starvation(const struct st_case *cs, const struct st_outcome *o, double secs,
                             struct st_report *rep)
{
    if (o->crash_ns || o->watchdog_killed) return; /* already explained */
    if (cs->cfg->mode == ST_MODE_SCHED) return;    /* the scheduler finds deadlocks exactly */
    if (cs->exec) return; /* a program's start-up and pauses look just like starvation */
    if (atomic_load(&cs->sh->stopped_fault)) { /* waiting for a stopped peer is not unfair */
        st_report_note(rep, "starvation not judged: the stop fault paused an endpoint");
        return;
    }
    double limit = secs / 5;
    if (limit < ST_STARVE_MIN_MS / 1000.0) limit = ST_STARVE_MIN_MS / 1000.0;
    if (cs->is_chan) {
        for (uint32_t i = cs->producers; i < cs->nworkers; i++)
            if (atomic_load(&cs->slots[i].dead) || atomic_load(&cs->slots[i].err) != 0 ||
                ld(&cs->slots[i].vcount[ST_V_TORN]) != 0 || cs->kill_victim == i + 1)
                return;
    }
    int fair = !cs->is_chan && (cs->proto_flags & IPCP_LOCK_FAIR) != 0;
    uint32_t n = cs->is_chan ? cs->producers : cs->nworkers;
    for (uint32_t i = 0; i < n; i++) {
        const struct st_slot *s = &cs->slots[i];
        if (atomic_load(&s->dead) || cs->kill_victim == i + 1) continue;
        double gap = (double)atomic_load_explicit(&s->max_gap_ns, memory_order_relaxed) / 1e9;
        if (!(gap > limit) || gap > secs * 2 + 10) continue;
        char who[48];
        st_endpoint_name(cs, i, who, sizeof(who));
        uint64_t others = cs->is_chan ? ld(&s->gap_others) : 0;
        if (others > 0) { /* the channel kept moving: unfair to it, or back-pressure */
            st_report_note(rep,
                           "%s waited %.2f s for send() #%" PRIu64 " while %" PRIu64
                           " messages moved through the channel (other producers' sends, "
                           "receives): back-pressure or unfairness, not a stopped channel",
                           who, gap, atomic_load_explicit(&s->gap_at, memory_order_relaxed),
                           others);
            continue;
        }
        if (!cs->is_chan && !fair) {
            st_report_note(rep,
                           "%s waited %.2f s for lock() #%" PRIu64
                           " while others got in (the lock does not claim IPCP_LOCK_FAIR)",
                           who, gap, atomic_load_explicit(&s->gap_at, memory_order_relaxed));
            continue;
        }
        double cpu_wait = most_cpu_wait(cs);
        if (cpu_wait >= gap / 2) { /* the machine, not the protocol, stopped everyone */
            st_report_note(rep,
                           "%s waited %.2f s for %s #%" PRIu64
                           " while nothing moved, but an endpoint waited %.2f s for a CPU "
                           "during the case: an overloaded machine, starvation not judged",
                           who, gap, cs->is_chan ? "send()" : "lock()",
                           atomic_load_explicit(&s->gap_at, memory_order_relaxed), cpu_wait);
            continue;
        }
        st_report_add(rep, ST_V_STARVATION, 1,
                      "%s waited %.2f s (of a %.2f s case) for %s #%" PRIu64
                      " while the protocol kept timing out; %" PRIu64 " timeouts in all",
                      who, gap, secs, cs->is_chan ? "send()" : "lock()",
                      atomic_load_explicit(&s->gap_at, memory_order_relaxed), ld(&s->timeouts));
    }
}

/* ---- statistics ----------------------------------------------------------------------------- */

static void collect_stats(const struct st_case *cs, const struct st_outcome *o, double secs,
                          struct st_report *rep)
{
    rep->nep = 0;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        const struct st_slot *s = &cs->slots[i];
        rep->retries += ld(&s->retries);
        for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
            rep->hist[b] += s->hist[b];
        struct st_epstat *e = &rep->ep[rep->nep++];
        e->role = cs->w[i].role;
        e->index = cs->w[i].rindex;
        e->ops = ld(&s->ops);
        e->retries = ld(&s->retries);
        e->timeouts = ld(&s->timeouts);
        e->max_wait_s = (double)atomic_load_explicit(&s->max_gap_ns, memory_order_relaxed) / 1e9;
        uint64_t cw = atomic_load_explicit(&s->cpu_wait_ns, memory_order_relaxed);
        e->cpu_wait_s = cw == ST_CPU_WAIT_UNKNOWN ? -1 : (double)cw / 1e9;
    }
    if (cs->is_chan) {
        rep->sent = sum_ops(cs, 0, cs->producers);
        rep->received = sum_ops(cs, cs->producers, cs->consumers);
        for (uint32_t i = cs->producers; i < cs->nworkers; i++)
            rep->bytes += ld(&cs->slots[i].bytes);
    } else {
        rep->sent = rep->received = sum_ops(cs, 0, cs->nworkers);
    }
    /* over the whole case, not up to the last completed operation: a channel that stops
     * delivering early has a low rate, not a high one */
    rep->seconds = o->start_ns ? secs : 1e-9;
    rep->msgs_per_s = (double)rep->received / rep->seconds;
    if (cs->cfg->mode == ST_MODE_SCHED) rep->seconds = rep->msgs_per_s = 0; /* virtual time */
}

void st_check_case(const struct st_case *cs, const struct st_outcome *o, struct st_report *rep)
{
    check_exits(cs, o, rep);
    if (cs->is_chan)
        check_channel(cs, o, rep);
    else
        check_lock(cs, o, rep);
    double secs = case_seconds(cs, o);
    check_starvation(cs, o, secs, rep);
    collect_stats(cs, o, secs, rep);
}

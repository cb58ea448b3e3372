/* runloop.c - the run of one stress case in the supervisor, once the endpoints are its children:
 * start barrier, stop, the kill and stop faults, reaping, progress and the watchdog (engine.c
 * runs the rest of the case).
 *
 * The watchdog of the run: a deadline (--watchdog, honoured as given; by default max(10 s, 4 x
 * the expected run time)) and a stall limit (no operation completed by anybody for --stall
 * seconds, 5 s by default). Either turns into a `deadlock` violation whose detail says what
 * every live worker is doing and since when; then every worker is SIGKILLed and reaped, and
 * the protocol destroyed. The supervisor never starts a thread (a ThreadSanitizer child forked
 * from a multi-threaded process would be unchecked) and only polls its children, the results
 * area and the output pipe, so nothing it does can block on the protocol. */
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checker.h"
#include "engine.h"
#include "spawn.h"
#include "stress.h"

#define STRAY_REAP_EVERY 250000000LL

static uint64_t sum_ops(const struct st_case *cs, uint32_t from, uint32_t n)
{
    uint64_t t = 0;
    for (uint32_t i = from; i < from + n; i++)
        t += atomic_load_explicit(&cs->slots[i].ops, memory_order_acquire);
    return t;
}

/* ---- reaping -------------------------------------------------------------------------------- */

void st_sup_mark_dead(struct st_sup *S, uint32_t pi)
{
    struct st_case *cs = &S->cs;
    for (uint32_t i = 0; i < cs->nworkers; i++)
        if (cs->cfg->mode != ST_MODE_PROCESS || i == pi)
            atomic_store_explicit(&cs->slots[i].dead, 1, memory_order_release);
}

int st_sup_ended_ok(const struct st_sup *S, uint32_t pi, int st)
{
    /* the schedule ended in a deadlock the runtime reported: an outcome, not a crash */
    if (S->cs.cfg->mode == ST_MODE_SCHED && WIFEXITED(st) && WEXITSTATUS(st) == ST_EXIT_SCHED &&
        S->cs.sched_rep != NULL && S->cs.sched_rep->status >= ST_SCHED_DEADLOCK)
        return 1;
    if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != ST_EXIT_SETUP)) return 0;
    const struct st_case *cs = &S->cs;
    for (uint32_t i = 0; i < cs->nworkers; i++)
        if ((cs->cfg->mode != ST_MODE_PROCESS || i == pi) &&
            !atomic_load_explicit(&cs->slots[i].done, memory_order_acquire))
            return 0; /* exit() from the protocol's code, not the harness's */
    return 1;
}

static void reap_some(struct st_sup *S)
{
    struct st_outcome *o = &S->o;
    for (uint32_t i = 0; i < o->nproc; i++) {
        if (o->reaped[i]) continue;
        int st;
        if (waitpid(o->pids[i], &st, WNOHANG) != o->pids[i]) continue;
        o->reaped[i] = 1;
        o->status[i] = st;
        if (st_sup_ended_ok(S, i, st)) continue;
        if (S->cs.cfg->crash_point && S->cs.kill_victim == i + 1 && WIFSIGNALED(st) &&
            WTERMSIG(st) == SIGKILL) { /* it died at its crash point, as asked */
            o->killed_by_fault = i + 1;
            atomic_store(&S->cs.sh->killed, i + 1);
            atomic_store(&S->cs.sh->quiet, 0); /* the others may go on */
        }
        st_sup_mark_dead(S, i);
        int on_purpose = o->watchdog_killed || o->killed_by_fault == i + 1 ||
                         (!S->cs.is_chan && S->cs.kill_victim == i + 1);
        if (!on_purpose && o->crash_ns == 0) o->crash_ns = st_now_ns();
    }
    int64_t now = st_now_ns();
    if (now - S->last_stray_reap > STRAY_REAP_EVERY) { /* what the protocol forked and ended */
        pid_t keep[ST_MAX_ENDPOINTS + 1];
        memcpy(keep, o->pids, sizeof(pid_t) * o->nproc);
        keep[o->nproc] = S->host.pid;
        st_reap_strays(keep, o->nproc + 1);
        S->last_stray_reap = now;
    }
}

static int all_reaped(const struct st_sup *S)
{
    for (uint32_t i = 0; i < S->o.nproc; i++)
        if (!S->o.reaped[i]) return 0;
    return 1;
}

/* An exec endpoint's program group (the worker published it; checked: never ours or init's). */
static void kill_program(const struct st_case *cs, uint32_t i)
{
    pid_t g = cs->exec && i < cs->nworkers ? (pid_t)atomic_load(&cs->slots[i].exec_pgid) : 0;
    if (g > 1 && g != getpgrp()) kill(-g, SIGKILL);
}

/* Messages received so far (channels; locks: 0 - the victim's own acquisitions count there). The
 * stop fault waits for the channel to carry messages end to end: a producer's worker can be far
 * ahead of its program, which may still be starting. */
static uint64_t delivered(const struct st_case *cs)
{
    uint64_t n = 0;
    for (uint32_t i = cs->producers; cs->is_chan && i < cs->nworkers; i++)
        n += atomic_load(&cs->slots[i].ops);
    return cs->is_chan ? n : UINT64_MAX;
}

/* --fault stop: SIGSTOP (sig) or SIGCONT the victim, and an exec endpoint's program group. */
static void signal_endpoint(struct st_sup *S, uint32_t v, int sig)
{
    const struct st_case *cs = &S->cs;
    pid_t g = cs->exec ? (pid_t)atomic_load(&cs->slots[v].exec_pgid) : 0;
    if (g > 1 && g != getpgrp()) kill(-g, sig);
    kill(S->o.pids[v], sig);
}

void st_sup_kill_all(struct st_sup *S)
{
    for (uint32_t i = 0; i < S->o.nproc; i++)
        if (!S->o.reaped[i]) {
            kill(S->o.pids[i], SIGKILL);
            kill_program(&S->cs, i); /* the endpoint the watchdog stops is the program */
        }
}

/* ---- watchdog dump -------------------------------------------------------------------------- */

static void dump_waiters(struct st_sup *S, char *buf, size_t cap, const char *why)
{
    struct st_case *cs = &S->cs;
    int64_t now = st_now_ns();
    size_t len = (size_t)snprintf(buf, cap, "%s; ", why);
    int any = 0;
    for (uint32_t i = 0; i < cs->nworkers && len < cap; i++) {
        struct st_slot *s = &cs->slots[i];
        if (atomic_load(&s->done) || atomic_load(&s->dead)) continue;
        uint32_t ph = atomic_load(&s->phase);
        double for_s = (double)(now - atomic_load(&s->since_ns)) / 1e9;
        if (for_s < 0) for_s = 0; /* it stamped its phase after we read the clock */
        pid_t pid = S->o.pids[cs->cfg->mode != ST_MODE_PROCESS ? 0 : i];
        char nm[48];
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s%s (pid %d) in %s #%" PRIu64 " for %.1f s, %" PRIu64
                                " done, %" PRIu64 " retried",
                                any ? "; " : "", st_endpoint_name(cs, i, nm, sizeof(nm)), (int)pid,
                                st_phase_name((int)ph), atomic_load(&s->cur_seq), for_s,
                                atomic_load(&s->ops), atomic_load(&s->retries));
        any = 1;
    }
    if (!any && len < cap) snprintf(buf + len, cap - len, "no worker is running");
}

/* ---- the run loop --------------------------------------------------------------------------- */

static void progress_line(struct st_sup *S, int64_t now, int final)
{
    struct st_case *cs = &S->cs;
    double t = (double)(now - S->o.start_ns) / 1e9;
    if (cs->is_chan) {
        uint64_t sent = sum_ops(cs, 0, cs->producers);
        uint64_t got = sum_ops(cs, cs->producers, cs->consumers);
        fprintf(stderr, "\r[%6.1fs] sent %" PRIu64 "  received %" PRIu64 "  %.0f msgs/s   %s", t,
                sent, got, t > 0 ? (double)got / t : 0.0, final ? "\n" : "");
    } else {
        uint64_t acq = sum_ops(cs, 0, cs->nworkers);
        fprintf(stderr, "\r[%6.1fs] acquisitions %" PRIu64 "  %.0f /s   %s", t, acq,
                t > 0 ? (double)acq / t : 0.0, final ? "\n" : "");
    }
    fflush(stderr);
}

/* Progress = completed operations plus ended workers: anything that moves. */
static uint64_t progress_mark(const struct st_case *cs)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        const struct st_slot *s = &cs->slots[i];
        t += atomic_load_explicit(&s->ops, memory_order_relaxed) +
             atomic_load_explicit(&s->opened, memory_order_relaxed) +
             atomic_load_explicit(&s->done, memory_order_relaxed) +
             atomic_load_explicit(&s->dead, memory_order_relaxed);
    }
    return t;
}

static double expected_seconds(const struct st_case *cs)
{
    const struct st_config *c = cs->cfg;
    double est = 0;
    if (c->messages) {
        uint32_t n = cs->is_chan ? cs->producers : cs->nworkers;
        est = (double)c->messages * n / 5000.0; /* pessimistic: sanitizers, 2 loaded cores */
    }
    if (c->duration > 0 && (est == 0 || c->duration < est)) est = c->duration;
    return est;
}

/* --fault kill on a channel: is it time? */
static int kill_due(struct st_sup *S, int64_t now, uint32_t v)
{
    struct st_case *cs = &S->cs;
    struct st_slot *s = &cs->slots[v];
    int64_t t = now - S->o.start_ns;
    if (cs->kill_point == ST_KP_ANY)
        return cs->kill_time_ns ? t >= cs->kill_time_ns : atomic_load(&s->ops) >= cs->kill_at;
    /* blocked: inside send() (recv()) for 2 ms on end, after a few operations; if it never
     * blocks, at the seeded point anyway */
    uint32_t want = cs->kill_point == ST_KP_SEND_BLOCKED ? ST_PH_SEND : ST_PH_RECV;
    if (atomic_load(&s->phase) == want && atomic_load(&s->ops) >= 8 &&
        now - atomic_load(&s->since_ns) >= 2000000)
        return 1;
    return cs->kill_time_ns ? t >= 2 * cs->kill_time_ns : atomic_load(&s->ops) >= 2 * cs->kill_at;
}

void st_sup_run_loop(struct st_sup *S)
{
    struct st_case *cs = &S->cs;
    const struct st_config *c = cs->cfg;
    struct st_report *rep = S->rep;
    struct st_outcome *o = &S->o;
    int tty = c->progress > 0 || (c->progress < 0 && isatty(2));
    double deadline_s = c->watchdog > 0 ? c->watchdog : 4 * expected_seconds(cs);
    if (c->watchdog <= 0 && deadline_s < 10) deadline_s = 10;
    if (c->watchdog <= 0) deadline_s += (double)ST_DRAIN_MS / 1000.0;
    int64_t stall_ns = (int64_t)((c->stall > 0 ? c->stall : ST_STALL_MS / 1000.0) * 1e9);
    int64_t t_begin = st_now_ns();
    int64_t last_change = t_begin, last_progress_print = t_begin;
    int64_t killed_ns = 0;
    char killed_what[96] = ""; /* "<endpoint> was killed in <phase>" once the kill fault struck */
    uint64_t mark = progress_mark(cs);
    int started = 0, stopped = 0, host_noted = 0;
    int kill_pending = cs->kill_victim != 0 && cs->is_chan && !c->crash_point;
    int stop_state = cs->stop_victim ? 1 : 0; /* 1 to come, 2 stopped (since stop_t), 0 done */
    int64_t crash_resolved_ns = 0; /* --crash-point: when the victim died or lived through it */
    int64_t stop_t = 0;

    for (;;) {
        reap_some(S);
        st_capture_pump(&S->host.out, 0);
        if (all_reaped(S)) break;
        int64_t now = st_now_ns();
        if (st_interrupted()) {
            atomic_store(&cs->sh->abort_run, 1);
            st_sup_kill_all(S);
            st_setup_error(rep, "interrupted");
            break;
        }
        if (!host_noted && st_host_poll_exit(&S->host)) {
            char how[128];
            st_host_describe_exit(S->host.status, how, sizeof(how));
            st_report_add(rep, ST_V_CRASH, 1,
                          "the protocol host (pid %d, where create() ran) %s during the run "
                          "(a thread or signal handler the protocol left behind?)",
                          (int)S->host.pid, how);
            host_noted = 1;
        }
        /* start barrier: go once every worker opened its endpoint (or failed to) */
        if (!started) {
            uint32_t ready = 0, failed = 0;
            for (uint32_t i = 0; i < cs->nworkers; i++) {
                ready += atomic_load(&cs->slots[i].opened) != 0;
                /* an open() that failed, or a death; a worker that already finished is not one
                 * (in sched mode the schedule runs without this barrier, and may be over) */
                failed += (atomic_load(&cs->slots[i].done) != 0 &&
                           atomic_load(&cs->slots[i].opened) == 0) ||
                          atomic_load(&cs->slots[i].dead) != 0;
            }
            if (failed) atomic_store(&cs->sh->abort_run, 1);
            if (ready == cs->nworkers || failed) {
                o->start_ns = st_now_ns();
                atomic_store_explicit(&cs->sh->start_ns, o->start_ns, memory_order_relaxed);
                /* release: pairs with the workers' acquire in wait_go */
                atomic_store_explicit(&cs->sh->go, 1, memory_order_release);
                syscall(SYS_futex, (uint32_t *)&cs->sh->go, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
                started = 1;
                last_progress_print = now;
            }
        }
        if (started && !stopped) {
            int stop = c->duration > 0 && now - o->start_ns >= (int64_t)(c->duration * 1e9);
            /* --crash-point: the clock does not end the run before the victim has run its
             * operation (and 50 ms more, for the others to meet what its death left), at most
             * 10 s past --duration: a victim that started late under load once found the
             * others stopped, and its death met nobody */
            if (stop && c->crash_point && cs->kill_victim &&
                now - o->start_ns < (int64_t)((c->duration + 10) * 1e9)) {
                const struct st_slot *vs = &cs->slots[cs->kill_victim - 1];
                int resolved = atomic_load(&vs->dead) || atomic_load(&vs->done) ||
                               atomic_load(&vs->crash_seen) != 0 || o->reaped[cs->kill_victim - 1];
                if (resolved && crash_resolved_ns == 0) crash_resolved_ns = now;
                if (!resolved || now - crash_resolved_ns < 50000000) stop = 0;
            }
            if (cs->is_chan) {
                uint32_t gone = 0;
                for (uint32_t i = cs->producers; i < cs->nworkers; i++)
                    gone += atomic_load(&cs->slots[i].done) || atomic_load(&cs->slots[i].dead);
                if (gone == cs->consumers) stop = 1; /* nobody left to receive */
            }
            if (stop) {
                atomic_store_explicit(&cs->sh->stop, 1, memory_order_release);
                o->stop_ns = now;
                stopped = 1;
            }
        }
        if (started && kill_pending) {
            uint32_t v = cs->kill_victim - 1;
            struct st_slot *s = &cs->slots[v];
            char nm[48];
            if (atomic_load(&s->done) || atomic_load(&s->dead)) {
                kill_pending = 0;
                st_report_note(rep, "kill fault: %s ended before the kill point",
                               st_endpoint_name(cs, v, nm, sizeof(nm)));
            } else if (kill_due(S, now, v)) {
                uint32_t ph = atomic_load(&s->phase);
                /* an exec endpoint is its program: its process group dies with the worker */
                kill(o->pids[v], SIGKILL); /* first: it never sees its program die */
                kill_program(cs, v);
                atomic_store(&cs->sh->killed, v + 1);
                atomic_store(&cs->sh->kill_ns, now);
                o->killed_by_fault = v + 1;
                killed_ns = now;
                snprintf(killed_what, sizeof(killed_what), "%s was killed in %s",
                         st_endpoint_name(cs, v, nm, sizeof(nm)), st_phase_name((int)ph));
                kill_pending = 0;
                st_report_note(rep, "kill fault: %s killed in %s after %" PRIu64 " operations",
                               st_endpoint_name(cs, v, nm, sizeof(nm)), st_phase_name((int)ph),
                               atomic_load(&s->ops));
            }
        }
        if (started && stop_state) {
            uint32_t v = cs->stop_victim - 1;
            struct st_slot *s = &cs->slots[v];
            char nm[48];
            int gone = atomic_load(&s->done) || atomic_load(&s->dead) || o->reaped[v];
            if (stop_state == 1 && gone) {
                stop_state = 0;
                atomic_store(&cs->sh->stop_over, 1);
                st_report_note(rep, "stop fault: %s ended before the stop point",
                               st_endpoint_name(cs, v, nm, sizeof(nm)));
            } else if (stop_state == 1 && atomic_load(&s->ops) >= cs->stop_at &&
                       delivered(cs) >= cs->stop_at &&
                       (cs->is_chan || atomic_load(&s->phase) == ST_PH_CS)) {
                /* a lock's victim is stopped holding the lock (it waits for it in its critical
                 * section): a slow holder, which a lock that gives up waiting lets others past */
                signal_endpoint(S, v, SIGSTOP);
                stop_state = 2;
                stop_t = now;
                atomic_store(&cs->sh->stopped_fault, v + 1);
                st_report_note(
                    rep, "stop fault: %s stopped for %u ms in %s after %" PRIu64 " operations",
                    st_endpoint_name(cs, v, nm, sizeof(nm)), cs->stop_ms,
                    st_phase_name((int)atomic_load(&s->phase)), atomic_load(&s->ops));
            } else if (stop_state == 2 && now - stop_t >= (int64_t)cs->stop_ms * 1000000) {
                signal_endpoint(S, v, SIGCONT);
                stop_state = 0;
                atomic_store(&cs->sh->stop_over, 1);
                last_change = now; /* the stall clock starts again when it goes on */
            }
        }
        if (!cs->is_chan && cs->kill_victim && !killed_what[0]) {
            /* a lock's victim kills itself, holding the lock or not, and stamps the time */
            int64_t k = (int64_t)atomic_load(&cs->sh->kill_ns);
            uint32_t v = cs->kill_victim - 1;
            char nm[48];
            const struct st_slot *vs = &cs->slots[v < o->nproc ? v : 0];
            /* a crash-point victim stamps the time when it is armed, inside a lock call, and
             * may live through it: killed only once it is gone */
            int crash = cs->cfg->crash_point != 0;
            if (k > t_begin && k <= now && v < o->nproc &&
                (!crash || atomic_load(&vs->dead) || o->reaped[v])) {
                killed_ns = k;
                snprintf(killed_what, sizeof(killed_what), "%s was killed %s",
                         st_endpoint_name(cs, v, nm, sizeof(nm)),
                         crash            ? "at its crash point, inside a lock call"
                         : cs->kill_in_cs ? "inside the critical section"
                                          : "between acquisitions");
            }
        }
        uint64_t m = progress_mark(cs);
        if (m != mark) {
            mark = m;
            last_change = now;
        }
        const char *why = NULL;
        char whybuf[224];
        if (now - last_change > stall_ns) {
            int n =
                snprintf(whybuf, sizeof(whybuf), "no progress for %.1f s", (double)stall_ns / 1e9);
            /* the user's first question when a kill case stalls: did it stop because of it? */
            if (killed_what[0] && last_change >= killed_ns &&
                last_change - killed_ns < 1000000000 && n > 0 && (size_t)n < sizeof(whybuf))
                snprintf(whybuf + n, sizeof(whybuf) - (size_t)n,
                         ", starting %.2f s after %s (%s): a peer's death the protocol "
                         "did not recover from",
                         (double)(last_change - killed_ns) / 1e9, killed_what,
                         cs->cfg->crash_point ? "crash point" : "kill fault");
            why = whybuf;
        } else if (now - t_begin > (int64_t)(deadline_s * 1e9)) {
            /* still moving at the end: not stuck, but never done (an endless stream of
             * duplicates, a livelock) */
            snprintf(whybuf, sizeof(whybuf), "case deadline of %.1f s passed%s", deadline_s,
                     now - last_change < 1000000000
                         ? " with the endpoints still making progress: never done (more "
                           "operations than the run asked for, or a livelock), not stuck"
                         : "");
            why = whybuf;
        }
        if (why != NULL && cs->cfg->mode == ST_MODE_SCHED) {
            /* One thread runs at a time and the scheduler finds deadlocks exactly: a schedule
             * that stops in real time is a thread blocked in a call the runtime does not
             * interpose, or spinning where it has no scheduling points. Not a verdict. */
            char doing[400];
            st_threads_doing(o->pids[0], doing, sizeof(doing));
            snprintf(
                rep->na, sizeof(rep->na),
                "sched mode lost control (%.96s): a thread blocks in a call the scheduler does "
                "not interpose, or spins in code without scheduling points (not built with "
                "-fsanitize=thread); %s (docs/sched.md, limits)",
                why, doing);
            atomic_store(&cs->sh->abort_run, 1);
            st_sup_kill_all(S);
            o->watchdog_killed = 1;
            break;
        }
        if (why != NULL) {
            char dump[900];
            dump_waiters(S, dump, sizeof(dump), why);
            atomic_store(&cs->sh->abort_run, 1);
            st_sup_kill_all(S);
            o->watchdog_killed = 1;
            st_report_add(rep, ST_V_DEADLOCK, 1, "%s", dump);
            break;
        }
        if (tty && started && now - last_progress_print >= 1000000000) {
            progress_line(S, now, 0);
            last_progress_print = now;
        }
        struct pollfd p = {.fd = S->host.out.rd, .events = POLLIN};
        (void)poll(&p, 1, kill_pending ? 1 : 5);
    }
    if (stop_state == 1)
        st_report_note(rep,
                       "stop fault: the run ended before the stop point (%" PRIu64
                       " operations of endpoint %u)",
                       cs->stop_at, cs->stop_victim - 1);
    for (uint32_t i = 0; i < o->nproc; i++) /* blocking: every one was killed or has ended */
        if (!o->reaped[i] && st_wait_until(o->pids[i], &o->status[i], 0, NULL) == 1) {
            o->reaped[i] = 1;
            if (!st_sup_ended_ok(S, i, o->status[i])) st_sup_mark_dead(S, i);
        }
    o->end_ns = st_now_ns();
    if (tty && started) progress_line(S, st_now_ns(), 1);
}

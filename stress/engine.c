/* engine.c - the supervisor of one stress case.
 *
 * The supervisor runs no protocol code. A case goes: load (the protocol host loads the plugin
 * and reports what it exports) -> create (in the host) -> spawn (the host's spawner forks the
 * endpoints, which the supervisor, a child subreaper, adopts) -> start barrier -> run (bounded
 * by count and time) -> stop -> reap and decode every wait status -> check -> destroy (in the
 * host) -> sweep (whatever the protocol forked and left running is killed and reported) -> leak
 * check. Every step has a deadline: a constructor, create() or destroy() that hangs, crashes or
 * exits becomes a `deadlock` or `crash` verdict and the case still ends with a report.
 *
 * The watchdog of the run: a deadline (--watchdog, honoured as given; by default max(10 s, 4 x
 * the expected run time)) and a stall limit (no operation completed by anybody for --stall
 * seconds, 5 s by default). Either turns into a `deadlock` violation whose detail says what
 * every live worker is doing and since when; then every worker is SIGKILLed and reaped, and
 * the protocol destroyed. The supervisor never starts a thread (a ThreadSanitizer child forked
 * from a multi-threaded process would be unchecked) and only polls its children, the results
 * area and the output pipe, so nothing it does can block on the protocol. */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checker.h"
#include "elfinfo.h"
#include "exec.h"
#include "execfx.h"
#include "host.h"
#include "sanrep.h"
#include "ipcproof/err.h"
#include "spawn.h"
#include "stress.h"
#include "symbolize.h"

#define TSAN_EXIT        66
#define SWEEP_GRACE_NS   200000000LL /* what the protocol forked gets this long to exit */
#define STRAY_REAP_EVERY 250000000LL

static volatile int interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void setup_error(struct st_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void setup_error(struct st_report *r, const char *fmt, ...)
{
    r->status = 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

/* ---- the supervisor's view of one case ------------------------------------------------------ */

struct sup {
    struct st_case cs;    /* the supervisor's private copy of the case */
    struct st_case *plan; /* the copy the host reads (shared mapping) */
    struct st_report *rep;
    struct st_outcome o;
    struct st_hostconn host;
    int host_started;
    int64_t setup_ns;
    int64_t last_stray_reap;
};

static uint64_t sum_ops(const struct st_case *cs, uint32_t from, uint32_t n)
{
    uint64_t t = 0;
    for (uint32_t i = from; i < from + n; i++)
        t += atomic_load_explicit(&cs->slots[i].ops, memory_order_acquire);
    return t;
}

/* ---- the results area ----------------------------------------------------------------------- */

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Sized before the host is forked for whichever kind the protocol turns out to be: slots for
 * max(producers + consumers, workers) endpoints and the producers' delivery bitmaps. Guard pages
 * on both sides; MAP_NORESERVE: the bitmaps of a duration-bounded run are sized for the cap but
 * only touched where messages land. */
static int map_results(struct st_case *cs, const struct st_config *c, void **base, size_t *len)
{
    size_t pg = page_size();
    uint32_t nslots = c->producers + c->consumers;
    if (c->workers > nslots) nslots = c->workers;
    size_t off = (sizeof(struct st_shared) + 63u) & ~(size_t)63u;
    size_t slots = sizeof(struct st_slot) * nslots;
    size_t bm = cs->bitmap_words * sizeof(uint64_t) * c->producers;
    size_t data = (off + slots + bm + pg - 1) / pg * pg;
    *len = data + 2 * pg;
    void *m = mmap(NULL, *len, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -errno;
    char *d = (char *)m + pg;
    if (mprotect(d, data, PROT_READ | PROT_WRITE) < 0) {
        int e = -errno;
        munmap(m, *len);
        return e;
    }
    *base = m;
    cs->map_len = *len;
    cs->sh = (struct st_shared *)d;
    cs->slots = (struct st_slot *)(d + off);
    cs->bitmaps = (_Atomic uint64_t *)(d + off + slots);
    return 0;
}

/* The endpoints of the case once its kind is known. */
static void lay_out(struct st_case *cs, const struct st_config *c, int chan, uint32_t flags)
{
    cs->is_chan = chan;
    cs->exec = c->exec_producer != NULL || c->exec_worker != NULL;
    cs->proto_flags = flags;
    if (chan) {
        cs->producers = c->producers;
        cs->consumers = c->consumers;
        cs->nworkers = c->producers + c->consumers;
        cs->fifo = (flags & IPCP_CHAN_FIFO) != 0;
        for (uint32_t i = 0; i < cs->nworkers; i++) {
            cs->w[i].role = i < cs->producers ? ST_ROLE_PRODUCER : ST_ROLE_CONSUMER;
            cs->w[i].rindex = i < cs->producers ? i : i - cs->producers;
        }
    } else {
        cs->producers = cs->consumers = 0;
        cs->nworkers = c->workers;
        for (uint32_t i = 0; i < cs->nworkers; i++) {
            cs->w[i].role = ST_ROLE_LOCKER;
            cs->w[i].rindex = i;
        }
    }
    for (uint32_t i = 0; i < cs->nworkers; i++)
        cs->w[i].index = i;
}

/* ---- fault choices -------------------------------------------------------------------------- */

static uint32_t pick(uint64_t *rng, uint32_t from, uint32_t n)
{
    return from + (uint32_t)(splitmix64_next(rng) % (n ? n : 1));
}

static void choose_faults(struct st_case *cs, const struct st_config *c, struct st_report *rep)
{
    uint64_t rng = splitmix64_mix(c->seed ^ 0x6b696c6cull);
    cs->kill_point = c->kill_point;
    if (c->faults & ST_FAULT_KILL) {
        uint32_t v = pick(&rng, 0, cs->nworkers);
        if (cs->is_chan && c->kill_point == ST_KP_SEND_BLOCKED) v = pick(&rng, 0, cs->producers);
        if (cs->is_chan && c->kill_point == ST_KP_RECV_BLOCKED)
            v = pick(&rng, cs->producers, cs->consumers);
        cs->kill_victim = v + 1;
        if (cs->is_chan) {
            /* a point in time when the run is bounded by time, else an operation count */
            uint64_t expect = c->messages;
            if (cs->w[v].role == ST_ROLE_CONSUMER && expect)
                expect = expect * cs->producers / cs->consumers;
            if (c->duration > 0) {
                double frac = 0.1 + 0.5 * (double)(splitmix64_next(&rng) % 1000) / 1000.0;
                cs->kill_time_ns = (int64_t)(frac * c->duration * 1e9);
                if (cs->kill_time_ns < 1) cs->kill_time_ns = 1;
            } else {
                cs->kill_at = 1 + splitmix64_next(&rng) % (expect / 2 ? expect / 2 : 1);
            }
        } else {
            /* early in the run (the victim's first 256 acquisitions), so that the rest of the
             * run tests the recovery */
            uint64_t lim = c->messages ? c->messages / 2 : 256;
            if (lim > 256) lim = 256;
            cs->kill_at = splitmix64_next(&rng) % (lim ? lim : 1);
            cs->kill_in_cs = (cs->proto_flags & IPCP_LOCK_ROBUST) != 0;
        }
    }
    if (c->crash_point) {
        /* the victim's third operation (the lock has been used before; the channel carries a
         * few messages), from the seed for which endpoint */
        cs->kill_victim =
            pick(&rng, 0, cs->is_chan ? cs->producers + cs->consumers : cs->nworkers) + 1;
        if (cs->is_chan && c->crash_role == 1) cs->kill_victim = pick(&rng, 0, cs->producers) + 1;
        if (cs->is_chan && c->crash_role == 2)
            cs->kill_victim = pick(&rng, cs->producers, cs->consumers) + 1;
        cs->kill_at = 2;
        cs->kill_in_cs = 0;
    }
    if (c->faults & ST_FAULT_STOP) {
        /* one endpoint (another than the kill's, when there is one) stops for 50..500 ms after
         * a few of its operations: a peer that is slow, not dead */
        uint32_t v = pick(&rng, 0, cs->nworkers);
        if (cs->nworkers > 1 && v + 1 == cs->kill_victim) v = (v + 1) % cs->nworkers;
        cs->stop_victim = v + 1;
        cs->stop_at = 1 + splitmix64_next(&rng) % 64;
        cs->stop_ms = 50 + (unsigned)(splitmix64_next(&rng) % 451);
    }
    if ((c->faults & ST_FAULT_SIGNALS) && c->mode != ST_MODE_SCHED) /* sched: its own choices */
        cs->signal_us = c->signal_us ? c->signal_us : 200 + (unsigned)(splitmix64_next(&rng) % 800);
    rep->signal_us = cs->signal_us;
    if ((c->faults & ST_FAULT_SHORTIO) && !cs->exec) { /* exec: in the programs (execfx.h) */
        *(void **)&cs->faults_arm = dlsym(RTLD_DEFAULT, "ipcproof_faults_arm");
        *(void **)&cs->faults_count = dlsym(RTLD_DEFAULT, "ipcproof_faults_injected");
        if (cs->faults_count == NULL) cs->faults_arm = NULL;
        double rate = c->fault_rate;
        if (rate < 0) rate = 0;
        if (rate > 1) rate = 1;
        cs->fault_rate_ppm = (unsigned)(rate * 1e6);
    }
}

/* ---- reaping -------------------------------------------------------------------------------- */

static void mark_dead(struct sup *S, uint32_t pi)
{
    struct st_case *cs = &S->cs;
    for (uint32_t i = 0; i < cs->nworkers; i++)
        if (cs->cfg->mode != ST_MODE_PROCESS || i == pi)
            atomic_store_explicit(&cs->slots[i].dead, 1, memory_order_release);
}

static int ended_ok(const struct sup *S, uint32_t pi, int st)
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

static void reap_some(struct sup *S)
{
    struct st_outcome *o = &S->o;
    for (uint32_t i = 0; i < o->nproc; i++) {
        if (o->reaped[i]) continue;
        int st;
        if (waitpid(o->pids[i], &st, WNOHANG) != o->pids[i]) continue;
        o->reaped[i] = 1;
        o->status[i] = st;
        if (ended_ok(S, i, st)) continue;
        if (S->cs.cfg->crash_point && S->cs.kill_victim == i + 1 && WIFSIGNALED(st) &&
            WTERMSIG(st) == SIGKILL) { /* it died at its crash point, as asked */
            o->killed_by_fault = i + 1;
            atomic_store(&S->cs.sh->killed, i + 1);
            atomic_store(&S->cs.sh->quiet, 0); /* the others may go on */
        }
        mark_dead(S, i);
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

static int all_reaped(const struct sup *S)
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
static void signal_endpoint(struct sup *S, uint32_t v, int sig)
{
    const struct st_case *cs = &S->cs;
    pid_t g = cs->exec ? (pid_t)atomic_load(&cs->slots[v].exec_pgid) : 0;
    if (g > 1 && g != getpgrp()) kill(-g, sig);
    kill(S->o.pids[v], sig);
}

static void kill_all(struct sup *S)
{
    for (uint32_t i = 0; i < S->o.nproc; i++)
        if (!S->o.reaped[i]) {
            kill(S->o.pids[i], SIGKILL);
            kill_program(&S->cs, i); /* the endpoint the watchdog stops is the program */
        }
}

/* ---- watchdog dump -------------------------------------------------------------------------- */

static void dump_waiters(struct sup *S, char *buf, size_t cap, const char *why)
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

static void progress_line(struct sup *S, int64_t now, int final)
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
static int kill_due(struct sup *S, int64_t now, uint32_t v)
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

static void run_loop(struct sup *S)
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
    int64_t stop_t = 0;

    for (;;) {
        reap_some(S);
        st_capture_pump(&S->host.out, 0);
        if (all_reaped(S)) break;
        int64_t now = st_now_ns();
        if (interrupted) {
            atomic_store(&cs->sh->abort_run, 1);
            kill_all(S);
            setup_error(rep, "interrupted");
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
                st_report_note(rep, "stop fault: %s ended before the stop point",
                               st_endpoint_name(cs, v, nm, sizeof(nm)));
            } else if (stop_state == 1 && atomic_load(&s->ops) >= cs->stop_at &&
                       delivered(cs) >= cs->stop_at) {
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
                last_change = now; /* the stall clock starts again when it goes on */
            }
        }
        if (!cs->is_chan && cs->kill_victim && !killed_what[0]) {
            /* a lock's victim kills itself, holding the lock or not, and stamps the time */
            int64_t k = (int64_t)atomic_load(&cs->sh->kill_ns);
            uint32_t v = cs->kill_victim - 1;
            char nm[48];
            if (k > t_begin && k <= now && v < o->nproc) {
                killed_ns = k;
                snprintf(killed_what, sizeof(killed_what), "%s was killed %s",
                         st_endpoint_name(cs, v, nm, sizeof(nm)),
                         cs->kill_in_cs ? "inside the critical section" : "between acquisitions");
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
                         ", starting %.2f s after %s (kill fault): a peer's death the protocol "
                         "did not recover from",
                         (double)(last_change - killed_ns) / 1e9, killed_what);
            why = whybuf;
        } else if (now - t_begin > (int64_t)(deadline_s * 1e9)) {
            snprintf(whybuf, sizeof(whybuf), "case deadline of %.1f s passed", deadline_s);
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
            kill_all(S);
            o->watchdog_killed = 1;
            break;
        }
        if (why != NULL) {
            char dump[900];
            dump_waiters(S, dump, sizeof(dump), why);
            atomic_store(&cs->sh->abort_run, 1);
            kill_all(S);
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
            if (!ended_ok(S, i, o->status[i])) mark_dead(S, i);
        }
    o->end_ns = st_now_ns();
    if (tty && started) progress_line(S, st_now_ns(), 1);
}

/* ---- the protocol host ---------------------------------------------------------------------- */

/* A step of the host did not end as it should: a verdict about the protocol (or an error). */
static void host_failed(struct sup *S, const char *step, int r, const struct st_hmsg *m)
{
    struct st_report *rep = S->rep;
    struct st_hostconn *h = &S->host;
    if (!interrupted) snprintf(rep->setup_failure, sizeof(rep->setup_failure), "%s", step);
    if (r == 0 && !interrupted)
        st_report_add(rep, ST_V_DEADLOCK, 1,
                      "%s did not return within %.1f s (the protocol host, pid %d, was killed)",
                      step, (double)S->setup_ns / 1e9, (int)h->pid);
    st_host_kill(h);
    if (interrupted) {
        setup_error(rep, "interrupted");
    } else if (r == -1) {
        char how[128];
        st_host_describe_exit(h->status, how, sizeof(how));
        st_report_add(
            rep, ST_V_CRASH, 1, "the protocol host (pid %d) %s inside %s%s", (int)h->pid, how, step,
            WIFEXITED(h->status) ? ": the protocol ended the process (exit() called?)" : "");
    } else if (r == -2) {
        st_report_add(rep, ST_V_CRASH, 1, "%s: %s", step, m->text);
    }
}

static int host_step(struct sup *S, const char *step, int want, struct st_hmsg *m)
{
    int r = st_host_await(&S->host, want, m, st_now_ns() + S->setup_ns, &interrupted);
    if (r == 1 && (int)m->type != want) {
        r = -2;
        snprintf(m->text, sizeof(m->text), "the protocol host answered out of turn");
    }
    if (r != 1) host_failed(S, step, r, m);
    return r == 1;
}

/* Adopts the endpoints the spawner forked: they are our children once it has exited. */
static int adopt(struct sup *S, const struct st_hmsg *m)
{
    struct st_outcome *o = &S->o;
    uint32_t want = S->cs.cfg->mode != ST_MODE_PROCESS ? 1 : S->cs.nworkers;
    if (m->rc < 0 || m->npids != want) {
        setup_error(S->rep, "forking the endpoints failed: %s",
                    m->rc < 0 ? ipcp_strerror(m->rc) : "wrong count");
        return -1;
    }
    int64_t give_up = st_now_ns() + 5000000000LL;
    for (uint32_t i = 0; i < want; i++) {
        o->pids[i] = m->pids[i];
        o->nproc = i + 1;
        for (;;) {
            int st;
            pid_t w = m->pids[i] > 0 ? waitpid(m->pids[i], &st, WNOHANG) : -1;
            if (w == m->pids[i]) {
                o->reaped[i] = 1;
                o->status[i] = st;
                if (!ended_ok(S, i, st)) {
                    mark_dead(S, i);
                    if (o->crash_ns == 0) o->crash_ns = st_now_ns();
                }
                break;
            }
            if (w == 0) break; /* a live child of ours */
            if (st_now_ns() > give_up) {
                o->nproc = i; /* not ours: never signal it */
                setup_error(S->rep, "endpoint pid %d did not become a child of the supervisor",
                            (int)m->pids[i]);
                return -1;
            }
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    return 0;
}

/* ---- sanitizer reports ---------------------------------------------------------------------- */

/* The reports the sanitizers printed into the captured output, as frames of the `race` and
 * `crash` violations they explain. */
static void attach_reports(struct st_report *rep)
{
    if (rep->output == NULL) return;
    size_t pos = 0, len = strlen(rep->output);
    struct st_sanrep sr;
    while (st_sanrep_next(rep->output, len, &pos, &sr)) {
        int race = strcmp(sr.tool, "ThreadSanitizer") == 0 && strstr(sr.title, "SEGV") == NULL &&
                   strstr(sr.title, "signal") == NULL;
        for (int i = 0; i < rep->nv; i++) {
            struct st_violation *v = &rep->v[i];
            if (v->kind != (race ? ST_V_RACE : ST_V_CRASH) || v->frames[0]) continue;
            size_t fl = (size_t)snprintf(v->frames, sizeof(v->frames), "%s: %s", sr.tool, sr.title);
            for (int f = 0; f < sr.nframes && fl < sizeof(v->frames); f++) {
                const struct st_sanframe *fr = &sr.frames[f];
                char at[300] = "";
                if (fr->file[0] && fr->line)
                    snprintf(at, sizeof(at), " %s:%u", fr->file, fr->line);
                else if (fr->file[0])
                    snprintf(at, sizeof(at), " %s", fr->file);
                fl += (size_t)snprintf(v->frames + fl, sizeof(v->frames) - fl, "\n#%d %s%s%s%s", f,
                                       fr->func[0] ? fr->func : "?", at,
                                       fr->module[0] ? " in " : "", fr->module);
            }
            char one[400];
            st_sanrep_format(&sr, one, sizeof(one));
            size_t dl = strlen(v->detail);
            dl += (size_t)snprintf(v->detail + dl, sizeof(v->detail) - dl, ": %s", one);
            /* the harness's own counter, which each holder reads and writes in the critical
             * section: the lock gave TSan no happens-before between two holders */
            if (race && sr.nframes > 0 && strcmp(sr.frames[0].func, "run_locker") == 0 &&
                dl < sizeof(v->detail))
                snprintf(v->detail + dl, sizeof(v->detail) - dl,
                         " - on ipcproof's critical-section counter: ThreadSanitizer saw no "
                         "happens-before between two holders of the lock. Either its ordering is "
                         "missing (relaxed atomics), or it synchronises through the kernel "
                         "(flock, fcntl, semop, a futex), which TSan cannot see: annotate that "
                         "with __tsan_release/__tsan_acquire (docs/plugins.md, section 5)");
            break;
        }
    }
}

/* ---- one run -------------------------------------------------------------------------------- */

static int check_sizes(const struct st_config *c, int chan, struct st_report *rep)
{
    if (c->mode != ST_MODE_PROCESS && (c->faults & ST_FAULT_KILL)) {
        setup_error(rep, "--fault kill needs --mode process (a SIGKILL ends every thread)");
        return -1;
    }
    if (chan) {
        if (c->producers < 1 || c->consumers < 1 ||
            c->producers + c->consumers > ST_MAX_ENDPOINTS) {
            setup_error(rep, "--producers and --consumers must be >= 1 and add up to at most %u",
                        ST_MAX_ENDPOINTS);
            return -1;
        }
        if (c->min_size < ST_HDR_SIZE || c->max_size < c->min_size || c->max_size > ST_MAX_MSG) {
            setup_error(rep,
                        "message sizes must satisfy %u <= --min-size <= --max-size <= %u "
                        "(every message carries a %u-byte header)",
                        ST_HDR_SIZE, ST_MAX_MSG, ST_HDR_SIZE);
            return -1;
        }
    } else if (c->workers < 1 || c->workers > ST_MAX_ENDPOINTS) {
        setup_error(rep, "--workers must be in 1..%u", ST_MAX_ENDPOINTS);
        return -1;
    }
    if (c->messages == 0 && c->duration <= 0) {
        setup_error(rep, "--messages or --duration must bound the run");
        return -1;
    }
    return 0;
}

/* Whether a ThreadSanitizer report from this case is a verdict. */
static void judge_race(const struct st_config *c, struct st_outcome *o)
{
    o->race_trusted = 1;
    if (c->plugin == NULL) return; /* built-in: the core library is built like ipcproof */
    char why[160] = "";
    int k = st_elf_tsan_kind(c->plugin, why, sizeof(why));
    if (k == ST_TSAN_CLANG) return;
    o->race_trusted = 0;
    snprintf(o->race_why, sizeof(o->race_why),
             "%s is not built with clang's -fsanitize=thread, so ThreadSanitizer cannot see its "
             "synchronisation (build it with clang-14 -fsanitize=thread, or use --plugin-src)",
             c->plugin);
}

static void after_run_notes(struct sup *S)
{
    struct st_case *cs = &S->cs;
    const struct st_config *c = cs->cfg;
    struct st_report *rep = S->rep;
    rep->signals = atomic_load(&cs->sh->signals);
    rep->io_faults = atomic_load(&cs->sh->io_faults);
    if (cs->sched_rep != NULL) /* the schedules' total is noted by runs.c */
        rep->signals = cs->sched_rep->interrupts;
    else if (cs->exec && (c->faults & (ST_FAULT_SIGNALS | ST_FAULT_SHORTIO)))
        st_exfx_judge(cs, rep, S->o.start_ns != 0);
    else if (c->faults & ST_FAULT_SIGNALS)
        st_report_note(
            rep, "signal storm: %" PRIu64 " SIGALRMs handled by the workers (one every %u us)",
            rep->signals, cs->signal_us);
    if ((c->faults & ST_FAULT_SHORTIO) && !cs->exec) {
        st_report_note(rep, "short-io: %" PRIu64 " short counts, EINTRs and EAGAINs injected",
                       rep->io_faults);
        if (rep->io_faults == 0 && S->o.start_ns)
            snprintf(rep->na, sizeof(rep->na),
                     "--fault short-io injected nothing: no I/O call of the protocol was one the "
                     "kernel could interrupt or cut short (shared memory or message queues; "
                     "records of at most PIPE_BUF bytes on pipes)");
    }
    if (!cs->is_chan && cs->kill_victim && !c->crash_point) {
        uint32_t v = cs->kill_victim - 1;
        char nm[48];
        if (v < S->o.nproc && S->o.reaped[v] && WIFSIGNALED(S->o.status[v]))
            st_report_note(rep, "kill fault: %s killed%s", st_endpoint_name(cs, v, nm, sizeof(nm)),
                           cs->kill_in_cs ? " inside the critical section" : "");
        else
            st_report_note(rep, "kill fault: %s ended before the kill point",
                           st_endpoint_name(cs, v, nm, sizeof(nm)));
    }
}

/* Destroy in the host, then end whatever the protocol left running. */
static void finish_host(struct sup *S, int created)
{
    struct st_hostconn *h = &S->host;
    struct st_report *rep = S->rep;
    if (!S->host_started) return;
    if (created && !h->exited) {
        struct st_hmsg m;
        if (st_host_cmd(h, ST_HC_DESTROY) == 0 && host_step(S, "destroy()", ST_HM_DESTROYED, &m)) {
            int st;
            if (st_wait_until(h->pid, &st, st_now_ns() + 2000000000LL, NULL) == 1) {
                h->exited = 1;
                h->status = st;
            }
        }
    }
    if (!h->exited) st_host_cmd(h, ST_HC_QUIT);
    if (!h->exited && st_wait_until(h->pid, &h->status, st_now_ns() + 500000000LL, NULL) == 1)
        h->exited = 1;
    st_host_kill(h);
    /* the endpoints are reaped: every child left is something the protocol forked */
    char who[600] = "";
    size_t n = st_sweep(NULL, 0, SWEEP_GRACE_NS, who, sizeof(who));
    if (n)
        st_report_add(rep, ST_V_LEAK, n,
                      "process%s the protocol started still running after destroy(): %s (killed)",
                      n == 1 ? "" : "es", who);
    st_capture_pump(&h->out, 0);
}

int st_run_once(const struct st_config *c, struct st_report *rep, int verify, uint64_t schedule)
{
    static unsigned case_no;
    struct sup *S = calloc(1, sizeof(*S));
    if (S == NULL) {
        setup_error(rep, "out of memory");
        return 2;
    }
    S->rep = rep;
    S->setup_ns = (int64_t)((c->setup > 0 ? c->setup : ST_SETUP_MS / 1000.0) * 1e9);
    struct st_case *cs = &S->cs;
    cs->cfg = c;
    cs->verify = verify;
    cs->schedule = schedule;
    snprintf(cs->run_id, sizeof(cs->run_id), "ipcproof-%d-%u", (int)getpid(), ++case_no);
    snprintf(rep->run_id, sizeof(rep->run_id), "%s", cs->run_id);
    judge_race(c, &S->o);
    struct st_snapshot before = {0}, after = {0};
    void *area = NULL;
    size_t area_len = 0, plan_len = (sizeof(struct st_case) + page_size() - 1) & ~(page_size() - 1);
    int created = 0, r;
    struct st_hmsg m;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    /* everything the host and the endpoints inherit is ready before the host is forked */
    cs->seq_cap = c->messages ? c->messages : ST_DURATION_CAP;
    cs->bitmap_words = (size_t)((cs->seq_cap + 63) / 64);
    size_t minsz = c->min_size < ST_HDR_SIZE ? ST_HDR_SIZE : c->min_size;
    size_t maxsz = c->max_size < minsz ? minsz : c->max_size;
    r = st_payload_init(&cs->pl, c->seed, minsz, maxsz > ST_MAX_MSG ? ST_MAX_MSG : maxsz);
    if (r == 0) r = map_results(cs, c, &area, &area_len);
    if (r < 0) {
        setup_error(rep, "results area: %s", ipcp_strerror(r));
        goto out;
    }
    S->plan = mmap(NULL, plan_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S->plan == MAP_FAILED) {
        S->plan = NULL;
        setup_error(rep, "mmap: %s", strerror(errno));
        goto out;
    }
    if (c->mode == ST_MODE_SCHED) {
        void *m = mmap(NULL, sizeof(struct st_sched_report), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            setup_error(rep, "mmap: %s", strerror(errno));
            goto out;
        }
        cs->sched_rep = m;
    }
    st_snapshot_take(&before, rep->run_id);

    /* load */
    struct st_hostargs ha = {.proto = c->proto,
                             .plugin = c->plugin,
                             .instrumented =
                                 c->mode == ST_MODE_SCHED || c->crash_point || c->crash_points,
                             .cs = S->plan};
    r = st_host_start(&S->host, &ha);
    if (r < 0) {
        setup_error(rep, "fork: %s", strerror(-r));
        goto out;
    }
    S->host_started = 1;
    r = st_host_await(&S->host, ST_HM_LOADED, &m, st_now_ns() + S->setup_ns, &interrupted);
    if (r == 1 && m.type == ST_HM_LOAD_FAILED) { /* not a verdict: an error (missing file...) */
        setup_error(rep, "%s", m.text);
        goto finish;
    }
    if (r == 1 && m.type != ST_HM_LOADED) {
        r = -2;
        snprintf(m.text, sizeof(m.text), "the protocol host answered out of turn");
    }
    if (r != 1) {
        host_failed(S, "loading the plugin (its constructors)", r, &m);
        goto finish;
    }
    int chan = c->kind == ST_KIND_LOCK ? 0 : c->kind == ST_KIND_CHANNEL ? 1 : m.has_chan != 0;
    rep->chan = chan;
    rep->kind_known = 1;
    if ((chan && !m.has_chan) || (!chan && !m.has_lock)) {
        setup_error(rep, "%s does not export a %s protocol", c->proto ? c->proto : c->plugin,
                    chan ? "channel" : "lock");
        goto finish;
    }
    snprintf(rep->proto_name, sizeof(rep->proto_name), "%s", chan ? m.chan_name : m.lock_name);
    rep->proto_flags = chan ? m.chan_flags : m.lock_flags;
    if (check_sizes(c, chan, rep) < 0) goto finish;
    if (c->mode != ST_MODE_PROCESS &&
        (rep->proto_flags & (chan ? IPCP_CHAN_PROCESSES : IPCP_LOCK_PROCESSES))) {
        snprintf(rep->na, sizeof(rep->na),
                 "%s declares IPCP_%s_PROCESSES: it works between processes, not between the "
                 "threads of one, and %s mode runs every endpoint as a thread",
                 rep->proto_name, chan ? "CHAN" : "LOCK", st_mode_name(c->mode));
        goto finish;
    }
    if (c->crash_point && !chan && !(rep->proto_flags & IPCP_LOCK_ROBUST)) {
        setup_error(rep, "crash points kill a holder inside lock() or unlock(): only a lock that "
                         "claims IPCP_LOCK_ROBUST has to survive that");
        goto finish;
    }
    lay_out(cs, c, chan, rep->proto_flags);
    choose_faults(cs, c, rep);
    if ((c->faults & ST_FAULT_SHORTIO) && !cs->exec && cs->faults_arm == NULL) {
        setup_error(rep, "--fault short-io: the interposer libipcproof-faults.so is not loaded");
        goto finish;
    }
    memcpy(S->plan, cs, sizeof(*cs)); /* the host's copy; ours stays out of its reach */

    /* create, spawn */
    if (st_host_cmd(&S->host, chan ? ST_HC_CREATE_CHAN : ST_HC_CREATE_LOCK) < 0) {
        host_failed(S, "create()", -1, &m);
    } else if (host_step(S, "create()", ST_HM_CREATED, &m)) {
        if (m.rc < 0 && c->exec_setup != NULL && m.rc != -ENOTSUP) {
            setup_error(rep, "--exec-setup '%s' failed (its output is below)", c->exec_setup);
            rep->create_err = m.rc;
        } else if (m.rc == -ENOTSUP && c->exec_setup != NULL) {
            setup_error(rep, "--exec-setup declined this configuration (exit %d): not supported",
                        ST_EXEC_DECLINE);
            rep->create_err = m.rc;
        } else if (m.rc < 0) {
            char eb[64];
            snprintf(eb, sizeof(eb), "%s", ipcp_errname(m.rc));
            setup_error(rep, "create() returned %s%s (%s)", strcmp(eb, "E?") ? "-" : "",
                        strcmp(eb, "E?") ? eb : "an unknown code", ipcp_strerror(m.rc));
            if (!strcmp(eb, "E?"))
                snprintf(rep->error + strlen(rep->error), sizeof(rep->error) - strlen(rep->error),
                         ": %d", m.rc);
            rep->create_err = m.rc;
        } else {
            created = 1;
            if (host_step(S, "forking the endpoints", ST_HM_SPAWNED, &m) && adopt(S, &m) == 0)
                run_loop(S);
            else {
                atomic_store(&cs->sh->abort_run, 1);
                kill_all(S);
                for (uint32_t i = 0; i < S->o.nproc; i++)
                    if (!S->o.reaped[i]) st_kill_reap(S->o.pids[i]);
            }
        }
    }
    if (rep->status != 2 && S->o.nproc > 0) {
        if (cs->sched_rep != NULL)
            st_sched_outcome(cs->sched_rep, cs->schedule, S->o.nproc && !S->o.watchdog_killed, rep);
        st_check_case(cs, &S->o, rep);
        after_run_notes(S);
    }
    if (c->crash_point && cs->kill_victim && cs->sh != NULL) {
        rep->crash_point = c->crash_point;
        rep->crash_not_alone = atomic_load(&cs->sh->quiet_late) != 0;
        uint64_t seen = atomic_load(&cs->slots[cs->kill_victim - 1].crash_seen);
        if (seen)
            rep->crash_points_all = seen; /* it lived: the point is past its operation */
        else if (S->o.killed_by_fault == cs->kill_victim)
            st_report_note(rep, "crash point %" PRIu64 ": %s died there", c->crash_point,
                           st_endpoint_name(cs, cs->kill_victim - 1, (char[48]){0}, 48));
        else if (rep->status == 0 && !rep->nv)
            /* neither dead nor past its operation: it never got to one (a consumer no producer
             * writes to, say), so no point can be tried; --crash-points would count in vain */
            snprintf(rep->na, sizeof(rep->na),
                     "crash point %" PRIu64 ": %s never reached its third operation, so it had "
                     "nowhere to die (another --seed picks another endpoint)",
                     c->crash_point, st_endpoint_name(cs, cs->kill_victim - 1, (char[48]){0}, 48));
    }
    if (cs->sched_rep != NULL && rep->status != 2) {
        if (rep->nv && cs->sched_rep->status != ST_SCHED_DEADLOCK &&
            cs->sched_rep->status != ST_SCHED_LOSTWAKE && cs->sched_rep->status != ST_SCHED_RACE)
            st_symbolize(cs->sched_rep);
        free(rep->sched);
        rep->sched = malloc(sizeof(*rep->sched));
        if (rep->sched != NULL) memcpy(rep->sched, cs->sched_rep, sizeof(*rep->sched));
        rep->schedule = schedule;
    }
finish:
    finish_host(S, created);
    st_snapshot_take(&after, rep->run_id);
    {
        char lbuf[900] = "";
        size_t foreign = 0;
        size_t n = st_snapshot_diff(&before, &after, rep->run_id, rep->sandboxed, lbuf,
                                    sizeof(lbuf), &foreign);
        if (n) {
            int st = rep->status;
            st_report_add(rep, ST_V_LEAK, n, "left behind after destroy(): %s (removed)", lbuf);
            if (st == 2) rep->status = 2;
            st_snapshot_remove(&before, &after, rep->run_id, rep->sandboxed);
        }
        if (foreign)
            st_report_note(rep,
                           "%zu new IPC object%s not named with this run's id appeared meanwhile "
                           "(another program's?): not counted as a leak",
                           foreign, foreign == 1 ? "" : "s");
    }
    st_snapshot_free(&before);
    st_snapshot_free(&after);
    if (S->host_started) {
        uint64_t dropped = 0;
        free(rep->output);
        rep->output = st_capture_text(&S->host.out, &dropped);
        rep->output_dropped = dropped;
        attach_reports(rep);
        st_host_fini(&S->host);
    }
out:
    if (cs->sched_rep != NULL) munmap(cs->sched_rep, sizeof(struct st_sched_report));
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (S->plan != NULL) munmap(S->plan, plan_len);
    if (area != NULL) munmap(area, area_len);
    st_payload_fini(&cs->pl);
    free(S);
    if (rep->status == 0 && rep->nv) rep->status = 1;
    return rep->status;
}

void st_report_free(struct st_report *rep)
{
    free(rep->output);
    rep->output = NULL;
    free(rep->sched);
    rep->sched = NULL;
    free(rep->dfs_path);
    rep->dfs_path = NULL;
}

int st_interrupted(void)
{
    return interrupted;
}

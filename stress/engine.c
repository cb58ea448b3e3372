/* engine.c - the supervisor of one stress case.
 *
 * Phases: create -> spawn -> start barrier -> run (bounded by count and time) -> stop -> reap
 * and decode every wait status -> check -> destroy. destroy() runs on every path once create()
 * succeeded, failures and watchdog kills included. The supervisor calls nothing of the protocol
 * but create() and destroy(); it never starts a thread (a ThreadSanitizer child forked from a
 * multi-threaded process would be unchecked), and it waits for its workers by polling their
 * wait status and the shared results area, so nothing it does can block on the protocol.
 *
 * The watchdog: a case has a deadline (max(10 s, 4 x the expected run time) unless --watchdog),
 * and a stall limit (no operation completed by anybody for --stall seconds, 5 s by default).
 * Either turns into a `deadlock` violation whose detail says what every live worker is doing
 * and since when (each publishes its phase in its slot); then every worker is SIGKILLed,
 * reaped, and the protocol destroyed. A run never hangs. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
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
#include <dlfcn.h>

#include "internal.h"
#include "ipcproof/err.h"
#include "stress.h"

#define TSAN_EXIT 66

static const char *const vkind_names[ST_V_NKINDS] = {
    [ST_V_LOSS] = "loss",   [ST_V_DUPLICATE] = "duplicate", [ST_V_REORDER] = "reorder",
    [ST_V_TORN] = "torn",   [ST_V_EXCLUSION] = "exclusion", [ST_V_DEADLOCK] = "deadlock",
    [ST_V_CRASH] = "crash", [ST_V_RACE] = "race",           [ST_V_LEAK] = "leak",
    [ST_V_ERROR] = "error",
};

const char *st_vkind_name(int kind)
{
    return kind >= 0 && kind < ST_V_NKINDS ? vkind_names[kind] : "?";
}

static const char *const phase_names[ST_PH_NPHASES] = {
    [ST_PH_START] = "start",         [ST_PH_OPEN] = "open()",     [ST_PH_BARRIER] = "start barrier",
    [ST_PH_SEND] = "send()",         [ST_PH_RECV] = "recv()",     [ST_PH_LOCK] = "lock()",
    [ST_PH_CS] = "critical section", [ST_PH_UNLOCK] = "unlock()", [ST_PH_CLOSE] = "close()",
    [ST_PH_DONE] = "done",
};

const char *st_phase_name(int phase)
{
    return phase >= 0 && phase < ST_PH_NPHASES ? phase_names[phase] : "?";
}

/* ---- report helpers ------------------------------------------------------------------------ */

void st_report_add(struct st_report *r, int kind, uint64_t count, const char *fmt, ...)
{
    if (r->status < 1) r->status = 1;
    for (int i = 0; i < r->nv; i++) {
        if (r->v[i].kind == kind) { /* one entry per kind: add up, keep the first detail */
            r->v[i].count += count;
            return;
        }
    }
    if (r->nv >= ST_MAX_VIOLATIONS) return;
    struct st_violation *v = &r->v[r->nv++];
    v->kind = kind;
    v->count = count;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
    va_end(ap);
}

void st_report_note(struct st_report *r, const char *fmt, ...)
{
    size_t len = strlen(r->notes);
    if (len + 4 >= sizeof(r->notes)) return;
    if (len) {
        strcpy(r->notes + len, "; ");
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes + len, sizeof(r->notes) - len, fmt, ap);
    va_end(ap);
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

static const char *errstr(int err)
{
    static _Thread_local char buf[160];
    snprintf(buf, sizeof(buf), "%s (%s)", ipcp_errname(err), ipcp_strerror(err));
    return buf;
}

/* ---- the supervisor's view of one case ---------------------------------------------------------
 */

struct sup {
    struct st_case cs;
    struct st_report *rep;
    pid_t pids[ST_MAX_ENDPOINTS]; /* process mode: per worker; thread mode: pids[0] = child */
    int status[ST_MAX_ENDPOINTS];
    int reaped[ST_MAX_ENDPOINTS];
    uint32_t nproc;
    int watchdog_killed;
    int killed_by_fault; /* pid index killed by --fault kill (channels) + 1 */
    int64_t crash_ns;    /* when the first worker that was not killed on purpose died */
    int64_t start_ns;
};

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const char *role_name(const struct st_case *cs, uint32_t i, char *buf, size_t cap)
{
    const struct st_worker *w = &cs->w[i];
    const char *r = w->role == ST_ROLE_PRODUCER   ? "producer"
                    : w->role == ST_ROLE_CONSUMER ? "consumer"
                                                  : "worker";
    snprintf(buf, cap, "%s %" PRIu32, r, w->rindex);
    return buf;
}

static size_t slots_offset(void)
{
    return (sizeof(struct st_shared) + 63u) & ~(size_t)63u;
}

static int map_results(struct st_case *cs)
{
    size_t off = slots_offset();
    size_t slots = sizeof(struct st_slot) * cs->nworkers;
    size_t bm = cs->bitmap_words * sizeof(uint64_t) * cs->producers;
    cs->map_len = off + slots + bm;
    /* MAP_SHARED before the fork: survives the death of any worker; NORESERVE: the bitmaps of
     * a duration-bounded run are sized for the cap but only touched where messages land */
    void *m = mmap(NULL, cs->map_len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -errno;
    cs->sh = m;
    cs->slots = (struct st_slot *)((char *)m + off);
    cs->bitmaps = (_Atomic uint64_t *)((char *)m + off + slots);
    return 0;
}

static uint64_t sum_ops(const struct st_case *cs, uint32_t from, uint32_t n)
{
    uint64_t t = 0;
    for (uint32_t i = from; i < from + n; i++)
        t += atomic_load_explicit(&cs->slots[i].ops, memory_order_acquire);
    return t;
}

/* ---- spawning ------------------------------------------------------------------------------- */

static int spawn(struct sup *S)
{
    struct st_case *cs = &S->cs;
    fflush(stdout);
    fflush(stderr);
    if (cs->cfg->mode == ST_MODE_THREAD) {
        pid_t pid = fork();
        if (pid < 0) return -errno;
        if (pid == 0) {
            st_child_setup(cs);
            _exit(st_thread_child(cs));
        }
        S->pids[0] = pid;
        S->nproc = 1;
        return 0;
    }
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        pid_t pid = fork();
        if (pid < 0) return -errno;
        if (pid == 0) {
            st_child_setup(cs);
            _exit(st_worker_main(&cs->w[i]));
        }
        S->pids[i] = pid;
        cs->w[i].pid = pid;
        S->nproc = i + 1;
    }
    return 0;
}

static void kill_all(struct sup *S)
{
    for (uint32_t i = 0; i < S->nproc; i++)
        if (!S->reaped[i]) kill(S->pids[i], SIGKILL);
}

/* Marks the slots of a process that ended abnormally as dead, so its peers stop waiting. */
static void mark_dead(struct sup *S, uint32_t pi)
{
    struct st_case *cs = &S->cs;
    if (cs->cfg->mode == ST_MODE_THREAD) {
        for (uint32_t i = 0; i < cs->nworkers; i++)
            atomic_store_explicit(&cs->slots[i].dead, 1, memory_order_release);
    } else {
        atomic_store_explicit(&cs->slots[pi].dead, 1, memory_order_release);
    }
}

static int reap_some(struct sup *S, int block)
{
    int n = 0;
    for (uint32_t i = 0; i < S->nproc; i++) {
        if (S->reaped[i]) continue;
        int st;
        pid_t r = waitpid(S->pids[i], &st, block ? 0 : WNOHANG);
        if (r == S->pids[i]) {
            S->reaped[i] = 1;
            S->status[i] = st;
            n++;
            if (!(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == ST_EXIT_SETUP))) {
                mark_dead(S, i);
                int on_purpose = S->watchdog_killed || (uint32_t)S->killed_by_fault == i + 1 ||
                                 (S->cs.lock != NULL && S->cs.kill_victim == i + 1);
                if (!on_purpose && S->crash_ns == 0) S->crash_ns = ipcp__now_ns();
            }
        }
    }
    return n;
}

static int all_reaped(const struct sup *S)
{
    for (uint32_t i = 0; i < S->nproc; i++)
        if (!S->reaped[i]) return 0;
    return 1;
}

/* ---- watchdog dump ----------------------------------------------------------------------------
 */

static void dump_waiters(struct sup *S, char *buf, size_t cap, const char *why)
{
    struct st_case *cs = &S->cs;
    int64_t now = ipcp__now_ns();
    size_t len = (size_t)snprintf(buf, cap, "%s; ", why);
    int any = 0;
    for (uint32_t i = 0; i < cs->nworkers && len < cap; i++) {
        struct st_slot *s = &cs->slots[i];
        if (atomic_load(&s->done) || atomic_load(&s->dead)) continue;
        int ph = (int)atomic_load(&s->phase);
        double for_s = (double)(now - atomic_load(&s->since_ns)) / 1e9;
        pid_t pid = cs->cfg->mode == ST_MODE_THREAD ? S->pids[0] : S->pids[i];
        len += (size_t)snprintf(
            buf + len, cap - len,
            "%s%s (pid %d) in %s #%" PRIu64 " for %.1f s, %" PRIu64 " done, %" PRIu64 " retried",
            any ? "; " : "", role_name(cs, i, (char[48]){0}, 48), (int)pid, st_phase_name(ph),
            atomic_load(&s->cur_seq), for_s, atomic_load(&s->ops), atomic_load(&s->retries));
        any = 1;
    }
    if (!any && len < cap) snprintf(buf + len, cap - len, "no worker is running");
}

/* ---- fault choices ----------------------------------------------------------------------------
 */

static void choose_faults(struct st_case *cs)
{
    const struct st_config *c = cs->cfg;
    uint64_t rng = st_mix64(c->seed ^ 0x6b696c6cull);
    if (c->faults & ST_FAULT_KILL) {
        uint32_t v = (uint32_t)(st_rand(&rng) % cs->nworkers);
        cs->kill_victim = v + 1;
        if (cs->chan != NULL) {
            /* a point in time when the run is bounded by time, else an operation count */
            uint64_t expect = c->messages;
            if (cs->w[v].role == ST_ROLE_CONSUMER && expect)
                expect = expect * cs->producers / cs->consumers;
            if (c->duration > 0) {
                double frac = 0.1 + 0.5 * (double)(st_rand(&rng) % 1000) / 1000.0;
                cs->kill_time_ns = (int64_t)(frac * c->duration * 1e9);
                if (cs->kill_time_ns < 1) cs->kill_time_ns = 1;
            } else {
                cs->kill_at = 1 + st_rand(&rng) % (expect / 2 ? expect / 2 : 1);
            }
        } else {
            /* early in the run (the victim's first 256 acquisitions), so that the rest of the
             * run tests the recovery */
            uint64_t lim = c->messages ? c->messages / 2 : 256;
            if (lim > 256) lim = 256;
            cs->kill_at = st_rand(&rng) % (lim ? lim : 1);
            cs->kill_in_cs = (cs->lock->flags & IPCP_LOCK_ROBUST) != 0;
        }
    }
    if (c->faults & ST_FAULT_SIGNALS) cs->signal_us = 200 + (unsigned)(st_rand(&rng) % 800);
    if (c->faults & ST_FAULT_SHORTIO) {
        *(void **)&cs->faults_arm = dlsym(RTLD_DEFAULT, "ipcproof_faults_arm");
        *(void **)&cs->faults_count = dlsym(RTLD_DEFAULT, "ipcproof_faults_injected");
        if (cs->faults_count == NULL) cs->faults_arm = NULL;
        double rate = c->fault_rate;
        if (rate < 0) rate = 0;
        if (rate > 1) rate = 1;
        cs->fault_rate_ppm = (unsigned)(rate * 1e6);
    }
}

/* ---- the run loop -------------------------------------------------------------------------------
 */

static void progress_line(struct sup *S, int64_t now, int final)
{
    struct st_case *cs = &S->cs;
    double t = (double)(now - S->start_ns) / 1e9;
    if (cs->chan) {
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
        uint32_t n = cs->chan ? cs->producers : cs->nworkers;
        est = (double)c->messages * n / 5000.0; /* pessimistic: sanitizers, 2 loaded cores */
    }
    if (c->duration > 0 && (est == 0 || c->duration < est)) est = c->duration;
    return est;
}

static void run_loop(struct sup *S)
{
    struct st_case *cs = &S->cs;
    const struct st_config *c = cs->cfg;
    struct st_report *rep = S->rep;
    int tty = c->progress > 0 || (c->progress < 0 && isatty(2));
    double deadline_s = c->watchdog > 0 ? c->watchdog : 4 * expected_seconds(cs);
    if (deadline_s < 10) deadline_s = 10;
    deadline_s += (double)ST_DRAIN_MS / 1000.0;
    int64_t stall_ns = (int64_t)((c->stall > 0 ? c->stall : ST_STALL_MS / 1000.0) * 1e9);
    int64_t t_begin = ipcp__now_ns();
    int64_t last_change = t_begin, last_progress_print = t_begin;
    uint64_t mark = progress_mark(cs);
    int started = 0, stopped = 0;
    int kill_pending = cs->kill_victim != 0 && cs->chan != NULL;

    for (;;) {
        reap_some(S, 0);
        if (all_reaped(S)) break;
        int64_t now = ipcp__now_ns();
        if (interrupted) {
            atomic_store(&cs->sh->abort_run, 1);
            kill_all(S);
            setup_error(rep, "interrupted");
            break;
        }
        /* start barrier: go once every worker opened its endpoint (or failed to) */
        if (!started) {
            uint32_t ready = 0, failed = 0;
            for (uint32_t i = 0; i < cs->nworkers; i++) {
                ready += atomic_load(&cs->slots[i].opened) != 0;
                failed +=
                    atomic_load(&cs->slots[i].done) != 0 || atomic_load(&cs->slots[i].dead) != 0;
            }
            if (failed) atomic_store(&cs->sh->abort_run, 1);
            if (ready == cs->nworkers || failed) {
                S->start_ns = ipcp__now_ns();
                atomic_store_explicit(&cs->sh->start_ns, S->start_ns, memory_order_relaxed);
                /* release: pairs with the workers' acquire in wait_go */
                atomic_store_explicit(&cs->sh->go, 1, memory_order_release);
                syscall(SYS_futex, (uint32_t *)&cs->sh->go, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
                started = 1;
                last_progress_print = now;
            }
        }
        if (started && !stopped) {
            int stop = 0;
            if (c->duration > 0 && now - S->start_ns >= (int64_t)(c->duration * 1e9)) stop = 1;
            if (cs->chan != NULL) {
                uint32_t gone = 0;
                for (uint32_t i = cs->producers; i < cs->nworkers; i++)
                    gone += atomic_load(&cs->slots[i].done) || atomic_load(&cs->slots[i].dead);
                if (gone == cs->consumers) stop = 1; /* nobody left to receive */
            }
            if (stop) {
                atomic_store_explicit(&cs->sh->stop, 1, memory_order_release);
                stopped = 1;
            }
        }
        if (started && kill_pending) {
            uint32_t v = cs->kill_victim - 1;
            struct st_slot *s = &cs->slots[v];
            int fire = cs->kill_time_ns ? now - S->start_ns >= cs->kill_time_ns
                                        : atomic_load(&s->ops) >= cs->kill_at;
            if (atomic_load(&s->done) || atomic_load(&s->dead)) {
                kill_pending = 0;
                st_report_note(rep, "kill fault: %s ended before the kill point",
                               role_name(cs, v, (char[48]){0}, 48));
            } else if (fire) {
                kill(S->pids[v], SIGKILL);
                atomic_store(&cs->sh->killed, v + 1);
                atomic_store(&cs->sh->kill_ns, now);
                S->killed_by_fault = (int)v + 1;
                kill_pending = 0;
            }
        }
        uint64_t m = progress_mark(cs);
        if (m != mark) {
            mark = m;
            last_change = now;
        }
        const char *why = NULL;
        char whybuf[96];
        if (now - last_change > stall_ns) {
            snprintf(whybuf, sizeof(whybuf), "no progress for %.1f s", (double)stall_ns / 1e9);
            why = whybuf;
        } else if (now - t_begin > (int64_t)(deadline_s * 1e9)) {
            snprintf(whybuf, sizeof(whybuf), "case deadline of %.1f s passed", deadline_s);
            why = whybuf;
        }
        if (why != NULL) {
            char dump[900];
            dump_waiters(S, dump, sizeof(dump), why);
            atomic_store(&cs->sh->abort_run, 1);
            kill_all(S);
            S->watchdog_killed = 1;
            st_report_add(rep, ST_V_DEADLOCK, 1, "%s", dump);
            break;
        }
        if (tty && started && now - last_progress_print >= 1000000000) {
            progress_line(S, now, 0);
            last_progress_print = now;
        }
        struct timespec ts = {0, kill_pending ? 1000000L : 5000000L};
        nanosleep(&ts, NULL);
    }
    reap_some(S, 1);
    if (tty && started) progress_line(S, ipcp__now_ns(), 1);
}

/* ---- check ------------------------------------------------------------------------------------
 */

static int tolerated_after_kill(int err)
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

static void check_exits(struct sup *S)
{
    struct st_case *cs = &S->cs;
    struct st_report *rep = S->rep;
    for (uint32_t i = 0; i < S->nproc; i++) {
        int st = S->status[i];
        char who[64];
        if (cs->cfg->mode == ST_MODE_THREAD)
            snprintf(who, sizeof(who), "thread-mode child (pid %d)", (int)S->pids[i]);
        else
            snprintf(who, sizeof(who), "%s (pid %d)", role_name(cs, i, (char[48]){0}, 48),
                     (int)S->pids[i]);
        /* a fatal signal the worker recorded before its sanitizer turned it into an exit */
        uint32_t sig = 0;
        for (uint32_t k = 0; k < cs->nworkers && !sig; k++)
            if (cs->cfg->mode == ST_MODE_THREAD || k == i)
                sig = atomic_load(&cs->slots[k].crash_sig);
        if (WIFEXITED(st) && sig != 0) {
            st_report_add(rep, ST_V_CRASH, 1,
                          "%s died of signal %u (%s); the sanitizer's report is above (exit status "
                          "%d)",
                          who, sig, strsignal((int)sig), WEXITSTATUS(st));
            continue;
        }
        if (WIFEXITED(st)) {
            int code = WEXITSTATUS(st);
            if (code == 0 || code == ST_EXIT_SETUP) continue;
            if (code == TSAN_EXIT)
                st_report_add(rep, ST_V_RACE, 1,
                              "%s exited with status 66: a ThreadSanitizer report (see its "
                              "output above)",
                              who);
            else
                st_report_add(rep, ST_V_CRASH, 1, "%s exited with status %d%s", who, code,
                              code == 1 ? " (a sanitizer report?)" : "");
        } else if (WIFSIGNALED(st)) {
            int sig = WTERMSIG(st);
            if (sig == SIGKILL && (S->watchdog_killed || (uint32_t)S->killed_by_fault == i + 1 ||
                                   (cs->lock != NULL && cs->kill_victim == i + 1)))
                continue;
            st_report_add(rep, ST_V_CRASH, 1, "%s killed by signal %d (%s)%s", who, sig,
                          strsignal(sig), WCOREDUMP(st) ? ", core dumped" : "");
        }
    }
}

static void check_slots_common(struct sup *S, int killed)
{
    struct st_case *cs = &S->cs;
    struct st_report *rep = S->rep;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        struct st_slot *s = &cs->slots[i];
        int err = atomic_load_explicit(&s->err, memory_order_acquire);
        if (err == 0) continue;
        int ph = (int)atomic_load(&s->err_op);
        char who[48];
        role_name(cs, i, who, sizeof(who));
        int64_t at = atomic_load(&s->err_ns);
        if (killed && at >= atomic_load(&cs->sh->kill_ns) && tolerated_after_kill(err)) {
            st_report_note(rep, "%s: %s returned %s after the kill fault", who, st_phase_name(ph),
                           ipcp_errname(err));
            continue;
        }
        if (S->crash_ns && at >= S->crash_ns - 100000000) { /* a consequence of the crash */
            st_report_note(rep, "%s: %s returned %s after a peer crashed", who, st_phase_name(ph),
                           ipcp_errname(err));
            continue;
        }
        st_report_add(rep, ST_V_ERROR, 1, "%s: %s #%" PRIu64 " returned %s", who, st_phase_name(ph),
                      atomic_load(&s->err_seq), errstr(err));
    }
}

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

static void check_channel(struct sup *S)
{
    struct st_case *cs = &S->cs;
    struct st_report *rep = S->rep;
    uint32_t killed = atomic_load(&cs->sh->killed);
    check_slots_common(S, killed != 0);
    static const int kinds[] = {ST_V_TORN, ST_V_DUPLICATE, ST_V_REORDER};
    for (size_t k = 0; k < IPCP_ARRAY_SIZE(kinds); k++) {
        int kind = kinds[k];
        for (uint32_t i = cs->producers; i < cs->nworkers; i++) {
            struct st_slot *s = &cs->slots[i];
            uint64_t n = atomic_load_explicit(&s->vcount[kind], memory_order_acquire);
            if (n == 0) continue;
            struct st_vfirst *f = &s->vfirst[kind];
            char who[48];
            role_name(cs, i, who, sizeof(who));
            if (kind == ST_V_TORN)
                st_report_add(rep, kind, n,
                              "%s: message of %" PRIu64 " bytes (header says producer %" PRIu32
                              " seq %" PRIu64 "): %s",
                              who, f->a, f->producer, f->seq,
                              f->b ? (const char *)(uintptr_t)f->b : "corrupt");
            else if (kind == ST_V_DUPLICATE)
                st_report_add(rep, kind, n,
                              "%s: producer %" PRIu32 " seq %" PRIu64 " delivered again", who,
                              f->producer, f->seq);
            else
                st_report_add(rep, kind, n,
                              "%s: producer %" PRIu32 " seq %" PRIu64 " arrived after seq %" PRIu64,
                              who, f->producer, f->seq, f->a);
        }
    }
    /* loss: every seq recorded as sent must have been delivered */
    /* a consumer that died or failed took what it had read with it; one that stopped on the
     * death of a producer (a tolerated error after the kill) must have received everything the
     * dead producer had sent before */
    int consumer_lost = 0;
    for (uint32_t i = cs->producers; i < cs->nworkers; i++) {
        struct st_slot *s = &cs->slots[i];
        int err = atomic_load(&s->err);
        int tolerated = killed != 0 && killed <= cs->producers && tolerated_after_kill(err) &&
                        atomic_load(&s->err_ns) >= atomic_load(&cs->sh->kill_ns);
        if (atomic_load(&s->dead) || (err != 0 && !tolerated)) consumer_lost = 1;
    }
    if (!cs->verify) return;
    if (consumer_lost) {
        st_report_note(rep, "loss not checked: a consumer died or failed, taking what it had "
                            "read with it");
        return;
    }
    uint64_t lost = 0;
    char first[256] = "";
    for (uint32_t p = 0; p < cs->producers; p++) {
        struct st_slot *s = &cs->slots[p];
        uint64_t sent = atomic_load_explicit(&s->ops, memory_order_acquire);
        const _Atomic uint64_t *bm = &cs->bitmaps[(size_t)p * cs->bitmap_words];
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
        uint64_t w = bm[sent / 64], bit = 1ull << (sent % 64);
        if (w & bit)
            st_report_add(rep, ST_V_ERROR, 1,
                          "producer %" PRIu32 ": seq %" PRIu64
                          " arrived although send() did not return 0 for it (\"whole message or "
                          "nothing\")",
                          p, sent);
    }
    if (lost) st_report_add(rep, ST_V_LOSS, lost, "%s", first);
}

static void check_lock(struct sup *S)
{
    struct st_case *cs = &S->cs;
    struct st_report *rep = S->rep;
    int died = cs->kill_victim != 0 && S->nproc > 0 && S->reaped[cs->kill_victim - 1] &&
               WIFSIGNALED(S->status[cs->kill_victim - 1]);
    check_slots_common(S, died);
    uint64_t total = sum_ops(cs, 0, cs->nworkers);
    uint64_t counter = cs->sh->counter;
    rep->counter = counter;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        struct st_slot *s = &cs->slots[i];
        rep->recovered += atomic_load(&s->recovered);
        uint64_t n = atomic_load_explicit(&s->vcount[ST_V_EXCLUSION], memory_order_acquire);
        if (n) {
            struct st_vfirst *f = &s->vfirst[ST_V_EXCLUSION];
            if (f->a == 0)
                st_report_add(rep, ST_V_EXCLUSION, n,
                              "worker %" PRIu32
                              " entered the critical section (acquisition #%" PRIu64
                              ") while worker %" PRIu32 " was inside",
                              i, f->seq, f->producer);
            else
                st_report_add(rep, ST_V_EXCLUSION, n,
                              "worker %" PRIu32 ": another worker (%" PRId32
                              ") entered while it was inside (acquisition #%" PRIu64 ")",
                              i, (int32_t)f->producer, f->seq);
        }
        n = atomic_load_explicit(&s->vcount[ST_V_ERROR], memory_order_acquire);
        if (n) {
            struct st_vfirst *f = &s->vfirst[ST_V_ERROR];
            if (f->a == 1 && S->crash_ns) /* a worker that crashed died holding it */
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

static void collect_stats(struct sup *S)
{
    struct st_case *cs = &S->cs;
    struct st_report *rep = S->rep;
    int64_t last = S->start_ns;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        struct st_slot *s = &cs->slots[i];
        int64_t l = atomic_load(&s->last_ns);
        if (l > last) last = l;
        rep->retries += atomic_load(&s->retries);
        for (unsigned b = 0; b < ST_HIST_BUCKETS; b++)
            rep->hist[b] += s->hist[b];
    }
    if (cs->chan != NULL) {
        rep->sent = sum_ops(cs, 0, cs->producers);
        rep->received = sum_ops(cs, cs->producers, cs->consumers);
        for (uint32_t i = cs->producers; i < cs->nworkers; i++)
            rep->bytes += atomic_load(&cs->slots[i].bytes);
    } else {
        rep->sent = rep->received = sum_ops(cs, 0, cs->nworkers);
    }
    rep->seconds = S->start_ns ? (double)(last - S->start_ns) / 1e9 : 0;
    if (rep->seconds <= 0) rep->seconds = 1e-9;
    rep->msgs_per_s = (double)rep->received / rep->seconds;
}

/* ---- one case ------------------------------------------------------------------------------- */

static int validate_config(const struct st_config *c, int chan, struct st_report *rep)
{
    if (c->mode == ST_MODE_THREAD && (c->faults & ST_FAULT_KILL)) {
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

static int run_once(const struct st_config *c, const struct st_proto *p, struct st_report *rep,
                    int verify)
{
    static unsigned case_no;
    struct sup *S = calloc(1, sizeof(*S));
    if (S == NULL) {
        setup_error(rep, "out of memory");
        return 2;
    }
    struct st_case *cs = &S->cs;
    S->rep = rep;
    cs->cfg = c;
    cs->verify = verify;
    int chan = rep->chan;
    cs->chan = chan ? p->chan : NULL;
    cs->lock = chan ? NULL : p->lock;
    snprintf(rep->run_id, sizeof(rep->run_id), "ipcproof-%d-%u", (int)getpid(), ++case_no);
    struct st_snapshot before = {0}, after = {0};
    int created = 0, r;

    if (chan) {
        cs->producers = c->producers;
        cs->consumers = c->consumers;
        cs->nworkers = c->producers + c->consumers;
        cs->fifo = (p->chan->flags & IPCP_CHAN_FIFO) != 0;
        cs->seq_cap = c->messages ? c->messages : ST_DURATION_CAP;
        cs->bitmap_words = (size_t)((cs->seq_cap + 63) / 64);
        for (uint32_t i = 0; i < cs->nworkers; i++) {
            cs->w[i].role = i < cs->producers ? ST_ROLE_PRODUCER : ST_ROLE_CONSUMER;
            cs->w[i].rindex = i < cs->producers ? i : i - cs->producers;
        }
        r = st_payload_init(&cs->pl, c->seed, c->min_size, c->max_size);
        if (r < 0) {
            setup_error(rep, "payload: %s", errstr(r));
            goto out;
        }
    } else {
        cs->nworkers = c->workers;
        for (uint32_t i = 0; i < cs->nworkers; i++) {
            cs->w[i].role = ST_ROLE_LOCKER;
            cs->w[i].rindex = i;
        }
    }
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        cs->w[i].cs = cs;
        cs->w[i].index = i;
    }
    r = map_results(cs);
    if (r < 0) {
        setup_error(rep, "results area: %s", errstr(r));
        goto out;
    }
    choose_faults(cs);
    if ((c->faults & ST_FAULT_SHORTIO) && cs->faults_arm == NULL) {
        setup_error(rep, "--fault short-io: the interposer libipcproof-faults.so is not loaded");
        goto out;
    }

    /* create */
    st_snapshot_take(&before, rep->run_id);
    if (chan) {
        struct ipcp_chan_cfg cc = {.run_id = rep->run_id,
                                   .producers = c->producers,
                                   .consumers = c->consumers,
                                   .max_msg = c->max_size,
                                   .capacity = c->capacity,
                                   .options = c->opt ? c->opt : ""};
        r = p->chan->create(&cc, &cs->ctx);
    } else {
        struct ipcp_lock_cfg lc = {
            .run_id = rep->run_id, .workers = c->workers, .options = c->opt ? c->opt : ""};
        r = p->lock->create(&lc, &cs->ctx);
    }
    if (r < 0) {
        setup_error(rep, "create() returned %s", errstr(r));
        rep->create_err = r;
        goto leakcheck;
    }
    created = 1;

    /* spawn, barrier, run, stop, reap */
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    r = spawn(S);
    if (r < 0) {
        atomic_store(&cs->sh->abort_run, 1);
        kill_all(S);
        reap_some(S, 1);
        setup_error(rep, "fork: %s", errstr(r));
    } else {
        run_loop(S);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    /* check (the results area is complete: every worker has been reaped) */
    if (rep->status != 2) {
        check_exits(S);
        if (chan)
            check_channel(S);
        else
            check_lock(S);
        collect_stats(S);
        rep->signals = atomic_load(&cs->sh->signals);
        rep->io_faults = atomic_load(&cs->sh->io_faults);
        if (c->faults & ST_FAULT_SIGNALS)
            st_report_note(rep, "signal storm: %" PRIu64 " SIGALRMs handled by the workers",
                           rep->signals);
        if (c->faults & ST_FAULT_SHORTIO)
            st_report_note(rep, "short-io: %" PRIu64 " short counts, EINTRs and EAGAINs injected",
                           rep->io_faults);
        if (atomic_load(&cs->sh->killed) ||
            (cs->lock && cs->kill_victim && S->reaped[cs->kill_victim - 1] &&
             WIFSIGNALED(S->status[cs->kill_victim - 1])))
            st_report_note(rep, "kill fault: %s killed%s",
                           role_name(cs, cs->kill_victim - 1, (char[48]){0}, 48),
                           cs->kill_in_cs ? " inside the critical section" : "");
        else if (cs->lock && cs->kill_victim)
            st_report_note(rep, "kill fault: %s ended before the kill point",
                           role_name(cs, cs->kill_victim - 1, (char[48]){0}, 48));
    }

leakcheck:
    /* destroy, then the leak check */
    if (created) {
        if (chan)
            p->chan->destroy(cs->ctx);
        else
            p->lock->destroy(cs->ctx);
    }
    st_snapshot_take(&after, rep->run_id);
    {
        char lbuf[900] = "";
        size_t n =
            st_snapshot_diff(&before, &after, rep->run_id, rep->sandboxed, lbuf, sizeof(lbuf));
        if (n) {
            int st = rep->status;
            st_report_add(rep, ST_V_LEAK, n, "left behind after destroy(): %s", lbuf);
            if (st == 2) rep->status = 2;
        }
    }
    st_snapshot_free(&before);
    st_snapshot_free(&after);
out:
    if (cs->sh != NULL) munmap(cs->sh, cs->map_len);
    st_payload_fini(&cs->pl);
    free(S);
    return rep->status;
}

#define OVERHEAD_ROUNDS 3

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort: n is 3 */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

int st_run_case(const struct st_config *c, const struct st_proto *p, struct st_report *rep)
{
    int chan;
    if (c->kind == ST_KIND_LOCK)
        chan = 0;
    else if (c->kind == ST_KIND_CHANNEL)
        chan = 1;
    else
        chan = p->chan != NULL;
    if ((chan && p->chan == NULL) || (!chan && p->lock == NULL)) {
        setup_error(rep, "%s does not export a %s protocol", p->label, chan ? "channel" : "lock");
        return 2;
    }
    rep->chan = chan;
    snprintf(rep->proto_name, sizeof(rep->proto_name), "%s", chan ? p->chan->name : p->lock->name);
    rep->proto_flags = chan ? p->chan->flags : p->lock->flags;
    if (validate_config(c, chan, rep) < 0) return 2;
    if (c->overhead && chan) {
        /* verified and unverified runs alternate, OVERHEAD_ROUNDS of each, and the medians are
         * compared: on a loaded machine one run of each says little */
        struct st_report *tmp = calloc(1, sizeof(*tmp));
        double ver[OVERHEAD_ROUNDS], unv[OVERHEAD_ROUNDS];
        if (tmp == NULL) {
            setup_error(rep, "out of memory");
            return 2;
        }
        int st = run_once(c, p, rep, 1);
        ver[0] = rep->msgs_per_s;
        for (int k = 0; k < OVERHEAD_ROUNDS * 2 - 1 && st != 2; k++) {
            int verify = k % 2 == 1;
            memset(tmp, 0, sizeof(*tmp));
            tmp->chan = rep->chan;
            tmp->sandboxed = rep->sandboxed;
            snprintf(tmp->proto_name, sizeof(tmp->proto_name), "%s", rep->proto_name);
            int st2 = run_once(c, p, tmp, verify);
            if (st2 == 2) {
                st_report_note(rep, "%s run failed: %s", verify ? "verified" : "unverified",
                               tmp->error);
                st = 2;
                break;
            }
            if (verify)
                ver[k / 2 + 1] = tmp->msgs_per_s;
            else
                unv[k / 2] = tmp->msgs_per_s;
            for (int i = 0; i < tmp->nv; i++) /* every run still sees crashes, leaks, ... */
                st_report_add(rep, tmp->v[i].kind, tmp->v[i].count, "(%s run) %s",
                              verify ? "verified" : "unverified", tmp->v[i].detail);
        }
        if (st != 2) {
            rep->has_overhead = 1;
            rep->verified_mps = median(ver, OVERHEAD_ROUNDS);
            rep->unverified_mps = median(unv, OVERHEAD_ROUNDS);
        }
        free(tmp);
        return rep->status;
    }
    return run_once(c, p, rep, !c->no_verify);
}

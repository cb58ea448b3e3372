/* worker.c - the endpoints of a stress case: producers, consumers and lock contenders.
 *
 * A worker opens its endpoint, waits at the start barrier, runs its loop and publishes what it
 * did in its slot of the shared results area, in an order that survives a SIGKILL at any point:
 *
 *  - a producer stores "seqs [0, N) sent" only after send() returned 0 for seq N-1, so a message
 *    whose send() had not returned when the producer died is never counted as sent (it may still
 *    arrive: that is fine); a message counted as sent that never arrives is `loss`;
 *  - a consumer marks every delivered (producer, seq) in a per-producer bitmap with an atomic
 *    fetch-or, so a second delivery is a `duplicate` whatever consumer got the first;
 *  - a lock contender, inside the critical section, swaps its id into an owner word and performs
 *    a read-pause-write increment of a non-atomic counter; it counts its increments only after
 *    the write, so the final counter must equal the sum of the counts.
 *
 * Every call into the protocol has a timeout (ST_OP_TIMEOUT_MS); workers loop, so a stalled
 * protocol shows up as a worker that sits in one phase, which the watchdog reports.
 *
 * This file: what every worker shares, the lock contender, the frame around every worker and
 * the thread and sched modes; the producer and the consumer are chanworker.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"
#include "execfx.h"
#include "faults/faults.h"
#include "spawn.h"
#include "stress.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int64_t now_ns(void)
{
    return st_now_ns();
}

void st_set_phase(struct st_slot *s, int phase, uint64_t seq)
{
    /* relaxed: the watchdog only needs a recent value of each field, not a consistent set.
     * A retry of the same operation keeps its start time: the dump says how long it waits. */
    if (atomic_load_explicit(&s->phase, memory_order_relaxed) == (uint32_t)phase &&
        atomic_load_explicit(&s->cur_seq, memory_order_relaxed) == seq)
        return;
    atomic_store_explicit(&s->cur_seq, seq, memory_order_relaxed);
    atomic_store_explicit(&s->since_ns, now_ns(), memory_order_relaxed);
    /* release: a peer that learns through the protocol that we moved on (a closed channel)
     * and then reads our phase sees the new one */
    atomic_store_explicit(&s->phase, (uint32_t)phase, memory_order_release);
}

void st_record_err(struct st_slot *s, int err, int phase, uint64_t seq)
{
    int32_t zero = 0;
    /* first error wins; its details are stored before err so a reader that sees err (acquire)
     * sees them too */
    if (atomic_load_explicit(&s->err, memory_order_relaxed) != 0) return;
    atomic_store_explicit(&s->err_op, (uint32_t)phase, memory_order_relaxed);
    atomic_store_explicit(&s->err_seq, seq, memory_order_relaxed);
    atomic_store_explicit(&s->err_ns, now_ns(), memory_order_relaxed);
    atomic_compare_exchange_strong_explicit(&s->err, &zero, err, memory_order_release,
                                            memory_order_relaxed);
}

/* sched mode: the shared area, so that the first violation stops the schedule (its trace then
 * ends where it happened) */
static struct st_shared *sched_sh;

/* Only the slot's own worker writes its violation records. */
void st_add_violation(struct st_slot *s, int kind, uint32_t producer, uint64_t seq, uint64_t a,
                      uint64_t b)
{
    uint64_t n = atomic_load_explicit(&s->vcount[kind], memory_order_relaxed);
    if (n == 0) {
        s->vfirst[kind].producer = producer;
        s->vfirst[kind].seq = seq;
        s->vfirst[kind].a = a;
        s->vfirst[kind].b = b;
    }
    /* release: the supervisor reads vfirst after seeing a non-zero count */
    atomic_store_explicit(&s->vcount[kind], n + 1, memory_order_release);
    if (sched_sh != NULL) {
        atomic_store_explicit(&sched_sh->violated, 1, memory_order_relaxed);
        atomic_store_explicit(&sched_sh->abort_run, 1, memory_order_release);
    }
}

int st_retryable(int r)
{
    return r == -ETIMEDOUT || r == -EINTR || r == -EAGAIN;
}

void st_count_retry(struct st_slot *s, int r)
{
    atomic_fetch_add_explicit(&s->retries, 1, memory_order_relaxed);
    if (r == -ETIMEDOUT || r == -EAGAIN) /* the protocol waited and could not: not an EINTR */
        atomic_fetch_add_explicit(&s->timeouts, 1, memory_order_relaxed);
}

void st_wait_begin(struct st_slot *s, struct st_waitmark *m)
{
    m->since = now_ns();
    m->timeouts_at = atomic_load_explicit(&s->timeouts, memory_order_relaxed);
    m->others_set = 0;
}

/* Ends one operation's wait; returns 1 when it was the longest that timed out so far. */
int st_wait_end(struct st_slot *s, struct st_waitmark *m, uint64_t at)
{
    int64_t now = now_ns();
    uint64_t t = atomic_load_explicit(&s->timeouts, memory_order_relaxed);
    int longest = t > m->timeouts_at &&
                  now - m->since > atomic_load_explicit(&s->max_gap_ns, memory_order_relaxed);
    if (longest) {
        atomic_store_explicit(&s->gap_at, at, memory_order_relaxed);
        atomic_store_explicit(&s->max_gap_ns, now - m->since, memory_order_relaxed);
    }
    m->since = now;
    m->timeouts_at = t;
    m->others_set = 0;
    return longest;
}

int st_aborted(const struct st_case *cs)
{
    return atomic_load_explicit(&cs->sh->abort_run, memory_order_acquire) != 0;
}

/* sched mode: the scheduler runtime's entry points (schedapi.h), found in st_sched_child() */
static struct st_schedrt rt;

int st_sched_mode(const struct st_case *cs)
{
    return cs->cfg->mode == ST_MODE_SCHED;
}

/* --crash-point: the runtime counts the victim's scheduling points during one operation and
 * SIGKILLs it at the chosen one (schedrt.c); the harness arms it around that operation. */
static void (*crash_arm)(uint64_t n);
static uint64_t (*crash_disarm)(void);

int st_crash_victim(const struct st_case *cs, uint32_t index)
{
    return cs->cfg->crash_point && cs->kill_victim == index + 1;
}

void st_crash_begin(struct st_case *cs, struct st_slot *s, uint32_t index)
{
    if (crash_arm == NULL) {
        *(void **)&crash_arm = dlsym(RTLD_DEFAULT, "ipcproof_sched_crash_arm");
        *(void **)&crash_disarm = dlsym(RTLD_DEFAULT, "ipcproof_sched_crash_disarm");
    }
    if (crash_arm == NULL || crash_disarm == NULL) {
        st_record_err(s, -ENOSYS, ST_PH_START, 0);
        return;
    }
    atomic_store_explicit(&cs->sh->crash_victim, index + 1, memory_order_relaxed);
    atomic_store_explicit(&cs->sh->kill_ns, now_ns(), memory_order_relaxed);
    crash_arm(cs->cfg->crash_point);
}

/* It lived through the operation: the chosen point was past its end. */
void st_crash_end(struct st_case *cs, struct st_slot *s)
{
    if (crash_disarm == NULL) return;
    uint64_t seen = crash_disarm();
    atomic_store_explicit(&s->crash_seen, seen ? seen : 1, memory_order_release);
    atomic_store_explicit(&cs->sh->crash_victim, 0, memory_order_relaxed);
}

/* Locks: the crash-point victim runs its operation alone (the others wait outside lock()), so
 * that the points it counts are those of one path, the same in every run. The supervisor lifts
 * the wait when the victim dies. A worker announces that it goes into lock() before it looks at
 * `quiet`, and the victim sets `quiet` before it looks at the others' phases (both seq_cst):
 * either the worker sees `quiet` and stays out, or the victim sees it in lock() and waits for it
 * to leave. (Looking first and announcing after let a worker slip into lock() unseen.) */
static void quiet_wait(struct st_case *cs, struct st_slot *s, uint32_t me, uint64_t n)
{
    for (;;) {
        st_set_phase(s, ST_PH_LOCK, n);
        atomic_thread_fence(memory_order_seq_cst); /* the phase store before the load below */
        uint32_t q = atomic_load(&cs->sh->quiet);
        if (q == 0 || q == me || st_aborted(cs)) return;
        st_set_phase(s, ST_PH_QUIET, n);
        while ((q = atomic_load(&cs->sh->quiet)) != 0 && q != me && !st_aborted(cs))
            st_delay_us(200);
    }
}

static void quiet_begin(struct st_case *cs, uint32_t me)
{
    atomic_store(&cs->sh->quiet, me);
    atomic_thread_fence(memory_order_seq_cst); /* before the loads of the phases (quiet_wait) */
    for (int64_t give_up = now_ns() + 2000000000LL; now_ns() < give_up && !st_aborted(cs);) {
        uint32_t busy = 0;
        for (uint32_t i = 0; i < cs->nworkers; i++) {
            if (i + 1 == me) continue;
            uint32_t ph = atomic_load(&cs->slots[i].phase);
            busy += ph == ST_PH_LOCK || ph == ST_PH_CS || ph == ST_PH_UNLOCK;
        }
        if (busy == 0) return;
        st_delay_us(200);
    }
    atomic_store(&cs->sh->quiet_late, 1); /* its points may be those of another path */
}

/* The process of worker i has ended (a zombie counts: it is not running). */
static int worker_dead(const struct st_case *cs, uint32_t i)
{
    if (i >= cs->nworkers) return 0;
    int pid = atomic_load_explicit(&cs->slots[i].pid, memory_order_relaxed);
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = pid > 0 ? fopen(path, "re") : NULL;
    if (f == NULL) return 1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *r = strrchr(buf, ')');
    return r == NULL || r[1] == '\0' || r[2] == 'Z' || r[2] == 'X';
}

int st_stopped(const struct st_case *cs)
{
    /* in sched mode only the counts end a run: the supervisor's clock must not change it */
    if (st_sched_mode(cs)) return st_aborted(cs);
    return atomic_load_explicit(&cs->sh->stop, memory_order_acquire) != 0 || st_aborted(cs);
}

void st_delay_us(unsigned us)
{
    if (us == 0) return;
    struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000L};
    nanosleep(&ts, NULL); /* EINTR under the signal storm just shortens it */
}

static void futex_wait(_Atomic uint32_t *word, uint32_t val, int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, &ts, NULL, 0);
}

static int wait_go(struct st_case *cs)
{
    if (st_sched_mode(cs)) return st_aborted(cs) ? -1 : 0; /* the schedule starts them all */
    /* acquire: pairs with the supervisor's release store of go after every worker opened */
    while (atomic_load_explicit(&cs->sh->go, memory_order_acquire) == 0) {
        if (st_aborted(cs)) return -1;
        futex_wait(&cs->sh->go, 0, 100);
    }
    return st_aborted(cs) ? -1 : 0;
}

static _Atomic uint64_t *signal_counter;

/* Fatal signals: recorded in the slot of the worker that caught it, then handed to whatever
 * handled them before (a sanitizer's handler, or the default action). A sanitizer reports a
 * SEGV with the same exit status as its other findings (ThreadSanitizer: 66, like a race), so
 * without this record the supervisor could not tell a crash from a race. */
static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
static struct sigaction fatal_old[ARRAY_SIZE(fatal_sigs)];
static _Thread_local struct st_slot *tl_slot;

static void on_fatal(int sig)
{
    if (tl_slot != NULL)
        atomic_store_explicit(&tl_slot->crash_sig, (uint32_t)sig, memory_order_relaxed);
    for (size_t i = 0; i < ARRAY_SIZE(fatal_sigs); i++)
        if (fatal_sigs[i] == sig) sigaction(sig, &fatal_old[i], NULL);
    raise(sig); /* blocked until we return; a real fault also recurs on return */
}

/* --fault signals on an exec endpoint: the program's process group, which the storm's ticks go
 * to (0: none - not started yet, or being closed) */
static volatile sig_atomic_t storm_pgid;

static void on_alarm(int sig)
{
    (void)sig;
    if (storm_pgid > 1) { /* exec: the program takes the signal, in its interposer's handler */
        kill(-(pid_t)storm_pgid, IPCP_FX_SIGNAL);
        return;
    }
    /* there to interrupt blocking calls; counts them (lock-free: signal-safe) */
    atomic_fetch_add_explicit(signal_counter, 1, memory_order_relaxed);
}

/* ---- lock contender ------------------------------------------------------------------------- */

/* --fault stop, a lock's victim: stays in its critical section until the supervisor stopped it
 * there and let it go on (at most the longest stop and 2 s more). */
static void hold_for_stop(const struct st_case *cs)
{
    int64_t until = now_ns() + (int64_t)(cs->stop_ms + 2000) * 1000000;
    while (!atomic_load(&cs->sh->stop_over) && !st_aborted(cs) && now_ns() < until)
        st_delay_us(200);
}

static void cs_pause(const struct st_case *cs, uint64_t *rng)
{
    if (st_sched_mode(cs)) { /* inside the critical section: another thread may run here */
        rt.point();
        return;
    }
    uint64_t r = splitmix64_next(rng);
    unsigned spins = (unsigned)(r & 511u);
    for (unsigned i = 0; i < spins; i++)
        atomic_signal_fence(memory_order_seq_cst);
    if ((r >> 20) % 8u == 0) sched_yield(); /* widen the window now and then */
}

static int orphaned(const struct st_case *cs)
{
    return atomic_load_explicit(&cs->sh->cs_victim, memory_order_relaxed) != 0 && !st_aborted(cs);
}

/* --fault kill or --crash-point, a worker that is not the victim: 1 while it must go on past
 * its quota - until the victim has died (or lived through its crash-point operation, or ended),
 * and once it died, until this worker took the lock once more, so that a lock the death left
 * taken or broken meets it. *after is the worker's count of acquisitions when it first saw the
 * death (0: not yet). Without this, a victim that started late under load found the others done
 * with their quota: its death met nobody, and the bug passed. */
static int crash_unresolved(const struct st_case *cs, uint32_t me, uint64_t n, uint64_t *after)
{
    if (cs->kill_victim == 0 || cs->kill_victim == me || st_aborted(cs)) return 0;
    const struct st_slot *v = &cs->slots[cs->kill_victim - 1];
    if (atomic_load_explicit(&v->crash_seen, memory_order_acquire) != 0) return 0; /* it lived */
    if (atomic_load(&v->dead)) {
        if (*after == 0) *after = n + 1;
        return n < *after + 1; /* one whole acquisition after the death was seen */
    }
    return !atomic_load(&v->done);
}

/* The kill fault strikes a lock contender: an exec endpoint's program (its process group, which
 * holds the lock) dies first, then the worker. */
static void die_now(const struct st_case *cs, const struct st_slot *s)
{
    pid_t g = cs->exec ? (pid_t)atomic_load_explicit(&s->exec_pgid, memory_order_relaxed) : 0;
    if (g > 1 && g != getpgrp()) kill(-g, SIGKILL);
    raise(SIGKILL);
}

static void run_locker(struct st_worker *w, void *h)
{
    struct st_case *cs = w->cs;
    const struct st_config *c = cs->cfg;
    struct st_slot *s = &cs->slots[w->index];
    struct st_shared *sh = cs->sh;
    const uint32_t me = w->index + 1;
    const int robust = (cs->lock->flags & IPCP_LOCK_ROBUST) != 0;
    /* a robust lock must say (lock() returns 1) that it was handed on by a death; a program's
     * lock (--exec-worker --robust) has no way to say it: it must only be handed on */
    const int must_say = robust && !cs->exec;
    const int victim = cs->kill_victim == me && !c->crash_point;
    const int crasher = st_crash_victim(cs, w->index);
    int armed = 0;
    uint64_t rng = splitmix64_mix(c->seed ^ 0x6c6f636bull ^ ((uint64_t)me << 32));
    uint64_t limit = c->messages ? c->messages : UINT64_MAX;
    struct st_waitmark wm;
    st_wait_begin(s, &wm);
    uint64_t n = 0;
    /* while a holder's death has not been answered by a lock() returning 1, nobody leaves: the
     * lock must be handed on (or the watchdog reports the deadlock) */
    uint64_t after_crash = 0;
    for (; (n < limit && !st_stopped(cs)) || orphaned(cs) ||
           crash_unresolved(cs, me, n, &after_crash);) {
        if (!crasher) quiet_wait(cs, s, me, n);
        int64_t t0 = now_ns();
        if (crasher && n == cs->kill_at && !armed) { /* from here to the end of its unlock() */
            quiet_begin(cs, me);
            st_crash_begin(cs, s, w->index);
            armed = 1;
        }
        st_set_phase(s, ST_PH_LOCK, n);
        int r = cs->lock->lock(h, ST_OP_TIMEOUT_MS);
        if (st_retryable(r)) {
            st_count_retry(s, r);
            continue;
        }
        if (r < 0 || r > 1) {
            st_record_err(s, r < 0 ? r : -EPROTO, ST_PH_LOCK, n);
            goto out;
        }
        st_wait_end(s, &wm, n);
        int64_t t1 = now_ns();
        st_set_phase(s, ST_PH_CS, n);
        /* relaxed on purpose, here and when leaving: the probe must not create the
         * happens-before that the lock under test is supposed to provide, or ThreadSanitizer
         * could not tell a lock without ordering from a correct one. The RMW still sees every
         * overlap. */
        if (st_sched_mode(cs)) rt.point(); /* entering: another thread may run first */
        uint32_t prev = atomic_exchange_explicit(&sh->owner, me, memory_order_relaxed);
        uint32_t died = atomic_load_explicit(&sh->cs_victim, memory_order_relaxed);
        uint32_t crashed = atomic_load_explicit(&sh->crash_victim, memory_order_relaxed);
        if (crashed != 0 && crashed != me && worker_dead(cs, crashed - 1)) {
            died = crashed; /* the crash-point victim died: maybe holding the lock, maybe not */
            if (prev == crashed || r == 1)
                atomic_store_explicit(&sh->crash_victim, 0, memory_order_relaxed);
        } else if (crashed != 0) {
            crashed = 0;
        }
        if (r == 1) {
            atomic_fetch_add_explicit(&s->recovered, 1, memory_order_relaxed);
            if (died == 0) st_add_violation(s, ST_V_ERROR, 0, n, 1, prev);
            atomic_store_explicit(&sh->cs_victim, 0, memory_order_relaxed);
        } else if (prev != 0 && crashed != 0 && prev == crashed) {
            /* it died inside the critical section; a robust lock must say so with 1 */
            if (must_say) st_add_violation(s, ST_V_ERROR, prev - 1, n, 0, prev);
        } else if (prev != 0) {
            if (died != 0 && prev == died) {
                /* the holder died inside the critical section and the lock handed it on
                 * without saying so */
                if (must_say) st_add_violation(s, ST_V_ERROR, prev - 1, n, 0, prev);
                atomic_store_explicit(&sh->cs_victim, 0, memory_order_relaxed);
            } else {
                st_add_violation(s, ST_V_EXCLUSION, prev - 1, n, 0, 0);
            }
        }
        uint64_t v = sh->counter; /* read ... */
        cs_pause(cs, &rng);
        if (cs->stop_victim == me && n == cs->stop_at) hold_for_stop(cs);
        if (victim && n == cs->kill_at && cs->kill_in_cs) {
            atomic_store_explicit(&sh->cs_victim, me, memory_order_relaxed);
            atomic_store_explicit(&sh->kill_ns, now_ns(), memory_order_relaxed);
            die_now(cs, s); /* dies holding the lock, between the read and the write */
        }
        sh->counter = v + 1; /* ... pause ... write: an overlapping holder loses increments */
        atomic_fetch_add_explicit(&s->ops, 1, memory_order_release);
        atomic_store_explicit(&s->last_ns, now_ns(), memory_order_relaxed);
        s->hist[stats_hist_bucket((uint64_t)(t1 - t0))]++;
        uint32_t expect = me;
        if (!atomic_compare_exchange_strong_explicit(&sh->owner, &expect, 0, memory_order_relaxed,
                                                     memory_order_relaxed))
            st_add_violation(s, ST_V_EXCLUSION, expect ? expect - 1 : UINT32_MAX, n, 1, 0);
        st_set_phase(s, ST_PH_UNLOCK, n);
        r = cs->lock->unlock(h);
        if (armed == 1) {
            st_crash_end(cs, s);
            atomic_store_explicit(&sh->quiet, 0, memory_order_release);
            armed = 2;
        }
        if (r < 0) {
            st_record_err(s, r, ST_PH_UNLOCK, n);
            goto out;
        }
        if (victim && n == cs->kill_at && !cs->kill_in_cs) {
            atomic_store_explicit(&sh->kill_ns, now_ns(), memory_order_relaxed);
            die_now(cs, s); /* a contender dies while not holding the lock */
        }
        n++;
        /* a varied pause before the next acquisition (--lock-pause), so that contenders meet
         * inside lock() in every phase rather than re-locking back to back */
        if (c->lock_pause_us) {
            uint64_t x = splitmix64_next(&rng);
            if ((x & 3u) != 0) st_delay_us((unsigned)((x >> 8) % (c->lock_pause_us + 1u)));
        }
        st_wait_begin(s, &wm);
    }
out:
    if (n >= limit)
        atomic_store_explicit(&s->quota_met, 1, memory_order_relaxed);
    else
        st_wait_end(s, &wm, n);
    atomic_store_explicit(&s->end_ns, now_ns(), memory_order_relaxed);
}

/* ---- common worker frame -------------------------------------------------------------------- */

static void start_faults(struct st_worker *w)
{
    struct st_case *cs = w->cs;
    if (cs->faults_arm != NULL)
        cs->faults_arm(splitmix64_mix(cs->cfg->seed ^ 0x73686f7274ull ^ w->index),
                       cs->fault_rate_ppm);
    if (cs->signal_us && cs->cfg->mode == ST_MODE_PROCESS) {
        struct itimerval it = {.it_interval = {0, (long)cs->signal_us},
                               .it_value = {0, (long)cs->signal_us}};
        setitimer(ITIMER_REAL, &it, NULL);
    }
}

static void mark_done(struct st_slot *s)
{
    st_set_phase(s, ST_PH_DONE, 0);
    /* release: everything this worker recorded happens before a reader sees done */
    atomic_store_explicit(&s->done, 1, memory_order_release);
}

/* This thread's time runnable but waiting for a CPU, in ns (/proc/thread-self/schedstat, its
 * second field: run_delay); ST_CPU_WAIT_UNKNOWN without schedstats. A thread that waits in a
 * system call is not runnable: only an overloaded machine makes this grow. */
static uint64_t cpu_wait_now(void)
{
    char buf[128];
    int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ST_CPU_WAIT_UNKNOWN;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return ST_CPU_WAIT_UNKNOWN;
    buf[n] = '\0';
    unsigned long long run, delay;
    if (sscanf(buf, "%llu %llu", &run, &delay) != 2) return ST_CPU_WAIT_UNKNOWN;
    return (uint64_t)delay;
}

int st_worker_main(struct st_worker *w)
{
    struct st_case *cs = w->cs;
    struct st_slot *s = &cs->slots[w->index];
    void *ep = NULL;
    int r;
    tl_slot = s;
    atomic_store_explicit(&s->pid, (int32_t)getpid(), memory_order_relaxed);
    st_set_phase(s, ST_PH_OPEN, 0);
    if (cs->chan != NULL) {
        int role = w->role == ST_ROLE_PRODUCER ? IPCP_ROLE_PRODUCER : IPCP_ROLE_CONSUMER;
        r = cs->chan->open(cs->ctx, role, w->rindex, &ep);
    } else {
        r = cs->lock->open(cs->ctx, w->rindex, &ep);
    }
    if (r < 0) {
        st_record_err(s, r, ST_PH_OPEN, 0);
        mark_done(s);
        return ST_EXIT_SETUP;
    }
    atomic_store_explicit(&s->opened, 1, memory_order_release);
    if (cs->exec) {
        st_exec_bind_case(cs);
        atomic_store_explicit(&s->exec_pgid, (int32_t)st_exec_pgid(ep), memory_order_release);
        if (cs->signal_us) storm_pgid = st_exec_pgid(ep);
    }
    st_set_phase(s, ST_PH_BARRIER, 0);
    atomic_store_explicit(&s->cpu_wait_ns, ST_CPU_WAIT_UNKNOWN, memory_order_relaxed);
    /* not under the scheduler: virtual time has no CPU to wait for, and the read of the file
     * would be a scheduling point of its own */
    int measure_cpu = cs->cfg->mode != ST_MODE_SCHED;
    if (wait_go(cs) == 0) {
        /* before the faults: a file read is never faulted */
        uint64_t cpu0 = measure_cpu ? cpu_wait_now() : ST_CPU_WAIT_UNKNOWN;
        start_faults(w);
        if (w->role == ST_ROLE_PRODUCER)
            st_run_producer(w, ep);
        else if (w->role == ST_ROLE_CONSUMER)
            st_run_consumer(w, ep);
        else
            run_locker(w, ep);
        uint64_t cpu1 = measure_cpu ? cpu_wait_now() : ST_CPU_WAIT_UNKNOWN;
        if (cpu0 != ST_CPU_WAIT_UNKNOWN && cpu1 != ST_CPU_WAIT_UNKNOWN && cpu1 >= cpu0)
            atomic_store_explicit(&s->cpu_wait_ns, cpu1 - cpu0, memory_order_relaxed);
    }
    st_set_phase(s, ST_PH_CLOSE, 0);
    if (cs->exec) {
        int64_t val = 0;
        struct st_exfx_out fx;
        storm_pgid = 0; /* never a signal to a group whose leader is about to be reaped */
        int why = st_exec_close(ep, &val, &fx);
        atomic_store_explicit(&s->exec_val, val, memory_order_relaxed);
        atomic_store_explicit(&s->exec_why, (uint32_t)why, memory_order_release);
        memcpy(s->exfx_who, fx.who, sizeof(s->exfx_who));
        atomic_store_explicit(&s->exfx_injected, fx.injected, memory_order_relaxed);
        atomic_store_explicit(&s->exfx_signals, fx.signals, memory_order_relaxed);
        atomic_store_explicit(&s->exfx_state, (uint32_t)fx.state, memory_order_relaxed);
    } else if (cs->chan != NULL)
        cs->chan->close(ep);
    else
        cs->lock->close(ep);
    if (cs->faults_arm != NULL) {
        cs->faults_arm(0, 0); /* the rest is the harness's own I/O */
        atomic_fetch_add_explicit(&cs->sh->io_faults, cs->faults_count(), memory_order_relaxed);
    }
    mark_done(s);
    return 0;
}

void st_child_setup(struct st_case *cs)
{
    /* a worker never outlives the supervisor, even if the supervisor is SIGKILLed */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN); /* a write to a pipe whose reader died is -EPIPE, not death */
    for (size_t i = 0; i < ARRAY_SIZE(fatal_sigs); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_fatal;
        sigemptyset(&sa.sa_mask);
        sigaction(fatal_sigs[i], &sa, &fatal_old[i]);
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (cs->signal_us) {
        signal_counter = &cs->sh->signals;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_alarm;
        sigemptyset(&sa.sa_mask);
        /* no SA_RESTART: every blocking call sees EINTR; an exec endpoint's worker only passes
         * the signal on to its program, its own calls are not the protocol's */
        sa.sa_flags = cs->exec ? SA_RESTART : 0;
        sigaction(SIGALRM, &sa, NULL);
    }
}

/* ---- thread mode ---------------------------------------------------------------------------- */

struct storm {
    struct st_case *cs;
    pthread_t *tids;
    uint32_t n;
};

/* Sends SIGALRM to the worker threads in turn until every worker is done. The workers are
 * joined only after this thread ended, so every pthread_kill() targets a live thread. */
static void *storm_main(void *arg)
{
    struct storm *st = arg;
    struct st_case *cs = st->cs;
    for (uint32_t i = 0; !st_aborted(cs); i++) {
        uint32_t k = i % st->n, live = 0;
        for (uint32_t j = 0; j < st->n; j++)
            live += !atomic_load_explicit(&cs->slots[j].done, memory_order_acquire);
        if (live == 0) break;
        if (!atomic_load_explicit(&cs->slots[k].done, memory_order_acquire))
            pthread_kill(st->tids[k], SIGALRM);
        st_delay_us(cs->signal_us / st->n + 1);
    }
    return NULL;
}

static void *thread_main(void *arg)
{
    st_worker_main(arg);
    return NULL;
}

int st_thread_child(struct st_case *cs)
{
    pthread_t tids[ST_MAX_ENDPOINTS];
    uint32_t started = 0;
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        if (pthread_create(&tids[i], NULL, thread_main, &cs->w[i]) != 0) break;
        started++;
    }
    if (started < cs->nworkers) {
        atomic_store_explicit(&cs->sh->abort_run, 1, memory_order_release);
        for (uint32_t i = 0; i < started; i++)
            pthread_join(tids[i], NULL);
        return ST_EXIT_SETUP;
    }
    struct storm st = {.cs = cs, .tids = tids, .n = started};
    if (cs->signal_us) {
        /* the storm starts with the run, like process mode's timers */
        while (atomic_load_explicit(&cs->sh->go, memory_order_acquire) == 0 && !st_aborted(cs))
            futex_wait(&cs->sh->go, 0, 100);
        pthread_t storm_tid;
        if (pthread_create(&storm_tid, NULL, storm_main, &st) == 0) pthread_join(storm_tid, NULL);
    }
    for (uint32_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    return 0;
}

/* ---- sched mode ----------------------------------------------------------------------------- */

struct sched_arg {
    struct st_worker *w;
    char name[24];
};

static void *sched_thread(void *arg)
{
    struct sched_arg *a = arg;
    rt.enter(a->w->index, a->name);
    st_worker_main(a->w);
    rt.leave();
    return NULL;
}

static int resolve_rt(void)
{
    static const char *const names[] = {"ipcproof_sched_begin", "ipcproof_sched_enter",
                                        "ipcproof_sched_leave", "ipcproof_sched_run",
                                        "ipcproof_sched_point"};
    void **slots[] = {(void **)&rt.begin, (void **)&rt.enter, (void **)&rt.leave, (void **)&rt.run,
                      (void **)&rt.point};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if ((*slots[i] = dlsym(RTLD_DEFAULT, names[i])) == NULL) return -1;
    void (*plain)(int) = NULL;
    *(void **)&plain = dlsym(RTLD_DEFAULT, "ipcproof_sched_plain_points");
    if (plain == NULL) return -1;
    return 0;
}

int st_sched_child(struct st_case *cs)
{
    const struct st_config *c = cs->cfg;
    if (resolve_rt() < 0) {
        atomic_store_explicit(&cs->sh->abort_run, 1, memory_order_release);
        return ST_EXIT_SETUP;
    }
    void (*plain)(int) = NULL;
    *(void **)&plain = dlsym(RTLD_DEFAULT, "ipcproof_sched_plain_points");
    plain(c->plain_points);
    struct st_sched_cfg sc = {
        .strategy = c->strategy,
        .depth = c->depth,
        .seed = c->seed,
        .schedule = cs->schedule,
        .steps_hint = c->sched_steps,
        .max_steps = 2000000,
        .plain_points = (uint32_t)c->plain_points,
        .nthreads = cs->nworkers,
        .tso = !c->memory_sc,
        .lost_wakeups = (uint32_t)c->lost_wakeups,
        .races = !c->no_races,
        .decisions = c->strategy == ST_SCHED_DFS ? c->choices : NULL,
        .ndecisions = c->strategy == ST_SCHED_DFS ? c->nchoices : 0,
        .signals = (c->faults & ST_FAULT_SIGNALS) != 0,
    };
    if (rt.begin(&sc, cs->sched_rep) < 0) return ST_EXIT_SETUP;
    sched_sh = cs->sh;
    pthread_t tids[ST_MAX_ENDPOINTS];
    static struct sched_arg args[ST_MAX_ENDPOINTS];
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        args[i].w = &cs->w[i];
        const char *r = cs->w[i].role == ST_ROLE_PRODUCER   ? "producer"
                        : cs->w[i].role == ST_ROLE_CONSUMER ? "consumer"
                                                            : "worker";
        snprintf(args[i].name, sizeof(args[i].name), "%s %u", r, cs->w[i].rindex);
        if (pthread_create(&tids[i], NULL, sched_thread, &args[i]) != 0) _exit(ST_EXIT_SETUP);
    }
    int st = rt.run();
    if (st != ST_SCHED_FINISHED) _exit(ST_EXIT_SCHED); /* the threads are parked for good */
    for (uint32_t i = 0; i < cs->nworkers; i++)
        pthread_join(tids[i], NULL);
    return 0;
}

/* cvq.c - the robust mutex + condvar bounded queue in shared memory (see cvq.h): the locked
 * steps of put and get, the repair and the consistency check (pure, over a view of the region),
 * and the layer that locks, waits in slices, checks peers and switches condvar pairs.
 *
 * Why a condvar per endpoint: with glibc 2.36 a waiter SIGKILLed inside pthread_cond_timedwait()
 * keeps a group reference in the condvar, and a later pthread_cond_signal() that has to switch
 * groups waits for that reference without a timeout, holding the condvar's internal lock (so
 * live waiters that time out hang too) and the queue's mutex: every participant hangs. A condvar
 * with one waiter never makes a signaller wait (its previous group is always empty), a dead
 * waiter's condvar is never signalled, and each waiter re-initialises its own before waiting. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "cvq_hooks.h"
#include "deadline.h"
#include "os.h"
#include "proc.h"
#include "ipcproof/cvq.h"
#include "ipcproof/err.h"
#include "ipcproof/shm.h"

int ipcp__cvq_die_put = -1;
int ipcp__cvq_die_get = -1;

#define WAIT_CODES   2u   /* waiting: 0, or 1 + IPCP_CVQ_NOT_EMPTY / NOT_FULL */
#define LOCK_SLICE   1000 /* longest single mutex wait */
#define OPEN_TIMEOUT 5000 /* open and close take the mutex this long at most */

/* ==== pure part ============================================================================= */

size_t ipcp_cvq_stride(size_t slot_size)
{
    return (IPCP_CVQ_SLOT_HDR + slot_size + 15) & ~(size_t)15;
}

static int geometry_ok(const struct ipcp_cvq_view *v)
{
    return v != NULL && v->ctl != NULL && v->slots != NULL && v->nslots >= IPCP_CVQ_MIN_SLOTS &&
           v->nslots <= IPCP_CVQ_MAX_SLOTS && v->slot_size >= 1 &&
           v->slot_size <= IPCP_CVQ_MAX_MSG && v->nrec <= 2 * IPCP_CVQ_MAX_EP &&
           (v->nrec == 0 || v->rec != NULL);
}

static struct ipcp_cvq_slot *slot_at(const struct ipcp_cvq_view *v, uint32_t i)
{
    return (struct ipcp_cvq_slot *)(v->slots + (size_t)i * ipcp_cvq_stride(v->slot_size));
}

static uint8_t *payload(struct ipcp_cvq_slot *s)
{
    return (uint8_t *)s + IPCP_CVQ_SLOT_HDR;
}

/* head, tail, count read once and checked: 0, or -IPCP_E_CORRUPT. */
static int read_indices(const struct ipcp_cvq_view *v, uint32_t *head, uint32_t *tail,
                        uint32_t *count)
{
    *head = v->ctl->head;
    *tail = v->ctl->tail;
    *count = v->ctl->count;
    ipcp_compiler_barrier();
    uint32_t n = v->nslots;
    if (*head >= n || *tail >= n || *count > n || (*head + *count) % n != *tail)
        return -IPCP_E_CORRUPT;
    return 0;
}

/* Each step is a separate store in program order (the compiler barrier keeps it there): a
 * process killed between two steps leaves exactly the steps before. */
int ipcp_cvq_put_locked(const struct ipcp_cvq_view *v, const void *msg, size_t len, int steps)
{
    if (len > v->slot_size) return -EMSGSIZE;
    uint32_t head, tail, count;
    if (read_indices(v, &head, &tail, &count) < 0) return -IPCP_E_CORRUPT;
    if (count == v->nslots) return -EAGAIN;
    struct ipcp_cvq_slot *s = slot_at(v, tail);
    uint32_t st = s->state;
    ipcp_compiler_barrier();
    if (st != IPCP_CVQ_EMPTY) return -IPCP_E_CORRUPT;
    if (steps < 1) return 0;
    s->state = IPCP_CVQ_WRITING;
    ipcp_compiler_barrier();
    if (steps < 2) return 0;
    if (len > 0) memcpy(payload(s), msg, len);
    s->len = (uint32_t)len;
    ipcp_compiler_barrier();
    if (steps < 3) return 0;
    s->state = IPCP_CVQ_FULL;
    ipcp_compiler_barrier();
    if (steps < 4) return 0;
    v->ctl->tail = (tail + 1) % v->nslots;
    ipcp_compiler_barrier();
    if (steps < 5) return 0;
    v->ctl->count = count + 1;
    return 0;
}

ssize_t ipcp_cvq_get_locked(const struct ipcp_cvq_view *v, void *buf, size_t cap, int steps,
                            size_t *need)
{
    uint32_t head, tail, count;
    if (read_indices(v, &head, &tail, &count) < 0) return -IPCP_E_CORRUPT;
    if (count == 0) return -EAGAIN;
    struct ipcp_cvq_slot *s = slot_at(v, head);
    uint32_t st = s->state, len = s->len;
    ipcp_compiler_barrier();
    if (st != IPCP_CVQ_FULL || len > v->slot_size) return -IPCP_E_CORRUPT;
    if (len > cap) {
        if (need != NULL) *need = len;
        return -EMSGSIZE;
    }
    if (steps < 1) return len;
    s->state = IPCP_CVQ_READING;
    ipcp_compiler_barrier();
    if (steps < 2) return len;
    if (len > 0) memcpy(buf, payload(s), len);
    ipcp_compiler_barrier();
    if (steps < 3) return len;
    s->state = IPCP_CVQ_EMPTY;
    ipcp_compiler_barrier();
    if (steps < 4) return len;
    v->ctl->head = (head + 1) % v->nslots;
    ipcp_compiler_barrier();
    if (steps < 5) return len;
    v->ctl->count = count - 1;
    return len;
}

static int rec_ok(uint32_t state, uint32_t pid, uint32_t waiting)
{
    return state <= IPCP_CVQ_REC_DEAD && pid <= INT_MAX && waiting <= WAIT_CODES;
}

int ipcp_cvq_consistent(const struct ipcp_cvq_view *v)
{
    if (!geometry_ok(v)) return 0;
    uint32_t head, tail, count;
    if (read_indices(v, &head, &tail, &count) < 0) return 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        struct ipcp_cvq_slot *s = slot_at(v, (head + i) % v->nslots);
        uint32_t st = s->state, len = s->len;
        ipcp_compiler_barrier();
        if (i < count ? st != IPCP_CVQ_FULL || len > v->slot_size : st != IPCP_CVQ_EMPTY) return 0;
    }
    for (uint32_t i = 0; i < v->nrec; i++) {
        const struct ipcp_cvq_rec *r = &v->rec[i];
        if (!rec_ok(r->state, r->pid, r->waiting)) return 0;
    }
    return 1;
}

static int is_full(const struct ipcp_cvq_view *v, uint32_t i)
{
    return slot_at(v, i % v->nslots)->state == IPCP_CVQ_FULL;
}

int ipcp_cvq_repair(const struct ipcp_cvq_view *v, struct ipcp_cvq_fix *fix)
{
    if (!geometry_ok(v)) return -EINVAL;
    struct ipcp_cvq_fix f = {0};
    uint32_t n = v->nslots;
    /* 1. Slot states: after this every slot is EMPTY or FULL with a valid length. */
    for (uint32_t i = 0; i < n; i++) {
        struct ipcp_cvq_slot *s = slot_at(v, i);
        uint32_t st = s->state, len = s->len;
        ipcp_compiler_barrier();
        uint32_t to = st;
        if (st == IPCP_CVQ_READING && len <= v->slot_size) {
            to = IPCP_CVQ_FULL; /* the get did not finish: nobody has the message */
            f.restored++;
        } else if (st == IPCP_CVQ_WRITING) {
            to = IPCP_CVQ_EMPTY; /* the put did not finish: its sender never got 0 */
            f.discarded++;
        } else if (st != IPCP_CVQ_EMPTY && (st != IPCP_CVQ_FULL || len > v->slot_size)) {
            to = IPCP_CVQ_EMPTY;
            f.dropped++;
        }
        if (to != st) s->state = to;
    }
    /* 2. Indices: the run of FULL slots from head is the queue. */
    uint32_t head = v->ctl->head, tail = v->ctl->tail, count = v->ctl->count;
    ipcp_compiler_barrier();
    uint32_t h = head;
    if (h >= n) {
        h = 0;
        for (uint32_t i = 0; i < n; i++)
            if (is_full(v, i) && !is_full(v, i + n - 1)) {
                h = i;
                break;
            }
    }
    uint32_t skip = 0, run = 0;
    while (skip < n && !is_full(v, h + skip))
        skip++;
    if (skip < n) {
        h = (h + skip) % n;
        while (run < n && is_full(v, h + run))
            run++;
    }
    for (uint32_t i = run; i < n; i++) {
        struct ipcp_cvq_slot *s = slot_at(v, (h + i) % n);
        if (s->state == IPCP_CVQ_FULL) {
            s->state = IPCP_CVQ_EMPTY; /* cut off from the queue's run: order unknown */
            f.dropped++;
        }
    }
    uint32_t t = (h + run) % n;
    if (h != head || t != tail || run != count) {
        v->ctl->head = h;
        v->ctl->tail = t;
        v->ctl->count = run;
        f.indices++;
    }
    /* 3. Endpoint records. */
    for (uint32_t i = 0; i < v->nrec; i++) {
        struct ipcp_cvq_rec *r = &v->rec[i];
        uint32_t st = r->state, pid = r->pid, w = r->waiting;
        ipcp_compiler_barrier();
        if (rec_ok(st, pid, w)) continue;
        if (st > IPCP_CVQ_REC_DEAD || pid > INT_MAX) r->state = IPCP_CVQ_REC_CLOSED;
        if (pid > INT_MAX) r->pid = 0;
        if (w > WAIT_CODES) r->waiting = 0;
        f.records++;
    }
    int changes = (int)(f.restored + f.discarded + f.dropped + f.indices + f.records);
    if (changes > 0) {
        v->ctl->repairs++;
        v->ctl->restored += f.restored;
        v->ctl->discarded += f.discarded;
        v->ctl->dropped += f.dropped;
    }
    if (fix != NULL) *fix = f;
    return changes;
}

/* ==== the queue ============================================================================= */

#define CVQ_MAGIC   0x51565049u /* "IPVQ" */
#define CVQ_VERSION 1

struct cvq_shared {
    uint32_t magic, version, hdr_size, nslots;
    uint32_t slot_size, stride, producers, consumers;
    uint8_t pad0[IPCP_CACHELINE - 32];
    pthread_mutex_t mutex;
    struct ipcp_cvq_ctl ctl;
    struct ipcp_cvq_rec rec[2 * IPCP_CVQ_MAX_EP];
    pthread_cond_t cv[2 * IPCP_CVQ_MAX_EP]; /* endpoint i waits on cv[i] */
};

struct ipcp_cvq {
    struct ipcp_shm shm;
    struct cvq_shared *sh;
    struct ipcp_cvq_view v; /* geometry: private copies made at create */
    pid_t creator;
    uint64_t pidns; /* the creator's PID namespace (proc.h): every endpoint must share it */
    uint32_t producers, consumers;
};

#define PFD_NONE (-1) /* not opened yet */
#define PFD_PROC (-2) /* no pidfd: ask /proc each time */
#define PFD_DEAD (-3)

struct ipcp_cvq_ep {
    struct ipcp_cvq *q;
    int role;
    uint32_t rec; /* index of our record */
    uint32_t pid;
    uint64_t start;
    uint32_t forkgen;
    int closed;
    uint32_t rr;                  /* where the next wake() starts looking, for fairness */
    int pfd[2 * IPCP_CVQ_MAX_EP]; /* pidfd of the process behind each record, or PFD_* */
    uint32_t pfd_pid[2 * IPCP_CVQ_MAX_EP];
    uint64_t pfd_start[2 * IPCP_CVQ_MAX_EP];
};

static int slice_ms(const struct ipcp_deadline *dl, int cap_ms)
{
    int left = ipcp__deadline_left_ms(dl);
    return left < 0 || left > cap_ms ? cap_ms : left;
}

static int init_cond(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int r = pthread_condattr_init(&a);
    if (r != 0) return -r;
    r = pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0) r = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (r == 0) r = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return -r;
}

/* ---- peers ---------------------------------------------------------------------------------- */

/* Is the process recorded in record i alive? Unknown (no pid yet) and this process count as
 * alive. A pidfd per record, kept while the record names the same process. */
static int peer_alive(struct ipcp_cvq_ep *e, uint32_t i, uint32_t pid, uint64_t start)
{
    if (pid == 0 || pid == e->pid) return 1;
    if (pid > INT_MAX) return 0;
    if (e->pfd_pid[i] != pid || e->pfd_start[i] != start || e->pfd[i] == PFD_NONE) {
        if (e->pfd[i] >= 0) close(e->pfd[i]);
        e->pfd_pid[i] = pid;
        e->pfd_start[i] = start;
        e->pfd[i] = PFD_PROC;
        if (!ipcp__proc_alive(pid, start, ~0ull)) { /* gone, zombie, or pid reused */
            e->pfd[i] = PFD_DEAD;
            return 0;
        }
        int fd = ipcp__os_pidfd_open((pid_t)pid);
        if (fd >= 0) e->pfd[i] = fd;
        if (fd == -ESRCH) e->pfd[i] = PFD_DEAD;
    }
    if (e->pfd[i] == PFD_DEAD) return 0;
    if (e->pfd[i] == PFD_PROC) return ipcp__proc_alive(pid, start, ~0ull);
    /* A pidfd turns readable when the process exits, reaped or not. */
    struct pollfd p = {.fd = e->pfd[i], .events = POLLIN};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        close(e->pfd[i]);
        e->pfd[i] = PFD_DEAD;
        return 0;
    }
    return 1;
}

/* Wakes one endpoint (all: every endpoint) waiting for `which`: consumers wait for NOT_EMPTY,
 * producers for NOT_FULL. The woken record's waiting is cleared (the next wake picks another
 * waiter); a waiter whose process is gone is marked DEAD and never signalled. Under the mutex. */
static void wake(struct ipcp_cvq_ep *e, int which, int all)
{
    struct ipcp_cvq *q = e->q;
    uint32_t from = which == IPCP_CVQ_NOT_EMPTY ? q->producers : 0;
    uint32_t n = which == IPCP_CVQ_NOT_EMPTY ? q->consumers : q->producers;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = from + (e->rr + k) % n;
        struct ipcp_cvq_rec *r = &q->sh->rec[i];
        uint32_t w = r->waiting, pid = r->pid, st = r->state;
        uint64_t start = r->start;
        ipcp_compiler_barrier();
        if (w != 1 + (uint32_t)which) continue;
        r->waiting = 0;
        if (!peer_alive(e, i, pid, start)) {
            if (st == IPCP_CVQ_REC_OPEN) r->state = IPCP_CVQ_REC_DEAD;
            continue;
        }
        pthread_cond_signal(&q->sh->cv[i]);
        if (!all) {
            e->rr = (e->rr + k + 1) % n;
            return;
        }
    }
}

/* The previous holder died holding the mutex (we hold it now): repair the queue, then reset
 * the condvar of every endpoint that waits, since the dead holder may have been inside
 * pthread_cond_signal() on it, holding its internal lock: re-initialise it and wake (FUTEX_WAKE
 * on glibc's lock word) a waiter that sleeps on that lock; the waiter sees a spurious wake-up or
 * the end of its slice and re-checks. Then mark the mutex consistent. 0, or -ENOTRECOVERABLE
 * with the mutex released. */
static int owner_died(struct ipcp_cvq_ep *e)
{
    struct cvq_shared *sh = e->q->sh;
    (void)ipcp_cvq_repair(&e->q->v, NULL);
    for (uint32_t i = 0; i < e->q->v.nrec; i++) {
        if (sh->rec[i].waiting == 0) continue;
        sh->rec[i].waiting = 0;
        if (init_cond(&sh->cv[i]) < 0) continue;
        sh->ctl.resets++;
#ifdef __GLIBC__
        ipcp__os_futex_wake(&sh->cv[i].__data.__g1_orig_size, INT_MAX);
#endif
    }
    if (pthread_mutex_consistent(&sh->mutex) != 0) {
        pthread_mutex_unlock(&sh->mutex);
        return -ENOTRECOVERABLE;
    }
    return 0;
}

static int lock_result(struct ipcp_cvq_ep *e, int r)
{
    if (r == EOWNERDEAD) return owner_died(e);
    return -r;
}

/* Takes the mutex within the deadline (nowait: one try, -EAGAIN). 0, -ETIMEDOUT, -EAGAIN,
 * -ENOTRECOVERABLE, -errno. */
static int qlock(struct ipcp_cvq_ep *e, const struct ipcp_deadline *dl, int nowait)
{
    pthread_mutex_t *m = &e->q->sh->mutex;
    if (nowait) {
        int r = pthread_mutex_trylock(m);
        return r == EBUSY ? -EAGAIN : lock_result(e, r);
    }
#ifdef IPCP_TSAN
    /* LLVM 14's TSan does not intercept pthread_mutex_clocklock and loses EOWNERDEAD in its
     * timedlock interceptor (as in lock.c): poll with trylock. */
    long pause_ns = 1000;
    for (;;) {
        int r = pthread_mutex_trylock(m);
        if (r != EBUSY) return lock_result(e, r);
        if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
        struct timespec ts = {0, pause_ns};
        nanosleep(&ts, NULL);
        if (pause_ns < 1000000) pause_ns *= 2;
    }
#else
    for (;;) {
        struct timespec ts = ipcp__mono_after_ms(slice_ms(dl, LOCK_SLICE));
        int r = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
        if (r != ETIMEDOUT) return lock_result(e, r);
        if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
    }
#endif
}

/* One wait for `which` on this endpoint's own condvar, at most a slice and at most until the
 * deadline. Called and returns with the mutex held, except -ENOTRECOVERABLE. 1: the slice ran
 * out, 0: woken (maybe spuriously), -ETIMEDOUT: the deadline has passed. */
static int wait_slice(struct ipcp_cvq_ep *e, int which, const struct ipcp_deadline *dl)
{
    struct cvq_shared *sh = e->q->sh;
    int ms = slice_ms(dl, IPCP_CVQ_SLICE_MS);
    if (ms == 0) return -ETIMEDOUT;
    pthread_cond_t *cv = &sh->cv[e->rec];
    /* Nobody is inside it (signallers hold the mutex; we hold it): a fresh condvar drops any
     * state an earlier wait or a dead signaller left. */
    int r = init_cond(cv);
    if (r < 0) return r;
    struct ipcp_cvq_rec *me = &sh->rec[e->rec];
    me->waiting = 1 + (uint32_t)which;
    struct timespec ts = ipcp__mono_after_ms(ms);
    r = pthread_cond_timedwait(cv, &sh->mutex, &ts);
    if (r == ENOTRECOVERABLE) return -ENOTRECOVERABLE;
    me->waiting = 0;
    if (r == EOWNERDEAD && owner_died(e) < 0) return -ENOTRECOVERABLE;
    return r == ETIMEDOUT ? 1 : 0;
}

/* The other side's endpoints: -EPIPE when all closed, -IPCP_E_PEERDEAD when all closed or dead
 * (alive: liveness is checked) and one dead, else 0 (one open, or not opened yet). */
static int peers_gone(struct ipcp_cvq_ep *e, int alive)
{
    struct ipcp_cvq *q = e->q;
    uint32_t from = e->role == IPCP_CVQ_PRODUCER ? q->producers : 0;
    uint32_t to = e->role == IPCP_CVQ_PRODUCER ? q->v.nrec : q->producers;
    int dead = 0;
    for (uint32_t i = from; i < to; i++) {
        struct ipcp_cvq_rec *r = &q->sh->rec[i];
        uint32_t st = r->state, pid = r->pid;
        uint64_t start = r->start;
        ipcp_compiler_barrier();
        if (st == IPCP_CVQ_REC_CLOSED) continue;
        if (st == IPCP_CVQ_REC_DEAD ||
            (st == IPCP_CVQ_REC_OPEN && alive && !peer_alive(e, i, pid, start))) {
            dead = 1;
            continue;
        }
        return 0;
    }
    return dead ? -IPCP_E_PEERDEAD : -EPIPE;
}

static int check_ep(const struct ipcp_cvq_ep *e, int role)
{
    if (e == NULL) return -EINVAL;
    if (e->role != role || e->closed || ipcp__os_forkgen() != e->forkgen) return -IPCP_E_STATE;
    return 0;
}

static void die_now(void)
{
    kill(getpid(), SIGKILL); /* a test's simulated death, holding the mutex */
    _exit(137);
}

int ipcp_cvq_put(struct ipcp_cvq_ep *e, const void *msg, size_t len, int timeout_ms)
{
    int rc = check_ep(e, IPCP_CVQ_PRODUCER);
    if (rc < 0) return rc;
    if (len > e->q->v.slot_size) return -EMSGSIZE;
    if (len > 0 && msg == NULL) return -EINVAL;
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    rc = qlock(e, &dl, timeout_ms == 0);
    if (rc < 0) return rc;
    int sliced = 0, fixes = 0;
    for (;;) {
        int steps = ipcp__cvq_die_put >= 0 ? ipcp__cvq_die_put : IPCP_CVQ_STEPS;
        rc = ipcp_cvq_put_locked(&e->q->v, msg, len, steps);
        if (rc == 0) {
            if (steps < IPCP_CVQ_STEPS) die_now();
            wake(e, IPCP_CVQ_NOT_EMPTY, 0);
            break;
        }
        if (rc == -IPCP_E_CORRUPT && fixes++ < 2) {
            (void)ipcp_cvq_repair(&e->q->v, NULL);
            continue;
        }
        if (rc != -EAGAIN) break;
        rc = peers_gone(e, sliced);
        if (rc < 0) break;
        if (timeout_ms == 0) {
            rc = -EAGAIN;
            break;
        }
        rc = wait_slice(e, IPCP_CVQ_NOT_FULL, &dl);
        if (rc == -ENOTRECOVERABLE) return rc;
        if (rc < 0) break;
        sliced = rc;
    }
    pthread_mutex_unlock(&e->q->sh->mutex);
    return rc;
}

ssize_t ipcp_cvq_get(struct ipcp_cvq_ep *e, void *buf, size_t cap, int timeout_ms)
{
    int rc = check_ep(e, IPCP_CVQ_CONSUMER);
    if (rc < 0) return rc;
    if (cap > 0 && buf == NULL) return -EINVAL;
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    rc = qlock(e, &dl, timeout_ms == 0);
    if (rc < 0) return rc;
    int sliced = 0, fixes = 0;
    ssize_t n;
    for (;;) {
        int steps = ipcp__cvq_die_get >= 0 ? ipcp__cvq_die_get : IPCP_CVQ_STEPS;
        n = ipcp_cvq_get_locked(&e->q->v, buf, cap, steps, NULL);
        if (n >= 0) {
            if (steps < IPCP_CVQ_STEPS) die_now();
            wake(e, IPCP_CVQ_NOT_FULL, 0);
            break;
        }
        if (n == -IPCP_E_CORRUPT && fixes++ < 2) {
            (void)ipcp_cvq_repair(&e->q->v, NULL);
            continue;
        }
        if (n != -EAGAIN) break;
        n = peers_gone(e, sliced);
        if (n < 0) break;
        if (timeout_ms == 0) {
            n = -EAGAIN;
            break;
        }
        rc = wait_slice(e, IPCP_CVQ_NOT_EMPTY, &dl);
        if (rc == -ENOTRECOVERABLE) return rc;
        if (rc < 0) {
            n = rc;
            break;
        }
        sliced = rc;
    }
    pthread_mutex_unlock(&e->q->sh->mutex);
    return n;
}

int ipcp_cvq_open(struct ipcp_cvq *q, int role, uint32_t index, struct ipcp_cvq_ep **out)
{
    *out = NULL;
    if (q == NULL || (role != IPCP_CVQ_PRODUCER && role != IPCP_CVQ_CONSUMER)) return -EINVAL;
    if (index >= (role == IPCP_CVQ_PRODUCER ? q->producers : q->consumers)) return -EINVAL;
    /* a dead endpoint's record is repaired when its pid is dead: one PID namespace */
    int rc = ipcp__proc_ns_check(q->pidns);
    if (rc < 0) return rc;
    struct ipcp_cvq_ep *e = calloc(1, sizeof(*e));
    if (e == NULL) return -ENOMEM;
    e->q = q;
    e->role = role;
    e->rec = role == IPCP_CVQ_PRODUCER ? index : q->producers + index;
    e->forkgen = ipcp__os_forkgen();
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(e->pfd); i++)
        e->pfd[i] = PFD_NONE;
    rc = ipcp__proc_self(&e->pid, &e->start);
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, OPEN_TIMEOUT);
    if (rc == 0) rc = qlock(e, &dl, 0);
    if (rc < 0) {
        free(e);
        return rc;
    }
    struct ipcp_cvq_rec *r = &q->sh->rec[e->rec];
    if (r->state != IPCP_CVQ_REC_FREE) {
        rc = -EBUSY;
    } else {
        r->pid = e->pid;
        r->start = e->start;
        r->waiting = 0;
        r->state = IPCP_CVQ_REC_OPEN;
    }
    pthread_mutex_unlock(&q->sh->mutex);
    if (rc < 0) {
        free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void ipcp_cvq_close(struct ipcp_cvq_ep *e)
{
    if (e == NULL) return;
    if (!e->closed && ipcp__os_forkgen() == e->forkgen) {
        struct ipcp_deadline dl;
        ipcp__deadline_init(&dl, OPEN_TIMEOUT);
        if (qlock(e, &dl, 0) == 0) {
            struct ipcp_cvq_rec *r = &e->q->sh->rec[e->rec];
            r->waiting = 0;
            r->state = IPCP_CVQ_REC_CLOSED;
            wake(e, IPCP_CVQ_NOT_EMPTY, 1); /* consumers may now see the end */
            wake(e, IPCP_CVQ_NOT_FULL, 1);
            pthread_mutex_unlock(&e->q->sh->mutex);
        }
    }
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(e->pfd); i++)
        if (e->pfd[i] >= 0) close(e->pfd[i]);
    free(e);
}

int ipcp_cvq_create(const struct ipcp_cvq_cfg *cfg, struct ipcp_cvq **out)
{
    *out = NULL;
    if (cfg == NULL || cfg->producers == 0 || cfg->producers > IPCP_CVQ_MAX_EP ||
        cfg->consumers == 0 || cfg->consumers > IPCP_CVQ_MAX_EP || cfg->max_msg == 0)
        return -EINVAL;
    if (cfg->max_msg > IPCP_CVQ_MAX_MSG) return -EMSGSIZE;
    size_t cap = cfg->capacity ? cfg->capacity : IPCP_CVQ_DEFAULT_CAP;
    size_t n = cap / cfg->max_msg, stride = ipcp_cvq_stride(cfg->max_msg);
    if (n < IPCP_CVQ_MIN_SLOTS) n = IPCP_CVQ_MIN_SLOTS;
    if (n > IPCP_CVQ_MAX_SLOTS) n = IPCP_CVQ_MAX_SLOTS;
    if (n * stride > IPCP_CVQ_MAX_REGION) n = IPCP_CVQ_MAX_REGION / stride;
    if (n < IPCP_CVQ_MIN_SLOTS) return -EMSGSIZE;
    size_t hdr = (sizeof(struct cvq_shared) + 127) & ~(size_t)127;
    struct ipcp_cvq *q = calloc(1, sizeof(*q));
    if (q == NULL) return -ENOMEM;
    int rc = ipcp_shm_create(&q->shm, "cvq", cfg->stem, hdr + n * stride);
    if (rc < 0) {
        free(q);
        return rc;
    }
    struct cvq_shared *sh = q->shm.addr;
    q->sh = sh;
    q->creator = getpid();
    q->pidns = ipcp__proc_ns();
    q->producers = cfg->producers;
    q->consumers = cfg->consumers;
    sh->magic = CVQ_MAGIC;
    sh->version = CVQ_VERSION;
    sh->hdr_size = (uint32_t)hdr;
    sh->nslots = (uint32_t)n;
    sh->slot_size = (uint32_t)cfg->max_msg;
    sh->stride = (uint32_t)stride;
    sh->producers = cfg->producers;
    sh->consumers = cfg->consumers;
    rc = ipcp__robust_mutex_init(&sh->mutex);
    for (uint32_t i = 0; i < cfg->producers + cfg->consumers && rc == 0; i++)
        rc = init_cond(&sh->cv[i]);
    if (rc < 0) {
        ipcp_shm_close(&q->shm);
        free(q);
        return rc;
    }
    q->v.ctl = &sh->ctl;
    q->v.slots = (uint8_t *)sh + hdr;
    q->v.nslots = (uint32_t)n;
    q->v.slot_size = (uint32_t)cfg->max_msg;
    q->v.rec = sh->rec;
    q->v.nrec = cfg->producers + cfg->consumers;
    *out = q;
    return 0;
}

void ipcp_cvq_destroy(struct ipcp_cvq *q)
{
    if (q == NULL) return;
    if (getpid() == q->creator)
        ipcp_shm_close(&q->shm); /* unmaps and unlinks */
    else if (q->shm.addr != NULL)
        munmap(q->shm.addr, q->shm.size); /* an inherited copy never unlinks */
    free(q);
}

const char *ipcp_cvq_name(const struct ipcp_cvq *q)
{
    return q->shm.name;
}

uint32_t ipcp_cvq_slots(const struct ipcp_cvq *q)
{
    return q->v.nslots;
}

void ipcp_cvq_stats(const struct ipcp_cvq *q, struct ipcp_cvq_stats *s)
{
    const struct ipcp_cvq_ctl *c = &q->sh->ctl;
    s->slots = q->v.nslots;
    s->slot_size = q->v.slot_size;
    s->count = c->count;
    s->repairs = c->repairs;
    s->restored = c->restored;
    s->discarded = c->discarded;
    s->dropped = c->dropped;
    s->resets = c->resets;
}

void *ipcp__cvq_mutex(struct ipcp_cvq *q)
{
    return &q->sh->mutex;
}

void *ipcp__cvq_cond(struct ipcp_cvq *q, uint32_t i)
{
    return &q->sh->cv[i];
}

const struct ipcp_cvq_view *ipcp__cvq_view(const struct ipcp_cvq *q)
{
    return &q->v;
}

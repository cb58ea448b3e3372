/* fuzz_lock_sched.c - the real mq token lock (core/src/mqlock.c) with 2-4 clients that die and
 * come back, and the real READY/OK handoff (core/src/handoff.c) with forged messages, under
 * ipcproof's scheduler, with the fuzzer's bytes as the scheduling decisions.
 *
 * mqlock.c and handoff.c are compiled into this target with the -fsanitize=thread
 * instrumentation only (the callbacks are the scheduler runtime of stress/sched/, linked in), so
 * every atomic access of the owner word and the counters is a scheduling point; the POSIX queue
 * calls are scheduler waits (interpose_ipc.c: the real queues, called without blocking) and the
 * clocks are virtual (sched_glue.c). Every client, sender and receiver is a thread playing a
 * process: this file defines proc.h's functions (proc.c's, which it replaces), so
 * each has a pid and a start time of its own, and a process that died is dead to the others.
 * This replaces a hand-written model of mqlock.c's and handoff.c's access order.
 *
 * Deaths (ipcproof_sched_die_at): a client dies at its n-th scheduling point after opening its
 * handle, wherever that is (inside lock() with a token just received, between the acquiring CAS and
 * the counter, in the critical section, between the releasing CAS and the send, in a queue
 * call...); the operation of that point never happens, its locals are lost, its queue descriptor is
 * closed. A death lands only at a scheduling point: between two atomic accesses or queue calls,
 * which is where one can hurt (plain memory and the pure decisions in between touch nothing
 * shared). Then the client may come back as a new process, under a new pid or the dead one's (a
 * reused pid: only the start time differs), which may die again.
 *
 * Input: byte 0 bit 0: 0 the lock, 1 the handoff.
 * Lock: byte 1: bits 0-1 clients 2 + (b % 3), bits 2-3 acquisitions per client 1..4. Then three
 *   bytes per client: the point its first process dies at (0: lives), bit 0 comes back after
 *   that death and bit 1 under the same pid, the point the second process dies at (0: lives).
 *   Recovery time 10 ms (receive slices of 2 ms), queue depth 4. After the clients, a late
 *   comer (a new process) takes the lock once.
 * Handoff: byte 1: slots 1 + (b & 3), slot size 8, 16 or 64 ((b >> 2) & 3); byte 2: messages
 *   1 + (b % 32); byte 3: forged messages (b % 5), each four bytes (kind and fields), which a
 *   third thread puts into the queues when the schedule lets it.
 * The rest: the decisions, one byte each (which runnable thread runs next); when they run out, a
 * fixed stream takes over.
 *
 * Checked, lock: never two holders inside the critical section; lock() returns 1 exactly when
 * the previous holder died holding (the owner word named the dying process), else 0; every
 * lock() succeeds within 2 s of virtual time (recovery: after a death, also of the last holder,
 * the lock is acquired again; a live holder's unlock() succeeds; no second token or foreign
 * message was ever found (stats). Handoff: every message arrives once, in order, whole; every
 * send, recv and flush succeeds, except for refusals (-EBADMSG, -IPCP_E_SEQUENCE,
 * -IPCP_E_STATE) of forged messages, at most one per forgery, which change nothing. Both: the
 * schedule ends (no deadlock, no livelock).
 *
 * IPCP_FUZZ_TRACE=1 prints each client's calls and deaths, and the last scheduling points.
 * IPCP_MQLOCK_REVERT_PID_FIX builds the lock_sched_revert check target (harnesses/CMakeLists.txt)
 * over mqlock.c with the reused-pid fix reverted. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "proc.h"
#include "ipcproof/err.h"
#include "ipcproof/handoff.h"
#include "ipcproof/mqlock.h"
#include "sched_glue.h"

#define NCLI        4
#define RECOVERY_MS 10
#define TIMEOUT_MS  2000 /* virtual time */
#define MAX_STEPS   400000

static struct st_sched_report report;
static char failure[256]; /* the first thing a thread found wrong (one thread runs at a time) */
static int tracing;

FZ_NO_COVERAGE __attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    if (failure[0] != '\0') return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failure, sizeof(failure), fmt, ap);
    va_end(ap);
}

FZ_NO_COVERAGE __attribute__((format(printf, 1, 2))) static void trace(const char *fmt, ...)
{
    if (!tracing) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("  ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- simulated processes: proc.c's two functions ----------------------------------------------
 */

#define MAX_PROCS 16
#define PID_MASK  ((1u << IPCP_MQLOCK_PID_BITS) - 1)

struct proc {
    uint32_t pid;
    uint64_t start;
    int alive;
};

static struct proc procs[MAX_PROCS];
static int nprocs;
static uint32_t next_pid;
static _Thread_local struct proc *self_proc; /* the process this thread plays */

FZ_NO_COVERAGE static struct proc *proc_start(uint32_t pid)
{
    FZ_CHECK(nprocs < MAX_PROCS, "too many processes");
    struct proc *p = &procs[nprocs];
    *p = (struct proc){.pid = pid, .start = 5000 + (uint64_t)nprocs * 7, .alive = 1};
    nprocs++;
    self_proc = p;
    return p;
}

int ipcp__proc_self(uint32_t *pid, uint64_t *start)
{
    if (self_proc == NULL) return -ENOSYS; /* the harness's own thread plays no process */
    *pid = self_proc->pid;
    *start = self_proc->start;
    return 0;
}

int ipcp__proc_alive(uint32_t pid, uint64_t start, uint64_t start_mask)
{
    for (int i = 0; i < nprocs; i++)
        if (procs[i].alive && procs[i].pid == pid && ((procs[i].start ^ start) & start_mask) == 0)
            return 1;
    return 0;
}

/* Every thread plays a process of one PID namespace. */
uint64_t ipcp__proc_ns(void)
{
    return 1;
}

int ipcp__proc_ns_check(uint64_t ns)
{
    return ns == 1 ? 0 : -IPCP_E_PIDNS;
}

static long futex(uint32_t *w, int op, uint32_t val)
{
    return syscall(SYS_futex, w, op, val, NULL, NULL, 0); /* sched_glue.c: a scheduler wait */
}

/* ======================================== mq token lock ========================================
 */

struct client {
    uint32_t idx;
    unsigned rounds;
    uint8_t death[2]; /* the point each process dies at (0: lives) */
    uint8_t again;    /* bit 0: a second process after the first death; bit 1: the same pid */
    int life;
    int in_cs;
    struct proc *p;
    struct ipcp_mqlock_handle *h;
    jmp_buf env;
};

static struct {
    struct ipcp_mqlock *l;
    int n;
    struct client c[NCLI + 1]; /* the clients, and the late comer */
    int holders;               /* between lock()'s return and the unlock() call */
    int pending_death;         /* a process died named holder: the next lock() must return 1 */
    uint32_t running;          /* clients not finished: the late comer's futex word */
} LW;

/* A client's process dies (scheduling off: this reads the owner word as the death left it). */
FZ_NO_COVERAGE static void client_died(void *arg)
{
    struct client *c = arg;
    struct ipcp_mqlock_stats st;
    struct ipcp_mqlock_owner o;
    ipcp_mqlock_stats(LW.l, &st);
    ipcp_mqlock_word_unpack(st.word, &o);
    int holding = !o.released && o.pid == (c->p->pid & PID_MASK) &&
                  o.start == (uint32_t)(c->p->start & IPCP_MQLOCK_START_MASK);
    if (holding) LW.pending_death = 1;
    if (c->in_cs) LW.holders--;
    c->in_cs = 0;
    c->p->alive = 0;
    trace("client %u (pid %u) dies%s", c->idx, c->p->pid, holding ? ", named holder" : "");
}

/* One acquisition, critical section and release; 0, or -1 after a failure. */
FZ_NO_COVERAGE static int lock_once(struct client *c)
{
    int rc = ipcp_mqlock_lock(c->h, TIMEOUT_MS);
    trace("%s (pid %u): lock() = %d", report.names[c->idx], c->p->pid, rc);
    if (rc < 0) {
        fail("client %u (pid %u): lock() returned %d (%s)%s", c->idx, c->p->pid, rc,
             ipcp_errname(rc),
             rc == -ETIMEDOUT ? ": not acquired within 2 s after the deaths (no recovery)" : "");
        return -1;
    }
    if (rc != LW.pending_death) {
        fail("client %u: lock() returned %d, but the previous holder %s", c->idx, rc,
             LW.pending_death ? "died holding it" : "did not die holding it");
        return -1;
    }
    LW.pending_death = 0;
    if (LW.holders != 0) {
        fail("client %u entered the critical section beside a live holder", c->idx);
        return -1;
    }
    LW.holders++;
    c->in_cs = 1;
    ipcproof_sched_point(); /* inside: the others may run, this process may die */
    ipcproof_sched_point();
    if (LW.holders != 1) {
        fail("client %u: another client entered the critical section while it held the lock",
             c->idx);
        return -1;
    }
    c->in_cs = 0;
    LW.holders--;
    rc = ipcp_mqlock_unlock(c->h);
    trace("%s: unlock() = %d", report.names[c->idx], rc);
    if (rc != 0) {
        fail("client %u (pid %u): unlock() by a live holder returned %d (%s)", c->idx, c->p->pid,
             rc, ipcp_errname(rc));
        return -1;
    }
    return 0;
}

FZ_NO_COVERAGE static void *client_main(void *arg)
{
    struct client *c = arg;
    static const char *const names[NCLI] = {"client 0", "client 1", "client 2", "client 3"};
    ipcproof_sched_enter(c->idx, c->idx == (uint32_t)LW.n ? "late comer" : names[c->idx]);
    if (c->idx == (uint32_t)LW.n) { /* the late comer: after every client, one acquisition */
        uint32_t r;
        while ((r = LW.running) > 0)
            futex(&LW.running, FUTEX_WAIT_PRIVATE, r);
        proc_start(next_pid++);
        c->p = self_proc;
        int rc = failure[0] ? 0 : ipcp_mqlock_open(LW.l, &c->h);
        if (rc < 0) fail("late comer: open: %d", rc);
        if (c->h != NULL && !failure[0]) lock_once(c);
        ipcp_mqlock_close(c->h);
        c->h = NULL;
        ipcproof_sched_leave();
        return NULL;
    }
    for (c->life = 0; c->life < 2 && !failure[0]; c->life++) {
        if (c->life == 1 && !(c->again & 1)) break;
        uint32_t pid = c->life == 1 && (c->again & 2) ? c->p->pid : next_pid++;
        c->p = proc_start(pid);
        if (setjmp(c->env) != 0) { /* died: the kernel closes its descriptor */
            ipcp_mqlock_close(c->h);
            c->h = NULL;
            continue;
        }
        int rc = ipcp_mqlock_open(LW.l, &c->h);
        if (rc < 0) fail("client %u: open: %d", c->idx, rc);
        /* not inside open(): the handle it allocates would be lost (a process's memory goes
         * with it; a thread's does not), and open changes nothing shared */
        ipcproof_sched_die_at(c->death[c->life], &c->env, client_died, c);
        for (unsigned k = 0; rc == 0 && k < c->rounds && !failure[0]; k++)
            rc = lock_once(c);
        ipcproof_sched_die_at(0, NULL, NULL, NULL);
        ipcp_mqlock_close(c->h); /* and the process exits */
        c->h = NULL;
        c->p->alive = 0;
        break;
    }
    LW.running--;
    futex(&LW.running, FUTEX_WAKE_PRIVATE, INT_MAX);
    ipcproof_sched_leave();
    return NULL;
}

FZ_NO_COVERAGE static void run_lock(struct fz_in *in)
{
    uint8_t g = fz_u8(in);
    memset(&LW, 0, sizeof(LW));
    LW.n = 2 + (g & 3) % 3;
    for (int i = 0; i <= LW.n; i++) {
        struct client *c = &LW.c[i];
        c->idx = (uint32_t)i;
        c->rounds = 1 + ((g >> 2) & 3);
        if (i == LW.n) break;
        c->death[0] = fz_u8(in);
        c->again = fz_u8(in);
        c->death[1] = fz_u8(in);
    }
    LW.running = (uint32_t)LW.n;
    struct ipcp_mqlock_cfg cfg = {.recovery_ms = RECOVERY_MS};
    FZ_CHECK_RC(ipcp_mqlock_create(&cfg, &LW.l), 0, "mqlock_create");

    size_t left = fz_left(in);
    const uint8_t *decisions = fz_bytes(in, left, &left);
    struct st_sched_cfg sc = {.strategy = ST_SCHED_RANDOM,
                              .seed = 1,
                              .max_steps = MAX_STEPS,
                              .nthreads = (uint32_t)LW.n + 1,
                              .tso = 1,
                              .decisions = decisions,
                              .ndecisions = left,
                              .raw_trace = 1};
    FZ_CHECK_RC(ipcproof_sched_begin(&sc, &report), 0, "sched begin");
    pthread_t t[NCLI + 1];
    for (int i = 0; i <= LW.n; i++)
        FZ_CHECK(pthread_create(&t[i], NULL, client_main, &LW.c[i]) == 0, "pthread_create");
    int st = ipcproof_sched_run();
    struct ipcp_mqlock_stats stats;
    ipcp_mqlock_stats(LW.l, &stats);
    if (st == ST_SCHED_FINISHED && failure[0] == '\0' && stats.duplicates + stats.foreign != 0)
        fail("a second valid token or a foreign message was found (%llu, %llu)",
             (unsigned long long)stats.duplicates, (unsigned long long)stats.foreign);
    if (st != ST_SCHED_FINISHED || failure[0] || tracing)
        fz_sched_print_trace(&report, "lock_sched", 64);
    FZ_CHECK(failure[0] == '\0', "%s", failure);
    FZ_CHECK(st == ST_SCHED_FINISHED, "the schedule ended in %s at step %llu",
             fz_sched_status_text(st), (unsigned long long)report.steps);
    for (int i = 0; i <= LW.n; i++)
        pthread_join(t[i], NULL);
    ipcp_mqlock_destroy(LW.l);
}

/* ======================================== READY/OK handoff =====================================
 */

#define MAX_MSGS   32
#define MAX_FORGED 4

struct forgery {
    uint8_t kind, a, b, c;
};

static struct {
    struct ipcp_handoff *ho;
    uint32_t nslots, slot_size, nmsg;
    unsigned sent, received; /* sends and receives that returned a message */
    int sender_done;
    unsigned forged_ok, forged_rdy; /* forgeries put into the OK and the READY queue */
    unsigned refused_ok, refused_rdy;
    int nforged;
    struct forgery f[MAX_FORGED];
} HW;

static uint32_t msg_len(unsigned k)
{
    return (uint32_t)((k * 13u + HW.nslots * 5u) % (HW.slot_size + 1));
}

static int refusal(long rc)
{
    return rc == -EBADMSG || rc == -IPCP_E_SEQUENCE || rc == -IPCP_E_STATE;
}

FZ_NO_COVERAGE static void *sender_main(void *arg)
{
    (void)arg;
    ipcproof_sched_enter(0, "sender");
    proc_start(next_pid++);
    struct ipcp_handoff_ep *ep = NULL;
    int rc = ipcp_handoff_open(HW.ho, IPCP_HANDOFF_SENDER, &ep);
    if (rc < 0) fail("sender: open: %d", rc);
    uint8_t data[64];
    for (unsigned k = 0; ep != NULL && k < HW.nmsg && !failure[0]; k++) {
        fz_fill(data, msg_len(k), k + 1);
        while ((rc = ipcp_handoff_send(ep, data, msg_len(k), TIMEOUT_MS)) != 0) {
            if (!refusal(rc) || HW.refused_ok >= HW.forged_ok) {
                fail("sender: message %u: send returned %d (%s), %u of %u forged OKs refused", k,
                     rc, ipcp_errname(rc), HW.refused_ok, HW.forged_ok);
                break;
            }
            HW.refused_ok++; /* a forgery, refused: send again */
        }
        HW.sent += rc == 0;
    }
    while (ep != NULL && !failure[0] && (rc = ipcp_handoff_flush(ep, TIMEOUT_MS)) != 0) {
        if (!refusal(rc) || HW.refused_ok >= HW.forged_ok) {
            fail("sender: flush returned %d (%s)", rc, ipcp_errname(rc));
            break;
        }
        HW.refused_ok++;
    }
    HW.sender_done = 1;
    ipcp_handoff_close(ep);
    ipcproof_sched_leave();
    return NULL;
}

FZ_NO_COVERAGE static void *receiver_main(void *arg)
{
    (void)arg;
    ipcproof_sched_enter(1, "receiver");
    proc_start(next_pid++);
    struct ipcp_handoff_ep *ep = NULL;
    int rc = ipcp_handoff_open(HW.ho, IPCP_HANDOFF_RECEIVER, &ep);
    if (rc < 0) fail("receiver: open: %d", rc);
    uint8_t buf[64], want[64];
    while (ep != NULL && HW.received < HW.nmsg && !failure[0]) {
        unsigned k = HW.received;
        ssize_t n = ipcp_handoff_recv(ep, buf, sizeof(buf), TIMEOUT_MS);
        if (n < 0) {
            if (refusal(n) && HW.refused_rdy < HW.forged_rdy) {
                HW.refused_rdy++;
                continue;
            }
            fail("receiver: message %u: recv returned %zd (%s), %u of %u forged READYs refused", k,
                 n, ipcp_errname((int)n), HW.refused_rdy, HW.forged_rdy);
            break;
        }
        fz_fill(want, msg_len(k), k + 1);
        if ((uint32_t)n != msg_len(k) || memcmp(buf, want, (size_t)n) != 0) {
            fail("receiver: message %u: %zd bytes%s, sent %u", k, n,
                 (uint32_t)n == msg_len(k) ? " that differ" : "", msg_len(k));
            break;
        }
        HW.received++;
    }
    /* Forged OKs may have kept the last OK from going out: the next recv() sends it. Called
     * until the sender is through; nothing but forgeries may come. Each call waits 1 ms: a poll
     * with no timeout keeps this thread runnable, so virtual time never reaches the end of the
     * sender's wait (a livelock of the harness, not of the handoff). */
    while (ep != NULL && HW.forged_ok > 0 && !HW.sender_done && !failure[0]) {
        ssize_t n = ipcp_handoff_recv(ep, buf, sizeof(buf), 1);
        if (n == -ETIMEDOUT) continue;
        if (refusal(n) && HW.refused_rdy < HW.forged_rdy) {
            HW.refused_rdy++;
            continue;
        }
        fail("receiver: after the last message, recv returned %zd (%s)", n,
             n < 0 ? ipcp_errname((int)n) : "a message");
    }
    ipcp_handoff_close(ep);
    ipcproof_sched_leave();
    return NULL;
}

/* A forged message, unless it could ever be accepted: one of the queue's own type whose seq is
 * not used up yet would be a perfect forgery (a READY with a wrong checksum still takes the
 * real one's place), which no protocol can tell from the real one. 0: not sent. */
FZ_NO_COVERAGE static int forge(const struct forgery *f, uint8_t m[IPCP_HANDOFF_MSG_SIZE],
                                int *to_ok)
{
    *to_ok = f->kind & 1;
    struct ipcp_handoff_msg x = {.type = *to_ok ? IPCP_HANDOFF_OK : IPCP_HANDOFF_READY,
                                 .slot = f->a % (HW.nslots + 1),
                                 .seq = f->b,
                                 .len = *to_ok ? 0 : f->c % (HW.slot_size + 2),
                                 .sum = 0};
    switch ((f->kind >> 1) & 3) {
    case 0: /* a replay of a used-up seq */
        x.seq = *to_ok ? (HW.sent > HW.nslots ? f->b % (HW.sent - HW.nslots) : 0)
                       : (HW.received ? f->b % HW.received : 0);
        x.slot = (uint32_t)(x.seq % HW.nslots);
        ipcp_handoff_msg_encode(&x, m);
        break;
    case 1: /* fields as they come */
        ipcp_handoff_msg_encode(&x, m);
        break;
    case 2: /* the other queue's type */
        x.type = *to_ok ? IPCP_HANDOFF_READY : IPCP_HANDOFF_OK;
        x.len = 0;
        ipcp_handoff_msg_encode(&x, m);
        break;
    default: /* garbage */
        fz_fill(m, IPCP_HANDOFF_MSG_SIZE, (uint64_t)f->a << 16 | (uint64_t)f->b << 8 | f->c);
        break;
    }
    struct ipcp_handoff_msg d;
    uint8_t own = *to_ok ? IPCP_HANDOFF_OK : IPCP_HANDOFF_READY;
    /* seqs below these are used up: an OK once the send nslots later completed (its slot came
     * back), a READY once received */
    uint64_t past = *to_ok ? (HW.sent > HW.nslots ? HW.sent - HW.nslots : 0) : HW.received;
    return !(ipcp_handoff_msg_decode(m, IPCP_HANDOFF_MSG_SIZE, &d) == 0 && d.type == own &&
             d.seq >= past);
}

FZ_NO_COVERAGE static void *forger_main(void *arg)
{
    (void)arg;
    ipcproof_sched_enter(2, "forger");
    char rname[128], oname[128];
    const char *rest = ipcp_handoff_name(HW.ho) + strlen("/ipcp.handoff");
    snprintf(rname, sizeof(rname), "/ipcp.hready%s", rest); /* handoff.h's names */
    snprintf(oname, sizeof(oname), "/ipcp.hok%s", rest);
    mqd_t rq = mq_open(rname, O_WRONLY | O_CLOEXEC), oq = mq_open(oname, O_WRONLY | O_CLOEXEC);
    if (rq == (mqd_t)-1 || oq == (mqd_t)-1) fail("forger: mq_open: %d", errno);
    for (int i = 0; i < HW.nforged && rq != (mqd_t)-1 && oq != (mqd_t)-1; i++) {
        uint8_t m[IPCP_HANDOFF_MSG_SIZE];
        int to_ok;
        if (!forge(&HW.f[i], m, &to_ok)) continue;
        static const struct timespec now = {0, 0};
        if (mq_timedsend(to_ok ? oq : rq, (const char *)m, sizeof(m), 0, &now) != 0) continue;
        if (to_ok)
            HW.forged_ok++;
        else
            HW.forged_rdy++;
    }
    if (rq != (mqd_t)-1) mq_close(rq);
    if (oq != (mqd_t)-1) mq_close(oq);
    ipcproof_sched_leave();
    return NULL;
}

FZ_NO_COVERAGE static void run_handoff(struct fz_in *in)
{
    memset(&HW, 0, sizeof(HW));
    uint8_t g = fz_u8(in);
    static const uint32_t sizes[3] = {8, 16, 64};
    HW.nslots = 1 + (g & 3);
    HW.slot_size = sizes[((g >> 2) & 3) % 3];
    HW.nmsg = 1 + fz_u8(in) % MAX_MSGS;
    HW.nforged = fz_u8(in) % (MAX_FORGED + 1);
    for (int i = 0; i < HW.nforged; i++)
        HW.f[i] = (struct forgery){fz_u8(in), fz_u8(in), fz_u8(in), fz_u8(in)};
    struct ipcp_handoff_cfg cfg = {.nslots = HW.nslots, .slot_size = HW.slot_size};
    FZ_CHECK_RC(ipcp_handoff_create(&cfg, &HW.ho), 0, "handoff_create");

    size_t left = fz_left(in);
    const uint8_t *decisions = fz_bytes(in, left, &left);
    struct st_sched_cfg sc = {.strategy = ST_SCHED_RANDOM,
                              .seed = 1,
                              .max_steps = MAX_STEPS,
                              .nthreads = 3,
                              .tso = 1,
                              .decisions = decisions,
                              .ndecisions = left,
                              .raw_trace = 1};
    FZ_CHECK_RC(ipcproof_sched_begin(&sc, &report), 0, "sched begin");
    pthread_t t[3];
    void *(*mains[3])(void *) = {sender_main, receiver_main, forger_main};
    for (int i = 0; i < 3; i++)
        FZ_CHECK(pthread_create(&t[i], NULL, mains[i], NULL) == 0, "pthread_create");
    int st = ipcproof_sched_run();
    if (st == ST_SCHED_FINISHED && failure[0] == '\0' && HW.received != HW.nmsg)
        fail("%u of %u messages received", HW.received, HW.nmsg);
    trace("handoff: %u of %u messages; forged %u OKs, %u READYs; refused %u, %u", HW.received,
          HW.nmsg, HW.forged_ok, HW.forged_rdy, HW.refused_ok, HW.refused_rdy);
    if (st != ST_SCHED_FINISHED || failure[0] || tracing)
        fz_sched_print_trace(&report, "lock_sched (handoff)", 64);
    FZ_CHECK(failure[0] == '\0', "%s", failure);
    FZ_CHECK(st == ST_SCHED_FINISHED, "the schedule ended in %s at step %llu",
             fz_sched_status_text(st), (unsigned long long)report.steps);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    ipcp_handoff_destroy(HW.ho);
}

FZ_NO_COVERAGE int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    tracing = getenv("IPCP_FUZZ_TRACE") != NULL;
    failure[0] = '\0';
    nprocs = 0;
    next_pid = 1000;
    struct fz_in in = fz_in_make(data, size);
    if (fz_u8(&in) & 1)
        run_handoff(&in);
    else
        run_lock(&in);
    return 0;
}

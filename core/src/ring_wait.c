/* ring_wait.c - the ring's waiting layer (see ring.c, docs/ring.md "Blocking and wake-up" and
 * "Peer death"): spin, shared futex, and the peer's liveness through a pidfd or kill. Only
 * entered when a call has to wait. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proc.h"
#include "ring_impl.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Shared futexes (os.c): the words live in memory other processes map. Any result of a wait
 * only makes the caller look again. */
static void futex_wait(_Atomic uint32_t *word, uint32_t seen, int ms)
{
    (void)ipcp__os_futex_wait(word, seen, ms);
}

void ipcp__ring_wake(_Atomic uint32_t *word)
{
    ipcp__os_futex_wake(word, INT_MAX);
}

/* Did the peer close or die? 0: no (or not attached yet), -EPIPE, -IPCP_E_PEERDEAD, or
 * -IPCP_E_CORRUPT for a recorded pid no process can have. */
static int peer_gone(struct ipcp_ring *r)
{
    struct ring_shared *s = sh(r);
    int prod = r->role == IPCP_RING_PRODUCER;
    /* Acquire: if the peer closed, its last index store (made before) is visible to the
     * re-check the caller does next. */
    uint32_t st = ipcp_load_acquire32(&s->state);
    if (st & (prod ? ST_CONS_CLOSED : ST_PROD_CLOSED)) return -EPIPE;
    uint32_t raw = ipcp_load_relaxed32(prod ? &s->cons_pid : &s->prod_pid); /* read once */
    if (raw == 0) return 0;
    if (raw > INT_MAX) return ring_fail(r, -IPCP_E_CORRUPT);
    pid_t pid = (pid_t)raw;
    if (pid == getpid()) return 0; /* both sides are threads of this process */
    if ((int32_t)pid != r->peer_pid) {
        if (r->peer_pid != 0 && r->peer_fd >= 0) close(r->peer_fd);
        r->peer_pid = (int32_t)pid;
        r->peer_fd = ipcp__os_pidfd_open(pid);
        if (r->peer_fd == -ESRCH) return -IPCP_E_PEERDEAD;
        if (r->peer_fd < 0) r->peer_fd = -1; /* ENOSYS, EMFILE...: kill(pid, 0) instead */
    }
    if (r->peer_fd >= 0) {
        /* A pidfd turns readable when the process exits, reaped or not. */
        struct pollfd p = {.fd = r->peer_fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
            return -IPCP_E_PEERDEAD;
        return 0;
    }
    /* Without pidfds: proc.h's rule (a zombie still answers kill(pid, 0)). */
    if (!ipcp__proc_alive((uint32_t)pid, 0, 0)) return -IPCP_E_PEERDEAD;
    return 0;
}

/* ---- membarrier: the sleeper's half of a fence the publisher does not make ----------------- */

int ipcp__ring_membarrier_mode;

static long membarrier(int cmd)
{
#ifdef SYS_membarrier
    return syscall(SYS_membarrier, cmd, 0, 0);
#else
    (void)cmd;
    errno = ENOSYS;
    return -1;
#endif
}

static _Atomic int mb_ready = -1; /* -1: not asked yet, 0: no, 1: registered */

static int mb_register(void)
{
    long q = membarrier(MEMBARRIER_CMD_QUERY);
    int want = MEMBARRIER_CMD_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;
    return q >= 0 && (q & want) == want &&
           membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
}

/* Linux keeps the registration across fork (the child gets a copy of the mm); registering
 * again costs one syscall per fork and does not depend on it. */
static void mb_fork_child(void)
{
    if (atomic_load_explicit(&mb_ready, memory_order_relaxed) == 1)
        atomic_store_explicit(&mb_ready, mb_register(), memory_order_relaxed);
}

/* No pthread_once: a thread that blocked inside it would be invisible to the scheduler of
 * `--mode sched`. Two first calls may both register (idempotent); one installs the handler. */
int ipcp__ring_membarrier_ready(void)
{
    if (ipcp__ring_membarrier_mode != 0) return ipcp__ring_membarrier_mode > 0;
    int v = atomic_load_explicit(&mb_ready, memory_order_relaxed);
    if (v < 0) {
        int expect = -1;
        v = mb_register();
        if (atomic_compare_exchange_strong_explicit(&mb_ready, &expect, v, memory_order_relaxed,
                                                    memory_order_relaxed))
            pthread_atfork(NULL, NULL, mb_fork_child);
        else
            v = expect;
    }
    return v == 1;
}

/* A full barrier on every CPU running a thread of a registered process (the peer's too): a
 * publisher's index store that the fence-less path left in its store buffer is visible when this
 * returns. 0, or -1 when it failed (the caller then sleeps in short slices). */
static int mb_all(void)
{
#ifdef IPCP_RING_REVERT_MEMBARRIER /* only the fuzz target's revert check builds this */
    return 0;
#else
    return membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0 ? 0 : -1;
#endif
}

/* Waits until *word differs from seen (0), the deadline passes (-ETIMEDOUT; -EAGAIN at once for
 * timeout 0), or the peer closed or died. The caller re-reads the index itself, with acquire,
 * and re-checks. */
int ipcp__ring_wait(struct ipcp_ring *r, _Atomic uint32_t *word, _Atomic uint32_t *sleeps,
                    uint32_t seen, struct waiter *w)
{
    if (w->timeout_ms == 0) {
        /* A try never waits and makes no syscall, but it does report a peer that closed
         * (acquire: the peer's last index store is then visible to the re-check). A dead peer
         * is only noticed by a call that waits. */
        uint32_t bit = r->role == IPCP_RING_PRODUCER ? ST_CONS_CLOSED : ST_PROD_CLOSED;
        if (!(ipcp_load_acquire32(&sh(r)->state) & bit)) return -EAGAIN;
        return ipcp_load_acquire32(word) != seen ? 0 : -EPIPE;
    }
    for (unsigned i = 0; i < r->spin; i++) {
        /* Relaxed: only notices a change; nothing is read on the strength of it. */
        if (ipcp_load_relaxed32(word) != seen) return 0;
        cpu_relax();
    }
    if (!w->started) {
        ipcp__deadline_init(&w->dl, w->timeout_ms);
        w->started = 1;
    }
    const struct ipcp_deadline *dl = &w->dl;
    int rc = 0, slice = SLICE_MS;
    int mb = ipcp__ring_membarrier_ready();
    uint32_t own = r->role == IPCP_RING_PRODUCER ? ST_PROD_ASYM : ST_CONS_ASYM;
    if (!mb && (ipcp_load_relaxed32(&sh(r)->state) & own))
        slice = 1; /* announced at attach, lost since (a forked child that could not register) */
    for (;;) {
        /* Announce the sleep, then look at the index, both seq_cst. The peer publishes its
         * index, then looks at the flag: seq_cst both, or (docs/ring.md) a plain store and load
         * when both sides issue membarrier here, which makes the peer's store visible before we
         * look. Either way one of us sees the other's store: we see the new index here, or the
         * peer sees the flag and wakes us; its wake cannot get lost in between, since
         * FUTEX_WAIT only sleeps while *word still equals seen. */
        ipcp_store_seqcst32(sleeps, seen | SLEEPS_ON); /* seen is aligned: a 16-byte index */
        if (mb && mb_all() < 0) slice = 1; /* cannot happen once registered; bounded if it does */
        if (ipcp_load_seqcst32(word) != seen) break;
        rc = peer_gone(r);
        if (rc < 0) {
            if (ipcp_load_acquire32(word) != seen) rc = 0; /* it published before leaving */
            break;
        }
        int left = ipcp__deadline_left_ms(dl);
        if (left == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        futex_wait(word, seen, left < 0 || left > slice ? slice : left);
        if (ipcp_load_relaxed32(word) != seen) break;
    }
    /* Only the sleeper writes its flag. Until this store the peer sees us asleep on seen, which
     * its index has left: it does not wake us again (ring.c, ring_publish). */
    ipcp_store_relaxed32(sleeps, 0);
    return rc;
}

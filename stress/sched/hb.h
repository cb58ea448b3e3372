/* hb.h - happens-before data-race detection for the scheduler of `--mode sched` (hb.c).
 *
 * A data race, as C11 defines it: two accesses to the same byte from different threads, at
 * least one a write, at least one plain (not atomic), neither happening before the other. The
 * detector keeps a vector clock per scheduled thread, one per synchronisation object (an atomic
 * location's release sequence, a mutex, a semaphore, a wake-up key...) and, for every byte a
 * plain access touched, the epoch of its last write and of its last read (or the reads of every
 * thread since that write), as FastTrack does (Flanagan and Freund, PLDI 2009).
 *
 * Sans I/O: the scheduler (schedrt.c) calls it with the index of the thread that runs, one
 * thread at a time; the state lives in anonymous mappings of its own. */
#ifndef IPCP_SCHED_HB_H
#define IPCP_SCHED_HB_H

#include <stddef.h>
#include <stdint.h>

#define HB_MAX_THREADS 64
#define HB_PENDING     16 /* buffered stores per thread (the TSO store buffer holds at most this) */

/* Namespaces of synchronisation objects: the same address may be an atomic location and a
 * futex word, and a futex wake must not overwrite what the word's release stores published. */
enum hb_kind {
    HB_ATOMIC, /* an atomic location (release stores and RMWs; __tsan_release annotations) */
    HB_WAKE,   /* a scheduler wake-up key (futex wake, condvar signal, unlock...) */
    HB_OBJ,    /* a mutex, semaphore or rwlock: unlock/post -> lock/wait that succeeds */
    HB_IO,     /* bytes through the kernel (pipes, sockets, message queues, SysV semaphores) */
};

/* C11 memory orders as the instrumentation passes them (TSan's enum). */
enum hb_mo { HB_RELAXED, HB_CONSUME, HB_ACQUIRE, HB_RELEASE, HB_ACQ_REL, HB_SEQ_CST };

/* One side of a race. */
struct hb_access {
    uint32_t thread;
    uint32_t write; /* 1: a write, 0: a read */
    uintptr_t addr; /* the first byte of the access */
    uint64_t size;  /* bytes */
    uint64_t step;  /* the scheduler's step count when it happened */
    const void *pc; /* the code that made it */
    uint32_t known; /* the earlier access: 0 when it fell out of its thread's log */
};

struct hb_race {
    uintptr_t at;          /* the first byte both accesses touched */
    struct hb_access cur;  /* the access being made */
    struct hb_access prev; /* the earlier access it races with */
};

/* A fresh detector for n threads (1..HB_MAX_THREADS), each at its own first epoch: what happened
 * before (setup, other schedules) is ordered before everything. Frees the previous state. 0, or
 * -1 when memory could not be mapped (the detector is then off). */
int hb_begin(uint32_t n);
/* Frees everything (hb_begin does it too). */
void hb_end(void);
/* The detector is on (hb_begin succeeded, and no clock overflowed). */
int hb_on(void);

/* Synchronisation: thread t acquires what was released on (key, kind), or releases into it
 * (join: more edges than C11's release sequences would give, never fewer). */
void hb_acquire(uint32_t t, const void *key, int kind);
void hb_release(uint32_t t, const void *key, int kind);

/* Atomic operations on a, by memory order: acquire loads and RMWs take the location's clock,
 * release stores and RMWs give theirs; relaxed ones go through the thread's fences (a relaxed
 * load's clock is taken at its next acquire fence, a relaxed store gives what the thread had at
 * its last release fence). A relaxed store does not end the release sequence (as in TSan). */
void hb_load(uint32_t t, const void *a, int mo);
void hb_store(uint32_t t, const void *a, int mo);
void hb_rmw(uint32_t t, const void *a, int mo);
void hb_fence(uint32_t t, int mo);
/* A store that went into t's store buffer (TSO): what it releases is taken now, given to the
 * location when it becomes visible (hb_store_flushed, oldest first). */
void hb_store_buffered(uint32_t t, const void *a, int mo);
void hb_store_flushed(uint32_t t);

/* A plain access of [a, a + n) by thread t. Returns 1 and fills *race when it races with an
 * earlier access (the access is then not recorded), else 0. */
int hb_access(uint32_t t, const void *a, size_t n, int write, const void *pc, uint64_t step,
              struct hb_race *race);

/* [a, a + n) was freed or unmapped: what was done there is forgotten (a new object there starts
 * with no history). */
void hb_forget(const void *a, size_t n);

#endif

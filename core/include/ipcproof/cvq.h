/* cvq.h - a bounded multi-producer multi-consumer queue in shared memory, guarded by a robust
 * process-shared mutex with two process-shared condition variables (not_empty, not_full): the
 * textbook pattern, made to survive the death of any participant.
 *
 * The region is one named POSIX shm object "/ipcp.cvq.<creator pid>.<stem>" (registered for
 * `ipcproof clean`, unlinked by the creator's destroy) holding the mutex, a control block
 * (head, tail, count, counters), one record per endpoint (state, pid, whether it waits), one
 * condition variable per endpoint (CLOCK_MONOTONIC), and N fixed-size slots. A message is
 * copied whole into one slot under the mutex; a slot holds at most slot_size bytes (the
 * configured max_msg), a larger message is -EMSGSIZE (no chunking).
 *
 * Death of a mutex holder: the next locker gets EOWNERDEAD and runs ipcp_cvq_repair() on the
 * control block and the slot states before pthread_mutex_consistent(). Each slot carries its
 * state (EMPTY, WRITING, FULL, READING), so a put or get cut short at any point leaves a state
 * the repair resolves: an unfinished put is discarded (its sender never got 0), an unfinished
 * get is undone (its receiver never got the message), and head/tail/count are recomputed from
 * the states. ENOTRECOVERABLE is reported as such.
 *
 * Death of a waiter: glibc's (2.25 .. 2.40) condition variable keeps a group reference for each
 * waiter blocked in it, and pthread_cond_signal() may wait, without a timeout, for the waiters
 * of the previous group to leave: a waiter SIGKILLed there hangs every later signaller (and, as
 * the signaller holds the condvar's internal lock, every waiter that times out). So "not_empty"
 * and "not_full" are not two shared condvars: each endpoint waits on a condvar of its own,
 * initialised afresh (under the mutex) before each wait, and records in its endpoint record
 * that it waits for data (a consumer) or room (a producer). A put wakes one waiting consumer, a
 * get one waiting producer, after checking that its process is alive (a dead one is marked DEAD
 * and never signalled). Every wait is a pthread_cond_timedwait() of at most IPCP_CVQ_SLICE_MS in
 * a loop on the predicate, so neither a lost wake-up nor a spurious one changes more than
 * latency. See docs/cvq.md for what remains (a process killed inside pthread_cond_signal()).
 *
 * Everything read from shared memory is untrusted: indices, counts, lengths and states are read
 * into locals once and checked; a state that does not check out is repaired as after a death.
 *
 * The locked parts of put and get, the repair and the consistency check are pure functions over
 * a view of the region (ipcp_cvq_view): no locking, no I/O, what the fuzzer drives. */
#ifndef IPCPROOF_CVQ_H
#define IPCPROOF_CVQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

#define IPCP_CVQ_MAX_EP      64u         /* producers, and consumers, per queue */
#define IPCP_CVQ_MAX_MSG     (16u << 20) /* largest slot */
#define IPCP_CVQ_MIN_SLOTS   2u
#define IPCP_CVQ_MAX_SLOTS   65536u
#define IPCP_CVQ_MAX_REGION  (1u << 30)  /* slots * stride */
#define IPCP_CVQ_DEFAULT_CAP (64u << 10) /* capacity when the caller gives 0 */
#define IPCP_CVQ_SLICE_MS    20          /* longest single condvar wait */
#define IPCP_CVQ_SLOT_HDR    8u          /* slot header: state u32, len u32 */

/* ---- the shared structures (pure part) ----------------------------------------------------- */

enum { IPCP_CVQ_EMPTY = 0, IPCP_CVQ_WRITING = 1, IPCP_CVQ_FULL = 2, IPCP_CVQ_READING = 3 };
enum { IPCP_CVQ_NOT_EMPTY = 0, IPCP_CVQ_NOT_FULL = 1 }; /* what a waiter waits for */
enum {
    IPCP_CVQ_REC_FREE = 0,
    IPCP_CVQ_REC_OPEN = 1,
    IPCP_CVQ_REC_CLOSED = 2,
    IPCP_CVQ_REC_DEAD = 3
};

struct ipcp_cvq_slot { /* at the start of each slot, followed by slot_size payload bytes */
    uint32_t state;    /* IPCP_CVQ_EMPTY .. READING */
    uint32_t len;      /* payload bytes (FULL, READING) */
};

struct ipcp_cvq_ctl { /* the control block, written under the mutex */
    uint32_t head;    /* oldest FULL slot */
    uint32_t tail;    /* next slot to write: (head + count) % nslots */
    uint32_t count;   /* FULL slots */
    uint32_t pad;
    uint64_t repairs;   /* ipcp_cvq_repair() runs that changed something */
    uint64_t restored;  /* unfinished gets undone (message kept) */
    uint64_t discarded; /* unfinished puts dropped */
    uint64_t dropped;   /* FULL slots dropped because the state around them was corrupt */
    uint64_t resets;    /* waiters' condvars re-initialised after a holder died */
};

struct ipcp_cvq_rec { /* one endpoint: producers first, then consumers */
    uint32_t state;   /* IPCP_CVQ_REC_* (DEAD: a peer found its process gone) */
    uint32_t pid;     /* opener (0: none) */
    uint64_t start;   /* its start time (/proc/<pid>/stat field 22), against pid reuse */
    uint32_t waiting; /* 0, or 1 + IPCP_CVQ_NOT_EMPTY / NOT_FULL while it waits and nobody has
                         signalled it yet */
    uint32_t pad;
};

/* The region as the pure functions see it. The geometry fields are the caller's own trusted
 * copies, never read from shared memory. */
struct ipcp_cvq_view {
    struct ipcp_cvq_ctl *ctl;
    uint8_t *slots;  /* nslots * ipcp_cvq_stride(slot_size) bytes */
    uint32_t nslots; /* IPCP_CVQ_MIN_SLOTS .. IPCP_CVQ_MAX_SLOTS */
    uint32_t slot_size;
    struct ipcp_cvq_rec *rec; /* nrec records */
    uint32_t nrec;
};

/* What a repair changed. */
struct ipcp_cvq_fix {
    uint32_t restored;  /* READING -> FULL */
    uint32_t discarded; /* WRITING -> EMPTY */
    uint32_t dropped;   /* FULL (or unknown state) outside the queue's run, or a bad length */
    uint32_t indices;   /* head, tail or count rewritten */
    uint32_t records;   /* endpoint record fields reset */
};

/* Bytes per slot: header plus slot_size, rounded up to 16. */
size_t ipcp_cvq_stride(size_t slot_size);

#define IPCP_CVQ_STEPS 5 /* steps of a locked put or get */
/* The locked part of put: copies msg into the tail slot (WRITING, payload and len, FULL, tail,
 * count: IPCP_CVQ_STEPS steps; only the first `steps` are done, to simulate a death). 0, -EAGAIN
 * (full), -EMSGSIZE (len > slot_size), -IPCP_E_CORRUPT (state inconsistent: repair it). */
int ipcp_cvq_put_locked(const struct ipcp_cvq_view *v, const void *msg, size_t len, int steps);
/* The locked part of get: the head slot's message into buf (READING, copy, EMPTY, head, count).
 * Its length, -EAGAIN (empty), -EMSGSIZE (longer than cap: it stays, *need = its length),
 * -IPCP_E_CORRUPT. need may be NULL. */
ssize_t ipcp_cvq_get_locked(const struct ipcp_cvq_view *v, void *buf, size_t cap, int steps,
                            size_t *need);
/* 1 when the region is consistent: indices in range, tail = (head + count) % nslots, exactly the
 * slots [head, head + count) FULL with len <= slot_size and the others EMPTY, every record valid
 * (state, pid <= INT_MAX, waiting code). */
int ipcp_cvq_consistent(const struct ipcp_cvq_view *v);
/* Makes any state consistent (then ipcp_cvq_consistent() is 1), keeping every message whose put
 * completed and that no get completed, in queue order:
 *   READING -> FULL (the get did not finish), WRITING -> EMPTY (the put did not finish),
 *   an unknown state or a length above slot_size -> EMPTY;
 *   head: kept if in range (else the first FULL slot after a non-FULL one), then moved past
 *   non-FULL slots; count = the run of FULL slots from head; tail = head + count; FULL slots
 *   outside that run -> EMPTY;
 *   records: unknown state -> CLOSED, pid above INT_MAX -> CLOSED with pid 0, a waiting code
 *   out of range -> 0.
 * Counts in ctl and *fix (may be NULL). Returns the number of changes, 0 if it was consistent,
 * -EINVAL for a bad geometry. */
int ipcp_cvq_repair(const struct ipcp_cvq_view *v, struct ipcp_cvq_fix *fix);

/* ---- the queue ---------------------------------------------------------------------------- */

struct ipcp_cvq;    /* the mapping and its geometry (process-local copy) */
struct ipcp_cvq_ep; /* one endpoint */

struct ipcp_cvq_cfg {
    const char *stem;   /* [A-Za-z0-9_-]{1,64} (e.g. a run id) or NULL: random name suffix */
    uint32_t producers; /* 1 .. IPCP_CVQ_MAX_EP */
    uint32_t consumers; /* 1 .. IPCP_CVQ_MAX_EP */
    size_t max_msg;     /* slot size, 1 .. IPCP_CVQ_MAX_MSG */
    size_t capacity;    /* bytes of payload: slots = max(2, capacity / max_msg); 0: default */
};

/* Creates and formats the region (in the process that destroys it, before forking). 0,
 * -EINVAL (cfg), -EMSGSIZE (max_msg), -EEXIST (stem in use), -ENOMEM, -errno; nothing is left
 * behind on failure. */
int ipcp_cvq_create(const struct ipcp_cvq_cfg *cfg, struct ipcp_cvq **out);
/* Unmaps; in the creating process also unlinks the name. The mutex and condvars are not
 * destroyed (a dead process may still be recorded in them). Close this process's endpoints
 * first. NULL is fine. */
void ipcp_cvq_destroy(struct ipcp_cvq *q);
const char *ipcp_cvq_name(const struct ipcp_cvq *q);
uint32_t ipcp_cvq_slots(const struct ipcp_cvq *q);

enum { IPCP_CVQ_PRODUCER = 1, IPCP_CVQ_CONSUMER = 2 };

/* Opens endpoint `index` of a role (in a forked child of the creator, or a thread; each index
 * once). 0, -EINVAL, -EBUSY (index already opened), -ETIMEDOUT, -ENOTRECOVERABLE, -errno. */
int ipcp_cvq_open(struct ipcp_cvq *q, int role, uint32_t index, struct ipcp_cvq_ep **ep);
/* Puts one message within timeout_ms (< 0: no limit; 0: never waits, -EAGAIN). 0, -EMSGSIZE,
 * -ETIMEDOUT, -EAGAIN, -EPIPE (every consumer closed), -IPCP_E_PEERDEAD (every consumer closed
 * or died, one died), -ENOTRECOVERABLE, -IPCP_E_STATE (not a producer, closed, inherited over
 * fork). */
int ipcp_cvq_put(struct ipcp_cvq_ep *ep, const void *msg, size_t len, int timeout_ms);
/* Gets the oldest message: its length, -EMSGSIZE (longer than cap: it stays), -ETIMEDOUT,
 * -EAGAIN, -EPIPE (empty and every producer closed), -IPCP_E_PEERDEAD (empty and every
 * producer closed or died, one died), -ENOTRECOVERABLE, -IPCP_E_STATE. */
ssize_t ipcp_cvq_get(struct ipcp_cvq_ep *ep, void *buf, size_t cap, int timeout_ms);
/* Marks the endpoint closed (consumers see -EPIPE once every producer closed and the queue is
 * empty) and frees it. NULL is fine. */
void ipcp_cvq_close(struct ipcp_cvq_ep *ep);

struct ipcp_cvq_stats {
    uint32_t slots, slot_size, count;
    uint64_t repairs, restored, discarded, dropped, resets;
};
/* A snapshot, read without the mutex: call it when no endpoint is active. */
void ipcp_cvq_stats(const struct ipcp_cvq *q, struct ipcp_cvq_stats *s);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* ring_impl.h - what the files of the ring module share (ring.c: the data path; ring_wait.c:
 * waiting, wake-ups and peer liveness; ring_setup.c: formatting, attaching, the backends, close).
 * The layout of the shared region, the record format and small helpers. Not installed. */
#ifndef IPCP_RING_IMPL_H
#define IPCP_RING_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "deadline.h"
#include "os.h"
#include "ipcproof/err.h"
#include "ipcproof/ring.h"

/* ---- shared layout ---------------------------------------------------------------------- */

struct ring_shared {
    /* 0: written once by ipcp_ring_format, read once by each attach */
    uint32_t magic;
    uint32_t version;
    uint32_t hdr_size; /* offset of the data area */
    uint32_t rec_hdr;  /* record header size */
    uint32_t capacity; /* data area bytes, power of two */
    uint32_t max_msg;
    _Atomic uint32_t state;    /* ST_* bits */
    _Atomic uint32_t prod_pid; /* 0 until the producer attached */
    _Atomic uint32_t cons_pid;
    uint32_t reserved;
    uint64_t pidns; /* 40: the formatter's PID namespace (proc.h), 0 unknown; written once */
    uint8_t pad0[IPCP_RING_OFF_TAIL - 48];
    /* 128: the producer's line (the 128-byte pair defeats adjacent-line prefetch sharing) */
    _Atomic uint32_t tail;        /* free-running byte index, futex word of a sleeping consumer */
    _Atomic uint32_t cons_sleeps; /* set by a consumer about to sleep on tail */
    uint8_t pad1[IPCP_RING_OFF_HEAD - IPCP_RING_OFF_TAIL - 8];
    /* 256: the consumer's line */
    _Atomic uint32_t head;        /* free-running byte index, futex word of a sleeping producer */
    _Atomic uint32_t prod_sleeps; /* set by a producer about to sleep on head */
    uint8_t pad2[IPCP_RING_HDR_SIZE - IPCP_RING_OFF_HEAD - 8];
};
_Static_assert(sizeof(struct ring_shared) == IPCP_RING_HDR_SIZE, "header size");
_Static_assert(offsetof(struct ring_shared, state) == 24, "state offset");
_Static_assert(offsetof(struct ring_shared, pidns) == 40, "pidns offset");
_Static_assert(offsetof(struct ring_shared, tail) == IPCP_RING_OFF_TAIL, "tail offset");
_Static_assert(offsetof(struct ring_shared, head) == IPCP_RING_OFF_HEAD, "head offset");
_Static_assert(sizeof(_Atomic uint32_t) == 4 && ATOMIC_INT_LOCK_FREE == 2,
               "shared-memory atomics must be lock-free words");

#define ST_PROD_ATTACHED 0x1u
#define ST_CONS_ATTACHED 0x2u
#define ST_PROD_CLOSED   0x4u
#define ST_CONS_CLOSED   0x8u
/* The side issues membarrier(2) before it sleeps, and its process is registered to take the
 * barriers of others (set at attach, never cleared): when both are set, an index is published
 * without a fence (ring.c, ring_publish). A peer built before these bits never sets its own. */
#define ST_PROD_ASYM 0x10u
#define ST_CONS_ASYM 0x20u
#define ST_ASYM_BOTH (ST_PROD_ASYM | ST_CONS_ASYM)

/* A sleep flag (cons_sleeps, prod_sleeps): 0 awake; SLEEPS_ON | the index value the side sleeps
 * on (indices are multiples of IPCP_RING_ALIGN, so the low bits are free); any other non-zero
 * value (an older peer's 1) asks for a wake at every publish. Only the sleeper writes it. */
#define SLEEPS_ON  0x2u
#define SLEEPS_LOW (IPCP_RING_ALIGN - 1)

/* A record: this header, then len payload bytes, padded to IPCP_RING_ALIGN. Records never wrap:
 * one that would is preceded by a PAD record filling the data area up to its end. */
struct ring_rec {
    uint32_t len;   /* payload bytes in this record */
    uint32_t flags; /* REC_MARK | FIRST/LAST (MIDDLE: neither) | PAD */
    uint32_t seq;   /* message sequence number, shared by all chunks of a message */
    uint32_t total; /* length of the whole message */
};
_Static_assert(sizeof(struct ring_rec) == IPCP_RING_REC_HDR, "record header size");

#define REC_FIRST IPCP_CHUNK_FIRST
#define REC_LAST  IPCP_CHUNK_LAST
#define REC_WHOLE IPCP_CHUNK_WHOLE
#define REC_PAD   IPCP_RING_REC_PAD
#define REC_BITS  0xffu
#define REC_MARK  IPCP_RING_REC_MARK /* upper half of flags: a record read at a wrong offset */

enum { MODE_IDLE = 0, MODE_REASM, MODE_SKIP };

#define SLICE_MS 20 /* longest futex sleep between two peer checks */

static inline struct ring_shared *sh(const struct ipcp_ring *r)
{
    return (struct ring_shared *)r->base;
}

static inline uint32_t rec_size(uint32_t len)
{
    return IPCP_RING_REC_HDR + ((len + (IPCP_RING_ALIGN - 1)) & ~(IPCP_RING_ALIGN - 1));
}

static inline uint32_t min32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

static inline int ring_fail(struct ipcp_ring *r, int err)
{
    if (r->err == 0) r->err = err;
    return r->err;
}

/* Deadline of one call that may wait several times. The clock is first read when a wait gets
 * past its spin, so that the fast path (and a short spin) reads no clock: the deadline counts
 * from there, at most one spin later than the call began. */
struct waiter {
    int timeout_ms;
    int started;
    struct ipcp_deadline dl;
};

/* ring_wait.c. Waits until *word differs from seen (0), the deadline passes (-ETIMEDOUT;
 * -EAGAIN at once for timeout 0), or the peer closed or died. The caller re-reads the index
 * itself, with acquire, and re-checks. */
int ipcp__ring_wait(struct ipcp_ring *r, _Atomic uint32_t *word, _Atomic uint32_t *sleeps,
                    uint32_t seen, struct waiter *w);
/* FUTEX_WAKE of every waiter on word (a shared futex). */
void ipcp__ring_wake(_Atomic uint32_t *word);
/* ring_wait.c. Registers this process for membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (once, and
 * again in a forked child): 1 when it is registered and can issue those barriers, else 0. */
int ipcp__ring_membarrier_ready(void);
/* For tests and fuzz targets: 0 asks the kernel (the default), -1 never uses membarrier (every
 * publish is fenced), 1 assumes it works without asking (a harness that models the barrier
 * itself: the scheduler's glue answers membarrier calls made by scheduled threads). Read at
 * attach and before each sleep. */
extern int ipcp__ring_membarrier_mode;

#endif

/* ring.h - single-producer single-consumer ring in shared memory, for messages of any size.
 *
 * One producer and one consumer (processes or threads) exchange whole messages through a ring
 * of `capacity` bytes (a power of two) in a POSIX shm object, a memfd, a System V segment, or
 * memory the caller provides. A message of up to capacity - IPCP_RING_REC_HDR bytes travels as one
 * record; a larger one (up to the configured max_msg) travels in chunks FIRST, MIDDLE..., LAST that
 * the consumer reassembles. docs/ring.md has the layout, the protocols and the benchmark figures.
 *
 * Each side opens its own handle (struct ipcp_ring) with a role; a handle is used by one thread
 * at a time. The producer's copy API is send(); its zero-copy API reserve() + commit(). The
 * consumer's copy API is recv(); its zero-copy API peek() + release().
 *
 * Timeouts: every call that may wait takes timeout_ms: > 0 waits at most that long
 * (-ETIMEDOUT), 0 never waits (-EAGAIN at once: the non-blocking "try" form, which makes no
 * syscall except a futex wake when the other side sleeps; it reports a peer that closed, but
 * only a waiting call notices a peer that died), < 0 waits without a deadline - but
 * still ends when the peer closes (-EPIPE) or dies (-IPCP_E_PEERDEAD, noticed within ~20 ms).
 * Waiting is a short spin, then a shared futex wait on the other side's index.
 *
 * Delivery: send() makes the whole message visible, or nothing. A message larger than the free
 * space is published chunk by chunk as room appears; if send() times out half-way it returns
 * -ETIMEDOUT and the message is abandoned: the consumer drops its chunks when the FIRST chunk of
 * the next message arrives (counted by ipcp_ring_abandoned()), and never delivers a part of it.
 * A chunked message never fits the ring whole, so send() with timeout 0 refuses it at once
 * (-EAGAIN, nothing published): it needs a timeout that lets the consumer make room.
 *
 * Untrusted memory: everything in the shared region may have been written by a faulty or
 * hostile peer. Each side keeps its own index privately, reads the other's once per refresh and
 * checks it against the capacity, and reads each record header once into a local before
 * checking it. A bad index or record returns -IPCP_E_CORRUPT and the handle stays broken (the
 * framing is lost); a bad chunk sequence returns -IPCP_E_FRAGMENT, a wrong sequence number
 * -IPCP_E_SEQUENCE, a declared total above max_msg -IPCP_E_TOOBIG, after which the consumer
 * resynchronises on the next message. The consumer never reads outside the region and never
 * allocates more than its own max_msg. Payload bytes handed out by peek() live in the shared
 * region: a hostile peer can still change them while the caller reads them.
 *
 * Errors common to all calls: -EINVAL (bad argument, wrong role), -IPCP_E_STATE (call out of
 * order, e.g. recv() between peek() and release()), -EPIPE (the other side closed; the consumer
 * first receives every message published before), -IPCP_E_PEERDEAD, -IPCP_E_CORRUPT. */
#ifndef IPCPROOF_RING_H
#define IPCPROOF_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipcproof/chunk.h"
#include "ipcproof/shm.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

enum { IPCP_RING_NONE = 0, IPCP_RING_PRODUCER = 1, IPCP_RING_CONSUMER = 2 };

/* Layout of the shared region (see docs/ring.md): offsets in bytes. */
#define IPCP_RING_MAGIC    0x49504352u /* "IPCR" */
#define IPCP_RING_VERSION  1u
#define IPCP_RING_OFF_TAIL 128u /* producer's index (u32) and the consumer-sleeps flag */
#define IPCP_RING_OFF_HEAD 256u /* consumer's index (u32) and the producer-sleeps flag */
#define IPCP_RING_HDR_SIZE 384u /* data area starts here */
#define IPCP_RING_REC_HDR  16u  /* record header: len, flags, seq, total (u32 each) */
#define IPCP_RING_ALIGN    16u  /* records start at multiples of this */
/* Record flags word: IPCP_RING_REC_MARK | IPCP_CHUNK_FIRST / IPCP_CHUNK_LAST (a MIDDLE chunk has
 * neither) | IPCP_RING_REC_PAD (filler up to the end of the data area). */
#define IPCP_RING_REC_MARK 0x52520000u
#define IPCP_RING_REC_PAD  0x4u

#define IPCP_RING_MIN_CAP        128u
#define IPCP_RING_MAX_CAP        (1u << 30)
#define IPCP_RING_DEFAULT_CAP    (256u << 10)
#define IPCP_RING_DEFAULT_MAXMSG (16u << 20)
#define IPCP_RING_MAX_MSG_LIMIT  (1u << 30)
#define IPCP_RING_DEFAULT_SPIN   1024u

struct ipcp_ring_cfg {
    size_t capacity; /* data area bytes, power of two in [MIN_CAP, MAX_CAP]. 0: DEFAULT_CAP when
                        creating; when attaching, 0 accepts the region's, else it must match */
    size_t max_msg;  /* largest message, <= MAX_MSG_LIMIT. 0: DEFAULT_MAXMSG. Creating writes it
                        to the header; attaching refuses a header that declares more
                        (-IPCP_E_LAYOUT). The consumer never allocates above its own value */
    size_t chunk;    /* producer: largest chunk payload of a chunked message; 0: capacity/4 -
                        REC_HDR. Clamped to [16, capacity - REC_HDR] */
    unsigned spin;   /* polls (each with a pause instruction, ~50 ns on the reference VM)
                        before sleeping on a futex; 0: DEFAULT_SPIN */
};

/* One side's handle. The fields are private: use the functions below. */
struct ipcp_ring {
    int role;
    int err;       /* sticky error (corruption), 0 when healthy */
    uint8_t *base; /* the region: header at base, data at base + HDR_SIZE */
    uint8_t *data;
    size_t size;
    uint32_t cap, mask;
    size_t max_msg;
    unsigned spin;
    int own_shm; /* shm (a mapping this handle created or attached) is released at close */
    struct ipcp_shm shm;
    int peer_fd;      /* pidfd of the peer, -1 when none */
    int32_t peer_pid; /* pid that peer_fd refers to (0: none) */
    struct {
        uint32_t tail;      /* private copy of the published tail */
        uint32_t head_seen; /* last validated consumer head */
        uint32_t seq;       /* sequence number of the next message */
        size_t chunk;       /* largest chunk payload */
        int reserved;       /* a reserve() awaits its commit() */
        uint32_t res_off;
        size_t res_len;
    } p;
    struct {
        uint32_t head;      /* private copy of the published head */
        uint32_t tail_seen; /* last validated producer tail */
        uint32_t expect;    /* sequence number the next FIRST should carry */
        int mode;           /* between calls: idle, reassembling, skipping */
        uint32_t skip_seq;
        size_t next_len; /* length reported with the last -EMSGSIZE */
        int peeked;      /* 1: peek() handed out a record, 2: the reassembled message */
        const void *peek_ptr;
        size_t peek_len;
        uint32_t peek_rsz;
        uint64_t abandoned;
        struct ipcp_reasm reasm;
    } c;
};

/* Bytes a region of this capacity needs (header + data), or 0 for an invalid capacity. */
size_t ipcp_ring_mem_size(size_t capacity);

/* Writes an empty ring into mem (64-byte aligned, size >= ipcp_ring_mem_size(capacity)). Any
 * earlier content is overwritten; no side is attached. 0, or -EINVAL. */
int ipcp_ring_format(void *mem, size_t size, const struct ipcp_ring_cfg *cfg);
/* Opens side `role` over an already formatted region: checks magic (-IPCP_E_BADMAGIC), version
 * (-IPCP_E_BADVERSION), layout, capacity and max_msg (-IPCP_E_LAYOUT) and the indices
 * (-IPCP_E_CORRUPT) before any other use; -EBUSY if that side is already attached;
 * -IPCP_E_PIDNS if this process is in another PID namespace than the one that formatted the
 * region (a side tells its peer's death by the peer's pid, which means another process, or
 * none, across namespaces; an IPCP_RING_NONE observer is not refused). The memory
 * stays the caller's. This is also how a thread or a forked child opens its side of a ring
 * another handle mapped (see ipcp_ring_mem). */
int ipcp_ring_attach_mem(struct ipcp_ring *r, void *mem, size_t size, int role,
                         const struct ipcp_ring_cfg *cfg);
/* ipcp_ring_format + ipcp_ring_attach_mem. */
int ipcp_ring_init_mem(struct ipcp_ring *r, void *mem, size_t size, int role,
                       const struct ipcp_ring_cfg *cfg);

/* Creates a POSIX shm object named /ipcp.ring.<pid>.<random> (or .<stem>, see shm.h), formats
 * it, and opens side `role` (IPCP_RING_NONE: none, the handle only holds the mapping). The name
 * (ipcp_ring_name) is unlinked as soon as both sides are attached, or at close. */
int ipcp_ring_create(struct ipcp_ring *r, const char *stem, int role,
                     const struct ipcp_ring_cfg *cfg);
/* Maps the named object, validates it as ipcp_ring_attach_mem does, opens side `role`, and
 * unlinks the name when both sides are now attached. */
int ipcp_ring_attach(struct ipcp_ring *r, const char *name, int role,
                     const struct ipcp_ring_cfg *cfg);
/* Same over a sealed memfd (for related processes: ipcp_ring_fd gives the fd to inherit or
 * pass), and the attach for an fd received that way (the fd stays the caller's). */
int ipcp_ring_create_memfd(struct ipcp_ring *r, int role, const struct ipcp_ring_cfg *cfg);
int ipcp_ring_attach_fd(struct ipcp_ring *r, int fd, int role, const struct ipcp_ring_cfg *cfg);

/* Same over a System V segment (shm.h): created with key IPC_PRIVATE or one from ftok(3) (the
 * peer finds the id with shmget(key, 0, 0)), attached by id (ipcp_ring_shmid gives it) after
 * checking that this user owns it and its size. The segment is marked removed (IPC_RMID) as soon
 * as both sides are attached, so that it vanishes with the last detach even if both sides are
 * SIGKILLed; before that, the creator's close removes it, and after a crash the registry lets
 * `ipcproof clean` remove it. Kernel limits: -IPCP_E_SHMMAX, -IPCP_E_SHMALL, -IPCP_E_SHMMNI. */
int ipcp_ring_create_sysv(struct ipcp_ring *r, key_t key, int role,
                          const struct ipcp_ring_cfg *cfg);
int ipcp_ring_attach_sysv(struct ipcp_ring *r, int shmid, int role,
                          const struct ipcp_ring_cfg *cfg);
int ipcp_ring_shmid(const struct ipcp_ring *r); /* the SysV segment's id, or -1 */
/* Processes attached to the SysV segment (2 once a peer process attached; the shm_nattch of
 * ipcs -m), or -EINVAL for the other backends. */
int ipcp_ring_nattch(const struct ipcp_ring *r);

const char *ipcp_ring_name(const struct ipcp_ring *r); /* "" unless created/attached by name */
int ipcp_ring_fd(const struct ipcp_ring *r);           /* the memfd, or -1 */
void *ipcp_ring_mem(const struct ipcp_ring *r, size_t *size); /* the mapped region */

/* Marks this side closed (the peer gets -EPIPE), wakes the peer, releases what the handle owns
 * (mapping, fds, reassembly buffer, the name if still linked). Safe to call twice. */
void ipcp_ring_close(struct ipcp_ring *r);

/* Producer. 0, or -EMSGSIZE (len > max_msg), -ETIMEDOUT / -EAGAIN (nothing visible, or the
 * message abandoned, see "Delivery"), -EPIPE, -IPCP_E_PEERDEAD, -IPCP_E_CORRUPT. */
int ipcp_ring_send(struct ipcp_ring *r, const void *msg, size_t len, int timeout_ms);
/* Zero-copy: room for one record of len <= min(capacity - REC_HDR, max_msg) bytes (else
 * -EMSGSIZE); *ptr points into the ring. Nothing is visible until ipcp_ring_commit(r, n) with
 * n <= len publishes n bytes. A second reserve() replaces an uncommitted one. */
int ipcp_ring_reserve(struct ipcp_ring *r, size_t len, void **ptr, int timeout_ms);
int ipcp_ring_commit(struct ipcp_ring *r, size_t len);

/* Consumer. The length of the next message, copied into buf; or -EMSGSIZE if it is longer
 * than cap: nothing is lost, ipcp_ring_next_len() tells the length needed and the next recv()
 * with a buffer that large gets it. -ETIMEDOUT / -EAGAIN, -EPIPE (producer closed, ring
 * empty), -IPCP_E_TRUNCATED (producer closed in the middle of a message), -IPCP_E_PEERDEAD,
 * and the corruption errors listed above. */
ssize_t ipcp_ring_recv(struct ipcp_ring *r, void *buf, size_t cap, int timeout_ms);
size_t ipcp_ring_next_len(const struct ipcp_ring *r);
/* Zero-copy: the next message without copying it out of the ring when it is one record (else
 * it is reassembled into the handle's buffer, one copy). Returns its length and *ptr; the
 * message stays until ipcp_ring_release(); peek() again returns the same one. */
ssize_t ipcp_ring_peek(struct ipcp_ring *r, const void **ptr, int timeout_ms);
int ipcp_ring_release(struct ipcp_ring *r);

/* Messages the consumer dropped because their producer abandoned them half-way. */
uint64_t ipcp_ring_abandoned(const struct ipcp_ring *r);

/* 1 when the handle's private invariants hold (for tests and fuzzers), else 0. */
int ipcp_ring_valid(const struct ipcp_ring *r);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* sysvmsg.h - whole messages of any size over System V message queues (msgsnd/msgrcv).
 *
 * Topology: P producers and C consumers; consumer j owns one queue, and producer i sends to the
 * queue of consumer i % C with message type i + 1, so the chunks of different producers that
 * interleave in a queue are told apart by their type and reassembled per producer. A queue
 * message (below the type) is a 32-byte chunk header then payload:
 *     magic u32, producer u32, seq u64, total u32, index u32, count u32, len u32   (host order)
 * A message of `total` bytes travels as `count` chunks of `room` bytes (the last one shorter),
 * room = min(msgmax, the queue's msg_qbytes) - 32, so that every chunk fits in an empty queue;
 * msgmax is read from /proc/sys/kernel/msgmax (8192 by default). A message of at most `room`
 * bytes is one chunk. seq counts the producer's completed messages.
 *
 * Everything read from a queue is untrusted: msgrcv copies a queue message into the receiver's
 * own buffer once, and the sans-I/O reassembler (ipcp_sysvmsg_rx_*, over chunk.h) checks every
 * field against the type it came with, the geometry and the producer's state before a byte is
 * kept; nothing is allocated from a length above the configured max_msg.
 *
 * Timeouts: msgsnd/msgrcv are called with IPC_NOWAIT only, in a loop that sleeps (nanosleep, a
 * growing pause of 20 us .. 1 ms) until the caller's deadline, so no call ever blocks in the
 * kernel, and a waiter notices a dead or closed peer (the endpoints' pid and start time sit in
 * an anonymous shared mapping, inherited by forked children) and a queue removed under it.
 *
 * A send that fails half-way (deadline, peer death) leaves a partial message in the queue; the
 * next message of that producer starts with chunk 0, which makes the receiver drop the partial
 * (chunk.h: abandoned). So a message is delivered whole or not at all. */
#ifndef IPCPROOF_SYSVMSG_H
#define IPCPROOF_SYSVMSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipcproof/chunk.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

#define IPCP_SYSVMSG_HDR_SIZE 32
#define IPCP_SYSVMSG_MAGIC    0x56535049u /* "IPSV" in little-endian memory order */
#define IPCP_SYSVMSG_MAX_EP   64u         /* producers, and consumers, per channel */
#define IPCP_SYSVMSG_MAX_MSG  (64u << 20) /* largest message */

/* ---- chunk header (pure) -------------------------------------------------------------------- */

struct ipcp_sysvmsg_hdr {
    uint32_t producer;
    uint64_t seq;
    uint32_t total; /* length of the whole message */
    uint32_t index; /* of this chunk, 0 .. count - 1 */
    uint32_t count; /* chunks of the message */
    uint32_t len;   /* payload bytes after this header */
};

void ipcp_sysvmsg_hdr_encode(const struct ipcp_sysvmsg_hdr *h, uint8_t out[IPCP_SYSVMSG_HDR_SIZE]);
/* Shape only: 0, or -EBADMSG (shorter than a header, wrong magic). */
int ipcp_sysvmsg_hdr_decode(const void *buf, size_t n, struct ipcp_sysvmsg_hdr *h);
/* Chunks of room payload bytes that a message of total bytes needs (1 for total 0); 0 when room
 * is 0. */
uint32_t ipcp_sysvmsg_chunks(size_t total, size_t room);

/* ---- reassembly on the consumer's side (pure) ----------------------------------------------- */

struct ipcp_sysvmsg_slot { /* one producer of this consumer */
    struct ipcp_reasm r;
    uint32_t next_index; /* chunk expected next; 0 = a new message */
    uint64_t expect_seq; /* seq of the producer's next message */
};

struct ipcp_sysvmsg_rx {
    uint32_t producers, consumers, consumer; /* this consumer owns producers p % consumers ==
                                                consumer, in slot p / consumers */
    uint32_t nslots;
    size_t room;
    size_t max_msg;
    struct ipcp_sysvmsg_slot *slot; /* owned */
    int done;                       /* slot `last` holds a complete message until the next feed */
    uint32_t last;
};

/* 0, -EINVAL (counts outside 1..IPCP_SYSVMSG_MAX_EP, consumer >= consumers, room 0, max_msg
 * outside 1..IPCP_SYSVMSG_MAX_MSG), -ENOMEM. */
int ipcp_sysvmsg_rx_init(struct ipcp_sysvmsg_rx *rx, uint32_t producers, uint32_t consumers,
                         uint32_t consumer, size_t room, size_t max_msg);
void ipcp_sysvmsg_rx_fini(struct ipcp_sysvmsg_rx *rx);
/* Feeds one queue message: its type and the bytes msgrcv returned after the type. Returns 1 when
 * it completed a message (ipcp_sysvmsg_rx_message; valid until the next feed), 0 when more chunks
 * are needed, or (the chunk is dropped; a partial message of that producer with it):
 *   -EBADMSG          not a chunk header, type != producer + 1, a producer that is not this
 *                     consumer's, len != the bytes that came
 *   -IPCP_E_TOOBIG    total above max_msg (nothing allocated)
 *   -IPCP_E_FRAGMENT  count, index or len do not fit total and the geometry, or a chunk out of
 *                     turn (a missing chunk, another message's seq or total in the middle)
 *   -IPCP_E_SEQUENCE  a first chunk whose seq is below the producer's next one (a repeat; a
 *                     higher seq is taken: a message of that producer was refused before)
 *   -ENOMEM */
int ipcp_sysvmsg_rx_feed(struct ipcp_sysvmsg_rx *rx, long mtype, const void *msg, size_t n);
/* The completed message (after feed returned 1), else NULL. producer/seq may be NULL. */
const void *ipcp_sysvmsg_rx_message(const struct ipcp_sysvmsg_rx *rx, size_t *len,
                                    uint32_t *producer, uint64_t *seq);
/* Partial messages dropped because their producer started a new one. */
uint64_t ipcp_sysvmsg_rx_abandoned(const struct ipcp_sysvmsg_rx *rx);
/* Invariants hold (for tests and fuzzers). */
int ipcp_sysvmsg_rx_valid(const struct ipcp_sysvmsg_rx *rx);

/* ---- over the queues --------------------------------------------------------------------------
 */

struct ipcp_sysvmsg;    /* the queues and the endpoint table */
struct ipcp_sysvmsg_ep; /* one producer or consumer */

struct ipcp_sysvmsg_cfg {
    key_t key;            /* IPC_PRIVATE (0), or a key: consumer j's queue gets key + j */
    uint32_t producers;   /* 1 .. IPCP_SYSVMSG_MAX_EP */
    uint32_t consumers;   /* 1 .. IPCP_SYSVMSG_MAX_EP */
    size_t max_msg;       /* 1 .. IPCP_SYSVMSG_MAX_MSG */
    unsigned long qbytes; /* msg_qbytes of each queue; 0: the kernel's default (msgmnb) */
};

enum { IPCP_SYSVMSG_PRODUCER = 1, IPCP_SYSVMSG_CONSUMER = 2 };

/* The limits of this IPC namespace (/proc/sys/kernel/msgmax, msgmnb, msgmni); a value that
 * cannot be read is the kernel's default (8192, 16384, 32000). Any pointer may be NULL. */
void ipcp_sysvmsg_limits(long *msgmax, long *msgmnb, long *msgmni);

/* Creates one queue per consumer (msgget IPC_CREAT|IPC_EXCL, mode 0600), registered as
 * "sysv-msg" in the object registry, in the process that will destroy it, before forking.
 * 0, -EINVAL (cfg), -EMSGSIZE (a queue that cannot carry a chunk header and one byte),
 * -IPCP_E_MSGMNB (qbytes above msgmnb: raising it needs CAP_SYS_RESOURCE), -IPCP_E_MSGMNI
 * (msgmni queues exist: ENOSPC), -EEXIST (key in use), -ENOMEM, -errno. Nothing is left behind
 * on failure. */
int ipcp_sysvmsg_create(const struct ipcp_sysvmsg_cfg *cfg, struct ipcp_sysvmsg **out);
/* Removes the queues (IPC_RMID, in the creating process only), unmaps, frees. NULL is fine. */
void ipcp_sysvmsg_destroy(struct ipcp_sysvmsg *q);
/* msqid of consumer j's queue, or -EINVAL. */
int ipcp_sysvmsg_id(const struct ipcp_sysvmsg *q, uint32_t consumer);
/* Payload bytes per chunk (room above). */
size_t ipcp_sysvmsg_room(const struct ipcp_sysvmsg *q);

/* Opens producer or consumer `index` (in a forked child or a thread). 0, -EINVAL, -EBUSY (that
 * endpoint was opened before, also when it closed since), -IPCP_E_PIDNS (this process is in
 * another PID namespace than the creator: the pids the peers record would not name the same
 * processes), -ENOMEM. */
int ipcp_sysvmsg_open(struct ipcp_sysvmsg *q, int role, uint32_t index,
                      struct ipcp_sysvmsg_ep **ep);
/* Sends len bytes, chunked (timeout_ms < 0: no limit). 0, -EMSGSIZE (len > max_msg),
 * -ETIMEDOUT, -IPCP_E_PEERDEAD (the consumer died), -EPIPE (the consumer closed), -EIDRM (the
 * queue was removed), -IPCP_E_STATE (not a producer), -errno. */
int ipcp_sysvmsg_send(struct ipcp_sysvmsg_ep *ep, const void *data, size_t len, int timeout_ms);
/* The next message of any of this consumer's producers into buf. Its length, or -EMSGSIZE (cap
 * too small: the message stays for a call with a bigger buffer), -ETIMEDOUT, -EPIPE (every
 * producer of the channel closed and this queue is empty), -IPCP_E_PEERDEAD (... closed or
 * died, and one of them died), -EIDRM,
 * a chunk refused by ipcp_sysvmsg_rx_feed (dropped), -IPCP_E_STATE (not a consumer), -errno. */
ssize_t ipcp_sysvmsg_recv(struct ipcp_sysvmsg_ep *ep, void *buf, size_t cap, int timeout_ms);
/* Marks the endpoint closed (its peers see -EPIPE once nothing is left) and frees it. */
void ipcp_sysvmsg_close(struct ipcp_sysvmsg_ep *ep);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* mqchan.h - a POSIX message queue as a data channel: messages of any size (up to a configured
 * maximum) in chunks of mq_msgsize, from several producers, at a priority.
 *
 * Each queue message is a 32-byte header followed by up to mq_msgsize - 32 payload bytes. The
 * header (host byte order): magic u32, version u8 (1), priority u8, producer u16, message
 * sequence u64, total length u32, chunk index u32, chunk count u32, check u32 (XXH32 of the
 * first 28 bytes). A message of total bytes travels as count = max(1, ceil(total / payload))
 * chunks of exactly payload bytes, the last one holding the rest; every chunk of a message is
 * sent at the message's priority.
 *
 * Ordering. The queue delivers higher priorities first and is FIFO within one priority; one
 * producer sends the chunks of one message before the next message. So the messages of one
 * producer at one priority (a "lane") arrive in order, and chunks of different lanes
 * interleave. The receiver reassembles per lane (chunk.h), so a message at a higher priority
 * may overtake a chunked message of lower priority of the same producer, and messages of one
 * producer keep their order only when it sends them all at one priority.
 *
 * Everything received is untrusted: a chunk whose header does not check out (magic, version,
 * check, producer out of range, priority other than the one the queue reported, a count that
 * does not match the total, a length that is not the chunk's exact share, a total above
 * max_msg) is refused before anything is allocated for it; a chunk that does not continue its
 * lane's message, or a message whose sequence is not above the last one of its lane, is refused
 * too. The rest of a message refused half-way is dropped without further errors. A message
 * that a producer gave up half-way (its send timed out between two chunks) is dropped when that
 * lane's next message starts, and counted.
 *
 * Blocking: every send and receive has a deadline (mq_timedsend / mq_timedreceive with absolute
 * CLOCK_REALTIME deadlines in slices of at most 100 ms, measured on CLOCK_MONOTONIC).
 *
 * Peers. The channel keeps a small table shared by the processes forked after create: one word
 * per producer and per receiver, claimed at open (pid and start time of the opener), marked at
 * close. Whenever a wait slice ends with nothing done (also the last one, at the deadline), the
 * waiting side looks at its peers: a receiver whose producers have all closed gets -EPIPE, and
 * -IPCP_E_PEERDEAD when they are all gone and one of them died, but only once the queue is
 * empty after it saw them gone (every message sent before the close or the death is received
 * first; a message a dying producer left half-way is never delivered). A sender whose queue
 * stays full gets -IPCP_E_PEERDEAD when every receiver is gone and one died, -EPIPE when all
 * closed. An endpoint that was never opened counts as one that may still come. So a peer's death
 * is seen within a slice, not at the caller's deadline. A process is judged by its pid and
 * start time in the creator's PID namespace (an opener from another namespace is refused).
 *
 * Limits: without CAP_SYS_RESOURCE mq_maxmsg <= /proc/sys/fs/mqueue/msg_max (10 by default)
 * and mq_msgsize <= msgsize_max (8192); every queue counts against RLIMIT_MSGQUEUE. They are
 * read at creation, and ipcp_mqchan_info() reports them with the queue's geometry.
 *
 * The codec and the receiver's reassembly (ipcp_mqchan_hdr_*, ipcp_mqchan_rx_*) do no I/O. */
#ifndef IPCPROOF_MQCHAN_H
#define IPCPROOF_MQCHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipcproof/chunk.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

#define IPCP_MQCHAN_HDR_SIZE      32
#define IPCP_MQCHAN_MAGIC         0x434d5049u /* "IPMC" in little-endian memory order */
#define IPCP_MQCHAN_PRIOS         4u          /* priorities 0 (lowest) .. 3 */
#define IPCP_MQCHAN_MAX_PRODUCERS 256u
#define IPCP_MQCHAN_MAX_CONSUMERS 256u
#define IPCP_MQCHAN_MAX_MSG       (64u << 20)
#define IPCP_MQCHAN_DEF_MAXMSG    10   /* default mq_maxmsg (lowered to msg_max) */
#define IPCP_MQCHAN_DEF_MSGSIZE   8192 /* default mq_msgsize (lowered to msgsize_max) */

/* ---- chunk header (pure) ------------------------------------------------------------------ */

struct ipcp_mqchan_hdr {
    uint8_t prio;
    uint16_t producer;
    uint64_t seq;   /* message sequence, per producer */
    uint32_t total; /* message length */
    uint32_t index; /* chunk index, 0 .. count - 1 */
    uint32_t count; /* chunks of the message */
};
void ipcp_mqchan_hdr_encode(const struct ipcp_mqchan_hdr *h, uint8_t out[IPCP_MQCHAN_HDR_SIZE]);
/* Shape only: 0, or -EBADMSG (len below the header size, magic, version, check). */
int ipcp_mqchan_hdr_decode(const void *buf, size_t len, struct ipcp_mqchan_hdr *h);
/* Chunks of a message of total bytes with payload bytes per chunk: max(1, ceil(total /
 * payload)); 0 when payload is 0 or the count does not fit in 32 bits. */
uint32_t ipcp_mqchan_chunks(uint64_t total, size_t payload);

/* ---- receiver reassembly (pure) ----------------------------------------------------------- */

struct ipcp_mqchan_lane {
    struct ipcp_reasm r;
    uint64_t next_seq;   /* a new message needs seq >= next_seq */
    uint32_t next_index; /* chunk expected next in the message in progress */
    uint64_t skip_seq;   /* the rest of this refused message is dropped quietly */
    int skipping;
};

struct ipcp_mqchan_rx {
    uint32_t producers;
    size_t max_msg;
    size_t payload;                /* msgsize - header */
    struct ipcp_mqchan_lane *lane; /* producers * IPCP_MQCHAN_PRIOS, owned */
    uint64_t abandoned;            /* messages given up by their producer half-way */
    uint64_t dropped;              /* chunks dropped after their message was refused */
};

/* A complete message: data stays valid until the next feed (and, for a one-chunk message, as
 * long as the chunk's buffer). */
struct ipcp_mqchan_msg {
    const void *data;
    size_t len;
    uint16_t producer;
    uint8_t prio;
    uint64_t seq;
};

/* 0, -EINVAL (producers 0 or above the maximum, max_msg 0 or above IPCP_MQCHAN_MAX_MSG,
 * msgsize not above the header), -ENOMEM. Buffers are allocated per lane when used. */
int ipcp_mqchan_rx_init(struct ipcp_mqchan_rx *rx, uint32_t producers, size_t max_msg,
                        size_t msgsize);
void ipcp_mqchan_rx_fini(struct ipcp_mqchan_rx *rx);
/* Feeds one queue message that arrived at priority prio. Returns 1 (*out = the completed
 * message), 0 (more chunks needed, or a chunk of a refused message dropped), or
 *   -EBADMSG          not a chunk of this channel (header shape, producer, priority)
 *   -IPCP_E_TOOBIG    total above max_msg
 *   -IPCP_E_FRAGMENT  count, index or length do not fit the total or the lane's message
 *   -IPCP_E_SEQUENCE  a new message whose seq is not above its lane's last one
 *   -ENOMEM
 * After an error the state stays valid and the next chunk may be fed. */
int ipcp_mqchan_rx_feed(struct ipcp_mqchan_rx *rx, const void *msg, size_t len, unsigned prio,
                        struct ipcp_mqchan_msg *out);
/* Invariants (for tests and fuzzers): 1 when they hold. */
int ipcp_mqchan_rx_valid(const struct ipcp_mqchan_rx *rx);

/* ---- over a real queue -------------------------------------------------------------------- */

struct ipcp_mqchan;    /* the queue's name and geometry (process-local copy) */
struct ipcp_mqchan_ep; /* one endpoint: its own queue descriptor and buffers */

struct ipcp_mqchan_cfg {
    const char *stem;   /* [A-Za-z0-9_-]{1,32} (e.g. a run id) or NULL: random name suffix */
    uint32_t producers; /* 1 .. IPCP_MQCHAN_MAX_PRODUCERS */
    uint32_t consumers; /* 1 .. IPCP_MQCHAN_MAX_CONSUMERS receivers; above 1 only when every
                           message fits in one chunk */
    size_t max_msg;     /* largest message, 1 .. IPCP_MQCHAN_MAX_MSG */
    long maxmsg;        /* mq_maxmsg; 0: min(IPCP_MQCHAN_DEF_MAXMSG, msg_max) */
    long msgsize;       /* mq_msgsize, above the header; 0: min(IPCP_MQCHAN_DEF_MSGSIZE,
                           msgsize_max) */
};

struct ipcp_mqchan_info {
    long maxmsg, msgsize;      /* the queue's */
    size_t payload;            /* payload bytes per chunk: msgsize - IPCP_MQCHAN_HDR_SIZE */
    uint32_t max_chunks;       /* chunks of a max_msg message */
    long msg_max, msgsize_max; /* /proc/sys/fs/mqueue limits read at creation (0: unreadable) */
    int privileged;            /* CAP_SYS_RESOURCE: those limits did not apply */
};

/* Creates the queue "/ipcp.mqchan.<pid>.<suffix>" (O_CREAT|O_EXCL, 0600, registered for
 * `ipcproof clean`). In the process that will destroy it, before forking. 0, -EINVAL (cfg,
 * several consumers with chunked messages), -IPCP_E_MQ_MAXMSG / -IPCP_E_MQ_MSGSIZE (above the
 * limits), -IPCP_E_MQ_QUEUES (queues_max or RLIMIT_MSGQUEUE), -EEXIST, -ENOMEM, -errno; nothing
 * is left behind on failure. */
int ipcp_mqchan_create(const struct ipcp_mqchan_cfg *cfg, struct ipcp_mqchan **out);
/* Unlinks the queue (in the creating process only), frees. Close this process's endpoints
 * first. NULL is fine. */
void ipcp_mqchan_destroy(struct ipcp_mqchan *ch);
const char *ipcp_mqchan_name(const struct ipcp_mqchan *ch);
void ipcp_mqchan_info(const struct ipcp_mqchan *ch, struct ipcp_mqchan_info *info);

enum { IPCP_MQCHAN_SENDER = 1, IPCP_MQCHAN_RECEIVER = 2 };

/* Opens an endpoint (in the creating process, a process forked from it after create, or a
 * thread; one per thread). A sender names its producer index (< producers); a receiver's index
 * is ignored, it takes the first of the cfg's consumers entries never opened. Each entry is
 * opened once: closing does not free it. 0, -EINVAL, -EBUSY (that producer, or every receiver,
 * was opened before), -IPCP_E_PIDNS (this process is in another PID namespace than the
 * creator), -IPCP_E_LAYOUT (the queue under the name has another geometry), -ENOENT, -errno. */
int ipcp_mqchan_open(struct ipcp_mqchan *ch, int role, uint32_t index, struct ipcp_mqchan_ep **ep);
/* Sends len bytes at priority prio (< IPCP_MQCHAN_PRIOS) within timeout_ms (< 0: no limit).
 * 0 (every chunk is in the queue), -EMSGSIZE (len > max_msg), -EINVAL (prio), -ETIMEDOUT (the
 * queue stayed full; chunks already sent are dropped by the receiver when this producer's next
 * message at that priority starts), -IPCP_E_PEERDEAD / -EPIPE (the queue is full and every
 * receiver is gone, one of them dead / all closed; chunks sent stay as with -ETIMEDOUT), -EAGAIN
 * (timeout_ms 0 and more chunks than the queue holds: nothing sent), -IPCP_E_STATE (not a sender),
 * -errno. A message of more chunks than mq_maxmsg needs a timeout long enough for the receiver to
 * make room: each retry starts it afresh. */
int ipcp_mqchan_send(struct ipcp_mqchan_ep *ep, const void *data, size_t len, unsigned prio,
                     int timeout_ms);
/* Receives the next complete message into buf within timeout_ms (< 0: no limit). Its length,
 * or -EMSGSIZE (cap too small: the message stays pending for a call with a bigger buffer),
 * -ETIMEDOUT (chunks received so far are kept), -EPIPE (the queue is empty and every producer
 * closed: the end of the stream), -IPCP_E_PEERDEAD (the queue is empty and every producer is
 * gone, one of them dead: nothing more can come), a refusal of ipcp_mqchan_rx_feed (that chunk
 * is discarded; call again), -IPCP_E_STATE (not the receiver), -errno. *prio (may be NULL) =
 * the message's priority, *producer (may be NULL) = its producer. */
ssize_t ipcp_mqchan_recv(struct ipcp_mqchan_ep *ep, void *buf, size_t cap, int timeout_ms,
                         unsigned *prio, uint32_t *producer);
/* Marks the endpoint closed for its peers, closes its queue descriptor, frees. NULL is fine. */
void ipcp_mqchan_close(struct ipcp_mqchan_ep *ep);

struct ipcp_mqchan_stats {
    uint64_t messages;  /* sent or received whole */
    uint64_t chunks;    /* queue messages sent or received */
    uint64_t abandoned; /* receiver: messages its producers gave up half-way */
    uint64_t refused;   /* receiver: chunks refused (errors returned) */
    uint64_t dropped;   /* receiver: chunks dropped after their message was refused */
};
void ipcp_mqchan_stats(const struct ipcp_mqchan_ep *ep, struct ipcp_mqchan_stats *s);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* chunk.h - sans-I/O reassembly of a message sent as a sequence of chunks.
 *
 * A message larger than a transport's unit (a ring smaller than the message, a pipe write above
 * PIPE_BUF with several writers) travels as chunks: FIRST, any number of MIDDLE, LAST (one chunk
 * that is both FIRST and LAST is a whole message). Every chunk carries the message's total length
 * and a sequence number shared by all chunks of one message. The reassembler trusts none of it:
 * a total above the configured maximum is refused before anything is allocated, and a chunk
 * stream that lies (no FIRST, more bytes than the total, LAST too early, another sequence number
 * or total in the middle, unknown flags) is refused with IPCP_E_FRAGMENT. A FIRST while a message
 * is in progress means its sender gave that message up (a send that timed out half-way): the
 * partial message is dropped, counted in `abandoned`, and the new one starts. It does no I/O. */
#ifndef IPCPROOF_CHUNK_H
#define IPCPROOF_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

#define IPCP_CHUNK_FIRST 0x1u
#define IPCP_CHUNK_LAST  0x2u
#define IPCP_CHUNK_WHOLE (IPCP_CHUNK_FIRST | IPCP_CHUNK_LAST)

struct ipcp_reasm {
    uint8_t *buf;       /* owned; grows up to max_msg, kept between messages */
    size_t cap;         /* bytes allocated in buf */
    size_t max_msg;     /* configured maximum message length */
    size_t total;       /* declared length of the message in progress */
    size_t have;        /* bytes of it received so far */
    uint64_t seq;       /* sequence number of the message in progress */
    int active;         /* a FIRST was seen and the LAST not yet */
    int done;           /* a complete message sits in buf (until the next feed) */
    uint64_t abandoned; /* partial messages dropped because a new FIRST arrived */
};

/* Returns 0 or -EINVAL (max_msg 0 or above SIZE_MAX/2). Allocates nothing yet. */
int ipcp_reasm_init(struct ipcp_reasm *r, size_t max_msg);
void ipcp_reasm_fini(struct ipcp_reasm *r);
/* Drops a message in progress (e.g. after the peer reset). */
void ipcp_reasm_reset(struct ipcp_reasm *r);

/* Feeds one chunk. Returns 1 when it completed a message (read it with ipcp_reasm_message; it
 * stays valid until the next feed or reset), 0 when more chunks are needed, or:
 *   -IPCP_E_TOOBIG   total above max_msg (nothing allocated)
 *   -IPCP_E_FRAGMENT chunk does not fit the message in progress (that message and the chunk
 *                    are dropped; the next FIRST starts a new message)
 *   -ENOMEM          the buffer for total bytes could not be allocated */
int ipcp_reasm_feed(struct ipcp_reasm *r, unsigned flags, uint64_t seq, uint64_t total,
                    const void *data, size_t len);

/* Where the next chunk of the message in progress goes: returns the position in the buffer and
 * in *n the bytes still missing, or NULL (*n = 0) when no message is in progress. The I/O layer
 * may receive a continuing chunk straight there: a feed whose data points at this position takes
 * the bytes without copying them. Valid until the next feed or reset. */
void *ipcp_reasm_next(struct ipcp_reasm *r, size_t *n);

/* The completed message (after feed returned 1). */
const void *ipcp_reasm_message(const struct ipcp_reasm *r, size_t *len, uint64_t *seq);

/* Invariants hold (for tests and fuzzers). */
int ipcp_reasm_valid(const struct ipcp_reasm *r);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

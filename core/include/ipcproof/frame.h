/* frame.h - the versioned frame format and its sans-I/O codec.
 *
 * A frame is a 40-byte header followed by `len` payload bytes. All integers are little-endian.
 *
 *   off size field
 *     0    4 magic    "IPCF" (0x46435049)
 *     4    1 version  IPCP_FRAME_VERSION
 *     5    1 flags    IPCP_FRAME_F_FIRST | IPCP_FRAME_F_LAST (both: a whole message),
 *                     IPCP_FRAME_F_NOSUM (no payload checksum); others 0
 *     6    2 type     application message type
 *     8    8 seq      message sequence number (per writer); all fragments of a message share it
 *    16    4 len      payload bytes in this frame (<= the decoder's max_payload)
 *    20    4 writer   writer id (several writers on one pipe); 0 for a single writer
 *    24    4 total    length of the whole message (== len unless fragmented)
 *    28    4 hsum     XXH32 (seed 0) of the 40 header bytes with hsum set to zero
 *    32    8 psum     XXH3-64 of the payload; 0 with IPCP_FRAME_F_NOSUM
 *
 * Why xxHash and not CRC32C: the checksums guard against protocol bugs, torn copies and hostile
 * or buggy peers, not line noise. XXH3 runs at memory bandwidth on any x86-64/arm64 without
 * needing an SSE4.2/ARMv8 CRC dispatch, so checking every payload costs a few percent of a pipe
 * transfer; its 64-bit result makes an undetected corruption of a large payload far less likely
 * than a 32-bit CRC. CRC32C's guaranteed detection of short bursts buys nothing on a local IPC
 * channel. libxxhash is a Debian package (libxxhash-dev).
 *
 * The payload checksum is an option of the frame (IPCP_FRAME_F_NOSUM): a sender may leave it out
 * (it costs 15-20 % of a transfer of large messages), and a decoder refuses such a frame with
 * IPCP_E_NOSUM unless it was told to allow it (ipcp_frame_decoder_allow_nosum), so both peers
 * have to agree; the header checksum is always there.
 *
 * The codec does no I/O: the encoder yields header+payload iovecs for writev; the decoder accepts
 * bytes in any split (one at a time or many frames at once) and never allocates more than the
 * configured maximum payload, whatever a header declares. */
#ifndef IPCPROOF_FRAME_H
#define IPCPROOF_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

#define IPCP_FRAME_MAGIC       0x46435049u /* "IPCF" as little-endian bytes */
#define IPCP_FRAME_VERSION     1u
#define IPCP_FRAME_HDR_SIZE    40u
#define IPCP_FRAME_MAX_HARD    (64u << 20) /* no configuration may exceed this payload size */
#define IPCP_FRAME_MAX_DEFAULT (16u << 20) /* max_payload when 0 is configured */

#define IPCP_FRAME_F_FIRST 0x01u
#define IPCP_FRAME_F_LAST  0x02u
#define IPCP_FRAME_F_WHOLE (IPCP_FRAME_F_FIRST | IPCP_FRAME_F_LAST)
#define IPCP_FRAME_F_NOSUM 0x04u /* no payload checksum (psum 0, not checked) */
#define IPCP_FRAME_F_KNOWN (IPCP_FRAME_F_WHOLE | IPCP_FRAME_F_NOSUM)

struct ipcp_frame_hdr {
    uint8_t version;
    uint8_t flags;
    uint16_t type;
    uint64_t seq;
    uint32_t len;
    uint32_t writer;
    uint32_t total;
    uint64_t psum;
};

/* ---- encoder ------------------------------------------------------------------------------ */

struct ipcp_frame_enc {
    uint8_t hdr[IPCP_FRAME_HDR_SIZE];
    struct iovec iov[2]; /* iov[0] = hdr above, iov[1] = the caller's payload */
    int iovcnt;          /* 1 for an empty payload, else 2 */
};

/* Encodes one frame: h->len, h->flags, h->type, h->seq, h->writer, h->total are taken from h
 * (version and psum are filled in; psum is 0 when h->flags has IPCP_FRAME_F_NOSUM). The payload is
 * not copied: e->iov[1] points at it, so it must stay unchanged until the frame is written. Returns
 * the total byte count of the frame, or -IPCP_E_TOOBIG (len > max_payload or >
 * IPCP_FRAME_MAX_HARD), -EINVAL (unknown flags, payload NULL with len > 0, total < len).
 * max_payload 0 means IPCP_FRAME_MAX_DEFAULT. */
long ipcp_frame_encode(struct ipcp_frame_enc *e, const struct ipcp_frame_hdr *h,
                       const void *payload, size_t max_payload);

/* The same frame written contiguously, header then a copy of the payload, into dst[0..cap):
 * several small frames can be laid back to back and go out in one write. Returns the frame's
 * byte count, the errors of ipcp_frame_encode, or -ENOSPC (cap below the frame's size; nothing
 * is written then). */
long ipcp_frame_encode_into(void *dst, size_t cap, const struct ipcp_frame_hdr *h,
                            const void *payload, size_t max_payload);

/* Parses and checks a header (magic, version, header checksum, flags, len <= max_payload,
 * len <= total). Pure. Returns 0 or -IPCP_E_BADMAGIC, -IPCP_E_BADVERSION, -IPCP_E_HDRSUM,
 * -EBADMSG (unknown flags, total < len, fragment flags inconsistent, IPCP_FRAME_F_NOSUM with a
 * psum other than 0), -IPCP_E_TOOBIG. Whether a frame without payload checksum is welcome is
 * the receiver's policy, not checked here. */
int ipcp_frame_parse_header(const uint8_t raw[IPCP_FRAME_HDR_SIZE], size_t max_payload,
                            struct ipcp_frame_hdr *h);

/* ---- incremental decoder -------------------------------------------------------------------- */

enum ipcp_frame_dstate { IPCP_FRAME_D_HEADER, IPCP_FRAME_D_PAYLOAD, IPCP_FRAME_D_ERROR };

struct ipcp_frame_decoder {
    enum ipcp_frame_dstate state;
    int error;          /* the sticky error once state is IPCP_FRAME_D_ERROR */
    size_t max_payload; /* configured bound, <= IPCP_FRAME_MAX_HARD */
    uint8_t raw[IPCP_FRAME_HDR_SIZE];
    size_t raw_have; /* header bytes collected */
    struct ipcp_frame_hdr hdr;
    uint8_t *payload; /* owned; grows up to max_payload, kept between frames */
    size_t payload_cap;
    size_t payload_have;
    uint64_t frames; /* complete frames decoded */
    int allow_nosum; /* frames without payload checksum are accepted */
};

/* A decoded frame; payload points into the decoder and stays valid until the next call. */
struct ipcp_frame {
    struct ipcp_frame_hdr hdr;
    const uint8_t *payload;
};

/* One whole frame whose header and payload lie apart, as a packet transport can receive them
 * (the header into a small buffer, the payload straight into its final place): checks the header
 * as ipcp_frame_parse_header does, that exactly n payload bytes came with it, and the payload
 * checksum. Pure. Returns 1 with *out (out->payload = payload), or -IPCP_E_TRUNCATED (fewer than
 * len bytes), -EBADMSG (bytes after the frame), -IPCP_E_PAYSUM, -IPCP_E_NOSUM (no payload
 * checksum and allow_nosum is 0), or a header error. */
int ipcp_frame_check(const uint8_t hdr[IPCP_FRAME_HDR_SIZE], const void *payload, size_t n,
                     size_t max_payload, int allow_nosum, struct ipcp_frame *out);

/* max_payload 0 means IPCP_FRAME_MAX_DEFAULT. Returns 0 or -EINVAL (above the hard bound). */
int ipcp_frame_decoder_init(struct ipcp_frame_decoder *d, size_t max_payload);
void ipcp_frame_decoder_fini(struct ipcp_frame_decoder *d);
/* allow 1: frames without payload checksum (IPCP_FRAME_F_NOSUM) are accepted; 0 (the default
 * after init): they fail with -IPCP_E_NOSUM once their header is in. */
void ipcp_frame_decoder_allow_nosum(struct ipcp_frame_decoder *d, int allow);
/* Forgets a partial frame and a sticky error. */
void ipcp_frame_decoder_reset(struct ipcp_frame_decoder *d);

/* Feeds up to len bytes; stops after the first complete frame. *consumed says how many bytes
 * were taken (call again with the rest). Returns:
 *   1        a frame is complete in *out
 *   -EAGAIN  all bytes consumed, the frame is not complete yet
 *   < 0      the stream is corrupt: -IPCP_E_BADMAGIC, -IPCP_E_BADVERSION, -IPCP_E_HDRSUM,
 *            -IPCP_E_PAYSUM, -IPCP_E_NOSUM, -IPCP_E_TOOBIG, -EBADMSG, -ENOMEM. The error is sticky:
 * a byte stream has no resynchronisation point, so every later call returns it until
 *            ipcp_frame_decoder_reset(). */
int ipcp_frame_decode(struct ipcp_frame_decoder *d, const void *buf, size_t len, size_t *consumed,
                      struct ipcp_frame *out);

/* Zero-copy feeding for the I/O layer: while a payload is being collected, *ptr and *n tell where
 * its remaining bytes go, so they can be read() straight there; ipcp_frame_decoder_commit() then
 * accounts n bytes written there. Returns 1 (space available), 0 (not in a payload: feed the
 * header with ipcp_frame_decode), or the sticky error. */
int ipcp_frame_decoder_space(struct ipcp_frame_decoder *d, void **ptr, size_t *n);
/* Returns as ipcp_frame_decode (1 frame complete, -EAGAIN more needed, or a payload error). */
int ipcp_frame_decoder_commit(struct ipcp_frame_decoder *d, size_t n, struct ipcp_frame *out);

/* 1 when no partial frame is buffered (EOF here is clean; elsewhere it is truncation). */
int ipcp_frame_decoder_idle(const struct ipcp_frame_decoder *d);

/* Invariants hold (for tests and fuzzers). */
int ipcp_frame_decoder_valid(const struct ipcp_frame_decoder *d);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

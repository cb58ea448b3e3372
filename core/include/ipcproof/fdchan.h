/* fdchan.h - whole frames over file descriptors: pipes, FIFOs, AF_UNIX stream and seqpacket
 * sockets, TCP on loopback.
 *
 * A channel wraps a read fd and/or a write fd. send() encodes a message as one frame (or as
 * several fragment frames, see below) and writes it with writev/sendmsg; recv() reads, decodes
 * with the sans-I/O decoder of frame.h and hands out one whole message. Both take a timeout and
 * never block longer: the fds are switched to O_NONBLOCK and waits happen in poll(). EINTR and
 * short reads/writes are retried; a write to a closed peer returns -EPIPE and never raises
 * SIGPIPE; EOF in the middle of a frame or message is -IPCP_E_TRUNCATED, EOF between messages
 * -EPIPE.
 *
 * Every syscall goes through a hook table (struct ipcp_io_ops), so tests and fuzzers can inject
 * short counts, EINTR and EAGAIN, or run the whole layer without real I/O.
 *
 * Several writers on one pipe or FIFO (IPCP_FDCHAN_MULTIWRITER): POSIX makes a pipe write
 * atomic only up to PIPE_BUF bytes, so each writer (with its own writer id) cuts every message
 * into fragment frames of at most PIPE_BUF bytes, header included, and writes each in one write();
 * fragments of different writers may interleave, never mix, and the reader reassembles them per
 * writer id. Every writer of the pipe must use this mode. On a SOCK_SEQPACKET socket every frame
 * is one packet; messages above the fragment size (IPCP_FDCHAN_SEQPACKET_FRAG by default) are
 * fragmented the same way.
 *
 * Ordering and loss: each writer numbers its messages from 0; the reader checks that every
 * writer's next message carries the next number and reports -IPCP_E_SEQUENCE once when it does
 * not (the message itself is then delivered by the next recv: nothing is dropped).
 *
 * Thread safety: one channel is used by one thread at a time. Different channels are
 * independent. */
#ifndef IPCPROOF_FDCHAN_H
#define IPCPROOF_FDCHAN_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

/* The syscall hooks. Each returns what the syscall returns on success and -errno on failure
 * (never -1 with errno). ctx is passed through. */
struct ipcp_io_ops {
    ssize_t (*read)(void *ctx, int fd, void *buf, size_t n);
    ssize_t (*writev)(void *ctx, int fd, const struct iovec *iov, int iovcnt);
    ssize_t (*recvmsg)(void *ctx, int fd, struct msghdr *msg, int flags);
    ssize_t (*sendmsg)(void *ctx, int fd, const struct msghdr *msg, int flags);
    int (*poll)(void *ctx, struct pollfd *fds, nfds_t nfds, int timeout_ms);
    void *ctx;
};

/* The real syscalls. */
const struct ipcp_io_ops *ipcp_io_default(void);

enum ipcp_fdchan_kind {
    IPCP_FDCHAN_STREAM = 0, /* pipe, AF_UNIX SOCK_STREAM, TCP: a byte stream */
    IPCP_FDCHAN_FIFO,       /* a named FIFO: a stream where "no writer yet" is not EOF */
    IPCP_FDCHAN_SEQPACKET   /* AF_UNIX SOCK_SEQPACKET: one frame per packet */
};

#define IPCP_FDCHAN_MULTIWRITER 0x1u /* fragments <= PIPE_BUF: several writers on one pipe */
#define IPCP_FDCHAN_OWN_FDS     0x2u /* ipcp_fdchan_close() closes the fds */
#define IPCP_FDCHAN_NO_SEQCHECK 0x4u /* do not check per-writer sequence numbers */
#define IPCP_FDCHAN_NO_PAYSUM                                                                      \
    0x8u /* send frames without payload checksum and accept such                                   \
            frames (both ends must set it; frame.h) */

#define IPCP_FDCHAN_MAX_WRITERS    256u
#define IPCP_FDCHAN_SEQPACKET_FRAG (64u << 10)

struct ipcp_fdchan_cfg {
    enum ipcp_fdchan_kind kind;
    unsigned flags;               /* IPCP_FDCHAN_* */
    size_t max_msg;               /* largest message accepted or sent; 0 = IPCP_FRAME_MAX_DEFAULT;
                                     above the hard bound (frame.h): -EINVAL at open */
    uint32_t writer_id;           /* this end's id as a writer (< max_writers) */
    uint32_t max_writers;         /* writer ids the reader accepts; 0 = 1 (or 64 in MULTIWRITER) */
    size_t frag;                  /* fragment payload size for SEQPACKET; 0 = default */
    const struct ipcp_io_ops *io; /* NULL = ipcp_io_default() */
};

struct ipcp_fdchan;

/* Wraps rfd (reading end, or -1) and wfd (writing end, or -1; may equal rfd for a socket).
 * Sets O_NONBLOCK on both. Returns 0 or -EINVAL, -ENOMEM. */
int ipcp_fdchan_open(struct ipcp_fdchan **c, int rfd, int wfd, const struct ipcp_fdchan_cfg *cfg);

/* Flushes an accepted-but-unwritten tail (up to timeout_ms) and frees the channel; closes the
 * fds with IPCP_FDCHAN_OWN_FDS. Returns 0, or the flush error (the channel is freed anyway). */
int ipcp_fdchan_close(struct ipcp_fdchan *c, int timeout_ms);

/* Sends one message of len bytes (len <= max_msg) with the given type. Returns:
 *   0             the whole message was written, or accepted: if the deadline passed after part
 *                 of it was written, the rest is copied into the channel and written first by
 *                 the next send/flush/close (a half-written frame would corrupt the stream)
 *   -ETIMEDOUT    nothing of this message was written
 *   -EPIPE        the reader is gone (no SIGPIPE is raised)
 *   -IPCP_E_TOOBIG len above max_msg;  -IPCP_E_BROKEN an earlier error left a partial frame
 *   other -errno  from the syscalls */
int ipcp_fdchan_send(struct ipcp_fdchan *c, uint16_t type, const void *msg, size_t len,
                     int timeout_ms);

/* One message of a batch for ipcp_fdchan_sendv(). */
struct ipcp_fdchan_msg {
    const void *data;
    size_t len;
    uint16_t type;
};

/* Sends msgs[0..n) in order with one deadline: the same frames as n calls of ipcp_fdchan_send,
 * in fewer syscalls. On a stream, messages whose frame is small are encoded back to back into
 * one buffer of the channel (64 KiB; PIPE_BUF with IPCP_FDCHAN_MULTIWRITER, so that every write
 * stays atomic and holds whole frames only) and go out in one write; larger messages go out as
 * send() writes them. On SOCK_SEQPACKET every frame stays one packet (one sendmsg each).
 * Every message is checked first: one above max_msg (-IPCP_E_TOOBIG) or with NULL data and a
 * length (-EINVAL) refuses the whole batch and nothing is written. Returns:
 *   k in 1..n     msgs[0..k) are accepted as send() accepts a message: written, except that the
 *                 last of them may be partly written with its rest kept in the channel for the
 *                 next send/flush/close; msgs[k..n) were not written at all and did not use
 *                 sequence numbers (send them again to continue). k < n when the deadline passed
 *                 or an error stopped the batch (the next call reports it)
 *   0             n == 0
 *   < 0           nothing accepted: the errors of ipcp_fdchan_send */
ssize_t ipcp_fdchan_sendv(struct ipcp_fdchan *c, const struct ipcp_fdchan_msg *msgs, size_t n,
                          int timeout_ms);

/* Writes an accepted tail left by a timed-out send. 0 when nothing is pending. */
int ipcp_fdchan_flush(struct ipcp_fdchan *c, int timeout_ms);

/* Receives one whole message into buf. Returns its length, or:
 *   -EMSGSIZE     it is longer than cap: it stays queued (ipcp_fdchan_pending_len tells its
 *                 size) and the next recv with a larger buffer gets it
 *   -ETIMEDOUT    no whole message within timeout_ms (partial input stays buffered)
 *   -EPIPE        the peer closed between messages
 *   -IPCP_E_TRUNCATED  the peer closed in the middle of a frame or a fragmented message
 *   -IPCP_E_SEQUENCE   a writer's sequence skipped or repeated (reported once; the message is
 *                 delivered by the next call)
 *   frame errors  -IPCP_E_BADMAGIC, -IPCP_E_BADVERSION, -IPCP_E_HDRSUM, -IPCP_E_PAYSUM,
 *                 -IPCP_E_NOSUM (a frame without payload checksum, IPCP_FDCHAN_NO_PAYSUM unset),
 *                 -IPCP_E_TOOBIG, -EBADMSG, -IPCP_E_FRAGMENT: the stream cannot be trusted any
 *                 more; later calls return -IPCP_E_BROKEN
 * *type (if not NULL) receives the message type. */
ssize_t ipcp_fdchan_recv(struct ipcp_fdchan *c, uint16_t *type, void *buf, size_t cap,
                         int timeout_ms);

/* Zero-copy receive: *msg points into the channel and stays valid until the next call on c. */
ssize_t ipcp_fdchan_recv_zc(struct ipcp_fdchan *c, uint16_t *type, const void **msg,
                            int timeout_ms);

/* Length of a message left queued by -EMSGSIZE, or -ENOENT. */
ssize_t ipcp_fdchan_pending_len(const struct ipcp_fdchan *c);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

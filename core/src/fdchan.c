/* fdchan.c - whole frames over file descriptors; see fdchan.h.
 *
 * The protocol work (framing, fragment reassembly, sequence checks) is done by the sans-I/O
 * pieces in frame.c and chunk.c; this file only moves bytes between them and the fds, through
 * the ipcp_io_ops hooks, with a deadline on every wait. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadline.h"
#include "ipcproof/chunk.h"
#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"
#include "ipcproof/frame.h"

#define RX_STREAM_CAP (64u << 10)
#define RX_DIRECT_MIN (16u << 10) /* payload remainders this big are read straight in place */
#define TX_BATCH_CAP  (64u << 10) /* sendv: small frames laid back to back, one write */
#define TX_SMALL      (16u << 10) /* sendv: frames up to this size are batched on a stream */

struct writer_state {
    uint64_t next_seq;
    int reasm_ready;
    struct ipcp_reasm reasm;
};

/* The message being written: it may outlive a send() call that timed out half-way. */
struct out_msg {
    int active;
    const uint8_t *data; /* the caller's bytes during send(), or `owned` after a timeout */
    uint8_t *owned;
    size_t total;
    size_t off; /* payload bytes whose frames are completely written */
    uint64_t seq;
    uint16_t type;
    int in_frame;
    size_t frame_len, frame_sent, frame_payload;
    struct ipcp_frame_enc enc;
    uint8_t small[512];
};

struct ipcp_fdchan {
    int rfd, wfd;
    enum ipcp_fdchan_kind kind;
    unsigned flags;
    size_t max_msg;
    size_t frag; /* largest payload per frame when sending */
    int atomic_frames;
    uint32_t writer_id, max_writers;
    const struct ipcp_io_ops *io;
    int w_is_sock;
    int sigpipe_guard;
    int rbroken; /* sticky receive error */
    int wbroken; /* sticky send error */
    uint64_t next_seq;
    struct out_msg out;
    uint8_t *tx; /* sendv's batch buffer, allocated by the first batch */
    size_t tx_cap;
    struct ipcp_frame_decoder dec;
    uint8_t *rx;
    size_t rx_cap, rx_off, rx_len;
    uint8_t pkt_hdr[IPCP_FRAME_HDR_SIZE]; /* seqpacket: the header of the packet received */
    size_t last_len;                      /* payload length of the last frame decoded */
    struct writer_state *ws;
    /* a whole message waiting to be handed out */
    int pend;
    int pend_seqerr;
    const uint8_t *pend_ptr;
    size_t pend_len;
    uint16_t pend_type;
};

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -errno;
    if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
    return 0;
}

int ipcp_fdchan_open(struct ipcp_fdchan **cp, int rfd, int wfd, const struct ipcp_fdchan_cfg *cfg)
{
    *cp = NULL;
    if (cfg == NULL || (rfd < 0 && wfd < 0)) return -EINVAL;
    if (cfg->kind != IPCP_FDCHAN_STREAM && cfg->kind != IPCP_FDCHAN_FIFO &&
        cfg->kind != IPCP_FDCHAN_SEQPACKET)
        return -EINVAL;
    size_t max = cfg->max_msg ? cfg->max_msg : IPCP_FRAME_MAX_DEFAULT;
    if (max > IPCP_FRAME_MAX_HARD || max > UINT32_MAX) return -EINVAL;
    uint32_t nw = cfg->max_writers;
    if (nw == 0) nw = (cfg->flags & IPCP_FDCHAN_MULTIWRITER) ? 64 : 1;
    if (nw > IPCP_FDCHAN_MAX_WRITERS || cfg->writer_id >= nw) return -EINVAL;

    struct ipcp_fdchan *c = calloc(1, sizeof(*c));
    if (c == NULL) return -ENOMEM;
    c->rfd = rfd;
    c->wfd = wfd;
    c->kind = cfg->kind;
    c->flags = cfg->flags;
    c->max_msg = max;
    c->writer_id = cfg->writer_id;
    c->max_writers = nw;
    c->io = cfg->io ? cfg->io : ipcp_io_default();
    if (cfg->kind == IPCP_FDCHAN_SEQPACKET) {
        c->frag = cfg->frag ? cfg->frag : IPCP_FDCHAN_SEQPACKET_FRAG;
        c->atomic_frames = 1;
    } else if (cfg->flags & IPCP_FDCHAN_MULTIWRITER) {
        c->frag = PIPE_BUF - IPCP_FRAME_HDR_SIZE; /* header + payload in one atomic write */
        c->atomic_frames = 1;
    } else {
        c->frag = max;
    }
    if (c->frag > max) c->frag = max;
    if (c->frag == 0) c->frag = 1;
    /* Multiple writers: a batch is one atomic write, so it holds at most PIPE_BUF bytes. */
    c->tx_cap = cfg->kind == IPCP_FDCHAN_SEQPACKET       ? 0
                : (cfg->flags & IPCP_FDCHAN_MULTIWRITER) ? PIPE_BUF
                                                         : TX_BATCH_CAP;

    int rc = 0;
    if (rfd >= 0) rc = set_nonblock(rfd);
    if (rc == 0 && wfd >= 0) rc = set_nonblock(wfd);
    if (rc == 0 && wfd >= 0) {
        struct stat st;
        if (fstat(wfd, &st) == 0) c->w_is_sock = S_ISSOCK(st.st_mode);
        /* A pipe write to a closed reader raises SIGPIPE unless it is ignored or blocked. */
        struct sigaction sa;
        c->sigpipe_guard =
            !c->w_is_sock && (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_IGN);
    }
    if (rc == 0 && rfd >= 0) {
        /* seqpacket: the payload of one packet (its header goes to pkt_hdr) */
        c->rx_cap = cfg->kind == IPCP_FDCHAN_SEQPACKET ? c->frag : RX_STREAM_CAP;
        void *rx = NULL; /* page-aligned for the kernel's copy, see frame.c */
        if (posix_memalign(&rx, 4096, c->rx_cap) == 0) c->rx = rx;
        c->ws = calloc(nw, sizeof(*c->ws));
        if (c->rx == NULL || c->ws == NULL) rc = -ENOMEM;
        if (rc == 0) rc = ipcp_frame_decoder_init(&c->dec, max);
        if (rc == 0)
            ipcp_frame_decoder_allow_nosum(&c->dec, (cfg->flags & IPCP_FDCHAN_NO_PAYSUM) != 0);
    }
    if (rc < 0) {
        free(c->rx);
        free(c->ws);
        free(c);
        return rc;
    }
    *cp = c;
    return 0;
}

/* ---- sending ------------------------------------------------------------------------------ */

static ssize_t write_iov(struct ipcp_fdchan *c, const struct iovec *iov, int cnt)
{
    if (c->w_is_sock) {
        struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt};
        return c->io->sendmsg(c->io->ctx, c->wfd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (!c->sigpipe_guard) return c->io->writev(c->io->ctx, c->wfd, iov, cnt);
    /* Block SIGPIPE for this thread around the write and consume the one it raised, so a
     * closed reader shows up as -EPIPE and never kills the process. */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r = c->io->writev(c->io->ctx, c->wfd, iov, cnt);
    if (r == -EPIPE && !sigismember(&old, SIGPIPE)) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

static int wait_fd(struct ipcp_fdchan *c, int fd, short events, const struct ipcp_deadline *dl)
{
    int left = ipcp__deadline_left_ms(dl);
    if (left == 0) return -ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int r = c->io->poll(c->io->ctx, &p, 1, left);
    if (r == -EINTR) return 0; /* the caller re-checks its deadline and retries */
    if (r < 0) return r;
    if (r == 0) return ipcp__deadline_left_ms(dl) == 0 ? -ETIMEDOUT : 0;
    if ((events & POLLOUT) && (p.revents & (POLLERR | POLLHUP)) && !(p.revents & POLLOUT))
        return -EPIPE;
    if (p.revents & POLLNVAL) return -EBADF;
    return 0;
}

static unsigned tx_sum_flag(const struct ipcp_fdchan *c)
{
    return (c->flags & IPCP_FDCHAN_NO_PAYSUM) ? IPCP_FRAME_F_NOSUM : 0;
}

/* Writes frames of the current message until it is complete (0), the deadline passes
 * (-ETIMEDOUT) or an error occurs. */
static int out_step(struct ipcp_fdchan *c, const struct ipcp_deadline *dl)
{
    struct out_msg *o = &c->out;
    while (o->active) {
        if (!o->in_frame) {
            size_t len = o->total - o->off;
            if (len > c->frag) len = c->frag;
            struct ipcp_frame_hdr h = {
                .flags =
                    (uint8_t)((o->off == 0 ? IPCP_FRAME_F_FIRST : 0) |
                              (o->off + len == o->total ? IPCP_FRAME_F_LAST : 0) | tx_sum_flag(c)),
                .type = o->type,
                .seq = o->seq,
                .len = (uint32_t)len,
                .writer = c->writer_id,
                .total = (uint32_t)o->total,
            };
            long n = ipcp_frame_encode(&o->enc, &h, len ? o->data + o->off : NULL, c->frag);
            if (n < 0) return (int)n;
            o->frame_len = (size_t)n;
            o->frame_sent = 0;
            o->frame_payload = len;
            o->in_frame = 1;
            if (o->enc.iovcnt == 2 && (size_t)n <= sizeof(o->small)) {
                /* One contiguous buffer for a small frame: a single-segment write is
                 * measurably cheaper in the kernel than a two-segment one. */
                memcpy(o->small, o->enc.hdr, IPCP_FRAME_HDR_SIZE);
                memcpy(o->small + IPCP_FRAME_HDR_SIZE, o->data + o->off, len);
                o->enc.iov[0].iov_base = o->small;
                o->enc.iov[0].iov_len = (size_t)n;
                o->enc.iovcnt = 1;
            }
        }
        struct iovec iov[2];
        int cnt = 0;
        size_t skip = o->frame_sent;
        for (int i = 0; i < o->enc.iovcnt; i++) {
            size_t l = o->enc.iov[i].iov_len;
            if (skip >= l) {
                skip -= l;
                continue;
            }
            iov[cnt].iov_base = (uint8_t *)o->enc.iov[i].iov_base + skip;
            iov[cnt].iov_len = l - skip;
            skip = 0;
            cnt++;
        }
        ssize_t r = write_iov(c, iov, cnt);
        if (r > 0) {
            if (c->atomic_frames && (size_t)r != o->frame_len - o->frame_sent) {
                c->wbroken = -IPCP_E_BROKEN; /* an atomic frame was split: cannot happen */
                return -IPCP_E_BROKEN;
            }
            o->frame_sent += (size_t)r;
            if (o->frame_sent == o->frame_len) {
                o->off += o->frame_payload;
                o->in_frame = 0;
                if (o->off == o->total) o->active = 0;
            }
            continue;
        }
        if (r == -EINTR) {
            if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
            continue;
        }
        if (r == 0 || r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS) {
            int w = wait_fd(c, c->wfd, POLLOUT, dl);
            if (w < 0) return w;
            continue;
        }
        return (int)r;
    }
    return 0;
}

static int out_written_any(const struct out_msg *o)
{
    return o->off > 0 || (o->in_frame && o->frame_sent > 0);
}

/* The deadline passed after part of the message went out: keep the rest. */
static int out_adopt(struct ipcp_fdchan *c)
{
    struct out_msg *o = &c->out;
    if (o->owned != NULL || o->total == 0) return 0;
    o->owned = malloc(o->total);
    if (o->owned == NULL) return -ENOMEM;
    memcpy(o->owned, o->data, o->total);
    if (o->in_frame && o->enc.iovcnt == 2)
        o->enc.iov[1].iov_base = o->owned + ((const uint8_t *)o->enc.iov[1].iov_base - o->data);
    o->data = o->owned;
    return 0;
}

static void out_done(struct out_msg *o)
{
    free(o->owned);
    memset(o, 0, sizeof(*o));
}

int ipcp_fdchan_flush(struct ipcp_fdchan *c, int timeout_ms)
{
    if (c->wbroken) return c->wbroken;
    if (!c->out.active) return 0;
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    int rc = out_step(c, &dl);
    if (rc == 0)
        out_done(&c->out);
    else if (rc != -ETIMEDOUT)
        c->wbroken = rc == -EPIPE ? -EPIPE : -IPCP_E_BROKEN;
    return rc;
}

/* The tail of a message accepted earlier goes out before anything else. */
static int out_finish(struct ipcp_fdchan *c, const struct ipcp_deadline *dl)
{
    if (!c->out.active) return 0;
    int rc = out_step(c, dl);
    if (rc == -ETIMEDOUT) return -ETIMEDOUT;
    if (rc < 0) {
        c->wbroken = rc == -EPIPE ? -EPIPE : -IPCP_E_BROKEN;
        return rc;
    }
    out_done(&c->out);
    return 0;
}

static int check_msg(const struct ipcp_fdchan *c, const void *msg, size_t len)
{
    if (len > c->max_msg) return -IPCP_E_TOOBIG;
    if (len > 0 && msg == NULL) return -EINVAL;
    return 0;
}

/* One message, checked, after any earlier tail: 0 accepted, or an error with nothing of it
 * written (or the stream broken). */
static int send_one(struct ipcp_fdchan *c, uint16_t type, const void *msg, size_t len,
                    const struct ipcp_deadline *dl)
{
    int rc = out_finish(c, dl);
    if (rc < 0) return rc;
    struct out_msg *o = &c->out;
    memset(o, 0, sizeof(*o));
    o->active = 1;
    o->data = msg;
    o->total = len;
    o->seq = c->next_seq;
    o->type = type;
    rc = out_step(c, dl);
    if (rc == 0) {
        c->next_seq++;
        out_done(o);
        return 0;
    }
    if (!out_written_any(o)) { /* nothing of it went out: as if never sent */
        out_done(o);
        return rc;
    }
    c->next_seq++;
    if (rc == -ETIMEDOUT) {
        int a = out_adopt(c);
        if (a == 0) return 0; /* accepted: the rest goes out with the next send/flush/close */
        rc = a;
    }
    /* Part of a frame is on the wire and the rest cannot follow: the stream is corrupt. */
    c->wbroken = rc == -EPIPE ? -EPIPE : -IPCP_E_BROKEN;
    out_done(o);
    return rc;
}

int ipcp_fdchan_send(struct ipcp_fdchan *c, uint16_t type, const void *msg, size_t len,
                     int timeout_ms)
{
    if (c->wfd < 0) return -EBADF;
    if (c->wbroken) return c->wbroken;
    int rc = check_msg(c, msg, len);
    if (rc < 0) return rc;
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    return send_one(c, type, msg, len, &dl);
}

/* ---- batched sending ---------------------------------------------------------------------- */

static int batchable(const struct ipcp_fdchan *c, size_t len)
{
    size_t small = c->atomic_frames ? c->tx_cap : TX_SMALL;
    return c->tx_cap > 0 && len <= small - IPCP_FRAME_HDR_SIZE;
}

/* The frame of m (sequence number seq) was written up to `sent` of its bytes when the deadline
 * passed: it becomes the channel's pending message, as a timed-out send leaves it. */
static int batch_adopt(struct ipcp_fdchan *c, const struct ipcp_fdchan_msg *m, uint64_t seq,
                       const uint8_t *frame, size_t sent)
{
    struct out_msg *o = &c->out;
    memset(o, 0, sizeof(*o));
    o->active = 1;
    o->data = m->data;
    o->total = m->len;
    o->seq = seq;
    o->type = m->type;
    o->in_frame = 1;
    o->frame_len = IPCP_FRAME_HDR_SIZE + m->len;
    o->frame_sent = sent;
    o->frame_payload = m->len;
    memcpy(o->enc.hdr, frame, IPCP_FRAME_HDR_SIZE);
    o->enc.iov[0].iov_base = o->enc.hdr;
    o->enc.iov[0].iov_len = IPCP_FRAME_HDR_SIZE;
    o->enc.iov[1].iov_base = (void *)(uintptr_t)m->data;
    o->enc.iov[1].iov_len = m->len;
    o->enc.iovcnt = m->len ? 2 : 1;
    return out_adopt(c);
}

/* Encodes the leading batchable messages of m[0..n) that fit into c->tx and writes them in one
 * write (more when the kernel takes less). Returns how many were accepted; *err gets 0 or why the
 * batch stopped (-ETIMEDOUT, an error). */
static size_t send_batch(struct ipcp_fdchan *c, const struct ipcp_fdchan_msg *m, size_t n,
                         const struct ipcp_deadline *dl, int *err)
{
    size_t k = 0, used = 0;
    while (k < n && batchable(c, m[k].len) && IPCP_FRAME_HDR_SIZE + m[k].len <= c->tx_cap - used) {
        struct ipcp_frame_hdr h = {
            .flags = (uint8_t)(IPCP_FRAME_F_WHOLE | tx_sum_flag(c)),
            .type = m[k].type,
            .seq = c->next_seq + k,
            .len = (uint32_t)m[k].len,
            .writer = c->writer_id,
            .total = (uint32_t)m[k].len,
        };
        long r = ipcp_frame_encode_into(c->tx + used, c->tx_cap - used, &h, m[k].data, c->frag);
        if (r < 0) {
            *err = (int)r;
            return 0;
        }
        used += (size_t)r;
        k++;
    }
    size_t sent = 0;
    int rc = 0;
    while (sent < used && rc == 0) {
        struct iovec iov = {.iov_base = c->tx + sent, .iov_len = used - sent};
        ssize_t r = write_iov(c, &iov, 1);
        if (r > 0) {
            if (c->atomic_frames && (size_t)r != used) {
                rc = c->wbroken = -IPCP_E_BROKEN; /* an atomic write was split: cannot happen */
                break;
            }
            sent += (size_t)r;
        } else if (r == -EINTR) {
            if (ipcp__deadline_left_ms(dl) == 0) rc = -ETIMEDOUT;
        } else if (r == 0 || r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS) {
            rc = wait_fd(c, c->wfd, POLLOUT, dl);
        } else {
            rc = (int)r;
        }
    }
    /* Frames wholly written are accepted; a frame cut by the deadline is accepted with its rest
     * kept; the frames after it were not written and give their sequence numbers back. */
    size_t acc = 0, off = 0;
    while (acc < k && IPCP_FRAME_HDR_SIZE + m[acc].len <= sent - off)
        off += IPCP_FRAME_HDR_SIZE + m[acc++].len;
    if (off < sent && rc != -IPCP_E_BROKEN) {
        int a = rc == -ETIMEDOUT
                    ? batch_adopt(c, &m[acc], c->next_seq + acc, c->tx + off, sent - off)
                    : rc;
        if (a == 0)
            acc++;
        else {
            c->wbroken = a == -EPIPE ? -EPIPE : -IPCP_E_BROKEN; /* a cut frame on the wire */
            out_done(&c->out);
            rc = a;
        }
    }
    c->next_seq += acc;
    *err = rc;
    return acc;
}

ssize_t ipcp_fdchan_sendv(struct ipcp_fdchan *c, const struct ipcp_fdchan_msg *msgs, size_t n,
                          int timeout_ms)
{
    if (c->wfd < 0) return -EBADF;
    if (c->wbroken) return c->wbroken;
    if (n > 0 && msgs == NULL) return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = check_msg(c, msgs[i].data, msgs[i].len);
        if (rc < 0) return rc;
    }
    if (n == 0) return 0;
    if (c->tx == NULL && c->tx_cap > 0) {
        void *tx = NULL; /* page-aligned, as the kernel copies from it fastest */
        if (posix_memalign(&tx, 4096, c->tx_cap) != 0) return -ENOMEM;
        c->tx = tx;
    }
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    size_t done = 0;
    int rc = 0;
    while (done < n && rc == 0) {
        rc = out_finish(c, &dl);
        if (rc < 0) break;
        if (batchable(c, msgs[done].len)) {
            done += send_batch(c, msgs + done, n - done, &dl, &rc);
        } else {
            rc = send_one(c, msgs[done].type, msgs[done].data, msgs[done].len, &dl);
            if (rc == 0) done++;
        }
    }
    return done > 0 ? (ssize_t)done : rc;
}

/* ---- receiving ---------------------------------------------------------------------------- */

static int rx_fail(struct ipcp_fdchan *c, int err)
{
    c->rbroken = err;
    return err;
}

static int reasm_in_progress(const struct ipcp_fdchan *c)
{
    for (uint32_t i = 0; i < c->max_writers; i++)
        if (c->ws[i].reasm_ready && c->ws[i].reasm.active) return 1;
    return 0;
}

/* A frame was decoded: returns 1 when it completed a message (now pending), 0 when more frames
 * are needed, or a stream error. */
static int rx_frame(struct ipcp_fdchan *c, const struct ipcp_frame *fr)
{
    uint32_t w = fr->hdr.writer;
    c->last_len = fr->hdr.len;
    if (w >= c->max_writers) return -EBADMSG;
    struct writer_state *ws = &c->ws[w];
    const uint8_t *ptr;
    size_t len;
    uint64_t seq;
    int whole = (fr->hdr.flags & IPCP_FRAME_F_WHOLE) == IPCP_FRAME_F_WHOLE;
    if (whole && !(ws->reasm_ready && ws->reasm.active)) {
        ptr = fr->payload;
        len = fr->hdr.len;
        seq = fr->hdr.seq;
    } else {
        if (!ws->reasm_ready) {
            int rc = ipcp_reasm_init(&ws->reasm, c->max_msg);
            if (rc < 0) return rc;
            ws->reasm_ready = 1;
        }
        unsigned fl = (fr->hdr.flags & IPCP_FRAME_F_FIRST ? IPCP_CHUNK_FIRST : 0) |
                      (fr->hdr.flags & IPCP_FRAME_F_LAST ? IPCP_CHUNK_LAST : 0);
        int rc =
            ipcp_reasm_feed(&ws->reasm, fl, fr->hdr.seq, fr->hdr.total, fr->payload, fr->hdr.len);
        if (rc <= 0) return rc;
        ptr = ipcp_reasm_message(&ws->reasm, &len, &seq);
    }
    c->pend = 1;
    c->pend_ptr = ptr;
    c->pend_len = len;
    c->pend_type = fr->hdr.type;
    if (!(c->flags & IPCP_FDCHAN_NO_SEQCHECK)) {
        if (seq != ws->next_seq) c->pend_seqerr = 1;
        ws->next_seq = seq + 1;
    }
    return 1;
}

static int rx_eof(struct ipcp_fdchan *c)
{
    if (!ipcp_frame_decoder_idle(&c->dec) || reasm_in_progress(c))
        return rx_fail(c, -IPCP_E_TRUNCATED);
    return -EPIPE;
}

/* Reads and decodes until a whole message is pending (0) or an error/timeout. */
static int rx_fill_stream(struct ipcp_fdchan *c, const struct ipcp_deadline *dl)
{
    struct ipcp_frame fr;
    for (;;) {
        while (c->rx_off < c->rx_len) {
            size_t used = 0;
            int rc =
                ipcp_frame_decode(&c->dec, c->rx + c->rx_off, c->rx_len - c->rx_off, &used, &fr);
            c->rx_off += used;
            if (rc == 1) {
                int r = rx_frame(c, &fr);
                if (r == 1) return 0;
                if (r < 0) return rx_fail(c, r);
            } else if (rc != -EAGAIN) {
                return rx_fail(c, rc);
            }
        }
        c->rx_off = c->rx_len = 0;
        void *space;
        size_t n;
        int direct = ipcp_frame_decoder_space(&c->dec, &space, &n) == 1 && n >= RX_DIRECT_MIN;
        /* After a large message, read the next header alone, so that its payload lands in
         * place by the direct read above instead of being copied out of rx. */
        size_t want = c->last_len >= RX_DIRECT_MIN ? IPCP_FRAME_HDR_SIZE : c->rx_cap;
        ssize_t r = direct ? c->io->read(c->io->ctx, c->rfd, space, n)
                           : c->io->read(c->io->ctx, c->rfd, c->rx, want);
        if (r > 0) {
            if (!direct) {
                c->rx_len = (size_t)r;
                continue;
            }
            int rc = ipcp_frame_decoder_commit(&c->dec, (size_t)r, &fr);
            if (rc == 1) {
                int f = rx_frame(c, &fr);
                if (f == 1) return 0;
                if (f < 0) return rx_fail(c, f);
            } else if (rc != -EAGAIN) {
                return rx_fail(c, rc);
            }
            continue;
        }
        if (r == 0 || r == -ECONNRESET) {
            if (r == 0 && c->kind == IPCP_FDCHAN_FIFO) {
                /* A FIFO reads EOF while no writer has it open; it is the end only when
                 * poll reports the hang-up of a writer that was there. */
                int left = ipcp__deadline_left_ms(dl);
                if (left == 0) return -ETIMEDOUT;
                struct pollfd p = {.fd = c->rfd, .events = POLLIN};
                int pr = c->io->poll(c->io->ctx, &p, 1, left);
                if (pr == -EINTR || (pr > 0 && (p.revents & POLLIN))) continue;
                if (pr < 0) return pr;
                if (pr == 0) return -ETIMEDOUT;
            }
            return rx_eof(c);
        }
        if (r == -EINTR) {
            if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
            continue;
        }
        if (r == -EAGAIN || r == -EWOULDBLOCK) {
            int w = wait_fd(c, c->rfd, POLLIN, dl);
            if (w < 0) return w;
            continue;
        }
        return (int)r;
    }
}

/* Where the payload of the next packet goes: straight into the message being reassembled when
 * exactly one writer has one in progress (its next fragment most likely follows), else the
 * receive buffer. Returns that writer, or -1. */
static int rx_packet_dst(struct ipcp_fdchan *c, uint8_t **dst, size_t *room)
{
    *dst = c->rx;
    *room = c->rx_cap;
    int w = -1;
    for (uint32_t i = 0; i < c->max_writers; i++) {
        if (!c->ws[i].reasm_ready || !c->ws[i].reasm.active) continue;
        if (w >= 0) return -1;
        w = (int)i;
    }
    size_t left = 0;
    uint8_t *p = w >= 0 ? ipcp_reasm_next(&c->ws[w].reasm, &left) : NULL;
    if (p == NULL || left == 0) return -1;
    *dst = p;
    *room = left < c->rx_cap ? left : c->rx_cap;
    return w;
}

/* One packet = one frame: the header lands in pkt_hdr and the payload in place (a recvmsg with
 * two iovecs, three when the place is shorter than a packet may be: the rest spills into rx). */
static int rx_fill_packet(struct ipcp_fdchan *c, const struct ipcp_deadline *dl)
{
    struct ipcp_frame fr;
    for (;;) {
        uint8_t *dst;
        size_t room;
        int guess = rx_packet_dst(c, &dst, &room);
        struct iovec iov[3] = {{.iov_base = c->pkt_hdr, .iov_len = IPCP_FRAME_HDR_SIZE},
                               {.iov_base = dst, .iov_len = room},
                               {.iov_base = c->rx, .iov_len = c->rx_cap - room}};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = room < c->rx_cap ? 3 : 2};
        ssize_t r = c->io->recvmsg(c->io->ctx, c->rfd, &m, MSG_DONTWAIT);
        if (r > 0) {
            if (m.msg_flags & MSG_TRUNC) return rx_fail(c, -IPCP_E_TOOBIG);
            if ((size_t)r < IPCP_FRAME_HDR_SIZE) return rx_fail(c, -IPCP_E_TRUNCATED);
            size_t n = (size_t)r - IPCP_FRAME_HDR_SIZE;
            const uint8_t *pl = dst;
            if (n > room) { /* longer than the guess: gather it in rx */
                memmove(c->rx + room, c->rx, n - room);
                memcpy(c->rx, dst, room);
                pl = c->rx;
            }
            int rc = ipcp_frame_check(c->pkt_hdr, pl, n, c->max_msg,
                                      (c->flags & IPCP_FDCHAN_NO_PAYSUM) != 0, &fr);
            if (rc < 0) return rx_fail(c, rc);
            /* In place only as the next fragment of that writer's message. Anything else (a new
             * FIRST, another writer's frame) leaves the reassembly buffer first: feeding it may
             * reset or reallocate that buffer. */
            if (pl != c->rx &&
                (fr.hdr.writer != (uint32_t)guess || (fr.hdr.flags & IPCP_FRAME_F_FIRST))) {
                if (n) memcpy(c->rx, pl, n);
                fr.payload = c->rx;
            }
            int f = rx_frame(c, &fr);
            if (f == 1) return 0;
            if (f < 0) return rx_fail(c, f);
            continue;
        }
        if (r == 0 || r == -ECONNRESET) return rx_eof(c);
        if (r == -EINTR) {
            if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
            continue;
        }
        if (r == -EAGAIN || r == -EWOULDBLOCK) {
            int w = wait_fd(c, c->rfd, POLLIN, dl);
            if (w < 0) return w;
            continue;
        }
        return (int)r;
    }
}

ssize_t ipcp_fdchan_recv_zc(struct ipcp_fdchan *c, uint16_t *type, const void **msg, int timeout_ms)
{
    if (c->rfd < 0) return -EBADF;
    if (!c->pend) {
        if (c->rbroken) return c->rbroken == -IPCP_E_TRUNCATED ? c->rbroken : -IPCP_E_BROKEN;
        struct ipcp_deadline dl;
        ipcp__deadline_init(&dl, timeout_ms);
        int rc = c->kind == IPCP_FDCHAN_SEQPACKET ? rx_fill_packet(c, &dl) : rx_fill_stream(c, &dl);
        if (rc < 0) return rc;
    }
    if (c->pend_seqerr) {
        c->pend_seqerr = 0;
        return -IPCP_E_SEQUENCE;
    }
    c->pend = 0;
    if (type) *type = c->pend_type;
    *msg = c->pend_ptr;
    return (ssize_t)c->pend_len;
}

ssize_t ipcp_fdchan_recv(struct ipcp_fdchan *c, uint16_t *type, void *buf, size_t cap,
                         int timeout_ms)
{
    if (c->rfd < 0) return -EBADF;
    if (!c->pend || c->pend_seqerr) {
        const void *m;
        ssize_t n = ipcp_fdchan_recv_zc(c, type, &m, timeout_ms);
        if (n < 0) return n;
        c->pend = 1; /* not handed out yet: put it back until it is copied */
    }
    if (c->pend_len > cap) return -EMSGSIZE;
    if (c->pend_len) memcpy(buf, c->pend_ptr, c->pend_len);
    c->pend = 0;
    if (type) *type = c->pend_type;
    return (ssize_t)c->pend_len;
}

ssize_t ipcp_fdchan_pending_len(const struct ipcp_fdchan *c)
{
    return c->pend ? (ssize_t)c->pend_len : -ENOENT;
}

int ipcp_fdchan_close(struct ipcp_fdchan *c, int timeout_ms)
{
    if (c == NULL) return 0;
    int rc = c->out.active ? ipcp_fdchan_flush(c, timeout_ms) : 0;
    out_done(&c->out);
    if (c->rfd >= 0) {
        for (uint32_t i = 0; i < c->max_writers; i++)
            if (c->ws[i].reasm_ready) ipcp_reasm_fini(&c->ws[i].reasm);
        ipcp_frame_decoder_fini(&c->dec);
    }
    if (c->flags & IPCP_FDCHAN_OWN_FDS) {
        if (c->rfd >= 0) close(c->rfd);
        if (c->wfd >= 0 && c->wfd != c->rfd) close(c->wfd);
    }
    free(c->rx);
    free(c->tx);
    free(c->ws);
    free(c);
    return rc;
}

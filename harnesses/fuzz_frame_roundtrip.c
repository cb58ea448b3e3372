/* fuzz_frame_roundtrip.c - messages through fdchan (fdchan.h) over an in-memory transport whose
 * every syscall is a hook that the fuzzer fails at will: short reads and writes, EINTR, EAGAIN,
 * early poll returns. No byte goes through the kernel; the fds the channels are opened on only
 * tell fdchan what kind of fd it has (a pipe or a socket).
 *
 * Input: byte 0 (cfg) and byte 1 (frag/max_msg), then operations read from the front and the
 * fault schedule read from the back (each hook call takes one fault byte while there are any):
 *   cfg bits 0-2  transport: 0 stream over a pipe (writev), 1 stream over a socket (sendmsg),
 *                 2 several writers on one pipe (MULTIWRITER: frames <= PIPE_BUF, each written
 *                 atomically), 3 SOCK_SEQPACKET (one frame per packet), 4 FIFO
 *   cfg bits 3-4  writers in MULTIWRITER mode: 1 to 4 (ids 0, 1, 2, 63)
 *   cfg bit  5    ending: 0 flush everything and check a clean end (-EPIPE at EOF); 1 close the
 *                 writers with timeout 0 and cut the stream: every complete message is still
 *                 delivered, then -IPCP_E_TRUNCATED if a partial one is left, else -EPIPE
 *   byte 1        bits 0-1 max_msg 100, 5000, 70000, 262144; bits 2-3 SEQPACKET fragment size
 *                 16, 100, 1000 or the default; bit 4 every end without payload checksums
 *                 (IPCP_FDCHAN_NO_PAYSUM)
 *   operations    send (writer, length class, timeout 0 or long), a batch of 1-24 sends
 *                 (ipcp_fdchan_sendv), recv (copy, zero-copy, or with a buffer one byte too
 *                 small first), flush (timeout 0 or long), the reader closes (every write then
 *                 fails with EPIPE, poll says POLLERR)
 *   fault bytes   0-3 none, 4 short count (stream transports only: a write of <= PIPE_BUF on a
 *                 pipe and a packet are all or nothing, as in the kernel), 5 -EINTR, 6 -EAGAIN,
 *                 7 poll says -EINTR or reports a spurious readiness (poll never returns 0
 *                 before its timeout, so that is not injected)
 *
 * A wire tap parses what the writers put on the transport (frame.h's header fields) and keeps
 * the order in which messages become complete there. Checked:
 *   - send returns 0 (accepted: written, or its tail kept for the next send/flush) or
 *     -ETIMEDOUT with nothing of it written (then it never appears on the wire); a batch returns
 *     k: its first k messages count as k sends, the rest never appear on the wire; each writer's
 *     messages appear on the wire whole, once, in order, with consecutive sequence numbers;
 *   - recv with a long timeout while a complete message is on the wire returns exactly the next
 *     one in wire order (type, length, bytes); -EMSGSIZE with a small buffer leaves it queued
 *     (pending_len) for the next call; recv with timeout 0 may say -ETIMEDOUT, or return that
 *     same next message, never anything else;
 *   - once the reader is gone, send/flush/close report -EPIPE (or -ETIMEDOUT with timeout 0),
 *     never success for a message that was not written;
 *   - flush with a long timeout always completes; after the ending every accepted message was
 *     received, and the end of the stream is reported as promised (-EPIPE or TRUNCATED, sticky).
 * Work per input: 1 MiB of message bytes (64 KiB with SEQPACKET fragments under 1000 bytes),
 * 4096 faults, 2048 operations. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"
#include "ipcproof/frame.h"

#define MAX_OPS      2048
#define MAX_FAULTS   4096
#define MAX_BYTES    (1u << 20)
#define MAX_MSG_LEN  ((256u << 10) + 1)
#define MAX_WRITERS  4
#define LONG_MS      10000
#define MAX_TAPPED   4096
#define PATTERN_SIZE (MAX_MSG_LEN + 65536)
#define MAX_BATCH    24

enum { T_PIPE, T_SOCK, T_MULTI, T_SEQPACKET, T_FIFO, T_COUNT };

static const size_t max_choices[4] = {100, 5000, 70000, 262144};
static const size_t frag_choices[4] = {16, 100, 1000, 0};
static const uint32_t writer_ids[MAX_WRITERS] = {0, 1, 2, 63};

static uint8_t pattern[PATTERN_SIZE];

/* Payload of writer slot w's message number seq: a window of the pattern. */
static const uint8_t *payload_of(int w, uint64_t seq)
{
    return pattern + (size_t)((w * 7919u + seq * 104729u) % 65536u);
}

/* ---- the in-memory transport and its fault schedule ----------------------------------------- */

struct wire {
    uint8_t *buf; /* every byte ever written (bounded by MAX_BYTES + framing) */
    size_t len, cap;
    size_t rpos; /* bytes the reader has taken */
    size_t *pkt; /* SEQPACKET: end offset of each packet */
    size_t npkt, rpkt, cappkt;
    int packets;     /* SEQPACKET semantics */
    int atomic;      /* writes of <= PIPE_BUF bytes are all or nothing (pipes, FIFOs) */
    int eof;         /* every writer is gone */
    int reader_gone; /* the reader closed its end: writes fail with EPIPE */
    /* fault schedule: bytes from the back of the input */
    const uint8_t *fault;
    size_t nfault;
    unsigned faults_used;
    unsigned idle_polls; /* consecutive polls that found nothing to do */
};

/* The next fault: 0 none, 4 short, 5 EINTR, 6 EAGAIN, 7 poll: EINTR or spurious readiness. Also
 * yields a random byte. */
static int next_fault(struct wire *w, uint8_t *arg)
{
    *arg = 0;
    if (w->nfault == 0 || w->faults_used >= MAX_FAULTS) return 0;
    uint8_t b = w->fault[--w->nfault];
    w->faults_used++;
    *arg = (uint8_t)(b >> 3);
    int f = b & 7;
    return f < 4 ? 0 : f;
}

static void wire_append(struct wire *w, const struct iovec *iov, int cnt, size_t n)
{
    if (w->len + n > w->cap) {
        size_t ncap = w->cap ? w->cap : 65536;
        while (ncap < w->len + n)
            ncap *= 2;
        uint8_t *nb = realloc(w->buf, ncap);
        FZ_CHECK(nb != NULL, "out of memory for %zu wire bytes", ncap);
        w->buf = nb;
        w->cap = ncap;
    }
    size_t left = n;
    for (int i = 0; i < cnt && left > 0; i++) {
        size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
        if (k) memcpy(w->buf + w->len, iov[i].iov_base, k);
        w->len += k;
        left -= k;
    }
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t t = 0;
    for (int i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

/* A write of the iovecs: what a non-blocking pipe or socket may do with it. */
static ssize_t wire_write(struct wire *w, const struct iovec *iov, int cnt)
{
    FZ_CHECK(!w->eof, "a write after the writer was closed");
    if (w->reader_gone) return -EPIPE;
    size_t want = iov_total(iov, cnt);
    FZ_CHECK(want > 0, "a write of 0 bytes");
    uint8_t arg;
    int f = next_fault(w, &arg);
    if (f == 5) return -EINTR;
    if (f == 6) return -EAGAIN;
    size_t n = want;
    int all_or_nothing = w->packets || (w->atomic && want <= PIPE_BUF);
    if (f == 4 && !all_or_nothing && want > 1) n = 1 + arg % (want - 1);
    if (w->packets) {
        if (w->npkt == w->cappkt) {
            w->cappkt = w->cappkt ? 2 * w->cappkt : 256;
            w->pkt = realloc(w->pkt, w->cappkt * sizeof(*w->pkt));
            FZ_CHECK(w->pkt != NULL, "malloc");
        }
        wire_append(w, iov, cnt, n);
        w->pkt[w->npkt++] = w->len;
        return (ssize_t)n;
    }
    wire_append(w, iov, cnt, n);
    return (ssize_t)n;
}

static ssize_t io_read(void *ctx, int fd, void *buf, size_t n)
{
    struct wire *w = ctx;
    (void)fd;
    FZ_CHECK(!w->packets, "read() on a packet transport");
    FZ_CHECK(n > 0, "read of 0 bytes");
    uint8_t arg;
    int f = next_fault(w, &arg);
    if (f == 5) return -EINTR;
    if (f == 6) return -EAGAIN;
    size_t avail = w->len - w->rpos;
    if (avail == 0) return w->eof ? 0 : -EAGAIN;
    size_t k = n < avail ? n : avail;
    if (f == 4 && k > 1) k = 1 + arg % (k - 1);
    memcpy(buf, w->buf + w->rpos, k);
    w->rpos += k;
    w->idle_polls = 0;
    return (ssize_t)k;
}

static ssize_t io_writev(void *ctx, int fd, const struct iovec *iov, int iovcnt)
{
    (void)fd;
    return wire_write(ctx, iov, iovcnt);
}

static ssize_t io_sendmsg(void *ctx, int fd, const struct msghdr *msg, int flags)
{
    (void)fd;
    FZ_CHECK(flags & MSG_NOSIGNAL, "sendmsg without MSG_NOSIGNAL could raise SIGPIPE");
    return wire_write(ctx, msg->msg_iov, (int)msg->msg_iovlen);
}

static ssize_t io_recvmsg(void *ctx, int fd, struct msghdr *msg, int flags)
{
    struct wire *w = ctx;
    (void)fd;
    (void)flags;
    FZ_CHECK(w->packets, "recvmsg() on a stream transport");
    uint8_t arg;
    int f = next_fault(w, &arg);
    if (f == 5) return -EINTR;
    if (f == 6) return -EAGAIN;
    msg->msg_flags = 0;
    if (w->rpkt == w->npkt) return w->eof ? 0 : -EAGAIN;
    size_t start = w->rpkt ? w->pkt[w->rpkt - 1] : 0, plen = w->pkt[w->rpkt] - start;
    w->rpkt++;
    w->rpos = start + plen;
    size_t room = iov_total(msg->msg_iov, (int)msg->msg_iovlen), k = plen < room ? plen : room;
    size_t done = 0;
    for (size_t i = 0; i < msg->msg_iovlen && done < k; i++) {
        size_t c = msg->msg_iov[i].iov_len < k - done ? msg->msg_iov[i].iov_len : k - done;
        memcpy(msg->msg_iov[i].iov_base, w->buf + start + done, c);
        done += c;
    }
    if (k < plen) msg->msg_flags |= MSG_TRUNC;
    w->idle_polls = 0;
    return (ssize_t)k;
}

static int io_poll(void *ctx, struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    struct wire *w = ctx;
    FZ_CHECK(nfds == 1, "poll of %lu fds", (unsigned long)nfds);
    FZ_CHECK(timeout_ms != 0, "poll with a zero timeout: the deadline had passed");
    uint8_t arg;
    int f = next_fault(w, &arg);
    if (f == 5 || (f == 7 && (arg & 1))) return -EINTR;
    if (f == 7) { /* a spurious wake-up: "ready", but the next call says EAGAIN again */
        fds[0].revents = fds[0].events & (POLLIN | POLLOUT);
        return 1;
    }
    fds[0].revents = 0;
    if (fds[0].events & POLLOUT) {
        /* The in-memory transport has room for everything, until the reader is gone. */
        fds[0].revents = w->reader_gone ? POLLERR : POLLOUT;
        return 1;
    }
    int readable = w->packets ? w->rpkt < w->npkt : w->rpos < w->len;
    if (readable) fds[0].revents = POLLIN;
    if (w->eof) fds[0].revents |= POLLHUP;
    if (fds[0].revents) return 1;
    /* Nothing to read and the writer is open: the real poll would sleep. The harness only waits
     * with a long timeout when a whole message is on the wire, so a reader that keeps polling
     * here has lost a message it was given. */
    FZ_CHECK(++w->idle_polls < 1000, "the reader waits for input although a complete message "
                                     "was written (it was lost)");
    return 0;
}

/* ---- the wire tap: which messages are complete on the wire, in which order ------------------ */

struct sent_msg {
    uint16_t type;
    size_t len;
};

struct writer {
    struct ipcp_fdchan *ch;
    uint32_t id;
    struct sent_msg *sent; /* accepted messages, by sequence number */
    size_t nsent, capsent;
    uint64_t tap_next; /* next sequence number expected on the wire */
    int tap_active;    /* fragments of a message are on the wire, the LAST not yet */
    size_t tap_have;   /* its payload bytes so far */
    int closed;
};

struct tapped {
    int w;        /* writer slot */
    uint64_t seq; /* its sequence number */
};

struct tap {
    size_t off; /* next frame header on the wire */
    struct tapped done[MAX_TAPPED];
    size_t ndone, nrecv; /* complete on the wire / received */
};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int slot_of(const struct writer *ws, int nw, uint32_t id)
{
    for (int i = 0; i < nw; i++)
        if (ws[i].id == id) return i;
    return -1;
}

/* Walks the frames newly complete on the wire. Each must be the next piece of its writer's next
 * accepted message, with that message's bytes. */
FZ_NO_COVERAGE static void tap_update(struct tap *t, const struct wire *w, struct writer *ws,
                                      int nw)
{
    while (w->len - t->off >= IPCP_FRAME_HDR_SIZE) {
        const uint8_t *h = w->buf + t->off;
        uint32_t len = rd32(h + 16), total = rd32(h + 24);
        if (w->len - t->off - IPCP_FRAME_HDR_SIZE < len) return;
        FZ_CHECK(rd32(h) == IPCP_FRAME_MAGIC, "wire offset %zu: no frame magic", t->off);
        uint8_t flags = h[5];
        uint16_t type = (uint16_t)(h[6] | h[7] << 8);
        uint64_t seq = (uint64_t)rd32(h + 8) | (uint64_t)rd32(h + 12) << 32;
        int s = slot_of(ws, nw, rd32(h + 20));
        FZ_CHECK(s >= 0, "wire offset %zu: unknown writer id %u", t->off, rd32(h + 20));
        struct writer *wr = &ws[s];
        FZ_CHECK(seq == wr->tap_next, "writer %u: seq %llu on the wire, want %llu", wr->id,
                 (unsigned long long)seq, (unsigned long long)wr->tap_next);
        FZ_CHECK(seq < wr->nsent, "writer %u: message %llu on the wire was never accepted", wr->id,
                 (unsigned long long)seq);
        const struct sent_msg *m = &wr->sent[seq];
        FZ_CHECK(type == m->type && total == m->len, "writer %u msg %llu: type/total differ",
                 wr->id, (unsigned long long)seq);
        if (flags & IPCP_FRAME_F_FIRST) {
            FZ_CHECK(!wr->tap_active, "writer %u: FIRST inside a message", wr->id);
            wr->tap_active = 1;
            wr->tap_have = 0;
        }
        FZ_CHECK(wr->tap_active, "writer %u: a fragment without FIRST", wr->id);
        FZ_CHECK(len <= m->len - wr->tap_have &&
                     memcmp(h + IPCP_FRAME_HDR_SIZE, payload_of(s, seq) + wr->tap_have, len) == 0,
                 "writer %u msg %llu: fragment bytes differ from the message", wr->id,
                 (unsigned long long)seq);
        wr->tap_have += len;
        if (flags & IPCP_FRAME_F_LAST) {
            FZ_CHECK(wr->tap_have == m->len, "writer %u: LAST with %zu of %zu bytes", wr->id,
                     wr->tap_have, m->len);
            wr->tap_active = 0;
            wr->tap_next++;
            FZ_CHECK(t->ndone < MAX_TAPPED, "too many messages");
            t->done[t->ndone].w = s;
            t->done[t->ndone].seq = seq;
            t->ndone++;
        }
        t->off += IPCP_FRAME_HDR_SIZE + len;
    }
}

/* Bytes or fragments of an unfinished message are on the wire. */
static int tap_partial(const struct tap *t, const struct wire *w, const struct writer *ws, int nw)
{
    if (t->off != w->len) return 1;
    for (int i = 0; i < nw; i++)
        if (ws[i].tap_active) return 1;
    return 0;
}

/* ---- the run -------------------------------------------------------------------------------- */

struct run {
    struct wire wire;
    struct tap tap;
    struct writer ws[MAX_WRITERS];
    int nw;
    struct ipcp_fdchan *rx;
    size_t max_msg;
    size_t bytes;
    uint8_t *rbuf;
};

static int fds_ready;
static int pipe_fd[2], sock_fd[2], seq_fd[2];

static void init_once(void)
{
    if (fds_ready) return;
    /* Pipes with SIGPIPE ignored: fdchan then writes without its signal-mask dance. */
    signal(SIGPIPE, SIG_IGN);
    FZ_CHECK(pipe(pipe_fd) == 0, "pipe");
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sock_fd) == 0, "socketpair stream");
    FZ_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seq_fd) == 0, "socketpair seqpacket");
    fz_fill(pattern, sizeof(pattern), 0xf4a3e);
    fds_ready = 1;
}

/* Receives the next message and checks it against the tap. long_wait: a complete message is
 * on the wire, so it must come; else (timeout 0) -ETIMEDOUT is also right. */
FZ_NO_COVERAGE static void do_recv(struct run *r, int how, int long_wait)
{
    struct tap *t = &r->tap;
    int timeout = long_wait ? LONG_MS : 0;
    const struct tapped *next = t->nrecv < t->ndone ? &t->done[t->nrecv] : NULL;
    const struct sent_msg *m = next ? &r->ws[next->w].sent[next->seq] : NULL;
    uint16_t type = 0;
    ssize_t n;
    const uint8_t *got;
    if (how == 1) { /* zero-copy */
        const void *p = NULL;
        n = ipcp_fdchan_recv_zc(r->rx, &type, &p, timeout);
        got = p;
    } else {
        size_t cap = MAX_MSG_LEN;
        if (how == 2 && m != NULL && m->len > 0) { /* one byte too small first */
            n = ipcp_fdchan_recv(r->rx, &type, r->rbuf, m->len - 1, timeout);
            if (n != -ETIMEDOUT) {
                FZ_CHECK_RC(n, -EMSGSIZE, "recv into a buffer one byte short");
                FZ_CHECK(ipcp_fdchan_pending_len(r->rx) == (ssize_t)m->len,
                         "pending_len %zd after -EMSGSIZE, want %zu",
                         ipcp_fdchan_pending_len(r->rx), m->len);
                timeout = 0; /* it is queued now: no wait */
            }
        }
        n = ipcp_fdchan_recv(r->rx, &type, r->rbuf, cap, timeout);
        got = r->rbuf;
    }
    if (n == -ETIMEDOUT && !long_wait) return;
    FZ_CHECK(m != NULL, "recv returned %zd (%s) with no complete message on the wire", n,
             n < 0 ? ipcp_errname((int)n) : "a message");
    FZ_CHECK(n >= 0, "recv of writer %u's message %llu returned %zd (%s)", r->ws[next->w].id,
             (unsigned long long)next->seq, n, ipcp_errname((int)n));
    FZ_CHECK((size_t)n == m->len && type == m->type,
             "received len %zd type %#x, want writer %u msg %llu: len %zu type %#x", n, type,
             r->ws[next->w].id, (unsigned long long)next->seq, m->len, m->type);
    FZ_CHECK(n == 0 || memcmp(got, payload_of(next->w, next->seq), (size_t)n) == 0,
             "received bytes differ (writer %u msg %llu)", r->ws[next->w].id,
             (unsigned long long)next->seq);
    FZ_CHECK(ipcp_fdchan_pending_len(r->rx) == -ENOENT, "a message still pending after recv");
    t->nrecv++;
}

FZ_NO_COVERAGE static size_t pick_len(struct fz_in *in, size_t max_msg, uint8_t sel)
{
    size_t len;
    switch (sel & 7) {
    case 0:
        len = 0;
        break;
    case 1:
        len = fz_u8(in);
        break;
    case 2:
        len = PIPE_BUF - IPCP_FRAME_HDR_SIZE - 1 + fz_u8(in) % 3; /* one fragment, give or take */
        break;
    case 3:
        len = 16384 + fz_u16(in) % 16384; /* the reader's direct read into the payload */
        break;
    case 4:
        len = max_msg;
        break;
    case 5:
        len = max_msg + 1; /* refused: -IPCP_E_TOOBIG */
        break;
    default:
        len = fz_u16(in) % 5000;
        break;
    }
    return len;
}

static void record_sent(struct run *r, struct writer *w, uint16_t type, size_t len)
{
    if (w->nsent == w->capsent) {
        w->capsent = w->capsent ? 2 * w->capsent : 16;
        w->sent = realloc(w->sent, w->capsent * sizeof(*w->sent));
        FZ_CHECK(w->sent != NULL, "malloc");
    }
    w->sent[w->nsent].type = type;
    w->sent[w->nsent].len = len;
    w->nsent++;
    r->bytes += len;
}

/* A batch of 1..MAX_BATCH messages through ipcp_fdchan_sendv: refused whole when one is too
 * big; else k accepted (all of them with a long timeout), recorded as k sends. The tap then
 * checks that the rest never shows on the wire and that sequence numbers run on without a gap. */
FZ_NO_COVERAGE static void do_sendv(struct run *r, struct writer *w, struct fz_in *in, int long_to,
                                    size_t budget)
{
    struct ipcp_fdchan_msg m[MAX_BATCH];
    int slot = (int)(w - r->ws), toobig = 0;
    size_t n = 1 + fz_u8(in) % MAX_BATCH, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = pick_len(in, r->max_msg, fz_u8(in));
        if (len > MAX_MSG_LEN || r->bytes + bytes + len > budget) {
            n = i;
            break;
        }
        uint64_t seq = w->nsent + i;
        m[i] = (struct ipcp_fdchan_msg){.data = payload_of(slot, seq),
                                        .len = len,
                                        .type = (uint16_t)(seq * 31u + (unsigned)slot)};
        bytes += len;
        toobig |= len > r->max_msg;
    }
    if (n == 0) return;
    size_t before = r->wire.len;
    ssize_t rc = ipcp_fdchan_sendv(w->ch, m, n, long_to ? LONG_MS : 0);
    if (toobig) {
        if (!(r->wire.reader_gone && rc == -EPIPE))
            FZ_CHECK_RC(rc, -IPCP_E_TOOBIG, "sendv with a message above max_msg");
        FZ_CHECK(r->wire.len == before, "a refused batch wrote bytes");
        return;
    }
    if (r->wire.reader_gone) {
        if (!(rc == -ETIMEDOUT && !long_to))
            FZ_CHECK_RC(rc, -EPIPE, "sendv after the reader closed");
        return;
    }
    if (rc == -ETIMEDOUT && !long_to) return; /* none accepted: none of them on the wire */
    FZ_CHECK(rc > 0 && (size_t)rc <= n && (!long_to || (size_t)rc == n),
             "sendv of %zu messages (timeout %s) returned %zd (%s)", n, long_to ? "long" : "0", rc,
             rc < 0 ? ipcp_errname((int)rc) : "accepted");
    for (ssize_t i = 0; i < rc; i++)
        record_sent(r, w, m[i].type, m[i].len);
}

FZ_NO_COVERAGE int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    init_once();
    static struct run r;
    /* The wire and receive buffers live across inputs: large fresh allocations per input cost
     * page faults, not coverage. */
    uint8_t *keep_buf = r.wire.buf, *keep_rbuf = r.rbuf;
    size_t keep_cap = r.wire.cap, keep_cappkt = r.wire.cappkt;
    size_t *keep_pkt = r.wire.pkt;
    memset(&r, 0, sizeof(r));
    r.wire.buf = keep_buf;
    r.wire.cap = keep_cap;
    r.wire.pkt = keep_pkt;
    r.wire.cappkt = keep_cappkt;
    r.rbuf = keep_rbuf;
    struct fz_in in = fz_in_make(data + 2, size - 2);
    int transport = (data[0] & 7) % T_COUNT;
    int nw = transport == T_MULTI ? 1 + ((data[0] >> 3) & 3) : 1;
    int truncate_end = (data[0] >> 5) & 1;
    r.max_msg = max_choices[data[1] & 3];
    r.nw = nw;
    /* Faults come from the back half of the input's remainder, operations from the front. */
    size_t nf = fz_left(&in) / 2;
    r.wire.fault = in.p + (fz_left(&in) - nf);
    r.wire.nfault = nf;
    in.n -= nf;
    r.wire.packets = transport == T_SEQPACKET;
    r.wire.atomic = transport == T_PIPE || transport == T_MULTI || transport == T_FIFO;
    /* Tiny SEQPACKET fragments make a frame per 16 bytes: fewer bytes then. */
    size_t budget = transport == T_SEQPACKET && frag_choices[(data[1] >> 2) & 3] != 0 &&
                            frag_choices[(data[1] >> 2) & 3] < 1000
                        ? MAX_BYTES / 16
                        : MAX_BYTES;
    if (r.rbuf == NULL) r.rbuf = malloc(MAX_MSG_LEN + 1);
    FZ_CHECK(r.rbuf != NULL, "malloc");

    struct ipcp_io_ops io = {.read = io_read,
                             .writev = io_writev,
                             .recvmsg = io_recvmsg,
                             .sendmsg = io_sendmsg,
                             .poll = io_poll,
                             .ctx = &r.wire};
    int rfd, wfd;
    enum ipcp_fdchan_kind kind = IPCP_FDCHAN_STREAM;
    switch (transport) {
    case T_SOCK:
        rfd = sock_fd[0];
        wfd = sock_fd[1];
        break;
    case T_SEQPACKET:
        rfd = seq_fd[0];
        wfd = seq_fd[1];
        kind = IPCP_FDCHAN_SEQPACKET;
        break;
    case T_FIFO:
        kind = IPCP_FDCHAN_FIFO;
        /* fall through */
    default:
        rfd = pipe_fd[0];
        wfd = pipe_fd[1];
        break;
    }
    struct ipcp_fdchan_cfg cfg = {.kind = kind,
                                  .flags = (transport == T_MULTI ? IPCP_FDCHAN_MULTIWRITER : 0) |
                                           (data[1] & 0x10 ? IPCP_FDCHAN_NO_PAYSUM : 0),
                                  .max_msg = r.max_msg,
                                  .frag = frag_choices[(data[1] >> 2) & 3],
                                  .io = &io};
    FZ_CHECK_RC(ipcp_fdchan_open(&r.rx, rfd, -1, &cfg), 0, "open the reader");
    for (int i = 0; i < nw; i++) {
        r.ws[i].id = transport == T_MULTI ? writer_ids[i] : 0;
        cfg.writer_id = r.ws[i].id;
        FZ_CHECK_RC(ipcp_fdchan_open(&r.ws[i].ch, -1, wfd, &cfg), 0, "open a writer");
    }

    for (unsigned op = 0; op < MAX_OPS && fz_left(&in) > 0; op++) {
        uint8_t o = fz_u8(&in);
        struct writer *w = &r.ws[(o >> 3) % nw];
        int slot = (int)(w - r.ws);
        int long_to = (o >> 5) & 1;
        switch (o & 7) {
        case 0:
        case 1:
        case 2: { /* send; op 2 with bit 6: a batch */
            if ((o & 7) == 2 && (o & 0x40)) {
                do_sendv(&r, w, &in, long_to, budget);
                break;
            }
            size_t len = pick_len(&in, r.max_msg, fz_u8(&in));
            if (len > MAX_MSG_LEN || r.bytes + len > budget) break;
            uint16_t type = (uint16_t)(w->nsent * 31u + (unsigned)slot);
            size_t before = r.wire.len;
            int rc = ipcp_fdchan_send(w->ch, type, payload_of(slot, w->nsent), len,
                                      long_to ? LONG_MS : 0);
            if (len > r.max_msg) {
                /* (A channel already broken by EPIPE may say so first.) */
                if (!(r.wire.reader_gone && rc == -EPIPE))
                    FZ_CHECK_RC(rc, -IPCP_E_TOOBIG, "send above max_msg");
                FZ_CHECK(r.wire.len == before, "a refused message wrote bytes");
                break;
            }
            if (r.wire.reader_gone) {
                if (!(rc == -ETIMEDOUT && !long_to))
                    FZ_CHECK_RC(rc, -EPIPE, "send after the reader closed");
                break;
            }
            if (rc == -ETIMEDOUT && !long_to) {
                /* Nothing of this message went out (an earlier tail may have progressed). */
                break;
            }
            FZ_CHECK_RC(rc, 0, long_to ? "send with a long timeout" : "send with timeout 0");
            record_sent(&r, w, type, len);
            break;
        }
        case 3:
        case 4:
        case 5: /* recv: copy, zero-copy, one byte short first */
            if (r.wire.reader_gone) break;
            tap_update(&r.tap, &r.wire, r.ws, nw);
            do_recv(&r, (o & 7) - 3, r.tap.nrecv < r.tap.ndone && long_to);
            break;
        default: { /* flush; op 7 with bit 6: the reader closes its end */
            if ((o & 7) == 7 && (o & 0x40)) {
                r.wire.reader_gone = 1;
                break;
            }
            int rc = ipcp_fdchan_flush(w->ch, long_to ? LONG_MS : 0);
            if (rc == -ETIMEDOUT && !long_to) break;
            if (r.wire.reader_gone && rc == -EPIPE) break;
            FZ_CHECK_RC(rc, 0, "flush");
            break;
        }
        }
        tap_update(&r.tap, &r.wire, r.ws, nw);
    }

    /* The ending. */
    if (r.wire.reader_gone) { /* nothing more to deliver: the writers see EPIPE or nothing */
        for (int i = 0; i < nw; i++) {
            int rc = ipcp_fdchan_close(r.ws[i].ch, LONG_MS);
            if (rc != 0) FZ_CHECK_RC(rc, -EPIPE, "close a writer after the reader left");
            free(r.ws[i].sent);
        }
        FZ_CHECK_RC(ipcp_fdchan_close(r.rx, 0), 0, "close the reader");
        return 0;
    }
    if (!truncate_end) {
        for (int i = 0; i < nw; i++)
            FZ_CHECK_RC(ipcp_fdchan_flush(r.ws[i].ch, LONG_MS), 0, "final flush");
        tap_update(&r.tap, &r.wire, r.ws, nw);
        for (int i = 0; i < nw; i++)
            FZ_CHECK(r.ws[i].tap_next == r.ws[i].nsent,
                     "writer %u: %llu of %zu accepted messages on the wire after flush", r.ws[i].id,
                     (unsigned long long)r.ws[i].tap_next, r.ws[i].nsent);
        FZ_CHECK(!tap_partial(&r.tap, &r.wire, r.ws, nw), "a partial frame after flush");
    }
    for (int i = 0; i < nw; i++) {
        int rc = ipcp_fdchan_close(r.ws[i].ch, truncate_end ? 0 : LONG_MS);
        if (!(truncate_end && rc == -ETIMEDOUT)) FZ_CHECK_RC(rc, 0, "close a writer");
        r.ws[i].ch = NULL;
    }
    tap_update(&r.tap, &r.wire, r.ws, nw);
    int partial = tap_partial(&r.tap, &r.wire, r.ws, nw);
    r.wire.eof = 1;
    while (r.tap.nrecv < r.tap.ndone)
        do_recv(&r, (int)(r.tap.nrecv % 3), 1);
    int want = partial ? -IPCP_E_TRUNCATED : -EPIPE;
    uint16_t type;
    FZ_CHECK_RC(ipcp_fdchan_recv(r.rx, &type, r.rbuf, MAX_MSG_LEN, LONG_MS), want, "end of stream");
    if (partial)
        FZ_CHECK_RC(ipcp_fdchan_recv(r.rx, &type, r.rbuf, MAX_MSG_LEN, LONG_MS), want,
                    "end of stream, again");
    FZ_CHECK_RC(ipcp_fdchan_close(r.rx, 0), 0, "close the reader");
    for (int i = 0; i < nw; i++)
        free(r.ws[i].sent);
    return 0;
}

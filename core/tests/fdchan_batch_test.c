/* fdchan_batch_test.c - ipcp_fdchan_sendv: how many syscalls a batch takes on each transport
 * (one write for small frames on a stream, one packet per frame on seqpacket, whole frames of at
 * most PIPE_BUF bytes per write with several writers), the exact count accepted when the deadline
 * passes mid-batch (a real pipe, and an in-memory transport with short writes, EINTR and EAGAIN),
 * nothing lost or repeated and sequence numbers continuous at the receiver, the checks that
 * refuse a whole batch, and a reader gone in the middle of a batch. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"
#include "ipcproof/frame.h"
#include "testutil.h"

#define T_MS  20000
#define FRAME (IPCP_FRAME_HDR_SIZE + 64) /* a 64-byte message on the wire */

static uint64_t seed_of(uint64_t i)
{
    return i * 0x9e3779b1u + 7;
}

static size_t get_len(const uint8_t *h)
{
    return (size_t)h[16] | (size_t)h[17] << 8 | (size_t)h[18] << 16 | (size_t)h[19] << 24;
}

static uint64_t get_seq(const uint8_t *h)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | h[8 + i];
    return v;
}

/* n messages of len bytes (message i carries seed_of(first + i)) in one slab. */
static struct ipcp_fdchan_msg *make_msgs(uint8_t *slab, size_t n, size_t len, uint64_t first)
{
    struct ipcp_fdchan_msg *m = calloc(n, sizeof(*m));
    assert_non_null(m);
    for (size_t i = 0; i < n; i++) {
        tu_fill(slab + i * len, len, seed_of(first + i));
        m[i] = (struct ipcp_fdchan_msg){.data = slab + i * len, .len = len, .type = (uint16_t)i};
    }
    return m;
}

/* Receives messages first..first+n-1 of len bytes, each exactly once and in order. */
static void expect_msgs(struct ipcp_fdchan *r, size_t n, size_t len, uint64_t first)
{
    uint8_t *in = malloc(len + 1);
    for (size_t i = 0; i < n; i++) {
        ssize_t got = ipcp_fdchan_recv(r, NULL, in, len + 1, T_MS);
        if (got != (ssize_t)len) fail_msg("message %zu: %zd", i, got);
        assert_true(tu_check(in, len, seed_of(first + i)));
    }
    assert_int_equal(ipcp_fdchan_recv(r, NULL, in, len + 1, 0), -ETIMEDOUT); /* nothing more */
    free(in);
}

/* ---- the real syscalls, counted, with the frame boundaries of every write checked ---------- */

struct counter {
    int writes;
    size_t max_write;
    int cut; /* writes that ended inside a frame */
    uint8_t hdr[IPCP_FRAME_HDR_SIZE];
    size_t hdr_have;     /* header bytes of the current frame seen */
    size_t payload_left; /* its payload bytes still to come */
};

static void count_bytes(struct counter *k, const struct iovec *iov, size_t cnt, size_t n)
{
    k->writes++;
    if (n > k->max_write) k->max_write = n;
    for (size_t i = 0; i < cnt && n > 0; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t l = iov[i].iov_len < n ? iov[i].iov_len : n;
        n -= l;
        while (l > 0) {
            if (k->payload_left > 0) {
                size_t t = l < k->payload_left ? l : k->payload_left;
                k->payload_left -= t;
                p += t;
                l -= t;
                continue;
            }
            k->hdr[k->hdr_have++] = *p++;
            l--;
            if (k->hdr_have == IPCP_FRAME_HDR_SIZE) {
                k->payload_left = get_len(k->hdr);
                k->hdr_have = 0;
            }
        }
    }
    if (k->hdr_have > 0 || k->payload_left > 0) k->cut++;
}

static ssize_t count_writev(void *ctx, int fd, const struct iovec *iov, int cnt)
{
    ssize_t r = ipcp_io_default()->writev(ipcp_io_default()->ctx, fd, iov, cnt);
    if (r > 0) count_bytes(ctx, iov, (size_t)cnt, (size_t)r);
    return r;
}

static ssize_t count_sendmsg(void *ctx, int fd, const struct msghdr *m, int flags)
{
    ssize_t r = ipcp_io_default()->sendmsg(ipcp_io_default()->ctx, fd, m, flags);
    if (r > 0) count_bytes(ctx, m->msg_iov, m->msg_iovlen, (size_t)r);
    return r;
}

static struct ipcp_fdchan *counted_writer(struct counter *k, struct ipcp_io_ops *io,
                                          const struct tu_xpair *x, unsigned flags)
{
    *k = (struct counter){0};
    *io = tu_io_real(k);
    io->writev = count_writev;
    io->sendmsg = count_sendmsg;
    struct ipcp_fdchan_cfg cfg = {.kind = x->kind, .flags = flags, .io = io};
    struct ipcp_fdchan *w;
    assert_int_equal(ipcp_fdchan_open(&w, -1, x->wfd, &cfg), 0);
    return w;
}

static struct ipcp_fdchan *reader(const struct tu_xpair *x, unsigned flags)
{
    struct ipcp_fdchan_cfg cfg = {.kind = x->kind, .flags = flags};
    struct ipcp_fdchan *r;
    assert_int_equal(ipcp_fdchan_open(&r, x->rfd, -1, &cfg), 0);
    return r;
}

/* 100 small messages: one write on a stream, 100 whole-frame packets on seqpacket; 1000 on a
 * pipe: two writes (64 KiB of frames, then the rest). */
static void test_syscalls_per_batch(void **s)
{
    (void)s;
    uint8_t *slab = malloc(1000 * 64);
    for (int xk = TU_PIPE; xk < TU_XKINDS; xk++) {
        struct tu_xpair x;
        tu_xpair_make((enum tu_xkind)xk, &x);
        struct counter k;
        struct ipcp_io_ops io;
        struct ipcp_fdchan *w = counted_writer(&k, &io, &x, 0), *r = reader(&x, 0);
        struct ipcp_fdchan_msg *m = make_msgs(slab, 100, 64, 0);
        assert_int_equal(ipcp_fdchan_sendv(w, m, 100, T_MS), 100);
        assert_int_equal(k.writes, xk == TU_SEQPACKET ? 100 : 1);
        assert_int_equal(k.cut, 0);
        expect_msgs(r, 100, 64, 0);
        free(m);
        if (xk == TU_PIPE) {
            k.writes = 0;
            m = make_msgs(slab, 1000, 64, 100);
            assert_int_equal(ipcp_fdchan_sendv(w, m, 1000, T_MS), 1000);
            assert_int_equal(k.writes, 2);
            assert_int_equal(k.max_write, (65536 / FRAME) * FRAME);
            expect_msgs(r, 1000, 64, 100);
            free(m);
        }
        assert_int_equal(ipcp_fdchan_close(w, 0), 0);
        assert_int_equal(ipcp_fdchan_close(r, 0), 0);
        tu_xpair_drop(&x);
    }
    free(slab);
}

/* Several writers: every write holds whole frames and at most PIPE_BUF bytes, so that no other
 * writer can come between the bytes of a frame; small messages still share writes. */
static void test_multiwriter_writes_atomic(void **s)
{
    (void)s;
    struct tu_xpair x;
    tu_xpair_make(TU_PIPE, &x);
    struct counter k;
    struct ipcp_io_ops io;
    struct ipcp_fdchan *w = counted_writer(&k, &io, &x, IPCP_FDCHAN_MULTIWRITER);
    struct ipcp_fdchan *r = reader(&x, IPCP_FDCHAN_MULTIWRITER);
    uint8_t *slab = malloc(50 * 64);
    struct ipcp_fdchan_msg *m = make_msgs(slab, 50, 64, 0);
    assert_int_equal(ipcp_fdchan_sendv(w, m, 50, T_MS), 50);
    assert_int_equal(k.writes, 2); /* 39 frames of 104 bytes fit in PIPE_BUF */
    expect_msgs(r, 50, 64, 0);
    free(m);
    /* Mixed sizes: one-write frames, fragmented messages, empty ones. */
    static const size_t sizes[] = {1, PIPE_BUF - 40, PIPE_BUF - 39, 10000, 0, 64, 3000, 3000};
    uint8_t *big = malloc(IPCP_ARRAY_SIZE(sizes) * 10000);
    struct ipcp_fdchan_msg mm[IPCP_ARRAY_SIZE(sizes)];
    size_t frames = 0;
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(sizes); i++) {
        tu_fill(big + i * 10000, sizes[i], seed_of(100 + i));
        mm[i] = (struct ipcp_fdchan_msg){.data = big + i * 10000, .len = sizes[i], .type = 1};
        frames += sizes[i] <= PIPE_BUF - 40 ? 1 : (sizes[i] + PIPE_BUF - 41) / (PIPE_BUF - 40);
    }
    k.writes = 0;
    assert_int_equal(ipcp_fdchan_sendv(w, mm, IPCP_ARRAY_SIZE(sizes), T_MS),
                     IPCP_ARRAY_SIZE(sizes));
    assert_int_equal(k.cut, 0);
    assert_true(k.max_write <= PIPE_BUF);
    assert_true(k.writes < (int)frames); /* some frames shared a write */
    uint8_t in[10000];
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(sizes); i++) {
        assert_int_equal(ipcp_fdchan_recv(r, NULL, in, sizeof(in), T_MS), (ssize_t)sizes[i]);
        assert_true(tu_check(in, sizes[i], seed_of(100 + i)));
    }
    free(big);
    free(slab);
    ipcp_fdchan_close(w, 0);
    ipcp_fdchan_close(r, 0);
    tu_xpair_drop(&x);
}

/* ---- the deadline in the middle of a batch ------------------------------------------------- */

/* A one-page pipe nobody reads: the batch stops when it is full. Exactly the messages with a
 * byte in the pipe are accepted (the last one maybe in part, its rest kept); the others come
 * again in the next batch with the next sequence numbers. */
static void test_deadline_mid_batch_pipe(void **s)
{
    (void)s;
    struct tu_xpair x;
    tu_xpair_make(TU_PIPE, &x);
    assert_true(fcntl(x.wfd, F_SETPIPE_SZ, 4096) >= 0);
    struct ipcp_fdchan *r = reader(&x, 0);
    struct ipcp_fdchan_cfg cfg = {.kind = x.kind};
    struct ipcp_fdchan *w;
    assert_int_equal(ipcp_fdchan_open(&w, -1, x.wfd, &cfg), 0);
    enum { N = 200 };
    uint8_t *slab = malloc(N * 64);
    struct ipcp_fdchan_msg *m = make_msgs(slab, N, 64, 0);
    ssize_t k = ipcp_fdchan_sendv(w, m, N, 50);
    int inpipe = 0;
    assert_int_equal(ioctl(x.rfd, FIONREAD, &inpipe), 0);
    assert_true(k > 0 && k < N);
    assert_int_equal(k, (inpipe + FRAME - 1) / FRAME);
    /* The caller may reuse its buffers at once: a kept rest was copied. */
    memset(slab, 0xa5, N * 64);
    /* Still full: nothing more is accepted, not even a tail. */
    assert_int_equal(ipcp_fdchan_sendv(w, m + k, (size_t)(N - k), 0), -ETIMEDOUT);
    int again = 0;
    assert_int_equal(ioctl(x.rfd, FIONREAD, &again), 0);
    assert_int_equal(again, inpipe);
    /* Drain and send the rest in turns. */
    free(m);
    m = make_msgs(slab, N, 64, 0);
    uint8_t in[64];
    size_t sent = (size_t)k, got = 0;
    while (got < N) {
        if (sent < N) {
            ssize_t n = ipcp_fdchan_sendv(w, m + sent, N - sent, 0);
            assert_true(n == -ETIMEDOUT || (n > 0 && (size_t)n <= N - sent));
            if (n > 0) sent += (size_t)n;
        }
        ssize_t n;
        while ((n = ipcp_fdchan_recv(r, NULL, in, sizeof(in), 0)) == 64) {
            assert_true(got < sent);
            assert_true(tu_check(in, 64, seed_of(got)));
            got++;
        }
        assert_int_equal(n, -ETIMEDOUT); /* never -IPCP_E_SEQUENCE: the numbers run on */
    }
    assert_int_equal(ipcp_fdchan_flush(w, 0), 0);
    assert_int_equal(ipcp_fdchan_recv(r, NULL, in, sizeof(in), 0), -ETIMEDOUT);
    free(m);
    free(slab);
    ipcp_fdchan_close(w, 0);
    ipcp_fdchan_close(r, 0);
    tu_xpair_drop(&x);
}

/* An in-memory transport holding at most `room` bytes in flight, with short writes, EINTR and
 * EAGAIN at random; every byte written is kept in `wire` to check what went out. */
struct mem {
    uint8_t *wire;
    size_t cap, head, tail; /* [head, tail) in flight */
    size_t room;
    size_t epipe_at; /* the reader is gone after this many bytes (0: never) */
    uint64_t rng;
    int faults;
    uint64_t shorts, eintr, eagain;
};

static ssize_t mem_writev(void *ctx, int fd, const struct iovec *iov, int cnt)
{
    (void)fd;
    struct mem *f = ctx;
    if (f->epipe_at && f->tail >= f->epipe_at) return -EPIPE;
    uint64_t d = f->faults ? splitmix64_next(&f->rng) % 8 : 7;
    if (d == 0) {
        f->eintr++;
        return -EINTR;
    }
    if (d == 1) {
        f->eagain++;
        return -EAGAIN;
    }
    size_t want = 0;
    for (int i = 0; i < cnt; i++)
        want += iov[i].iov_len;
    size_t free_ = f->room - (f->tail - f->head);
    if (free_ == 0) return -EAGAIN;
    if (d == 2 && want > 1) {
        want = 1 + (size_t)(splitmix64_next(&f->rng) % (want - 1));
        f->shorts++;
    }
    if (want > free_) want = free_;
    if (f->epipe_at && want > f->epipe_at - f->tail) want = f->epipe_at - f->tail;
    assert_true(f->tail + want <= f->cap);
    size_t done = tu_iov_gather(f->wire + f->tail, iov, cnt, want);
    f->tail += done;
    return (ssize_t)done;
}

static ssize_t mem_read(void *ctx, int fd, void *buf, size_t n)
{
    (void)fd;
    struct mem *f = ctx;
    size_t avail = f->tail - f->head;
    if (avail == 0) return -EAGAIN;
    if (n > avail) n = avail;
    memcpy(buf, f->wire + f->head, n);
    f->head += n;
    return (ssize_t)n;
}

static int mem_poll(void *ctx, struct pollfd *p, nfds_t n, int timeout)
{
    (void)ctx, (void)timeout;
    for (nfds_t i = 0; i < n; i++)
        p[i].revents = p[i].events;
    return (int)n;
}

/* Messages with at least one byte on the wire; checks that they are numbered 0, 1, 2, ... */
static size_t started_on_wire(const struct mem *f)
{
    size_t off = 0, n = 0;
    while (off < f->tail) {
        n++;
        if (f->tail - off < IPCP_FRAME_HDR_SIZE) break;
        assert_int_equal(get_seq(f->wire + off), n - 1);
        off += IPCP_FRAME_HDR_SIZE + get_len(f->wire + off);
    }
    return n;
}

static size_t len_of(uint64_t i)
{
    uint64_t h = seed_of(i) >> 7;
    if (h % 53 == 0) return 20000; /* goes out alone, longer than the room */
    if (h % 31 == 0) return 5000;
    return (size_t)(h % 300);
}

struct mem_chans {
    struct ipcp_io_ops io;
    struct ipcp_fdchan *w, *r;
    int fds[2];
};

static void mem_open(struct mem *f, struct mem_chans *mc)
{
    f->cap = 8 << 20;
    f->wire = malloc(f->cap);
    mc->io =
        (struct ipcp_io_ops){mem_read, mem_writev, tu_io_no_recvmsg, tu_io_no_sendmsg, mem_poll, f};
    struct ipcp_fdchan_cfg cfg = {.kind = IPCP_FDCHAN_STREAM, .io = &mc->io};
    assert_int_equal(pipe(mc->fds), 0); /* real fds only for fcntl(O_NONBLOCK) */
    assert_int_equal(ipcp_fdchan_open(&mc->w, -1, mc->fds[1], &cfg), 0);
    assert_int_equal(ipcp_fdchan_open(&mc->r, mc->fds[0], -1, &cfg), 0);
}

static void mem_close(struct mem *f, struct mem_chans *mc)
{
    ipcp_fdchan_close(mc->w, 0);
    ipcp_fdchan_close(mc->r, 0);
    close(mc->fds[0]);
    close(mc->fds[1]);
    free(f->wire);
}

/* Batches of 1..64 messages with timeout 0 against a 3000-byte transport that fails at random:
 * after every call the accepted count equals the messages with a byte on the wire, numbered
 * without a gap; the reader gets every message once, in order, although the caller scribbles
 * over its buffers after each call. */
static void test_deadline_mid_batch_faults(void **s)
{
    (void)s;
    struct mem f = {.room = 3000, .rng = 99, .faults = 1};
    struct mem_chans mc;
    mem_open(&f, &mc);
    enum { N = 3000, B = 64 };
    uint8_t *slab = malloc(B * 20000), *in = malloc(20000);
    struct ipcp_fdchan_msg m[B];
    size_t sent = 0, got = 0, calls = 0;
    uint64_t rng = 5;
    while (got < N) {
        if (sent < N) {
            size_t b = 1 + (size_t)(splitmix64_next(&rng) % B);
            if (b > N - sent) b = N - sent;
            for (size_t i = 0; i < b; i++) {
                m[i] = (struct ipcp_fdchan_msg){
                    .data = slab + i * 20000, .len = len_of(sent + i), .type = (uint16_t)i};
                tu_fill(slab + i * 20000, m[i].len, seed_of(sent + i));
            }
            ssize_t n = ipcp_fdchan_sendv(mc.w, m, b, 0);
            calls++;
            assert_true(n == -ETIMEDOUT || (n > 0 && (size_t)n <= b));
            if (n > 0) sent += (size_t)n;
            memset(slab, 0x5a, B * 20000);
            assert_int_equal(started_on_wire(&f), sent);
        }
        size_t drain = (size_t)(splitmix64_next(&rng) % 40);
        for (size_t i = 0; i < drain; i++) {
            uint16_t type;
            ssize_t n = ipcp_fdchan_recv(mc.r, &type, in, 20000, 0);
            if (n == -ETIMEDOUT) break;
            assert_true(got < sent);
            assert_int_equal(n, (ssize_t)len_of(got));
            assert_true(tu_check(in, (size_t)n, seed_of(got)));
            got++;
        }
    }
    assert_true(f.shorts > 0 && f.eintr > 0 && f.eagain > 0);
    assert_true(calls > 100);
    assert_int_equal(ipcp_fdchan_flush(mc.w, T_MS), 0);
    assert_int_equal(started_on_wire(&f), N);
    assert_int_equal(ipcp_fdchan_recv(mc.r, NULL, in, 20000, 0), -ETIMEDOUT);
    assert_int_equal(f.head, f.tail);
    free(in);
    free(slab);
    mem_close(&f, &mc);
}

/* ---- refusals and a reader gone mid-batch ---------------------------------------------------- */

static void test_refused_batches_write_nothing(void **s)
{
    (void)s;
    struct mem f = {.room = 1 << 20};
    struct mem_chans mc;
    mem_open(&f, &mc);
    uint8_t slab[4 * 64];
    struct ipcp_fdchan_msg *m = make_msgs(slab, 4, 64, 0);
    assert_int_equal(ipcp_fdchan_sendv(mc.w, m, 0, 0), 0);
    assert_int_equal(ipcp_fdchan_sendv(mc.w, NULL, 1, 0), -EINVAL);
    m[2].len = IPCP_FRAME_MAX_DEFAULT + 1; /* above max_msg: the whole batch is refused */
    assert_int_equal(ipcp_fdchan_sendv(mc.w, m, 4, T_MS), -IPCP_E_TOOBIG);
    m[2].len = 64;
    m[3].data = NULL;
    assert_int_equal(ipcp_fdchan_sendv(mc.w, m, 4, T_MS), -EINVAL);
    assert_int_equal(f.tail, 0);
    m[3].data = slab + 3 * 64;
    /* The refused batches used no sequence number: this one starts at 0. */
    assert_int_equal(ipcp_fdchan_sendv(mc.w, m, 4, T_MS), 4);
    assert_int_equal(started_on_wire(&f), 4);
    free(m);
    mem_close(&f, &mc);
}

/* The reader goes away after some bytes: whole frames before the cut are accepted; a frame cut
 * in two cannot be completed, is not accepted and breaks the channel (-EPIPE from then on). */
static void test_reader_gone_mid_batch(void **s)
{
    (void)s;
    for (int cut_inside = 0; cut_inside < 2; cut_inside++) {
        struct mem f = {.room = 1 << 20, .epipe_at = 5 * FRAME + (cut_inside ? 50 : 0)};
        struct mem_chans mc;
        mem_open(&f, &mc);
        uint8_t slab[10 * 64];
        struct ipcp_fdchan_msg *m = make_msgs(slab, 10, 64, 0);
        assert_int_equal(ipcp_fdchan_sendv(mc.w, m, 10, T_MS), 5);
        assert_int_equal(ipcp_fdchan_sendv(mc.w, m + 5, 5, T_MS), -EPIPE);
        assert_int_equal(ipcp_fdchan_send(mc.w, 1, "x", 1, T_MS), -EPIPE);
        expect_msgs(mc.r, 5, 64, 0);
        free(m);
        mem_close(&f, &mc);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syscalls_per_batch),
        cmocka_unit_test(test_multiwriter_writes_atomic),
        cmocka_unit_test(test_deadline_mid_batch_pipe),
        cmocka_unit_test(test_deadline_mid_batch_faults),
        cmocka_unit_test(test_refused_batches_write_nothing),
        cmocka_unit_test(test_reader_gone_mid_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

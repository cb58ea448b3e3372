/* fdchan_test.c - whole frames over real fds between processes (pipe, FIFO, unix stream,
 * seqpacket, TCP loopback) sent one by one and in batches, four writers of 1 MiB messages on one
 * pipe and one FIFO, a SIGALRM storm without SA_RESTART during 1 MiB transfers, the peer killed
 * mid-frame and between frames, EPIPE without SIGPIPE, timeouts, -EMSGSIZE losing nothing, sequence
 * gaps, frames without payload checksum, and the hook table injecting short counts, EINTR and
 * EAGAIN with no real syscall. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"
#include "ipcproof/frame.h"
#include "testutil.h"

#define T_MS 20000 /* generous per-call timeout for real transfers on a loaded machine */

static const size_t edge_sizes[] = {0,     1,     PIPE_BUF - 1, PIPE_BUF, PIPE_BUF + 1,
                                    65535, 65536, 65537,        1 << 20};

static uint64_t seed_of(uint32_t writer, uint64_t i)
{
    return ((uint64_t)writer << 40) ^ (i * 0x9e37u + 11);
}

/* The type tells the writer too: empty messages of two writers are otherwise the same message,
 * and the receiver could give one writer's to the other. */
static uint16_t type_of(uint32_t writer, uint64_t i)
{
    return (uint16_t)(i * 8 + writer);
}

static struct ipcp_fdchan *chan(int rfd, int wfd, enum ipcp_fdchan_kind kind, unsigned flags,
                                uint32_t writer, size_t max)
{
    struct ipcp_fdchan_cfg cfg = {
        .kind = kind, .flags = flags, .max_msg = max, .writer_id = writer};
    struct ipcp_fdchan *c;
    assert_int_equal(ipcp_fdchan_open(&c, rfd, wfd, &cfg), 0);
    return c;
}

/* ---- every transport: edge sizes, then the maximum, between two processes ------------------ */

struct sender_arg {
    int fd;
    enum ipcp_fdchan_kind kind;
    unsigned flags;
    uint32_t writer;
    size_t max;
    const size_t *sizes;
    size_t nsizes;
    int repeat;
    size_t batch; /* 0: ipcp_fdchan_send; else ipcp_fdchan_sendv of this many messages */
};

static int sender(void *p)
{
    struct sender_arg *a = p;
    struct ipcp_fdchan *c;
    struct ipcp_fdchan_cfg cfg = {
        .kind = a->kind, .flags = a->flags, .max_msg = a->max, .writer_id = a->writer};
    if (ipcp_fdchan_open(&c, -1, a->fd, &cfg) < 0) return 10;
    size_t maxlen = 1, batch = a->batch ? a->batch : 1;
    for (size_t i = 0; i < a->nsizes; i++)
        if (a->sizes[i] > maxlen) maxlen = a->sizes[i];
    uint8_t *buf = malloc(batch * maxlen);
    struct ipcp_fdchan_msg *msgs = calloc(batch, sizeof(*msgs));
    if (buf == NULL || msgs == NULL) return 13;
    uint64_t total = a->nsizes * (uint64_t)a->repeat;
    for (uint64_t n = 0; n < total;) {
        size_t k = 0;
        for (; k < batch && n + k < total; k++) {
            uint64_t i = n + k;
            msgs[k] = (struct ipcp_fdchan_msg){.data = buf + k * maxlen,
                                               .len = a->sizes[i % a->nsizes],
                                               .type = type_of(a->writer, i)};
            tu_fill(buf + k * maxlen, msgs[k].len, seed_of(a->writer, i));
        }
        /* A long timeout: the whole batch is accepted, or something is wrong. */
        ssize_t rc = a->batch ? ipcp_fdchan_sendv(c, msgs, k, T_MS)
                              : ipcp_fdchan_send(c, msgs[0].type, msgs[0].data, msgs[0].len, T_MS);
        if (rc != (a->batch ? (ssize_t)k : 0)) {
            fprintf(stderr, "sender %u: msg %llu: %zd %s\n", a->writer, (unsigned long long)n, rc,
                    rc < 0 ? ipcp_strerror((int)rc) : "accepted");
            return 11;
        }
        n += k;
    }
    free(msgs);
    free(buf);
    return ipcp_fdchan_close(c, T_MS) == 0 ? 0 : 12;
}

static void receive_all(struct ipcp_fdchan *c, const size_t *sizes, size_t nsizes, int repeat,
                        uint32_t writers)
{
    size_t maxlen = 1;
    for (size_t i = 0; i < nsizes; i++)
        if (sizes[i] > maxlen) maxlen = sizes[i];
    uint8_t *buf = malloc(maxlen + 64);
    uint64_t *next = calloc(writers, sizeof(*next));
    size_t want = nsizes * (size_t)repeat * writers;
    for (size_t got = 0; got < want; got++) {
        uint16_t type;
        ssize_t n = ipcp_fdchan_recv(c, &type, buf, maxlen + 64, T_MS);
        if (n < 0) fail_msg("recv %zu: %s", got, ipcp_strerror((int)n));
        /* Which writer sent it: the pattern says (each writer's seeds differ). */
        int found = -1;
        for (uint32_t w = 0; w < writers && found < 0; w++) {
            uint64_t i = next[w];
            if (i < nsizes * (size_t)repeat && (size_t)n == sizes[i % nsizes] &&
                type == type_of(w, i) && tu_check(buf, (size_t)n, seed_of(w, i)))
                found = (int)w;
        }
        if (found < 0) fail_msg("message %zu (%zd bytes) matches no writer's next message", got, n);
        next[found]++;
    }
    uint8_t b;
    assert_int_equal(ipcp_fdchan_recv(c, NULL, &b, 1, T_MS), -EPIPE); /* clean EOF after all */
    free(next);
    free(buf);
}

/* A sender process with a, the receiver here; the writing end is the child's alone. */
static void one_sender_run(struct tu_xpair *x, struct sender_arg *a)
{
    pid_t pid = tu_spawn(sender, a);
    close(x->wfd);
    x->wfd = -1;
    struct ipcp_fdchan *c = chan(x->rfd, -1, x->kind, 0, 0, 0);
    receive_all(c, a->sizes, a->nsizes, a->repeat, 1);
    tu_wait_ok(pid, 60000);
    assert_int_equal(ipcp_fdchan_close(c, 0), 0);
}

static void transport_roundtrip(enum tu_xkind k)
{
    struct tu_xpair x;
    tu_xpair_make(k, &x);
    const size_t big[] = {IPCP_FRAME_MAX_DEFAULT};
    for (int pass = 0; pass < 2; pass++) {
        struct sender_arg a = {.fd = x.wfd,
                               .kind = x.kind,
                               .sizes = pass ? big : edge_sizes,
                               .nsizes = pass ? 1 : IPCP_ARRAY_SIZE(edge_sizes),
                               .repeat = pass ? 1 : 3};
        if (pass == 1) {
            /* a fresh connection: the first pass ended with EOF */
            tu_xpair_drop(&x);
            tu_xpair_make(k, &x);
            a.fd = x.wfd;
        }
        one_sender_run(&x, &a);
    }
    tu_xpair_drop(&x);
}

static void test_pipe(void **s)
{
    (void)s;
    transport_roundtrip(TU_PIPE);
}
static void test_fifo(void **s)
{
    (void)s;
    transport_roundtrip(TU_FIFO);
}
static void test_unix_stream(void **s)
{
    (void)s;
    transport_roundtrip(TU_UNIX);
}
static void test_seqpacket(void **s)
{
    (void)s;
    transport_roundtrip(TU_SEQPACKET);
}
static void test_tcp(void **s)
{
    (void)s;
    transport_roundtrip(TU_TCP);
}

/* ---- batches (ipcp_fdchan_sendv) on every transport ------------------------------------------
 * Sizes around every threshold of the batch: empty, tiny, one PIPE_BUF write, the largest batched
 * frame (16 KiB with its header) and one byte more, and large messages that go out alone; 16 per
 * batch against 15 sizes moves the batch boundaries through the list. */

static const size_t batch_sizes[] = {
    0,        1,     64,    64,    64,    PIPE_BUF - 41, PIPE_BUF - 40, PIPE_BUF - 39,
    PIPE_BUF, 16343, 16344, 16345, 65536, 100,           1 << 20};

static void batch_roundtrip(enum tu_xkind k)
{
    struct tu_xpair x;
    tu_xpair_make(k, &x);
    struct sender_arg a = {.fd = x.wfd,
                           .kind = x.kind,
                           .sizes = batch_sizes,
                           .nsizes = IPCP_ARRAY_SIZE(batch_sizes),
                           .repeat = 20,
                           .batch = 16};
    one_sender_run(&x, &a);
    tu_xpair_drop(&x);
}

static void test_batch_every_transport(void **s)
{
    (void)s;
    for (int k = TU_PIPE; k < TU_XKINDS; k++)
        batch_roundtrip((enum tu_xkind)k);
}

/* ---- four writers of 1 MiB messages on one pipe / one FIFO ------------------------------------
 */

static void multiwriter(enum tu_xkind k, size_t batch)
{
    struct tu_xpair x;
    tu_xpair_make(k, &x);
    /* Batched: small messages share PIPE_BUF writes, a 1 MiB one goes out in fragments. */
    static const size_t plain[] = {1 << 20, 100, PIPE_BUF + 7};
    static const size_t batched[] = {1, 100, 64, 64, PIPE_BUF - 40, PIPE_BUF - 39, 1 << 20, 0, 64};
    const size_t *sizes = batch ? batched : plain;
    size_t nsizes = batch ? IPCP_ARRAY_SIZE(batched) : IPCP_ARRAY_SIZE(plain);
    int repeat = batch ? 16 : 4;
    pid_t pids[4];
    struct sender_arg a[4];
    for (uint32_t w = 0; w < 4; w++) {
        a[w] = (struct sender_arg){.fd = x.wfd,
                                   .kind = x.kind,
                                   .flags = IPCP_FDCHAN_MULTIWRITER,
                                   .writer = w,
                                   .sizes = sizes,
                                   .nsizes = nsizes,
                                   .repeat = repeat,
                                   .batch = batch};
        pids[w] = tu_spawn(sender, &a[w]);
    }
    close(x.wfd);
    x.wfd = -1;
    struct ipcp_fdchan *c = chan(x.rfd, -1, x.kind, IPCP_FDCHAN_MULTIWRITER, 0, 0);
    receive_all(c, sizes, nsizes, repeat, 4);
    for (int w = 0; w < 4; w++)
        tu_wait_ok(pids[w], 60000);
    ipcp_fdchan_close(c, 0);
    tu_xpair_drop(&x);
}

static void test_multiwriter_pipe(void **s)
{
    (void)s;
    multiwriter(TU_PIPE, 0);
}
static void test_multiwriter_fifo(void **s)
{
    (void)s;
    multiwriter(TU_FIFO, 0);
}
static void test_batch_multiwriter_pipe(void **s)
{
    (void)s;
    multiwriter(TU_PIPE, 7);
}
static void test_batch_multiwriter_fifo(void **s)
{
    (void)s;
    multiwriter(TU_FIFO, 7);
}

/* ---- a SIGALRM storm without SA_RESTART during 1 MiB transfers ---------------------------------
 */

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void start_storm(void)
{
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: every wait sees EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void stop_storm(void)
{
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    signal(SIGALRM, SIG_DFL);
}

static int storm_sender(void *p)
{
    start_storm();
    int rc = sender(p);
    stop_storm();
    return rc;
}

static void test_signal_storm(void **s)
{
    (void)s;
    for (int k = TU_PIPE; k <= TU_TCP; k++) {
        struct tu_xpair x;
        tu_xpair_make((enum tu_xkind)k, &x);
        const size_t sizes[] = {1 << 20};
        struct sender_arg a = {
            .fd = x.wfd, .kind = x.kind, .sizes = sizes, .nsizes = 1, .repeat = 8};
        pid_t pid = tu_spawn(storm_sender, &a);
        close(x.wfd);
        x.wfd = -1;
        alarms = 0;
        start_storm();
        struct ipcp_fdchan *c = chan(x.rfd, -1, x.kind, 0, 0, 0);
        receive_all(c, sizes, 1, 8, 1);
        stop_storm();
        assert_true(alarms > 0);
        tu_wait_ok(pid, 60000);
        ipcp_fdchan_close(c, 0);
        tu_xpair_drop(&x);
    }
}

/* ---- the peer killed mid-frame, between frames; a closed reader ------------------------------ */

static int half_frame_then_pause(void *p)
{
    int fd = *(int *)p;
    uint8_t payload[1000];
    tu_fill(payload, sizeof(payload), 1);
    struct ipcp_frame_enc e;
    struct ipcp_frame_hdr h = {.flags = IPCP_FRAME_F_WHOLE, .len = 1000, .total = 1000};
    ipcp_frame_encode(&e, &h, payload, 0);
    if (write(fd, e.hdr, IPCP_FRAME_HDR_SIZE) != IPCP_FRAME_HDR_SIZE) return 1;
    if (write(fd, payload, 300) != 300) return 1;
    pause(); /* killed here, in the middle of the frame */
    return 0;
}

static void test_peer_killed_mid_frame(void **s)
{
    (void)s;
    for (int k = TU_PIPE; k <= TU_TCP; k++) {
        if (k == TU_SEQPACKET) continue; /* a packet is whole or absent: nothing to cut */
        struct tu_xpair x;
        tu_xpair_make((enum tu_xkind)k, &x);
        pid_t pid = tu_spawn(half_frame_then_pause, &x.wfd);
        close(x.wfd);
        x.wfd = -1;
        /* The child's two writes are in before it is killed (on a loaded machine it may not
         * have run at all within the receive timeout below). */
        int inq = 0;
        for (int64_t t0 = ipcp__now_ns(); inq < (int)IPCP_FRAME_HDR_SIZE + 300; usleep(1000)) {
            assert_int_equal(ioctl(x.rfd, FIONREAD, &inq), 0);
            assert_true(ipcp__now_ns() - t0 < T_MS * 1000000LL);
        }
        struct ipcp_fdchan *c = chan(x.rfd, -1, x.kind, 0, 0, 0);
        uint8_t buf[2000];
        /* The partial frame is buffered, not lost, while the writer lives. */
        assert_int_equal(ipcp_fdchan_recv(c, NULL, buf, sizeof(buf), 100), -ETIMEDOUT);
        kill(pid, SIGKILL);
        int st = tu_wait(pid, 10000);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(ipcp_fdchan_recv(c, NULL, buf, sizeof(buf), T_MS), -IPCP_E_TRUNCATED);
        assert_int_equal(ipcp_fdchan_recv(c, NULL, buf, sizeof(buf), T_MS), -IPCP_E_TRUNCATED);
        ipcp_fdchan_close(c, 0);
        tu_xpair_drop(&x);
    }
}

static int one_message_then_die(void *p)
{
    struct ipcp_fdchan *c = chan(-1, *(int *)p, IPCP_FDCHAN_STREAM, 0, 0, 0);
    if (ipcp_fdchan_send(c, 1, "hello", 5, T_MS) != 0) return 1;
    raise(SIGKILL);
    return 0;
}

static void test_peer_killed_between_frames(void **s)
{
    (void)s;
    struct tu_xpair x;
    tu_xpair_make(TU_UNIX, &x);
    pid_t pid = tu_spawn(one_message_then_die, &x.wfd);
    close(x.wfd);
    x.wfd = -1;
    struct ipcp_fdchan *c = chan(x.rfd, -1, x.kind, 0, 0, 0);
    char buf[16];
    assert_int_equal(ipcp_fdchan_recv(c, NULL, buf, sizeof(buf), T_MS), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(ipcp_fdchan_recv(c, NULL, buf, sizeof(buf), T_MS), -EPIPE);
    assert_true(WIFSIGNALED(tu_wait(pid, 10000)));
    ipcp_fdchan_close(c, 0);
    tu_xpair_drop(&x);
}

/* SIGPIPE keeps its default action (terminate) here: the send must still return -EPIPE. */
static void test_epipe_not_sigpipe(void **s)
{
    (void)s;
    for (int k = TU_PIPE; k <= TU_TCP; k++) {
        if (k == TU_FIFO) continue; /* a FIFO writer cannot open without a reader */
        struct tu_xpair x;
        tu_xpair_make((enum tu_xkind)k, &x);
        close(x.rfd);
        x.rfd = -1;
        struct ipcp_fdchan *c = chan(-1, x.wfd, x.kind, 0, 0, 0);
        int rc = ipcp_fdchan_send(c, 1, "x", 1, T_MS);
        if (k == TU_TCP && rc == 0) rc = ipcp_fdchan_send(c, 1, "x", 1, T_MS); /* RST first */
        if (k == TU_TCP && rc == 0) rc = ipcp_fdchan_send(c, 1, "x", 1, T_MS);
        assert_true(rc == -EPIPE || rc == -ECONNRESET);
        ipcp_fdchan_close(c, 0);
        tu_xpair_drop(&x);
    }
}

/* ---- timeouts, partial sends, -EMSGSIZE, sequence gaps --------------------------------------- */

static void test_recv_timeout(void **s)
{
    (void)s;
    struct tu_xpair x;
    tu_xpair_make(TU_PIPE, &x);
    struct ipcp_fdchan *c = chan(x.rfd, -1, x.kind, 0, 0, 0);
    char b[4];
    int64_t t0 = ipcp__now_ns();
    assert_int_equal(ipcp_fdchan_recv(c, NULL, b, sizeof(b), 50), -ETIMEDOUT);
    assert_true(ipcp__now_ns() - t0 >= 50 * 1000000LL);
    assert_int_equal(ipcp_fdchan_recv(c, NULL, b, sizeof(b), 0), -ETIMEDOUT);
    ipcp_fdchan_close(c, 0);
    tu_xpair_drop(&x);
}

/* A send that times out after part of its frame was written is accepted and finished by the
 * next call; a send that could write nothing reports -ETIMEDOUT and sends nothing. */
static void test_send_timeout_keeps_stream_whole(void **s)
{
    (void)s;
    struct tu_xpair x;
    tu_xpair_make(TU_PIPE, &x);
    fcntl(x.wfd, F_SETPIPE_SZ, 4096);
    struct ipcp_fdchan *w = chan(-1, x.wfd, x.kind, 0, 0, 0);
    struct ipcp_fdchan *r = chan(x.rfd, -1, x.kind, 0, 0, 0);
    uint8_t *a = malloc(20000), *b = malloc(20000);
    tu_fill(a, 20000, 1);
    tu_fill(b, 20000, 2);
    assert_int_equal(ipcp_fdchan_send(w, 1, a, 20000, 20), 0);          /* accepted, part written */
    tu_fill(a, 20000, 99);                                              /* caller reuses buffer */
    assert_int_equal(ipcp_fdchan_send(w, 2, b, 20000, 20), -ETIMEDOUT); /* tail still pending */
    uint8_t *in = malloc(20000);
    uint16_t type;
    /* Drain alternately: the reader gets the whole first message, then the pending tail is
     * written by flush as room appears. */
    int64_t t0 = ipcp__now_ns();
    ssize_t n;
    while ((n = ipcp_fdchan_recv(r, &type, in, 20000, 10)) == -ETIMEDOUT) {
        ipcp_fdchan_flush(w, 10);
        assert_true(ipcp__now_ns() - t0 < 10 * 1000000000LL);
    }
    assert_int_equal(n, 20000);
    assert_int_equal(type, 1);
    assert_true(tu_check(in, 20000, 1));
    assert_int_equal(ipcp_fdchan_flush(w, T_MS), 0);
    assert_int_equal(ipcp_fdchan_recv(r, NULL, in, 20000, 0), -ETIMEDOUT); /* b never sent */
    free(a);
    free(b);
    free(in);
    ipcp_fdchan_close(w, 0);
    ipcp_fdchan_close(r, 0);
    tu_xpair_drop(&x);
}

static void test_emsgsize_loses_nothing(void **s)
{
    (void)s;
    struct tu_xpair x;
    tu_xpair_make(TU_UNIX, &x);
    struct ipcp_fdchan *w = chan(-1, x.wfd, x.kind, 0, 0, 0);
    struct ipcp_fdchan *r = chan(x.rfd, -1, x.kind, 0, 0, 0);
    uint8_t msg[300], in[300];
    tu_fill(msg, sizeof(msg), 5);
    assert_int_equal(ipcp_fdchan_send(w, 9, msg, sizeof(msg), T_MS), 0);
    assert_int_equal(ipcp_fdchan_send(w, 10, "z", 1, T_MS), 0);
    assert_int_equal(ipcp_fdchan_recv(r, NULL, in, 100, T_MS), -EMSGSIZE);
    assert_int_equal(ipcp_fdchan_pending_len(r), 300);
    assert_int_equal(ipcp_fdchan_recv(r, NULL, in, 100, T_MS), -EMSGSIZE);
    uint16_t type;
    assert_int_equal(ipcp_fdchan_recv(r, &type, in, sizeof(in), T_MS), 300);
    assert_int_equal(type, 9);
    assert_memory_equal(in, msg, sizeof(msg));
    assert_int_equal(ipcp_fdchan_pending_len(r), -ENOENT);
    assert_int_equal(ipcp_fdchan_recv(r, &type, in, sizeof(in), T_MS), 1);
    assert_int_equal(type, 10);
    /* The sender refuses what exceeds its maximum. */
    struct ipcp_fdchan *small = chan(-1, x.wfd, x.kind, 0, 0, 64);
    assert_int_equal(ipcp_fdchan_send(small, 1, msg, 65, T_MS), -IPCP_E_TOOBIG);
    ipcp_fdchan_close(small, 0);
    ipcp_fdchan_close(w, 0);
    ipcp_fdchan_close(r, 0);
    tu_xpair_drop(&x);
}

static void write_frame(int fd, uint64_t seq, const char *s)
{
    struct ipcp_frame_enc e;
    size_t len = strlen(s);
    struct ipcp_frame_hdr h = {
        .flags = IPCP_FRAME_F_WHOLE, .seq = seq, .len = (uint32_t)len, .total = (uint32_t)len};
    ipcp_frame_encode(&e, &h, s, 0);
    assert_int_equal(writev(fd, e.iov, e.iovcnt), (ssize_t)(IPCP_FRAME_HDR_SIZE + len));
}

static void test_sequence_gap_reported_once(void **s)
{
    (void)s;
    struct tu_xpair x;
    tu_xpair_make(TU_PIPE, &x);
    write_frame(x.wfd, 0, "a");
    write_frame(x.wfd, 2, "c"); /* seq 1 is missing */
    write_frame(x.wfd, 3, "d");
    write_frame(x.wfd, 3, "d"); /* a repeat */
    struct ipcp_fdchan *r = chan(x.rfd, -1, x.kind, 0, 0, 0);
    char b[4];
    assert_int_equal(ipcp_fdchan_recv(r, NULL, b, sizeof(b), T_MS), 1);
    assert_int_equal(ipcp_fdchan_recv(r, NULL, b, sizeof(b), T_MS), -IPCP_E_SEQUENCE);
    assert_int_equal(ipcp_fdchan_recv(r, NULL, b, sizeof(b), T_MS), 1);
    assert_int_equal(b[0], 'c');
    assert_int_equal(ipcp_fdchan_recv(r, NULL, b, sizeof(b), T_MS), 1);
    assert_int_equal(b[0], 'd');
    assert_int_equal(ipcp_fdchan_recv(r, NULL, b, sizeof(b), T_MS), -IPCP_E_SEQUENCE);
    assert_int_equal(ipcp_fdchan_recv(r, NULL, b, sizeof(b), T_MS), 1);
    ipcp_fdchan_close(r, 0);
    tu_xpair_drop(&x);
}

static void test_corrupt_stream_breaks_channel(void **s)
{
    (void)s;
    struct tu_xpair x;
    tu_xpair_make(TU_PIPE, &x);
    write_frame(x.wfd, 0, "ok");
    assert_int_equal(write(x.wfd, "garbage-not-a-frame-header-at-all-.......", 40), 40);
    struct ipcp_fdchan *r = chan(x.rfd, -1, x.kind, 0, 0, 0);
    char b[4];
    assert_int_equal(ipcp_fdchan_recv(r, NULL, b, sizeof(b), T_MS), 2);
    assert_int_equal(ipcp_fdchan_recv(r, NULL, b, sizeof(b), T_MS), -IPCP_E_BADMAGIC);
    assert_int_equal(ipcp_fdchan_recv(r, NULL, b, sizeof(b), T_MS), -IPCP_E_BROKEN);
    ipcp_fdchan_close(r, 0);
    tu_xpair_drop(&x);
}

/* ---- the payload checksum left out (IPCP_FDCHAN_NO_PAYSUM) ----------------------------------- */

static void test_no_paysum(void **s)
{
    (void)s;
    const size_t sizes[] = {0, 100, 70000}; /* 70000: a direct read / two seqpacket fragments */
    uint8_t *msg = malloc(70000), *in = malloc(70000);
    for (int k = TU_PIPE; k <= TU_SEQPACKET; k++) {
        if (k == TU_FIFO) continue;
        struct tu_xpair x;
        tu_xpair_make((enum tu_xkind)k, &x);
        /* Both ends agree: every size arrives; a sender that keeps the checksum is welcome too. */
        struct ipcp_fdchan *w = chan(-1, x.wfd, x.kind, IPCP_FDCHAN_NO_PAYSUM, 0, 0);
        struct ipcp_fdchan *ws = chan(-1, x.wfd, x.kind, 0, 0, 0);
        struct ipcp_fdchan *r = /* two writers with id 0: two sequences */
            chan(x.rfd, -1, x.kind, IPCP_FDCHAN_NO_PAYSUM | IPCP_FDCHAN_NO_SEQCHECK, 0, 0);
        for (size_t i = 0; i < 2 * IPCP_ARRAY_SIZE(sizes); i++) {
            size_t len = sizes[i % IPCP_ARRAY_SIZE(sizes)];
            tu_fill(msg, len, i);
            assert_int_equal(ipcp_fdchan_send(i % 2 ? ws : w, 1, msg, len, T_MS), 0);
            assert_int_equal(ipcp_fdchan_recv(r, NULL, in, 70000, T_MS), (ssize_t)len);
            assert_true(tu_check(in, len, i));
        }
        ipcp_fdchan_close(ws, 0);
        ipcp_fdchan_close(r, 0);
        /* On the wire: the flag, and 0 where the checksum would be. */
        uint8_t hdr[IPCP_FRAME_HDR_SIZE + 100];
        assert_int_equal(ipcp_fdchan_send(w, 1, msg, 100, T_MS), 0);
        assert_int_equal(read(x.rfd, hdr, sizeof(hdr)), sizeof(hdr));
        assert_int_equal(hdr[5], IPCP_FRAME_F_WHOLE | IPCP_FRAME_F_NOSUM);
        for (int i = 32; i < 40; i++)
            assert_int_equal(hdr[i], 0);
        /* A receiver that requires checksums refuses the frame. */
        r = chan(x.rfd, -1, x.kind, 0, 0, 0);
        assert_int_equal(ipcp_fdchan_send(w, 1, msg, 100, T_MS), 0);
        assert_int_equal(ipcp_fdchan_recv(r, NULL, in, 70000, T_MS), -IPCP_E_NOSUM);
        assert_int_equal(ipcp_fdchan_recv(r, NULL, in, 70000, T_MS), -IPCP_E_BROKEN);
        ipcp_fdchan_close(w, 0);
        ipcp_fdchan_close(r, 0);
        tu_xpair_drop(&x);
    }
    free(msg);
    free(in);
}

/* ---- the hook table: an in-memory byte pipe with injected faults, no real syscall ------------ */

struct fakepipe {
    uint8_t *buf;
    size_t cap, head, tail; /* bytes [head, tail) are in flight */
    uint64_t calls, rng;
    int short_max;    /* at most this many bytes per call */
    int eintr_every;  /* every n-th call fails with EINTR */
    int eagain_every; /* every n-th call fails with EAGAIN */
    uint64_t eintr, eagain, shorts, polls;
};

static int fault(struct fakepipe *f)
{
    f->calls++;
    if (f->eintr_every && f->calls % (uint64_t)f->eintr_every == 0) {
        f->eintr++;
        return -EINTR;
    }
    if (f->eagain_every && f->calls % (uint64_t)f->eagain_every == 0) {
        f->eagain++;
        return -EAGAIN;
    }
    return 0;
}

static size_t clip(struct fakepipe *f, size_t n)
{
    size_t lim = 1 + (size_t)(splitmix64_next(&f->rng) % (uint64_t)f->short_max);
    if (n > lim) {
        f->shorts++;
        return lim;
    }
    return n;
}

static ssize_t fake_read(void *ctx, int fd, void *buf, size_t n)
{
    (void)fd;
    struct fakepipe *f = ctx;
    int e = fault(f);
    if (e) return e;
    size_t avail = f->tail - f->head;
    if (avail == 0) return -EAGAIN;
    n = clip(f, n < avail ? n : avail);
    memcpy(buf, f->buf + f->head, n);
    f->head += n;
    return (ssize_t)n;
}

static ssize_t fake_writev(void *ctx, int fd, const struct iovec *iov, int cnt)
{
    (void)fd;
    struct fakepipe *f = ctx;
    int e = fault(f);
    if (e) return e;
    size_t want = 0;
    for (int i = 0; i < cnt; i++)
        want += iov[i].iov_len;
    want = clip(f, want);
    if (f->tail + want > f->cap) return -ENOSPC;
    size_t done = tu_iov_gather(f->buf + f->tail, iov, cnt, want);
    f->tail += done;
    return (ssize_t)done;
}

static int fake_poll(void *ctx, struct pollfd *p, nfds_t n, int timeout)
{
    (void)timeout;
    struct fakepipe *f = ctx;
    f->polls++;
    for (nfds_t i = 0; i < n; i++)
        p[i].revents = p[i].events;
    return (int)n;
}

static void test_hooks_inject_short_eintr_eagain(void **s)
{
    (void)s;
    struct fakepipe f = {
        .cap = 8 << 20, .short_max = 97, .eintr_every = 5, .eagain_every = 7, .rng = 42};
    f.buf = malloc(f.cap);
    struct ipcp_io_ops io = {fake_read,        fake_writev, tu_io_no_recvmsg,
                             tu_io_no_sendmsg, fake_poll,   &f};
    /* fd numbers are never used by the fake; -1 would mean "no such end", so use 1000/1001 */
    struct ipcp_fdchan_cfg cfg = {.kind = IPCP_FDCHAN_STREAM, .io = &io};
    struct ipcp_fdchan *w, *r;
    int fds[2];
    assert_int_equal(pipe(fds), 0); /* real fds only so that fcntl(O_NONBLOCK) succeeds */
    assert_int_equal(ipcp_fdchan_open(&w, -1, fds[1], &cfg), 0);
    assert_int_equal(ipcp_fdchan_open(&r, fds[0], -1, &cfg), 0);
    const size_t sizes[] = {0, 1, 40, 41, 1000, 4096, 70000};
    uint8_t *msg = malloc(70000), *in = malloc(70000);
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < IPCP_ARRAY_SIZE(sizes); i++) {
            tu_fill(msg, sizes[i], (uint64_t)round * 100 + i);
            assert_int_equal(ipcp_fdchan_send(w, (uint16_t)i, msg, sizes[i], 1000), 0);
        }
        for (size_t i = 0; i < IPCP_ARRAY_SIZE(sizes); i++) {
            uint16_t type;
            ssize_t n = ipcp_fdchan_recv(r, &type, in, 70000, 1000);
            assert_int_equal(n, (ssize_t)sizes[i]);
            assert_int_equal(type, i);
            assert_true(tu_check(in, sizes[i], (uint64_t)round * 100 + i));
        }
    }
    assert_true(f.eintr > 0 && f.eagain > 0 && f.shorts > 0 && f.polls > 0);
    assert_int_equal(f.head, f.tail);
    ipcp_fdchan_close(w, 0);
    ipcp_fdchan_close(r, 0);
    close(fds[0]);
    close(fds[1]);
    free(msg);
    free(in);
    free(f.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_unix_stream),
        cmocka_unit_test(test_seqpacket),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_multiwriter_pipe),
        cmocka_unit_test(test_multiwriter_fifo),
        cmocka_unit_test(test_batch_every_transport),
        cmocka_unit_test(test_batch_multiwriter_pipe),
        cmocka_unit_test(test_batch_multiwriter_fifo),
        cmocka_unit_test(test_signal_storm),
        cmocka_unit_test(test_peer_killed_mid_frame),
        cmocka_unit_test(test_peer_killed_between_frames),
        cmocka_unit_test(test_epipe_not_sigpipe),
        cmocka_unit_test(test_recv_timeout),
        cmocka_unit_test(test_send_timeout_keeps_stream_whole),
        cmocka_unit_test(test_emsgsize_loses_nothing),
        cmocka_unit_test(test_sequence_gap_reported_once),
        cmocka_unit_test(test_corrupt_stream_breaks_channel),
        cmocka_unit_test(test_no_paysum),
        cmocka_unit_test(test_hooks_inject_short_eintr_eagain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fdchan_packet_test.c - receiving over SOCK_SEQPACKET, where every packet is one frame: the
 * header is received apart and the payload straight into place (the next fragment of a message
 * into its reassembly buffer). Messages of every size around the fragment size, the fragments
 * of a message received in place (checked through the recvmsg hook), truncated and oversized
 * packets, and hostile headers in the middle of a reassembly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"
#include "ipcproof/frame.h"
#include "testutil.h"

#define T_MS 20000

static struct ipcp_fdchan *open_end(int rfd, int wfd, size_t frag, const struct ipcp_io_ops *io)
{
    struct ipcp_fdchan_cfg cfg = {.kind = IPCP_FDCHAN_SEQPACKET, .frag = frag, .io = io};
    struct ipcp_fdchan *c;
    assert_int_equal(ipcp_fdchan_open(&c, rfd, wfd, &cfg), 0);
    return c;
}

/* ---- sizes around the fragment size, from another process ----------------------------------- */

struct sizes_arg {
    int fd;
    size_t frag;
    const size_t *sizes;
    size_t n;
};

static int send_sizes(void *p)
{
    const struct sizes_arg *a = p;
    struct ipcp_fdchan *w = open_end(-1, a->fd, a->frag, NULL);
    uint8_t *buf = malloc(1 << 20);
    for (size_t i = 0; i < a->n; i++) {
        tu_fill(buf, a->sizes[i], i + 1);
        if (ipcp_fdchan_send(w, (uint16_t)i, buf, a->sizes[i], T_MS) != 0) return 1;
    }
    free(buf);
    return ipcp_fdchan_close(w, T_MS) == 0 ? 0 : 2;
}

static void test_sizes_around_fragment(void **s)
{
    (void)s;
    const size_t frags[] = {1000, IPCP_FDCHAN_SEQPACKET_FRAG};
    for (size_t f = 0; f < IPCP_ARRAY_SIZE(frags); f++) {
        size_t q = frags[f];
        const size_t sizes[] = {0,         1,         q - 1,     q,         q + 1,
                                2 * q - 1, 2 * q,     2 * q + 1, 5 * q + 3, q / 2,
                                3 * q,     (1 << 20), 7,         q + 1,     0};
        struct tu_xpair x;
        tu_xpair_make(TU_SEQPACKET, &x);
        struct sizes_arg a = {.fd = x.wfd, .frag = q, .sizes = sizes, .n = IPCP_ARRAY_SIZE(sizes)};
        pid_t pid = tu_spawn(send_sizes, &a);
        close(x.wfd);
        x.wfd = -1;
        struct ipcp_fdchan *r = open_end(x.rfd, -1, q, NULL);
        uint8_t *in = malloc(1 << 20);
        for (size_t i = 0; i < a.n; i++) {
            uint16_t type;
            ssize_t n = ipcp_fdchan_recv(r, &type, in, 1 << 20, T_MS);
            if (n != (ssize_t)sizes[i]) fail_msg("frag %zu, message %zu: %zd", q, i, n);
            assert_int_equal(type, i);
            assert_true(tu_check(in, sizes[i], i + 1));
        }
        assert_int_equal(ipcp_fdchan_recv(r, NULL, in, 1 << 20, T_MS), -EPIPE);
        tu_wait_ok(pid, 60000);
        free(in);
        ipcp_fdchan_close(r, 0);
        tu_xpair_drop(&x);
    }
}

/* ---- in place: the recvmsg hook sees where each payload goes -------------------------------- */

struct rec {
    int n;
    size_t iovlen[16];
    void *payload_at[16]; /* iov[1] of each packet received */
};

static ssize_t rec_recvmsg(void *ctx, int fd, struct msghdr *m, int flags)
{
    struct rec *k = ctx;
    ssize_t r = ipcp_io_default()->recvmsg(ipcp_io_default()->ctx, fd, m, flags);
    if (r > 0 && k->n < 16) {
        k->iovlen[k->n] = m->msg_iovlen;
        k->payload_at[k->n] = m->msg_iovlen > 1 ? m->msg_iov[1].iov_base : NULL;
        k->n++;
    }
    return r;
}

/* A message of 3 fragments and a bit: the first lands in the receive buffer, every later one
 * at its place in the message that recv_zc hands out (no copy), the header always apart. */
static void test_fragments_received_in_place(void **s)
{
    (void)s;
    const size_t q = 1000, len = 3 * q + 5;
    struct tu_xpair x;
    tu_xpair_make(TU_SEQPACKET, &x);
    struct rec k = {0};
    struct ipcp_io_ops io = tu_io_real(&k);
    io.recvmsg = rec_recvmsg;
    struct ipcp_fdchan *w = open_end(-1, x.wfd, q, NULL), *r = open_end(x.rfd, -1, q, &io);
    uint8_t msg[3 * 1000 + 5];
    tu_fill(msg, len, 77);
    for (int round = 0; round < 2; round++) { /* the second one reuses the reassembly buffer */
        k.n = 0;
        assert_int_equal(ipcp_fdchan_send(w, 1, msg, len, T_MS), 0);
        const void *p;
        assert_int_equal(ipcp_fdchan_recv_zc(r, NULL, &p, T_MS), (ssize_t)len);
        assert_memory_equal(p, msg, len);
        assert_int_equal(k.n, 4);
        assert_int_equal(k.iovlen[0], 2);
        for (int i = 1; i < 4; i++)
            assert_ptr_equal(k.payload_at[i], (const uint8_t *)p + (size_t)i * q);
        assert_ptr_not_equal(k.payload_at[0], p);
    }
    ipcp_fdchan_close(w, 0);
    ipcp_fdchan_close(r, 0);
    tu_xpair_drop(&x);
}

/* ---- hand-made packets: truncated, oversized, hostile --------------------------------------- */

enum corrupt { C_NONE, C_PAYLOAD, C_HDRSUM, C_SHORT, C_LONG };

/* One packet holding one frame with the given header fields. */
static void put_packet(int fd, uint8_t flags, uint64_t seq, uint32_t total, uint32_t writer,
                       const uint8_t *payload, uint32_t len, enum corrupt how)
{
    struct ipcp_frame_enc e;
    struct ipcp_frame_hdr h = {
        .flags = flags, .seq = seq, .len = len, .total = total, .writer = writer};
    assert_true(ipcp_frame_encode(&e, &h, payload, 0) > 0);
    uint8_t body[3000];
    assert_true(len + 100 <= sizeof(body));
    memcpy(body, payload, len);
    size_t blen = len;
    if (how == C_PAYLOAD) body[len / 2] ^= 1;
    if (how == C_HDRSUM) e.hdr[28] ^= 1;
    if (how == C_SHORT) blen = len / 2;
    if (how == C_LONG) blen = len + 50;
    struct iovec iov[2] = {{e.hdr, IPCP_FRAME_HDR_SIZE}, {body, blen}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    assert_int_equal(sendmsg(fd, &m, 0), (ssize_t)(IPCP_FRAME_HDR_SIZE + blen));
}

struct raw {
    struct tu_xpair x;
    struct ipcp_fdchan *r;
    uint8_t pl[6000];
    uint8_t in[8000];
};

/* A receiver with 1000-byte fragments; pl holds 6000 known bytes. */
static void raw_open(struct raw *t)
{
    tu_xpair_make(TU_SEQPACKET, &t->x);
    t->r = open_end(t->x.rfd, -1, 1000, NULL);
    tu_fill(t->pl, sizeof(t->pl), 3);
}

static ssize_t raw_recv(struct raw *t)
{
    return ipcp_fdchan_recv(t->r, NULL, t->in, sizeof(t->in), T_MS);
}

/* The channel refuses the rest once its input broke. */
static void raw_close_broken(struct raw *t)
{
    ssize_t n = raw_recv(t);
    assert_true(n == -IPCP_E_BROKEN || n == -IPCP_E_TRUNCATED);
    ipcp_fdchan_close(t->r, 0);
    tu_xpair_drop(&t->x);
}

#define F_FIRST IPCP_FRAME_F_FIRST
#define F_LAST  IPCP_FRAME_F_LAST
#define F_WHOLE IPCP_FRAME_F_WHOLE

static void test_truncated_and_oversized_packets(void **s)
{
    (void)s;
    struct raw t;
    /* shorter than a header */
    raw_open(&t);
    assert_int_equal(send(t.x.wfd, "IPCF-short", 10, 0), 10);
    assert_int_equal(raw_recv(&t), -IPCP_E_TRUNCATED);
    raw_close_broken(&t);
    /* less payload than the header says, more than it says */
    raw_open(&t);
    put_packet(t.x.wfd, F_WHOLE, 0, 100, 0, t.pl, 100, C_SHORT);
    assert_int_equal(raw_recv(&t), -IPCP_E_TRUNCATED);
    raw_close_broken(&t);
    raw_open(&t);
    put_packet(t.x.wfd, F_WHOLE, 0, 100, 0, t.pl, 100, C_LONG);
    assert_int_equal(raw_recv(&t), -EBADMSG);
    raw_close_broken(&t);
    /* a packet above header + fragment size: the kernel cuts it (MSG_TRUNC) */
    raw_open(&t);
    put_packet(t.x.wfd, F_WHOLE, 0, 1001, 0, t.pl, 1001, C_NONE);
    assert_int_equal(raw_recv(&t), -IPCP_E_TOOBIG);
    raw_close_broken(&t);
    /* the same while a message is being reassembled in place */
    raw_open(&t);
    put_packet(t.x.wfd, F_FIRST, 0, 2500, 0, t.pl, 1000, C_NONE);
    put_packet(t.x.wfd, 0, 0, 2500, 0, t.pl + 1000, 1001, C_NONE);
    assert_int_equal(raw_recv(&t), -IPCP_E_TOOBIG);
    raw_close_broken(&t);
    raw_open(&t);
    put_packet(t.x.wfd, F_FIRST, 0, 2500, 0, t.pl, 1000, C_NONE);
    put_packet(t.x.wfd, 0, 0, 2500, 0, t.pl + 1000, 1000, C_SHORT);
    assert_int_equal(raw_recv(&t), -IPCP_E_TRUNCATED);
    raw_close_broken(&t);
}

static void test_hostile_headers_mid_reassembly(void **s)
{
    (void)s;
    struct raw t;
    /* a last fragment longer than what is left (it spills past the place kept for it) */
    raw_open(&t);
    put_packet(t.x.wfd, F_FIRST, 0, 2500, 0, t.pl, 1000, C_NONE);
    put_packet(t.x.wfd, 0, 0, 2500, 0, t.pl + 1000, 1000, C_NONE);
    put_packet(t.x.wfd, F_LAST, 0, 2500, 0, t.pl + 1000, 1000, C_NONE);
    assert_int_equal(raw_recv(&t), -IPCP_E_FRAGMENT);
    raw_close_broken(&t);
    /* another message's fragment, a corrupt payload, a corrupt header, an unknown writer */
    const struct {
        uint64_t seq;
        uint32_t writer;
        enum corrupt how;
        int want;
    } bad[] = {{1, 0, C_NONE, -IPCP_E_FRAGMENT},
               {0, 0, C_PAYLOAD, -IPCP_E_PAYSUM},
               {0, 0, C_HDRSUM, -IPCP_E_HDRSUM},
               {0, 7, C_NONE, -EBADMSG}};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(bad); i++) {
        raw_open(&t);
        put_packet(t.x.wfd, F_FIRST, 0, 2500, 0, t.pl, 1000, C_NONE);
        put_packet(t.x.wfd, 0, bad[i].seq, 2500, bad[i].writer, t.pl + 1000, 1000, bad[i].how);
        assert_int_equal(raw_recv(&t), bad[i].want);
        raw_close_broken(&t);
    }
    /* A new FIRST, larger, in the middle: the old message is given up (its sender timed out),
     * the new one arrives whole although its first fragment landed where the old one's next was
     * expected and its buffer grew under it. Its sequence number skips the abandoned one. */
    raw_open(&t);
    put_packet(t.x.wfd, F_FIRST, 0, 3000, 0, t.pl, 1000, C_NONE);
    put_packet(t.x.wfd, F_FIRST, 1, 5000, 0, t.pl, 1000, C_NONE);
    for (uint32_t off = 1000; off < 5000; off += 1000)
        put_packet(t.x.wfd, off == 4000 ? F_LAST : 0, 1, 5000, 0, t.pl + off, 1000, C_NONE);
    assert_int_equal(raw_recv(&t), -IPCP_E_SEQUENCE);
    assert_int_equal(raw_recv(&t), 5000);
    assert_memory_equal(t.in, t.pl, 5000);
    /* a shorter new FIRST: it spills past the place kept for the old message's next fragment */
    put_packet(t.x.wfd, F_FIRST, 2, 1500, 0, t.pl, 1000, C_NONE);
    put_packet(t.x.wfd, F_FIRST, 3, 2500, 0, t.pl, 1000, C_NONE);
    put_packet(t.x.wfd, 0, 3, 2500, 0, t.pl + 1000, 1000, C_NONE);
    put_packet(t.x.wfd, F_LAST, 3, 2500, 0, t.pl + 2000, 500, C_NONE);
    assert_int_equal(raw_recv(&t), -IPCP_E_SEQUENCE);
    assert_int_equal(raw_recv(&t), 2500);
    assert_memory_equal(t.in, t.pl, 2500);
    /* a whole frame in the middle of a message: the same, delivered as it is */
    put_packet(t.x.wfd, F_FIRST, 4, 2500, 0, t.pl, 1000, C_NONE);
    put_packet(t.x.wfd, F_WHOLE, 5, 10, 0, t.pl + 7, 10, C_NONE);
    assert_int_equal(raw_recv(&t), -IPCP_E_SEQUENCE);
    assert_int_equal(raw_recv(&t), 10);
    assert_memory_equal(t.in, t.pl + 7, 10);
    assert_int_equal(ipcp_fdchan_recv(t.r, NULL, t.in, sizeof(t.in), 0), -ETIMEDOUT);
    ipcp_fdchan_close(t.r, 0);
    tu_xpair_drop(&t.x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_around_fragment),
        cmocka_unit_test(test_fragments_received_in_place),
        cmocka_unit_test(test_truncated_and_oversized_packets),
        cmocka_unit_test(test_hostile_headers_mid_reassembly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mqchan_test.c - the POSIX message queue data channel.
 *
 * Pure: the header codec refuses every corrupted byte and short input; the chunk count at the
 * payload boundaries; the reassembly refuses each lie a chunk can tell (producer, priority,
 * total, count, index, length one byte off, a repeated sequence, a chunk out of place), drops
 * the rest of a refused message quietly, counts a message given up half-way, stays valid; a
 * random interleaving of several producers' lanes delivers every message once, whole, and in
 * lane order.
 * Real: sizes around every limit (0, 1, payload - 1, payload = exactly mq_msgsize on the wire,
 * payload + 1, 2 * payload +- 1, maxmsg chunks +- 1, max_msg) between two processes; max_msg + 1
 * refused; a too-small receive buffer keeps the message; 3 producer processes x 2000 checksummed
 * messages in per-producer order; a higher priority overtakes a chunked message; a foreign
 * message is refused and the stream goes on; signals do not cut a wait short; an index is opened
 * once (-EBUSY); a receiver waiting with a 30 s timeout gets every message its only producer
 * sent, then IPCP_E_PEERDEAD when the producer SIGKILLs itself or EPIPE when it closes (and all
 * producers closed is EPIPE after the drain); a producer SIGKILLed half-way through a message
 * leaves its chunks taken and nothing delivered; a sender blocked on a full queue gets
 * IPCP_E_PEERDEAD when its only receiver dies, EPIPE when it closes, and no answer while a second
 * receiver may still come; the limits are read, reported and named when exceeded; the queue is
 * gone after destroy and after a failed create. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "ipcproof/err.h"
#include "ipcproof/mqchan.h"
#include "ipcproof/mqlock.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static int mq_gone(const char *name)
{
    mqd_t q = mq_open(name, O_RDONLY);
    if (q != (mqd_t)-1) {
        mq_close(q);
        return 0;
    }
    return errno == ENOENT;
}

static struct ipcp_mqchan *make(uint32_t producers, size_t max_msg, char *name, size_t cap)
{
    char stem[64];
    struct ipcp_mqchan_cfg cfg = {.stem = tu_name(stem, sizeof(stem)),
                                  .producers = producers,
                                  .consumers = 1,
                                  .max_msg = max_msg};
    struct ipcp_mqchan *ch = NULL;
    int rc = ipcp_mqchan_create(&cfg, &ch);
    if (rc != 0) fail_msg("ipcp_mqchan_create: %s", ipcp_strerror(rc));
    snprintf(name, cap, "%s", ipcp_mqchan_name(ch));
    return ch;
}

static void destroy_and_check(struct ipcp_mqchan *ch, const char *name)
{
    ipcp_mqchan_destroy(ch);
    assert_true(mq_gone(name));
}

static uint64_t seed_of(uint32_t producer, uint64_t seq)
{
    return ((uint64_t)producer << 40) ^ (seq * 0x9e3779b97f4a7c15ull) ^ 0x5eed;
}

/* A chunk as a producer would send it; returns its length. */
static size_t chunk(uint8_t *out, uint16_t producer, uint8_t prio, uint64_t seq, uint32_t total,
                    uint32_t index, size_t payload, size_t len)
{
    struct ipcp_mqchan_hdr h = {.prio = prio,
                                .producer = producer,
                                .seq = seq,
                                .total = total,
                                .index = index,
                                .count = ipcp_mqchan_chunks(total, payload)};
    ipcp_mqchan_hdr_encode(&h, out);
    tu_fill(out + IPCP_MQCHAN_HDR_SIZE, len, seq * 131 + index);
    return IPCP_MQCHAN_HDR_SIZE + len;
}

/* ---- pure ------------------------------------------------------------------------------- */

static void test_codec(void **s)
{
    (void)s;
    struct ipcp_mqchan_hdr h = {
        .prio = 3, .producer = 255, .seq = 1ull << 50, .total = 70000, .index = 8, .count = 9};
    uint8_t b[IPCP_MQCHAN_HDR_SIZE], c[IPCP_MQCHAN_HDR_SIZE];
    ipcp_mqchan_hdr_encode(&h, b);
    struct ipcp_mqchan_hdr d;
    assert_int_equal(ipcp_mqchan_hdr_decode(b, sizeof(b), &d), 0);
    assert_int_equal(d.prio, 3);
    assert_int_equal(d.producer, 255);
    assert_true(d.seq == 1ull << 50);
    assert_int_equal(d.total, 70000);
    assert_int_equal(d.index, 8);
    assert_int_equal(d.count, 9);
    for (size_t i = 0; i < sizeof(b); i++) { /* every byte is covered: magic, version, check */
        memcpy(c, b, sizeof(c));
        c[i] ^= 0x10;
        assert_int_equal(ipcp_mqchan_hdr_decode(c, sizeof(c), &d), -EBADMSG);
    }
    assert_int_equal(ipcp_mqchan_hdr_decode(b, sizeof(b) - 1, &d), -EBADMSG);
    assert_int_equal(ipcp_mqchan_hdr_decode(b, 0, &d), -EBADMSG);

    assert_int_equal(ipcp_mqchan_chunks(0, 100), 1);
    assert_int_equal(ipcp_mqchan_chunks(1, 100), 1);
    assert_int_equal(ipcp_mqchan_chunks(100, 100), 1);
    assert_int_equal(ipcp_mqchan_chunks(101, 100), 2);
    assert_int_equal(ipcp_mqchan_chunks(200, 100), 2);
    assert_int_equal(ipcp_mqchan_chunks(201, 100), 3);
    assert_int_equal(ipcp_mqchan_chunks(5, 0), 0);
    assert_int_equal(ipcp_mqchan_chunks(1ull << 40, 1), 0);
}

#define P_MSGSIZE 132 /* payload 100 */
#define P_PAYLOAD (P_MSGSIZE - IPCP_MQCHAN_HDR_SIZE)

#define feed_expect(rx, m, n, prio, want) feed_expect_at(rx, m, n, prio, want, __LINE__)
static void feed_expect_at(struct ipcp_mqchan_rx *rx, const uint8_t *m, size_t n, unsigned prio,
                           int want, int line)
{
    struct ipcp_mqchan_msg out;
    int rc = ipcp_mqchan_rx_feed(rx, m, n, prio, &out);
    if (rc != want)
        fail_msg("line %d: feed returned %d (%s), want %d", line, rc, ipcp_errname(rc), want);
    assert_true(ipcp_mqchan_rx_valid(rx));
}

static void test_rx_refusals(void **s)
{
    (void)s;
    struct ipcp_mqchan_rx rx;
    assert_int_equal(ipcp_mqchan_rx_init(&rx, 0, 1000, P_MSGSIZE), -EINVAL);
    assert_int_equal(ipcp_mqchan_rx_init(&rx, 2, 0, P_MSGSIZE), -EINVAL);
    assert_int_equal(ipcp_mqchan_rx_init(&rx, 2, 1000, IPCP_MQCHAN_HDR_SIZE), -EINVAL);
    assert_int_equal(ipcp_mqchan_rx_init(&rx, 2, 1000, P_MSGSIZE), 0);
    uint8_t m[P_MSGSIZE + 8];
    size_t n;

    /* not ours: garbage, producer out of range, priority not the queue's, priority >= 4 */
    memset(m, 0xab, sizeof(m));
    feed_expect(&rx, m, P_MSGSIZE, 0, -EBADMSG);
    n = chunk(m, 2, 0, 0, 10, 0, P_PAYLOAD, 10);
    feed_expect(&rx, m, n, 0, -EBADMSG);
    n = chunk(m, 0, 1, 0, 10, 0, P_PAYLOAD, 10);
    feed_expect(&rx, m, n, 0, -EBADMSG);
    n = chunk(m, 0, 4, 0, 10, 0, P_PAYLOAD, 10);
    feed_expect(&rx, m, n, 4, -EBADMSG);

    /* lengths one off, a total above max_msg, a count that does not fit the total */
    n = chunk(m, 0, 0, 0, 10, 0, P_PAYLOAD, 9);
    feed_expect(&rx, m, n, 0, -IPCP_E_FRAGMENT);
    n = chunk(m, 0, 0, 1, 10, 0, P_PAYLOAD, 11);
    feed_expect(&rx, m, n, 0, -IPCP_E_FRAGMENT);
    n = chunk(m, 0, 0, 2, 250, 0, P_PAYLOAD, P_PAYLOAD - 1);
    feed_expect(&rx, m, n, 0, -IPCP_E_FRAGMENT);
    n = chunk(m, 0, 0, 3, 1001, 0, P_PAYLOAD, P_PAYLOAD);
    feed_expect(&rx, m, n, 0, -IPCP_E_TOOBIG);
    struct ipcp_mqchan_hdr h = {.producer = 0, .seq = 4, .total = 250, .index = 0, .count = 2};
    ipcp_mqchan_hdr_encode(&h, m);
    feed_expect(&rx, m, IPCP_MQCHAN_HDR_SIZE + P_PAYLOAD, 0, -IPCP_E_FRAGMENT);
    h.seq = 6; /* not 4: the rest of refused message 4 would be dropped quietly */
    h.count = 3;
    h.index = 3;
    ipcp_mqchan_hdr_encode(&h, m);
    feed_expect(&rx, m, IPCP_MQCHAN_HDR_SIZE + 50, 0, -IPCP_E_FRAGMENT);

    /* a middle chunk without its first */
    n = chunk(m, 0, 0, 5, 250, 1, P_PAYLOAD, P_PAYLOAD);
    feed_expect(&rx, m, n, 0, -IPCP_E_FRAGMENT);
    /* ... and the rest of that message is dropped without another error */
    n = chunk(m, 0, 0, 5, 250, 2, P_PAYLOAD, 50);
    feed_expect(&rx, m, n, 0, 0);
    assert_int_equal(rx.dropped, 1);

    /* a good three-chunk message, with a skipped index refused on the way */
    n = chunk(m, 1, 2, 10, 250, 0, P_PAYLOAD, P_PAYLOAD);
    feed_expect(&rx, m, n, 2, 0);
    n = chunk(m, 1, 2, 10, 250, 2, P_PAYLOAD, 50);
    feed_expect(&rx, m, n, 2, -IPCP_E_FRAGMENT);
    n = chunk(m, 1, 2, 11, 250, 0, P_PAYLOAD, P_PAYLOAD);
    feed_expect(&rx, m, n, 2, 0);
    n = chunk(m, 1, 2, 11, 250, 1, P_PAYLOAD, P_PAYLOAD);
    feed_expect(&rx, m, n, 2, 0);
    n = chunk(m, 1, 2, 11, 250, 2, P_PAYLOAD, 50);
    struct ipcp_mqchan_msg out;
    assert_int_equal(ipcp_mqchan_rx_feed(&rx, m, n, 2, &out), 1);
    assert_int_equal(out.len, 250);
    assert_int_equal(out.producer, 1);
    assert_int_equal(out.prio, 2);
    assert_int_equal(out.seq, 11);
    const uint8_t *d = out.data;
    assert_true(tu_check(d, P_PAYLOAD, 11 * 131 + 0));
    assert_true(tu_check(d + P_PAYLOAD, P_PAYLOAD, 11 * 131 + 1));
    assert_true(tu_check(d + 2 * P_PAYLOAD, 50, 11 * 131 + 2));

    /* the same sequence again, or an older one: refused; a newer one with a gap is fine */
    n = chunk(m, 1, 2, 11, 5, 0, P_PAYLOAD, 5);
    feed_expect(&rx, m, n, 2, -IPCP_E_SEQUENCE);
    n = chunk(m, 1, 2, 3, 5, 0, P_PAYLOAD, 5);
    feed_expect(&rx, m, n, 2, -IPCP_E_SEQUENCE);
    n = chunk(m, 1, 2, 20, 0, 0, P_PAYLOAD, 0);
    assert_int_equal(ipcp_mqchan_rx_feed(&rx, m, n, 2, &out), 1);
    assert_int_equal(out.len, 0);
    /* the other lanes of producer 1 have their own sequences */
    n = chunk(m, 1, 0, 0, 5, 0, P_PAYLOAD, 5);
    feed_expect(&rx, m, n, 0, 1);

    /* a message given up half-way: dropped and counted when the lane's next one starts */
    n = chunk(m, 1, 3, 30, 250, 0, P_PAYLOAD, P_PAYLOAD);
    feed_expect(&rx, m, n, 3, 0);
    n = chunk(m, 1, 3, 31, 7, 0, P_PAYLOAD, 7);
    feed_expect(&rx, m, n, 3, 1);
    assert_int_equal(rx.abandoned, 1);
    /* its orphaned rest is out of place */
    n = chunk(m, 1, 3, 30, 250, 1, P_PAYLOAD, P_PAYLOAD);
    feed_expect(&rx, m, n, 3, -IPCP_E_FRAGMENT);
    ipcp_mqchan_rx_fini(&rx);
}

/* Producers x priorities lanes, each a queue of chunks; random picks of a lane's next chunk. */
static void test_rx_interleave(void **s)
{
    (void)s;
    enum { PRODUCERS = 3, MSGS = 40, MAXLEN = 5 * P_PAYLOAD + 3 };
    struct ipcp_mqchan_rx rx;
    assert_int_equal(ipcp_mqchan_rx_init(&rx, PRODUCERS, MAXLEN, P_MSGSIZE), 0);
    uint64_t rng = 42;
    for (int round = 0; round < 20; round++) {
        /* per producer: MSGS messages at random priorities, chunked in send order */
        struct {
            uint64_t seq;
            uint32_t index, count, total;
            uint8_t prio;
        } cur[PRODUCERS] = {0};
        uint64_t next_seq[PRODUCERS], delivered = 0, want = 0;
        uint64_t last[PRODUCERS][IPCP_MQCHAN_PRIOS];
        memset(last, 0xff, sizeof(last));
        for (int p = 0; p < PRODUCERS; p++)
            next_seq[p] = (uint64_t)round * MSGS;
        uint8_t m[P_MSGSIZE];
        for (;;) {
            int p = (int)(splitmix64_next(&rng) % PRODUCERS), tries = 0;
            while (cur[p].count == 0 && next_seq[p] == (uint64_t)(round + 1) * MSGS &&
                   tries++ < PRODUCERS)
                p = (p + 1) % PRODUCERS;
            if (tries > PRODUCERS) break;
            if (cur[p].count == 0) { /* start the producer's next message */
                cur[p].seq = next_seq[p]++;
                cur[p].total = (uint32_t)(splitmix64_next(&rng) % (MAXLEN + 1));
                cur[p].prio = (uint8_t)(splitmix64_next(&rng) % IPCP_MQCHAN_PRIOS);
                cur[p].count = ipcp_mqchan_chunks(cur[p].total, P_PAYLOAD);
                cur[p].index = 0;
                want++;
            }
            uint32_t i = cur[p].index;
            size_t len = cur[p].total - (size_t)i * P_PAYLOAD;
            if (len > P_PAYLOAD) len = P_PAYLOAD;
            struct ipcp_mqchan_hdr h = {.prio = cur[p].prio,
                                        .producer = (uint16_t)p,
                                        .seq = cur[p].seq,
                                        .total = cur[p].total,
                                        .index = i,
                                        .count = cur[p].count};
            ipcp_mqchan_hdr_encode(&h, m);
            uint8_t whole[MAXLEN];
            tu_fill(whole, cur[p].total, seed_of((uint32_t)p, cur[p].seq));
            memcpy(m + IPCP_MQCHAN_HDR_SIZE, whole + (size_t)i * P_PAYLOAD, len);
            struct ipcp_mqchan_msg out;
            int rc = ipcp_mqchan_rx_feed(&rx, m, IPCP_MQCHAN_HDR_SIZE + len, h.prio, &out);
            assert_true(ipcp_mqchan_rx_valid(&rx));
            if (++cur[p].index == cur[p].count) {
                assert_int_equal(rc, 1);
                assert_int_equal(out.producer, p);
                assert_true(out.seq == cur[p].seq);
                assert_int_equal(out.len, cur[p].total);
                assert_true(tu_check(out.data, out.len, seed_of((uint32_t)p, out.seq)));
                uint64_t *l = &last[p][out.prio];
                assert_true(*l == UINT64_MAX || *l < out.seq); /* lane order */
                *l = out.seq;
                delivered++;
                cur[p].count = 0;
            } else {
                assert_int_equal(rc, 0);
            }
        }
        assert_true(delivered == want);
        assert_true(want == (uint64_t)PRODUCERS * MSGS);
    }
    assert_int_equal(rx.abandoned, 0);
    ipcp_mqchan_rx_fini(&rx);
}

/* ---- real queue ------------------------------------------------------------------------- */

struct send_arg {
    struct ipcp_mqchan *ch;
    uint32_t index;
    const size_t *sizes;
    size_t nsizes;
    int count; /* messages when sizes is NULL */
    size_t max;
};

static int sender_main(void *p)
{
    struct send_arg *a = p;
    alarm(60); /* a bug cannot hang the test */
    struct ipcp_mqchan_ep *ep;
    if (ipcp_mqchan_open(a->ch, IPCP_MQCHAN_SENDER, a->index, &ep) != 0) return 10;
    size_t n = a->sizes ? a->nsizes : (size_t)a->count;
    uint8_t *buf = malloc(a->max + 1);
    if (buf == NULL) return 11;
    uint64_t rng = a->index + 1;
    for (size_t i = 0; i < n; i++) {
        size_t len = a->sizes ? a->sizes[i] : (size_t)(splitmix64_next(&rng) % (a->max + 1));
        tu_fill(buf, len, seed_of(a->index, i));
        int rc = ipcp_mqchan_send(ep, buf, len, 0, 10000);
        if (rc != 0) {
            fprintf(stderr, "send %zu (%zu bytes): %s\n", i, len, ipcp_strerror(rc));
            return 12;
        }
    }
    free(buf);
    ipcp_mqchan_close(ep);
    return 0;
}

static void test_sizes_at_limits(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqchan *probe = make(1, 1, name, sizeof(name));
    struct ipcp_mqchan_info info;
    ipcp_mqchan_info(probe, &info);
    destroy_and_check(probe, name);
    size_t p = info.payload, q = (size_t)info.maxmsg * p; /* q: a queue full of chunks */
    const size_t sizes[] = {0,     1,         p - 1, p, p + 1, 2 * p - 1,
                            2 * p, 2 * p + 1, q - 1, q, q + 1, 3 * q + 7};
    size_t max = 3 * q + 7;
    /* first the refusals on a channel of their own: an index is opened once */
    struct ipcp_mqchan *ch = make(1, max, name, sizeof(name));
    struct ipcp_mqchan_ep *ep, *ep2;
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_SENDER, 1, &ep), -EINVAL); /* index */
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_SENDER, 0, &ep), 0);
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_SENDER, 0, &ep2), -EBUSY);
    assert_int_equal(ipcp_mqchan_send(ep, "", max + 1, 0, 100), -EMSGSIZE);
    assert_int_equal(ipcp_mqchan_send(ep, "", 0, IPCP_MQCHAN_PRIOS, 100), -EINVAL);
    assert_int_equal(ipcp_mqchan_recv(ep, NULL, 0, 0, NULL, NULL), -IPCP_E_STATE);
    uint8_t *nb = calloc(1, q + 1); /* one chunk more than the queue holds, without waiting */
    assert_non_null(nb);
    assert_int_equal(ipcp_mqchan_send(ep, nb, q + 1, 0, 0), -EAGAIN);
    assert_int_equal(ipcp_mqchan_send(ep, nb, q, 0, 0), 0); /* a queue's worth goes */
    free(nb);
    mqd_t mq = mq_open(name, O_RDONLY);
    struct mq_attr at;
    assert_int_equal(mq_getattr(mq, &at), 0);
    assert_int_equal(at.mq_curmsgs, info.maxmsg); /* nothing of the refused one */
    char *drain = malloc((size_t)info.msgsize);
    for (long i = 0; i < info.maxmsg; i++)
        assert_true(mq_receive(mq, drain, (size_t)info.msgsize, NULL) > 0);
    free(drain);
    mq_close(mq);
    ipcp_mqchan_close(ep);
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_SENDER, 0, &ep2), -EBUSY); /* closed too */
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_RECEIVER, 7, &ep), 0);     /* index ignored */
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_RECEIVER, 0, &ep2), -EBUSY); /* 1 consumer */
    ipcp_mqchan_close(ep);
    destroy_and_check(ch, name);

    ch = make(1, max, name, sizeof(name));
    struct send_arg a = {.ch = ch, .sizes = sizes, .nsizes = IPCP_ARRAY_SIZE(sizes), .max = max};
    pid_t pid = tu_spawn(sender_main, &a);
    struct ipcp_mqchan_ep *rx;
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_RECEIVER, 0, &rx), 0);
    uint8_t *buf = malloc(max);
    assert_non_null(buf);
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(sizes); i++) {
        unsigned prio = 9;
        uint32_t producer = 9;
        if (sizes[i] > 0) /* one byte short: the message stays for the next call */
            assert_int_equal(ipcp_mqchan_recv(rx, buf, sizes[i] - 1, 10000, NULL, NULL), -EMSGSIZE);
        ssize_t n = ipcp_mqchan_recv(rx, buf, sizes[i], 10000, &prio, &producer);
        if (n != (ssize_t)sizes[i]) fail_msg("message %zu: got %zd, want %zu", i, n, sizes[i]);
        assert_true(tu_check(buf, (size_t)n, seed_of(0, i)));
        assert_int_equal(prio, 0);
        assert_int_equal(producer, 0);
    }
    tu_wait_ok(pid, 10000);
    struct ipcp_mqchan_stats st;
    ipcp_mqchan_stats(rx, &st);
    assert_int_equal(st.messages, IPCP_ARRAY_SIZE(sizes));
    uint64_t chunks = 0;
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(sizes); i++)
        chunks += ipcp_mqchan_chunks(sizes[i], p);
    assert_int_equal(st.chunks, chunks);
    assert_int_equal(st.refused + st.abandoned + st.dropped, 0);
    free(buf);
    ipcp_mqchan_close(rx);
    destroy_and_check(ch, name);
}

static void test_processes(void **s)
{
    (void)s;
    enum { PRODUCERS = 3, MSGS = 2000 };
    const size_t max = 3 * 8192;
    char name[96];
    struct ipcp_mqchan *ch = make(PRODUCERS, max, name, sizeof(name));
    struct send_arg a[PRODUCERS];
    pid_t pid[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        a[i] = (struct send_arg){.ch = ch, .index = i, .count = MSGS, .max = max};
        pid[i] = tu_spawn(sender_main, &a[i]);
    }
    struct ipcp_mqchan_ep *rx;
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_RECEIVER, 0, &rx), 0);
    uint8_t *buf = malloc(max);
    assert_non_null(buf);
    uint64_t next[PRODUCERS] = {0}, rng[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++)
        rng[i] = i + 1;
    for (int n = 0; n < PRODUCERS * MSGS; n++) {
        uint32_t p = 99;
        ssize_t len = ipcp_mqchan_recv(rx, buf, max, 10000, NULL, &p);
        if (len < 0) fail_msg("recv %d: %s", n, ipcp_strerror((int)len));
        assert_true(p < PRODUCERS);
        /* in order per producer: the length and bytes are those of its next message */
        size_t want = (size_t)(splitmix64_next(&rng[p]) % (max + 1));
        assert_int_equal((size_t)len, want);
        assert_true(tu_check(buf, (size_t)len, seed_of(p, next[p])));
        next[p]++;
    }
    for (int i = 0; i < PRODUCERS; i++)
        tu_wait_ok(pid[i], 30000);
    /* nothing more: every producer closed, and that is an answer, not the deadline */
    assert_int_equal(ipcp_mqchan_recv(rx, buf, max, 30000, NULL, NULL), -EPIPE);
    assert_int_equal(ipcp_mqchan_recv(rx, buf, max, 0, NULL, NULL), -EPIPE); /* and stays */
    free(buf);
    ipcp_mqchan_close(rx);
    destroy_and_check(ch, name);
}

static void test_priority_and_foreign(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqchan *ch = make(1, 20000, name, sizeof(name));
    struct ipcp_mqchan_ep *tx, *rx;
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_SENDER, 0, &tx), 0);
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_RECEIVER, 0, &rx), 0);
    static uint8_t big[20000], buf[20000];
    tu_fill(big, sizeof(big), 1);
    assert_int_equal(ipcp_mqchan_send(tx, big, sizeof(big), 0, 1000), 0); /* 3 chunks */
    assert_int_equal(ipcp_mqchan_send(tx, "urgent", 6, 3, 1000), 0);
    unsigned prio;
    assert_int_equal(ipcp_mqchan_recv(rx, buf, sizeof(buf), 1000, &prio, NULL), 6);
    assert_int_equal(prio, 3);
    assert_memory_equal(buf, "urgent", 6);
    assert_int_equal(ipcp_mqchan_recv(rx, buf, sizeof(buf), 1000, &prio, NULL), sizeof(big));
    assert_int_equal(prio, 0);
    assert_memory_equal(buf, big, sizeof(big));

    /* an urgent message overtakes a chunked one half-way (its rest is still queued) */
    assert_int_equal(ipcp_mqchan_send(tx, big, sizeof(big), 1, 1000), 0);
    mqd_t q = mq_open(name, O_RDWR);
    assert_true(q != (mqd_t)-1);
    char raw[8192];
    unsigned rp;
    ssize_t rn = mq_receive(q, raw, sizeof(raw), &rp); /* steal the first chunk ... */
    assert_true(rn > IPCP_MQCHAN_HDR_SIZE);
    assert_int_equal(rp, 1);
    assert_int_equal(ipcp_mqchan_send(tx, "x", 1, 2, 1000), 0);
    assert_int_equal(mq_send(q, raw, (size_t)rn, rp), 0); /* ... and put it back last */
    assert_int_equal(ipcp_mqchan_recv(rx, buf, sizeof(buf), 1000, &prio, NULL), 1);
    /* the rest of the big one arrives without its first chunk, which comes after it */
    ssize_t r = ipcp_mqchan_recv(rx, buf, sizeof(buf), 1000, NULL, NULL);
    assert_int_equal(r, -IPCP_E_FRAGMENT);
    assert_int_equal(ipcp_mqchan_recv(rx, buf, sizeof(buf), 100, NULL, NULL), -ETIMEDOUT);

    /* a foreign message is refused, and the next message arrives */
    assert_int_equal(mq_send(q, "not a chunk", 11, 0), 0);
    assert_int_equal(ipcp_mqchan_send(tx, "ok", 2, 0, 1000), 0);
    assert_int_equal(ipcp_mqchan_recv(rx, buf, sizeof(buf), 1000, NULL, NULL), -EBADMSG);
    assert_int_equal(ipcp_mqchan_recv(rx, buf, sizeof(buf), 1000, NULL, NULL), 2);
    struct ipcp_mqchan_stats st;
    ipcp_mqchan_stats(rx, &st);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.dropped, 1); /* the big one's last chunk, after its refused middle */
    mq_close(q);
    ipcp_mqchan_close(tx);
    ipcp_mqchan_close(rx);
    destroy_and_check(ch, name);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_signals_do_not_cut_waits(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqchan *ch = make(1, 100, name, sizeof(name));
    struct ipcp_mqchan_ep *rx;
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_RECEIVER, 0, &rx), 0);
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: EINTR */
    struct sigaction old;
    sigaction(SIGALRM, &sa, &old);
    struct itimerval it = {{0, 2000}, {0, 2000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    int64_t t0 = ipcp__now_ns();
    char b[8];
    ssize_t r = ipcp_mqchan_recv(rx, b, sizeof(b), 300, NULL, NULL);
    int64_t ms = (ipcp__now_ns() - t0) / 1000000;
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    assert_int_equal(r, -ETIMEDOUT);
    assert_true(ms >= 290 && ms < 2000);
    ipcp_mqchan_close(rx);
    destroy_and_check(ch, name);
}

/* ---- dead and closed peers: an answer within a slice, never a message lost -------------- */

enum { LONG_MS = 30000 }; /* far above a slice: only the peer's end can return before it */

struct peer_arg {
    struct ipcp_mqchan *ch;
    int role;
    int how;  /* PEER_KILL: SIGKILLs itself; PEER_CLOSE: closes its endpoint and lives on */
    int msgs; /* sender: messages sent (after the delay) before its end */
    int fill; /* sender: then a message of 4 queues' worth, that blocks half-way */
    int delay_ms;
    int ready_fd;
};

enum { PEER_KILL = 1, PEER_CLOSE = 2 };

static int peer_main(void *p)
{
    struct peer_arg *a = p;
    alarm(60); /* a bug cannot hang the test */
    struct ipcp_mqchan_ep *ep;
    if (ipcp_mqchan_open(a->ch, a->role, 0, &ep) != 0) return 10;
    if (write(a->ready_fd, "r", 1) != 1) return 11;
    usleep((useconds_t)a->delay_ms * 1000); /* the other side blocks meanwhile */
    struct ipcp_mqchan_info info;
    ipcp_mqchan_info(a->ch, &info);
    uint8_t buf[3 * 8192];
    for (int i = 0; a->role == IPCP_MQCHAN_SENDER && i < a->msgs; i++) {
        size_t len = (size_t)(i * 7919) % sizeof(buf); /* one to three chunks */
        tu_fill(buf, len, seed_of(0, (uint64_t)i));
        if (ipcp_mqchan_send(ep, buf, len, 0, 10000) != 0) return 12;
    }
    if (a->fill) {
        size_t len = 4 * (size_t)info.maxmsg * info.payload;
        uint8_t *b = calloc(1, len);
        (void)ipcp_mqchan_send(ep, b, len, 0, LONG_MS); /* blocks with the queue full */
    }
    if (a->how == PEER_KILL) raise(SIGKILL);
    ipcp_mqchan_close(ep);
    pause(); /* closed, alive: the alarm ends it */
    return 0;
}

/* The receiver blocks on an empty queue with a long timeout; its only producer sends messages
 * and then dies, or closes: every message comes first, then PEERDEAD, or EPIPE. */
static void test_producer_ends_while_receiver_waits(void **s)
{
    (void)s;
    for (int how = PEER_KILL; how <= PEER_CLOSE; how++) {
        char name[96];
        struct ipcp_mqchan *ch = make(1, 3 * 8192, name, sizeof(name));
        struct ipcp_mqchan_ep *rx;
        assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_RECEIVER, 0, &rx), 0);
        enum { MSGS = 6 };
        struct peer_arg a = {
            .ch = ch, .role = IPCP_MQCHAN_SENDER, .how = how, .msgs = MSGS, .delay_ms = 300};
        pid_t pid = tu_spawn_ready(peer_main, &a, &a.ready_fd, NULL);
        static uint8_t buf[3 * 8192];
        for (int i = 0; i < MSGS; i++) {
            ssize_t n = ipcp_mqchan_recv(rx, buf, sizeof(buf), LONG_MS, NULL, NULL);
            if (n < 0) fail_msg("message %d: %s", i, ipcp_strerror((int)n));
            assert_int_equal((size_t)n, (size_t)(i * 7919) % sizeof(buf));
            assert_true(tu_check(buf, (size_t)n, seed_of(0, (uint64_t)i)));
        }
        ssize_t r = ipcp_mqchan_recv(rx, buf, sizeof(buf), LONG_MS, NULL, NULL);
        assert_int_equal(r, how == PEER_KILL ? -IPCP_E_PEERDEAD : -EPIPE);
        assert_int_equal(ipcp_mqchan_recv(rx, buf, sizeof(buf), 0, NULL, NULL), r); /* stays */
        if (how == PEER_CLOSE) kill(pid, SIGKILL); /* closed and alive until now */
        int st = tu_wait(pid, 5000);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        ipcp_mqchan_close(rx);
        destroy_and_check(ch, name);
    }
}

/* A producer dies half-way through a message, blocked on the full queue: the receiver takes
 * every chunk that made it, delivers nothing of the torn message, and says PEERDEAD. */
static void test_producer_dies_half_way(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqchan *ch = make(1, 4 * 10 * 8192, name, sizeof(name));
    struct ipcp_mqchan_info info;
    ipcp_mqchan_info(ch, &info);
    /* it never gets past the full queue: killed here */
    struct peer_arg a = {.ch = ch, .role = IPCP_MQCHAN_SENDER, .how = PEER_CLOSE, .fill = 1};
    pid_t pid = tu_spawn_ready(peer_main, &a, &a.ready_fd, NULL);
    struct mq_attr at = {0};
    mqd_t q = mq_open(name, O_RDONLY);
    for (int i = 0; i < 5000 && at.mq_curmsgs != info.maxmsg; i++) {
        usleep(1000);
        mq_getattr(q, &at);
    }
    mq_close(q);
    assert_int_equal(at.mq_curmsgs, info.maxmsg);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_true(WIFSIGNALED(tu_wait(pid, 5000))); /* dead before anything is taken */
    struct ipcp_mqchan_ep *rx;
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_RECEIVER, 0, &rx), 0);
    uint8_t *buf = malloc(4 * 10 * 8192);
    assert_non_null(buf);
    assert_int_equal(ipcp_mqchan_recv(rx, buf, 4 * 10 * 8192, LONG_MS, NULL, NULL),
                     -IPCP_E_PEERDEAD);
    struct ipcp_mqchan_stats st;
    ipcp_mqchan_stats(rx, &st);
    assert_int_equal(st.chunks, info.maxmsg); /* drained first; the partial message is held */
    assert_int_equal(st.messages, 0);
    free(buf);
    ipcp_mqchan_close(rx);
    destroy_and_check(ch, name);
}

/* A sender blocks on the full queue with a long timeout; the only receiver dies, or closes. */
static void test_receiver_ends_while_sender_waits(void **s)
{
    (void)s;
    for (int how = PEER_KILL; how <= PEER_CLOSE; how++) {
        char name[96];
        struct ipcp_mqchan *ch = make(1, 10 * 8192, name, sizeof(name));
        struct ipcp_mqchan_info info;
        ipcp_mqchan_info(ch, &info);
        struct ipcp_mqchan_ep *tx;
        assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_SENDER, 0, &tx), 0);
        size_t big = (size_t)info.maxmsg * info.payload; /* fills the queue */
        uint8_t *buf = calloc(1, big);
        assert_non_null(buf);
        assert_int_equal(ipcp_mqchan_send(tx, buf, big, 0, 1000), 0);
        struct peer_arg a = {.ch = ch, .role = IPCP_MQCHAN_RECEIVER, .how = how, .delay_ms = 300};
        pid_t pid = tu_spawn_ready(peer_main, &a, &a.ready_fd, NULL);
        assert_int_equal(ipcp_mqchan_send(tx, buf, 1, 0, LONG_MS),
                         how == PEER_KILL ? -IPCP_E_PEERDEAD : -EPIPE);
        if (how == PEER_CLOSE) kill(pid, SIGKILL); /* closed and alive until now */
        assert_true(WIFSIGNALED(tu_wait(pid, 5000)));
        free(buf);
        ipcp_mqchan_close(tx);
        destroy_and_check(ch, name);
    }
}

/* Two receivers: the death of one is no answer while the other may still take messages. */
static void test_one_receiver_of_two_dies(void **s)
{
    (void)s;
    char name[96], stem[64];
    struct ipcp_mqchan_cfg cfg = {
        .stem = tu_name(stem, sizeof(stem)), .producers = 1, .consumers = 2, .max_msg = 100};
    struct ipcp_mqchan *ch = NULL;
    assert_int_equal(ipcp_mqchan_create(&cfg, &ch), 0);
    snprintf(name, sizeof(name), "%s", ipcp_mqchan_name(ch));
    struct ipcp_mqchan_info info;
    ipcp_mqchan_info(ch, &info);
    struct ipcp_mqchan_ep *tx, *rx;
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_SENDER, 0, &tx), 0);
    for (long i = 0; i < info.maxmsg; i++)
        assert_int_equal(ipcp_mqchan_send(tx, "m", 1, 0, 1000), 0);
    struct peer_arg a = {.ch = ch, .role = IPCP_MQCHAN_RECEIVER, .how = PEER_KILL};
    pid_t pid = tu_spawn_ready(peer_main, &a, &a.ready_fd, NULL);
    assert_true(WIFSIGNALED(tu_wait(pid, 5000)));
    assert_int_equal(ipcp_mqchan_send(tx, "m", 1, 0, 300), -ETIMEDOUT); /* receiver 1 unopened */
    assert_int_equal(ipcp_mqchan_open(ch, IPCP_MQCHAN_RECEIVER, 0, &rx), 0); /* the free one */
    char b[100];
    assert_int_equal(ipcp_mqchan_recv(rx, b, sizeof(b), 1000, NULL, NULL), 1);
    assert_int_equal(ipcp_mqchan_send(tx, "m", 1, 0, 1000), 0); /* room again */
    ipcp_mqchan_close(rx);
    assert_int_equal(ipcp_mqchan_send(tx, "m", 1, 0, LONG_MS), -IPCP_E_PEERDEAD); /* both gone */
    ipcp_mqchan_close(tx);
    destroy_and_check(ch, name);
}

static void test_limits(void **s)
{
    (void)s;
    struct ipcp_mq_limits lim;
    ipcp_mq_limits_read(&lim);
    char name[96], stem[64];
    struct ipcp_mqchan *ch = make(1, 1, name, sizeof(name));
    struct ipcp_mqchan_info info;
    ipcp_mqchan_info(ch, &info);
    destroy_and_check(ch, name);
    /* the limits are read and reported; the default geometry is under them */
    assert_int_equal(info.msg_max, lim.msg_max);
    assert_int_equal(info.msgsize_max, lim.msgsize_max);
    long want_max = !lim.privileged && lim.msg_max > 0 && lim.msg_max < 10 ? lim.msg_max : 10;
    long want_size =
        !lim.privileged && lim.msgsize_max > 0 && lim.msgsize_max < 8192 ? lim.msgsize_max : 8192;
    assert_int_equal(info.maxmsg, want_max);
    assert_int_equal(info.msgsize, want_size);
    assert_int_equal(info.payload, want_size - IPCP_MQCHAN_HDR_SIZE);

    struct ipcp_mqchan_cfg cfg = {.producers = 1, .consumers = 1, .max_msg = 100};
    cfg.stem = tu_name(stem, sizeof(stem));
    snprintf(name, sizeof(name), "/ipcp.mqchan.%ld.%s", (long)getpid(), stem);
    ch = NULL;
    cfg.msgsize = IPCP_MQCHAN_HDR_SIZE; /* no room for payload */
    assert_int_equal(ipcp_mqchan_create(&cfg, &ch), -EINVAL);
    cfg.msgsize = 64;
    cfg.consumers = 2; /* chunked messages for two consumers */
    assert_int_equal(ipcp_mqchan_create(&cfg, &ch), -EINVAL);
    cfg.max_msg = 32; /* one chunk each: fine */
    assert_int_equal(ipcp_mqchan_create(&cfg, &ch), 0);
    ipcp_mqchan_destroy(ch);
    assert_true(mq_gone(name));
    ch = NULL;
    if (lim.privileged || lim.msg_max <= 0 || lim.msgsize_max <= 0) {
        print_message("privileged or limits unreadable: no refusal to check here\n");
        return;
    }
    cfg.maxmsg = lim.msg_max + 1;
    assert_int_equal(ipcp_mqchan_create(&cfg, &ch), -IPCP_E_MQ_MAXMSG);
    cfg.maxmsg = 0;
    cfg.msgsize = lim.msgsize_max + 1;
    assert_int_equal(ipcp_mqchan_create(&cfg, &ch), -IPCP_E_MQ_MSGSIZE);
    assert_null(ch);
    assert_true(mq_gone(name)); /* nothing left after a refusal */
    cfg.maxmsg = lim.msg_max;   /* the largest allowed works */
    cfg.msgsize = lim.msgsize_max;
    assert_int_equal(ipcp_mqchan_create(&cfg, &ch), 0);
    ipcp_mqchan_destroy(ch);
    assert_true(mq_gone(name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_rx_refusals),
        cmocka_unit_test(test_rx_interleave),
        cmocka_unit_test(test_sizes_at_limits),
        cmocka_unit_test(test_processes),
        cmocka_unit_test(test_priority_and_foreign),
        cmocka_unit_test(test_signals_do_not_cut_waits),
        cmocka_unit_test(test_producer_ends_while_receiver_waits),
        cmocka_unit_test(test_producer_dies_half_way),
        cmocka_unit_test(test_receiver_ends_while_sender_waits),
        cmocka_unit_test(test_one_receiver_of_two_dies),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* handoff_test.c - the shm READY/OK handoff.
 *
 * Pure: the codec refuses each malformed field; the sender and receiver state machines refuse
 * every message that does not fit their state (duplicate or invented OK, wrong seq, slot out of
 * range or not seq % nslots, len above the slot) and stay valid; a randomized pipeline of both
 * machines with delayed queues never writes a slot before its OK and delivers every byte.
 * Real: 100 000 checksummed messages of random length between two processes through 8 slots,
 * 20 000 through 1 slot, and through threads sharing one mapping (the TSan case); a too-small
 * receive buffer keeps the message; a forged READY with a wrong checksum gives IPCP_E_PAYSUM and
 * the stream goes on; a forged OK is refused; each side notices the other's death; the mq limit
 * is named; nothing is left in /dev/shm or the mq namespace. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "ipcproof/err.h"
#include "ipcproof/handoff.h"
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

static void queue_names(const char *shm, char *r, char *o, size_t cap)
{
    const char *rest = shm + strlen("/ipcp.handoff");
    snprintf(r, cap, "/ipcp.hready%s", rest);
    snprintf(o, cap, "/ipcp.hok%s", rest);
}

static int my_shm_left(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ipcp.handoff.%ld.", (long)getpid());
    return tu_shm_count(prefix);
}

static struct ipcp_handoff *make_f(uint32_t nslots, size_t slot_size, unsigned flags, char *name,
                                   size_t cap)
{
    struct ipcp_handoff_cfg cfg = {
        .stem = NULL, .nslots = nslots, .slot_size = slot_size, .flags = flags};
    struct ipcp_handoff *ho = NULL;
    int rc = ipcp_handoff_create(&cfg, &ho);
    if (rc != 0) fail_msg("ipcp_handoff_create: %s", ipcp_strerror(rc));
    snprintf(name, cap, "%s", ipcp_handoff_name(ho));
    return ho;
}

static struct ipcp_handoff *make(uint32_t nslots, size_t slot_size, char *name, size_t cap)
{
    return make_f(nslots, slot_size, 0, name, cap);
}

static void destroy_and_check(struct ipcp_handoff *ho, const char *name)
{
    char r[96], o[96];
    queue_names(name, r, o, sizeof(r));
    ipcp_handoff_destroy(ho);
    assert_true(mq_gone(r));
    assert_true(mq_gone(o));
    assert_int_equal(my_shm_left(), 0);
}

/* Length of message seq: 0 .. max, deterministic. */
static size_t msg_len(uint64_t seq, size_t max)
{
    uint64_t st = seq * 7919 + 1;
    return (size_t)(splitmix64_next(&st) % (max + 1));
}

/* ---- codec ------------------------------------------------------------------------------ */

static void test_codec(void **s)
{
    (void)s;
    struct ipcp_handoff_msg m = {
        .type = IPCP_HANDOFF_READY, .slot = 3, .len = 77, .seq = 1ull << 40, .sum = 0xabcdef};
    uint8_t b[IPCP_HANDOFF_MSG_SIZE];
    ipcp_handoff_msg_encode(&m, b);
    struct ipcp_handoff_msg d;
    assert_int_equal(ipcp_handoff_msg_decode(b, sizeof(b), &d), 0);
    assert_int_equal(d.type, m.type);
    assert_int_equal(d.slot, m.slot);
    assert_int_equal(d.len, m.len);
    assert_int_equal(d.seq, m.seq);
    assert_int_equal(d.sum, m.sum);

    struct {
        size_t off;
        uint8_t val;
    } bad[] = {{0, 0x00}, {3, 0x00}, {4, 0}, {4, 3},   {5, 1}, /* F_NOSUM with a sum */
               {5, 2},    {5, 0x81}, {6, 1}, {7, 0x80}};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(bad); i++) {
        uint8_t c[IPCP_HANDOFF_MSG_SIZE];
        memcpy(c, b, sizeof(c));
        c[bad[i].off] = bad[i].val;
        assert_int_equal(ipcp_handoff_msg_decode(c, sizeof(c), &d), -EBADMSG);
    }
    assert_int_equal(ipcp_handoff_msg_decode(b, sizeof(b) - 1, &d), -EBADMSG);
    assert_int_equal(ipcp_handoff_msg_decode(b, 0, &d), -EBADMSG);
    /* an OK must not carry a length or a checksum */
    struct ipcp_handoff_msg ok = {.type = IPCP_HANDOFF_OK, .slot = 1, .len = 1, .seq = 9};
    ipcp_handoff_msg_encode(&ok, b);
    assert_int_equal(ipcp_handoff_msg_decode(b, sizeof(b), &d), -EBADMSG);
    ok.len = 0;
    ok.sum = 5;
    ipcp_handoff_msg_encode(&ok, b);
    assert_int_equal(ipcp_handoff_msg_decode(b, sizeof(b), &d), -EBADMSG);
    ok.sum = 0;
    ok.flags = IPCP_HANDOFF_F_NOSUM; /* nor a flag */
    ipcp_handoff_msg_encode(&ok, b);
    assert_int_equal(ipcp_handoff_msg_decode(b, sizeof(b), &d), -EBADMSG);
    ok.flags = 0;
    ipcp_handoff_msg_encode(&ok, b);
    assert_int_equal(ipcp_handoff_msg_decode(b, sizeof(b), &d), 0);
    /* a READY without a checksum: F_NOSUM and sum 0 */
    struct ipcp_handoff_msg ns = {
        .type = IPCP_HANDOFF_READY, .flags = IPCP_HANDOFF_F_NOSUM, .slot = 1, .len = 3, .seq = 5};
    ipcp_handoff_msg_encode(&ns, b);
    assert_int_equal(ipcp_handoff_msg_decode(b, sizeof(b), &d), 0);
    assert_int_equal(d.flags, IPCP_HANDOFF_F_NOSUM);
    assert_int_equal(ipcp_handoff_checksum("abc", 3), ipcp_handoff_checksum("abc", 3));
    assert_true(ipcp_handoff_checksum("abc", 3) != ipcp_handoff_checksum("abd", 3));
}

/* ---- sender machine --------------------------------------------------------------------- */

static void mk_ok(uint8_t out[IPCP_HANDOFF_MSG_SIZE], uint32_t slot, uint64_t seq)
{
    struct ipcp_handoff_msg m = {.type = IPCP_HANDOFF_OK, .slot = slot, .seq = seq};
    ipcp_handoff_msg_encode(&m, out);
}

static void test_tx_machine(void **s)
{
    (void)s;
    struct ipcp_handoff_tx tx;
    assert_int_equal(ipcp_handoff_tx_init(&tx, 0, 64), -EINVAL);
    assert_int_equal(ipcp_handoff_tx_init(&tx, IPCP_HANDOFF_MAX_SLOTS + 1, 64), -EINVAL);
    assert_int_equal(ipcp_handoff_tx_init(&tx, 2, 0), -EINVAL);
    assert_int_equal(ipcp_handoff_tx_init(&tx, 2, (size_t)IPCP_HANDOFF_MAX_SLOT + 1), -EINVAL);
    assert_int_equal(ipcp_handoff_tx_init(&tx, 2, 64), 0);
    assert_int_equal(tx.checksum, 0); /* off unless asked for */
    tx.checksum = 1;
    assert_true(ipcp_handoff_tx_valid(&tx));

    uint32_t slot;
    uint64_t seq;
    uint8_t ready[IPCP_HANDOFF_MSG_SIZE], ok[IPCP_HANDOFF_MSG_SIZE];
    assert_int_equal(ipcp_handoff_tx_next(&tx, &slot, &seq), 0);
    assert_int_equal(slot, 0);
    assert_int_equal(seq, 0);
    assert_int_equal(ipcp_handoff_tx_sent(&tx, 0), -IPCP_E_STATE); /* not written */
    assert_int_equal(ipcp_handoff_tx_written(&tx, 1, 10, 0, ready), -IPCP_E_STATE); /* not next */
    assert_int_equal(ipcp_handoff_tx_written(&tx, 0, 65, 0, ready), -EMSGSIZE);
    assert_int_equal(ipcp_handoff_tx_written(&tx, 0, 64, 42, ready), 0);
    assert_true(ipcp_handoff_tx_valid(&tx));
    assert_int_equal(ipcp_handoff_tx_next(&tx, &slot, &seq), -IPCP_E_STATE); /* send it first */
    struct ipcp_handoff_msg d;
    assert_int_equal(ipcp_handoff_msg_decode(ready, sizeof(ready), &d), 0);
    assert_int_equal(d.type, IPCP_HANDOFF_READY);
    assert_int_equal(d.len, 64);
    assert_int_equal(d.sum, 42);
    assert_int_equal(d.flags, 0);
    /* without the checksum option the READY says so and carries no sum */
    struct ipcp_handoff_tx plain = tx;
    plain.checksum = 0;
    plain.slot[0].state = IPCP_HANDOFF_FREE;
    assert_int_equal(ipcp_handoff_tx_written(&plain, 0, 64, 42, ready), 0);
    assert_int_equal(ipcp_handoff_msg_decode(ready, sizeof(ready), &d), 0);
    assert_int_equal(d.flags, IPCP_HANDOFF_F_NOSUM);
    assert_int_equal(d.sum, 0);
    /* abort: the same seq is used again */
    assert_int_equal(ipcp_handoff_tx_abort(&tx, 0), 0);
    assert_int_equal(ipcp_handoff_tx_abort(&tx, 0), -IPCP_E_STATE);
    assert_int_equal(ipcp_handoff_tx_next(&tx, &slot, &seq), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(ipcp_handoff_tx_written(&tx, 0, 5, 1, ready), 0);
    assert_int_equal(ipcp_handoff_tx_sent(&tx, 0), 0);
    assert_int_equal(ipcp_handoff_tx_inflight(&tx), 1);
    assert_int_equal(ipcp_handoff_tx_next(&tx, &slot, &seq), 0);
    assert_int_equal(slot, 1);
    assert_int_equal(ipcp_handoff_tx_written(&tx, 1, 6, 2, ready), 0);
    assert_int_equal(ipcp_handoff_tx_sent(&tx, 1), 0);
    assert_true(ipcp_handoff_tx_valid(&tx));
    /* both slots out: slot 0 is not reused before its OK */
    assert_int_equal(ipcp_handoff_tx_next(&tx, &slot, &seq), -EAGAIN);

    /* OKs that do not fit are refused and change nothing */
    uint32_t got;
    mk_ok(ok, 2, 0);
    assert_int_equal(ipcp_handoff_tx_on_ok(&tx, ok, sizeof(ok), &got), -EBADMSG); /* slot range */
    mk_ok(ok, 0, 1);
    assert_int_equal(ipcp_handoff_tx_on_ok(&tx, ok, sizeof(ok), &got), -IPCP_E_SEQUENCE);
    assert_int_equal(ipcp_handoff_tx_on_ok(&tx, ready, sizeof(ready), &got), -EBADMSG); /* READY */
    assert_int_equal(ipcp_handoff_tx_on_ok(&tx, ok, 3, &got), -EBADMSG);
    assert_int_equal(ipcp_handoff_tx_inflight(&tx), 2);
    /* out of order is fine per slot */
    mk_ok(ok, 1, 1);
    assert_int_equal(ipcp_handoff_tx_on_ok(&tx, ok, sizeof(ok), &got), 0);
    assert_int_equal(got, 1);
    assert_int_equal(ipcp_handoff_tx_on_ok(&tx, ok, sizeof(ok), &got), -IPCP_E_STATE); /* dup */
    assert_int_equal(ipcp_handoff_tx_next(&tx, &slot, &seq), -EAGAIN); /* seq 2 needs slot 0 */
    mk_ok(ok, 0, 0);
    assert_int_equal(ipcp_handoff_tx_on_ok(&tx, ok, sizeof(ok), &got), 0);
    assert_int_equal(ipcp_handoff_tx_next(&tx, &slot, &seq), 0);
    assert_int_equal(slot, 0);
    assert_int_equal(seq, 2);
    assert_int_equal(ipcp_handoff_tx_inflight(&tx), 0);
    assert_true(ipcp_handoff_tx_valid(&tx));
    /* valid() notices a broken invariant */
    tx.slot[1].state = IPCP_HANDOFF_READY_SENT;
    assert_false(ipcp_handoff_tx_valid(&tx));
}

/* ---- receiver machine ------------------------------------------------------------------- */

static void mk_ready(uint8_t out[IPCP_HANDOFF_MSG_SIZE], uint32_t slot, uint64_t seq, uint32_t len,
                     uint64_t sum)
{
    struct ipcp_handoff_msg m = {
        .type = IPCP_HANDOFF_READY, .slot = slot, .len = len, .seq = seq, .sum = sum};
    ipcp_handoff_msg_encode(&m, out);
}

static void test_rx_machine(void **s)
{
    (void)s;
    struct ipcp_handoff_rx rx;
    assert_int_equal(ipcp_handoff_rx_init(&rx, 0, 8), -EINVAL);
    assert_int_equal(ipcp_handoff_rx_init(&rx, 4, 100), 0);
    uint8_t b[IPCP_HANDOFF_MSG_SIZE], ok[IPCP_HANDOFF_MSG_SIZE];
    struct ipcp_handoff_msg m;
    const char data[] = "payload";
    uint64_t sum = ipcp_handoff_checksum(data, 7);

    assert_int_equal(ipcp_handoff_rx_done(&rx, ok), -IPCP_E_STATE);
    assert_int_equal(ipcp_handoff_rx_verify(&rx, data, 7), -IPCP_E_STATE);
    struct {
        uint32_t slot;
        uint64_t seq;
        uint32_t len;
        int want;
    } cases[] = {
        {4, 0, 7, -EBADMSG},         /* slot out of range */
        {1, 0, 7, -EBADMSG},         /* slot is not seq % nslots */
        {0, 0, 101, -EBADMSG},       /* longer than the slot */
        {1, 1, 7, -IPCP_E_SEQUENCE}, /* a gap */
        {0, 4, 7, -IPCP_E_SEQUENCE}, /* a later round */
        {0, 0, 7, 0},                /* the expected one */
    };
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(cases); i++) {
        mk_ready(b, cases[i].slot, cases[i].seq, cases[i].len, sum);
        assert_int_equal(ipcp_handoff_rx_on_ready(&rx, b, sizeof(b), &m), cases[i].want);
        assert_true(ipcp_handoff_rx_valid(&rx));
    }
    mk_ok(b, 0, 0);
    struct ipcp_handoff_rx copy = rx;
    copy.reading = 0;
    assert_int_equal(ipcp_handoff_rx_on_ready(&copy, b, sizeof(b), &m), -EBADMSG); /* an OK */
    mk_ready(b, 1, 1, 7, sum);
    assert_int_equal(ipcp_handoff_rx_on_ready(&rx, b, sizeof(b), &m), -IPCP_E_STATE);
    assert_int_equal(ipcp_handoff_rx_verify(&rx, "paylaod", 7), -IPCP_E_PAYSUM);
    assert_int_equal(ipcp_handoff_rx_verify(&rx, data, 6), -IPCP_E_PAYSUM);
    assert_int_equal(ipcp_handoff_rx_verify(&rx, data, 7), 0);
    assert_int_equal(ipcp_handoff_rx_done(&rx, ok), 0);
    assert_int_equal(ipcp_handoff_msg_decode(ok, sizeof(ok), &m), 0);
    assert_int_equal(m.type, IPCP_HANDOFF_OK);
    assert_int_equal(m.slot, 0);
    assert_int_equal(m.seq, 0);
    /* the same READY again is a repeat */
    mk_ready(b, 0, 0, 7, sum);
    assert_int_equal(ipcp_handoff_rx_on_ready(&rx, b, sizeof(b), &m), -IPCP_E_SEQUENCE);
    mk_ready(b, 1, 1, 0, ipcp_handoff_checksum("", 0));
    assert_int_equal(ipcp_handoff_rx_on_ready(&rx, b, sizeof(b), &m), 0);
    assert_int_equal(ipcp_handoff_rx_verify(&rx, "", 0), 0);
    assert_int_equal(ipcp_handoff_rx_done(&rx, ok), 0);

    /* a READY without a checksum: only its length is checked, unless one is required */
    struct ipcp_handoff_msg ns = {.type = IPCP_HANDOFF_READY,
                                  .flags = IPCP_HANDOFF_F_NOSUM,
                                  .slot = 2,
                                  .len = 7,
                                  .seq = 2,
                                  .sum = 0};
    ipcp_handoff_msg_encode(&ns, b);
    struct ipcp_handoff_rx strict = rx;
    strict.require_sum = 1;
    assert_int_equal(ipcp_handoff_rx_on_ready(&strict, b, sizeof(b), &m), -EBADMSG);
    assert_int_equal(strict.expect_seq, 2); /* unchanged */
    assert_int_equal(ipcp_handoff_rx_on_ready(&rx, b, sizeof(b), &m), 0);
    assert_int_equal(ipcp_handoff_rx_verify(&rx, "paylaod", 7), 0);
    assert_int_equal(ipcp_handoff_rx_verify(&rx, data, 6), -IPCP_E_PAYSUM);
}

/* ---- both machines, randomized pipeline ------------------------------------------------- */

static void test_pipeline_model(void **s)
{
    (void)s;
    enum { NS = 4, SZ = 48, MSGS = 20000 };
    struct ipcp_handoff_tx tx;
    struct ipcp_handoff_rx rx;
    assert_int_equal(ipcp_handoff_tx_init(&tx, NS, SZ), 0);
    assert_int_equal(ipcp_handoff_rx_init(&rx, NS, SZ), 0);
    uint8_t slots[NS][SZ];
    int rx_reading_slot[NS] = {0}; /* the receiver is between READY and OK on this slot */
    uint8_t rq[NS + 1][IPCP_HANDOFF_MSG_SIZE], oq[NS + 1][IPCP_HANDOFF_MSG_SIZE];
    int rn = 0, on = 0;
    uint64_t rng = 99, delivered = 0;
    while (delivered < MSGS) {
        uint64_t r = splitmix64_next(&rng) % 3;
        uint32_t slot;
        uint64_t seq;
        if (r == 0 && ipcp_handoff_tx_next(&tx, &slot, &seq) == 0 && seq < MSGS) {
            assert_false(rx_reading_slot[slot]); /* never write a slot the receiver reads */
            size_t len = msg_len(seq, SZ);
            tu_fill(slots[slot], len, seq);
            assert_int_equal(ipcp_handoff_tx_written(
                                 &tx, slot, len, ipcp_handoff_checksum(slots[slot], len), rq[rn]),
                             0);
            assert_true(rn < NS); /* the READY queue never needs more than nslots */
            rn++;
            assert_int_equal(ipcp_handoff_tx_sent(&tx, slot), 0);
        } else if (r == 1 && rn > 0) {
            struct ipcp_handoff_msg m;
            assert_int_equal(ipcp_handoff_rx_on_ready(&rx, rq[0], IPCP_HANDOFF_MSG_SIZE, &m), 0);
            memmove(rq[0], rq[1], (size_t)(--rn) * IPCP_HANDOFF_MSG_SIZE);
            rx_reading_slot[m.slot] = 1;
            uint8_t copy[SZ];
            memcpy(copy, slots[m.slot], m.len);
            assert_int_equal(ipcp_handoff_rx_verify(&rx, copy, m.len), 0);
            assert_int_equal(m.len, msg_len(m.seq, SZ));
            assert_true(tu_check(copy, m.len, m.seq));
            assert_int_equal(ipcp_handoff_rx_done(&rx, oq[on]), 0);
            assert_true(on < NS);
            on++;
            rx_reading_slot[m.slot] = 0;
            delivered++;
        } else if (r == 2 && on > 0) {
            uint32_t got;
            /* OKs may be taken in any order */
            int k = (int)(splitmix64_next(&rng) % (uint64_t)on);
            assert_int_equal(ipcp_handoff_tx_on_ok(&tx, oq[k], IPCP_HANDOFF_MSG_SIZE, &got), 0);
            memmove(oq[k], oq[k + 1], (size_t)(on - k - 1) * IPCP_HANDOFF_MSG_SIZE);
            on--;
        }
        assert_true(ipcp_handoff_tx_valid(&tx));
        assert_true(ipcp_handoff_rx_valid(&rx));
    }
    assert_int_equal(rx.expect_seq, MSGS);
}

/* ---- real objects ----------------------------------------------------------------------- */

static void test_create_open_errors(void **s)
{
    (void)s;
    struct ipcp_handoff *ho = NULL;
    struct ipcp_handoff_cfg cfg = {.stem = "ho-t1", .nslots = 0, .slot_size = 64};
    assert_int_equal(ipcp_handoff_create(&cfg, &ho), -EINVAL);
    cfg.nslots = 2;
    cfg.slot_size = 0;
    assert_int_equal(ipcp_handoff_create(&cfg, &ho), -EINVAL);
    cfg.slot_size = 64;
    cfg.stem = "no.dots";
    assert_int_equal(ipcp_handoff_create(&cfg, &ho), -EINVAL);
    cfg.stem = "ho-t1";
    cfg.flags = 0x2; /* an unknown flag */
    assert_int_equal(ipcp_handoff_create(&cfg, &ho), -EINVAL);
    cfg.flags = 0;
    assert_int_equal(ipcp_handoff_create(&cfg, &ho), 0);
    char name[96], want[96];
    snprintf(name, sizeof(name), "%s", ipcp_handoff_name(ho));
    snprintf(want, sizeof(want), "/ipcp.handoff.%ld.ho-t1", (long)getpid());
    assert_string_equal(name, want);
    struct ipcp_handoff *ho2 = NULL;
    assert_int_equal(ipcp_handoff_create(&cfg, &ho2), -EEXIST);

    struct ipcp_handoff_ep *tx, *rx, *x;
    assert_int_equal(ipcp_handoff_open(ho, 3, &x), -EINVAL);
    assert_int_equal(ipcp_handoff_open(ho, IPCP_HANDOFF_SENDER, &tx), 0);
    assert_int_equal(ipcp_handoff_open(ho, IPCP_HANDOFF_SENDER, &x), -EBUSY);
    assert_int_equal(ipcp_handoff_open(ho, IPCP_HANDOFF_RECEIVER, &rx), 0);
    assert_int_equal(ipcp_handoff_open(ho, IPCP_HANDOFF_RECEIVER, &x), -EBUSY);
    uint8_t buf[128];
    assert_int_equal(ipcp_handoff_recv(tx, buf, sizeof(buf), 0), -IPCP_E_STATE);
    assert_int_equal(ipcp_handoff_send(rx, buf, 1, 0), -IPCP_E_STATE);
    assert_int_equal(ipcp_handoff_send(tx, buf, 65, 0), -EMSGSIZE);
    assert_int_equal(ipcp_handoff_recv(rx, buf, sizeof(buf), 20), -ETIMEDOUT);

    /* two in flight fill both slots; a third waits for an OK and times out */
    tu_fill(buf, 64, 1);
    assert_int_equal(ipcp_handoff_send(tx, buf, 64, 100), 0);
    tu_fill(buf, 10, 2);
    assert_int_equal(ipcp_handoff_send(tx, buf, 10, 100), 0);
    int64_t t0 = ipcp__now_ns();
    assert_int_equal(ipcp_handoff_send(tx, buf, 10, 60), -ETIMEDOUT);
    assert_true(ipcp__now_ns() - t0 >= 60 * 1000000LL);
    assert_int_equal(ipcp_handoff_flush(tx, 30), -ETIMEDOUT);
    /* a buffer too small keeps the message for the next call */
    uint8_t in[128];
    assert_int_equal(ipcp_handoff_recv(rx, in, 63, 100), -EMSGSIZE);
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 100), 64);
    assert_true(tu_check(in, 64, 1));
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 100), 10);
    assert_true(tu_check(in, 10, 2));
    assert_int_equal(ipcp_handoff_flush(tx, 1000), 0);
    assert_int_equal(ipcp_handoff_send(tx, buf, 0, 100), 0); /* empty messages are messages */
    assert_int_equal(ipcp_handoff_recv(rx, in, 0, 100), 0);
    ipcp_handoff_close(tx);
    ipcp_handoff_close(rx);
    destroy_and_check(ho, name);
}

static void test_forged_messages(void **s)
{
    (void)s;
    char name[96], rname[96], oname[96];
    struct ipcp_handoff *ho = make(2, 32, name, sizeof(name)); /* checksums: the default */
    queue_names(name, rname, oname, sizeof(rname));
    struct ipcp_handoff_ep *tx, *rx;
    assert_int_equal(ipcp_handoff_open(ho, IPCP_HANDOFF_SENDER, &tx), 0);
    assert_int_equal(ipcp_handoff_open(ho, IPCP_HANDOFF_RECEIVER, &rx), 0);
    mqd_t rq = mq_open(rname, O_RDWR), oq = mq_open(oname, O_RDWR);
    assert_true(rq != (mqd_t)-1 && oq != (mqd_t)-1);
    uint8_t b[IPCP_HANDOFF_MSG_SIZE], in[64];

    /* a READY whose checksum does not match the slot: refused, OK'd, the stream goes on */
    mk_ready(b, 0, 0, 20, 12345);
    assert_int_equal(mq_send(rq, (const char *)b, sizeof(b), 0), 0);
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 100), -IPCP_E_PAYSUM);
    uint8_t okm[IPCP_HANDOFF_MSG_SIZE];
    assert_int_equal(mq_receive(oq, (char *)okm, sizeof(okm), NULL), IPCP_HANDOFF_MSG_SIZE);
    /* with checksums (the default) a READY without one is refused */
    struct ipcp_handoff_msg ns = {
        .type = IPCP_HANDOFF_READY, .flags = IPCP_HANDOFF_F_NOSUM, .slot = 1, .len = 3, .seq = 1};
    ipcp_handoff_msg_encode(&ns, b);
    assert_int_equal(mq_send(rq, (const char *)b, sizeof(b), 0), 0);
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 100), -EBADMSG);
    /* bad fields are refused and the receiver still expects seq 1 */
    mk_ready(b, 1, 1, 33, 0);
    assert_int_equal(mq_send(rq, (const char *)b, sizeof(b), 0), 0);
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 100), -EBADMSG);
    mk_ready(b, 0, 2, 1, 0);
    assert_int_equal(mq_send(rq, (const char *)b, sizeof(b), 0), 0);
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 100), -IPCP_E_SEQUENCE);
    assert_int_equal(mq_send(rq, "short", 5, 0), 0);
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 100), -EBADMSG);

    /* an OK with a seq its slot does not carry is refused when the sender takes OKs: only
     * when it needs the slot again, or at flush (looking before every send cost a system call
     * per message) */
    mk_ok(b, 0, 7);
    assert_int_equal(mq_send(oq, (const char *)b, sizeof(b), 0), 0);
    assert_int_equal(ipcp_handoff_send(tx, "x", 1, 100), 0);
    assert_int_equal(ipcp_handoff_flush(tx, 100), -IPCP_E_SEQUENCE);
    mq_close(rq);
    mq_close(oq);
    ipcp_handoff_close(tx);
    ipcp_handoff_close(rx);
    destroy_and_check(ho, name);
}

struct stream_arg {
    struct ipcp_handoff *ho;
    uint64_t count;
    size_t max;
    int rc; /* threads */
};

static int sender_main(void *p)
{
    struct stream_arg *a = p;
    struct ipcp_handoff_ep *ep;
    if (ipcp_handoff_open(a->ho, IPCP_HANDOFF_SENDER, &ep) != 0) return 10;
    uint8_t *buf = malloc(a->max);
    if (buf == NULL) return 11;
    for (uint64_t seq = 0; seq < a->count; seq++) {
        size_t len = msg_len(seq, a->max);
        tu_fill(buf, len, seq);
        if (ipcp_handoff_send(ep, buf, len, 20000) != 0) return 12;
    }
    int rc = ipcp_handoff_flush(ep, 20000);
    free(buf);
    ipcp_handoff_close(ep);
    return rc == 0 ? 0 : 13;
}

static int receiver_main(void *p)
{
    struct stream_arg *a = p;
    struct ipcp_handoff_ep *ep;
    if (ipcp_handoff_open(a->ho, IPCP_HANDOFF_RECEIVER, &ep) != 0) return 20;
    uint8_t *buf = malloc(a->max);
    if (buf == NULL) return 21;
    int rc = 0;
    for (uint64_t seq = 0; seq < a->count && rc == 0; seq++) {
        ssize_t n = ipcp_handoff_recv(ep, buf, a->max, 20000);
        if (n < 0 || (size_t)n != msg_len(seq, a->max))
            rc = 22;
        else if (!tu_check(buf, (size_t)n, seq))
            rc = 23;
    }
    free(buf);
    ipcp_handoff_close(ep);
    return rc;
}

static void run_processes(uint32_t nslots, size_t slot, uint64_t count, unsigned flags)
{
    char name[96];
    struct ipcp_handoff *ho = make_f(nslots, slot, flags, name, sizeof(name));
    struct stream_arg a = {ho, count, slot, 0};
    pid_t r = tu_spawn(receiver_main, &a);
    pid_t w = tu_spawn(sender_main, &a);
    tu_wait_ok(w, 120000);
    tu_wait_ok(r, 120000);
    destroy_and_check(ho, name);
}

/* Forged OKs fill the OK queue, so the receiver's OK cannot go out: recv() waits for room up to
 * its timeout instead of returning -ETIMEDOUT at once (a caller's retry loop then spun: the
 * lock_sched livelock of corpora/regressions/lock_sched/livelock-recv-timed-out-early), and goes
 * on once the sender has taken OKs. */
static void test_ok_queue_full(void **s)
{
    (void)s;
    char name[96], rname[96], oname[96];
    struct ipcp_handoff *ho = make(2, 32, name, sizeof(name));
    queue_names(name, rname, oname, sizeof(rname));
    struct ipcp_handoff_ep *tx, *rx;
    assert_int_equal(ipcp_handoff_open(ho, IPCP_HANDOFF_SENDER, &tx), 0);
    assert_int_equal(ipcp_handoff_open(ho, IPCP_HANDOFF_RECEIVER, &rx), 0);
    mqd_t oq = mq_open(oname, O_RDWR);
    assert_true(oq != (mqd_t)-1);
    assert_int_equal(ipcp_handoff_send(tx, "one", 3, 100), 0);
    assert_int_equal(ipcp_handoff_send(tx, "two", 3, 100), 0);
    uint8_t b[IPCP_HANDOFF_MSG_SIZE], in[64];
    mk_ok(b, 1, 9); /* two forgeries fill the queue (2 slots) */
    assert_int_equal(mq_send(oq, (const char *)b, sizeof(b), 0), 0);
    assert_int_equal(mq_send(oq, (const char *)b, sizeof(b), 0), 0);
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 100), 3); /* its OK stays pending */
    int64_t t0 = ipcp__now_ns();
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 300), -ETIMEDOUT);
    assert_true(ipcp__now_ns() - t0 >=
                250000000); /* it waited (a lower bound only: load cannot fail it) */
    /* the sender takes the forgeries (refused) and the queue has room again */
    uint8_t got[IPCP_HANDOFF_MSG_SIZE];
    assert_int_equal(mq_receive(oq, (char *)got, sizeof(got), NULL), IPCP_HANDOFF_MSG_SIZE);
    assert_int_equal(mq_receive(oq, (char *)got, sizeof(got), NULL), IPCP_HANDOFF_MSG_SIZE);
    assert_int_equal(ipcp_handoff_recv(rx, in, sizeof(in), 1000), 3);
    assert_memory_equal(in, "two", 3);
    assert_int_equal(ipcp_handoff_flush(tx, 1000), 0);
    mq_close(oq);
    ipcp_handoff_close(tx);
    ipcp_handoff_close(rx);
    destroy_and_check(ho, name);
}

static void test_processes_100k_8slots(void **s)
{
    (void)s;
    run_processes(8, 256, 100000, 0);
}

static void test_processes_1slot(void **s)
{
    (void)s;
    run_processes(1, 4096, 20000, IPCP_HANDOFF_NO_CHECKSUM);
}

static void *sender_thread(void *p)
{
    ((struct stream_arg *)p)->rc = sender_main(p);
    return NULL;
}

static void *receiver_thread(void *p)
{
    ((struct stream_arg *)p)->rc = receiver_main(p);
    return NULL;
}

/* One process, one mapping: under TSan the slot bytes are ordered only by the annotated
 * READY/OK handoff, so a missing annotation (or a slot reused early) is reported here. */
static void test_threads(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_handoff *ho = make(4, 512, name, sizeof(name));
    struct stream_arg ta = {ho, 20000, 512, -1}, ra = ta;
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, receiver_thread, &ra), 0);
    assert_int_equal(pthread_create(&t2, NULL, sender_thread, &ta), 0);
    pthread_join(t2, NULL);
    pthread_join(t1, NULL);
    assert_int_equal(ta.rc, 0);
    assert_int_equal(ra.rc, 0);
    destroy_and_check(ho, name);
}

/* ---- peer death ------------------------------------------------------------------------- */

struct sleeper_arg {
    struct ipcp_handoff *ho;
    int role;
    int ready_fd, hold_fd, hold_wfd;
};

static int sleeper(void *p)
{
    struct sleeper_arg *a = p;
    close(a->hold_wfd);
    struct ipcp_handoff_ep *ep;
    if (ipcp_handoff_open(a->ho, a->role, &ep) != 0) return 10;
    if (a->role == IPCP_HANDOFF_SENDER && ipcp_handoff_send(ep, "last", 4, 1000) != 0) return 11;
    if (write(a->ready_fd, "R", 1) != 1) return 12;
    char c;
    while (read(a->hold_fd, &c, 1) < 0 && errno == EINTR) {
    }
    return 0;
}

static void test_peer_death(void **s)
{
    (void)s;
    for (int role = IPCP_HANDOFF_SENDER; role <= IPCP_HANDOFF_RECEIVER; role++) {
        char name[96];
        struct ipcp_handoff *ho = make(1, 16, name, sizeof(name));
        int ready[2], hold[2];
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
        struct sleeper_arg sa = {ho, role, ready[1], hold[0], hold[1]};
        pid_t pid = tu_spawn(sleeper, &sa);
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        int other = role == IPCP_HANDOFF_SENDER ? IPCP_HANDOFF_RECEIVER : IPCP_HANDOFF_SENDER;
        struct ipcp_handoff_ep *ep;
        assert_int_equal(ipcp_handoff_open(ho, other, &ep), 0);
        uint8_t buf[16];
        if (role == IPCP_HANDOFF_SENDER) {
            /* alive: plain timeout; dead: what it sent is still delivered, then PEERDEAD */
            assert_int_equal(ipcp_handoff_recv(ep, buf, sizeof(buf), 1000), 4);
            assert_int_equal(ipcp_handoff_recv(ep, buf, sizeof(buf), 80), -ETIMEDOUT);
            assert_int_equal(kill(pid, SIGKILL), 0);
            int64_t t0 = ipcp__now_ns();
            assert_int_equal(ipcp_handoff_recv(ep, buf, sizeof(buf), 5000), -IPCP_E_PEERDEAD);
            assert_true(ipcp__now_ns() - t0 < 1000 * 1000000LL);
        } else {
            assert_int_equal(ipcp_handoff_send(ep, "a", 1, 100), 0); /* fills the one slot */
            assert_int_equal(ipcp_handoff_send(ep, "b", 1, 80), -ETIMEDOUT);
            assert_int_equal(kill(pid, SIGKILL), 0);
            int64_t t0 = ipcp__now_ns();
            assert_int_equal(ipcp_handoff_send(ep, "b", 1, 5000), -IPCP_E_PEERDEAD);
            assert_true(ipcp__now_ns() - t0 < 1000 * 1000000LL);
        }
        int st = tu_wait(pid, 5000);
        assert_true(WIFSIGNALED(st));
        ipcp_handoff_close(ep);
        close(ready[0]);
        close(ready[1]);
        close(hold[0]);
        close(hold[1]);
        destroy_and_check(ho, name);
    }
}

static void test_limits(void **s)
{
    (void)s;
    struct ipcp_mq_limits lim;
    ipcp_mq_limits_read(&lim);
    if (lim.privileged || lim.msg_max <= 0 || lim.msg_max >= (long)IPCP_HANDOFF_MAX_SLOTS) {
        print_message("msg_max %ld, privileged %d: no slot count exceeds it here\n", lim.msg_max,
                      lim.privileged);
        return;
    }
    struct ipcp_handoff_cfg cfg = {
        .stem = "ho-lim", .nslots = (uint32_t)lim.msg_max + 1, .slot_size = 64};
    struct ipcp_handoff *ho = NULL;
    assert_int_equal(ipcp_handoff_create(&cfg, &ho), -IPCP_E_MQ_MAXMSG);
    assert_null(ho);
    char name[96], r[96], o[96];
    snprintf(name, sizeof(name), "/ipcp.handoff.%ld.ho-lim", (long)getpid());
    queue_names(name, r, o, sizeof(r));
    assert_true(mq_gone(r));
    assert_true(mq_gone(o));
    assert_int_equal(my_shm_left(), 0);
    cfg.nslots = (uint32_t)lim.msg_max; /* the largest allowed works */
    assert_int_equal(ipcp_handoff_create(&cfg, &ho), 0);
    ipcp_handoff_destroy(ho);
    assert_true(mq_gone(r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_tx_machine),
        cmocka_unit_test(test_rx_machine),
        cmocka_unit_test(test_pipeline_model),
        cmocka_unit_test(test_create_open_errors),
        cmocka_unit_test(test_forged_messages),
        cmocka_unit_test(test_ok_queue_full),
        cmocka_unit_test(test_processes_100k_8slots),
        cmocka_unit_test(test_processes_1slot),
        cmocka_unit_test(test_peer_death),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

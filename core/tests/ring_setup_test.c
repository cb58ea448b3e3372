/* ring_setup_test.c - the shared-memory ring: setup, names and corruption.
 *
 * Verifies: region sizes, format and attach refuse bad arguments, each call checks the side's
 * role and state; names are unlinked once both sides are attached (or at the creator's close
 * when nobody attached), a failed attach leaves the object alone; each corrupted header field is
 * refused with its error at attach; corrupted indices and records return corruption errors
 * (sticky where the framing is lost) and random hostile writes never make the consumer read
 * outside the region.
 *
 * IPCP_TEST_SCALE=<percent> scales the iteration counts (default 100). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/ring.h"
#include "ipcproof/shm.h"
#include "ring_tu.h"
#include "testutil.h"

/* ---- setup ----------------------------------------------------------------------------------- */

static void test_setup_and_roles(void **s)
{
    (void)s;
    assert_int_equal(ipcp_ring_mem_size(4096), HDR + 4096);
    assert_int_equal(ipcp_ring_mem_size(4095), 0);
    assert_int_equal(ipcp_ring_mem_size(64), 0);
    assert_int_equal(ipcp_ring_mem_size((size_t)IPCP_RING_MAX_CAP * 2), 0);

    struct ipcp_ring_cfg cfg = {.capacity = 4096, .max_msg = 1 << 16};
    size_t size = ipcp_ring_mem_size(4096);
    uint8_t *mem = aligned_alloc(64, size + 64);
    struct ipcp_ring p, c, x;
    assert_int_equal(ipcp_ring_format(mem + 8, size, &cfg), -EINVAL); /* misaligned */
    assert_int_equal(ipcp_ring_format(mem, size - 1, &cfg), -EINVAL);
    struct ipcp_ring_cfg bad = {.capacity = 1000};
    assert_int_equal(ipcp_ring_format(mem, size, &bad), -EINVAL);
    bad = (struct ipcp_ring_cfg){.capacity = 4096, .max_msg = (size_t)IPCP_RING_MAX_MSG_LIMIT + 1};
    assert_int_equal(ipcp_ring_format(mem, size, &bad), -EINVAL);

    assert_int_equal(ipcp_ring_init_mem(&p, mem, size, IPCP_RING_PRODUCER, &cfg), 0);
    assert_int_equal(ipcp_ring_attach_mem(&x, mem, size, IPCP_RING_PRODUCER, &cfg), -EBUSY);
    assert_int_equal(ipcp_ring_attach_mem(&x, mem, size, 7, &cfg), -EINVAL);
    struct ipcp_ring_cfg other = {.capacity = 8192, .max_msg = 1 << 16};
    assert_int_equal(ipcp_ring_attach_mem(&x, mem, size, IPCP_RING_CONSUMER, &other),
                     -IPCP_E_LAYOUT);
    other = (struct ipcp_ring_cfg){.max_msg = 1 << 15}; /* header declares more than we take */
    assert_int_equal(ipcp_ring_attach_mem(&x, mem, size, IPCP_RING_CONSUMER, &other),
                     -IPCP_E_LAYOUT);
    other = (struct ipcp_ring_cfg){.max_msg = 1 << 20}; /* capacity 0: take the region's */
    assert_int_equal(ipcp_ring_attach_mem(&c, mem, size, IPCP_RING_CONSUMER, &other), 0);
    assert_int_equal(ipcp_ring_attach_mem(&x, mem, size, IPCP_RING_CONSUMER, &cfg), -EBUSY);

    /* each call checks the role */
    char buf[8];
    const void *ptr;
    void *wptr;
    assert_int_equal(ipcp_ring_send(&c, "x", 1, 0), -EINVAL);
    assert_int_equal(ipcp_ring_reserve(&c, 1, &wptr, 0), -EINVAL);
    assert_int_equal(ipcp_ring_commit(&c, 1), -EINVAL);
    assert_int_equal(ipcp_ring_recv(&p, buf, sizeof(buf), 0), -EINVAL);
    assert_int_equal(ipcp_ring_peek(&p, &ptr, 0), -EINVAL);
    assert_int_equal(ipcp_ring_release(&p), -EINVAL);

    /* state errors */
    assert_int_equal(ipcp_ring_commit(&p, 0), -IPCP_E_STATE);
    assert_int_equal(ipcp_ring_release(&c), -IPCP_E_STATE);
    assert_int_equal(ipcp_ring_reserve(&p, 4, &wptr, 0), 0);
    assert_int_equal(ipcp_ring_send(&p, "x", 1, 0), -IPCP_E_STATE);
    assert_int_equal(ipcp_ring_commit(&p, 5), -EINVAL);
    memcpy(wptr, "abcd", 4);
    assert_int_equal(ipcp_ring_commit(&p, 3), 0);
    assert_int_equal(ipcp_ring_peek(&c, &ptr, 0), 3);
    assert_memory_equal(ptr, "abc", 3);
    assert_int_equal(ipcp_ring_peek(&c, &ptr, 0), 3); /* the same again */
    assert_int_equal(ipcp_ring_recv(&c, buf, sizeof(buf), 0), -IPCP_E_STATE);
    assert_int_equal(ipcp_ring_release(&c), 0);
    assert_int_equal(ipcp_ring_recv(&c, buf, sizeof(buf), 0), -EAGAIN);
    assert_int_equal(ipcp_ring_send(&p, NULL, 1, 0), -EINVAL);
    assert_int_equal(ipcp_ring_send(&p, buf, (1 << 16) + 1, 0), -EMSGSIZE);
    assert_int_equal(ipcp_ring_reserve(&p, 4096 - RHDR + 1, &wptr, 0), -EMSGSIZE);
    assert_null(wptr);
    assert_true(ipcp_ring_valid(&p));
    assert_true(ipcp_ring_valid(&c));
    ipcp_ring_close(&p);
    ipcp_ring_close(&c);
    ipcp_ring_close(&c); /* twice is harmless */
    free(mem);
}

/* ---- names ----------------------------------------------------------------------------------- */

static void test_name_unlinked_when_paired(void **s)
{
    (void)s;
    struct ipcp_ring h, p, c;
    struct ipcp_ring_cfg cfg = {.capacity = 1024};
    /* creator is a side: the second side's attach unlinks */
    assert_int_equal(ipcp_ring_create(&p, NULL, IPCP_RING_PRODUCER, &cfg), 0);
    assert_int_equal(rtu_own_objects(), 1);
    assert_int_equal(ipcp_ring_attach(&c, ipcp_ring_name(&p), IPCP_RING_CONSUMER, &cfg), 0);
    assert_int_equal(rtu_own_objects(), 0);
    assert_int_equal(ipcp_ring_send(&p, "hi", 2, 0), 0);
    char b[4];
    assert_int_equal(ipcp_ring_recv(&c, b, sizeof(b), 0), 2);
    ipcp_ring_close(&c);
    ipcp_ring_close(&p);

    /* a holder without a side; two attachers; with a stem */
    assert_int_equal(ipcp_ring_create(&h, "run-7", IPCP_RING_NONE, &cfg), 0);
    char want[IPCP_SHM_NAME_MAX];
    snprintf(want, sizeof(want), "/ipcp.ring.%ld.run-7", (long)getpid());
    assert_string_equal(ipcp_ring_name(&h), want);
    assert_int_equal(ipcp_ring_create(&p, "run-7", IPCP_RING_NONE, &cfg), -EEXIST);
    assert_int_equal(ipcp_ring_attach(&p, want, IPCP_RING_PRODUCER, &cfg), 0);
    assert_int_equal(rtu_own_objects(), 1);
    assert_int_equal(ipcp_ring_attach(&c, want, IPCP_RING_CONSUMER, &cfg), 0);
    assert_int_equal(rtu_own_objects(), 0);
    ipcp_ring_close(&p);
    ipcp_ring_close(&c);
    ipcp_ring_close(&h);

    /* nobody attached: the creator's close unlinks */
    assert_int_equal(ipcp_ring_create(&p, NULL, IPCP_RING_PRODUCER, &cfg), 0);
    assert_int_equal(rtu_own_objects(), 1);
    ipcp_ring_close(&p);
    assert_int_equal(rtu_own_objects(), 0);

    /* attach checks before use; a failed attach leaves the object alone */
    assert_int_equal(ipcp_ring_create(&p, NULL, IPCP_RING_PRODUCER, &cfg), 0);
    struct ipcp_ring_cfg wrong = {.capacity = 2048};
    assert_int_equal(ipcp_ring_attach(&c, ipcp_ring_name(&p), IPCP_RING_CONSUMER, &wrong),
                     -IPCP_E_LAYOUT);
    assert_int_equal(rtu_own_objects(), 1);
    ipcp_ring_close(&p);
    assert_int_equal(rtu_own_objects(), 0);
    char name[IPCP_SHM_NAME_MAX];
    ipcp_shm_name(name, sizeof(name), "ring");
    assert_int_equal(ipcp_ring_attach(&c, name, IPCP_RING_CONSUMER, &cfg), -ENOENT);
}

/* ---- corruption ------------------------------------------------------------------------------ */

struct field_case {
    const char *what;
    size_t off;
    uint32_t value;
    int want;
};

static void test_attach_rejects_each_header_field(void **s)
{
    (void)s;
    const size_t cap = 1024;
    const struct field_case cases[] = {
        {"magic", 0, 0x12345678, -IPCP_E_BADMAGIC},
        {"version", 4, 2, -IPCP_E_BADVERSION},
        {"header size", 8, 256, -IPCP_E_LAYOUT},
        {"record header size", 12, 24, -IPCP_E_LAYOUT},
        {"capacity not a power of two", 16, 1000, -IPCP_E_LAYOUT},
        {"capacity too small", 16, 64, -IPCP_E_LAYOUT},
        {"capacity beyond the region", 16, 2048, -IPCP_E_LAYOUT},
        {"capacity zero", 16, 0, -IPCP_E_LAYOUT},
        {"max_msg zero", 20, 0, -IPCP_E_LAYOUT},
        {"max_msg above ours", 20, (1u << 16) + 1, -IPCP_E_LAYOUT},
        {"consumer already attached", 24, 0x2, -EBUSY},
        {"tail misaligned", IPCP_RING_OFF_TAIL, 8, -IPCP_E_CORRUPT},
        {"tail beyond capacity", IPCP_RING_OFF_TAIL, 1024 + 16, -IPCP_E_CORRUPT},
        {"tail behind head", IPCP_RING_OFF_TAIL, 0xfffffff0u, -IPCP_E_CORRUPT},
        {"head misaligned", IPCP_RING_OFF_HEAD, 4, -IPCP_E_CORRUPT},
    };
    struct ipcp_ring_cfg cfg = {.capacity = 0, .max_msg = 1 << 16};
    size_t size = ipcp_ring_mem_size(cap);
    void *mem = aligned_alloc(64, size);
    struct ipcp_ring_cfg fcfg = {.capacity = cap, .max_msg = 1 << 16};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(cases); i++) {
        assert_int_equal(ipcp_ring_format(mem, size, &fcfg), 0);
        rtu_wr32(mem, cases[i].off, cases[i].value);
        struct ipcp_ring c;
        int rc = ipcp_ring_attach_mem(&c, mem, size, IPCP_RING_CONSUMER, &cfg);
        if (rc != cases[i].want)
            fail_msg("%s: got %s want %s", cases[i].what, ipcp_errname(rc),
                     ipcp_errname(cases[i].want));
        assert_null(ipcp_ring_mem(&c, NULL));
    }
    /* and the unmodified header attaches */
    assert_int_equal(ipcp_ring_format(mem, size, &fcfg), 0);
    struct ipcp_ring c;
    assert_int_equal(ipcp_ring_attach_mem(&c, mem, size, IPCP_RING_CONSUMER, &cfg), 0);
    ipcp_ring_close(&c);
    free(mem);
}

/* Runtime corruption of what the consumer reads. Setup: one 5-byte message at offset 0. */
struct rt_case {
    const char *what;
    int field; /* 0 tail, 1 len, 2 flags, 3 seq, 4 total, 5 pad at 0, 6 prod pid */
    uint32_t value;
    int want;
    int sticky; /* the handle stays broken */
    int gap;    /* message 0 is lost: the next one reports IPCP_E_SEQUENCE once */
};

static void test_consumer_rejects_corruption(void **s)
{
    (void)s;
    const size_t cap = 256;
    const struct rt_case cases[] = {
        {"tail misaligned", 0, 8, -IPCP_E_CORRUPT, 1, 0},
        {"tail beyond capacity", 0, 256 + 16, -IPCP_E_CORRUPT, 1, 0},
        {"record len beyond capacity", 1, 256, -IPCP_E_CORRUPT, 1, 0},
        {"record longer than published", 1, 100, -IPCP_E_CORRUPT, 1, 0},
        {"record len huge", 1, 0xffffffffu, -IPCP_E_CORRUPT, 1, 0},
        {"flags without mark", 2, F | L, -IPCP_E_CORRUPT, 1, 0},
        {"unknown flag", 2, MARK | F | L | 0x10, -IPCP_E_CORRUPT, 1, 0},
        {"pad with FIRST", 2, MARK | IPCP_RING_REC_PAD | F, -IPCP_E_CORRUPT, 1, 0},
        {"pad at offset 0", 5, 0, -IPCP_E_CORRUPT, 1, 0},
        {"total above max_msg", 4, 1u << 20, -IPCP_E_TOOBIG, 0, 0},
        {"total below len", 4, 1, -IPCP_E_FRAGMENT, 0, 0},
        {"whole with total above len", 4, 6, -IPCP_E_FRAGMENT, 0, 0},
        {"MIDDLE without FIRST", 2, MARK, -IPCP_E_FRAGMENT, 0, 1},
        {"LAST without FIRST", 2, MARK | L, -IPCP_E_FRAGMENT, 0, 1},
        {"sequence gap", 3, 7, -IPCP_E_SEQUENCE, 0, 0},
    };
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 4096};
    char buf[64];
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(cases); i++) {
        for (int api = 0; api < 2; api++) {
            struct rtu_pair pr;
            rtu_pair_open(&pr, &cfg, 0);
            assert_int_equal(ipcp_ring_send(&pr.p, "hello", 5, 0), 0);
            const struct rt_case *k = &cases[i];
            if (k->field == 0) rtu_wr32(pr.mem, IPCP_RING_OFF_TAIL, k->value);
            if (k->field >= 1 && k->field <= 4)
                rtu_wr32(pr.mem, HDR + 4 * (size_t)(k->field - 1), k->value);
            if (k->field == 5) rtu_put_rec(pr.mem, 0, 16, MARK | IPCP_RING_REC_PAD, 0, 0);
            ssize_t rc;
            const void *ptr = NULL;
            if (api == 0)
                rc = ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0);
            else
                rc = ipcp_ring_peek(&pr.c, &ptr, 0);
            if (rc != k->want)
                fail_msg("%s (%s): got %s want %s", k->what, api ? "peek" : "recv",
                         ipcp_errname((int)rc), ipcp_errname(k->want));
            assert_true(ipcp_ring_valid(&pr.c));
            if (k->sticky) {
                rtu_put_rec(pr.mem, 0, 5, MARK | F | L, 0, 5); /* repairing it does not help */
                rtu_wr32(pr.mem, IPCP_RING_OFF_TAIL, 32);
                assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), k->want);
            } else if (k->want == -IPCP_E_SEQUENCE) {
                /* reported once, then the message is delivered */
                assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 5);
            } else {
                /* the record was dropped; the ring goes on */
                assert_int_equal(ipcp_ring_send(&pr.p, "again", 5, 0), 0);
                if (k->gap)
                    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -IPCP_E_SEQUENCE);
                assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 5);
                assert_memory_equal(buf, "again", 5);
            }
            rtu_pair_close(&pr);
        }
    }
}

static void test_corrupt_indices_and_pid(void **s)
{
    (void)s;
    const size_t cap = 256;
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 4096};
    char buf[128] = {0};
    struct rtu_pair pr;

    /* tail moved backwards once everything was consumed */
    rtu_pair_open(&pr, &cfg, 0);
    assert_int_equal(ipcp_ring_send(&pr.p, "hello", 5, 0), 0);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 5);
    rtu_wr32(pr.mem, IPCP_RING_OFF_TAIL, 0);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -IPCP_E_CORRUPT);
    rtu_pair_close(&pr);

    /* the producer checks the head it reads when the ring looks full */
    const uint32_t bad_heads[] = {8, 256 + 16, 0xfffffff0u};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(bad_heads); i++) {
        rtu_pair_open(&pr, &cfg, 0);
        while (ipcp_ring_send(&pr.p, buf, 40, 0) == 0)
            ;
        rtu_wr32(pr.mem, IPCP_RING_OFF_HEAD, bad_heads[i]);
        assert_int_equal(ipcp_ring_send(&pr.p, buf, 40, 0), -IPCP_E_CORRUPT);
        assert_int_equal(ipcp_ring_send(&pr.p, buf, 1, 0), -IPCP_E_CORRUPT); /* sticky */
        assert_true(ipcp_ring_valid(&pr.p));
        rtu_pair_close(&pr);
    }
    /* head moved backwards */
    rtu_pair_open(&pr, &cfg, 0);
    while (ipcp_ring_send(&pr.p, buf, 40, 0) == 0)
        ;
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 40);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 40);
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 40, 0), 0); /* it reads head = 128 */
    rtu_wr32(pr.mem, IPCP_RING_OFF_HEAD, 96);               /* aligned, in range, but back */
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 100, 0), -IPCP_E_CORRUPT);
    rtu_pair_close(&pr);

    /* a peer pid no process can have, seen while waiting */
    rtu_pair_open(&pr, &cfg, 0);
    rtu_wr32(pr.mem, 28, 0x80000000u);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 50), -IPCP_E_CORRUPT);
    rtu_pair_close(&pr);
}

/* Random writes anywhere in the region between single-stepped operations: only documented
 * errors come back, the handles stay valid, peek never points outside the region, and (under
 * ASan) nothing is read outside it. The allocation bound is max_msg (checked by valid()). */
static void test_hostile_random_writes(void **s)
{
    (void)s;
    const size_t cap = 512;
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 2048, .chunk = 64};
    uint64_t st = 99;
    struct rtu_pair pr;
    rtu_pair_open(&pr, &cfg, 0);
    uint8_t msg[2048], buf[2048];
    int iters = tu_scaled(200000), broken = 0;
    for (int i = 0; i < iters; i++) {
        uint64_t v = splitmix64_next(&st);
        unsigned op = (unsigned)(v % 16);
        v >>= 8;
        ssize_t rc = 0;
        if (op < 5) {
            size_t len = (size_t)(v % 700);
            tu_fill(msg, len, v);
            rc = ipcp_ring_send(&pr.p, msg, len, 0);
            if (!(rc == 0 || rc == -EAGAIN || rc == -IPCP_E_CORRUPT || rc == -EPIPE ||
                  rc == -IPCP_E_STATE))
                fail_msg("iter %d send: %s", i, ipcp_errname((int)rc));
            assert_true(ipcp_ring_valid(&pr.p));
        } else if (op < 9) {
            /* hostile: a few random bytes anywhere in the region */
            size_t off = (size_t)(v % pr.size);
            size_t n = 1 + (size_t)((v >> 20) % 8);
            for (size_t k = 0; k < n && off + k < pr.size; k++)
                ((uint8_t *)pr.mem)[off + k] = (uint8_t)splitmix64_next(&st);
        } else if (op < 10) {
            /* hostile: a plausible record header at the consumer's head */
            uint32_t o = (uint32_t)(splitmix64_next(&st) % cap) & ~15u;
            uint32_t fl = MARK | (uint32_t)(v & 7);
            rtu_put_rec(pr.mem, o, (uint32_t)((v >> 8) % 600), fl, (uint32_t)((v >> 20) % 4),
                        (uint32_t)((v >> 24) % 3000));
        } else if (op < 14) {
            size_t bcap = (size_t)(v % 2048);
            rc = ipcp_ring_recv(&pr.c, buf, bcap, 0);
        } else if (op < 15) {
            const void *p;
            rc = ipcp_ring_peek(&pr.c, &p, 0);
            if (rc >= 0) {
                const uint8_t *lo = (uint8_t *)pr.mem + HDR, *hi = lo + cap;
                const uint8_t *q = p;
                int in_ring = q >= lo && q + rc <= hi;
                int in_reasm = q == pr.c.c.reasm.buf || rc == 0;
                if (!in_ring && !in_reasm) fail_msg("iter %d: peek outside the region", i);
                volatile uint8_t sink = 0;
                for (ssize_t k = 0; k < rc; k++)
                    sink ^= q[k];
                (void)sink;
            }
        } else {
            rc = ipcp_ring_release(&pr.c);
        }
        if (op >= 10) {
            if (!(rc >= 0 || rc == -EAGAIN || rc == -EMSGSIZE || rc == -IPCP_E_CORRUPT ||
                  rc == -IPCP_E_FRAGMENT || rc == -IPCP_E_SEQUENCE || rc == -IPCP_E_TOOBIG ||
                  rc == -IPCP_E_STATE || rc == -EPIPE))
                fail_msg("iter %d op %u: %s", i, op, ipcp_errname((int)rc));
            assert_true(ipcp_ring_valid(&pr.c));
        }
        if (rc == -IPCP_E_CORRUPT || rc == -EPIPE) { /* start over with a fresh ring */
            broken++;
            rtu_pair_close(&pr);
            rtu_pair_open(&pr, &cfg, (uint32_t)(splitmix64_next(&st) & ~15u));
        }
    }
    assert_true(broken > 0); /* the hostile writes did hit */
    rtu_pair_close(&pr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_and_roles),
        cmocka_unit_test(test_attach_rejects_each_header_field),
        cmocka_unit_test(test_consumer_rejects_corruption),
        cmocka_unit_test(test_corrupt_indices_and_pid),
        cmocka_unit_test(test_hostile_random_writes),
        cmocka_unit_test(test_name_unlinked_when_paired),
    };
    if (getenv("IPCP_TEST_FILTER") != NULL) cmocka_set_test_filter(getenv("IPCP_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

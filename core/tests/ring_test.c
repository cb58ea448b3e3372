/* ring_test.c - the shared-memory ring: the data path.
 *
 * Verifies: records wrap around correctly from every start offset (also across the 2^32 wrap
 * of the indices) for several record sizes, with the copy and the zero-copy API; messages of
 * 0, 1, capacity - header, capacity, capacity + 1 and ten times the capacity arrive whole, and
 * -EMSGSIZE loses nothing; chunked messages arrive whole from every start offset; 100 000
 * messages of random sizes with checksums cross between two processes and between two threads
 * on one mapping (the thread run is the one ThreadSanitizer checks), and over a memfd inherited
 * across fork; a recv or peek that ends in the middle of a chunked message keeps what it took.
 * Setup, names and corruption: ring_setup_test; timeouts, close and peer death:
 * ring_block_test; forced futex sleeps woken promptly: ring_wake_test.
 *
 * IPCP_TEST_SCALE=<percent> scales the iteration counts (default 100). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/ring.h"
#include "ipcproof/shm.h"
#include "ring_tu.h"
#include "testutil.h"

/* ---- wrap-around ------------------------------------------------------------------------------
 */

/* From each aligned start offset (and across the 2^32 wrap of the indices) fill the ring with
 * len-byte messages until it refuses, drain it, several rounds; odd rounds use the zero-copy
 * API. Everything is single-stepped with timeout 0. */
static void wrap_case(size_t cap, size_t len, uint32_t start)
{
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 1 << 16};
    struct rtu_pair pr;
    rtu_pair_open(&pr, &cfg, start);
    uint8_t msg[4096], got[4096];
    uint64_t sent = 0, rcvd = 0;
    for (int round = 0; round < 6; round++) {
        int zc = round & 1;
        int n = 0;
        for (;;) {
            tu_fill(msg, len, sent * 1000 + len);
            int rc;
            if (zc) {
                void *w;
                rc = ipcp_ring_reserve(&pr.p, len, &w, 0);
                if (rc == 0) {
                    memcpy(w, msg, len);
                    rc = ipcp_ring_commit(&pr.p, len);
                }
            } else {
                rc = ipcp_ring_send(&pr.p, msg, len, 0);
            }
            assert_true(ipcp_ring_valid(&pr.p));
            if (rc == -EAGAIN) break;
            assert_int_equal(rc, 0);
            sent++;
            n++;
        }
        if (n == 0) {
            /* only a pad went (a record that must start at offset 0): once the consumer took
             * the pad, the record fits */
            char b;
            assert_int_equal(ipcp_ring_recv(&pr.c, &b, 1, 0), -EAGAIN);
            round--;
            assert_true(sent == 0 || len + RHDR > cap / 2);
            continue;
        }
        while (rcvd < sent) {
            ssize_t got_len;
            if (zc) {
                const void *ptr;
                got_len = ipcp_ring_peek(&pr.c, &ptr, 0);
                assert_int_equal(got_len, (ssize_t)len);
                assert_true((const uint8_t *)ptr >= (uint8_t *)pr.mem + HDR &&
                            (const uint8_t *)ptr + len <= (uint8_t *)pr.mem + HDR + cap);
                memcpy(got, ptr, len);
                assert_int_equal(ipcp_ring_release(&pr.c), 0);
            } else {
                got_len = ipcp_ring_recv(&pr.c, got, sizeof(got), 0);
                assert_int_equal(got_len, (ssize_t)len);
            }
            if (!tu_check(got, len, rcvd * 1000 + len))
                fail_msg("cap %zu len %zu start %#x: message %llu differs", cap, len, start,
                         (unsigned long long)rcvd);
            assert_true(ipcp_ring_valid(&pr.c));
            rcvd++;
        }
        char b;
        assert_int_equal(ipcp_ring_recv(&pr.c, &b, 1, 0), -EAGAIN);
    }
    rtu_pair_close(&pr);
}

static void test_wraparound_every_offset(void **s)
{
    (void)s;
    const size_t cap = 256;
    const size_t lens[] = {0, 1, 15, 16, 17, 33, 100, cap / 2 - RHDR, cap - 2 * RHDR, cap - RHDR};
    const uint32_t bases[] = {0, 0xffffff00u};
    for (size_t b = 0; b < IPCP_ARRAY_SIZE(bases); b++)
        for (uint32_t off = 0; off < cap; off += IPCP_RING_ALIGN)
            for (size_t i = 0; i < IPCP_ARRAY_SIZE(lens); i++)
                wrap_case(cap, lens[i], bases[b] + off);
}

/* ---- threads ----------------------------------------------------------------------------------
 */

struct script {
    struct ipcp_ring *r;
    const size_t *lens;
    int n;
    int repeat; /* each length sent this many times */
    int rc;     /* 0, or the first failure (an error code or -10000 - line) */
};

static void *producer_script(void *arg)
{
    struct script *sc = arg;
    size_t maxlen = 0;
    for (int i = 0; i < sc->n; i++)
        if (sc->lens[i] > maxlen) maxlen = sc->lens[i];
    uint8_t *msg = malloc(maxlen + 1);
    uint64_t k = 0;
    for (int i = 0; i < sc->n && sc->rc == 0; i++)
        for (int j = 0; j < sc->repeat && sc->rc == 0; j++, k++) {
            tu_fill(msg, sc->lens[i], k);
            int rc = ipcp_ring_send(sc->r, msg, sc->lens[i], 10000);
            if (rc < 0) sc->rc = rc;
        }
    free(msg);
    return NULL;
}

/* Messages of the sizes the issue names, sent by a thread; each is first asked for with a
 * buffer one byte short (-EMSGSIZE, nothing lost), then received with recv() and with peek(). */
static void test_message_sizes(void **s)
{
    (void)s;
    const size_t cap = 4096;
    const size_t lens[] = {0,   1,       cap - RHDR - 1, cap - RHDR, cap - RHDR + 1,
                           cap, cap + 1, 10 * cap};
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 16 * cap};
    const uint32_t starts[] = {0, cap - 48};
    for (size_t si = 0; si < IPCP_ARRAY_SIZE(starts); si++) {
        struct rtu_pair pr;
        rtu_pair_open(&pr, &cfg, starts[si]);
        struct script sc = {.r = &pr.p, .lens = lens, .n = IPCP_ARRAY_SIZE(lens), .repeat = 2};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, producer_script, &sc), 0);
        uint8_t *buf = malloc(10 * cap);
        uint64_t k = 0;
        for (size_t i = 0; i < IPCP_ARRAY_SIZE(lens); i++) {
            size_t len = lens[i];
            if (len > 0) {
                assert_int_equal(ipcp_ring_recv(&pr.c, buf, len - 1, 10000), -EMSGSIZE);
                assert_int_equal(ipcp_ring_next_len(&pr.c), len);
            }
            ssize_t n = ipcp_ring_recv(&pr.c, buf, 10 * cap, 10000);
            if (n != (ssize_t)len)
                fail_msg("len %zu: recv gave %zd (%s)", len, n, ipcp_errname((int)n));
            assert_true(tu_check(buf, len, k++));
            const void *ptr;
            n = ipcp_ring_peek(&pr.c, &ptr, 10000);
            if (n != (ssize_t)len)
                fail_msg("len %zu: peek gave %zd (%s)", len, n, ipcp_errname((int)n));
            assert_true(tu_check(ptr, len, k++));
            assert_int_equal(ipcp_ring_release(&pr.c), 0);
            assert_true(ipcp_ring_valid(&pr.c));
        }
        pthread_join(th, NULL);
        assert_int_equal(sc.rc, 0);
        assert_int_equal(ipcp_ring_abandoned(&pr.c), 0);
        free(buf);
        rtu_pair_close(&pr);
    }
}

/* Chunked messages (capacity - 15 up to 3 capacities + 5) from every start offset. */
static void test_chunked_every_offset(void **s)
{
    (void)s;
    const size_t cap = 256;
    const size_t lens[] = {cap - RHDR + 1, cap, cap + 1, 3 * cap + 5};
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 4 * cap, .chunk = 48};
    uint8_t buf[4 * 256];
    for (int big_base = 0; big_base < 2; big_base++)
        for (uint32_t off = 0; off < cap; off += IPCP_RING_ALIGN) {
            struct rtu_pair pr;
            rtu_pair_open(&pr, &cfg, (big_base ? 0xfffffe00u : 0) + off);
            struct script sc = {.r = &pr.p, .lens = lens, .n = IPCP_ARRAY_SIZE(lens), .repeat = 1};
            pthread_t th;
            assert_int_equal(pthread_create(&th, NULL, producer_script, &sc), 0);
            for (size_t i = 0; i < IPCP_ARRAY_SIZE(lens); i++) {
                ssize_t n = ipcp_ring_recv(&pr.c, buf, sizeof(buf), 10000);
                assert_int_equal(n, (ssize_t)lens[i]);
                assert_true(tu_check(buf, lens[i], i));
            }
            pthread_join(th, NULL);
            assert_int_equal(sc.rc, 0);
            assert_true(ipcp_ring_valid(&pr.c));
            rtu_pair_close(&pr);
        }
}

/* ---- the 100 000-message exchange ----------------------------------------------------------- */

struct xchg {
    struct ipcp_ring *r;
    size_t cap;
    int n;
    uint64_t seed;
    int rc;
};

static size_t pick_len(uint64_t *st, size_t cap)
{
    uint64_t v = splitmix64_next(st);
    unsigned c = (unsigned)(v % 100);
    v >>= 8;
    if (c < 70) return (size_t)(v % 256);
    if (c < 90) return (size_t)(v % cap);
    return cap + (size_t)(v % (3 * cap));
}

/* len >= 8: random bytes, then XXH3 of them mixed with the index. Shorter: random bytes. */
static void make_msg(uint8_t *m, size_t len, uint64_t i)
{
    if (len < 8) {
        tu_fill(m, len, i);
        return;
    }
    tu_fill(m, len - 8, i);
    uint64_t h = XXH3_64bits(m, len - 8) ^ i;
    memcpy(m + len - 8, &h, 8);
}

static int msg_ok(const uint8_t *m, size_t len, uint64_t i)
{
    if (len < 8) return tu_check(m, len, i);
    uint64_t h;
    memcpy(&h, m + len - 8, 8);
    return h == (XXH3_64bits(m, len - 8) ^ i);
}

static int run_producer(struct xchg *x)
{
    uint64_t st = x->seed;
    uint8_t *m = malloc(4 * x->cap);
    int rc = 0;
    for (int i = 0; i < x->n && rc == 0; i++) {
        size_t len = pick_len(&st, x->cap);
        if (len <= x->cap - RHDR && i % 3 == 0) { /* zero-copy for some that fit */
            void *w;
            rc = ipcp_ring_reserve(x->r, len, &w, 10000);
            if (rc == 0) {
                make_msg(w, len, (uint64_t)i);
                rc = ipcp_ring_commit(x->r, len);
            }
        } else {
            make_msg(m, len, (uint64_t)i);
            rc = ipcp_ring_send(x->r, m, len, 10000);
        }
    }
    free(m);
    return rc;
}

/* Returns 0, or a description of the first failure in err. */
static int run_consumer(struct xchg *x, char *err, size_t errcap)
{
    uint64_t st = x->seed;
    uint8_t *buf = malloc(4 * x->cap);
    for (int i = 0; i < x->n; i++) {
        size_t len = pick_len(&st, x->cap);
        const uint8_t *m = buf;
        ssize_t n;
        if (i % 4 == 1) {
            const void *p;
            n = ipcp_ring_peek(x->r, &p, 10000);
            m = p;
        } else {
            if (i % 97 == 5 && len > 0) {
                n = ipcp_ring_recv(x->r, buf, len - 1, 10000);
                if (n != -EMSGSIZE || ipcp_ring_next_len(x->r) != len) {
                    snprintf(err, errcap, "msg %d: short buffer gave %zd", i, n);
                    free(buf);
                    return -1;
                }
            }
            n = ipcp_ring_recv(x->r, buf, 4 * x->cap, 10000);
        }
        if (n != (ssize_t)len || !msg_ok(m, len, (uint64_t)i)) {
            snprintf(err, errcap, "msg %d: got %zd (%s) want %zu, checksum %s", i, n,
                     n < 0 ? ipcp_errname((int)n) : "", len, n == (ssize_t)len ? "bad" : "-");
            free(buf);
            return -1;
        }
        if (i % 4 == 1 && ipcp_ring_release(x->r) != 0) {
            snprintf(err, errcap, "msg %d: release failed", i);
            free(buf);
            return -1;
        }
    }
    free(buf);
    return 0;
}

struct proc_prod_arg {
    char name[IPCP_SHM_NAME_MAX];
    struct ipcp_ring_cfg cfg;
    struct xchg x;
};

static int proc_producer(void *arg)
{
    struct proc_prod_arg *a = arg;
    struct ipcp_ring p;
    int rc = ipcp_ring_attach(&p, a->name, IPCP_RING_PRODUCER, &a->cfg);
    if (rc < 0) return 10;
    a->x.r = &p;
    rc = run_producer(&a->x);
    ipcp_ring_close(&p);
    return rc == 0 ? 0 : 11;
}

static void test_exchange_processes(void **s)
{
    (void)s;
    int fds = tu_count_fds();
    struct proc_prod_arg a = {.cfg = {.capacity = 4096, .max_msg = 1 << 16},
                              .x = {.cap = 4096, .n = tu_scaled(100000), .seed = 42}};
    struct ipcp_ring c;
    assert_int_equal(ipcp_ring_create(&c, NULL, IPCP_RING_CONSUMER, &a.cfg), 0);
    snprintf(a.name, sizeof(a.name), "%s", ipcp_ring_name(&c));
    pid_t pid = tu_spawn(proc_producer, &a);
    assert_true(pid > 0);
    struct xchg x = a.x;
    x.r = &c;
    char err[200] = "";
    int rc = run_consumer(&x, err, sizeof(err));
    tu_wait_ok(pid, 60000);
    if (rc != 0) fail_msg("%s", err);
    assert_int_equal(rtu_own_objects(), 0); /* unlinked once both sides were attached */
    char b;
    assert_int_equal(ipcp_ring_recv(&c, &b, 1, 1000), -EPIPE); /* the producer closed */
    ipcp_ring_close(&c);
    assert_int_equal(tu_count_fds(), fds);
}

static void *thread_producer(void *arg)
{
    struct xchg *x = arg;
    x->rc = run_producer(x);
    return NULL;
}

/* The same exchange between two threads on ONE mapping: what ThreadSanitizer checks. */
static void test_exchange_threads(void **s)
{
    (void)s;
    int fds = tu_count_fds();
    struct ipcp_ring_cfg cfg = {.capacity = 4096, .max_msg = 1 << 16};
    struct ipcp_ring p, c;
    assert_int_equal(ipcp_ring_create_memfd(&p, IPCP_RING_PRODUCER, &cfg), 0);
    size_t size;
    void *mem = ipcp_ring_mem(&p, &size);
    assert_int_equal(ipcp_ring_attach_mem(&c, mem, size, IPCP_RING_CONSUMER, &cfg), 0);
    struct xchg xp = {.r = &p, .cap = 4096, .n = tu_scaled(100000), .seed = 7};
    struct xchg xc = xp;
    xc.r = &c;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_producer, &xp), 0);
    char err[200] = "";
    int rc = run_consumer(&xc, err, sizeof(err));
    pthread_join(th, NULL);
    if (rc != 0) fail_msg("%s", err);
    assert_int_equal(xp.rc, 0);
    ipcp_ring_close(&c);
    ipcp_ring_close(&p);
    assert_int_equal(tu_count_fds(), fds);
}

/* memfd inherited over fork, mapped again with ipcp_ring_attach_fd. */
static int memfd_consumer(void *arg)
{
    int fd = *(int *)arg;
    struct ipcp_ring c;
    if (ipcp_ring_attach_fd(&c, fd, IPCP_RING_CONSUMER, NULL) < 0) return 1;
    uint8_t buf[3000];
    for (int i = 0; i < 200; i++) {
        ssize_t n = ipcp_ring_recv(&c, buf, sizeof(buf), 10000);
        if (n != (ssize_t)(i * 13 % 3000) || !tu_check(buf, (size_t)n, (uint64_t)i)) return 2;
    }
    ipcp_ring_close(&c);
    return 0;
}

static void test_memfd_fork(void **s)
{
    (void)s;
    int fds = tu_count_fds();
    struct ipcp_ring_cfg cfg = {.capacity = 1024};
    struct ipcp_ring p;
    assert_int_equal(ipcp_ring_create_memfd(&p, IPCP_RING_PRODUCER, &cfg), 0);
    int fd = ipcp_ring_fd(&p);
    assert_true(fd >= 0);
    assert_string_equal(ipcp_ring_name(&p), "");
    pid_t pid = tu_spawn(memfd_consumer, &fd);
    uint8_t msg[3000];
    for (int i = 0; i < 200; i++) {
        size_t len = (size_t)(i * 13 % 3000);
        tu_fill(msg, len, (uint64_t)i);
        assert_int_equal(ipcp_ring_send(&p, msg, len, 10000), 0);
    }
    tu_wait_ok(pid, 30000);
    ipcp_ring_close(&p);
    assert_int_equal(tu_count_fds(), fds);
}

/* ---- partial messages ----------------------------------------------------------------------- */

/* Publishes one record at the shared tail, as a producer would (the test plays producer). */
static void raw_chunk(struct rtu_pair *pr, uint32_t flags, uint32_t seq, uint32_t total,
                      const uint8_t *data, uint32_t len)
{
    uint32_t t = rtu_rd32(pr->mem, IPCP_RING_OFF_TAIL);
    uint32_t off = t & (uint32_t)(pr->size - HDR - 1);
    rtu_put_rec(pr->mem, off, len, MARK | flags, seq, total);
    memcpy((uint8_t *)pr->mem + HDR + off + RHDR, data, len);
    rtu_wr32(pr->mem, IPCP_RING_OFF_TAIL, t + RHDR + ((len + 15) & ~15u));
}

/* A recv (or peek) that ends in the middle of a chunked message keeps what it took; the next
 * call finishes the message, and a buffer too short for it is refused with its full length. */
static void test_partial_message_resumes(void **s)
{
    (void)s;
    struct ipcp_ring_cfg cfg = {.capacity = 4096, .max_msg = 1 << 16};
    uint8_t msg[2000], buf[4096], small[100];
    tu_fill(msg, sizeof(msg), 5);
    for (int api = 0; api < 3; api++) {
        struct rtu_pair pr;
        rtu_pair_open(&pr, &cfg, 0);
        raw_chunk(&pr, F, 0, 2000, msg, 500);
        raw_chunk(&pr, 0, 0, 2000, msg + 500, 500);
        const void *ptr;
        if (api == 2)
            assert_int_equal(ipcp_ring_peek(&pr.c, &ptr, 0), -EAGAIN);
        else
            assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -EAGAIN);
        assert_true(ipcp_ring_valid(&pr.c));
        assert_int_equal(ipcp_ring_recv(&pr.c, small, sizeof(small), 0), -EMSGSIZE);
        assert_int_equal(ipcp_ring_next_len(&pr.c), 2000);
        if (api == 1) /* waiting for the rest times out, and still keeps it */
            assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 20), -ETIMEDOUT);
        raw_chunk(&pr, 0, 0, 2000, msg + 1000, 500);
        raw_chunk(&pr, L, 0, 2000, msg + 1500, 500);
        memset(buf, 0, sizeof(buf));
        if (api == 2) {
            assert_int_equal(ipcp_ring_peek(&pr.c, &ptr, 0), 2000);
            assert_memory_equal(ptr, msg, 2000);
            assert_int_equal(ipcp_ring_release(&pr.c), 0);
        } else {
            assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 2000);
            assert_memory_equal(buf, msg, 2000);
        }
        assert_int_equal(ipcp_ring_abandoned(&pr.c), 0);
        assert_true(ipcp_ring_valid(&pr.c));
        /* and the ring goes on with message 1 */
        raw_chunk(&pr, F | L, 1, 3, msg, 3);
        assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 3);
        rtu_pair_close(&pr);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wraparound_every_offset),
        cmocka_unit_test(test_partial_message_resumes),
        /* processes are forked before this binary starts any thread (ThreadSanitizer) */
        cmocka_unit_test(test_exchange_processes),
        cmocka_unit_test(test_memfd_fork),
        cmocka_unit_test(test_message_sizes),
        cmocka_unit_test(test_chunked_every_offset),

        cmocka_unit_test(test_exchange_threads),
    };
    if (getenv("IPCP_TEST_FILTER") != NULL) cmocka_set_test_filter(getenv("IPCP_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

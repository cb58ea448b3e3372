/* ring_test.c - the shared-memory ring.
 *
 * Verifies: records wrap around correctly from every start offset (also across the 2^32 wrap
 * of the indices) for several record sizes, with the copy and the zero-copy API; messages of
 * 0, 1, capacity - header, capacity, capacity + 1 and ten times the capacity arrive whole, and
 * -EMSGSIZE loses nothing; 100 000 messages of random sizes with checksums cross between two
 * processes and between two threads on one mapping (the thread run is the one ThreadSanitizer
 * checks); each corrupted header field is refused with its error at attach; corrupted indices
 * and records return corruption errors (sticky where the framing is lost) and random hostile
 * writes never make the consumer read outside the region; a SIGKILLed peer is noticed within
 * 100 ms by the side blocked on it; close gives -EPIPE after the last message; a send that
 * times out half-way leaves nothing visible (forced futex sleeps woken promptly: ring_wake_test);
 * names are unlinked once both sides are attached, and no object or fd is left behind.
 *
 * IPCP_TEST_SCALE=<percent> scales the iteration counts (default 100). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/ring.h"
#include "ipcproof/shm.h"
#include "testutil.h"

#define HDR  IPCP_RING_HDR_SIZE
#define RHDR IPCP_RING_REC_HDR
#define MARK IPCP_RING_REC_MARK
#define F    IPCP_CHUNK_FIRST
#define L    IPCP_CHUNK_LAST

static int scaled(int n)
{
    const char *e = getenv("IPCP_TEST_SCALE");
    long pct = e != NULL ? strtol(e, NULL, 10) : 100;
    if (pct <= 0) pct = 100;
    long v = (long)n * pct / 100;
    return v < 1 ? 1 : (int)v;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int own_objects(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ipcp.ring.%ld.", (long)getpid());
    return tu_shm_count(prefix);
}

static uint32_t rd32(const void *base, size_t off)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)base + off, 4);
    return v;
}

static void wr32(void *base, size_t off, uint32_t v)
{
    memcpy((uint8_t *)base + off, &v, 4);
}

/* A record header written by hand, as a hostile producer would. */
static void put_rec(void *base, uint32_t off, uint32_t len, uint32_t flags, uint32_t seq,
                    uint32_t total)
{
    uint32_t h[4] = {len, flags, seq, total};
    memcpy((uint8_t *)base + HDR + off, h, sizeof(h));
}

/* A region in plain memory with both sides open; indices start at `start`. */
struct pair {
    void *mem;
    size_t size;
    struct ipcp_ring p, c;
};

static void pair_open(struct pair *pr, const struct ipcp_ring_cfg *cfg, uint32_t start)
{
    size_t cap = cfg->capacity;
    pr->size = ipcp_ring_mem_size(cap);
    assert_true(pr->size > 0);
    pr->mem = aligned_alloc(64, pr->size);
    assert_non_null(pr->mem);
    memset(pr->mem, 0xee, pr->size);
    assert_int_equal(ipcp_ring_format(pr->mem, pr->size, cfg), 0);
    wr32(pr->mem, IPCP_RING_OFF_TAIL, start);
    wr32(pr->mem, IPCP_RING_OFF_HEAD, start);
    assert_int_equal(ipcp_ring_attach_mem(&pr->p, pr->mem, pr->size, IPCP_RING_PRODUCER, cfg), 0);
    assert_int_equal(ipcp_ring_attach_mem(&pr->c, pr->mem, pr->size, IPCP_RING_CONSUMER, cfg), 0);
    assert_true(ipcp_ring_valid(&pr->p));
    assert_true(ipcp_ring_valid(&pr->c));
}

static void pair_close(struct pair *pr)
{
    ipcp_ring_close(&pr->p);
    ipcp_ring_close(&pr->c);
    free(pr->mem);
    pr->mem = NULL;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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

/* ---- wrap-around ------------------------------------------------------------------------------
 */

/* From each aligned start offset (and across the 2^32 wrap of the indices) fill the ring with
 * len-byte messages until it refuses, drain it, several rounds; odd rounds use the zero-copy
 * API. Everything is single-stepped with timeout 0. */
static void wrap_case(size_t cap, size_t len, uint32_t start)
{
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 1 << 16};
    struct pair pr;
    pair_open(&pr, &cfg, start);
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
    pair_close(&pr);
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
        struct pair pr;
        pair_open(&pr, &cfg, starts[si]);
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
        pair_close(&pr);
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
            struct pair pr;
            pair_open(&pr, &cfg, (big_base ? 0xfffffe00u : 0) + off);
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
            pair_close(&pr);
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
    int fds = count_fds();
    struct proc_prod_arg a = {.cfg = {.capacity = 4096, .max_msg = 1 << 16},
                              .x = {.cap = 4096, .n = scaled(100000), .seed = 42}};
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
    assert_int_equal(own_objects(), 0); /* unlinked once both sides were attached */
    char b;
    assert_int_equal(ipcp_ring_recv(&c, &b, 1, 1000), -EPIPE); /* the producer closed */
    ipcp_ring_close(&c);
    assert_int_equal(count_fds(), fds);
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
    int fds = count_fds();
    struct ipcp_ring_cfg cfg = {.capacity = 4096, .max_msg = 1 << 16};
    struct ipcp_ring p, c;
    assert_int_equal(ipcp_ring_create_memfd(&p, IPCP_RING_PRODUCER, &cfg), 0);
    size_t size;
    void *mem = ipcp_ring_mem(&p, &size);
    assert_int_equal(ipcp_ring_attach_mem(&c, mem, size, IPCP_RING_CONSUMER, &cfg), 0);
    struct xchg xp = {.r = &p, .cap = 4096, .n = scaled(100000), .seed = 7};
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
    assert_int_equal(count_fds(), fds);
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
    int fds = count_fds();
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
    assert_int_equal(count_fds(), fds);
}

/* ---- names ----------------------------------------------------------------------------------- */

static void test_name_unlinked_when_paired(void **s)
{
    (void)s;
    struct ipcp_ring h, p, c;
    struct ipcp_ring_cfg cfg = {.capacity = 1024};
    /* creator is a side: the second side's attach unlinks */
    assert_int_equal(ipcp_ring_create(&p, NULL, IPCP_RING_PRODUCER, &cfg), 0);
    assert_int_equal(own_objects(), 1);
    assert_int_equal(ipcp_ring_attach(&c, ipcp_ring_name(&p), IPCP_RING_CONSUMER, &cfg), 0);
    assert_int_equal(own_objects(), 0);
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
    assert_int_equal(own_objects(), 1);
    assert_int_equal(ipcp_ring_attach(&c, want, IPCP_RING_CONSUMER, &cfg), 0);
    assert_int_equal(own_objects(), 0);
    ipcp_ring_close(&p);
    ipcp_ring_close(&c);
    ipcp_ring_close(&h);

    /* nobody attached: the creator's close unlinks */
    assert_int_equal(ipcp_ring_create(&p, NULL, IPCP_RING_PRODUCER, &cfg), 0);
    assert_int_equal(own_objects(), 1);
    ipcp_ring_close(&p);
    assert_int_equal(own_objects(), 0);

    /* attach checks before use; a failed attach leaves the object alone */
    assert_int_equal(ipcp_ring_create(&p, NULL, IPCP_RING_PRODUCER, &cfg), 0);
    struct ipcp_ring_cfg wrong = {.capacity = 2048};
    assert_int_equal(ipcp_ring_attach(&c, ipcp_ring_name(&p), IPCP_RING_CONSUMER, &wrong),
                     -IPCP_E_LAYOUT);
    assert_int_equal(own_objects(), 1);
    ipcp_ring_close(&p);
    assert_int_equal(own_objects(), 0);
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
        wr32(mem, cases[i].off, cases[i].value);
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
            struct pair pr;
            pair_open(&pr, &cfg, 0);
            assert_int_equal(ipcp_ring_send(&pr.p, "hello", 5, 0), 0);
            const struct rt_case *k = &cases[i];
            if (k->field == 0) wr32(pr.mem, IPCP_RING_OFF_TAIL, k->value);
            if (k->field >= 1 && k->field <= 4)
                wr32(pr.mem, HDR + 4 * (size_t)(k->field - 1), k->value);
            if (k->field == 5) put_rec(pr.mem, 0, 16, MARK | IPCP_RING_REC_PAD, 0, 0);
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
                put_rec(pr.mem, 0, 5, MARK | F | L, 0, 5); /* repairing it does not help */
                wr32(pr.mem, IPCP_RING_OFF_TAIL, 32);
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
            pair_close(&pr);
        }
    }
}

static void test_corrupt_indices_and_pid(void **s)
{
    (void)s;
    const size_t cap = 256;
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 4096};
    char buf[128] = {0};
    struct pair pr;

    /* tail moved backwards once everything was consumed */
    pair_open(&pr, &cfg, 0);
    assert_int_equal(ipcp_ring_send(&pr.p, "hello", 5, 0), 0);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 5);
    wr32(pr.mem, IPCP_RING_OFF_TAIL, 0);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -IPCP_E_CORRUPT);
    pair_close(&pr);

    /* the producer checks the head it reads when the ring looks full */
    const uint32_t bad_heads[] = {8, 256 + 16, 0xfffffff0u};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(bad_heads); i++) {
        pair_open(&pr, &cfg, 0);
        while (ipcp_ring_send(&pr.p, buf, 40, 0) == 0)
            ;
        wr32(pr.mem, IPCP_RING_OFF_HEAD, bad_heads[i]);
        assert_int_equal(ipcp_ring_send(&pr.p, buf, 40, 0), -IPCP_E_CORRUPT);
        assert_int_equal(ipcp_ring_send(&pr.p, buf, 1, 0), -IPCP_E_CORRUPT); /* sticky */
        assert_true(ipcp_ring_valid(&pr.p));
        pair_close(&pr);
    }
    /* head moved backwards */
    pair_open(&pr, &cfg, 0);
    while (ipcp_ring_send(&pr.p, buf, 40, 0) == 0)
        ;
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 40);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 40);
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 40, 0), 0); /* it reads head = 128 */
    wr32(pr.mem, IPCP_RING_OFF_HEAD, 96);                   /* aligned, in range, but back */
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 100, 0), -IPCP_E_CORRUPT);
    pair_close(&pr);

    /* a peer pid no process can have, seen while waiting */
    pair_open(&pr, &cfg, 0);
    wr32(pr.mem, 28, 0x80000000u);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 50), -IPCP_E_CORRUPT);
    pair_close(&pr);
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
    struct pair pr;
    pair_open(&pr, &cfg, 0);
    uint8_t msg[2048], buf[2048];
    int iters = scaled(200000), broken = 0;
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
            put_rec(pr.mem, o, (uint32_t)((v >> 8) % 600), fl, (uint32_t)((v >> 20) % 4),
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
            pair_close(&pr);
            pair_open(&pr, &cfg, (uint32_t)(splitmix64_next(&st) & ~15u));
        }
    }
    assert_true(broken > 0); /* the hostile writes did hit */
    pair_close(&pr);
}

/* ---- delivery semantics ------------------------------------------------------------------- */

static void test_send_timeout_midway_is_invisible(void **s)
{
    (void)s;
    const size_t cap = 1024;
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 1 << 16};
    struct pair pr;
    uint8_t big[10 * 1024], buf[10 * 1024];
    tu_fill(big, sizeof(big), 1);

    for (int api = 0; api < 2; api++) {
        pair_open(&pr, &cfg, 0);
        /* the big message fills the ring, then times out: abandoned */
        int64_t t0 = now_ns();
        assert_int_equal(ipcp_ring_send(&pr.p, big, sizeof(big), 30), -ETIMEDOUT);
        assert_true(now_ns() - t0 >= 29000000);
        /* the consumer takes the published chunks but has no message */
        const void *ptr;
        if (api == 0)
            assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -EAGAIN);
        else
            assert_int_equal(ipcp_ring_peek(&pr.c, &ptr, 0), -EAGAIN);
        assert_true(ipcp_ring_valid(&pr.c));
        /* the next message is delivered; the partial one is dropped and counted */
        assert_int_equal(ipcp_ring_send(&pr.p, "next", 4, 0), 0);
        if (api == 0) {
            assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 4);
            assert_memory_equal(buf, "next", 4);
        } else {
            assert_int_equal(ipcp_ring_peek(&pr.c, &ptr, 0), 4);
            assert_memory_equal(ptr, "next", 4);
            assert_int_equal(ipcp_ring_release(&pr.c), 0);
        }
        assert_int_equal(ipcp_ring_abandoned(&pr.c), 1);
        pair_close(&pr);
    }

    /* a send that published nothing uses no sequence number: no gap afterwards */
    pair_open(&pr, &cfg, 0);
    while (ipcp_ring_send(&pr.p, buf, 100, 0) == 0)
        ;
    assert_int_equal(ipcp_ring_send(&pr.p, big, 200, 10), -ETIMEDOUT);
    assert_int_equal(ipcp_ring_send(&pr.p, big, sizeof(big), 0), -EAGAIN); /* cannot fit */
    int n = 0;
    while (ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0) == 100)
        n++;
    assert_true(n > 0);
    assert_int_equal(ipcp_ring_send(&pr.p, big, 200, 0), 0);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 200);
    assert_int_equal(ipcp_ring_abandoned(&pr.c), 0);

    /* a chunked message can never be in the ring whole: timeout 0 refuses it, publishing
     * nothing, even with the ring empty */
    assert_int_equal(ipcp_ring_send(&pr.p, big, cap - RHDR + 1, 0), -EAGAIN);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -EAGAIN);
    /* a record as large as the ring needs the tail at offset 0: first only a pad goes */
    assert_true(rd32(pr.mem, IPCP_RING_OFF_TAIL) % cap != 0);
    assert_int_equal(ipcp_ring_send(&pr.p, big, cap - RHDR, 0), -EAGAIN);
    assert_int_equal(rd32(pr.mem, IPCP_RING_OFF_TAIL) % cap, 0);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -EAGAIN); /* takes the pad */
    assert_int_equal(ipcp_ring_send(&pr.p, big, cap - RHDR, 0), 0);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), (ssize_t)(cap - RHDR));
    assert_true(tu_check(buf, cap - RHDR, 1));
    assert_int_equal(ipcp_ring_abandoned(&pr.c), 0);
    pair_close(&pr);
}

/* Publishes one record at the shared tail, as a producer would (the test plays producer). */
static void raw_chunk(struct pair *pr, uint32_t flags, uint32_t seq, uint32_t total,
                      const uint8_t *data, uint32_t len)
{
    uint32_t t = rd32(pr->mem, IPCP_RING_OFF_TAIL);
    uint32_t off = t & (uint32_t)(pr->size - HDR - 1);
    put_rec(pr->mem, off, len, MARK | flags, seq, total);
    memcpy((uint8_t *)pr->mem + HDR + off + RHDR, data, len);
    wr32(pr->mem, IPCP_RING_OFF_TAIL, t + RHDR + ((len + 15) & ~15u));
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
        struct pair pr;
        pair_open(&pr, &cfg, 0);
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
        pair_close(&pr);
    }
}

static void test_close_gives_epipe(void **s)
{
    (void)s;
    struct ipcp_ring_cfg cfg = {.capacity = 1024, .max_msg = 1 << 16};
    struct pair pr;
    char buf[4096];
    /* producer closes: the messages before the close come first */
    pair_open(&pr, &cfg, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ipcp_ring_send(&pr.p, "abc", 3, 0), 0);
    ipcp_ring_close(&pr.p);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 1000), 3);
    /* a try (timeout 0) says so too, rather than -EAGAIN for ever */
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -EPIPE);
    const void *pp;
    assert_int_equal(ipcp_ring_peek(&pr.c, &pp, 0), -EPIPE);
    int64_t t0 = now_ns();
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 5000), -EPIPE);
    assert_true(now_ns() - t0 < 1000000000);
    pair_close(&pr);

    /* closed in the middle of a chunked message */
    pair_open(&pr, &cfg, 0);
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 3000, 20), -ETIMEDOUT);
    ipcp_ring_close(&pr.p);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -IPCP_E_TRUNCATED);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 5000), -IPCP_E_TRUNCATED);
    pair_close(&pr);

    /* consumer closes: the producer learns at once */
    pair_open(&pr, &cfg, 0);
    ipcp_ring_close(&pr.c);
    assert_int_equal(ipcp_ring_send(&pr.p, "abc", 3, 0), -EPIPE);
    void *w;
    assert_int_equal(ipcp_ring_reserve(&pr.p, 3, &w, 0), -EPIPE);
    pair_close(&pr);
}

static void test_timeouts(void **s)
{
    (void)s;
    struct ipcp_ring_cfg cfg = {.capacity = 1024};
    struct pair pr;
    pair_open(&pr, &cfg, 0);
    char buf[1024] = {0};
    int64_t t0 = now_ns();
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -EAGAIN);
    const void *ptr;
    assert_int_equal(ipcp_ring_peek(&pr.c, &ptr, 0), -EAGAIN);
    assert_true(now_ns() - t0 < 50000000);
    t0 = now_ns();
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 60), -ETIMEDOUT);
    int64_t dt = now_ns() - t0;
    assert_true(dt >= 59000000 && dt < 1000000000);

    while (ipcp_ring_send(&pr.p, buf, 200, 0) == 0)
        ;
    void *w;
    assert_int_equal(ipcp_ring_reserve(&pr.p, 200, &w, 0), -EAGAIN);
    t0 = now_ns();
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 200, 60), -ETIMEDOUT);
    dt = now_ns() - t0;
    assert_true(dt >= 59000000 && dt < 1000000000);
    assert_int_equal(ipcp_ring_reserve(&pr.p, 200, &w, 30), -ETIMEDOUT);
    pair_close(&pr);
}

/* ---- blocking: wake-ups and peer death ------------------------------------------------------- */

/* Guards a lost wake-up: the waker used to clear the sleeper's flag after waking it. A sleeper
 * that had meanwhile woken, taken the record and announced a new sleep lost its announcement,
 * and the next publish skipped the wake (the sleeper slept out its 20 ms slice). Only the
 * sleeper may write its flag. */
static void test_waker_leaves_sleep_flag_alone(void **s)
{
    (void)s;
    struct ipcp_ring_cfg cfg = {.capacity = 1024};
    struct pair pr;
    pair_open(&pr, &cfg, 0);
    char buf[64] = {0};
    wr32(pr.mem, IPCP_RING_OFF_TAIL + 4, 1); /* the consumer announced a sleep */
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 10, 0), 0);
    assert_int_equal(rd32(pr.mem, IPCP_RING_OFF_TAIL + 4), 1);
    wr32(pr.mem, IPCP_RING_OFF_HEAD + 4, 1); /* the producer announced a sleep */
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 10);
    assert_int_equal(rd32(pr.mem, IPCP_RING_OFF_HEAD + 4), 1);
    pair_close(&pr);
}

/* The peer process announces it is ready, waits until we sleep in the ring (our state 'S'),
 * writes the time and SIGKILLs itself. */
struct killer_arg {
    char name[IPCP_SHM_NAME_MAX];
    int role;
    int ready_wr, go_rd, ts_wr;
};

static int parent_sleeping(pid_t pid)
{
    char path[64], st[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, st, sizeof(st) - 1);
    close(fd);
    if (n <= 0) return 0;
    st[n] = '\0';
    const char *p = strrchr(st, ')');
    return p != NULL && p[2] == 'S';
}

static int killed_peer(void *arg)
{
    struct killer_arg *a = arg;
    struct ipcp_ring r;
    if (ipcp_ring_attach(&r, a->name, a->role, NULL) < 0) return 1;
    if (a->role == IPCP_RING_PRODUCER && ipcp_ring_send(&r, "one", 3, 1000) < 0) return 2;
    if (write(a->ready_wr, "r", 1) != 1) return 3;
    char go;
    if (read(a->go_rd, &go, 1) != 1) return 4;
    pid_t pp = getppid();
    for (int i = 0; i < 5000 && !parent_sleeping(pp); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int64_t t = now_ns();
    if (write(a->ts_wr, &t, sizeof(t)) != (ssize_t)sizeof(t)) return 5;
    raise(SIGKILL);
    return 6;
}

static void peer_killed_case(int blocked_role)
{
    int fds = count_fds();
    int ready[2], go[2], ts[2];
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    assert_int_equal(pipe2(ts, O_CLOEXEC), 0);
    struct ipcp_ring_cfg cfg = {.capacity = 1024};
    struct ipcp_ring r;
    assert_int_equal(ipcp_ring_create(&r, NULL, blocked_role, &cfg), 0);
    struct killer_arg a = {.role = blocked_role == IPCP_RING_CONSUMER ? IPCP_RING_PRODUCER
                                                                      : IPCP_RING_CONSUMER,
                           .ready_wr = ready[1],
                           .go_rd = go[0],
                           .ts_wr = ts[1]};
    snprintf(a.name, sizeof(a.name), "%s", ipcp_ring_name(&r));
    pid_t pid = tu_spawn(killed_peer, &a);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    char buf[1024];
    if (blocked_role == IPCP_RING_CONSUMER) {
        assert_int_equal(ipcp_ring_recv(&r, buf, sizeof(buf), 1000), 3);
    } else {
        while (ipcp_ring_send(&r, buf, 100, 0) == 0) /* full: the next send blocks */
            ;
    }
    assert_int_equal(write(go[1], "g", 1), 1);
    int rc = blocked_role == IPCP_RING_CONSUMER ? (int)ipcp_ring_recv(&r, buf, sizeof(buf), 10000)
                                                : ipcp_ring_send(&r, buf, 100, 10000);
    int64_t t_seen = now_ns();
    if (rc != -IPCP_E_PEERDEAD) fail_msg("blocked side got %s", ipcp_errname(rc));
    int64_t t_kill;
    assert_int_equal(read(ts[0], &t_kill, sizeof(t_kill)), (ssize_t)sizeof(t_kill));
    int64_t lag = t_seen - t_kill;
    if (lag > 100000000) fail_msg("peer death noticed after %lld ms", (long long)(lag / 1000000));
    int st = tu_wait(pid, 10000);
    assert_true(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    ipcp_ring_close(&r);
    for (int i = 0; i < 2; i++) {
        close(ready[i]);
        close(go[i]);
        close(ts[i]);
    }
    assert_int_equal(own_objects(), 0);
    assert_int_equal(count_fds(), fds);
}

static void test_peer_killed_while_consumer_blocked(void **s)
{
    (void)s;
    peer_killed_case(IPCP_RING_CONSUMER);
}

static void test_peer_killed_while_producer_blocked(void **s)
{
    (void)s;
    peer_killed_case(IPCP_RING_PRODUCER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_and_roles),
        cmocka_unit_test(test_wraparound_every_offset),
        cmocka_unit_test(test_attach_rejects_each_header_field),
        cmocka_unit_test(test_consumer_rejects_corruption),
        cmocka_unit_test(test_corrupt_indices_and_pid),
        cmocka_unit_test(test_hostile_random_writes),
        cmocka_unit_test(test_send_timeout_midway_is_invisible),
        cmocka_unit_test(test_partial_message_resumes),
        cmocka_unit_test(test_close_gives_epipe),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_waker_leaves_sleep_flag_alone),
        cmocka_unit_test(test_name_unlinked_when_paired),
        /* processes are forked before this binary starts any thread (ThreadSanitizer) */
        cmocka_unit_test(test_exchange_processes),
        cmocka_unit_test(test_memfd_fork),
        cmocka_unit_test(test_peer_killed_while_consumer_blocked),
        cmocka_unit_test(test_peer_killed_while_producer_blocked),
        cmocka_unit_test(test_message_sizes),
        cmocka_unit_test(test_chunked_every_offset),

        cmocka_unit_test(test_exchange_threads),
    };
    if (getenv("IPCP_TEST_FILTER") != NULL) cmocka_set_test_filter(getenv("IPCP_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

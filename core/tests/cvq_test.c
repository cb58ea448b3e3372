/* cvq_test.c - the robust mutex + condvar bounded queue.
 *
 * Pure (a view over heap memory): put/get wrap around a 3-slot queue many times in order; a
 * put or get stopped after each of its steps is repaired to a consistent state that keeps
 * exactly the messages whose put finished and whose get did not; a repaired state needs no
 * second repair; garbage indices, states and records become consistent.
 * Real: sizes around the slot size (0, 1, max - 1, max; max + 1 refused; a short receive buffer
 * keeps the message); the slot count from the capacity; -EAGAIN and -ETIMEDOUT on a full and an
 * empty queue; 100 000 checksummed messages from 2 producer processes to 2 consumer processes,
 * each once, in per-producer order, ending with -EPIPE; a process SIGKILLed holding the mutex
 * after each step of a put and of a get, and the next operation repairs and goes on; a waiter
 * SIGKILLed while blocked (the others neither hang nor lose anything), and the last peer dying
 * while the other side waits (-IPCP_E_PEERDEAD, no hang); storms of broadcasts and signals on
 * every condvar while threads exchange messages: nothing wrong is delivered; nothing is left in
 * /dev/shm after destroy or a refused create. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "cvq_hooks.h"
#include "deadline.h"
#include "ipcproof/cvq.h"
#include "ipcproof/err.h"
#include "testutil.h"

/* this process's queues only: /dev/shm is shared with every other test and user on the machine */
static int my_shm_count(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ipcp.cvq.%ld.", (long)getpid());
    return tu_shm_count(prefix);
}

static int64_t now_ms(void)
{
    return ipcp__now_ns() / 1000000;
}

/* ---- pure: a view over heap memory ---------------------------------------------------------- */

struct heapq {
    struct ipcp_cvq_ctl ctl;
    struct ipcp_cvq_rec rec[4];
    uint8_t *slots;
    struct ipcp_cvq_view v;
};

static void heapq_init(struct heapq *h, uint32_t nslots, uint32_t slot_size)
{
    memset(h, 0, sizeof(*h));
    h->slots = calloc(nslots, ipcp_cvq_stride(slot_size));
    assert_non_null(h->slots);
    h->v = (struct ipcp_cvq_view){&h->ctl, h->slots, nslots, slot_size, h->rec, 4};
}

static void put_msg(struct heapq *h, uint32_t id, int steps)
{
    uint8_t m[16];
    tu_fill(m, sizeof(m), id);
    assert_int_equal(ipcp_cvq_put_locked(&h->v, m, 8 + id % 9, steps), 0);
}

static void expect_msg(struct heapq *h, uint32_t id)
{
    uint8_t m[16], want[16];
    tu_fill(want, sizeof(want), id);
    ssize_t n = ipcp_cvq_get_locked(&h->v, m, sizeof(m), IPCP_CVQ_STEPS, NULL);
    assert_int_equal(n, 8 + id % 9);
    assert_memory_equal(m, want, (size_t)n);
}

static void test_pure_wrap_and_steps(void **state)
{
    (void)state;
    struct heapq h;
    heapq_init(&h, 3, 16);
    /* wrap around: 1..3 messages in flight, 200 times */
    uint32_t next_put = 0, next_get = 0;
    for (int round = 0; round < 200; round++) {
        int k = 1 + round % 3;
        for (int i = 0; i < k; i++)
            put_msg(&h, next_put++, IPCP_CVQ_STEPS);
        if (k == 3) assert_int_equal(ipcp_cvq_put_locked(&h.v, "x", 1, IPCP_CVQ_STEPS), -EAGAIN);
        for (int i = 0; i < k; i++)
            expect_msg(&h, next_get++);
        assert_int_equal(ipcp_cvq_get_locked(&h.v, NULL, 0, IPCP_CVQ_STEPS, NULL), -EAGAIN);
        assert_true(ipcp_cvq_consistent(&h.v));
    }
    assert_int_equal(ipcp_cvq_put_locked(&h.v, "x", 17, IPCP_CVQ_STEPS), -EMSGSIZE);
    /* a put stopped after each step, at every fill level: kept from step 3 (FULL) on */
    for (int fill = 0; fill < 3; fill++)
        for (int steps = 0; steps < IPCP_CVQ_STEPS; steps++) {
            uint32_t base = 1000 + (uint32_t)(fill * 10 + steps) * 4;
            for (int i = 0; i < fill; i++)
                put_msg(&h, base + (uint32_t)i, IPCP_CVQ_STEPS);
            put_msg(&h, base + 3, steps);
            int ch = ipcp_cvq_repair(&h.v, NULL);
            assert_true(ch >= 0);
            assert_true(ipcp_cvq_consistent(&h.v));
            assert_int_equal(ipcp_cvq_repair(&h.v, NULL), 0); /* nothing left to do */
            for (int i = 0; i < fill; i++)
                expect_msg(&h, base + (uint32_t)i);
            if (steps >= 3) expect_msg(&h, base + 3);
            assert_int_equal(ipcp_cvq_get_locked(&h.v, NULL, 0, IPCP_CVQ_STEPS, NULL), -EAGAIN);
        }
    /* a get stopped after each step: the message is gone from step 3 (EMPTY) on */
    for (int fill = 1; fill <= 3; fill++)
        for (int steps = 0; steps < IPCP_CVQ_STEPS; steps++) {
            uint32_t base = 2000 + (uint32_t)(fill * 10 + steps) * 4;
            for (int i = 0; i < fill; i++)
                put_msg(&h, base + (uint32_t)i, IPCP_CVQ_STEPS);
            uint8_t m[16];
            assert_true(ipcp_cvq_get_locked(&h.v, m, sizeof(m), steps, NULL) > 0);
            struct ipcp_cvq_fix fix;
            assert_true(ipcp_cvq_repair(&h.v, &fix) >= 0);
            assert_int_equal(fix.restored, steps == 1 || steps == 2 ? 1 : 0);
            assert_true(ipcp_cvq_consistent(&h.v));
            for (int i = steps >= 3 ? 1 : 0; i < fill; i++)
                expect_msg(&h, base + (uint32_t)i);
            assert_int_equal(ipcp_cvq_get_locked(&h.v, NULL, 0, IPCP_CVQ_STEPS, NULL), -EAGAIN);
        }
    /* garbage: random indices, states, lengths and records become consistent */
    uint64_t rng = 7;
    for (int i = 0; i < 2000; i++) {
        uint32_t *w = (uint32_t *)&h.ctl;
        for (int k = 0; k < 4; k++)
            w[k] = (uint32_t)(splitmix64_next(&rng) % 5);
        for (uint32_t s = 0; s < 3; s++) {
            struct ipcp_cvq_slot *sl = (void *)(h.slots + s * ipcp_cvq_stride(16));
            sl->state = (uint32_t)(splitmix64_next(&rng) % 6);
            sl->len = (uint32_t)(splitmix64_next(&rng) % 20);
        }
        for (int r = 0; r < 4; r++) {
            h.rec[r].state = (uint32_t)(splitmix64_next(&rng) % 6);
            h.rec[r].pid = (uint32_t)splitmix64_next(&rng);
            h.rec[r].waiting = (uint32_t)(splitmix64_next(&rng) % 4);
        }
        int ch = ipcp_cvq_repair(&h.v, NULL);
        assert_true(ch >= 0);
        assert_true(ipcp_cvq_consistent(&h.v));
        assert_int_equal(ipcp_cvq_repair(&h.v, NULL), 0);
        if (ch == 0) assert_true(ipcp_cvq_consistent(&h.v));
    }
    free(h.slots);
}

/* ---- real queue helpers ---------------------------------------------------------------------- */

static struct ipcp_cvq *make(uint32_t producers, uint32_t consumers, size_t max_msg, size_t cap)
{
    char stem[64];
    struct ipcp_cvq_cfg cfg = {.stem = tu_name(stem, sizeof(stem)),
                               .producers = producers,
                               .consumers = consumers,
                               .max_msg = max_msg,
                               .capacity = cap};
    struct ipcp_cvq *q = NULL;
    assert_int_equal(ipcp_cvq_create(&cfg, &q), 0);
    return q;
}

static struct ipcp_cvq_ep *ep_open(struct ipcp_cvq *q, int role, uint32_t index)
{
    struct ipcp_cvq_ep *e = NULL;
    int rc = ipcp_cvq_open(q, role, index, &e);
    if (rc < 0) fail_msg("open role %d index %u: %s", role, index, ipcp_strerror(rc));
    return e;
}

static void shm_clean(void)
{
    assert_int_equal(my_shm_count(), 0);
}

static void test_sizes_and_limits(void **state)
{
    (void)state;
    struct ipcp_cvq *q = make(1, 1, 100, 250);
    assert_int_equal(ipcp_cvq_slots(q), 2);
    char path[160];
    snprintf(path, sizeof(path), "/dev/shm%s", ipcp_cvq_name(q));
    assert_int_equal(access(path, F_OK), 0);
    struct ipcp_cvq_ep *p = ep_open(q, IPCP_CVQ_PRODUCER, 0), *c = ep_open(q, IPCP_CVQ_CONSUMER, 0);
    struct ipcp_cvq_ep *dup = NULL;
    assert_int_equal(ipcp_cvq_open(q, IPCP_CVQ_PRODUCER, 0, &dup), -EBUSY);
    assert_int_equal(ipcp_cvq_open(q, IPCP_CVQ_CONSUMER, 1, &dup), -EINVAL);
    uint8_t msg[101], buf[101];
    const size_t lens[] = {0, 1, 99, 100};
    for (size_t i = 0; i < 4 * IPCP_ARRAY_SIZE(lens); i++) { /* wraps around the 2 slots */
        size_t len = lens[i % IPCP_ARRAY_SIZE(lens)];
        tu_fill(msg, len, i);
        assert_int_equal(ipcp_cvq_put(p, msg, len, 1000), 0);
        assert_int_equal(ipcp_cvq_get(c, buf, sizeof(buf), 1000), (ssize_t)len);
        assert_true(tu_check(buf, len, i));
    }
    assert_int_equal(ipcp_cvq_put(p, msg, 101, 1000), -EMSGSIZE);
    /* a short buffer keeps the message */
    tu_fill(msg, 100, 77);
    assert_int_equal(ipcp_cvq_put(p, msg, 100, 1000), 0);
    assert_int_equal(ipcp_cvq_get(c, buf, 99, 1000), -EMSGSIZE);
    assert_int_equal(ipcp_cvq_get(c, buf, 100, 1000), 100);
    assert_true(tu_check(buf, 100, 77));
    /* full and empty */
    assert_int_equal(ipcp_cvq_put(p, msg, 10, 0), 0);
    assert_int_equal(ipcp_cvq_put(p, msg, 10, 0), 0);
    assert_int_equal(ipcp_cvq_put(p, msg, 10, 0), -EAGAIN);
    int64_t t0 = now_ms();
    assert_int_equal(ipcp_cvq_put(p, msg, 10, 60), -ETIMEDOUT);
    int64_t dt = now_ms() - t0;
    assert_true(dt >= 55 && dt < 1000);
    assert_int_equal(ipcp_cvq_get(c, buf, sizeof(buf), 0), 10);
    assert_int_equal(ipcp_cvq_get(c, buf, sizeof(buf), 0), 10);
    assert_int_equal(ipcp_cvq_get(c, buf, sizeof(buf), 0), -EAGAIN);
    assert_int_equal(ipcp_cvq_get(c, buf, sizeof(buf), 60), -ETIMEDOUT);
    assert_true(ipcp_cvq_consistent(ipcp__cvq_view(q)));
    /* end of stream */
    ipcp_cvq_close(p);
    assert_int_equal(ipcp_cvq_get(c, buf, sizeof(buf), 1000), -EPIPE);
    assert_int_equal(ipcp_cvq_put(c, msg, 1, 0), -IPCP_E_STATE);
    ipcp_cvq_close(c);
    ipcp_cvq_destroy(q);
    assert_int_equal(access(path, F_OK), -1);
    /* geometry */
    q = make(2, 3, 1000, 0); /* default capacity */
    assert_int_equal(ipcp_cvq_slots(q), IPCP_CVQ_DEFAULT_CAP / 1000);
    ipcp_cvq_destroy(q);
    q = make(1, 1, 4096, 1); /* at least two slots */
    assert_int_equal(ipcp_cvq_slots(q), IPCP_CVQ_MIN_SLOTS);
    ipcp_cvq_destroy(q);
    struct ipcp_cvq_cfg cfg = {.stem = NULL, .producers = 1, .consumers = 1};
    cfg.max_msg = IPCP_CVQ_MAX_MSG + 1;
    assert_int_equal(ipcp_cvq_create(&cfg, &q), -EMSGSIZE);
    cfg.max_msg = 0;
    assert_int_equal(ipcp_cvq_create(&cfg, &q), -EINVAL);
    cfg.max_msg = 10;
    cfg.producers = IPCP_CVQ_MAX_EP + 1;
    assert_int_equal(ipcp_cvq_create(&cfg, &q), -EINVAL);
    /* a stem in use is refused and the existing object is left alone */
    char stem[64];
    cfg = (struct ipcp_cvq_cfg){tu_name(stem, sizeof(stem)), 1, 1, 10, 0};
    struct ipcp_cvq *a = NULL, *b = NULL;
    assert_int_equal(ipcp_cvq_create(&cfg, &a), 0);
    assert_int_equal(ipcp_cvq_create(&cfg, &b), -EEXIST);
    assert_int_equal(my_shm_count(), 1);
    ipcp_cvq_destroy(a);
    shm_clean();
}

/* ---- 100 000 messages across processes ------------------------------------------------------- */

#define XP_PRODUCERS 2
#define XP_CONSUMERS 2
#define XP_PER       50000u

struct xp_shared {
    _Atomic uint64_t bits[XP_PRODUCERS][(XP_PER + 63) / 64];
    _Atomic uint32_t received, dup, bad, reorder;
};

struct xp_arg {
    struct ipcp_cvq *q;
    struct xp_shared *sh;
    uint32_t index;
};

static size_t xp_len(uint32_t producer, uint32_t seq)
{
    return 8 + (size_t)((producer * 7919u + seq * 104729u) % 249u);
}

static int xp_producer(void *arg)
{
    struct xp_arg *a = arg;
    struct ipcp_cvq_ep *e = NULL;
    if (ipcp_cvq_open(a->q, IPCP_CVQ_PRODUCER, a->index, &e) < 0) return 10;
    uint8_t m[256];
    for (uint32_t seq = 0; seq < XP_PER; seq++) {
        size_t len = xp_len(a->index, seq);
        memcpy(m, &a->index, 4);
        memcpy(m + 4, &seq, 4);
        tu_fill(m + 8, len - 8, (uint64_t)a->index << 32 | seq);
        if (ipcp_cvq_put(e, m, len, 10000) != 0) return 11;
    }
    ipcp_cvq_close(e);
    return 0;
}

static int xp_consumer(void *arg)
{
    struct xp_arg *a = arg;
    struct ipcp_cvq_ep *e = NULL;
    if (ipcp_cvq_open(a->q, IPCP_CVQ_CONSUMER, a->index, &e) < 0) return 20;
    uint8_t m[256];
    int64_t last[XP_PRODUCERS] = {-1, -1};
    for (;;) {
        ssize_t n = ipcp_cvq_get(e, m, sizeof(m), 10000);
        if (n == -EPIPE) break;
        if (n < 8) return 21;
        uint32_t p, seq;
        memcpy(&p, m, 4);
        memcpy(&seq, m + 4, 4);
        if (p >= XP_PRODUCERS || seq >= XP_PER || (size_t)n != xp_len(p, seq) ||
            !tu_check(m + 8, (size_t)n - 8, (uint64_t)p << 32 | seq)) {
            atomic_fetch_add(&a->sh->bad, 1);
            continue;
        }
        uint64_t bit = 1ull << (seq % 64);
        if (atomic_fetch_or(&a->sh->bits[p][seq / 64], bit) & bit) atomic_fetch_add(&a->sh->dup, 1);
        if ((int64_t)seq <= last[p]) atomic_fetch_add(&a->sh->reorder, 1);
        last[p] = seq;
        atomic_fetch_add(&a->sh->received, 1);
    }
    ipcp_cvq_close(e);
    return 0;
}

static void test_processes_100k(void **state)
{
    (void)state;
    struct ipcp_cvq *q = make(XP_PRODUCERS, XP_CONSUMERS, 256, 8 * 256);
    struct xp_shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    struct xp_arg args[XP_PRODUCERS + XP_CONSUMERS];
    pid_t pids[XP_PRODUCERS + XP_CONSUMERS];
    for (uint32_t i = 0; i < XP_CONSUMERS; i++) {
        args[i] = (struct xp_arg){q, sh, i};
        pids[i] = tu_spawn(xp_consumer, &args[i]);
    }
    for (uint32_t i = 0; i < XP_PRODUCERS; i++) {
        args[XP_CONSUMERS + i] = (struct xp_arg){q, sh, i};
        pids[XP_CONSUMERS + i] = tu_spawn(xp_producer, &args[XP_CONSUMERS + i]);
    }
    for (int i = 0; i < XP_PRODUCERS + XP_CONSUMERS; i++)
        tu_wait_ok(pids[i], 120000);
    assert_int_equal(sh->received, XP_PRODUCERS * XP_PER);
    assert_int_equal(sh->bad, 0);
    assert_int_equal(sh->dup, 0);
    assert_int_equal(sh->reorder, 0);
    for (int p = 0; p < XP_PRODUCERS; p++)
        for (uint32_t s = 0; s < XP_PER; s++)
            if (!(sh->bits[p][s / 64] & (1ull << (s % 64)))) fail_msg("lost %d/%u", p, s);
    struct ipcp_cvq_stats st;
    ipcp_cvq_stats(q, &st);
    assert_int_equal(st.repairs, 0);
    munmap(sh, sizeof(*sh));
    ipcp_cvq_destroy(q);
    shm_clean();
}

/* ---- a holder killed in the middle of a put or a get ----------------------------------------- */

struct die_arg {
    struct ipcp_cvq *q;
    uint32_t index;
    int steps;
    uint32_t id;
};

static int die_in_put(void *arg)
{
    struct die_arg *a = arg;
    struct ipcp_cvq_ep *e = NULL;
    if (ipcp_cvq_open(a->q, IPCP_CVQ_PRODUCER, a->index, &e) < 0) return 10;
    uint8_t m[32];
    tu_fill(m, sizeof(m), a->id);
    ipcp__cvq_die_put = a->steps;
    ipcp_cvq_put(e, m, sizeof(m), 1000);
    return 11; /* not reached: the put SIGKILLs us holding the mutex */
}

static int die_in_get(void *arg)
{
    struct die_arg *a = arg;
    struct ipcp_cvq_ep *e = NULL;
    if (ipcp_cvq_open(a->q, IPCP_CVQ_CONSUMER, a->index, &e) < 0) return 10;
    uint8_t m[32];
    ipcp__cvq_die_get = a->steps;
    ipcp_cvq_get(e, m, sizeof(m), 1000);
    return 11;
}

static void expect_killed(pid_t pid)
{
    int st = tu_wait(pid, 10000);
    assert_true(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void put_id(struct ipcp_cvq_ep *p, uint32_t id)
{
    uint8_t m[32];
    tu_fill(m, sizeof(m), id);
    assert_int_equal(ipcp_cvq_put(p, m, sizeof(m), 1000), 0);
}

static void get_id(struct ipcp_cvq_ep *c, uint32_t id)
{
    uint8_t m[32];
    assert_int_equal(ipcp_cvq_get(c, m, sizeof(m), 1000), 32);
    assert_true(tu_check(m, sizeof(m), id));
}

static void test_holder_killed(void **state)
{
    (void)state;
    for (int steps = 0; steps < IPCP_CVQ_STEPS; steps++) {
        /* a producer dies in its put after `steps` steps, holding the mutex */
        struct ipcp_cvq *q = make(2, 2, 32, 4 * 32);
        struct ipcp_cvq_ep *p = ep_open(q, IPCP_CVQ_PRODUCER, 1);
        struct ipcp_cvq_ep *c = ep_open(q, IPCP_CVQ_CONSUMER, 1);
        put_id(p, 1);
        struct die_arg a = {q, 0, steps, 2};
        expect_killed(tu_spawn(die_in_put, &a));
        get_id(c, 1);                 /* EOWNERDEAD: repaired, then the old message */
        if (steps >= 3) get_id(c, 2); /* its put had completed the slot */
        uint8_t m[32];
        assert_int_equal(ipcp_cvq_get(c, m, sizeof(m), 0), -EAGAIN);
        put_id(p, 3); /* the queue goes on */
        get_id(c, 3);
        assert_true(ipcp_cvq_consistent(ipcp__cvq_view(q)));
        struct ipcp_cvq_stats st;
        ipcp_cvq_stats(q, &st);
        assert_int_equal(st.discarded, steps == 1 || steps == 2 ? 1 : 0);
        ipcp_cvq_close(p);
        ipcp_cvq_close(c);
        ipcp_cvq_destroy(q);

        /* a consumer dies in its get after `steps` steps */
        q = make(2, 2, 32, 4 * 32);
        p = ep_open(q, IPCP_CVQ_PRODUCER, 1);
        c = ep_open(q, IPCP_CVQ_CONSUMER, 1);
        put_id(p, 10);
        put_id(p, 11);
        a = (struct die_arg){q, 0, steps, 0};
        expect_killed(tu_spawn(die_in_get, &a));
        if (steps < 3) get_id(c, 10); /* its get had not emptied the slot: nothing lost */
        get_id(c, 11);
        assert_int_equal(ipcp_cvq_get(c, m, sizeof(m), 0), -EAGAIN);
        ipcp_cvq_stats(q, &st);
        assert_int_equal(st.restored, steps == 1 || steps == 2 ? 1 : 0);
        assert_true(ipcp_cvq_consistent(ipcp__cvq_view(q)));
        ipcp_cvq_close(p);
        ipcp_cvq_close(c);
        ipcp_cvq_destroy(q);
    }
    shm_clean();
}

/* ---- a waiter killed while blocked; the last peer dying while the other waits --------------- */

struct blk_arg {
    struct ipcp_cvq *q;
    int role;
    uint32_t index, count, first;
    int timeout_ms, die_after_ms;
};

/* Consumer: gets count messages first, first+1, ... (die_after_ms: opens, then SIGKILLs itself
 * after that long, while the parent waits). Producer: puts them. */
static int blocked_child(void *arg)
{
    struct blk_arg *a = arg;
    struct ipcp_cvq_ep *e = NULL;
    if (ipcp_cvq_open(a->q, a->role, a->index, &e) < 0) return 10;
    if (a->die_after_ms > 0) {
        if (a->role == IPCP_CVQ_PRODUCER && a->count > 0) put_id(e, a->first);
        usleep((useconds_t)a->die_after_ms * 1000);
        kill(getpid(), SIGKILL);
    }
    uint8_t m[32];
    for (uint32_t i = 0; i < a->count; i++) {
        if (a->role == IPCP_CVQ_PRODUCER) {
            tu_fill(m, sizeof(m), a->first + i);
            if (ipcp_cvq_put(e, m, sizeof(m), a->timeout_ms) != 0) return 11;
        } else {
            if (ipcp_cvq_get(e, m, sizeof(m), a->timeout_ms) != 32) return 12;
            if (!tu_check(m, sizeof(m), a->first + i)) return 13;
        }
    }
    ipcp_cvq_close(e);
    return 0;
}

static void test_waiter_killed(void **state)
{
    (void)state;
    /* A consumer dies blocked on an empty queue; another consumer then takes 200 messages
     * through 2 slots: every put wakes a consumer, none may hang on the dead one's wait. */
    struct ipcp_cvq *q = make(1, 2, 32, 64);
    struct blk_arg a0 = {q, IPCP_CVQ_CONSUMER, 0, 1, 0, 10000, 0};
    pid_t dead = tu_spawn(blocked_child, &a0);
    usleep(100000);
    kill(dead, SIGKILL); /* stays a zombie until reaped below */
    struct blk_arg a1 = {q, IPCP_CVQ_CONSUMER, 1, 200, 100, 5000, 0};
    pid_t live = tu_spawn(blocked_child, &a1);
    struct ipcp_cvq_ep *p = ep_open(q, IPCP_CVQ_PRODUCER, 0);
    int64_t t0 = now_ms();
    for (uint32_t i = 0; i < 200; i++)
        put_id(p, 100 + i);
    tu_wait_ok(live, 10000);
    assert_true(now_ms() - t0 < 5000);
    expect_killed(dead);
    ipcp_cvq_close(p);
    ipcp_cvq_destroy(q);

    /* A producer dies blocked on a full queue while another producer waits too: the
     * consumer's gets wake the live one, which completes. */
    q = make(3, 1, 32, 64);
    p = ep_open(q, IPCP_CVQ_PRODUCER, 0);
    put_id(p, 1);
    put_id(p, 2);
    struct blk_arg b0 = {q, IPCP_CVQ_PRODUCER, 1, 1, 50, 10000, 0};
    dead = tu_spawn(blocked_child, &b0);
    usleep(100000);
    kill(dead, SIGKILL);
    struct blk_arg b1 = {q, IPCP_CVQ_PRODUCER, 2, 50, 300, 5000, 0};
    live = tu_spawn(blocked_child, &b1);
    usleep(100000);
    struct ipcp_cvq_ep *c = ep_open(q, IPCP_CVQ_CONSUMER, 0);
    get_id(c, 1);
    get_id(c, 2);
    for (uint32_t i = 0; i < 50; i++)
        get_id(c, 300 + i);
    tu_wait_ok(live, 10000);
    expect_killed(dead);
    uint8_t m[32];
    assert_int_equal(ipcp_cvq_get(c, m, sizeof(m), 0), -EAGAIN); /* 50: never sent */
    ipcp_cvq_close(p);
    ipcp_cvq_close(c);
    ipcp_cvq_destroy(q);

    /* The only consumer dies while the producer waits on a full queue: -IPCP_E_PEERDEAD soon
     * after the death, not at the deadline. */
    q = make(1, 1, 32, 64);
    p = ep_open(q, IPCP_CVQ_PRODUCER, 0);
    put_id(p, 1);
    put_id(p, 2);
    struct blk_arg d0 = {q, IPCP_CVQ_CONSUMER, 0, 0, 0, 0, 100};
    dead = tu_spawn(blocked_child, &d0);
    t0 = now_ms();
    tu_fill(m, sizeof(m), 3);
    assert_int_equal(ipcp_cvq_put(p, m, sizeof(m), 10000), -IPCP_E_PEERDEAD);
    assert_true(now_ms() - t0 < 2000);
    expect_killed(dead);
    ipcp_cvq_close(p);
    ipcp_cvq_destroy(q);

    /* The only producer puts one message and dies: the consumer gets it, then
     * -IPCP_E_PEERDEAD. */
    q = make(1, 1, 32, 64);
    c = ep_open(q, IPCP_CVQ_CONSUMER, 0);
    struct blk_arg d1 = {q, IPCP_CVQ_PRODUCER, 0, 1, 7, 0, 100};
    dead = tu_spawn(blocked_child, &d1);
    get_id(c, 7);
    t0 = now_ms();
    assert_int_equal(ipcp_cvq_get(c, m, sizeof(m), 10000), -IPCP_E_PEERDEAD);
    assert_true(now_ms() - t0 < 2000);
    expect_killed(dead);
    ipcp_cvq_close(c);
    ipcp_cvq_destroy(q);
    shm_clean();
}

/* ---- spurious wake-ups ----------------------------------------------------------------------- */

#define SP_MSGS  20000u
#define SP_EVERY 500u /* a producer waits for one more storm every SP_EVERY messages */

struct sp_ctx {
    struct ipcp_cvq *q;
    _Atomic int stop;
    _Atomic uint32_t got, bad;
    _Atomic uint64_t storms;
    uint8_t seen[2][SP_MSGS];
};

struct sp_thr {
    struct sp_ctx *x;
    uint32_t index;
};

static void *sp_producer(void *arg)
{
    struct sp_thr *t = arg;
    struct ipcp_cvq_ep *e = ep_open(t->x->q, IPCP_CVQ_PRODUCER, t->index);
    uint8_t m[24];
    for (uint32_t s = 0; s < SP_MSGS; s++) {
        /* Storms must interleave with the traffic however the machine schedules the threads:
         * every SP_EVERY messages, wait (bounded) until the storm thread has gone round again. */
        if (s % SP_EVERY == 0) {
            uint64_t seen = atomic_load(&t->x->storms);
            for (int64_t end = now_ms() + 10000;
                 atomic_load(&t->x->storms) == seen && now_ms() < end;)
                sched_yield();
        }
        memcpy(m, &t->index, 4);
        memcpy(m + 4, &s, 4);
        tu_fill(m + 8, 16, (uint64_t)t->index << 32 | s);
        if (ipcp_cvq_put(e, m, sizeof(m), 10000) != 0) atomic_fetch_add(&t->x->bad, 1);
    }
    ipcp_cvq_close(e);
    return NULL;
}

static void *sp_consumer(void *arg)
{
    struct sp_thr *t = arg;
    struct ipcp_cvq_ep *e = ep_open(t->x->q, IPCP_CVQ_CONSUMER, t->index);
    uint8_t m[24];
    int64_t last[2] = {-1, -1};
    for (;;) {
        ssize_t n = ipcp_cvq_get(e, m, sizeof(m), 10000);
        if (n == -EPIPE) break;
        uint32_t p, s;
        memcpy(&p, m, 4);
        memcpy(&s, m + 4, 4);
        if (n != 24 || p > 1 || s >= SP_MSGS || !tu_check(m + 8, 16, (uint64_t)p << 32 | s) ||
            (int64_t)s <= last[p]) {
            atomic_fetch_add(&t->x->bad, 1);
            continue;
        }
        last[p] = s;
        t->x->seen[p][s]++; /* one writer per (p, s) unless delivered twice */
        atomic_fetch_add(&t->x->got, 1);
    }
    ipcp_cvq_close(e);
    return NULL;
}

/* Broadcasts and signals every endpoint's condvar, holding the queue's mutex (as a waiter
 * re-initialises its own condvar under it). */
static void *sp_storm(void *arg)
{
    struct sp_ctx *x = arg;
    pthread_mutex_t *mu = ipcp__cvq_mutex(x->q);
    uint64_t n = 0;
    while (!atomic_load(&x->stop)) {
        if (pthread_mutex_lock(mu) != 0) break;
        for (uint32_t i = 0; i < 4; i++) {
            pthread_cond_t *cv = ipcp__cvq_cond(x->q, i);
            if (n % 2)
                pthread_cond_broadcast(cv);
            else
                pthread_cond_signal(cv);
        }
        pthread_mutex_unlock(mu);
        atomic_store(&x->storms, ++n);
        sched_yield();
    }
    return NULL;
}

static void test_spurious_wakeups(void **state)
{
    (void)state;
    struct sp_ctx *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    x->q = make(2, 2, 24, 3 * 24);
    pthread_t th[5];
    struct sp_thr t[4] = {{x, 0}, {x, 1}, {x, 0}, {x, 1}};
    assert_int_equal(pthread_create(&th[4], NULL, sp_storm, x), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sp_consumer, &t[2 + i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[2 + i], NULL, sp_producer, &t[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    atomic_store(&x->stop, 1);
    pthread_join(th[4], NULL);
    assert_int_equal(x->bad, 0);
    assert_int_equal(x->got, 2 * SP_MSGS);
    for (int p = 0; p < 2; p++)
        for (uint32_t s = 0; s < SP_MSGS; s++)
            assert_int_equal(x->seen[p][s], 1);
    /* each producer saw the storm thread go round SP_MSGS / SP_EVERY times during its traffic */
    assert_true(x->storms >= SP_MSGS / SP_EVERY);
    ipcp_cvq_destroy(x->q);
    free(x);
    shm_clean();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pure_wrap_and_steps), cmocka_unit_test(test_sizes_and_limits),
        cmocka_unit_test(test_processes_100k),      cmocka_unit_test(test_holder_killed),
        cmocka_unit_test(test_waiter_killed),       cmocka_unit_test(test_spurious_wakeups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

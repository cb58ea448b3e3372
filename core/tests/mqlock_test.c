/* mqlock_test.c - the mq token lock.
 *
 * Pure pieces: the token codec refuses every corrupted byte; the decision functions give the
 * documented action in each case; a randomized model of 4 clients (interleaved steps, deaths,
 * slow releasers) driven only by those functions never has two holders or two valid tokens and
 * keeps making progress. Real queues: lock/trylock/unlock and their state errors, timeouts
 * that neither return early nor overshoot, contention between 8 processes and between threads
 * (a non-atomic counter and an owner word in the critical section), a SIGKILLed holder (a
 * blocked waiter and a fresh locker both get 1 within 1 s), a token lost on its way
 * (re-created after the recovery time; the late stale token is discarded later), a second
 * valid token and a foreign message (destroyed, reported), the mq limits named in the errors,
 * and nothing left in /dev/shm or the mq namespace. Guards against: two tokens after a
 * recovery, recovery that never comes, bare EINVAL for the limits, leaked queues. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "os.h"
#include "ipcproof/err.h"
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

static int my_shm_left(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ipcp.mqlock.%ld.", (long)getpid());
    return tu_shm_count(prefix);
}

static struct ipcp_mqlock *make_lock(int recovery_ms, char *name, size_t cap)
{
    struct ipcp_mqlock_cfg cfg = {.stem = NULL, .recovery_ms = recovery_ms, .depth = 0};
    struct ipcp_mqlock *l = NULL;
    int rc = ipcp_mqlock_create(&cfg, &l);
    if (rc != 0) fail_msg("ipcp_mqlock_create: %s", ipcp_strerror(rc));
    snprintf(name, cap, "%s", ipcp_mqlock_name(l));
    return l;
}

static void destroy_and_check(struct ipcp_mqlock *l, const char *name)
{
    ipcp_mqlock_destroy(l);
    assert_true(mq_gone(name));
    assert_int_equal(my_shm_left(), 0);
}

static int64_t ms_since(int64_t t0)
{
    return (ipcp__now_ns() - t0) / 1000000;
}

/* ---- pure: codecs ----------------------------------------------------------------------- */

static void test_token_codec(void **s)
{
    (void)s;
    uint8_t buf[IPCP_MQLOCK_TOKEN_SIZE];
    ipcp_mqlock_token_encode(buf, 0xbeef, 4242);
    struct ipcp_mqlock_token t;
    assert_int_equal(ipcp_mqlock_token_decode(buf, sizeof(buf), &t), 0);
    assert_int_equal(t.epoch, 0xbeef);
    assert_int_equal(t.sender, 4242);
    for (size_t i = 0; i < sizeof(buf); i++)
        for (int bit = 0; bit < 8; bit++) {
            uint8_t c[IPCP_MQLOCK_TOKEN_SIZE];
            memcpy(c, buf, sizeof(c));
            c[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(ipcp_mqlock_token_decode(c, sizeof(c), &t), -IPCP_E_TOKEN);
        }
    assert_int_equal(ipcp_mqlock_token_decode(buf, sizeof(buf) - 1, &t), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_token_decode(buf, 0, &t), -IPCP_E_TOKEN);
}

static void test_word_codec(void **s)
{
    (void)s;
    struct ipcp_mqlock_owner o = {.epoch = 0xffff, .released = 1, .pid = 4194303, .start = 7};
    uint64_t w = ipcp_mqlock_word_pack(&o);
    struct ipcp_mqlock_owner u;
    ipcp_mqlock_word_unpack(w, &u);
    assert_int_equal(u.epoch, 0xffff);
    assert_int_equal(u.released, 1);
    assert_int_equal(u.pid, 4194303);
    assert_int_equal(u.start, 7);
    /* start wider than its field is masked, not spilled into pid */
    o.start = 0xffffffffu;
    o.pid = 5;
    o.released = 0;
    ipcp_mqlock_word_unpack(ipcp_mqlock_word_pack(&o), &u);
    assert_int_equal(u.pid, 5);
    assert_int_equal(u.start, (uint32_t)IPCP_MQLOCK_START_MASK);
    assert_int_equal(u.released, 0);
    /* held by nobody is the one impossible word */
    struct ipcp_mqlock_owner bad = {.epoch = 3, .released = 0, .pid = 0, .start = 0};
    assert_false(ipcp_mqlock_word_valid(ipcp_mqlock_word_pack(&bad)));
    assert_true(ipcp_mqlock_word_valid(ipcp_mqlock_word_initial()));
    ipcp_mqlock_word_unpack(ipcp_mqlock_word_initial(), &u);
    assert_int_equal(u.epoch, 1);
    assert_int_equal(u.released, 1);
}

/* ---- pure: decisions -------------------------------------------------------------------- */

static uint64_t W(uint16_t epoch, int released, uint32_t pid, uint32_t start)
{
    struct ipcp_mqlock_owner o = {
        .epoch = epoch, .released = (uint8_t)released, .pid = pid, .start = start};
    return ipcp_mqlock_word_pack(&o);
}

static int alive_calls;
static int fake_alive(void *ctx, uint32_t pid, uint32_t start)
{
    (void)start;
    alive_calls++;
    return pid != *(uint32_t *)ctx; /* ctx names the one dead pid */
}

static void test_on_token(void **s)
{
    (void)s;
    const struct ipcp_mqlock_self me = {.pid = 77, .start = 1234};
    struct ipcp_mqlock_token t = {.epoch = 5, .sender = 9};
    uint64_t d = 0;
    /* released, same epoch: take it */
    assert_int_equal(ipcp_mqlock_on_token(&t, W(5, 1, 9, 1), &me, &d), IPCP_MQLOCK_TAKE);
    assert_int_equal(d, W(5, 0, 77, 1234));
    /* older or newer epoch: stale */
    assert_int_equal(ipcp_mqlock_on_token(&t, W(6, 0, 9, 1), &me, &d), IPCP_MQLOCK_DROP);
    assert_int_equal(ipcp_mqlock_on_token(&t, W(6, 1, 9, 1), &me, &d), IPCP_MQLOCK_DROP);
    assert_int_equal(ipcp_mqlock_on_token(&t, W(4, 1, 9, 1), &me, &d), IPCP_MQLOCK_DROP);
    /* same epoch while held: a second token */
    assert_int_equal(ipcp_mqlock_on_token(&t, W(5, 0, 9, 1), &me, &d), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_on_token(&t, W(5, 0, 77, 1234), &me, &d), -IPCP_E_TOKEN);
    /* impossible word */
    assert_int_equal(ipcp_mqlock_on_token(&t, W(5, 0, 0, 0), &me, &d), -IPCP_E_CORRUPT);
    /* unlock: from held-by-me to released-by-me, same epoch */
    uint64_t e, n;
    ipcp_mqlock_on_unlock(5, &me, &e, &n);
    assert_int_equal(e, W(5, 0, 77, 1234));
    assert_int_equal(n, W(5, 1, 77, 1234));
}

static void test_on_timeout(void **s)
{
    (void)s;
    const struct ipcp_mqlock_self me = {.pid = 77, .start = 1234};
    uint32_t dead = 66;
    struct ipcp_mqlock_watch w;
    uint64_t d = 0;
    int died = -1;
    const int64_t R = 100 * 1000000LL;

    /* held by a live process: wait */
    ipcp_mqlock_watch_reset(&w);
    alive_calls = 0;
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, W(3, 0, 55, 1), 1, 0, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_WAIT);
    assert_int_equal(alive_calls, 1);
    /* held by a dead process: recover at once, epoch + 1, died */
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, W(3, 0, 66, 1), 1, 0, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_RECOVER);
    assert_int_equal(d, W(4, 0, 77, 1234));
    assert_int_equal(died, 1);
    /* epoch wraps */
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, W(0xffff, 0, 66, 1), 1, 0, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_RECOVER);
    assert_int_equal(d, W(0, 0, 77, 1234));
    /* held by our own process (another thread): wait, without asking /proc */
    alive_calls = 0;
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, W(3, 0, 77, 1234), 1, 0, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_WAIT);
    assert_int_equal(alive_calls, 0);
    /* held by a dead process whose pid we reuse (another start time): recover, died - found by
     * the lock_schedule fuzz target, now lock_sched (corpora/regressions/lock_sched/) */
    died = 0;
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, W(3, 0, 77, 9), 1, 0, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_RECOVER);
    assert_int_equal(d, W(4, 0, 77, 1234));
    assert_int_equal(died, 1);
    assert_int_equal(alive_calls, 0);

    /* released: arm, wait until the word and the counter stood still for R */
    ipcp_mqlock_watch_reset(&w);
    uint64_t rel = W(3, 1, 66, 1);
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, rel, 10, 1000, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_WAIT);
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, rel, 10, 1000 + R - 1, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_WAIT);
    /* the counter moved (ABA on the word): re-armed */
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, rel, 11, 1000 + R, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_WAIT);
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, rel, 11, 1000 + 2 * R - 1, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_WAIT);
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, rel, 11, 1000 + 2 * R, R, &me, fake_alive, &dead, &d, &died),
        IPCP_MQLOCK_RECOVER);
    assert_int_equal(d, W(4, 0, 77, 1234));
    assert_int_equal(died, 0);
    /* the initial word (nobody ever held) recovers the same way */
    ipcp_mqlock_watch_reset(&w);
    assert_int_equal(ipcp_mqlock_on_timeout(&w, ipcp_mqlock_word_initial(), 0, 0, R, &me,
                                            fake_alive, &dead, &d, &died),
                     IPCP_MQLOCK_WAIT);
    assert_int_equal(ipcp_mqlock_on_timeout(&w, ipcp_mqlock_word_initial(), 0, R, R, &me,
                                            fake_alive, &dead, &d, &died),
                     IPCP_MQLOCK_RECOVER);
    assert_int_equal(d, W(2, 0, 77, 1234));
    /* impossible word */
    assert_int_equal(
        ipcp_mqlock_on_timeout(&w, W(3, 0, 0, 0), 0, 0, R, &me, fake_alive, &dead, &d, &died),
        -IPCP_E_CORRUPT);
}

/* ---- pure: a randomized model of N clients --------------------------------------------- */

enum { M_IDLE, M_WAIT, M_GOT, M_GOT_READ, M_RCAS, M_HOLD, M_RELEASED, M_DEAD };
#define MC    4
#define MQCAP 16

struct mclient {
    int st;
    struct ipcp_mqlock_self self;
    struct ipcp_mqlock_token tok;
    struct ipcp_mqlock_watch w;
    uint64_t seen, desired;
    int died;
    uint16_t epoch;
};

struct model {
    uint64_t word, acq;
    uint16_t q[MQCAP];
    int qlen;
    int64_t now;
    struct mclient c[MC];
    uint64_t takes, recoveries, deaths_reported;
};

static int model_alive(void *ctx, uint32_t pid, uint32_t start)
{
    (void)start;
    struct model *m = ctx;
    for (int i = 0; i < MC; i++)
        if (m->c[i].self.pid == pid) return m->c[i].st != M_DEAD;
    return 0;
}

static uint16_t qpop(struct model *m)
{
    uint16_t e = m->q[0];
    memmove(m->q, m->q + 1, (size_t)(m->qlen - 1) * sizeof(m->q[0]));
    m->qlen--;
    return e;
}

static void model_check(const struct model *m)
{
    struct ipcp_mqlock_owner o;
    ipcp_mqlock_word_unpack(m->word, &o);
    int holders = 0, valid = 0;
    for (int i = 0; i < MC; i++) {
        const struct mclient *c = &m->c[i];
        if (c->st == M_HOLD) holders++, valid++;
        if ((c->st == M_GOT || c->st == M_GOT_READ) && c->tok.epoch == o.epoch) valid++;
        if (c->st == M_RELEASED && c->epoch == o.epoch) valid++;
    }
    for (int i = 0; i < m->qlen; i++)
        if (m->q[i] == o.epoch) valid++;
    assert_true(holders <= 1);
    assert_true(valid <= 1);
}

static void model_step(struct model *m, int i, uint64_t *rng, int allow_death)
{
    struct mclient *c = &m->c[i];
    const int64_t R = 100;
    uint64_t r = splitmix64_next(rng);
    if (allow_death && c->st != M_DEAD && r % 97 == 0) {
        c->st = M_DEAD; /* whatever it had in hand is lost */
        return;
    }
    switch (c->st) {
    case M_IDLE:
        ipcp_mqlock_watch_reset(&c->w);
        c->st = M_WAIT;
        break;
    case M_WAIT:
        if (m->qlen > 0 && r % 4 != 0) {
            c->tok.epoch = qpop(m);
            c->st = M_GOT;
        } else {
            m->now += 10; /* a receive slice expired */
            int rc = ipcp_mqlock_on_timeout(&c->w, m->word, m->acq, m->now, R, &c->self,
                                            model_alive, m, &c->desired, &c->died);
            assert_true(rc == IPCP_MQLOCK_WAIT || rc == IPCP_MQLOCK_RECOVER);
            if (rc != IPCP_MQLOCK_RECOVER) break;
            if (m->qlen > 0) { /* the probe found a token */
                c->tok.epoch = qpop(m);
                c->st = M_GOT;
            } else {
                c->seen = m->word; /* what on_timeout judged; the CAS comes later */
                c->st = M_RCAS;
            }
        }
        break;
    case M_RCAS:
        if (m->word == c->seen) {
            if (c->died) { /* the claimed death must be real and must have held */
                struct ipcp_mqlock_owner o;
                ipcp_mqlock_word_unpack(c->seen, &o);
                assert_false(o.released);
                assert_false(model_alive(m, o.pid, 0));
                m->deaths_reported++;
            }
            m->word = c->desired;
            m->acq++;
            m->recoveries++;
            struct ipcp_mqlock_owner o;
            ipcp_mqlock_word_unpack(c->desired, &o);
            c->epoch = o.epoch;
            c->st = M_HOLD;
        } else {
            ipcp_mqlock_watch_reset(&c->w);
            c->st = M_WAIT;
        }
        break;
    case M_GOT:
        c->seen = m->word;
        c->st = M_GOT_READ;
        break;
    case M_GOT_READ: {
        int rc = ipcp_mqlock_on_token(&c->tok, c->seen, &c->self, &c->desired);
        assert_true(rc == IPCP_MQLOCK_TAKE || rc == IPCP_MQLOCK_DROP);
        if (rc == IPCP_MQLOCK_DROP) {
            c->st = M_WAIT;
        } else if (m->word == c->seen) {
            m->word = c->desired;
            m->acq++;
            m->takes++;
            c->epoch = c->tok.epoch;
            c->st = M_HOLD;
        } else {
            c->st = M_GOT; /* CAS failed: read again */
        }
        break;
    }
    case M_HOLD: {
        uint64_t exp, des;
        ipcp_mqlock_on_unlock(c->epoch, &c->self, &exp, &des);
        assert_true(m->word == exp); /* nobody recovered from a live holder */
        m->word = des;
        c->st = M_RELEASED;
        break;
    }
    case M_RELEASED:
        assert_true(m->qlen < MQCAP);
        m->q[m->qlen++] = c->epoch;
        c->st = M_IDLE;
        break;
    default:
        break;
    }
}

static void test_model(void **s)
{
    (void)s;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct model m;
        memset(&m, 0, sizeof(m));
        m.word = ipcp_mqlock_word_initial();
        m.q[m.qlen++] = 1;
        for (int i = 0; i < MC; i++) {
            m.c[i].self.pid = 100 + (uint32_t)i;
            m.c[i].self.start = (uint64_t)i;
        }
        uint64_t rng = seed;
        for (int step = 0; step < 20000; step++) {
            int alive = 0;
            for (int i = 0; i < MC; i++)
                alive += m.c[i].st != M_DEAD;
            int i = (int)(splitmix64_next(&rng) % MC);
            model_step(&m, i, &rng, alive > 1);
            model_check(&m);
        }
        /* Progress: with the survivors alone, the lock keeps being acquired. */
        uint64_t before = m.acq;
        for (int step = 0; step < 20000; step++) {
            int i = (int)(splitmix64_next(&rng) % MC);
            model_step(&m, i, &rng, 0);
            model_check(&m);
        }
        assert_true(m.acq > before + 100);
        assert_true(m.takes > 0);
    }
}

/* ---- real queues ------------------------------------------------------------------------ */

static void test_basic_and_states(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock_cfg cfg = {.stem = "t-basic_1", .recovery_ms = 0, .depth = 0};
    struct ipcp_mqlock *l = NULL;
    assert_int_equal(ipcp_mqlock_create(&cfg, &l), 0);
    snprintf(name, sizeof(name), "%s", ipcp_mqlock_name(l));
    char want[96];
    snprintf(want, sizeof(want), "/ipcp.mqlock.%ld.t-basic_1", (long)getpid());
    assert_string_equal(name, want);
    /* the same stem again: the name is taken, nothing else is touched */
    struct ipcp_mqlock *l2 = NULL;
    assert_int_equal(ipcp_mqlock_create(&cfg, &l2), -EEXIST);
    assert_null(l2);
    cfg.stem = "bad/stem";
    assert_int_equal(ipcp_mqlock_create(&cfg, &l2), -EINVAL);

    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), -IPCP_E_STATE);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    /* the stats' owner word names the holder while it holds, and says released afterwards */
    struct ipcp_mqlock_stats held;
    struct ipcp_mqlock_owner who;
    ipcp_mqlock_stats(l, &held);
    ipcp_mqlock_word_unpack(held.word, &who);
    assert_int_equal(who.released, 0);
    assert_int_equal(who.pid, (uint32_t)getpid() & ((1u << IPCP_MQLOCK_PID_BITS) - 1));
    assert_int_equal(who.epoch, 1);
    assert_int_equal(ipcp_mqlock_lock(a, 0), -IPCP_E_STATE);
    assert_int_equal(ipcp_mqlock_trylock(b), -EBUSY);
    assert_int_equal(ipcp_mqlock_lock(b, 0), -ETIMEDOUT);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), -IPCP_E_STATE);
    assert_int_equal(ipcp_mqlock_trylock(b), 0);
    assert_int_equal(ipcp_mqlock_trylock(a), -EBUSY);
    assert_int_equal(ipcp_mqlock_unlock(b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 0), 0); /* the token is back: no wait needed */
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.acquisitions, 3);
    assert_int_equal(st.recoveries, 0);
    assert_int_equal(st.stale + st.duplicates + st.foreign, 0);
    assert_int_equal(st.epoch, 1);
    ipcp_mqlock_word_unpack(st.word, &who);
    assert_int_equal(who.released, 1);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    destroy_and_check(l, name);
}

static void test_timeout_bounds(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = make_lock(0, name, sizeof(name));
    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    const int cases[] = {1, 30, 120};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(cases); i++) {
        int64_t t0 = ipcp__now_ns();
        assert_int_equal(ipcp_mqlock_lock(b, cases[i]), -ETIMEDOUT);
        int64_t el = ms_since(t0);
        assert_true(el >= cases[i]);
        assert_true(el < cases[i] + 500);
    }
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    destroy_and_check(l, name);
}

/* Shared by the contention tests: lives in a MAP_SHARED|MAP_ANONYMOUS page made before fork. */
struct cs_shared {
    volatile uint64_t counter; /* plain read-modify-write: only the lock protects it */
    volatile uint32_t owner;
    _Atomic uint64_t violations;
    _Atomic uint64_t died_reports;
};

static void critical_section(struct cs_shared *sh, uint32_t me, uint64_t iter)
{
    if (sh->owner != 0) ipcp_fetch_add_relaxed64(&sh->violations, 1);
    sh->owner = me;
    uint64_t c = sh->counter;
    if (iter % 512 == 0) sched_yield(); /* now and then, be preempted inside */
    sh->counter = c + 1;
    if (sh->owner != me) ipcp_fetch_add_relaxed64(&sh->violations, 1);
    sh->owner = 0;
}

struct worker_arg {
    struct ipcp_mqlock *l;
    struct cs_shared *sh;
    int go_fd;  /* read end: EOF = start */
    int go_wfd; /* write end, closed in the worker so that EOF can come */
    uint32_t id;
    uint64_t iters;
};

static int worker(void *p)
{
    struct worker_arg *a = p;
    close(a->go_wfd);
    char c;
    while (read(a->go_fd, &c, 1) < 0 && errno == EINTR) {
    }
    struct ipcp_mqlock_handle *h;
    if (ipcp_mqlock_open(a->l, &h) != 0) return 10;
    for (uint64_t i = 0; i < a->iters; i++) {
        int rc = ipcp_mqlock_lock(h, 20000);
        if (rc < 0) return 11;
        if (rc == 1) ipcp_fetch_add_relaxed64(&a->sh->died_reports, 1);
        critical_section(a->sh, a->id, i);
        if (ipcp_mqlock_unlock(h) != 0) return 12;
    }
    ipcp_mqlock_close(h);
    return 0;
}

static void test_processes_contend(void **s)
{
    (void)s;
    enum { NPROC = 8, ITERS = 2500 };
    char name[96];
    struct ipcp_mqlock *l = make_lock(0, name, sizeof(name));
    struct cs_shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    memset((void *)sh, 0, sizeof(*sh));
    int go[2];
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    pid_t pids[NPROC];
    struct worker_arg args[NPROC];
    for (int i = 0; i < NPROC; i++) {
        args[i] = (struct worker_arg){l, sh, go[0], go[1], (uint32_t)i + 1, ITERS};
        pids[i] = tu_spawn(worker, &args[i]);
        assert_true(pids[i] > 0);
    }
    close(go[1]); /* start barrier */
    for (int i = 0; i < NPROC; i++)
        tu_wait_ok(pids[i], 120000);
    close(go[0]);
    assert_int_equal(sh->counter, NPROC * ITERS);
    assert_int_equal(ipcp_load_relaxed64(&sh->violations), 0);
    assert_int_equal(ipcp_load_relaxed64(&sh->died_reports), 0);
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.acquisitions, NPROC * ITERS);
    assert_int_equal(st.deaths + st.duplicates + st.foreign, 0);
    munmap(sh, sizeof(*sh));
    destroy_and_check(l, name);
}

struct thread_arg {
    struct ipcp_mqlock *l;
    struct cs_shared *sh;
    uint32_t id;
    int rc;
};

static void *thread_worker(void *p)
{
    struct thread_arg *a = p;
    struct ipcp_mqlock_handle *h;
    a->rc = ipcp_mqlock_open(a->l, &h);
    if (a->rc != 0) return NULL;
    for (uint64_t i = 0; i < 3000 && a->rc == 0; i++) {
        int rc = ipcp_mqlock_lock(h, 20000);
        if (rc != 0) {
            a->rc = rc < 0 ? rc : -1000;
            break;
        }
        critical_section(a->sh, a->id, i);
        a->rc = ipcp_mqlock_unlock(h);
    }
    ipcp_mqlock_close(h);
    return NULL;
}

/* Threads of one process share one mapping: under TSan this is the case it checks (the plain
 * counter is ordered only by the annotated token handoff and the word's CAS). */
static void test_threads_contend(void **s)
{
    (void)s;
    enum { NT = 4 };
    char name[96];
    struct ipcp_mqlock *l = make_lock(0, name, sizeof(name));
    struct cs_shared *sh = calloc(1, sizeof(*sh));
    assert_non_null(sh);
    pthread_t t[NT];
    struct thread_arg args[NT];
    for (int i = 0; i < NT; i++) {
        args[i] = (struct thread_arg){l, sh, (uint32_t)i + 1, 0};
        assert_int_equal(pthread_create(&t[i], NULL, thread_worker, &args[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].rc, 0);
    }
    assert_int_equal(sh->counter, NT * 3000);
    assert_int_equal(ipcp_load_relaxed64(&sh->violations), 0);
    free(sh);
    destroy_and_check(l, name);
}

/* ---- holder death ----------------------------------------------------------------------- */

struct death_shared {
    _Atomic uint64_t waiter_rc_plus; /* rc + 100 once the waiter returned */
    _Atomic uint64_t waiter_done_ns;
};

struct holder_arg {
    struct ipcp_mqlock *l;
    int ready_fd; /* write 'L' once holding */
    int hold_fd;  /* block on it until killed (or EOF when the test process is gone) */
    int hold_wfd; /* closed in the child, so that EOF can come */
};

static int holder(void *p)
{
    struct holder_arg *a = p;
    close(a->hold_wfd);
    struct ipcp_mqlock_handle *h;
    if (ipcp_mqlock_open(a->l, &h) != 0) return 10;
    if (ipcp_mqlock_lock(h, 5000) != 0) return 11;
    if (write(a->ready_fd, "L", 1) != 1) return 12;
    char c;
    while (read(a->hold_fd, &c, 1) < 0 && errno == EINTR) {
    }
    return 13; /* not reached in the test: it is SIGKILLed while holding */
}

struct waiter_arg {
    struct ipcp_mqlock *l;
    struct death_shared *ds;
    int ready_fd;
};

static int waiter(void *p)
{
    struct waiter_arg *a = p;
    struct ipcp_mqlock_handle *h;
    if (ipcp_mqlock_open(a->l, &h) != 0) return 10;
    if (write(a->ready_fd, "W", 1) != 1) return 12;
    int rc = ipcp_mqlock_lock(h, 10000);
    atomic_store(&a->ds->waiter_done_ns, (uint64_t)ipcp__now_ns());
    atomic_store(&a->ds->waiter_rc_plus, (uint64_t)(rc + 100));
    if (rc == 1 && ipcp_mqlock_unlock(h) != 0) return 14;
    ipcp_mqlock_close(h);
    return 0;
}

static void test_holder_killed(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = make_lock(0, name, sizeof(name));
    struct death_shared *ds =
        mmap(NULL, sizeof(*ds), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(ds != MAP_FAILED);
    memset(ds, 0, sizeof(*ds));
    int ready[2], hold[2];
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    assert_int_equal(pipe2(hold, O_CLOEXEC), 0);

    /* 1: a waiter blocked in lock() when the holder is killed */
    struct holder_arg ha = {l, ready[1], hold[0], hold[1]};
    pid_t hp = tu_spawn(holder, &ha);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'L');
    struct waiter_arg wa = {l, ds, ready[1]};
    pid_t wp = tu_spawn(waiter, &wa);
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'W');
    int64_t kill_ns = ipcp__now_ns();
    assert_int_equal(kill(hp, SIGKILL), 0);
    tu_wait_ok(wp, 15000); /* the holder stays an unreaped zombie meanwhile */
    assert_int_equal(atomic_load(&ds->waiter_rc_plus), 101);
    int64_t took_ms = ((int64_t)atomic_load(&ds->waiter_done_ns) - kill_ns) / 1000000;
    assert_true(took_ms < 1000);
    int st = tu_wait(hp, 5000);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* 2: a fresh lock() right after the kill, before the holder is reaped */
    hp = tu_spawn(holder, &ha);
    assert_int_equal(read(ready[0], &c, 1), 1);
    struct ipcp_mqlock_handle *h;
    assert_int_equal(ipcp_mqlock_open(l, &h), 0);
    assert_int_equal(ipcp_mqlock_trylock(h), -EBUSY); /* the holder is alive */
    assert_int_equal(kill(hp, SIGKILL), 0);
    int64_t t0 = ipcp__now_ns();
    assert_int_equal(ipcp_mqlock_lock(h, 5000), 1);
    assert_true(ms_since(t0) < 1000);
    assert_int_equal(ipcp_mqlock_unlock(h), 0);
    /* afterwards: one token, plain acquisitions */
    assert_int_equal(ipcp_mqlock_lock(h, 1000), 0);
    assert_int_equal(ipcp_mqlock_unlock(h), 0);
    st = tu_wait(hp, 5000);
    assert_true(WIFSIGNALED(st));

    /* 3: trylock recovers a dead holder at once */
    hp = tu_spawn(holder, &ha);
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(kill(hp, SIGKILL), 0);
    tu_wait(hp, 5000); /* reaped: the pid is gone */
    assert_int_equal(ipcp_mqlock_trylock(h), 1);
    struct ipcp_mqlock_handle *h2;
    assert_int_equal(ipcp_mqlock_open(l, &h2), 0);
    assert_int_equal(ipcp_mqlock_trylock(h2), -EBUSY);
    assert_int_equal(ipcp_mqlock_unlock(h), 0);
    assert_int_equal(ipcp_mqlock_trylock(h2), 0);
    assert_int_equal(ipcp_mqlock_unlock(h2), 0);

    struct ipcp_mqlock_stats stats;
    ipcp_mqlock_stats(l, &stats);
    assert_int_equal(stats.deaths, 3);
    assert_int_equal(stats.recoveries, 3);
    assert_int_equal(stats.epoch, 4);
    assert_int_equal(stats.duplicates, 0);
    ipcp_mqlock_close(h);
    ipcp_mqlock_close(h2);
    close(ready[0]);
    close(ready[1]);
    close(hold[0]);
    close(hold[1]);
    munmap(ds, sizeof(*ds));
    destroy_and_check(l, name);
}

/* A token that vanished between a releaser and the queue (as if a process died right after
 * receiving it) is re-created after the recovery time; when the "lost" token turns up again
 * (the slow process was alive after all) it is stale and discarded: still one token. */
static void test_lost_token_and_stale_return(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = make_lock(100, name, sizeof(name));
    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);

    mqd_t raw = mq_open(name, O_RDWR);
    assert_true(raw != (mqd_t)-1);
    uint8_t stolen[IPCP_MQLOCK_TOKEN_SIZE];
    assert_int_equal(mq_receive(raw, (char *)stolen, sizeof(stolen), NULL), sizeof(stolen));

    int64_t t0 = ipcp__now_ns();
    assert_int_equal(ipcp_mqlock_lock(b, 5000), 0); /* released, not died: 0 */
    int64_t el = ms_since(t0);
    assert_true(el >= 100);
    assert_true(el < 1000);
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.recoveries, 1);
    assert_int_equal(st.deaths, 0);
    assert_int_equal(st.epoch, 2);

    /* the slow process sends its token after all */
    assert_int_equal(mq_send(raw, (const char *)stolen, sizeof(stolen), 0), 0);
    assert_int_equal(ipcp_mqlock_trylock(a), -EBUSY); /* stale token dropped, b holds */
    assert_int_equal(ipcp_mqlock_unlock(b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    assert_int_equal(ipcp_mqlock_trylock(b), -EBUSY);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.stale, 1);
    assert_int_equal(st.duplicates, 0);
    /* a stale token queued behind the valid one is dropped by whoever meets it */
    assert_int_equal(mq_send(raw, (const char *)stolen, sizeof(stolen), 0), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ipcp_mqlock_lock(b, 1000), 0);
        assert_int_equal(ipcp_mqlock_trylock(a), -EBUSY);
        assert_int_equal(ipcp_mqlock_unlock(b), 0);
    }
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.stale, 2);
    mq_close(raw);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    destroy_and_check(l, name);
}

/* The same loss, met by a caller that retries with timeouts shorter than the recovery time:
 * the standstill is counted across its calls, so the token is re-created all the same. Found by
 * `ipcproof stress --proto mq-token --crash-points` (a holder that died right after receiving
 * the token): with a fresh count per call, every call timed out first and nobody ever got the
 * lock again. */
static void test_lost_token_short_timeouts(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = make_lock(200, name, sizeof(name));
    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    mqd_t raw = mq_open(name, O_RDWR);
    assert_true(raw != (mqd_t)-1);
    uint8_t stolen[IPCP_MQLOCK_TOKEN_SIZE];
    assert_int_equal(mq_receive(raw, (char *)stolen, sizeof(stolen), NULL), sizeof(stolen));
    int rc = -ETIMEDOUT, calls = 0;
    int64_t t0 = ipcp__now_ns();
    while (rc == -ETIMEDOUT && ms_since(t0) < 5000) { /* 50 ms each, a quarter of recovery */
        rc = ipcp_mqlock_lock(b, 50);
        calls++;
    }
    assert_int_equal(rc, 0);
    assert_true(calls >= 4); /* it did take several short calls */
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.recoveries, 1);
    assert_int_equal(ipcp_mqlock_unlock(b), 0);
    mq_close(raw);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    destroy_and_check(l, name);
}

static void test_second_token_and_foreign(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = make_lock(0, name, sizeof(name));
    struct ipcp_mqlock_handle *a, *b;
    assert_int_equal(ipcp_mqlock_open(l, &a), 0);
    assert_int_equal(ipcp_mqlock_open(l, &b), 0);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    mqd_t raw = mq_open(name, O_RDWR);
    assert_true(raw != (mqd_t)-1);
    uint8_t tok[IPCP_MQLOCK_TOKEN_SIZE];
    ipcp_mqlock_token_encode(tok, 1, 999); /* a forged token of the current epoch */
    assert_int_equal(mq_send(raw, (const char *)tok, sizeof(tok), 0), 0);
    assert_int_equal(ipcp_mqlock_lock(b, 1000), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_lock(b, 50), -ETIMEDOUT); /* it was destroyed; a holds */
    const char junk[IPCP_MQLOCK_TOKEN_SIZE] = "not a token!!!!";
    assert_int_equal(mq_send(raw, junk, sizeof(junk), 0), 0);
    assert_int_equal(ipcp_mqlock_trylock(b), -IPCP_E_TOKEN);
    /* a forged token already queued when the holder unlocks: the unlock goes through, the
     * next locker takes one of the two and the other is destroyed by the first to meet it */
    assert_int_equal(mq_send(raw, (const char *)tok, sizeof(tok), 0), 0);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    assert_int_equal(ipcp_mqlock_lock(b, 1000), 0);
    assert_int_equal(ipcp_mqlock_trylock(a), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_trylock(a), -EBUSY);
    /* the queue full of forged tokens at unlock: one is destroyed to make room, reported */
    for (int i = 0; i < 4; i++)
        assert_int_equal(mq_send(raw, (const char *)tok, sizeof(tok), 0), 0);
    assert_int_equal(ipcp_mqlock_unlock(b), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_lock(a, 1000), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ipcp_mqlock_trylock(b), -IPCP_E_TOKEN);
    assert_int_equal(ipcp_mqlock_trylock(b), -EBUSY);
    assert_int_equal(ipcp_mqlock_unlock(a), 0);
    assert_int_equal(ipcp_mqlock_trylock(b), 0);
    assert_int_equal(ipcp_mqlock_unlock(b), 0);
    struct ipcp_mqlock_stats st;
    ipcp_mqlock_stats(l, &st);
    assert_int_equal(st.duplicates, 1 + 1 + 1 + 3);
    assert_int_equal(st.foreign, 1);
    mq_close(raw);
    ipcp_mqlock_close(a);
    ipcp_mqlock_close(b);
    destroy_and_check(l, name);
}

/* ---- limits ----------------------------------------------------------------------------- */

static void test_limits(void **s)
{
    (void)s;
    struct ipcp_mq_limits lim;
    assert_int_equal(ipcp_mq_limits_read(&lim), 0);
    assert_true(lim.msg_max > 0);
    assert_true(lim.msgsize_max > 0);
    struct ipcp_mq_limits unpriv = lim;
    unpriv.privileged = 0;
    assert_int_equal(ipcp_mq_limits_check(&unpriv, lim.msg_max, lim.msgsize_max), 0);
    assert_int_equal(ipcp_mq_limits_check(&unpriv, lim.msg_max + 1, 16), -IPCP_E_MQ_MAXMSG);
    assert_int_equal(ipcp_mq_limits_check(&unpriv, 1, lim.msgsize_max + 1), -IPCP_E_MQ_MSGSIZE);
    assert_int_equal(ipcp_mq_limits_check(&unpriv, 0, 16), -EINVAL);
    assert_int_equal(ipcp_mq_limits_check(&unpriv, 1, 0), -EINVAL);
    struct ipcp_mq_limits priv = lim;
    priv.privileged = 1;
    assert_int_equal(ipcp_mq_limits_check(&priv, lim.msg_max + 1, 16), 0);
    assert_int_equal(ipcp_mq_limits_check(&priv, 65537, 16), -IPCP_E_MQ_MAXMSG);
    assert_non_null(strstr(ipcp_strerror(-IPCP_E_MQ_MAXMSG), "/proc/sys/fs/mqueue/msg_max"));
    assert_non_null(strstr(ipcp_strerror(-IPCP_E_MQ_MSGSIZE), "/proc/sys/fs/mqueue/msgsize_max"));
    assert_non_null(strstr(ipcp_strerror(-IPCP_E_MQ_QUEUES), "RLIMIT_MSGQUEUE"));

    if (lim.privileged) {
        print_message("CAP_SYS_RESOURCE is effective: the real-queue limit checks are skipped\n");
        return;
    }
    /* through real creation: refused before mq_open, nothing created */
    char name[96];
    assert_int_equal(ipcp__os_objname(name, sizeof(name), "mqlock", "limits"), 0);
    assert_int_equal(ipcp__os_mq_create(name, lim.msg_max + 1, 16), -IPCP_E_MQ_MAXMSG);
    assert_int_equal(ipcp__os_mq_create(name, 1, lim.msgsize_max + 1), -IPCP_E_MQ_MSGSIZE);
    assert_true(mq_gone(name));
    struct ipcp_mqlock_cfg cfg = {
        .stem = "limits", .recovery_ms = 0, .depth = (unsigned)lim.msg_max + 1};
    struct ipcp_mqlock *l = NULL;
    assert_int_equal(ipcp_mqlock_create(&cfg, &l), -IPCP_E_MQ_MAXMSG);
    assert_true(mq_gone(name));
    assert_int_equal(my_shm_left(), 0);
}

static int queues_child(void *p)
{
    (void)p;
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_MSGQUEUE, &rl) != 0) return 20;
    struct ipcp_mqlock_cfg cfg = {.stem = "rlimit", .recovery_ms = 0, .depth = 0};
    struct ipcp_mqlock *l = NULL;
    int rc = ipcp_mqlock_create(&cfg, &l);
    if (l != NULL) ipcp_mqlock_destroy(l);
    if (rc != -IPCP_E_MQ_QUEUES) return 21;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ipcp.mqlock.%ld.", (long)getpid());
    return tu_shm_count(prefix) == 0 ? 0 : 22;
}

/* RLIMIT_MSGQUEUE exhausted: mq_open's EMFILE becomes IPCP_E_MQ_QUEUES (in a child, whose
 * lowered limit does not touch the rest of the run). */
static void test_queue_limit(void **s)
{
    (void)s;
    tu_wait_ok(tu_spawn(queues_child, NULL), 10000);
}

static int inherited_child(void *p)
{
    struct ipcp_mqlock_handle *h = p;
    return ipcp_mqlock_lock(h, 100) == -IPCP_E_STATE ? 0 : 1;
}

static void test_inherited_handle_refused(void **s)
{
    (void)s;
    char name[96];
    struct ipcp_mqlock *l = make_lock(0, name, sizeof(name));
    struct ipcp_mqlock_handle *h;
    assert_int_equal(ipcp_mqlock_open(l, &h), 0);
    tu_wait_ok(tu_spawn(inherited_child, h), 10000);
    assert_int_equal(ipcp_mqlock_trylock(h), 0); /* the child did not take the token */
    assert_int_equal(ipcp_mqlock_unlock(h), 0);
    ipcp_mqlock_close(h);
    destroy_and_check(l, name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_codec),
        cmocka_unit_test(test_word_codec),
        cmocka_unit_test(test_on_token),
        cmocka_unit_test(test_on_timeout),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_basic_and_states),
        cmocka_unit_test(test_timeout_bounds),
        cmocka_unit_test(test_processes_contend),
        cmocka_unit_test(test_holder_killed),
        cmocka_unit_test(test_lost_token_and_stale_return),
        cmocka_unit_test(test_lost_token_short_timeouts),
        cmocka_unit_test(test_second_token_and_foreign),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_queue_limit),
        cmocka_unit_test(test_inherited_handle_refused),
        cmocka_unit_test(test_threads_contend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

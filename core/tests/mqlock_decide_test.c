/* mqlock_decide_test.c - the mq token lock: its pure pieces.
 *
 * Verifies: the token codec refuses every corrupted byte; the owner word's codec masks each
 * field; the decision functions give the documented action in each case; a randomized model of 4
 * clients (interleaved steps, deaths, slow releasers) driven only by those functions never has
 * two holders or two valid tokens and keeps making progress. The lock on real queues:
 * mqlock_test and mqlock_recovery_test. */
#include <stdint.h>
#include <string.h>

#include "ipcproof/err.h"
#include "ipcproof/mqlock.h"
#include "testutil.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_codec), cmocka_unit_test(test_word_codec),
        cmocka_unit_test(test_on_token),    cmocka_unit_test(test_on_timeout),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

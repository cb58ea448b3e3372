/* dfs_test.c - the depth-first search of --strategy dfs (dfs.c) over programs whose branching
 * points are known: it runs every schedule with at most B preemptions exactly once, and no
 * other, whatever the shape of the tree (the count is checked against a brute-force
 * enumeration of the same program); and the --choices text reads back what it wrote. */
#include <stdlib.h>
#include <string.h>

#include "stress.h"
#include "unitutil.h"

/* A program as the scheduler runtime sees it: given the prescribed choices, the branching points
 * it meets. Model 0: P points of 2 alternatives, each a preemption. Model 1: the shape depends
 * on the path: after the first non-zero choice the even points are free choices of 3 (the
 * running thread could not go on), the odd ones still preemptions; taking alternative 1 at
 * point 0 makes the run one point shorter; point 2 has 4 alternatives. */
#define P 6

static void point(int model, uint32_t k, const uint8_t *taken, uint8_t *nalt, uint8_t *preempt)
{
    int moved = 0;
    for (uint32_t j = 0; j < k; j++)
        moved |= taken[j] != 0;
    *nalt = 2;
    *preempt = 1;
    if (model == 1 && moved && k % 2 == 0) *nalt = 3, *preempt = 0;
    if (model == 1 && k == 2) *nalt = 4;
}

static uint32_t length(int model, const uint8_t *taken)
{
    return model == 1 && taken[0] == 1 ? P - 1 : P;
}

static void run_model(int model, const uint8_t *prefix, uint32_t plen, struct st_sched_report *sr)
{
    uint8_t taken[P] = {0};
    memset(sr->choices, 0, sizeof(sr->choices));
    uint32_t k = 0;
    for (; k < P; k++) {
        if (k > 0 && k >= length(model, taken)) break;
        uint8_t nalt, pre;
        point(model, k, taken, &nalt, &pre);
        uint8_t t = k < plen ? prefix[k] : 0;
        assert_true(t < nalt); /* the search only prescribes alternatives that exist */
        taken[k] = t;
        sr->choices[k] = (struct st_sched_choice){.taken = t, .nalt = nalt, .preempt = pre};
    }
    sr->nchoices = k;
}

/* Every complete path with at most `bound` preemptions, counted by brute force. */
static unsigned brute(int model, uint8_t *taken, uint32_t k, unsigned used, unsigned bound)
{
    if (k >= P || (k > 0 && k >= length(model, taken))) return 1;
    uint8_t nalt, pre;
    point(model, k, taken, &nalt, &pre);
    unsigned n = 0;
    for (uint8_t a = 0; a < nalt; a++) {
        unsigned u = used + (pre && a != 0);
        if (u > bound) continue;
        taken[k] = a;
        n += brute(model, taken, k + 1, u, bound);
        taken[k] = 0;
    }
    return n;
}

static void search(int model, unsigned bound)
{
    struct st_sched_report *sr = calloc(1, sizeof(*sr));
    uint8_t *prefix = calloc(ST_SCHED_CHOICES, 1);
    assert_non_null(sr);
    assert_non_null(prefix);
    uint32_t plen = 0;
    unsigned runs = 0;
    char seen[4096][P + 1];
    for (;;) {
        run_model(model, prefix, plen, sr);
        /* the run's own path: distinct from every earlier one, within the bound */
        char path[P + 1] = {0};
        unsigned pre = 0;
        for (uint32_t k = 0; k < sr->nchoices; k++) {
            path[k] = (char)('0' + sr->choices[k].taken);
            pre += sr->choices[k].preempt && sr->choices[k].taken;
        }
        assert_true(pre <= bound);
        assert_int_equal(st_dfs_cost(sr), pre);
        for (unsigned i = 0; i < runs; i++)
            assert_string_not_equal(seen[i], path);
        assert_true(runs < 4096);
        memcpy(seen[runs++], path, sizeof(path));
        if (!st_dfs_next(sr, bound, prefix, &plen)) break;
    }
    uint8_t taken[P] = {0};
    assert_int_equal(runs, brute(model, taken, 0, 0, bound));
    free(sr);
    free(prefix);
}

/* --shard I/N: each shard's own schedules, over all shards, are the whole tree, each once. */
static unsigned sharded(int model, unsigned bound, uint32_t nshards)
{
    struct st_sched_report *sr = calloc(1, sizeof(*sr));
    uint8_t *prefix = calloc(ST_SCHED_CHOICES, 1);
    assert_non_null(sr);
    assert_non_null(prefix);
    static char owned[4096][P + 1];
    unsigned nowned = 0, runs = 0;
    for (uint32_t shard = 0; shard < nshards; shard++) {
        uint32_t plen = 0;
        do {
            run_model(model, prefix, plen, sr);
            runs++;
            if (!st_dfs_run_owner(sr, shard, nshards)) continue;
            char path[P + 1] = {0};
            for (uint32_t k = 0; k < sr->nchoices; k++)
                path[k] = (char)('0' + sr->choices[k].taken);
            for (unsigned i = 0; i < nowned; i++)
                assert_string_not_equal(owned[i], path); /* not in two shards, not twice */
            assert_true(nowned < 4096);
            memcpy(owned[nowned++], path, sizeof(path));
        } while (st_dfs_advance(sr, bound, shard, nshards, prefix, &plen));
    }
    uint8_t taken[P] = {0};
    assert_int_equal(nowned, brute(model, taken, 0, 0, bound));
    assert_true(runs <= nshards * nowned); /* never worse than each shard running it all */
    free(sr);
    free(prefix);
    return runs;
}

static void test_shards_split_the_tree(void **state)
{
    (void)state;
    for (uint32_t n = 1; n <= 5; n++)
        for (unsigned b = 0; b <= 3; b++) {
            sharded(0, b, n);
            sharded(1, b, n);
        }
    /* the whole tree of model 0 (64 schedules) in 2 shards: each skips the other's subtrees,
     * and only the few runs above the shard depth are made by both */
    unsigned runs = sharded(0, P, 2);
    print_message("2 shards of 64 schedules: %u runs\n", runs);
    assert_true(runs < 64 + 64 / 4);
}

static void test_fixed_tree(void **state)
{
    (void)state;
    for (unsigned b = 0; b <= P; b++)
        search(0, b);
    /* the familiar numbers: sum of C(6, j), j <= B */
    uint8_t taken[P] = {0};
    assert_int_equal(brute(0, taken, 0, 0, 0), 1);
    assert_int_equal(brute(0, taken, 0, 0, 1), 7);
    assert_int_equal(brute(0, taken, 0, 0, 2), 22);
}

static void test_tree_shaped_by_choices(void **state)
{
    (void)state;
    for (unsigned b = 0; b <= 3; b++)
        search(1, b);
}

static void test_exhausted_when_nothing_is_left(void **state)
{
    (void)state;
    struct st_sched_report *sr = calloc(1, sizeof(*sr));
    uint8_t prefix[4];
    uint32_t plen = 0;
    assert_non_null(sr);
    /* no branching point at all: one schedule is the whole tree */
    assert_int_equal(st_dfs_next(sr, 2, prefix, &plen), 0);
    /* bound 0 and only preempting points: the first schedule is the only one */
    sr->nchoices = 2;
    sr->choices[0] = (struct st_sched_choice){.taken = 0, .nalt = 2, .preempt = 1};
    sr->choices[1] = (struct st_sched_choice){.taken = 0, .nalt = 2, .preempt = 1};
    assert_int_equal(st_dfs_next(sr, 0, prefix, &plen), 0);
    /* a free choice is taken whatever the bound, and costs nothing */
    sr->choices[1].preempt = 0;
    sr->choices[0].taken = 1;
    sr->choices[1].taken = 1;
    assert_int_equal(st_dfs_cost(sr), 1);
    sr->choices[0].taken = 0;
    sr->choices[1].taken = 0;
    assert_int_equal(st_dfs_next(sr, 0, prefix, &plen), 1);
    assert_int_equal(plen, 2);
    assert_int_equal(prefix[0], 0);
    assert_int_equal(prefix[1], 1);
    free(sr);
}

static void test_choices_text(void **state)
{
    (void)state;
    uint8_t in[40] = {0}, out[ST_SCHED_CHOICES];
    in[3] = 1, in[17] = 2, in[39] = 1;
    char buf[256], err[160];
    assert_int_equal(st_dfs_path(in, 40, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "3:1,17:2,39:1");
    uint32_t n = 0;
    assert_int_equal(st_dfs_parse(buf, out, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 40);
    assert_memory_equal(in, out, 40);
    /* all zeros, and a prefix of zeros only: "none", which reads back as no prefix */
    memset(in, 0, sizeof(in));
    assert_int_equal(st_dfs_path(in, 40, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "none");
    assert_int_equal(st_dfs_parse("none", out, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    /* too long for the buffer: said, not cut silently */
    in[3] = 1, in[17] = 2;
    assert_int_equal(st_dfs_path(in, 40, buf, 6), -1);
    /* what is refused, with the reason */
    static const char *const bad[] = {"x",       "3",       "3:",     "3:0",  "3:256",
                                      "5:1,2:1", "1:1,1:2", "8192:1", "-1:1", "3:1;4:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(st_dfs_parse(bad[i], out, &n, err, sizeof(err)), -1);
        assert_non_null(strstr(err, bad[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_tree),
        cmocka_unit_test(test_tree_shaped_by_choices),
        cmocka_unit_test(test_exhausted_when_nothing_is_left),
        cmocka_unit_test(test_shards_split_the_tree),
        cmocka_unit_test(test_choices_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

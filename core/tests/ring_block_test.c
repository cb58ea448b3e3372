/* ring_block_test.c - the shared-memory ring: timeouts, close and peer death.
 *
 * Verifies: a send that times out half-way leaves nothing visible and a send that published
 * nothing leaves no sequence gap; timeouts neither return early nor overshoot, and timeout 0
 * never waits; close gives -EPIPE after the last message (-IPCP_E_TRUNCATED in the middle of a
 * chunked one); a waker leaves the sleeper's flag alone; a SIGKILLed peer is noticed within
 * 100 ms by the side blocked on it, and no object or fd is left behind. Forced futex sleeps
 * woken promptly: ring_wake_test. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "ipcproof/err.h"
#include "ipcproof/ring.h"
#include "ipcproof/shm.h"
#include "ring_tu.h"
#include "testutil.h"

/* ---- delivery semantics ------------------------------------------------------------------- */

static void test_send_timeout_midway_is_invisible(void **s)
{
    (void)s;
    const size_t cap = 1024;
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 1 << 16};
    struct rtu_pair pr;
    uint8_t big[10 * 1024], buf[10 * 1024];
    tu_fill(big, sizeof(big), 1);

    for (int api = 0; api < 2; api++) {
        rtu_pair_open(&pr, &cfg, 0);
        /* the big message fills the ring, then times out: abandoned */
        int64_t t0 = ipcp__now_ns();
        assert_int_equal(ipcp_ring_send(&pr.p, big, sizeof(big), 30), -ETIMEDOUT);
        assert_true(ipcp__now_ns() - t0 >= 29000000);
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
        rtu_pair_close(&pr);
    }

    /* a send that published nothing uses no sequence number: no gap afterwards */
    rtu_pair_open(&pr, &cfg, 0);
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
    assert_true(rtu_rd32(pr.mem, IPCP_RING_OFF_TAIL) % cap != 0);
    assert_int_equal(ipcp_ring_send(&pr.p, big, cap - RHDR, 0), -EAGAIN);
    assert_int_equal(rtu_rd32(pr.mem, IPCP_RING_OFF_TAIL) % cap, 0);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -EAGAIN); /* takes the pad */
    assert_int_equal(ipcp_ring_send(&pr.p, big, cap - RHDR, 0), 0);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), (ssize_t)(cap - RHDR));
    assert_true(tu_check(buf, cap - RHDR, 1));
    assert_int_equal(ipcp_ring_abandoned(&pr.c), 0);
    rtu_pair_close(&pr);
}

static void test_close_gives_epipe(void **s)
{
    (void)s;
    struct ipcp_ring_cfg cfg = {.capacity = 1024, .max_msg = 1 << 16};
    struct rtu_pair pr;
    char buf[4096];
    /* producer closes: the messages before the close come first */
    rtu_pair_open(&pr, &cfg, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ipcp_ring_send(&pr.p, "abc", 3, 0), 0);
    ipcp_ring_close(&pr.p);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 1000), 3);
    /* a try (timeout 0) says so too, rather than -EAGAIN for ever */
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -EPIPE);
    const void *pp;
    assert_int_equal(ipcp_ring_peek(&pr.c, &pp, 0), -EPIPE);
    int64_t t0 = ipcp__now_ns();
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 5000), -EPIPE);
    assert_true(ipcp__now_ns() - t0 < 1000000000);
    rtu_pair_close(&pr);

    /* closed in the middle of a chunked message */
    rtu_pair_open(&pr, &cfg, 0);
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 3000, 20), -ETIMEDOUT);
    ipcp_ring_close(&pr.p);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -IPCP_E_TRUNCATED);
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 5000), -IPCP_E_TRUNCATED);
    rtu_pair_close(&pr);

    /* consumer closes: the producer learns at once */
    rtu_pair_open(&pr, &cfg, 0);
    ipcp_ring_close(&pr.c);
    assert_int_equal(ipcp_ring_send(&pr.p, "abc", 3, 0), -EPIPE);
    void *w;
    assert_int_equal(ipcp_ring_reserve(&pr.p, 3, &w, 0), -EPIPE);
    rtu_pair_close(&pr);
}

static void test_timeouts(void **s)
{
    (void)s;
    struct ipcp_ring_cfg cfg = {.capacity = 1024};
    struct rtu_pair pr;
    rtu_pair_open(&pr, &cfg, 0);
    char buf[1024] = {0};
    int64_t t0 = ipcp__now_ns();
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), -EAGAIN);
    const void *ptr;
    assert_int_equal(ipcp_ring_peek(&pr.c, &ptr, 0), -EAGAIN);
    assert_true(ipcp__now_ns() - t0 < 50000000);
    t0 = ipcp__now_ns();
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 60), -ETIMEDOUT);
    int64_t dt = ipcp__now_ns() - t0;
    assert_true(dt >= 59000000 && dt < 1000000000);

    while (ipcp_ring_send(&pr.p, buf, 200, 0) == 0)
        ;
    void *w;
    assert_int_equal(ipcp_ring_reserve(&pr.p, 200, &w, 0), -EAGAIN);
    t0 = ipcp__now_ns();
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 200, 60), -ETIMEDOUT);
    dt = ipcp__now_ns() - t0;
    assert_true(dt >= 59000000 && dt < 1000000000);
    assert_int_equal(ipcp_ring_reserve(&pr.p, 200, &w, 30), -ETIMEDOUT);
    rtu_pair_close(&pr);
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
    struct rtu_pair pr;
    rtu_pair_open(&pr, &cfg, 0);
    char buf[64] = {0};
    rtu_wr32(pr.mem, IPCP_RING_OFF_TAIL + 4, 1); /* the consumer announced a sleep */
    assert_int_equal(ipcp_ring_send(&pr.p, buf, 10, 0), 0);
    assert_int_equal(rtu_rd32(pr.mem, IPCP_RING_OFF_TAIL + 4), 1);
    rtu_wr32(pr.mem, IPCP_RING_OFF_HEAD + 4, 1); /* the producer announced a sleep */
    assert_int_equal(ipcp_ring_recv(&pr.c, buf, sizeof(buf), 0), 10);
    assert_int_equal(rtu_rd32(pr.mem, IPCP_RING_OFF_HEAD + 4), 1);
    rtu_pair_close(&pr);
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
    int64_t t = ipcp__now_ns();
    if (write(a->ts_wr, &t, sizeof(t)) != (ssize_t)sizeof(t)) return 5;
    raise(SIGKILL);
    return 6;
}

static void peer_killed_case(int blocked_role)
{
    int fds = tu_count_fds();
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
    int64_t t_seen = ipcp__now_ns();
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
    assert_int_equal(rtu_own_objects(), 0);
    assert_int_equal(tu_count_fds(), fds);
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
        cmocka_unit_test(test_send_timeout_midway_is_invisible),
        cmocka_unit_test(test_close_gives_epipe),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_waker_leaves_sleep_flag_alone),
        cmocka_unit_test(test_peer_killed_while_consumer_blocked),
        cmocka_unit_test(test_peer_killed_while_producer_blocked),
    };
    if (getenv("IPCP_TEST_FILTER") != NULL) cmocka_set_test_filter(getenv("IPCP_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

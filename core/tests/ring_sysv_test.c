/* ring_sysv_test.c - the ring over a System V segment (ipcp_ring_create_sysv / attach_sysv).
 *
 * Verifies: records wrap around from every start offset and messages of the sizes around the
 * capacity arrive whole over a segment; 100 000 messages of random sizes with checksums cross
 * from a process that attached by id; the segment is marked removed (IPC_RMID) as soon as both
 * sides are attached, so that it is gone from /proc/sysvipc/shm (ipcs -m) after both sides are
 * SIGKILLed; shm_nattch shows the peer arrive and leave; a SIGKILLed peer is noticed by the side
 * blocked on it; attach refuses a bad id, a wrong size and another user's segment; the kernel
 * limits shmmax, shmmni and shmall (lowered in a private IPC namespace) give their own errors at
 * the exact boundary; the registry line of an unpaired segment lets clean remove it after a
 * crash, that of a paired one (marked removed, still in use) is left alone. Every test checks that
 * no segment of this process and no fd is left behind.
 *
 * IPCP_TEST_SCALE=<percent> scales the message count (default 100). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/registry.h"
#include "ipcproof/ring.h"
#include "testutil.h"

#define HDR  IPCP_RING_HDR_SIZE
#define RHDR IPCP_RING_REC_HDR

static char regdir[128];

/* Is segment id listed in /proc/sysvipc/shm (what ipcs -m shows)? */
static int listed(int id)
{
    FILE *f = fopen("/proc/sysvipc/shm", "re");
    assert_non_null(f);
    char line[512];
    int found = 0;
    if (fgets(line, sizeof(line), f) == NULL) line[0] = '\0'; /* the heading */
    while (fgets(line, sizeof(line), f) != NULL) {
        long key, shmid;
        if (sscanf(line, "%ld %ld", &key, &shmid) == 2 && shmid == id) found = 1;
    }
    fclose(f);
    return found;
}

/* Segments whose creator is this process. */
/* Segments that name this process as their creator but were there before it started: a dead
 * process with the same pid left them (pid reuse), they are not this test's. */
static long stale_ids[64];
static int nstale;

static int stale(long shmid)
{
    for (int i = 0; i < nstale; i++)
        if (stale_ids[i] == shmid) return 1;
    return 0;
}

/* Calls fn(shmid) for every segment whose creator pid is this process's; the count. */
static int each_own_segment(void (*fn)(long shmid))
{
    FILE *f = fopen("/proc/sysvipc/shm", "re");
    assert_non_null(f);
    char line[512];
    int n = 0;
    if (fgets(line, sizeof(line), f) == NULL) line[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL) {
        long key, shmid, perms, size, cpid;
        if (sscanf(line, "%ld %ld %lo %ld %ld", &key, &shmid, &perms, &size, &cpid) == 5 &&
            cpid == (long)getpid() && !stale(shmid)) {
            n++;
            if (fn != NULL) fn(shmid);
        }
    }
    fclose(f);
    return n;
}

static void note_stale(long shmid)
{
    if (nstale < (int)IPCP_ARRAY_SIZE(stale_ids)) stale_ids[nstale++] = shmid;
}

/* Segments this test process created and left. */
static int own_segments(void)
{
    return each_own_segment(NULL);
}

static int marked_removed(int id)
{
    struct shmid_ds ds;
    return shmctl(id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_DEST) != 0;
}

/* A holder (the creator, no side) and producer and consumer attached by id, in this process;
 * indices start at `start`. */
static void pair_open(struct ipcp_ring *h, struct ipcp_ring *p, struct ipcp_ring *c,
                      const struct ipcp_ring_cfg *cfg, uint32_t start)
{
    assert_int_equal(ipcp_ring_create_sysv(h, IPC_PRIVATE, IPCP_RING_NONE, cfg), 0);
    size_t size;
    uint8_t *mem = ipcp_ring_mem(h, &size);
    memcpy(mem + IPCP_RING_OFF_TAIL, &start, 4);
    memcpy(mem + IPCP_RING_OFF_HEAD, &start, 4);
    int id = ipcp_ring_shmid(h);
    assert_int_equal(ipcp_ring_attach_sysv(p, id, IPCP_RING_PRODUCER, cfg), 0);
    assert_false(marked_removed(id));
    assert_int_equal(ipcp_ring_attach_sysv(c, id, IPCP_RING_CONSUMER, cfg), 0);
    assert_true(marked_removed(id)); /* both sides attached */
    assert_int_equal(ipcp_ring_nattch(h), 3);
}

/* ---- wrap-around and sizes ------------------------------------------------------------------ */

static void test_wraparound_and_sizes(void **s)
{
    (void)s;
    int fds = tu_count_fds();
    const size_t cap = 256;
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 16 * cap};
    /* at most half the ring: with timeout 0 a record must fit beside the padding */
    const size_t lens[] = {0, 1, 15, 16, 17, 33, 100, cap / 2 - RHDR - 1, cap / 2 - RHDR};
    uint8_t msg[16 * 256], buf[16 * 256];
    const uint32_t bases[] = {0, 0xffffff00u};
    for (size_t b = 0; b < IPCP_ARRAY_SIZE(bases); b++) {
        struct ipcp_ring h, p, c;
        pair_open(&h, &p, &c, &cfg, bases[b]);
        uint64_t k = 0;
        for (uint32_t off = 0; off < cap; off += IPCP_RING_ALIGN) {
            /* move the indices by one alignment unit, then every length from there */
            assert_int_equal(ipcp_ring_send(&p, msg, 0, 0), 0);
            assert_int_equal(ipcp_ring_recv(&c, buf, sizeof(buf), 0), 0);
            for (size_t i = 0; i < IPCP_ARRAY_SIZE(lens); i++, k++) {
                tu_fill(msg, lens[i], k);
                assert_int_equal(ipcp_ring_send(&p, msg, lens[i], 0), 0);
                assert_int_equal(ipcp_ring_recv(&c, buf, sizeof(buf), 0), (ssize_t)lens[i]);
                assert_true(tu_check(buf, lens[i], k));
            }
        }
        /* past the capacity: chunked, the other side makes room */
        const size_t big[] = {cap - RHDR + 1, cap, cap + 1, 10 * cap};
        for (size_t i = 0; i < IPCP_ARRAY_SIZE(big); i++, k++) {
            tu_fill(msg, big[i], k);
            assert_int_equal(ipcp_ring_send(&p, msg, big[i], 0), -EAGAIN); /* never whole */
        }
        assert_true(ipcp_ring_valid(&p) && ipcp_ring_valid(&c));
        int id = ipcp_ring_shmid(&h);
        ipcp_ring_close(&c);
        ipcp_ring_close(&p);
        ipcp_ring_close(&h);
        assert_false(listed(id));
    }
    assert_int_equal(own_segments(), 0);
    assert_int_equal(tu_count_fds(), fds);
}

/* ---- across processes ------------------------------------------------------------------------ */

static size_t pick_len(uint64_t *st, size_t cap)
{
    uint64_t r = splitmix64_next(st);
    switch (r % 8) {
    case 0:
        return (size_t)(r >> 8) % 16;
    case 1:
        return cap - RHDR - 8 + (size_t)(r >> 8) % 16; /* around one record's limit */
    case 2:
        return cap + (size_t)(r >> 8) % (2 * cap); /* chunked */
    default:
        return (size_t)(r >> 8) % (cap / 2);
    }
}

struct xchg {
    int shmid;
    int n;
    uint64_t seed;
    size_t cap;
};

static int xchg_producer(void *arg)
{
    const struct xchg *x = arg;
    struct ipcp_ring_cfg cfg = {.capacity = x->cap, .max_msg = 4 * x->cap};
    struct ipcp_ring p;
    if (ipcp_ring_attach_sysv(&p, x->shmid, IPCP_RING_PRODUCER, &cfg) < 0) return 10;
    uint8_t *msg = malloc(4 * x->cap);
    uint64_t st = x->seed;
    int rc = 0;
    for (int i = 0; i < x->n && rc == 0; i++) {
        size_t len = pick_len(&st, x->cap);
        tu_fill(msg, len, (uint64_t)i);
        if (ipcp_ring_send(&p, msg, len, 10000) < 0) rc = 11;
    }
    free(msg);
    ipcp_ring_close(&p);
    return rc;
}

static void test_exchange_processes(void **s)
{
    (void)s;
    int fds = tu_count_fds();
    struct xchg x = {.n = tu_scaled(100000), .seed = 99, .cap = 4096};
    struct ipcp_ring_cfg cfg = {.capacity = x.cap, .max_msg = 4 * x.cap};
    struct ipcp_ring c;
    assert_int_equal(ipcp_ring_create_sysv(&c, IPC_PRIVATE, IPCP_RING_CONSUMER, &cfg), 0);
    x.shmid = ipcp_ring_shmid(&c);
    assert_true(x.shmid >= 0);
    assert_int_equal(ipcp_ring_nattch(&c), 1);
    pid_t pid = tu_spawn(xchg_producer, &x);
    uint8_t *buf = malloc(4 * x.cap);
    uint64_t st = x.seed;
    for (int i = 0; i < x.n; i++) {
        size_t len = pick_len(&st, x.cap);
        ssize_t n = ipcp_ring_recv(&c, buf, 4 * x.cap, 10000);
        if (n != (ssize_t)len || !tu_check(buf, len, (uint64_t)i))
            fail_msg("msg %d: got %zd (%s), want %zu", i, n, n < 0 ? ipcp_errname((int)n) : "",
                     len);
        if (i == 0) {
            /* the producer's attach paired the sides: removed, but alive while attached */
            assert_true(marked_removed(x.shmid));
        }
    }
    free(buf);
    tu_wait_ok(pid, 60000);
    char b;
    assert_int_equal(ipcp_ring_recv(&c, &b, 1, 1000), -EPIPE);
    assert_int_equal(ipcp_ring_nattch(&c), 1); /* the producer detached */
    ipcp_ring_close(&c);
    assert_false(listed(x.shmid));
    assert_int_equal(own_segments(), 0);
    assert_int_equal(tu_count_fds(), fds);
}

/* ---- crashes ----------------------------------------------------------------------------------
 */

struct side_arg {
    int role;
    int shmid;  /* to attach; -1: create */
    int out_wr; /* the creator writes the id here; the attacher writes "a" once attached */
    int idle;   /* 1: after attaching, do nothing (a consumer that leaves the ring full) */
};

static int side(void *arg)
{
    const struct side_arg *a = arg;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return 6;
    struct ipcp_ring_cfg cfg = {.capacity = 1024};
    struct ipcp_ring r;
    if (a->shmid < 0) {
        if (ipcp_ring_create_sysv(&r, IPC_PRIVATE, a->role, &cfg) < 0) return 1;
        int id = ipcp_ring_shmid(&r);
        if (write(a->out_wr, &id, sizeof(id)) != (ssize_t)sizeof(id)) return 2;
    } else {
        if (ipcp_ring_attach_sysv(&r, a->shmid, a->role, &cfg) < 0) return 3;
        if (write(a->out_wr, "a", 1) != 1) return 4;
    }
    char buf[1024];
    int rc = a->idle ? -1 : 0;
    while (rc >= 0) /* until SIGKILLed: blocked on an empty (consumer) or full (producer) ring */
        rc = a->role == IPCP_RING_CONSUMER ? (int)ipcp_ring_recv(&r, buf, sizeof(buf), -1)
                                           : ipcp_ring_send(&r, buf, 100, -1);
    /* The peer died or closed: stay attached (and never spin) until SIGKILLed, or until the
     * test process dies (PR_SET_PDEATHSIG). */
    for (;;)
        pause();
}

static void test_both_sides_killed_leave_nothing(void **s)
{
    (void)s;
    int fds = tu_count_fds();
    int p1[2], p2[2];
    assert_int_equal(pipe2(p1, O_CLOEXEC), 0);
    assert_int_equal(pipe2(p2, O_CLOEXEC), 0);
    struct side_arg ca = {.role = IPCP_RING_PRODUCER, .shmid = -1, .out_wr = p1[1]};
    pid_t creator = tu_spawn(side, &ca);
    int id;
    assert_int_equal(read(p1[0], &id, sizeof(id)), (ssize_t)sizeof(id));
    assert_true(listed(id));
    assert_false(marked_removed(id));
    struct side_arg aa = {.role = IPCP_RING_CONSUMER, .shmid = id, .out_wr = p2[1]};
    pid_t attacher = tu_spawn(side, &aa);
    char c;
    assert_int_equal(read(p2[0], &c, 1), 1);
    assert_int_equal(c, 'a');
    assert_true(marked_removed(id));
    struct shmid_ds ds;
    assert_int_equal(shmctl(id, IPC_STAT, &ds), 0);
    assert_int_equal(ds.shm_nattch, 2); /* siblings: the attacher inherited nothing */
    /* the creator dies first: its registry line names a segment marked removed, which the
     * attacher still uses: clean counts it as gone and leaves it alone */
    kill(creator, SIGKILL);
    int st = tu_wait(creator, 10000);
    assert_true(st != -1 && WIFSIGNALED(st));
    struct ipcp_registry_summary sum;
    assert_int_equal(ipcp_registry_clean(IPCP_REG_CLEAN_REGISTERED_ONLY, NULL, NULL, &sum), 0);
    assert_int_equal(sum.count[IPCP_REG_GONE], 1);
    assert_int_equal(sum.count[IPCP_REG_REMOVED], 0);
    assert_true(listed(id));
    kill(attacher, SIGKILL);
    st = tu_wait(attacher, 10000);
    assert_true(st != -1 && WIFSIGNALED(st));
    assert_false(listed(id)); /* ipcs -m: gone with the last detach */
    assert_true(shmctl(id, IPC_STAT, &ds) < 0);
    for (int i = 0; i < 2; i++) {
        close(p1[i]);
        close(p2[i]);
    }
    assert_int_equal(tu_count_fds(), fds);
}

/* The creator dies before any peer attached: the segment stays, and clean removes it. */
static void test_unpaired_crash_cleaned(void **s)
{
    (void)s;
    int p1[2];
    assert_int_equal(pipe2(p1, O_CLOEXEC), 0);
    struct side_arg ca = {.role = IPCP_RING_CONSUMER, .shmid = -1, .out_wr = p1[1]};
    pid_t creator = tu_spawn(side, &ca);
    int id;
    assert_int_equal(read(p1[0], &id, sizeof(id)), (ssize_t)sizeof(id));
    kill(creator, SIGKILL);
    int st = tu_wait(creator, 10000);
    assert_true(st != -1 && WIFSIGNALED(st));
    assert_true(listed(id));
    struct ipcp_registry_summary sum;
    assert_int_equal(ipcp_registry_clean(IPCP_REG_CLEAN_REGISTERED_ONLY, NULL, NULL, &sum), 0);
    assert_int_equal(sum.count[IPCP_REG_REMOVED], 1);
    assert_false(listed(id));
    close(p1[0]);
    close(p1[1]);
}

static void killed_peer_case(int blocked_role)
{
    int fds = tu_count_fds();
    int p2[2];
    assert_int_equal(pipe2(p2, O_CLOEXEC), 0);
    struct ipcp_ring_cfg cfg = {.capacity = 1024};
    struct ipcp_ring r;
    assert_int_equal(ipcp_ring_create_sysv(&r, IPC_PRIVATE, blocked_role, &cfg), 0);
    int id = ipcp_ring_shmid(&r);
    assert_int_equal(ipcp_ring_nattch(&r), 1);
    struct side_arg aa = {.role = blocked_role == IPCP_RING_CONSUMER ? IPCP_RING_PRODUCER
                                                                     : IPCP_RING_CONSUMER,
                          .shmid = id,
                          .out_wr = p2[1],
                          .idle = blocked_role == IPCP_RING_PRODUCER};
    pid_t peer = tu_spawn(side, &aa);
    char c;
    assert_int_equal(read(p2[0], &c, 1), 1);
    /* the peer, seen through shm_nattch: its inherited mapping (fork) and its own attach */
    assert_int_equal(ipcp_ring_nattch(&r), 3);
    char buf[1024];
    if (blocked_role == IPCP_RING_PRODUCER) /* the peer consumes nothing: fill the ring */
        while (ipcp_ring_send(&r, buf, 100, 0) == 0)
            ;
    else /* the peer fills the ring: drain a message so that it is surely running */
        assert_true(ipcp_ring_recv(&r, buf, sizeof(buf), 10000) >= 0);
    kill(peer, SIGKILL);
    int st = tu_wait(peer, 10000);
    assert_true(st != -1 && WIFSIGNALED(st));
    assert_int_equal(ipcp_ring_nattch(&r), 1); /* the peer is gone */
    int rc;
    if (blocked_role == IPCP_RING_CONSUMER) {
        while ((rc = (int)ipcp_ring_recv(&r, buf, sizeof(buf), 10000)) >= 0)
            ; /* what it published before dying, then the news */
    } else {
        rc = ipcp_ring_send(&r, buf, 100, 10000);
    }
    if (rc != -IPCP_E_PEERDEAD) fail_msg("blocked side got %s", ipcp_errname(rc));
    ipcp_ring_close(&r);
    assert_false(listed(id));
    close(p2[0]);
    close(p2[1]);
    assert_int_equal(tu_count_fds(), fds);
}

static void test_peer_killed_consumer_blocked(void **s)
{
    (void)s;
    killed_peer_case(IPCP_RING_CONSUMER);
}

static void test_peer_killed_producer_blocked(void **s)
{
    (void)s;
    killed_peer_case(IPCP_RING_PRODUCER);
}

/* ---- attach checks ----------------------------------------------------------------------------
 */

static void test_attach_refuses(void **s)
{
    (void)s;
    int fds = tu_count_fds();
    struct ipcp_ring r;
    assert_int_equal(ipcp_ring_attach_sysv(&r, -1, IPCP_RING_CONSUMER, NULL), -EINVAL);
    /* a segment too small for the smallest ring, and one that is no ring */
    int small = shmget(IPC_PRIVATE, HDR + IPCP_RING_MIN_CAP - 1, IPC_CREAT | 0600);
    assert_true(small >= 0);
    assert_int_equal(ipcp_ring_attach_sysv(&r, small, IPCP_RING_CONSUMER, NULL), -IPCP_E_LAYOUT);
    shmctl(small, IPC_RMID, NULL);
    assert_int_equal(ipcp_ring_attach_sysv(&r, small, IPCP_RING_CONSUMER, NULL), -EINVAL);
    int blank = shmget(IPC_PRIVATE, HDR + 1024, IPC_CREAT | 0600);
    assert_true(blank >= 0);
    assert_int_equal(ipcp_ring_attach_sysv(&r, blank, IPCP_RING_CONSUMER, NULL), -IPCP_E_BADMAGIC);
    assert_int_equal(ipcp_shm_nattch(&r.shm), -EINVAL); /* nothing held after a failure */
    struct shmid_ds ds;
    assert_int_equal(shmctl(blank, IPC_STAT, &ds), 0);
    assert_int_equal(ds.shm_nattch, 0); /* the failed attach detached again */
    /* another user's segment (needs the right to hand it to another uid) */
    ds.shm_perm.uid = 65534;
    ds.shm_perm.mode = 0666;
    if (shmctl(blank, IPC_SET, &ds) == 0)
        assert_int_equal(ipcp_ring_attach_sysv(&r, blank, IPCP_RING_CONSUMER, NULL), -EPERM);
    else
        print_message("not privileged: the foreign-owner refusal is not checked\n");
    shmctl(blank, IPC_RMID, NULL);
    /* a key from ftok: a second creation on it is refused, the first is unharmed */
    char path[] = "/tmp/ipcp-ringsysv-XXXXXX";
    int tfd = mkstemp(path);
    assert_true(tfd >= 0);
    key_t key = ftok(path, 'R');
    assert_true(key != -1);
    struct ipcp_ring a, b;
    assert_int_equal(ipcp_ring_create_sysv(&a, key, IPCP_RING_PRODUCER, NULL), 0);
    assert_int_equal(ipcp_ring_create_sysv(&b, key, IPCP_RING_CONSUMER, NULL), -EEXIST);
    int id = shmget(key, 0, 0); /* how the peer finds it */
    assert_int_equal(id, ipcp_ring_shmid(&a));
    assert_int_equal(ipcp_ring_attach_sysv(&b, id, IPCP_RING_CONSUMER, NULL), 0);
    assert_true(shmget(key, 0, 0) < 0); /* removed: the key is free again */
    assert_int_equal(ipcp_ring_send(&a, "hi", 2, 0), 0);
    char buf[4];
    assert_int_equal(ipcp_ring_recv(&b, buf, sizeof(buf), 0), 2);
    ipcp_ring_close(&b);
    ipcp_ring_close(&a);
    close(tfd);
    unlink(path);
    assert_int_equal(own_segments(), 0);
    assert_int_equal(tu_count_fds(), fds);
}

/* ---- kernel limits, in a private IPC namespace ------------------------------------------------
 */

static int write_proc(const char *path, unsigned long long v)
{
    FILE *f = fopen(path, "we");
    if (f == NULL) return -1;
    int ok = fprintf(f, "%llu\n", v) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A private IPC namespace whose limits this process may set: directly with CAP_SYS_ADMIN, else
 * inside a new user namespace (unprivileged). */
static int private_ipc_ns(void)
{
    if (unshare(CLONE_NEWIPC) == 0) return 0;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWIPC) != 0) return -1;
    char map[64];
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
    FILE *f = fopen("/proc/self/setgroups", "we");
    if (f != NULL) {
        fputs("deny", f);
        fclose(f);
    }
    f = fopen("/proc/self/uid_map", "we");
    if (f == NULL || fputs(map, f) < 0 || fclose(f) != 0) return -1;
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
    f = fopen("/proc/self/gid_map", "we");
    if (f == NULL || fputs(map, f) < 0 || fclose(f) != 0) return -1;
    return 0;
}

static int limits_child(void *arg)
{
    (void)arg;
    if (private_ipc_ns() != 0) return 77;
    struct ipcp_ring_cfg cfg = {.capacity = 4096};
    const size_t need = HDR + 4096;
    struct ipcp_ring r, r2;
    long page = sysconf(_SC_PAGESIZE);
    /* shmmax: one byte short refused, exactly enough accepted */
    if (write_proc("/proc/sys/kernel/shmmax", need - 1) != 0) return 70;
    if (ipcp_ring_create_sysv(&r, IPC_PRIVATE, IPCP_RING_PRODUCER, &cfg) != -IPCP_E_SHMMAX)
        return 1;
    if (write_proc("/proc/sys/kernel/shmmax", need) != 0) return 71;
    if (ipcp_ring_create_sysv(&r, IPC_PRIVATE, IPCP_RING_PRODUCER, &cfg) != 0) return 2;
    /* shmmni: the second segment is one too many */
    if (write_proc("/proc/sys/kernel/shmmni", 1) != 0) return 72;
    if (ipcp_ring_create_sysv(&r2, IPC_PRIVATE, IPCP_RING_PRODUCER, &cfg) != -IPCP_E_SHMMNI)
        return 3;
    ipcp_ring_close(&r);
    if (ipcp_ring_create_sysv(&r2, IPC_PRIVATE, IPCP_RING_PRODUCER, &cfg) != 0) return 4;
    ipcp_ring_close(&r2);
    /* shmall: pages of all segments together; one page short, then exactly enough */
    unsigned long long pages = (need + (size_t)page - 1) / (size_t)page;
    if (write_proc("/proc/sys/kernel/shmmni", 4096) != 0) return 73;
    if (write_proc("/proc/sys/kernel/shmall", pages - 1) != 0) return 74;
    if (ipcp_ring_create_sysv(&r, IPC_PRIVATE, IPCP_RING_PRODUCER, &cfg) != -IPCP_E_SHMALL)
        return 5;
    if (write_proc("/proc/sys/kernel/shmall", pages) != 0) return 75;
    if (ipcp_ring_create_sysv(&r, IPC_PRIVATE, IPCP_RING_PRODUCER, &cfg) != 0) return 6;
    ipcp_ring_close(&r);
    /* nothing made before a refusal is left behind */
    FILE *f = fopen("/proc/sysvipc/shm", "re");
    char line[512];
    int lines = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        lines++;
    if (f != NULL) fclose(f);
    return lines == 1 ? 0 : 7;
}

static void test_kernel_limits(void **s)
{
    (void)s;
    /* the pure check, every limit at its boundary */
    struct ipcp_shm_sysv_limits l = {
        .shmmax = 8192, .shmall = 4, .shmmni = 3, .used_pages = 2, .used_ids = 2, .page = 4096};
    assert_int_equal(ipcp_shm_sysv_check(&l, 0), -EINVAL);
    assert_int_equal(ipcp_shm_sysv_check(&l, 8192), 0);
    assert_int_equal(ipcp_shm_sysv_check(&l, 8193), -IPCP_E_SHMMAX);
    l.used_pages = 3;
    assert_int_equal(ipcp_shm_sysv_check(&l, 4096), 0);
    assert_int_equal(ipcp_shm_sysv_check(&l, 4097), -IPCP_E_SHMALL);
    l.used_pages = 5; /* more in use than allowed (the limit was lowered) */
    assert_int_equal(ipcp_shm_sysv_check(&l, 1), -IPCP_E_SHMALL);
    l.used_ids = 3;
    assert_int_equal(ipcp_shm_sysv_check(&l, 1), -IPCP_E_SHMMNI);
    ipcp_shm_sysv_limits_read(&l);
    assert_true(l.shmmax > 0 && l.shmall > 0 && l.shmmni > 0 && l.page > 0);
    /* the real kernel, with its limits lowered in a namespace of our own */
    pid_t pid = tu_spawn(limits_child, NULL);
    int st = tu_wait(pid, 20000);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0)
        fail_msg("limits child: step %d%s", WEXITSTATUS(st),
                 WEXITSTATUS(st) == 77 ? " (no private IPC namespace)" : "");
    assert_string_equal(ipcp_errname(-IPCP_E_SHMMAX), "IPCP_E_SHMMAX");
    assert_non_null(strstr(ipcp_strerror(-IPCP_E_SHMALL), "shmall"));
}

static int group_setup(void **s)
{
    (void)s;
    snprintf(regdir, sizeof(regdir), "/tmp/ipcp-ringsysv-reg-XXXXXX");
    if (mkdtemp(regdir) == NULL) return -1;
    return ipcp_registry_set_dir(regdir);
}

static int group_teardown(void **s)
{
    (void)s;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", regdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    (void)argc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wraparound_and_sizes),
        cmocka_unit_test(test_attach_refuses),
        cmocka_unit_test(test_exchange_processes),
        cmocka_unit_test(test_both_sides_killed_leave_nothing),
        cmocka_unit_test(test_unpaired_crash_cleaned),
        cmocka_unit_test(test_peer_killed_consumer_blocked),
        cmocka_unit_test(test_peer_killed_producer_blocked),
        cmocka_unit_test(test_kernel_limits),
    };
    /* What pid reuse leaves: a segment whose creator had this process's pid. Made here, then
     * the same process (same pid) starts again as this test, which must not count it as its
     * own (it once failed three tests on a machine where a crashed run had left one). */
    const char *seg = getenv("IPCP_TEST_STALE_SEG");
    if (seg == NULL) {
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        if (id >= 0) {
            char v[16];
            snprintf(v, sizeof(v), "%d", id);
            setenv("IPCP_TEST_STALE_SEG", v, 1);
            execv("/proc/self/exe", argv);
            shmctl(id, IPC_RMID, NULL); /* exec failed: run without it */
        }
    }
    (void)each_own_segment(note_stale); /* before any test: not ours */
    if (seg != NULL && nstale == 0) {
        fprintf(stderr, "the stale segment %s is not listed as this process's\n", seg);
        return 1;
    }
    if (getenv("IPCP_TEST_FILTER") != NULL) cmocka_set_test_filter(getenv("IPCP_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    if (seg != NULL) shmctl(atoi(seg), IPC_RMID, NULL);
    return rc;
}

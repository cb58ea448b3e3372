/* ring_bench.c - the shared-memory ring against raw baselines measured in the same run.
 *
 * Throughput: a producer process sends messages through a 256 KiB ring to a consumer process
 * that copies each one out (recv); compared with the bandwidth of single-thread memcpy between
 * two 1 MiB buffers. Targets: >= 0.60 of memcpy for 1 MiB messages (chunked), >= 0.80 for
 * messages that fit the ring (64 KiB).
 * Latency: 64-byte ping-pong between two processes over two rings, against a raw ping-pong on
 * two cache lines of a shared mapping where each side spins on the other's counter. Target:
 * ring round trip <= 2x raw.
 *
 * Usage: ring_bench [--quick]
 * Each figure is the median of the repetitions (min and max in brackets); baseline and ring
 * runs alternate so that machine noise hits both alike. A benchmark, not a test: it prints
 * figures and exits 0 (1 only if the ring itself fails). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcproof/err.h"
#include "ipcproof/ring.h"

#define REPS_MAX 15

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct stat3 {
    double med, min, max;
};

static struct stat3 stats(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return (struct stat3){v[n / 2], v[0], v[n - 1]};
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "ring_bench: %s: %s\n", what, ipcp_strerror(rc));
    exit(1);
}

static void wait_child(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "ring_bench: child failed (status %#x)\n", st);
        exit(1);
    }
}

/* ---- throughput ------------------------------------------------------------------------------ */

static double memcpy_gbs(size_t msg, size_t total)
{
    uint8_t *src = malloc(msg), *dst = malloc(msg);
    memset(src, 0x5a, msg);
    memset(dst, 0, msg);
    size_t n = total / msg;
    for (size_t i = 0; i < 4; i++) /* warm */
        memcpy(dst, src, msg);
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        memcpy(dst, src, msg);
        __asm__ __volatile__("" : : "r"(dst) : "memory"); /* keep every copy */
    }
    double dt = now_s() - t0;
    free(src);
    free(dst);
    return (double)(n * msg) / dt / 1e9;
}

/* The consumer process: receives n messages (plus the warm-up), then says so on the pipe. */
static int consumer_run(const char *name, size_t msg, size_t n, int ack_fd)
{
    struct ipcp_ring c;
    struct ipcp_ring_cfg cfg = {.max_msg = 64u << 20};
    int rc = ipcp_ring_attach(&c, name, IPCP_RING_CONSUMER, &cfg);
    if (rc < 0) return 2;
    uint8_t *buf = malloc(msg);
    memset(buf, 0, msg);
    for (size_t i = 0; i < n; i++) {
        ssize_t got = ipcp_ring_recv(&c, buf, msg, 10000);
        if (got != (ssize_t)msg) return 3;
    }
    if (write(ack_fd, "k", 1) != 1) return 4;
    ipcp_ring_close(&c);
    free(buf);
    return 0;
}

static double ring_gbs(size_t cap, size_t msg, size_t total)
{
    struct ipcp_ring p;
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 64u << 20};
    int rc = ipcp_ring_create(&p, NULL, IPCP_RING_PRODUCER, &cfg);
    if (rc < 0) die("create", rc);
    int ack[2];
    if (pipe2(ack, O_CLOEXEC) < 0) die("pipe", -errno);
    size_t n = total / msg, warm = n / 8 + 1;
    pid_t pid = fork();
    if (pid == 0) _exit(consumer_run(ipcp_ring_name(&p), msg, warm + n, ack[1]));
    uint8_t *src = malloc(msg);
    memset(src, 0x5a, msg);
    for (size_t i = 0; i < warm; i++)
        if ((rc = ipcp_ring_send(&p, src, msg, 10000)) < 0) die("send", rc);
    double t0 = now_s();
    for (size_t i = 0; i < n; i++)
        if ((rc = ipcp_ring_send(&p, src, msg, 10000)) < 0) die("send", rc);
    char k;
    if (read(ack[0], &k, 1) != 1) die("ack", -EIO);
    double dt = now_s() - t0;
    wait_child(pid);
    close(ack[0]);
    close(ack[1]);
    ipcp_ring_close(&p);
    free(src);
    return (double)(n * msg) / dt / 1e9;
}

/* ---- latency --------------------------------------------------------------------------------- */

struct raw_lines {
    _Alignas(128) _Atomic uint64_t ping;
    _Alignas(128) _Atomic uint64_t pong;
};

static double raw_rtt_ns(size_t n)
{
    struct raw_lines *l =
        mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l == MAP_FAILED) die("mmap", -errno);
    atomic_init(&l->ping, 0);
    atomic_init(&l->pong, 0);
    size_t warm = n / 8;
    pid_t pid = fork();
    if (pid == 0) {
        for (uint64_t i = 1; i <= warm + n; i++) {
            while (atomic_load_explicit(&l->ping, memory_order_acquire) != i)
                __builtin_ia32_pause();
            atomic_store_explicit(&l->pong, i, memory_order_release);
        }
        _exit(0);
    }
    double t0 = 0;
    for (uint64_t i = 1; i <= warm + n; i++) {
        if (i == warm + 1) t0 = now_s();
        atomic_store_explicit(&l->ping, i, memory_order_release);
        while (atomic_load_explicit(&l->pong, memory_order_acquire) != i)
            __builtin_ia32_pause();
    }
    double dt = now_s() - t0;
    wait_child(pid);
    munmap(l, sizeof(*l));
    return dt / (double)n * 1e9;
}

static int ponger(const char *in, const char *out, size_t n)
{
    struct ipcp_ring a, b;
    if (ipcp_ring_attach(&a, in, IPCP_RING_CONSUMER, NULL) < 0) return 2;
    if (ipcp_ring_attach(&b, out, IPCP_RING_PRODUCER, NULL) < 0) return 3;
    uint8_t m[64];
    for (size_t i = 0; i < n; i++) {
        if (ipcp_ring_recv(&a, m, sizeof(m), 10000) != 64) return 4;
        if (ipcp_ring_send(&b, m, 64, 10000) != 0) return 5;
    }
    ipcp_ring_close(&a);
    ipcp_ring_close(&b);
    return 0;
}

static double ring_rtt_ns(size_t n)
{
    struct ipcp_ring a, b;
    struct ipcp_ring_cfg cfg = {.capacity = 4096};
    int rc;
    if ((rc = ipcp_ring_create(&a, NULL, IPCP_RING_PRODUCER, &cfg)) < 0) die("create", rc);
    if ((rc = ipcp_ring_create(&b, NULL, IPCP_RING_CONSUMER, &cfg)) < 0) die("create", rc);
    size_t warm = n / 8;
    pid_t pid = fork();
    if (pid == 0) _exit(ponger(ipcp_ring_name(&a), ipcp_ring_name(&b), warm + n));
    uint8_t m[64] = {1};
    double t0 = 0;
    for (size_t i = 0; i < warm + n; i++) {
        if (i == warm) t0 = now_s();
        if ((rc = ipcp_ring_send(&a, m, 64, 10000)) < 0) die("send", rc);
        ssize_t got = ipcp_ring_recv(&b, m, sizeof(m), 10000);
        if (got != 64) die("recv", got < 0 ? (int)got : -EBADMSG);
    }
    double dt = now_s() - t0;
    wait_child(pid);
    ipcp_ring_close(&a);
    ipcp_ring_close(&b);
    return dt / (double)n * 1e9;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int reps = quick ? 3 : 9;
    size_t total = quick ? (64u << 20) : (512u << 20);
    size_t rtts = quick ? 20000 : 200000;
    const size_t cap = 256u << 10;
    const size_t sizes[] = {1u << 20, 64u << 10};
    if (reps > REPS_MAX) reps = REPS_MAX;

    printf("ring_bench: ring %zu KiB, %d repetitions, medians [min..max]\n", cap >> 10, reps);
    double base[REPS_MAX], thr[2][REPS_MAX], ratio[2][REPS_MAX];
    for (int i = 0; i < reps; i++) {
        base[i] = memcpy_gbs(1u << 20, total);
        for (size_t s = 0; s < 2; s++) {
            thr[s][i] = ring_gbs(cap, sizes[s], total);
            ratio[s][i] = thr[s][i] / base[i];
        }
    }
    struct stat3 b = stats(base, reps);
    printf("%-32s %6.2f GB/s [%.2f..%.2f]\n", "baseline: memcpy 1 MiB -> 1 MiB", b.med, b.min,
           b.max);
    printf("%-32s %24s %20s %s\n", "throughput (2 processes)", "ring GB/s", "ring/memcpy",
           "target");
    for (size_t s = 0; s < 2; s++) {
        struct stat3 r = stats(thr[s], reps), q = stats(ratio[s], reps);
        char label[64];
        int chunked = sizes[s] + IPCP_RING_REC_HDR > cap;
        snprintf(label, sizeof(label), "%zu KiB msgs (%s)", sizes[s] >> 10,
                 chunked ? "chunked" : "fit the ring");
        printf("%-32s %6.2f GB/s [%.2f..%.2f] %5.2f [%.2f..%.2f] >= %.2f\n", label, r.med, r.min,
               r.max, q.med, q.min, q.max, chunked ? 0.60 : 0.80);
    }

    printf("%-32s %24s %24s %20s %s\n", "latency (2 processes)", "raw spin ns", "ring ns",
           "ring/raw", "target");
    double raw[REPS_MAX], ring[REPS_MAX], lat[REPS_MAX];
    for (int i = 0; i < reps; i++) {
        raw[i] = raw_rtt_ns(rtts);
        ring[i] = ring_rtt_ns(rtts);
        lat[i] = ring[i] / raw[i];
    }
    struct stat3 a = stats(raw, reps), r = stats(ring, reps), q = stats(lat, reps);
    printf("%-32s %8.0f [%.0f..%.0f] %8.0f [%.0f..%.0f] %5.2f [%.2f..%.2f] <= 2.00\n",
           "64 B round trip", a.med, a.min, a.max, r.med, r.min, r.max, q.med, q.min, q.max);
    return 0;
}

/* frame_bench.c - frames over a pipe and a unix socketpair against raw write/read of the same
 * bytes, measured in the same run, alternating so that machine noise hits both alike.
 *
 * Usage: frame_bench [--quick]
 * Prints one row per (transport, message size): raw MB/s, framed MB/s and the ratio framed/raw
 * as the median of the repetitions (with min and max). Targets: >= 0.90 for 64 KiB messages,
 * >= 0.75 for 64-byte messages. A benchmark, not a test: it prints figures and exits 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"
#include "ipcproof/xport.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int full_write(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int full_read(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int make(int sock, int fds[2])
{
    if (sock) return ipcp_xport_unix_pair(SOCK_STREAM, fds, 0);
    return ipcp_xport_pipe(fds, 1 << 20);
}

/* One timed run: a child writes count messages of size bytes, the parent reads them. */
static double run(int sock, int framed, size_t size, long count)
{
    int fds[2];
    if (make(sock, fds) < 0) return 0;
    uint8_t *buf = malloc(size);
    memset(buf, 0x5a, size);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        int rc = 0;
        if (framed) {
            struct ipcp_fdchan_cfg cfg = {.kind = IPCP_FDCHAN_STREAM};
            struct ipcp_fdchan *c;
            if (ipcp_fdchan_open(&c, -1, fds[1], &cfg) < 0) _exit(1);
            for (long i = 0; i < count && rc == 0; i++)
                rc = ipcp_fdchan_send(c, 1, buf, size, -1);
            ipcp_fdchan_close(c, -1);
        } else {
            for (long i = 0; i < count && rc == 0; i++)
                rc = full_write(fds[1], buf, size);
        }
        _exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    double t0 = now_s();
    int ok = 1;
    if (framed) {
        struct ipcp_fdchan_cfg cfg = {.kind = IPCP_FDCHAN_STREAM};
        struct ipcp_fdchan *c;
        ok = ipcp_fdchan_open(&c, fds[0], -1, &cfg) == 0;
        for (long i = 0; i < count && ok; i++) {
            const void *m;
            ok = ipcp_fdchan_recv_zc(c, NULL, &m, 10000) == (ssize_t)size;
        }
        if (c) ipcp_fdchan_close(c, 0);
    } else {
        for (long i = 0; i < count && ok; i++)
            ok = full_read(fds[0], buf, size) == 0;
    }
    double dt = now_s() - t0;
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    free(buf);
    if (!ok || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 0;
    return (double)size * (double)count / dt / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    /* Servers ignore SIGPIPE; then a pipe channel needs no per-write signal-mask guard (with the
     * default action it blocks SIGPIPE around each write: two extra syscalls per message). */
    signal(SIGPIPE, SIG_IGN);
    const int reps = 5;
    const struct {
        size_t size;
        long count;
    } cases[] = {{64, 200000}, {4096, 50000}, {65536, 8000}, {1 << 20, 500}};
    printf("%-10s %8s %12s %12s %8s %8s %8s\n", "transport", "size", "raw MB/s", "frame MB/s",
           "ratio", "min", "max");
    for (int sock = 0; sock < 2; sock++) {
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            long count = quick ? cases[k].count / 10 : cases[k].count;
            double raw[5], fr[5], ratio[5];
            for (int r = 0; r < reps; r++) { /* alternate: noise hits both sides */
                raw[r] = run(sock, 0, cases[k].size, count);
                fr[r] = run(sock, 1, cases[k].size, count);
                ratio[r] = raw[r] > 0 ? fr[r] / raw[r] : 0;
            }
            qsort(raw, reps, sizeof(double), cmp);
            qsort(fr, reps, sizeof(double), cmp);
            qsort(ratio, reps, sizeof(double), cmp);
            printf("%-10s %8zu %12.1f %12.1f %8.2f %8.2f %8.2f\n", sock ? "unix" : "pipe",
                   cases[k].size, raw[reps / 2], fr[reps / 2], ratio[reps / 2], ratio[0],
                   ratio[reps - 1]);
            fflush(stdout);
        }
    }
    return 0;
}

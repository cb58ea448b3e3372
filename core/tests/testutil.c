/* testutil.c - see testutil.h. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

void tu_fill(void *buf, size_t len, uint64_t seed)
{
    uint8_t *p = buf;
    uint64_t st = seed;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = splitmix64_next(&st);
        memcpy(p + i, &v, 8);
    }
    if (i < len) {
        uint64_t v = splitmix64_next(&st);
        memcpy(p + i, &v, len - i);
    }
}

int tu_check(const void *buf, size_t len, uint64_t seed)
{
    const uint8_t *p = buf;
    uint64_t st = seed;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = splitmix64_next(&st);
        if (memcmp(p + i, &v, 8) != 0) return 0;
    }
    if (i < len) {
        uint64_t v = splitmix64_next(&st);
        if (memcmp(p + i, &v, len - i) != 0) return 0;
    }
    return 1;
}

pid_t tu_spawn(int (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    if (pid == 0) _exit(fn(arg) & 0xff);
    return pid;
}

int tu_wait(pid_t pid, int timeout_ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        if (r < 0 && errno != EINTR) return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms > timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

void tu_wait_ok(pid_t pid, int timeout_ms)
{
    int st = tu_wait(pid, timeout_ms);
    if (st == -1) fail_msg("child %d timed out after %d ms", (int)pid, timeout_ms);
    if (WIFSIGNALED(st)) fail_msg("child %d killed by signal %d", (int)pid, WTERMSIG(st));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child %d exited with %d", (int)pid, WEXITSTATUS(st));
}

int tu_shm_count(const char *prefix)
{
    DIR *d = opendir("/dev/shm");
    if (d == NULL) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

const char *tu_name(char *buf, size_t cap)
{
    static unsigned n;
    snprintf(buf, cap, "ipcp-test-%ld-%u", (long)getpid(), n++);
    return buf;
}

int tu_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    if (d != NULL) closedir(d);
    return n - 1; /* the directory's own fd */
}

int tu_scaled(int n)
{
    const char *e = getenv("IPCP_TEST_SCALE");
    long pct = e != NULL ? strtol(e, NULL, 10) : 100;
    if (pct <= 0) pct = 100;
    long v = (long)n * pct / 100;
    return v < 1 ? 1 : (int)v;
}

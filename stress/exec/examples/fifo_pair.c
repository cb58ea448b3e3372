/* fifo_pair.c - one producer and one consumer over a FIFO, as black-box programs (docs/exec.md),
 * written the careful way and, on request, two careless ways that only faults show:
 *
 *   --opt bug=short   the consumer takes what one read() returned for the whole length or
 *                     message: right for records of at most PIPE_BUF bytes (one atomic write,
 *                     which a read of its length gets whole: POSIX), wrong for bigger ones the
 *                     day a read returns less (--fault short-io, --min-size 4097);
 *   --opt bug=eintr   a read() or write() failing with EINTR is fatal: right in a program that
 *                     has no signal handler, wrong once one is installed (--fault signals).
 *
 * and one careful way that looks careless:
 *
 *   --opt poll=1      the consumer waits in poll() (retried on EINTR) before each read() of the
 *                     FIFO, and treats an EINTR from that read() as fatal: right, because a
 *                     read that finds data does not sleep and no signal interrupts it
 *                     (--fault short-io,signals must not fail it).
 *
 * One program plays every role, chosen by IPCPROOF_ROLE: setup creates the FIFO (declining any
 * other count than one producer and one consumer, exit 77), teardown removes it. The producer
 * writes each record (4-byte length, bytes) into the FIFO as it read it from stdin; the consumer
 * reads them back and exits when the producer closed the FIFO. One writer: nobody's bytes can
 * come between a record's. Messages of at most PIPE_BUF - 4 bytes arrive in one piece whenever
 * nothing interferes, which is what the careless reader counts on.
 *
 *   cc -O2 -o fifo_pair fifo_pair.c
 *   ipcproof stress --exec-producer ./fifo_pair --exec-consumer ./fifo_pair \
 *                   --exec-setup ./fifo_pair --exec-teardown ./fifo_pair --fifo \
 *                   --fault short-io,signals [--opt bug=short] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int bug_short, bug_eintr, poll_first;
static int fifo_fd = -1; /* the careless code is in the FIFO's reads and writes only */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL) {
        fprintf(stderr, "fifo_pair: %s is not set (run me through ipcproof --exec-*)\n", name);
        exit(2);
    }
    return v;
}

/* n bytes (fewer only at end of file); on the FIFO, the careless versions as asked */
static size_t get(int fd, void *buf, size_t n)
{
    size_t got = 0;
    int bug_short_here = bug_short && fd == fifo_fd, bug_eintr_here = bug_eintr && fd == fifo_fd;
    while (got < n) {
        if (poll_first && fd == fifo_fd) { /* data (or the end) is there: read() will not sleep */
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, -1) < 0) {
                if (errno == EINTR) continue;
                perror("fifo_pair: poll");
                exit(3);
            }
        }
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r == 0) break;
        if (r < 0 && errno == EINTR && !bug_eintr_here && !(poll_first && fd == fifo_fd)) continue;
        if (r < 0) {
            perror("fifo_pair: read");
            exit(3);
        }
        got += (size_t)r;
        if (bug_short_here) return n; /* "a read returns what the writer wrote" */
    }
    return got;
}

static void put(int fd, const void *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR && !(bug_eintr && fd == fifo_fd)) continue;
        if (w <= 0) {
            perror("fifo_pair: write");
            exit(3);
        }
        buf = (const char *)buf + w;
        n -= (size_t)w;
    }
}

int main(void)
{
    const char *role = env("IPCPROOF_ROLE"), *bug = getenv("IPCPROOF_OPT_BUG");
    bug_short = bug && strcmp(bug, "short") == 0;
    bug_eintr = bug && strcmp(bug, "eintr") == 0;
    const char *pf = getenv("IPCPROOF_OPT_POLL");
    poll_first = pf != NULL && strcmp(pf, "1") == 0 && strcmp(role, "consumer") == 0;
    char path[128];
    snprintf(path, sizeof(path), "/tmp/ipcproof-exec-%s.fifo", env("IPCPROOF_RUN_ID"));
    if (strcmp(role, "setup") == 0) {
        if (strcmp(env("IPCPROOF_PRODUCERS"), "1") || strcmp(env("IPCPROOF_CONSUMERS"), "1"))
            return 77; /* one writer, one reader */
        return mkfifo(path, 0600) == 0 ? 0 : 1;
    }
    if (strcmp(role, "teardown") == 0) return unlink(path) == 0 || errno == ENOENT ? 0 : 1;
    size_t max = (size_t)strtoull(env("IPCPROOF_MAX_SIZE"), NULL, 10);
    unsigned char *rec = malloc(max + 4);
    if (rec == NULL) return 1;
    int producer = strcmp(role, "producer") == 0;
    signal(SIGPIPE, SIG_IGN); /* a consumer that died: EPIPE, said and exited on, not a crash */
    int fd;
    do /* a FIFO's open() waits for the other side: a signal interrupts it too */
        fd = fifo_fd = open(path, producer ? O_WRONLY | O_CLOEXEC : O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR && !bug_eintr);
    if (fd < 0) {
        perror("fifo_pair: open");
        return 1;
    }
    for (;;) {
        int in = producer ? 0 : fd, out = producer ? fd : 1;
        if (get(in, rec, 4) < 4) break; /* end of the stream */
        uint32_t n = (uint32_t)rec[0] | (uint32_t)rec[1] << 8 | (uint32_t)rec[2] << 16 |
                     (uint32_t)rec[3] << 24;
        if (n > max) {
            fprintf(stderr, "fifo_pair: a length of %u bytes\n", n);
            return 4;
        }
        if (get(in, rec + 4, n) < n) return 5;
        put(out, rec, 4 + (size_t)n);
    }
    return 0;
}

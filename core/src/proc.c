/* proc.c - process identity and liveness from /proc: what the mq token lock, the handoff, the
 * robust lock, the condvar queue, the SysV channel and the registry record about a process (pid
 * and start time) and ask about a peer (does that process still exist).
 *
 * One file for it, so that a program running the library's code as threads of one process (the
 * fuzz targets under the scheduler, harnesses/fuzz_lock_sched.c) can give each thread the
 * identity of a process of its own by defining these two functions itself. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Reads state and start time from a /proc/<pid>/stat file: 0, -errno, or -EBADMSG. */
static int read_stat(const char *path, char *state, uint64_t *start)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char buf[1024];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0) break;
        len += (size_t)n;
        if (len == sizeof(buf) - 1) break;
    }
    close(fd);
    buf[len] = '\0';
    /* "pid (comm) S ppid ...": comm may hold spaces and ')', so parse after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0') return -EBADMSG;
    *state = p[2];
    p += 3;
    /* Fields 4..21 follow the state; field 22 is starttime. */
    for (int field = 4; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (*p == '\0') return -EBADMSG;
        if (field == 22) {
            char *end;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p) return -EBADMSG;
            *start = v;
            return 0;
        }
        while (*p != ' ' && *p != '\0')
            p++;
    }
    return -EBADMSG;
}

int ipcp__proc_self(uint32_t *pid, uint64_t *start)
{
    char state;
    int rc = read_stat("/proc/self/stat", &state, start);
    if (rc < 0) return rc;
    *pid = (uint32_t)getpid();
    return 0;
}

int ipcp__proc_alive(uint32_t pid, uint64_t start, uint64_t start_mask)
{
    if (pid == 0) return 0;
    char path[40];
    snprintf(path, sizeof(path), "/proc/%u/stat", pid);
    char state;
    uint64_t st;
    int rc = read_stat(path, &state, &st);
    if (rc == -ENOENT || rc == -ESRCH) return 0;
    if (rc < 0) {
        /* /proc hidden or unparsable: kill(0) still tells a pid that no longer exists. */
        return !(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
    }
    if (state == 'Z' || state == 'X' || state == 'x') return 0;
    if ((st & start_mask) != (start & start_mask)) return 0; /* the pid was reused */
    return 1;
}

/* proc.c - process identity and liveness from /proc: what the mq token lock, the handoff, the
 * robust lock, the condvar queue, the SysV channel, the ring and the registry record about a
 * process (pid, start time, PID namespace) and ask about a peer (does that process still exist).
 *
 * One file for it, so that a program running the library's code as threads of one process (the
 * fuzz targets under the scheduler, harnesses/fuzz_lock_sched.c) can give each thread the
 * identity of a process of its own by defining these functions itself. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os.h"
#include "proc.h"
#include "ipcproof/err.h"

int ipcp__proc_self(uint32_t *pid, uint64_t *start)
{
    char state;
    int rc = ipcp__os_proc_stat(0, &state, start);
    if (rc < 0) return rc;
    *pid = (uint32_t)getpid();
    return 0;
}

uint64_t ipcp__proc_ns(void)
{
    return ipcp__os_ns_inode("pid");
}

int ipcp__proc_ns_check(uint64_t ns)
{
    uint64_t self = ipcp__proc_ns();
    return ns == 0 || self == 0 || ns == self ? 0 : -IPCP_E_PIDNS;
}

/* Does /proc number processes as this process does? Not when it was mounted in another PID
 * namespace: /proc/self then names this process by another pid (or does not exist). */
static int proc_is_ours(void)
{
    char buf[24];
    ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    return errno == 0 && end != buf && *end == '\0' && v == (long)getpid();
}

int ipcp__proc_alive(uint32_t pid, uint64_t start, uint64_t start_mask)
{
    if (pid == 0) return 0;
    if (!proc_is_ours()) return !(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
    char state;
    uint64_t st;
    int rc = ipcp__os_proc_stat(pid, &state, &st);
    if (rc == -ENOENT || rc == -ESRCH) return 0;
    if (rc < 0) {
        /* /proc hidden or unparsable: kill(0) still tells a pid that no longer exists. */
        return !(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
    }
    if (state == 'Z' || state == 'X' || state == 'x') return 0;
    if ((st & start_mask) != (start & start_mask)) return 0; /* the pid was reused */
    return 1;
}

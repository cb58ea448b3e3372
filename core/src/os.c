/* os.c - the library's one layer over the operating system: the real syscalls behind struct
 * ipcp_io_ops (converted once from -1/errno to -errno), whole-file reads and writes, numbers and
 * process status from /proc, POSIX message queue limits, the named objects (shm, mq) every
 * protocol creates under one naming rule, process-shared mutexes and the fork generation.
 * Process identity and liveness are proc.c's. The EINTR policy is os.h's. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "atomics.h"
#include "os.h"
#include "ipcproof/err.h"
#include "ipcproof/fdchan.h"
#include "ipcproof/mqlock.h"
#include "ipcproof/registry.h"
#include "ipcproof/shm.h"

static ssize_t os_read(void *ctx, int fd, void *buf, size_t n)
{
    (void)ctx;
    ssize_t r = read(fd, buf, n);
    return r < 0 ? -errno : r;
}

static ssize_t os_writev(void *ctx, int fd, const struct iovec *iov, int iovcnt)
{
    (void)ctx;
    ssize_t r = writev(fd, iov, iovcnt);
    return r < 0 ? -errno : r;
}

static ssize_t os_recvmsg(void *ctx, int fd, struct msghdr *msg, int flags)
{
    (void)ctx;
    ssize_t r = recvmsg(fd, msg, flags);
    return r < 0 ? -errno : r;
}

static ssize_t os_sendmsg(void *ctx, int fd, const struct msghdr *msg, int flags)
{
    (void)ctx;
    ssize_t r = sendmsg(fd, msg, flags);
    return r < 0 ? -errno : r;
}

static int os_poll(void *ctx, struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    (void)ctx;
    int r = poll(fds, nfds, timeout_ms);
    return r < 0 ? -errno : r;
}

static const struct ipcp_io_ops ipcp_os_io = {
    .read = os_read,
    .writev = os_writev,
    .recvmsg = os_recvmsg,
    .sendmsg = os_sendmsg,
    .poll = os_poll,
    .ctx = NULL,
};

const struct ipcp_io_ops *ipcp_io_default(void)
{
    return &ipcp_os_io;
}

/* ==== futexes, pidfds, poll with a deadline
 * =============================================================================== */

int ipcp__os_futex_wait(void *word, uint32_t seen, int timeout_ms)
{
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, seen, timeout_ms < 0 ? NULL : &ts, NULL,
                0) == 0)
        return 0;
    return errno == EAGAIN ? 0 : -errno;
}

void ipcp__os_futex_wake(void *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
}

int ipcp__os_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
#else
    (void)pid;
    return -ENOSYS;
#endif
}

int ipcp__os_poll_until(int fd, short events, const struct ipcp_deadline *dl)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int left = ipcp__deadline_left_ms(dl);
        if (left == 0) return -ETIMEDOUT;
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) return -errno;
        if (pr > 0) return p.revents;
    }
}

/* ==== whole files (EINTR policy, rule 2)
 * =============================================================================== */

ssize_t ipcp__os_read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int ipcp__os_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        if (w == 0) return -EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

ssize_t ipcp__os_read_file(const char *path, char *buf, size_t cap)
{
    if (cap == 0) return -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = ipcp__os_read_full(fd, buf, cap - 1);
    close(fd);
    if (n < 0) return n;
    buf[n] = '\0';
    return n;
}

int ipcp__os_proc_stat(uint32_t pid, char *state, uint64_t *start)
{
    char path[40], buf[1024];
    if (pid == 0)
        snprintf(path, sizeof(path), "/proc/self/stat");
    else
        snprintf(path, sizeof(path), "/proc/%u/stat", pid);
    ssize_t len = ipcp__os_read_file(path, buf, sizeof(buf));
    if (len < 0) return (int)len;
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
            if (*p < '0' || *p > '9') return -EBADMSG;
            char *end;
            errno = 0;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p || errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0'))
                return -EBADMSG;
            *start = v;
            return 0;
        }
        while (*p != ' ' && *p != '\0')
            p++;
    }
    return -EBADMSG;
}

uint64_t ipcp__proc_u64(const char *path, uint64_t dflt)
{
    char buf[64];
    ssize_t n = ipcp__os_read_file(path, buf, sizeof(buf));
    if (n <= 0) return dflt;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    /* a value that makes no sense (empty, negative, garbage, overflow): the caller's default */
    if (end == buf || buf[0] == '-' || errno != 0 || (*end != '\n' && *end != '\0') || v == 0)
        return dflt;
    return (uint64_t)v;
}

uint64_t ipcp__os_ns_inode(const char *which)
{
    char p[48];
    snprintf(p, sizeof(p), "/proc/self/ns/%s", which);
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* ==== POSIX message queue limits
 * =============================================================================== */

#define HARD_MSGMAX          65536L              /* kernel HARD_MSGMAX */
#define HARD_MSGSIZEMAX      (16L * 1024 * 1024) /* kernel HARD_MSGSIZEMAX */
#define CAP_SYS_RESOURCE_BIT 24

/* a /proc number as a long: 0 when missing, nonsense or beyond LONG_MAX (no limit known) */
static long read_long_file(const char *path)
{
    uint64_t v = ipcp__proc_u64(path, 0);
    return v > (uint64_t)LONG_MAX ? 0 : (long)v;
}

static int cap_sys_resource(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL) return 0;
    char line[256];
    unsigned long long eff = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "CapEff: %llx", &eff) == 1) break;
    fclose(f);
    return (eff >> CAP_SYS_RESOURCE_BIT) & 1;
}

int ipcp_mq_limits_read(struct ipcp_mq_limits *l)
{
    l->msg_max = read_long_file("/proc/sys/fs/mqueue/msg_max");
    l->msgsize_max = read_long_file("/proc/sys/fs/mqueue/msgsize_max");
    l->queues_max = read_long_file("/proc/sys/fs/mqueue/queues_max");
    l->privileged = cap_sys_resource();
    return 0;
}

int ipcp_mq_limits_check(const struct ipcp_mq_limits *l, long maxmsg, long msgsize)
{
    if (maxmsg <= 0 || msgsize <= 0) return -EINVAL;
    long mmax = l->privileged ? HARD_MSGMAX : l->msg_max;
    long smax = l->privileged ? HARD_MSGSIZEMAX : l->msgsize_max;
    if (mmax > 0 && maxmsg > mmax) return -IPCP_E_MQ_MAXMSG;
    if (smax > 0 && msgsize > smax) return -IPCP_E_MQ_MSGSIZE;
    return 0;
}

/* ==== named objects (handoff.c, lock.c, mqchan.c, cvq.c) =================================== */

int ipcp__os_objname(char *buf, unsigned long cap, const char *kind, const char *stem)
{
    /* One naming rule for the whole library: shm.h's (the clean-up of dead creators parses it). */
    int n = stem != NULL && stem[0] != '\0' ? ipcp_shm_name_stem(buf, cap, kind, stem)
                                            : ipcp_shm_name(buf, cap, kind);
    return n < 0 ? n : 0;
}

int ipcp__os_shm_create(const char *name, unsigned long size, void **map)
{
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    int rc = 0;
    if (ftruncate(fd, (off_t)size) < 0) {
        rc = -errno;
    } else {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            rc = -errno;
        else
            *map = p;
    }
    close(fd);
    if (rc < 0)
        shm_unlink(name);
    else
        (void)ipcp_registry_add("shm", name); /* best effort */
    return rc;
}

int ipcp__os_mq_create(const char *name, long maxmsg, long msgsize)
{
    struct ipcp_mq_limits lim;
    ipcp_mq_limits_read(&lim);
    int rc = ipcp_mq_limits_check(&lim, maxmsg, msgsize);
    if (rc < 0) return rc;
    struct mq_attr a = {.mq_maxmsg = maxmsg, .mq_msgsize = msgsize};
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &a);
    if (q != (mqd_t)-1) {
        (void)ipcp_registry_add("mq", name); /* best effort */
        return (int)q;
    }
    int e = errno;
    /* At creation EMFILE is RLIMIT_MSGQUEUE (the bytes of all queues of this user) and ENOSPC
     * is queues_max; EINVAL may be a limit lowered since we read it. */
    if (e == EMFILE || e == ENOSPC) return -IPCP_E_MQ_QUEUES;
    if (e == EINVAL) {
        ipcp_mq_limits_read(&lim);
        rc = ipcp_mq_limits_check(&lim, maxmsg, msgsize);
        if (rc < 0) return rc;
    }
    return -e;
}

int ipcp__os_mq_open(const char *name, long maxmsg, long msgsize)
{
    mqd_t q = mq_open(name, O_RDWR | O_CLOEXEC);
    if (q == (mqd_t)-1) return -errno;
    struct mq_attr a;
    if (mq_getattr(q, &a) < 0) {
        int e = errno;
        mq_close(q);
        return -e;
    }
    if (a.mq_maxmsg != maxmsg || a.mq_msgsize != msgsize) {
        mq_close(q);
        return -IPCP_E_LAYOUT;
    }
    return (int)q;
}

static _Atomic uint32_t fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
    /* The child is single-threaded here; relaxed is enough. */
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void fork_register(void)
{
    pthread_atfork(NULL, NULL, fork_child);
}

uint32_t ipcp__os_forkgen(void)
{
    pthread_once(&fork_once, fork_register);
    return ipcp_load_relaxed32(&fork_gen); /* only ever changed by our own fork */
}

/* ==== process-shared pthread objects
 * =============================================================================== */

int ipcp__robust_mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (r != 0) return -r;
    r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0) r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (r == 0) r = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -r;
}

/* ==== System V objects as /proc/sysvipc lists them (what ipcs shows)
 * =============================================================================== */

static const char *const sysv_files[] = {"/proc/sysvipc/shm", "/proc/sysvipc/msg",
                                         "/proc/sysvipc/sem"};

/* the column of each field in the header line; -1: not there */
enum {
    C_KEY,
    C_ID,
    C_CPID,
    C_LPID,
    C_NATTCH,
    C_LSPID,
    C_LRPID,
    C_NSEMS,
    C_UID,
    C_CUID,
    C_CTIME,
    C_COUNT
};
static const char *const sysv_cols[C_COUNT] = {"key",   "(id)",  "cpid", "lpid", "nattch", "lspid",
                                               "lrpid", "nsems", "uid",  "cuid", "ctime"};

static int sysv_columns(char *header, int col[C_COUNT])
{
    for (int i = 0; i < C_COUNT; i++)
        col[i] = -1;
    int n = 0;
    for (char *save, *t = strtok_r(header, " \t\n", &save); t != NULL;
         t = strtok_r(NULL, " \t\n", &save), n++)
        for (int i = 0; i < C_COUNT; i++) {
            int id = i == C_ID && (strcmp(t, "shmid") == 0 || strcmp(t, "msqid") == 0 ||
                                   strcmp(t, "semid") == 0);
            if (id || strcmp(t, sysv_cols[i]) == 0) col[i] = n;
        }
    return col[C_ID] >= 0 && col[C_UID] >= 0 ? 0 : -EBADMSG;
}

int ipcp__os_sysv_list(int kind, void (*fn)(const struct ipcp__sysv_obj *o, void *arg), void *arg)
{
    if (kind < 0 || kind > IPCP__SYSV_SEM) return -EINVAL;
    FILE *f = fopen(sysv_files[kind], "re");
    if (f == NULL) return -errno;
    char line[1024];
    int col[C_COUNT];
    if (fgets(line, sizeof(line), f) == NULL || sysv_columns(line, col) < 0) {
        fclose(f);
        return -EBADMSG;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        long long v[32];
        int n = 0;
        char *save;
        for (char *t = strtok_r(line, " \t\n", &save); t != NULL && n < 32;
             t = strtok_r(NULL, " \t\n", &save))
            v[n++] = strtoll(t, NULL, 10);
#define COL(c, dflt) (col[c] >= 0 && col[c] < n ? v[col[c]] : (dflt))
        if (col[C_ID] >= n || v[col[C_ID]] < 0 || v[col[C_ID]] > INT_MAX) continue;
        struct ipcp__sysv_obj o = {
            .kind = kind,
            .id = (int)v[col[C_ID]],
            .key = COL(C_KEY, 0),
            .uid = (long)COL(C_UID, -1),
            .cuid = (long)COL(C_CUID, -1),
            .ctime = COL(C_CTIME, -1),
        };
        if (kind == IPCP__SYSV_SHM) {
            o.pid[0] = (long)COL(C_CPID, 0);
            o.pid[1] = (long)COL(C_LPID, 0);
            o.count = (long)COL(C_NATTCH, -1);
        } else if (kind == IPCP__SYSV_MSG) {
            o.pid[0] = (long)COL(C_LSPID, 0);
            o.pid[1] = (long)COL(C_LRPID, 0);
        } else {
            o.count = (long)COL(C_NSEMS, -1);
        }
#undef COL
        fn(&o, arg);
    }
    fclose(f);
    return 0;
}

/* os.c - the library's one layer over the operating system: the real syscalls behind struct
 * ipcp_io_ops (converted once from -1/errno to -errno; EINTR is returned, not retried, so that
 * callers re-check their deadlines), numbers from /proc, POSIX message queue limits, the named
 * objects (shm, mq) every protocol creates under one naming rule, and the fork generation.
 * Process identity and liveness are proc.c's. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
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

uint64_t ipcp__proc_u64(const char *path, uint64_t dflt)
{
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dflt;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return dflt;
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    /* a value that makes no sense (empty, negative, garbage, overflow): the caller's default */
    if (end == buf || buf[0] == '-' || errno != 0 || (*end != '\n' && *end != '\0') || v == 0)
        return dflt;
    return (uint64_t)v;
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

/* blocking_locks.c - correct locks built on blocking calls that libc makes without any atomic
 * operation the instrumentation sees: the sched tests' check that the scheduler interposes
 * them (stress/sched/interpose_lock.c), and that a call it cannot see ends the case as n/a
 * rather than as the protocol's deadlock. --opt how=NAME:
 *   flock   flock(LOCK_EX) / flock(LOCK_UN) on the run's file, one fd per endpoint
 *   fcntl   fcntl(F_SETLKW) write lock / F_UNLCK (per process: thread mode is not its place)
 *   ofd     fcntl(F_OFD_SETLKW) / F_UNLCK, one open file description per endpoint
 *   lockf   lockf(F_LOCK) / lockf(F_ULOCK)
 *   spin    a process-shared pthread spinlock
 *   raw     flock through syscall(SYS_flock): the call the scheduler cannot see
 * Not robust, not fair: only exclusion is promised. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ipcproof/plugin.h>

enum how { FLOCK, FCNTL, OFD, LOCKF, SPIN, RAW };

struct ctx {
    enum how how;
    char path[128];
    pthread_spinlock_t *spin; /* shared memory */
};

struct handle {
    struct ctx *c;
    int fd;
};

static int create(const struct ipcp_lock_cfg *cfg, void **ctxp)
{
    static const char *names[] = {"flock", "fcntl", "ofd", "lockf", "spin", "raw"};
    const char *o = strstr(cfg->options, "how=");
    struct ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) return -ENOMEM;
    c->how = FLOCK;
    for (unsigned i = 0; o != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(o + 4, names[i], strlen(names[i])) == 0) c->how = (enum how)i;
    snprintf(c->path, sizeof(c->path), "/tmp/ipcproof-blocking-lock-%s", cfg->run_id);
    int fd = open(c->path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        free(c);
        return -e;
    }
    close(fd);
    c->spin = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c->spin == MAP_FAILED) {
        int e = errno;
        unlink(c->path);
        free(c);
        return -e;
    }
    pthread_spin_init(c->spin, PTHREAD_PROCESS_SHARED);
    *ctxp = c;
    return 0;
}

static int open_ep(void *ctx, uint32_t index, void **hp)
{
    (void)index;
    struct handle *h = malloc(sizeof(*h));
    if (h == NULL) return -ENOMEM;
    h->c = ctx;
    h->fd = open(h->c->path, O_RDWR | O_CLOEXEC);
    if (h->fd < 0) {
        int e = errno;
        free(h);
        return -e;
    }
    *hp = h;
    return 0;
}

static int record(struct handle *h, int cmd, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    return fcntl(h->fd, cmd, &fl);
}

static int lock_(void *hp, int timeout_ms)
{
    struct handle *h = hp;
    (void)timeout_ms; /* blocking calls: no timeout */
    int r;
    do {
        switch (h->c->how) {
        case FLOCK:
            r = flock(h->fd, LOCK_EX);
            break;
        case FCNTL:
            r = record(h, F_SETLKW, F_WRLCK);
            break;
        case OFD:
            r = record(h, F_OFD_SETLKW, F_WRLCK);
            break;
        case LOCKF:
            r = lockf(h->fd, F_LOCK, 1);
            break;
        case SPIN:
            return -pthread_spin_lock(h->c->spin);
        default:
            r = (int)syscall(SYS_flock, h->fd, LOCK_EX);
            break;
        }
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

static int unlock_(void *hp)
{
    struct handle *h = hp;
    int r;
    switch (h->c->how) {
    case FLOCK:
        r = flock(h->fd, LOCK_UN);
        break;
    case FCNTL:
        r = record(h, F_SETLK, F_UNLCK);
        break;
    case OFD:
        r = record(h, F_OFD_SETLK, F_UNLCK);
        break;
    case LOCKF:
        r = lockf(h->fd, F_ULOCK, 1);
        break;
    case SPIN:
        return -pthread_spin_unlock(h->c->spin);
    default:
        r = (int)syscall(SYS_flock, h->fd, LOCK_UN);
        break;
    }
    return r < 0 ? -errno : 0;
}

static void close_ep(void *hp)
{
    struct handle *h = hp;
    close(h->fd);
    free(h);
}

static void destroy(void *ctx)
{
    struct ctx *c = ctx;
    munmap((void *)c->spin, 4096);
    unlink(c->path);
    free(c);
}

static const struct ipcp_lock_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "fixture-blocking-locks",
    .flags = 0,
    .create = create,
    .open = open_ep,
    .lock = lock_,
    .unlock = unlock_,
    .close = close_ep,
    .destroy = destroy,
};

/* IPCP_FIXTURE_PROCESSES=1: the same lock, declared IPCP_LOCK_PROCESSES (how=fcntl and lockf
 * are: POSIX record locks do not exclude the threads of one process) */
static const struct ipcp_lock_ops ops_processes = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "fixture-blocking-locks",
    .flags = IPCP_LOCK_PROCESSES,
    .create = create,
    .open = open_ep,
    .lock = lock_,
    .unlock = unlock_,
    .close = close_ep,
    .destroy = destroy,
};

const struct ipcp_lock_ops *ipcp_plugin_lock(void)
{
    const char *p = getenv("IPCP_FIXTURE_PROCESSES");
    return p != NULL && strcmp(p, "1") == 0 ? &ops_processes : &ops;
}

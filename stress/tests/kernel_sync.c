/* kernel_sync.c - correct locks whose only ordering is a call ThreadSanitizer does not see by
 * itself (stress/tsanwrap.c tells it): the TSan build's check that thread mode does not call
 * them `race`. Every wait has a deadline. --opt how=NAME:
 *   semclock   a process-shared sem_t taken with sem_clockwait(CLOCK_MONOTONIC)
 *   clocklock  a process-shared pthread mutex taken with pthread_mutex_clocklock
 *   timedlock  a process-shared pthread mutex taken with pthread_mutex_timedlock
 *   rwclock    a process-shared rwlock taken with pthread_rwlock_clockwrlock
 *   mq         a POSIX message queue holding one token: receive to lock, send to unlock
 *   sysv       a SysV semaphore: semtimedop -1 to lock, semop +1 to unlock
 *   sysvmsg    a SysV message queue holding one token: msgrcv (IPC_NOWAIT, polled up to the
 *              deadline) to lock, msgsnd to unlock
 * Not robust, not fair: only exclusion is promised. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <time.h>

#include <ipcproof/plugin.h>

enum how { SEMCLOCK, CLOCKLOCK, TIMEDLOCK, RWCLOCK, MQ, SYSV, SYSVMSG };

struct token {
    long type;
    char t;
};

struct shared {
    sem_t sem;
    pthread_mutex_t mu;
    pthread_rwlock_t rw;
};

struct ctx {
    enum how how;
    struct shared *sh;
    char mq_name[64];
    int semid; /* the SysV semaphore set or message queue */
};

struct handle {
    struct ctx *c;
    mqd_t q;
};

static struct timespec after_ms(clockid_t clk, int ms)
{
    struct timespec t;
    clock_gettime(clk, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static int create(const struct ipcp_lock_cfg *cfg, void **ctxp)
{
    static const char *names[] = {"semclock", "clocklock", "timedlock", "rwclock",
                                  "mq",       "sysv",      "sysvmsg"};
    const char *o = strstr(cfg->options, "how=");
    if (o == NULL) return -EINVAL;
    struct ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) return -ENOMEM;
    c->how = (enum how) - 1;
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(o + 4, names[i]) == 0) c->how = (enum how)i;
    c->semid = -1;
    c->sh = mmap(NULL, sizeof(*c->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if ((int)c->how < 0 || c->sh == MAP_FAILED) {
        free(c);
        return -EINVAL;
    }
    sem_init(&c->sh->sem, 1, 1);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&c->sh->mu, &ma);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
    pthread_rwlock_init(&c->sh->rw, &ra);
    int rc = 0;
    if (c->how == MQ) {
        snprintf(c->mq_name, sizeof(c->mq_name), "/ipcproof-ksync-%s", cfg->run_id);
        struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 1};
        mqd_t q = mq_open(c->mq_name, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
        if (q == (mqd_t)-1) rc = -errno;
        if (rc == 0 && mq_send(q, "t", 1, 0) != 0) rc = -errno;
        if (q != (mqd_t)-1) mq_close(q);
        if (rc < 0 && q != (mqd_t)-1) mq_unlink(c->mq_name);
    } else if (c->how == SYSV) {
        c->semid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
        if (c->semid < 0) rc = -errno;
        struct sembuf up = {0, 1, 0};
        if (rc == 0 && semop(c->semid, &up, 1) != 0) rc = -errno;
        if (rc < 0 && c->semid >= 0) semctl(c->semid, 0, IPC_RMID);
    } else if (c->how == SYSVMSG) {
        c->semid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
        if (c->semid < 0) rc = -errno;
        struct token t = {1, 't'};
        if (rc == 0 && msgsnd(c->semid, &t, 1, 0) != 0) rc = -errno;
        if (rc < 0 && c->semid >= 0) msgctl(c->semid, IPC_RMID, NULL);
    }
    if (rc < 0) {
        munmap(c->sh, sizeof(*c->sh));
        free(c);
        return rc;
    }
    *ctxp = c;
    return 0;
}

static int open_ep(void *ctx, uint32_t index, void **hp)
{
    (void)index;
    struct handle *h = calloc(1, sizeof(*h));
    if (h == NULL) return -ENOMEM;
    h->c = ctx;
    h->q = (mqd_t)-1;
    if (h->c->how == MQ && (h->q = mq_open(h->c->mq_name, O_RDWR)) == (mqd_t)-1) {
        int e = errno;
        free(h);
        return -e;
    }
    *hp = h;
    return 0;
}

static int lock_(void *hp, int timeout_ms)
{
    struct handle *h = hp;
    struct shared *sh = h->c->sh;
    struct timespec mono = after_ms(CLOCK_MONOTONIC, timeout_ms);
    struct timespec real = after_ms(CLOCK_REALTIME, timeout_ms);
    int r;
    switch (h->c->how) {
    case SEMCLOCK:
        while ((r = sem_clockwait(&sh->sem, CLOCK_MONOTONIC, &mono)) != 0 && errno == EINTR) {
        }
        return r == 0 ? 0 : -errno;
    case CLOCKLOCK:
        return -pthread_mutex_clocklock(&sh->mu, CLOCK_MONOTONIC, &mono);
    case TIMEDLOCK:
        return -pthread_mutex_timedlock(&sh->mu, &real);
    case RWCLOCK:
        return -pthread_rwlock_clockwrlock(&sh->rw, CLOCK_MONOTONIC, &mono);
    case MQ: {
        char t;
        ssize_t n;
        while ((n = mq_timedreceive(h->q, &t, 1, NULL, &real)) < 0 && errno == EINTR) {
        }
        return n == 1 ? 0 : -errno;
    }
    case SYSVMSG:
        for (;;) {
            struct token t;
            if (msgrcv(h->c->semid, &t, 1, 0, IPC_NOWAIT) == 1) return 0;
            if (errno != ENOMSG && errno != EINTR) return -errno;
            struct timespec now, pause = {0, 20000};
            clock_gettime(CLOCK_REALTIME, &now);
            if (now.tv_sec > real.tv_sec ||
                (now.tv_sec == real.tv_sec && now.tv_nsec >= real.tv_nsec))
                return -ETIMEDOUT;
            nanosleep(&pause, NULL);
        }
    default: {
        struct sembuf down = {0, -1, 0};
        struct timespec rel = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
        while ((r = semtimedop(h->c->semid, &down, 1, &rel)) != 0 && errno == EINTR) {
        }
        return r == 0 ? 0 : errno == EAGAIN ? -ETIMEDOUT : -errno;
    }
    }
}

static int unlock_(void *hp)
{
    struct handle *h = hp;
    struct shared *sh = h->c->sh;
    switch (h->c->how) {
    case SEMCLOCK:
        return sem_post(&sh->sem) == 0 ? 0 : -errno;
    case CLOCKLOCK:
    case TIMEDLOCK:
        return -pthread_mutex_unlock(&sh->mu);
    case RWCLOCK:
        return -pthread_rwlock_unlock(&sh->rw);
    case MQ:
        return mq_send(h->q, "t", 1, 0) == 0 ? 0 : -errno;
    case SYSVMSG: {
        struct token t = {1, 't'};
        return msgsnd(h->c->semid, &t, 1, 0) == 0 ? 0 : -errno;
    }
    default: {
        struct sembuf up = {0, 1, 0};
        return semop(h->c->semid, &up, 1) == 0 ? 0 : -errno;
    }
    }
}

static void close_ep(void *hp)
{
    struct handle *h = hp;
    if (h->q != (mqd_t)-1) mq_close(h->q);
    free(h);
}

static void destroy(void *ctx)
{
    struct ctx *c = ctx;
    if (c->how == MQ) mq_unlink(c->mq_name);
    if (c->how == SYSV) semctl(c->semid, 0, IPC_RMID);
    if (c->how == SYSVMSG) msgctl(c->semid, IPC_RMID, NULL);
    munmap(c->sh, sizeof(*c->sh));
    free(c);
}

static const struct ipcp_lock_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "kernel-sync",
    .flags = 0,
    .create = create,
    .open = open_ep,
    .lock = lock_,
    .unlock = unlock_,
    .close = close_ep,
    .destroy = destroy,
};

const struct ipcp_lock_ops *ipcp_plugin_lock(void)
{
    return &ops;
}

/* harness.c - a plugin with selectable faults that tests ipcproof's own checker.
 *
 * A plain, correct channel (one pipe, one producer, one consumer, length-prefixed messages,
 * non-blocking fds, poll() waits) and a correct robust lock (a process-shared robust pthread
 * mutex), into which --opt bug=<name>[,after=N] plants exactly one fault. tests.cmake runs each
 * and expects ipcproof to report the matching violation kind (or exit status 2):
 *   drop      send() returns 0 for a message it does not write           -> loss
 *   dup       recv() hands out the previous message once more             -> duplicate
 *   reorder   send() holds a message back and writes it after the next    -> reorder
 *   crash     the consumer dies of SIGSEGV                                -> crash
 *   hang      recv() blocks forever, ignoring its timeout                 -> deadlock
 *   error     send() returns -EIO                                         -> error
 *   openfail  open() of the consumer returns -ENOENT                      -> error
 *   leak      create() makes a POSIX shm object that destroy() keeps      -> leak
 *   create    create() returns -ENOSPC                                    -> exit status 2
 *   liar      (lock) lock() returns 1 although no holder died             -> error
 *   hide      (lock) after a holder died, lock() returns 0 instead of 1   -> error (--fault kill)
 *   lastbatch sends 8 messages at a time; close() forgets a partial batch -> loss
 *   inconsistent (lock) after a holder died, lock() returns 1 but never makes the mutex
 *             consistent: the next lock() returns ENOTRECOVERABLE         -> error (--fault kill)
 *   swallow   (lock) after a holder died, lock() keeps the mutex and returns -ETIMEDOUT: nobody
 *             gets in again                                     -> deadlock (--fault kill)
 *   duplast   recv() hands out the last message once more when the pipe is empty -> duplicate
 *   dupforever recv() hands out the last message again and again: the consumer never ends
 *             -> duplicate, and the case deadline passes with progress until the end
 *   sendtime  recv() changes a byte of the header's send time           -> torn
 *   weirderr  send() returns -12345, a code nobody knows                  -> error
 *   stall     after N messages, send() and recv() only time out          -> starvation
 * and the hostile ones, which try to break the supervisor rather than the checker:
 *   create-exit / create-crash / create-hang    exit(0), SIGSEGV, hang inside create()
 *   destroy-crash / destroy-hang                the same inside destroy()
 *   daemon    create() double-forks a process (setsid) that outlives everything; its pid goes
 *             to the file named by file=PATH                              -> leak
 *   thread    create() starts a thread that kills the process create() ran in, later
 *   flood     send() writes 64 KiB to stdout every time
 *   overrun   recv() writes 256 bytes past the buffer it was given         -> crash
 *   exit-recv / exit3-recv / exit-send   exit(0) / exit(3) from inside recv(), exit(0) from
 *             inside send()                                               -> crash
 * and with IPCP_HARNESS_CTOR=exit|crash|hang in the environment, the plugin's constructor does
 * that when it is loaded.
 * Without bug= both protocols are correct and every case must pass. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcproof/plugin.h>

struct ctx {
    int fds[2];
    size_t max_msg;
    char bug[16];
    unsigned long after;
    char file[256];
};

struct ep {
    struct ctx *x;
    unsigned long n; /* messages sent / received */
    uint8_t *buf;    /* consumer: message being read; producer: a held-back message */
    size_t have, need, held;
    uint8_t *last; /* consumer: last message, for bug=dup */
    size_t last_len;
    uint8_t *batch[8]; /* producer, bug=lastbatch: messages not written yet */
    size_t batch_len[8];
    unsigned nbatch;
};

static void parse(const char *opt, char *bug, size_t cap, unsigned long *after)
{
    *after = 100;
    bug[0] = '\0';
    const char *b = strstr(opt, "bug=");
    if (b) snprintf(bug, cap, "%.*s", (int)strcspn(b + 4, ","), b + 4);
    const char *a = strstr(opt, "after=");
    if (a) *after = strtoul(a + 6, NULL, 10);
}

static void hang(void)
{
    for (;;)
        pause();
}

__attribute__((constructor)) static void harness_ctor(void)
{
    const char *c = getenv("IPCP_HARNESS_CTOR");
    if (c == NULL) return;
    if (strcmp(c, "exit") == 0) exit(0);
    if (strcmp(c, "crash") == 0) raise(SIGSEGV);
    if (strcmp(c, "hang") == 0) hang();
}

/* A process that leaves its parents behind (double fork, new session) and stays. */
static void leave_daemon(const char *file)
{
    pid_t p = fork();
    if (p != 0) {
        if (p > 0) waitpid(p, NULL, 0);
        return;
    }
    setsid();
    if (fork() != 0) _exit(0);
    prctl(PR_SET_NAME, "harness-daemon");
    if (file[0]) {
        FILE *f = fopen(file, "w");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        }
    }
    hang();
}

static void *killer(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    raise(SIGSEGV); /* in the process that ran create(), while the endpoints run */
    return NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is(const struct ctx *x, const char *bug)
{
    return strcmp(x->bug, bug) == 0;
}

/* ---- channel ----------------------------------------------------------------------------------
 */

static int ch_create(const struct ipcp_chan_cfg *cfg, void **out)
{
    if (cfg->producers != 1 || cfg->consumers != 1) return -EINVAL;
    struct ctx *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    parse(cfg->options, x->bug, sizeof(x->bug), &x->after);
    const char *f = strstr(cfg->options, "file=");
    if (f) snprintf(x->file, sizeof(x->file), "%.*s", (int)strcspn(f + 5, ","), f + 5);
    x->max_msg = cfg->max_msg;
    if (is(x, "create")) {
        free(x);
        return -ENOSPC;
    }
    if (is(x, "create-exit")) exit(0);
    if (is(x, "create-crash")) raise(SIGSEGV);
    if (is(x, "create-hang")) hang();
    if (is(x, "daemon")) leave_daemon(x->file);
    if (is(x, "thread")) {
        pthread_t t;
        pthread_create(&t, NULL, killer, NULL);
    }
    if (pipe2(x->fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        int e = errno;
        free(x);
        return -e;
    }
    if (is(x, "leak")) {
        char name[96];
        snprintf(name, sizeof(name), "/harness-leak.%s", cfg->run_id);
        int fd = shm_open(name, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0) close(fd); /* and never unlinked */
    }
    *out = x;
    return 0;
}

static void ch_destroy(void *ctx)
{
    struct ctx *x = ctx;
    if (is(x, "destroy-crash")) raise(SIGSEGV);
    if (is(x, "destroy-hang")) hang();
    close(x->fds[0]);
    close(x->fds[1]);
    free(x);
}

static int ch_open(void *ctx, int role, uint32_t index, void **out)
{
    (void)index;
    struct ctx *x = ctx;
    if (role == IPCP_ROLE_CONSUMER && is(x, "openfail")) return -ENOENT;
    struct ep *e = calloc(1, sizeof(*e));
    if (e == NULL) return -ENOMEM;
    e->x = x;
    e->need = 4;
    e->buf = malloc(4 + x->max_msg);
    e->last = malloc(x->max_msg);
    if (e->buf == NULL || e->last == NULL) {
        free(e->buf);
        free(e->last);
        free(e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

static void ch_close(void *ep)
{
    struct ep *e = ep;
    for (unsigned i = 0; i < e->nbatch; i++) /* bug=lastbatch: dropped, never written */
        free(e->batch[i]);
    free(e->buf);
    free(e->last);
    free(e);
}

/* Writes a whole frame; the pipe is only read by one consumer and written by one producer. */
static int write_frame(int fd, const void *msg, size_t len, int timeout_ms)
{
    uint32_t l32 = (uint32_t)len;
    const uint8_t *parts[2] = {(const uint8_t *)&l32, msg};
    size_t lens[2] = {4, len}, done = 0, total = 4 + len;
    int64_t deadline = now_ms() + timeout_ms;
    while (done < total) {
        size_t i = done < 4 ? 0 : 1, off = done < 4 ? done : done - 4;
        ssize_t n = write(fd, parts[i] + off, lens[i] - off);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) return -errno;
        int64_t left = deadline - now_ms();
        if (left <= 0 && done == 0) return -ETIMEDOUT;
        if (left < -1000) return -EIO; /* stuck half-way for a second: the stream is broken */
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, left <= 0 ? 100 : (int)left); /* once started, finish */
    }
    return 0;
}

static int ch_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct ep *e = ep;
    struct ctx *x = e->x;
    unsigned long n = e->n;
    if (is(x, "error") && n >= x->after) return -EIO;
    if (is(x, "weirderr") && n >= x->after) return -12345;
    if (is(x, "exit-send") && n >= x->after) exit(0);
    if (is(x, "stall") && n >= x->after) {
        struct timespec ts = {0, (long)timeout_ms * 1000000L};
        nanosleep(&ts, NULL);
        return -ETIMEDOUT;
    }
    if (is(x, "flood")) {
        static char junk[65536];
        memset(junk, 'f', sizeof(junk) - 1);
        junk[sizeof(junk) - 1] = '\n';
        if (write(1, junk, sizeof(junk)) < 0) return -errno;
    }
    if (is(x, "drop") && n >= x->after && n % 50 == 0) {
        e->n++;
        return 0; /* "sent" */
    }
    if (is(x, "lastbatch")) { /* 8 messages at a time; close() forgets a partial batch */
        e->batch[e->nbatch] = malloc(len ? len : 1);
        if (e->batch[e->nbatch] == NULL) return -ENOMEM;
        memcpy(e->batch[e->nbatch], msg, len);
        e->batch_len[e->nbatch++] = len;
        e->n++;
        if (e->nbatch < 8) return 0;
        int r = 0;
        for (unsigned i = 0; i < e->nbatch; i++) {
            if (r == 0) r = write_frame(x->fds[1], e->batch[i], e->batch_len[i], 1000);
            free(e->batch[i]);
        }
        e->nbatch = 0;
        return r;
    }
    if (is(x, "reorder") && n >= x->after && n % 50 == 0 && !e->held) {
        memcpy(e->buf, msg, len); /* hold it back; it goes out after the next one */
        e->held = len;
        e->n++;
        return 0;
    }
    int r = write_frame(x->fds[1], msg, len, timeout_ms);
    if (r < 0) return r;
    e->n++;
    if (e->held) {
        r = write_frame(x->fds[1], e->buf, e->held, 1000);
        e->held = 0;
    }
    return r;
}

static ssize_t ch_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct ep *e = ep;
    struct ctx *x = e->x;
    if (e->n >= x->after) {
        if (is(x, "crash")) raise(SIGSEGV);
        if (is(x, "hang")) hang();
        if (is(x, "exit-recv")) exit(0);
        if (is(x, "exit3-recv")) exit(3);
        if (is(x, "dupforever") && e->last_len) { /* busy for ever, never done */
            memcpy(buf, e->last, e->last_len);
            return (ssize_t)e->last_len;
        }
        if (is(x, "dup") && e->n % 50 == 0 && e->last_len) {
            e->n++;
            memcpy(buf, e->last, e->last_len);
            return (ssize_t)e->last_len;
        }
    }
    int64_t deadline = now_ms() + timeout_ms;
    while (e->have < e->need) {
        ssize_t n = read(x->fds[0], e->buf + e->have, e->need - e->have);
        if (n > 0) {
            e->have += (size_t)n;
            if (e->have == 4 && e->need == 4) {
                uint32_t len;
                memcpy(&len, e->buf, 4);
                if (len > x->max_msg) return -EBADMSG;
                e->need = 4 + len;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) return -EPIPE;
        if (errno != EAGAIN) return -errno;
        int64_t left = deadline - now_ms();
        if (left <= 0 && is(x, "duplast") && e->have == 0 && e->last_len && !e->held) {
            e->held = 1; /* the pipe is empty: the last message once more */
            memcpy(buf, e->last, e->last_len);
            return (ssize_t)e->last_len;
        }
        if (left <= 0) return -ETIMEDOUT;
        struct pollfd p = {.fd = x->fds[0], .events = POLLIN};
        poll(&p, 1, (int)left);
    }
    size_t len = e->need - 4;
    e->have = 0;
    e->need = 4;
    if (len > cap) return -EMSGSIZE;
    if (is(x, "stall") && e->n >= x->after) {
        struct timespec ts = {0, (long)timeout_ms * 1000000L};
        nanosleep(&ts, NULL);
        return -ETIMEDOUT;
    }
    memcpy(buf, e->buf + 4, len);
    if (is(x, "sendtime") && e->n == x->after && len > 32) ((uint8_t *)buf)[27] ^= 0x40;
    if (is(x, "overrun") && e->n >= x->after) memset((uint8_t *)buf + cap, 0xAA, 256);
    memcpy(e->last, e->buf + 4, len);
    e->last_len = len;
    e->n++;
    return (ssize_t)len;
}

static const struct ipcp_channel_ops chan_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "harness-pipe",
    .flags = IPCP_CHAN_FIFO,
    .create = ch_create,
    .open = ch_open,
    .send = ch_send,
    .recv = ch_recv,
    .close = ch_close,
    .destroy = ch_destroy,
};

const struct ipcp_channel_ops *ipcp_plugin_channel(void)
{
    return &chan_ops;
}

/* ---- lock --------------------------------------------------------------------------------------
 */

struct lctx {
    pthread_mutex_t m; /* first: the mapping starts with it */
    char bug[16];
    unsigned long after;
    _Atomic unsigned long locks;
};

static int lk_create(const struct ipcp_lock_cfg *cfg, void **out)
{
    struct lctx *l =
        mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l == MAP_FAILED) return -errno;
    parse(cfg->options, l->bug, sizeof(l->bug), &l->after);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int r = pthread_mutex_init(&l->m, &a);
    pthread_mutexattr_destroy(&a);
    if (r != 0) {
        munmap(l, sizeof(*l));
        return -r;
    }
    *out = l;
    return 0;
}

static int lk_open(void *ctx, uint32_t index, void **h)
{
    (void)index;
    *h = ctx;
    return 0;
}

/* trylock in a loop: ThreadSanitizer of LLVM 14 mishandles EOWNERDEAD from
 * pthread_mutex_timedlock (see stress/plugins/examples/good_robust_mutex.c) */
static int lk_lock(void *h, int timeout_ms)
{
    struct lctx *l = h;
    int64_t deadline = now_ms() + timeout_ms;
    int r;
    while ((r = pthread_mutex_trylock(&l->m)) == EBUSY) {
        if (now_ms() >= deadline) return -ETIMEDOUT;
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    if (r == EOWNERDEAD) {
        if (strcmp(l->bug, "swallow") == 0) { /* keeps the mutex, says it timed out */
            struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            return -ETIMEDOUT;
        }
        if (strcmp(l->bug, "inconsistent") != 0) pthread_mutex_consistent(&l->m);
        return strcmp(l->bug, "hide") == 0 ? 0 : 1;
    }
    if (r != 0) return -r;
    unsigned long n = atomic_fetch_add(&l->locks, 1);
    if (strcmp(l->bug, "liar") == 0 && n >= l->after && n % 50 == 0) return 1;
    return 0;
}

static int lk_unlock(void *h)
{
    return -pthread_mutex_unlock(&((struct lctx *)h)->m);
}

static void lk_close(void *h)
{
    (void)h;
}

static void lk_destroy(void *ctx)
{
    struct lctx *l = ctx;
    pthread_mutex_destroy(&l->m);
    munmap(l, sizeof(*l));
}

static const struct ipcp_lock_ops lock_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "harness-mutex",
    .flags = IPCP_LOCK_ROBUST,
    .create = lk_create,
    .open = lk_open,
    .lock = lk_lock,
    .unlock = lk_unlock,
    .close = lk_close,
    .destroy = lk_destroy,
};

const struct ipcp_lock_ops *ipcp_plugin_lock(void)
{
    return &lock_ops;
}

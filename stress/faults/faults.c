/* faults.c - libipcproof-faults.so, the short-io interposer of `ipcproof stress --fault short-io`.
 *
 * Preloaded (LD_PRELOAD) into the ipcproof process, it wraps read, write, readv, writev, send,
 * recv, sendmsg and recvmsg (and the _FORTIFY_SOURCE variants __read_chk, __recv_chk) and, at a
 * seeded rate, makes a call do what the kernel is allowed to do and a careless protocol does not
 * expect:
 *
 *   EINTR   the call fails before transferring anything (as if a signal arrived first);
 *   EAGAIN  the same, only on a non-blocking fd (O_NONBLOCK or MSG_DONTWAIT) - a blocking fd
 *           never returns EAGAIN, so it gets EINTR instead;
 *   short   the call transfers fewer bytes than asked (at least one): only where the kernel can
 *           do that - reads from pipes, FIFOs and stream sockets, writes to stream sockets, and
 *           writes to pipes/FIFOs above PIPE_BUF bytes (POSIX makes smaller pipe writes atomic,
 *           so shortening them would be a fault no kernel produces). Packet sockets are never
 *           shortened (a short packet read truncates the packet).
 *
 * It is disarmed by default: only a thread that called ipcproof_faults_arm() with a non-zero
 * rate sees faults (the arming is thread-local), so the supervisor's own I/O, the signal storm
 * thread and everything before the start barrier stay untouched. The random stream of each
 * armed thread derives from the seed it was armed with. The real functions are found with
 * dlsym(RTLD_NEXT); under a sanitizer the sanitizer's interceptors call into these wrappers,
 * which call libc.
 *
 * Program mode (faults.h): preloaded into an exec endpoint's program, with IPCP_FX_ENV_FD set,
 * it arms every thread of the program itself, and only does what the kernel could do to that
 * program: faults go to pipes, FIFOs and sockets only (never to files, terminals or the contract
 * pipes with ipcproof), and EINTR, or a short write on a blocking fd, only while its handler of
 * IPCP_FX_SIGNAL (no SA_RESTART) is installed and not blocked - a program without a handler can
 * never see them. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "faults.h"
#include "splitmix.h"

#define EXPORT __attribute__((visibility("default")))

static _Thread_local unsigned tl_rate; /* faults per million calls; 0 = disarmed */
static _Thread_local uint64_t tl_rng;
static _Thread_local uint64_t tl_injected;
static _Thread_local int tl_program_armed; /* program mode: this thread armed itself */

/* Arms (rate_ppm > 0) or disarms (0) fault injection for the calling thread. */
EXPORT void ipcproof_faults_arm(uint64_t seed, unsigned rate_ppm);
void ipcproof_faults_arm(uint64_t seed, unsigned rate_ppm)
{
    tl_rng = seed;
    tl_rate = rate_ppm > 1000000u ? 1000000u : rate_ppm;
}

/* Faults injected into the calling thread since it was first armed. */
EXPORT uint64_t ipcproof_faults_injected(void);
uint64_t ipcproof_faults_injected(void)
{
    return tl_injected;
}

static uint64_t next_rand(void)
{
    return splitmix64_next(&tl_rng);
}

/* ---- the real functions ---------------------------------------------------------------------- */

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*readv_fn)(int, const struct iovec *, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*read_chk_fn)(int, void *, size_t, size_t);
typedef ssize_t (*recv_chk_fn)(int, void *, size_t, size_t, int);

/* Resolved once by the constructor, before main() and before any thread exists; the lazy path
 * covers calls from other constructors. Atomic (relaxed) because a lazy resolution may race with
 * another thread's: both store the same value. */
static _Atomic(void *) fn_table[9];
static const char *const fn_names[9] = {"read", "write",   "readv",   "writev",    "send",
                                        "recv", "sendmsg", "recvmsg", "__read_chk"};
static _Atomic(void *) fn_recv_chk;

static void *real(int i)
{
    void *f = atomic_load_explicit(&fn_table[i], memory_order_relaxed);
    if (f == NULL) {
        f = dlsym(RTLD_NEXT, fn_names[i]);
        atomic_store_explicit(&fn_table[i], f, memory_order_relaxed);
    }
    return f;
}

/* ---- program mode ---------------------------------------------------------------------------- */

static struct ipcp_fx_page *fx; /* the counters page; NULL: ipcproof's own process */
static unsigned fx_rate;
static uint64_t fx_seed, fx_image;
static _Atomic unsigned fx_threads;
static struct {
    dev_t dev;
    ino_t ino;
} fx_skip[IPCP_FX_MAX_SKIP];
static int fx_nskip;

static void fx_on_signal(int sig)
{
    (void)sig; /* there to interrupt blocking calls */
    atomic_fetch_add_explicit(&fx->signals, 1, memory_order_relaxed);
}

static uint64_t env_u64(const char *name)
{
    const char *v = getenv(name);
    return v ? strtoull(v, NULL, 10) : 0;
}

/* The page behind IPCP_FX_ENV_FD, when that fd is still ipcproof's memfd. */
static struct ipcp_fx_page *fx_map(void)
{
    const char *v = getenv(IPCP_FX_ENV_FD);
    if (v == NULL) return NULL;
    int fd = atoi(v);
    char link[64], target[128];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (fd < 3 || n <= 0) return NULL;
    target[n] = '\0';
    if (strncmp(target, "/memfd:" IPCP_FX_MEMFD, strlen("/memfd:" IPCP_FX_MEMFD)) != 0) return NULL;
    void *p = mmap(NULL, sizeof(struct ipcp_fx_page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return NULL;
    if (((struct ipcp_fx_page *)p)->magic != IPCP_FX_MAGIC) {
        munmap(p, sizeof(struct ipcp_fx_page));
        return NULL;
    }
    return p;
}

static void fx_init(void)
{
    struct ipcp_fx_page *p = fx_map();
    if (p == NULL) return;
    unsigned long long rate = env_u64(IPCP_FX_ENV_RATE);
    fx_rate = rate > 1000000u ? 1000000u : (unsigned)rate;
    fx_seed = env_u64(IPCP_FX_ENV_SEED);
    const char *s = getenv(IPCP_FX_ENV_SKIP);
    while (s != NULL && *s && fx_nskip < IPCP_FX_MAX_SKIP) {
        unsigned long long dev, ino;
        if (sscanf(s, "%llu:%llu", &dev, &ino) != 2) break;
        fx_skip[fx_nskip].dev = (dev_t)dev;
        fx_skip[fx_nskip].ino = (ino_t)ino;
        fx_nskip++;
        s = strchr(s, ',');
        if (s) s++;
    }
    fx = p;
    fx_image = atomic_fetch_add_explicit(&fx->images, 1, memory_order_relaxed);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fx_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking call the signal interrupts fails with EINTR */
    sigaction(IPCP_FX_SIGNAL, &sa, NULL);
}

/* Program mode: every thread arms itself on its first wrapped call. */
static void fx_arm_thread(void)
{
    tl_program_armed = 1;
    unsigned t = atomic_fetch_add_explicit(&fx_threads, 1, memory_order_relaxed);
    tl_rng = fx_seed ^ (fx_image << 40) ^ ((uint64_t)t << 20) ^ 0x70726f67ull;
    tl_rate = fx_rate;
}

/* A signal could interrupt this thread now: the handler is still ours, without SA_RESTART, and
 * the signal is not blocked here. Only then can the kernel return EINTR (or cut a blocking write
 * short) - the program never sees what no kernel would do to it. */
static int fx_signal_could_interrupt(void)
{
    struct sigaction cur;
    sigset_t mask;
    if (sigaction(IPCP_FX_SIGNAL, NULL, &cur) != 0 || cur.sa_handler != fx_on_signal ||
        (cur.sa_flags & SA_RESTART))
        return 0;
    return pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 && !sigismember(&mask, IPCP_FX_SIGNAL);
}

/* The program's own pipes, FIFOs and sockets; never a contract pipe with ipcproof. */
static int fx_target(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) return 0;
    for (int i = 0; i < fx_nskip; i++)
        if (fx_skip[i].dev == st.st_dev && fx_skip[i].ino == st.st_ino) return 0;
    return 1;
}

__attribute__((constructor)) static void faults_init(void)
{
    for (int i = 0; i < 9; i++)
        real(i);
    atomic_store_explicit(&fn_recv_chk, dlsym(RTLD_NEXT, "__recv_chk"), memory_order_relaxed);
    fx_init();
}

/* ---- what may be done to a call -------------------------------------------------------------- */

enum fault { F_NONE, F_EINTR, F_EAGAIN, F_SHORT };

static int stream_socket(int fd)
{
    int type = 0;
    socklen_t len = sizeof(type);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

static int may_shorten(int fd, size_t n, int is_write)
{
    struct stat st;
    if (n < 2 || fstat(fd, &st) != 0) return 0;
    if (S_ISSOCK(st.st_mode)) return stream_socket(fd);
    if (S_ISFIFO(st.st_mode)) return !is_write || n > PIPE_BUF;
    return 0;
}

/* Program mode: whether the kernel could do f to this call of the program. */
static int fx_possible(enum fault f, int fd, int is_write, int dontwait)
{
    if (!fx_target(fd)) return 0;
    if (f == F_EINTR) return fx_signal_could_interrupt();
    if (f == F_SHORT && is_write && !dontwait && !(fcntl(fd, F_GETFL) & O_NONBLOCK))
        return fx_signal_could_interrupt(); /* a blocking write stops short only for a signal */
    return 1;
}

static enum fault decide(int fd, size_t n, int is_write, int dontwait)
{
    if (fx != NULL && !tl_program_armed) fx_arm_thread();
    if (tl_rate == 0) return F_NONE;
    uint64_t r = next_rand();
    if (r % 1000000u >= tl_rate) return F_NONE;
    int saved = errno;
    enum fault f = F_EINTR;
    switch ((r >> 32) % 3u) {
    case 1:
        if (dontwait || (fcntl(fd, F_GETFL) & O_NONBLOCK)) f = F_EAGAIN;
        break;
    case 2:
        if (may_shorten(fd, n, is_write)) f = F_SHORT;
        break;
    default:
        break;
    }
    if (fx != NULL && !fx_possible(f, fd, is_write, dontwait)) f = F_NONE;
    errno = saved;
    if (f == F_NONE) return F_NONE;
    tl_injected++;
    if (fx != NULL) atomic_fetch_add_explicit(&fx->injected, 1, memory_order_relaxed);
    return f;
}

static size_t short_len(size_t n)
{
    return 1 + (size_t)(next_rand() % (n - 1)); /* 1 .. n-1 */
}

static ssize_t fail(enum fault f)
{
    errno = f == F_EAGAIN ? EAGAIN : EINTR;
    return -1;
}

/* Copies at most 64 iovecs holding the first `want` bytes; returns the count, or -1. */
static int cut_iov(const struct iovec *iov, int cnt, size_t want, struct iovec *out)
{
    int k = 0;
    for (int i = 0; i < cnt && want > 0; i++) {
        if (k == 64) return -1;
        out[k] = iov[i];
        if (out[k].iov_len > want) out[k].iov_len = want;
        want -= out[k].iov_len;
        k++;
    }
    return k;
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t t = 0;
    for (int i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

/* ---- the wrappers ---------------------------------------------------------------------------- */

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    enum fault f = decide(fd, n, 0, 0);
    if (f == F_EINTR || f == F_EAGAIN) return fail(f);
    return ((read_fn)real(0))(fd, buf, f == F_SHORT ? short_len(n) : n);
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    enum fault f = decide(fd, n, 0, 0);
    if (f == F_EINTR || f == F_EAGAIN) return fail(f);
    return ((read_chk_fn)real(8))(fd, buf, f == F_SHORT ? short_len(n) : n, buflen);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    enum fault f = decide(fd, n, 1, 0);
    if (f == F_EINTR || f == F_EAGAIN) return fail(f);
    return ((write_fn)real(1))(fd, buf, f == F_SHORT ? short_len(n) : n);
}

static ssize_t vec_io(int idx, int fd, const struct iovec *iov, int cnt, int is_write)
{
    size_t total = iov_total(iov, cnt);
    enum fault f = decide(fd, total, is_write, 0);
    if (f == F_EINTR || f == F_EAGAIN) return fail(f);
    if (f == F_SHORT) {
        struct iovec cut[64];
        int k = cut_iov(iov, cnt, short_len(total), cut);
        if (k > 0) return ((readv_fn)real(idx))(fd, cut, k);
    }
    return ((readv_fn)real(idx))(fd, iov, cnt); /* readv and writev have the same signature */
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    return vec_io(2, fd, iov, cnt, 0);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    return vec_io(3, fd, iov, cnt, 1);
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    enum fault f = decide(fd, n, 1, flags & MSG_DONTWAIT);
    if (f == F_EINTR || f == F_EAGAIN) return fail(f);
    return ((send_fn)real(4))(fd, buf, f == F_SHORT ? short_len(n) : n, flags);
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    enum fault f = decide(fd, n, 0, flags & MSG_DONTWAIT);
    if (f == F_EINTR || f == F_EAGAIN) return fail(f);
    return ((recv_fn)real(5))(fd, buf, f == F_SHORT ? short_len(n) : n, flags);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    enum fault f = decide(fd, n, 0, flags & MSG_DONTWAIT);
    if (f == F_EINTR || f == F_EAGAIN) return fail(f);
    recv_chk_fn fn = (recv_chk_fn)atomic_load_explicit(&fn_recv_chk, memory_order_relaxed);
    if (fn == NULL) return ((recv_fn)real(5))(fd, buf, f == F_SHORT ? short_len(n) : n, flags);
    return fn(fd, buf, f == F_SHORT ? short_len(n) : n, buflen, flags);
}

static ssize_t msg_io(int idx, int fd, struct msghdr *msg, int flags, int is_write)
{
    size_t total = iov_total(msg->msg_iov, (int)msg->msg_iovlen);
    enum fault f = decide(fd, total, is_write, flags & MSG_DONTWAIT);
    if (f == F_EINTR || f == F_EAGAIN) return fail(f);
    if (f == F_SHORT && msg->msg_controllen == 0) { /* never split ancillary data from its bytes */
        struct iovec cut[64];
        int k = cut_iov(msg->msg_iov, (int)msg->msg_iovlen, short_len(total), cut);
        if (k > 0) {
            struct msghdr m = *msg;
            m.msg_iov = cut;
            m.msg_iovlen = (size_t)k;
            if (is_write) return ((sendmsg_fn)real(idx))(fd, &m, flags);
            ssize_t r = ((recvmsg_fn)real(idx))(fd, &m, flags);
            msg->msg_flags = m.msg_flags;
            return r;
        }
    }
    if (is_write) return ((sendmsg_fn)real(idx))(fd, msg, flags);
    return ((recvmsg_fn)real(idx))(fd, msg, flags);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return msg_io(6, fd, (struct msghdr *)msg, flags, 1);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    return msg_io(7, fd, msg, flags, 0);
}

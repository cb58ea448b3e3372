/* faults.c - libipcproof-faults.so, the short-io interposer of `ipcproof stress --fault short-io`.
 *
 * Preloaded (LD_PRELOAD) into the ipcproof process, it wraps read, write, readv, writev, send,
 * recv, sendmsg and recvmsg (and the _FORTIFY_SOURCE variants __read_chk, __recv_chk) and, at a
 * seeded rate, makes a call on a pipe, FIFO or socket do what the kernel could do to it right
 * then and a careless protocol does not expect - never what no kernel would do, so that a
 * protocol that relies on what POSIX and Linux promise is never failed for it (possible()):
 *
 *   EINTR   the call fails before transferring anything, as if a signal arrived first: only a
 *           blocking call that would sleep now (a read with nothing there, a write to a pipe
 *           or socket without the room for it: a call that does not sleep is not interrupted),
 *           and only while a signal handler without SA_RESTART is installed and
 *           the signal not blocked in the calling thread (otherwise the kernel restarts the call
 *           or the signal kills);
 *   EAGAIN  a non-blocking send or write to a socket fails as if its buffer were full (socket
 *           memory is accounted, so that can happen at any time); never on a pipe or FIFO (a
 *           write that fits does not fail) and never on a read (data that is there is returned);
 *   short   the call transfers fewer bytes than asked (at least one): a read from TCP (which
 *           segments any write), or from a pipe, FIFO or unix stream socket asking for more than
 *           PIPE_BUF bytes (smaller writes arrive whole, and POSIX returns all that was asked
 *           when it is there: a read of one such record is never cut); a write to a stream
 *           socket, or to a pipe or FIFO above PIPE_BUF bytes (smaller pipe writes are atomic) -
 *           a blocking one only when it would sleep after a part (a pipe or socket without the
 *           room for all of it) and a signal could interrupt it. Packet sockets are never shortened
 * (a short packet read truncates the packet).
 *
 * It is disarmed by default: only a thread that called ipcproof_faults_arm() with a non-zero
 * rate sees faults (the arming is thread-local), so the supervisor's own I/O, the signal storm
 * thread and everything before the start barrier stay untouched. The random stream of each
 * armed thread derives from the seed it was armed with. The real functions are found with
 * dlsym(RTLD_NEXT); under a sanitizer the sanitizer's interceptors call into these wrappers,
 * which call libc.
 *
 * Program mode (faults.h): preloaded into an exec endpoint's program, with IPCP_FX_ENV_FD set,
 * it arms every thread of the program itself, and follows the same rules; its faults never go to
 * the contract pipes with ipcproof, and the signal that could interrupt a call is its own
 * IPCP_FX_SIGNAL (no SA_RESTART), while its handler is installed and not blocked. */
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
#include <linux/sockios.h>
#include <sys/ioctl.h>
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
enum fdkind { FD_OTHER, FD_PIPE, FD_UNIX_STREAM, FD_TCP, FD_PACKET };

static enum fdkind fd_kind(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return FD_OTHER;
    if (S_ISFIFO(st.st_mode)) return FD_PIPE;
    if (!S_ISSOCK(st.st_mode)) return FD_OTHER;
    int type = 0, domain = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return FD_OTHER;
    if (type != SOCK_STREAM) return FD_PACKET;
    len = sizeof(domain);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return FD_OTHER;
    return domain == AF_UNIX ? FD_UNIX_STREAM : FD_TCP;
}

/* Plugin mode: could a signal interrupt a blocking call of this thread now? Some handler of an
 * asynchronous signal without SA_RESTART is installed and its signal is not blocked here (the
 * `signals` fault installs one; a protocol may install its own). */
static int any_signal_could_interrupt(void)
{
    sigset_t mask;
    if (pthread_sigmask(SIG_BLOCK, NULL, &mask) != 0) return 0;
    for (int s = 1; s < NSIG; s++) {
        struct sigaction cur;
        /* the synchronous ones come from the faulting instruction itself (and ipcproof's own
           crash handlers catch them), never while a thread sleeps in a call */
        if (s == SIGKILL || s == SIGSTOP || s == SIGSEGV || s == SIGBUS || s == SIGFPE ||
            s == SIGILL || s == SIGTRAP || s == SIGSYS || s == SIGABRT ||
            sigaction(s, NULL, &cur) != 0)
            continue;
        if (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN) continue;
        if (!(cur.sa_flags & SA_RESTART) && !sigismember(&mask, s)) return 1;
    }
    return 0;
}

/* What is known of a call: the kind of its fd, whether it may sleep, whether a signal could
 * interrupt it, what the fd holds or has room for. */
struct call {
    enum fdkind kind;
    int blocking, signal_could, is_write;
    size_t n;
    size_t queued; /* bytes there to read (SIZE_MAX: unknown) */
    size_t room;   /* bytes a write surely finds room for (SIZE_MAX: unknown) */
};

/* Fills queued and room: only a call that sleeps is interrupted by a signal, and a read sleeps
 * only when nothing is there, a write only when its fd lacks the room. Room by bytes overstates
 * a pipe's (its buffers are pages), which only ever means fewer faults. A socket's send buffer
 * is counted in the memory of its packets (SIOCOUTQ against SO_SNDBUF), and a packet of n bytes
 * takes more than n: its room is estimated low (half of what is left, less a page), so that a
 * write is called sleep-free only when it surely is. */
static void measure(int fd, struct call *c)
{
    int q = 0;
    c->queued = c->room = SIZE_MAX;
    if (ioctl(fd, FIONREAD, &q) == 0 && q >= 0) c->queued = (size_t)q;
    if (c->kind == FD_PIPE && c->queued != SIZE_MAX) {
        int cap = fcntl(fd, F_GETPIPE_SZ);
        if (cap > 0) c->room = c->queued >= (size_t)cap ? 0 : (size_t)cap - c->queued;
    } else if (c->is_write && c->kind != FD_PIPE && c->kind != FD_OTHER) {
        int outq = 0, sndbuf = 0;
        socklen_t len = sizeof(sndbuf);
        if (ioctl(fd, SIOCOUTQ, &outq) == 0 && outq >= 0 &&
            getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 && sndbuf > 0) {
            long left = (long)sndbuf - 2L * outq - 4096;
            c->room = left > 0 ? (size_t)left / 2 : 0;
        }
    }
}

/* Would this blocking call sleep now, for all of it (EINTR) or after a part (a short count)? */
static int sleeps_at_once(const struct call *c)
{
    if (!c->is_write) return c->queued == 0 || c->queued == SIZE_MAX;
    if (c->room == SIZE_MAX) return 1;
    if (c->kind != FD_PIPE) return c->room < c->n; /* a socket: its room is a low estimate */
    return c->n <= PIPE_BUF ? c->room < c->n : c->room == 0;
}

static int sleeps_midway(const struct call *c)
{
    if (c->room == SIZE_MAX) return 1;
    return c->room < c->n && (c->kind != FD_PIPE || c->n > PIPE_BUF);
}

/* Whether the kernel could do f to this call right now (the rules at the top of this file). */
static int possible(enum fault f, const struct call *c)
{
    switch (f) {
    case F_EINTR:
        return c->signal_could && sleeps_at_once(c);
    case F_EAGAIN:
        return !c->blocking && c->is_write && c->kind != FD_PIPE;
    case F_SHORT:
        if (c->n < 2 || c->kind == FD_PACKET) return 0;
        if (c->is_write) {
            if (c->kind == FD_PIPE && c->n <= PIPE_BUF) return 0;
            return c->blocking ? c->signal_could && sleeps_midway(c) : 1;
        }
        return c->kind == FD_TCP || c->n > PIPE_BUF;
    default:
        return 0;
    }
}

static enum fault decide(int fd, size_t n, int is_write, int dontwait)
{
    if (fx != NULL && !tl_program_armed) fx_arm_thread();
    if (tl_rate == 0) return F_NONE;
    uint64_t r = next_rand();
    if (r % 1000000u >= tl_rate) return F_NONE;
    int saved = errno;
    /* one of the three, drawn; then the first that the kernel could do, from the drawn one on */
    static const enum fault order[3] = {F_EINTR, F_EAGAIN, F_SHORT};
    enum fault f = F_NONE;
    struct call c = {.kind = fd_kind(fd), .is_write = is_write, .n = n};
    if (c.kind != FD_OTHER && (fx == NULL || fx_target(fd))) {
        c.blocking = !dontwait && !(fcntl(fd, F_GETFL) & O_NONBLOCK);
        c.signal_could =
            c.blocking && (fx != NULL ? fx_signal_could_interrupt() : any_signal_could_interrupt());
        if (c.signal_could) measure(fd, &c);
        for (unsigned k = 0, first = (unsigned)((r >> 32) % 3u); k < 3 && f == F_NONE; k++)
            if (possible(order[(first + k) % 3], &c)) f = order[(first + k) % 3];
    }
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

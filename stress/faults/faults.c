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
 * which call libc. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static _Thread_local unsigned tl_rate; /* faults per million calls; 0 = disarmed */
static _Thread_local uint64_t tl_rng;
static _Thread_local uint64_t tl_injected;

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
    uint64_t x = (tl_rng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
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

__attribute__((constructor)) static void faults_init(void)
{
    for (int i = 0; i < 9; i++)
        real(i);
    atomic_store_explicit(&fn_recv_chk, dlsym(RTLD_NEXT, "__recv_chk"), memory_order_relaxed);
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

static enum fault decide(int fd, size_t n, int is_write, int dontwait)
{
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
    errno = saved;
    tl_injected++;
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

/* xport.c - fd creation for the frame transports; see xport.h.
 *
 * The files made here (FIFOs, unix socket files) are mode 0600 and recorded in the registry
 * (registry.h) as "path" lines, so `ipcproof clean` finds them after their creator was killed;
 * the caller still unlinks them. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "os.h"
#include "ipcproof/registry.h"
#include "ipcproof/xport.h"

int ipcp_xport_pipe(int fds[2], size_t pipe_size)
{
    if (pipe2(fds, O_CLOEXEC) < 0) return -errno;
    if (pipe_size > 0 && pipe_size <= INT32_MAX) (void)fcntl(fds[1], F_SETPIPE_SZ, (int)pipe_size);
    return 0;
}

int ipcp_xport_fifo_create(const char *path)
{
    if (mkfifo(path, 0600) < 0) return -errno;
    (void)ipcp_registry_add("path", path); /* best effort */
    return 0;
}

int ipcp_xport_remove(const char *path)
{
    int rc = unlink(path) < 0 ? -errno : 0;
    (void)ipcp_registry_remove("path", path);
    return rc;
}

int ipcp_xport_fifo_open_reader(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int ipcp_xport_fifo_open_writer(const char *path, int timeout_ms)
{
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    for (;;) {
        int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) return fd;
        if (errno != ENXIO && errno != EINTR) return -errno;
        /* No reader yet: Linux offers no event for "a reader opened", so poll the open. */
        if (ipcp__deadline_left_ms(&dl) == 0) return -ETIMEDOUT;
        nap_ms(1);
    }
}

static int set_sndbuf(int fd, int sndbuf)
{
    if (sndbuf <= 0) return 0;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0) return -errno;
    return 0;
}

int ipcp_xport_unix_pair(int type, int fds[2], int sndbuf)
{
    if (type != SOCK_STREAM && type != SOCK_SEQPACKET) return -EINVAL;
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) < 0) return -errno;
    int rc = set_sndbuf(fds[0], sndbuf);
    if (rc == 0) rc = set_sndbuf(fds[1], sndbuf);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
    }
    return rc;
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) return -ENAMETOOLONG;
    strcpy(sa->sun_path, path);
    return 0;
}

int ipcp_xport_unix_listen(const char *path, int type)
{
    struct sockaddr_un sa;
    int rc = unix_addr(path, &sa);
    if (rc < 0) return rc;
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    /* bind() gives the socket file 0777 & ~umask. Nobody can connect before listen(), so
     * narrowing it to 0600 in between leaves no window (umask is process-wide: not that). */
    if (chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
        rc = -errno;
        close(fd);
        unlink(path); /* bound by us a moment ago */
        return rc;
    }
    (void)ipcp_registry_add("path", path); /* best effort */
    return fd;
}

/* Non-blocking connect with a deadline, then back to blocking mode. */
static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
    int rc = 0;
    if (connect(fd, sa, len) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) return -errno;
        struct ipcp_deadline dl;
        ipcp__deadline_init(&dl, timeout_ms);
        int pr = ipcp__os_poll_until(fd, POLLOUT, &dl);
        if (pr < 0) return pr;
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) return -errno;
        rc = -err;
    }
    if (rc == 0 && fcntl(fd, F_SETFL, fl) < 0) rc = -errno;
    return rc;
}

int ipcp_xport_unix_connect(const char *path, int type, int timeout_ms)
{
    struct sockaddr_un sa;
    int rc = unix_addr(path, &sa);
    if (rc < 0) return rc;
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    rc = connect_timeout(fd, (struct sockaddr *)&sa, sizeof(sa), timeout_ms);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int ipcp_xport_tcp_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(*port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static void tcp_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int ipcp_xport_tcp_connect(uint16_t port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect_timeout(fd, (struct sockaddr *)&sa, sizeof(sa), timeout_ms);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    tcp_nodelay(fd);
    return fd;
}

int ipcp_xport_accept(int lfd, int timeout_ms)
{
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    for (;;) {
        int pr = ipcp__os_poll_until(lfd, POLLIN, &dl);
        if (pr < 0) return pr;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
            return -errno;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET)
            tcp_nodelay(fd);
        return fd;
    }
}

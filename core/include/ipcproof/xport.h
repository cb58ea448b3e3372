/* xport.h - creating the fds that fdchan.h carries frames over: pipes, FIFOs, AF_UNIX stream
 * and seqpacket sockets, TCP on 127.0.0.1. Every fd is O_CLOEXEC; every wait has a timeout.
 * Returns are 0 / an fd >= 0, or -errno. */
#ifndef IPCPROOF_XPORT_H
#define IPCPROOF_XPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

/* pipe2(O_CLOEXEC); pipe_size > 0 asks F_SETPIPE_SZ for that capacity (best effort: the
 * granted size is what /proc/sys/fs/pipe-max-size allows). */
int ipcp_xport_pipe(int fds[2], size_t pipe_size);

/* mkfifo(path, 0600); -EEXIST if anything is at path. The caller removes it with
 * ipcp_xport_remove(). */
int ipcp_xport_fifo_create(const char *path);
/* unlink(path) of a FIFO or socket file made here, and its registry line with it. 0 or -errno. */
int ipcp_xport_remove(const char *path);
/* Opens the reading end without waiting for a writer. */
int ipcp_xport_fifo_open_reader(const char *path);
/* Opens the writing end, waiting up to timeout_ms for a reader (ENXIO until then). */
int ipcp_xport_fifo_open_writer(const char *path, int timeout_ms);

/* socketpair(AF_UNIX, type) with type SOCK_STREAM or SOCK_SEQPACKET; sndbuf > 0 raises
 * SO_SNDBUF (seqpacket packets must fit in it). */
int ipcp_xport_unix_pair(int type, int fds[2], int sndbuf);
/* A listening AF_UNIX socket bound at path, mode 0600 (the caller removes path with
 * ipcp_xport_remove()). */
int ipcp_xport_unix_listen(const char *path, int type);
int ipcp_xport_unix_connect(const char *path, int type, int timeout_ms);

/* A TCP listener on 127.0.0.1; *port receives the port (pass 0 to let the kernel choose). */
int ipcp_xport_tcp_listen(uint16_t *port);
int ipcp_xport_tcp_connect(uint16_t port, int timeout_ms);

/* accept4(O_CLOEXEC) with a timeout, for either listener kind. TCP sockets get TCP_NODELAY. */
int ipcp_xport_accept(int lfd, int timeout_ms);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

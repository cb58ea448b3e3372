/* consumer.c - uses the installed headers and library: one frame through a pipe. */
#include <ipcproof/err.h>
#include <ipcproof/fdchan.h>
#include <ipcproof/xport.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    int fds[2];
    if (ipcp_xport_pipe(fds, 0) != 0) return 1;
    struct ipcp_fdchan_cfg cfg = {.kind = IPCP_FDCHAN_STREAM, .flags = IPCP_FDCHAN_OWN_FDS};
    struct ipcp_fdchan *r, *w;
    if (ipcp_fdchan_open(&r, fds[0], -1, &cfg) || ipcp_fdchan_open(&w, -1, fds[1], &cfg)) return 1;
    char buf[16];
    int rc = ipcp_fdchan_send(w, 1, "installed", 9, 1000);
    ssize_t n = ipcp_fdchan_recv(r, NULL, buf, sizeof(buf), 1000);
    printf("send: %s, recv: %zd\n", ipcp_strerror(rc), n);
    ipcp_fdchan_close(w, 0);
    ipcp_fdchan_close(r, 0);
    return rc == 0 && n == 9 && memcmp(buf, "installed", 9) == 0 ? 0 : 1;
}

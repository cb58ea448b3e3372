/* capture.h - the output of the protocol's processes, kept bounded in the supervisor.
 *
 * The protocol host and every endpoint write their stdout and stderr into one pipe that the
 * supervisor drains while it watches the case. Only the last ST_CAPTURE_MAX bytes are kept (a
 * plugin that floods its output costs neither memory nor disk), and the text is shown only for
 * a failing case. Sanitizer reports are parsed out of it (sanrep.h). */
#ifndef IPCP_STRESS_CAPTURE_H
#define IPCP_STRESS_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#define ST_CAPTURE_MAX (64u << 10)

struct st_capture {
    int rd, wr;     /* the pipe; wr goes to the children (-1 once closed here) */
    char *ring;     /* ST_CAPTURE_MAX bytes */
    size_t head;    /* next write position */
    uint64_t total; /* bytes ever read */
};

/* Returns 0 or -errno. The read end is non-blocking and close-on-exec. */
int st_capture_open(struct st_capture *c);
/* Closes the write end in the supervisor (after the children got it). */
void st_capture_close_wr(struct st_capture *c);
/* Reads what is there without blocking, at most `budget` bytes (0 = 1 MiB). Returns bytes read;
 * 0 also at EOF. */
size_t st_capture_pump(struct st_capture *c, size_t budget);
/* The kept text, oldest first, NUL-terminated, in a malloc()ed buffer; *dropped = bytes that
 * were discarded before it. NULL when nothing was captured. */
char *st_capture_text(const struct st_capture *c, uint64_t *dropped);
void st_capture_free(struct st_capture *c);

#endif

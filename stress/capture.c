/* capture.c - bounded capture of the protocol's output; see capture.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"

int st_capture_open(struct st_capture *c)
{
    memset(c, 0, sizeof(*c));
    c->rd = c->wr = -1;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -errno;
    c->ring = malloc(ST_CAPTURE_MAX);
    if (c->ring == NULL) {
        close(p[0]);
        close(p[1]);
        return -ENOMEM;
    }
    (void)fcntl(p[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(p[0], F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups for a chatty plugin */
    c->rd = p[0];
    c->wr = p[1];
    return 0;
}

void st_capture_close_wr(struct st_capture *c)
{
    if (c->wr >= 0) close(c->wr);
    c->wr = -1;
}

size_t st_capture_pump(struct st_capture *c, size_t budget)
{
    if (c->rd < 0) return 0;
    if (budget == 0) budget = 1u << 20;
    size_t got = 0;
    char buf[16384];
    while (got < budget) {
        ssize_t n = read(c->rd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n;) {
            size_t room = ST_CAPTURE_MAX - c->head, k = (size_t)(n - i);
            if (k > room) k = room;
            memcpy(c->ring + c->head, buf + i, k);
            c->head = (c->head + k) % ST_CAPTURE_MAX;
            i += (ssize_t)k;
        }
        c->total += (uint64_t)n;
        got += (size_t)n;
    }
    return got;
}

char *st_capture_text(const struct st_capture *c, uint64_t *dropped)
{
    *dropped = 0;
    if (c->ring == NULL || c->total == 0) return NULL;
    size_t kept = c->total < ST_CAPTURE_MAX ? (size_t)c->total : ST_CAPTURE_MAX;
    char *t = malloc(kept + 1);
    if (t == NULL) return NULL;
    if (c->total <= ST_CAPTURE_MAX) {
        memcpy(t, c->ring, kept);
    } else {
        size_t first = ST_CAPTURE_MAX - c->head;
        memcpy(t, c->ring + c->head, first);
        memcpy(t + first, c->ring, c->head);
        *dropped = c->total - ST_CAPTURE_MAX;
    }
    t[kept] = '\0';
    for (size_t i = 0; i < kept; i++) { /* the report is ASCII text (JSON needs valid UTF-8) */
        unsigned char ch = (unsigned char)t[i];
        if (ch >= 0x7f || (ch < 0x20 && ch != '\n' && ch != '\t')) t[i] = '?';
    }
    return t;
}

void st_capture_free(struct st_capture *c)
{
    if (c->rd >= 0) close(c->rd);
    st_capture_close_wr(c);
    free(c->ring);
    memset(c, 0, sizeof(*c));
    c->rd = c->wr = -1;
}

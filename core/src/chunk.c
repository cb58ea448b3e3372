/* chunk.c - reassembly of chunked messages; see chunk.h. Pure computation over caller memory. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipcproof/chunk.h"
#include "ipcproof/err.h"

int ipcp_reasm_init(struct ipcp_reasm *r, size_t max_msg)
{
    memset(r, 0, sizeof(*r));
    if (max_msg == 0 || max_msg > SIZE_MAX / 2) return -EINVAL;
    r->max_msg = max_msg;
    return 0;
}

void ipcp_reasm_fini(struct ipcp_reasm *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

void ipcp_reasm_reset(struct ipcp_reasm *r)
{
    r->active = 0;
    r->done = 0;
    r->have = 0;
    r->total = 0;
}

static int reasm_reserve(struct ipcp_reasm *r, size_t total)
{
    if (total <= r->cap) return 0;
    /* total was checked against max_msg by the caller: the allocation is bounded. */
    size_t ncap = r->cap ? r->cap : 256;
    while (ncap < total)
        ncap = ncap > r->max_msg / 2 ? r->max_msg : ncap * 2;
    /* Called for a new message only: nothing in the buffer is kept. Large buffers start on a
     * page, as chunks may be received straight into them and the kernel copies to a buffer a
     * few bytes past a page boundary much slower (see frame.c). */
    void *nb = NULL;
    if (posix_memalign(&nb, ncap >= 4096 ? 4096 : 64, ncap) != 0) return -ENOMEM;
    free(r->buf);
    r->buf = nb;
    r->cap = ncap;
    return 0;
}

int ipcp_reasm_feed(struct ipcp_reasm *r, unsigned flags, uint64_t seq, uint64_t total,
                    const void *data, size_t len)
{
    r->done = 0;
    if (flags & ~IPCP_CHUNK_WHOLE) {
        ipcp_reasm_reset(r);
        return -IPCP_E_FRAGMENT;
    }
    if (flags & IPCP_CHUNK_FIRST) {
        /* A FIRST in the middle of a message: the sender gave that one up (e.g. its send timed
         * out half-way); it is dropped and counted, and the new one starts. */
        if (r->active) r->abandoned++;
        ipcp_reasm_reset(r);
        if (total > r->max_msg) return -IPCP_E_TOOBIG;
        int rc = reasm_reserve(r, (size_t)total);
        if (rc < 0) return rc;
        r->total = (size_t)total;
        r->seq = seq;
        r->active = 1;
    } else if (!r->active || seq != r->seq || total != r->total) {
        ipcp_reasm_reset(r);
        return -IPCP_E_FRAGMENT;
    }
    if (len > r->total - r->have) { /* more bytes than the declared total */
        ipcp_reasm_reset(r);
        return -IPCP_E_FRAGMENT;
    }
    /* Data received in place (ipcp_reasm_next) is already there. */
    if (len > 0 && data != r->buf + r->have) memcpy(r->buf + r->have, data, len);
    r->have += len;
    if (flags & IPCP_CHUNK_LAST) {
        if (r->have != r->total) { /* LAST too early */
            ipcp_reasm_reset(r);
            return -IPCP_E_FRAGMENT;
        }
        r->active = 0;
        r->done = 1;
        return 1;
    }
    return 0;
}

void *ipcp_reasm_next(struct ipcp_reasm *r, size_t *n)
{
    *n = 0;
    if (!r->active || r->buf == NULL) return NULL;
    *n = r->total - r->have;
    return r->buf + r->have;
}

const void *ipcp_reasm_message(const struct ipcp_reasm *r, size_t *len, uint64_t *seq)
{
    if (!r->done) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = r->total;
    if (seq) *seq = r->seq;
    return r->buf != NULL ? r->buf : (const void *)"";
}

int ipcp_reasm_valid(const struct ipcp_reasm *r)
{
    if (r->max_msg == 0) return 0;
    if (r->cap > r->max_msg && r->cap > 256) return 0;
    if (r->have > r->total || r->total > r->max_msg) return 0;
    if ((r->active || r->done) && r->total > r->cap && r->total > 0) return 0;
    if (r->active && r->done) return 0;
    return 1;
}

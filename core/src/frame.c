/* frame.c - frame encoder and incremental decoder; see frame.h. No syscalls in this file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
/* libxxhash's runtime dispatch picks AVX2/AVX-512 XXH3 where the CPU has it (2.5x SSE2 here). */
#include <xxh_x86dispatch.h>
#endif

#include "ipcproof/err.h"
#include "ipcproof/frame.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static size_t effective_max(size_t max_payload)
{
    return max_payload == 0 ? IPCP_FRAME_MAX_DEFAULT : max_payload;
}

static uint32_t header_sum(const uint8_t raw[IPCP_FRAME_HDR_SIZE])
{
    uint8_t tmp[IPCP_FRAME_HDR_SIZE];
    memcpy(tmp, raw, sizeof(tmp));
    memset(tmp + 28, 0, 4);
    return XXH32(tmp, sizeof(tmp), 0);
}

/* Checks h against the encoder's rules; 0 or the error ipcp_frame_encode returns. */
static long check_hdr(const struct ipcp_frame_hdr *h, const void *payload, size_t max_payload)
{
    size_t max = effective_max(max_payload);
    if ((h->flags & ~IPCP_FRAME_F_KNOWN) != 0) return -EINVAL;
    if (h->len > 0 && payload == NULL) return -EINVAL;
    if (h->total < h->len) return -EINVAL;
    if (h->len > max || h->len > IPCP_FRAME_MAX_HARD) return -IPCP_E_TOOBIG;
    return 0;
}

static void put_header(uint8_t p[IPCP_FRAME_HDR_SIZE], const struct ipcp_frame_hdr *h,
                       const void *payload)
{
    put32(p + 0, IPCP_FRAME_MAGIC);
    p[4] = IPCP_FRAME_VERSION;
    p[5] = h->flags;
    put16(p + 6, h->type);
    put64(p + 8, h->seq);
    put32(p + 16, h->len);
    put32(p + 20, h->writer);
    put32(p + 24, h->total);
    put32(p + 28, 0);
    put64(p + 32, (h->flags & IPCP_FRAME_F_NOSUM) ? 0 : XXH3_64bits(h->len ? payload : "", h->len));
    put32(p + 28, XXH32(p, IPCP_FRAME_HDR_SIZE, 0));
}

long ipcp_frame_encode(struct ipcp_frame_enc *e, const struct ipcp_frame_hdr *h,
                       const void *payload, size_t max_payload)
{
    long rc = check_hdr(h, payload, max_payload);
    if (rc < 0) return rc;
    put_header(e->hdr, h, payload);
    e->iov[0].iov_base = e->hdr;
    e->iov[0].iov_len = IPCP_FRAME_HDR_SIZE;
    e->iov[1].iov_base = (void *)(uintptr_t)payload;
    e->iov[1].iov_len = h->len;
    e->iovcnt = h->len ? 2 : 1;
    return (long)IPCP_FRAME_HDR_SIZE + (long)h->len;
}

long ipcp_frame_encode_into(void *dst, size_t cap, const struct ipcp_frame_hdr *h,
                            const void *payload, size_t max_payload)
{
    long rc = check_hdr(h, payload, max_payload);
    if (rc < 0) return rc;
    if (cap < IPCP_FRAME_HDR_SIZE || cap - IPCP_FRAME_HDR_SIZE < h->len) return -ENOSPC;
    uint8_t *p = dst;
    put_header(p, h, payload);
    if (h->len) memcpy(p + IPCP_FRAME_HDR_SIZE, payload, h->len);
    return (long)IPCP_FRAME_HDR_SIZE + (long)h->len;
}

int ipcp_frame_parse_header(const uint8_t raw[IPCP_FRAME_HDR_SIZE], size_t max_payload,
                            struct ipcp_frame_hdr *h)
{
    if (get32(raw) != IPCP_FRAME_MAGIC) return -IPCP_E_BADMAGIC;
    if (raw[4] != IPCP_FRAME_VERSION) return -IPCP_E_BADVERSION;
    if (get32(raw + 28) != header_sum(raw)) return -IPCP_E_HDRSUM;
    struct ipcp_frame_hdr v = {
        .version = raw[4],
        .flags = raw[5],
        .type = get16(raw + 6),
        .seq = get64(raw + 8),
        .len = get32(raw + 16),
        .writer = get32(raw + 20),
        .total = get32(raw + 24),
        .psum = get64(raw + 32),
    };
    if ((v.flags & ~IPCP_FRAME_F_KNOWN) != 0) return -EBADMSG; /* flags 0: a middle fragment */
    if (v.total < v.len) return -EBADMSG;
    /* A whole message in one frame carries exactly its total. */
    if ((v.flags & IPCP_FRAME_F_WHOLE) == IPCP_FRAME_F_WHOLE && v.total != v.len) return -EBADMSG;
    /* One encoding per frame: no checksum is written as 0. */
    if ((v.flags & IPCP_FRAME_F_NOSUM) && v.psum != 0) return -EBADMSG;
    size_t max = effective_max(max_payload);
    if (v.len > max || v.len > IPCP_FRAME_MAX_HARD) return -IPCP_E_TOOBIG;
    *h = v;
    return 0;
}

static int payload_ok(const struct ipcp_frame_hdr *h, const uint8_t *pl)
{
    return (h->flags & IPCP_FRAME_F_NOSUM) || XXH3_64bits(pl, h->len) == h->psum;
}

int ipcp_frame_check(const uint8_t hdr[IPCP_FRAME_HDR_SIZE], const void *payload, size_t n,
                     size_t max_payload, int allow_nosum, struct ipcp_frame *out)
{
    struct ipcp_frame_hdr h;
    int rc = ipcp_frame_parse_header(hdr, max_payload, &h);
    if (rc < 0) return rc;
    if ((h.flags & IPCP_FRAME_F_NOSUM) && !allow_nosum) return -IPCP_E_NOSUM;
    if (h.len > n) return -IPCP_E_TRUNCATED;
    if (h.len < n) return -EBADMSG;
    const uint8_t *pl = h.len ? payload : (const uint8_t *)"";
    if (!payload_ok(&h, pl)) return -IPCP_E_PAYSUM;
    out->hdr = h;
    out->payload = pl;
    return 1;
}

int ipcp_frame_decoder_init(struct ipcp_frame_decoder *d, size_t max_payload)
{
    memset(d, 0, sizeof(*d));
    size_t max = effective_max(max_payload);
    if (max > IPCP_FRAME_MAX_HARD) return -EINVAL;
    d->max_payload = max;
    d->state = IPCP_FRAME_D_HEADER;
    return 0;
}

void ipcp_frame_decoder_fini(struct ipcp_frame_decoder *d)
{
    free(d->payload);
    memset(d, 0, sizeof(*d));
}

void ipcp_frame_decoder_allow_nosum(struct ipcp_frame_decoder *d, int allow)
{
    d->allow_nosum = allow != 0;
}

void ipcp_frame_decoder_reset(struct ipcp_frame_decoder *d)
{
    d->state = IPCP_FRAME_D_HEADER;
    d->error = 0;
    d->raw_have = 0;
    d->payload_have = 0;
}

static int fail(struct ipcp_frame_decoder *d, int err)
{
    d->state = IPCP_FRAME_D_ERROR;
    d->error = err;
    return err;
}

/* The payload is complete: verify it and hand the frame out. */
static int finish(struct ipcp_frame_decoder *d, struct ipcp_frame *out)
{
    const uint8_t *pl = d->hdr.len ? d->payload : (const uint8_t *)"";
    if (!payload_ok(&d->hdr, pl)) return fail(d, -IPCP_E_PAYSUM);
    out->hdr = d->hdr;
    out->payload = pl;
    d->state = IPCP_FRAME_D_HEADER;
    d->raw_have = 0;
    d->payload_have = 0;
    d->frames++;
    return 1;
}

static int start_payload(struct ipcp_frame_decoder *d, struct ipcp_frame *out)
{
    int rc = ipcp_frame_parse_header(d->raw, d->max_payload, &d->hdr);
    if (rc < 0) return fail(d, rc);
    if ((d->hdr.flags & IPCP_FRAME_F_NOSUM) && !d->allow_nosum) return fail(d, -IPCP_E_NOSUM);
    /* hdr.len <= max_payload was checked above: the allocation is bounded by configuration. */
    if (d->hdr.len > d->payload_cap) {
        size_t ncap = d->payload_cap ? d->payload_cap : 4096;
        while (ncap < d->hdr.len)
            ncap = ncap > d->max_payload / 2 ? d->max_payload : ncap * 2;
        /* Page-aligned: the kernel copies into a buffer that starts a few bytes past a page
         * boundary up to 3x slower on some x86 machines, and the I/O layer reads payloads
         * straight into this one. Nothing in it is kept: the new frame starts empty. */
        void *nb = NULL;
        if (posix_memalign(&nb, 4096, ncap) != 0) return fail(d, -ENOMEM);
        free(d->payload);
        d->payload = nb;
        d->payload_cap = ncap;
    }
    d->payload_have = 0;
    d->state = IPCP_FRAME_D_PAYLOAD;
    if (d->hdr.len == 0) return finish(d, out);
    return -EAGAIN;
}

int ipcp_frame_decode(struct ipcp_frame_decoder *d, const void *buf, size_t len, size_t *consumed,
                      struct ipcp_frame *out)
{
    const uint8_t *in = buf;
    size_t used = 0;
    int rc = -EAGAIN;
    *consumed = 0;
    if (d->state == IPCP_FRAME_D_ERROR) return d->error;
    while (used < len) {
        if (d->state == IPCP_FRAME_D_HEADER) {
            size_t take = IPCP_FRAME_HDR_SIZE - d->raw_have;
            if (take > len - used) take = len - used;
            memcpy(d->raw + d->raw_have, in + used, take);
            d->raw_have += take;
            used += take;
            /* Reject a bad magic as soon as its 4 bytes are in: no need to wait for 40. */
            if (d->raw_have >= 4 && d->raw_have - take < 4 && get32(d->raw) != IPCP_FRAME_MAGIC) {
                rc = fail(d, -IPCP_E_BADMAGIC);
                break;
            }
            if (d->raw_have < IPCP_FRAME_HDR_SIZE) break;
            rc = start_payload(d, out);
            if (rc != -EAGAIN) break;
        } else { /* IPCP_FRAME_D_PAYLOAD */
            size_t take = d->hdr.len - d->payload_have;
            if (take > len - used) take = len - used;
            memcpy(d->payload + d->payload_have, in + used, take);
            d->payload_have += take;
            used += take;
            if (d->payload_have < d->hdr.len) {
                rc = -EAGAIN;
                break;
            }
            rc = finish(d, out);
            break;
        }
    }
    *consumed = used;
    return rc;
}

int ipcp_frame_decoder_space(struct ipcp_frame_decoder *d, void **ptr, size_t *n)
{
    if (d->state == IPCP_FRAME_D_ERROR) return d->error;
    if (d->state != IPCP_FRAME_D_PAYLOAD) return 0;
    *ptr = d->payload + d->payload_have;
    *n = d->hdr.len - d->payload_have;
    return 1;
}

int ipcp_frame_decoder_commit(struct ipcp_frame_decoder *d, size_t n, struct ipcp_frame *out)
{
    if (d->state == IPCP_FRAME_D_ERROR) return d->error;
    if (d->state != IPCP_FRAME_D_PAYLOAD || n > d->hdr.len - d->payload_have) return -EINVAL;
    d->payload_have += n;
    if (d->payload_have < d->hdr.len) return -EAGAIN;
    return finish(d, out);
}

int ipcp_frame_decoder_idle(const struct ipcp_frame_decoder *d)
{
    return d->state == IPCP_FRAME_D_HEADER && d->raw_have == 0;
}

int ipcp_frame_decoder_valid(const struct ipcp_frame_decoder *d)
{
    if (d->max_payload == 0 || d->max_payload > IPCP_FRAME_MAX_HARD) return 0;
    if (d->raw_have > IPCP_FRAME_HDR_SIZE) return 0;
    if (d->payload_cap > d->max_payload && d->payload_cap > 4096) return 0;
    switch (d->state) {
    case IPCP_FRAME_D_HEADER:
        return d->payload_have == 0 && d->raw_have < IPCP_FRAME_HDR_SIZE;
    case IPCP_FRAME_D_PAYLOAD:
        return d->raw_have == IPCP_FRAME_HDR_SIZE && d->hdr.len <= d->max_payload &&
               d->hdr.len <= d->payload_cap && d->payload_have < d->hdr.len;
    case IPCP_FRAME_D_ERROR:
        return d->error < 0;
    }
    return 0;
}

/* fuzz_frame_decode.c - arbitrary bytes through the incremental frame decoder (frame.h).
 *
 * Input: byte 0 configures the run, byte 1 seeds the split schedule (its bit 7 also lets the
 * decoder accept frames without payload checksum, IPCP_FRAME_F_NOSUM), the rest is the stream.
 *   cfg bits 0-1  max_payload: 40, 255, 4096 or 65536 bytes
 *   cfg bit  2    repair header checksums before decoding (so mutated lengths, flags and totals
 *                 get past XXH32 and reach the checks behind it)
 *   cfg bit  3    repair payload checksums (psum), then the header checksum covering them
 *   cfg bit  4    feed payloads through the zero-copy space/commit API
 *   cfg bit  5    after a stream error: reset the decoder and go on with the rest of the stream
 *   cfg bits 6-7  split mode: odd pieces from the seed (each one an odd size or, every other
 *                 time, the rest of the stream), one byte at a time, everything at once,
 *                 or piece sizes taken from the seed but never above 7 bytes (the byte-sized
 *                 modes for the first 24 pieces, then odd pieces; after 64 pieces the rest
 *                 goes in at once: bounded work per input)
 *
 * The stream is also walked by an independent reference reader written from the format table
 * in frame.h. For each frame position the two must agree:
 *   - a valid frame: the decoder returns 1 exactly when its last byte is consumed, with the same
 *     header fields and payload bytes, and re-encoding it (ipcp_frame_encode) gives back exactly
 *     the bytes the decoder consumed for it;
 *   - an invalid frame: the decoder fails with one of the errors that frame actually deserves
 *     (bad magic, version, header sum, flags/lengths, too big, no payload checksum where one is
 *     required, payload sum) once the fault is
 *     visible and without consuming bytes past the frame's header (its payload, for a payload
 *     sum); the error is sticky (decode, space and
 *     commit return it, consume nothing) until reset;
 *   - an incomplete tail: -EAGAIN with every byte consumed; idle() only at a frame boundary.
 * ipcp_frame_decoder_valid() holds after every call. No other return value is accepted (no
 * -ENOMEM: allocations are bounded by max_payload <= 64 KiB). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "fuzz_util.h"
#include "ipcproof/err.h"
#include "ipcproof/frame.h"

#define MAX_INPUT (1u << 20) /* larger inputs are rejected: work per input stays bounded */

static const size_t max_choices[4] = {40, 255, 4096, 65536};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t ref_hsum(const uint8_t *h)
{
    uint8_t tmp[IPCP_FRAME_HDR_SIZE];
    memcpy(tmp, h, sizeof(tmp));
    memset(tmp + 28, 0, 4);
    return XXH32(tmp, sizeof(tmp), 0);
}

/* What the reference reader says about the frame starting at `at`. */
enum ref_kind { REF_FRAME, REF_ERROR, REF_INCOMPLETE };
struct ref {
    enum ref_kind kind;
    size_t end;     /* REF_FRAME: one past its last byte; REF_ERROR: where the fault is visible */
    size_t last;    /* REF_ERROR: the decoder may consume up to here (the rest of the header) */
    int allowed[8]; /* REF_ERROR: every error this frame deserves */
    int nallowed;
    struct ipcp_frame_hdr hdr;
};

static void ref_allow(struct ref *r, int err)
{
    r->allowed[r->nallowed++] = err;
}

static struct ref ref_frame(const uint8_t *s, size_t n, size_t at, size_t max, int allow_nosum)
{
    struct ref r = {.kind = REF_INCOMPLETE};
    size_t avail = n - at;
    const uint8_t *h = s + at;
    if (avail < 4) return r;
    if (rd32(h) != IPCP_FRAME_MAGIC) {
        r.kind = REF_ERROR;
        r.end = at + 4;
        r.last = avail < IPCP_FRAME_HDR_SIZE ? n : at + IPCP_FRAME_HDR_SIZE;
        ref_allow(&r, -IPCP_E_BADMAGIC);
        return r;
    }
    if (avail < IPCP_FRAME_HDR_SIZE) return r;
    r.hdr.version = h[4];
    r.hdr.flags = h[5];
    r.hdr.type = (uint16_t)(h[6] | h[7] << 8);
    r.hdr.seq = rd64(h + 8);
    r.hdr.len = rd32(h + 16);
    r.hdr.writer = rd32(h + 20);
    r.hdr.total = rd32(h + 24);
    r.hdr.psum = rd64(h + 32);
    if (h[4] != IPCP_FRAME_VERSION) ref_allow(&r, -IPCP_E_BADVERSION);
    if (rd32(h + 28) != ref_hsum(h)) ref_allow(&r, -IPCP_E_HDRSUM);
    if (r.hdr.flags & ~IPCP_FRAME_F_KNOWN) ref_allow(&r, -EBADMSG);
    if (r.hdr.total < r.hdr.len) ref_allow(&r, -EBADMSG);
    if ((r.hdr.flags & IPCP_FRAME_F_WHOLE) == IPCP_FRAME_F_WHOLE && r.hdr.total != r.hdr.len)
        ref_allow(&r, -EBADMSG);
    int nosum = (r.hdr.flags & IPCP_FRAME_F_NOSUM) != 0;
    if (nosum && r.hdr.psum != 0) ref_allow(&r, -EBADMSG); /* no checksum is written as 0 */
    if (r.hdr.len > max) ref_allow(&r, -IPCP_E_TOOBIG);
    if (r.nallowed == 0 && nosum && !allow_nosum) ref_allow(&r, -IPCP_E_NOSUM);
    if (r.nallowed > 0) {
        r.kind = REF_ERROR;
        r.end = r.last = at + IPCP_FRAME_HDR_SIZE;
        return r;
    }
    if (avail - IPCP_FRAME_HDR_SIZE < r.hdr.len) return r;
    r.end = r.last = at + IPCP_FRAME_HDR_SIZE + r.hdr.len;
    if (!nosum && XXH3_64bits(h + IPCP_FRAME_HDR_SIZE, r.hdr.len) != r.hdr.psum) {
        r.kind = REF_ERROR;
        ref_allow(&r, -IPCP_E_PAYSUM);
        return r;
    }
    r.kind = REF_FRAME;
    return r;
}

/* cfg bits 2-3: rewrite the checksums of every frame the reference walk finds, so that the
 * fuzzer's mutations of the other fields are judged by the checks behind the checksums. */
static void repair(uint8_t *s, size_t n, size_t max, int fix_h, int fix_p)
{
    size_t at = 0;
    while (n - at >= IPCP_FRAME_HDR_SIZE) {
        uint8_t *h = s + at;
        uint32_t len = rd32(h + 16);
        if (len > max) len = 0; /* the decoder stops at this header anyway */
        int whole = n - at - IPCP_FRAME_HDR_SIZE >= len;
        if (fix_p && whole) /* no checksum is written as 0 */
            wr64(h + 32,
                 (h[5] & IPCP_FRAME_F_NOSUM) ? 0 : XXH3_64bits(h + IPCP_FRAME_HDR_SIZE, len));
        if (fix_h) wr32(h + 28, ref_hsum(h));
        if (!whole) break;
        at += IPCP_FRAME_HDR_SIZE + len;
    }
}

struct feeder {
    const uint8_t *s;
    size_t n;
    size_t pos; /* bytes consumed by the decoder so far */
    int mode;
    int zero_copy;
    uint64_t rng;
    unsigned pieces;
};

/* Piece sizes per split mode. Tiny pieces cost one decoder call per byte or so: modes 1 and 3
 * use them for the first SMALL_PIECES calls only, and after MAX_PIECES calls the rest of the
 * stream goes in at once, so the work per input stays bounded (and libFuzzer fast). */
#define SMALL_PIECES 24
#define MAX_PIECES   64

FZ_NO_COVERAGE static size_t next_piece(struct feeder *f)
{
    size_t left = f->n - f->pos;
    if (++f->pieces > MAX_PIECES) return left;
    switch (f->pieces > SMALL_PIECES && (f->mode & 1) ? 0 : f->mode) {
    case 1:
        return 1;
    case 2:
        return left;
    case 3:
        return fz_piece(&f->rng, 7);
    default: /* an odd piece, or (every other time) the rest of the stream at once */
        return splitmix64_next(&f->rng) & 1 ? left : fz_piece(&f->rng, left);
    }
}

/* Feeds the decoder until it reports a frame or an error, or the stream ends (-EAGAIN). */
FZ_NO_COVERAGE static int feed_until_event(struct ipcp_frame_decoder *d, struct feeder *f,
                                           struct ipcp_frame *out, size_t max)
{
    int rc = -EAGAIN;
    while (f->pos < f->n) {
        size_t piece = next_piece(f);
        if (piece > f->n - f->pos) piece = f->n - f->pos;
        void *space;
        size_t room;
        int sp = f->zero_copy ? ipcp_frame_decoder_space(d, &space, &room) : 0;
        FZ_CHECK(sp == 0 || sp == 1, "space returned %d (%s) outside an error", sp,
                 ipcp_errname(sp));
        if (sp == 1) {
            FZ_CHECK(room > 0 && room <= max, "space %zu with max_payload %zu", room, max);
            size_t take = piece < room ? piece : room;
            memcpy(space, f->s + f->pos, take);
            rc = ipcp_frame_decoder_commit(d, take, out);
            FZ_CHECK(ipcp_frame_decoder_valid(d), "invalid after commit(%zu)", take);
            f->pos += take;
            if (rc == -EAGAIN) {
                FZ_CHECK(take < room, "commit filled the payload but asked for more");
                continue;
            }
            return rc;
        }
        size_t used = 12345;
        rc = ipcp_frame_decode(d, f->s + f->pos, piece, &used, out);
        FZ_CHECK(ipcp_frame_decoder_valid(d), "invalid after decode(%zu)", piece);
        FZ_CHECK(used <= piece, "consumed %zu of %zu", used, piece);
        f->pos += used;
        if (rc == -EAGAIN) {
            FZ_CHECK(used == piece, "-EAGAIN with %zu of %zu bytes left", piece - used, piece);
            continue;
        }
        if (rc == 1) FZ_CHECK(used > 0, "a frame out of no bytes");
        return rc;
    }
    return rc;
}

FZ_NO_COVERAGE static int is_allowed(const struct ref *r, int rc)
{
    for (int i = 0; i < r->nallowed; i++)
        if (r->allowed[i] == rc) return 1;
    return 0;
}

FZ_NO_COVERAGE static void check_frame(const struct ref *r, const uint8_t *s, size_t start,
                                       const struct ipcp_frame *fr, size_t max)
{
    const struct ipcp_frame_hdr *h = &fr->hdr;
    FZ_CHECK(h->version == r->hdr.version && h->flags == r->hdr.flags && h->type == r->hdr.type &&
                 h->seq == r->hdr.seq && h->len == r->hdr.len && h->writer == r->hdr.writer &&
                 h->total == r->hdr.total && h->psum == r->hdr.psum,
             "decoded header differs from the bytes at offset %zu", start);
    FZ_CHECK(h->len == 0 || memcmp(fr->payload, s + start + IPCP_FRAME_HDR_SIZE, h->len) == 0,
             "decoded payload differs from the stream at offset %zu", start);
    /* The round trip: the frame re-encodes to exactly the bytes it was decoded from. */
    struct ipcp_frame_enc e;
    long n = ipcp_frame_encode(&e, h, fr->payload, max);
    FZ_CHECK(n == (long)(IPCP_FRAME_HDR_SIZE + h->len), "re-encode returned %ld (%s) for len %u", n,
             n < 0 ? ipcp_errname((int)n) : "ok", h->len);
    FZ_CHECK(memcmp(e.hdr, s + start, IPCP_FRAME_HDR_SIZE) == 0,
             "re-encoded header differs from the input at offset %zu", start);
    FZ_CHECK(e.iovcnt == (h->len ? 2 : 1), "iovcnt %d for len %u", e.iovcnt, h->len);
    FZ_CHECK(h->len == 0 ||
                 (e.iov[1].iov_len == h->len &&
                  memcmp(e.iov[1].iov_base, s + start + IPCP_FRAME_HDR_SIZE, h->len) == 0),
             "re-encoded payload differs");
    struct ipcp_frame_hdr ph;
    FZ_CHECK_RC(ipcp_frame_parse_header(s + start, max, &ph), 0, "parse_header of a good frame");
}

FZ_NO_COVERAGE int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > MAX_INPUT) return 0;
    uint8_t cfg = data[0];
    size_t max = max_choices[cfg & 3];
    size_t n = size - 2;
    /* The stream is read in place (libFuzzer's buffer has the exact size, so ASan sees any
     * read past it); only the checksum repair needs a private, equally exact, copy. */
    uint8_t *copy = NULL;
    const uint8_t *s = data + 2;
    if (cfg & 0x0c) {
        copy = malloc(n ? n : 1);
        if (copy == NULL) return 0;
        if (n) memcpy(copy, data + 2, n);
        repair(copy, n, max, (cfg & 0x04) != 0, (cfg & 0x08) != 0);
        s = copy;
    }

    struct ipcp_frame_decoder d;
    FZ_CHECK_RC(ipcp_frame_decoder_init(&d, max), 0, "decoder_init");
    int allow_nosum = (data[1] & 0x80) != 0;
    ipcp_frame_decoder_allow_nosum(&d, allow_nosum);
    FZ_CHECK(ipcp_frame_decoder_valid(&d) && ipcp_frame_decoder_idle(&d), "fresh decoder");
    struct feeder f = {.s = s,
                       .n = n,
                       .mode = cfg >> 6,
                       .zero_copy = (cfg & 0x10) != 0,
                       .rng = 0x5eed0000u + data[1]};
    uint64_t frames = 0;
    while (f.pos < n) {
        size_t start = f.pos;
        struct ref r = ref_frame(s, n, start, max, allow_nosum);
        struct ipcp_frame fr;
        int rc = feed_until_event(&d, &f, &fr, max);
        switch (r.kind) {
        case REF_FRAME:
            FZ_CHECK_RC(rc, 1, "a valid frame");
            FZ_CHECK(f.pos == r.end, "frame at %zu ended at %zu, want %zu", start, f.pos, r.end);
            check_frame(&r, s, start, &fr, max);
            FZ_CHECK(d.frames == ++frames, "frame counter %llu, want %llu",
                     (unsigned long long)d.frames, (unsigned long long)frames);
            FZ_CHECK(ipcp_frame_decoder_idle(&d), "not idle after a whole frame");
            break;
        case REF_INCOMPLETE:
            FZ_CHECK_RC(rc, -EAGAIN, "an incomplete frame");
            FZ_CHECK(f.pos == n, "stopped at %zu of %zu", f.pos, n);
            FZ_CHECK(!ipcp_frame_decoder_idle(&d), "idle with %zu bytes of a frame in", n - start);
            break;
        case REF_ERROR: {
            FZ_CHECK(rc < 0 && rc != -EAGAIN && is_allowed(&r, rc),
                     "frame at %zu: got %d (%s), not an error this frame deserves (first: %s)",
                     start, rc, ipcp_errname(rc), ipcp_errname(r.allowed[0]));
            FZ_CHECK(f.pos >= r.end && f.pos <= r.last,
                     "error at offset %zu: the fault is visible at %zu, the header ends at %zu "
                     "(frame at %zu)",
                     f.pos, r.end, r.last, start);
            /* Sticky: every entry point returns it and consumes nothing. */
            size_t used = 1;
            struct ipcp_frame fr2;
            FZ_CHECK_RC(ipcp_frame_decode(&d, s, n, &used, &fr2), rc, "sticky decode");
            FZ_CHECK(used == 0, "consumed %zu bytes after an error", used);
            void *sp;
            size_t room;
            FZ_CHECK_RC(ipcp_frame_decoder_space(&d, &sp, &room), rc, "sticky space");
            FZ_CHECK_RC(ipcp_frame_decoder_commit(&d, 0, &fr2), rc, "sticky commit");
            FZ_CHECK(ipcp_frame_decoder_valid(&d), "invalid in the error state");
            if (!(cfg & 0x20)) goto out;
            ipcp_frame_decoder_reset(&d);
            FZ_CHECK(ipcp_frame_decoder_valid(&d) && ipcp_frame_decoder_idle(&d),
                     "reset decoder not idle");
            break;
        }
        }
    }
out:
    ipcp_frame_decoder_fini(&d);
    free(copy);
    return 0;
}

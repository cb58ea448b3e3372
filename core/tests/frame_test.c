/* frame_test.c - the frame codec: round trips at the size edges (0, 1, PIPE_BUF+-1, 64 KiB+-1,
 * 1 MiB, the maximum), every split point of a multi-frame stream, and one distinct error for
 * each corruption (magic, version, header checksum, payload checksum, length over the limit,
 * bad flags) with nothing allocated for an oversized declaration. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/frame.h"
#include "testutil.h"

/* Encodes one frame into a fresh contiguous buffer. */
static uint8_t *encode(uint16_t type, uint64_t seq, const void *p, size_t len, size_t max,
                       size_t *out_len)
{
    struct ipcp_frame_enc e;
    struct ipcp_frame_hdr h = {.flags = IPCP_FRAME_F_WHOLE,
                               .type = type,
                               .seq = seq,
                               .len = (uint32_t)len,
                               .total = (uint32_t)len};
    long n = ipcp_frame_encode(&e, &h, p, max);
    assert_true(n == (long)(IPCP_FRAME_HDR_SIZE + len));
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    memcpy(buf, e.hdr, IPCP_FRAME_HDR_SIZE);
    if (len) memcpy(buf + IPCP_FRAME_HDR_SIZE, p, len);
    *out_len = (size_t)n;
    return buf;
}

static void roundtrip(size_t len, size_t max)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    tu_fill(p, len, len * 7 + 1);
    size_t n;
    uint8_t *wire = encode(7, len, p, len, max, &n);
    struct ipcp_frame_decoder d;
    assert_int_equal(ipcp_frame_decoder_init(&d, max), 0);
    struct ipcp_frame fr;
    size_t used;
    assert_int_equal(ipcp_frame_decode(&d, wire, n, &used, &fr), 1);
    assert_int_equal(used, n);
    assert_int_equal(fr.hdr.len, len);
    assert_int_equal(fr.hdr.type, 7);
    assert_int_equal(fr.hdr.seq, len);
    assert_true(len == 0 || memcmp(fr.payload, p, len) == 0);
    assert_true(ipcp_frame_decoder_idle(&d));
    assert_true(ipcp_frame_decoder_valid(&d));
    ipcp_frame_decoder_fini(&d);
    free(wire);
    free(p);
}

static void test_roundtrip_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {0,     1,     PIPE_BUF - 1, PIPE_BUF, PIPE_BUF + 1,
                            65535, 65536, 65537,        1 << 20,  IPCP_FRAME_MAX_DEFAULT};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(sizes); i++)
        roundtrip(sizes[i], 0);
    roundtrip(IPCP_FRAME_MAX_HARD, IPCP_FRAME_MAX_HARD); /* the largest configurable maximum */
}

/* Several frames in one buffer, fed in two pieces split at every byte position, then one byte
 * at a time: the decoder yields exactly the same frames. */
static void test_every_split(void **state)
{
    (void)state;
    const size_t lens[] = {0, 1, 100, 41, 300};
    uint8_t stream[4096];
    size_t total = 0;
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(lens); i++) {
        uint8_t p[512];
        tu_fill(p, lens[i], i);
        size_t n;
        uint8_t *f = encode((uint16_t)i, i, p, lens[i], 0, &n);
        memcpy(stream + total, f, n);
        total += n;
        free(f);
    }
    for (size_t split = 0; split <= total; split++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            if (bytewise && split > 0) break;
            struct ipcp_frame_decoder d;
            assert_int_equal(ipcp_frame_decoder_init(&d, 0), 0);
            size_t got = 0, pos = 0;
            while (pos < total) {
                size_t end = bytewise ? pos + 1 : (pos < split ? split : total);
                struct ipcp_frame fr;
                size_t used;
                int rc = ipcp_frame_decode(&d, stream + pos, end - pos, &used, &fr);
                assert_true(ipcp_frame_decoder_valid(&d));
                pos += used;
                if (rc == 1) {
                    assert_int_equal(fr.hdr.len, lens[got]);
                    assert_int_equal(fr.hdr.seq, got);
                    assert_true(tu_check(fr.payload, fr.hdr.len, got));
                    got++;
                } else {
                    assert_int_equal(rc, -EAGAIN);
                    assert_int_equal(pos, end);
                }
            }
            assert_int_equal(got, IPCP_ARRAY_SIZE(lens));
            assert_true(ipcp_frame_decoder_idle(&d));
            ipcp_frame_decoder_fini(&d);
        }
    }
}

/* Rewrites the header checksum after a deliberate change, so that a later field's check is
 * what fires. */
static void reseal(uint8_t *hdr)
{
    uint8_t tmp[IPCP_FRAME_HDR_SIZE];
    memcpy(tmp, hdr, sizeof(tmp));
    memset(tmp + 28, 0, 4);
    uint32_t s = XXH32(tmp, sizeof(tmp), 0);
    memcpy(hdr + 28, &s, 4);
}

struct corruption {
    const char *what;
    size_t offset; /* byte to change */
    uint8_t value; /* XOR mask, or the new byte with set=1 */
    int set;
    int reseal; /* fix the header checksum afterwards */
    size_t max; /* decoder max_payload */
    int want;
};

static void test_each_corruption_has_its_error(void **state)
{
    (void)state;
    const struct corruption cases[] = {
        {.what = "magic", .offset = 0, .value = 0x01, .want = -IPCP_E_BADMAGIC},
        {.what = "version",
         .offset = 4,
         .value = 2,
         .set = 1,
         .reseal = 1,
         .want = -IPCP_E_BADVERSION},
        {.what = "header checksum", .offset = 28, .value = 0x80, .want = -IPCP_E_HDRSUM},
        {.what = "header byte under checksum", .offset = 9, .value = 0x04, .want = -IPCP_E_HDRSUM},
        {.what = "payload checksum",
         .offset = IPCP_FRAME_HDR_SIZE + 10,
         .value = 0x10,
         .want = -IPCP_E_PAYSUM},
        {.what = "stored payload sum",
         .offset = 33,
         .value = 0x10,
         .reseal = 1,
         .want = -IPCP_E_PAYSUM},
        {.what = "length over limit", .offset = 0, .max = 63, .want = -IPCP_E_TOOBIG},
        {.what = "unknown flag", .offset = 5, .value = 0x80, .reseal = 1, .want = -EBADMSG},
        {.what = "no-checksum flag with a checksum",
         .offset = 5,
         .value = IPCP_FRAME_F_NOSUM,
         .reseal = 1,
         .want = -EBADMSG},
        {.what = "whole frame with total != len",
         .offset = 24,
         .value = 0x01,
         .reseal = 1,
         .want = -EBADMSG},
    };
    uint8_t p[64];
    tu_fill(p, sizeof(p), 3);
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(cases); i++) {
        const struct corruption *c = &cases[i];
        size_t n;
        uint8_t *wire = encode(1, 1, p, sizeof(p), 0, &n);
        if (c->max == 0) {
            if (c->set)
                wire[c->offset] = c->value;
            else
                wire[c->offset] ^= c->value;
        }
        if (c->reseal) reseal(wire);
        struct ipcp_frame_decoder d;
        assert_int_equal(ipcp_frame_decoder_init(&d, c->max), 0);
        struct ipcp_frame fr;
        size_t used;
        int rc = ipcp_frame_decode(&d, wire, n, &used, &fr);
        if (rc != c->want)
            fail_msg("%s: got %s, want %s", c->what, ipcp_errname(rc), ipcp_errname(c->want));
        /* The error is sticky: the stream has no resynchronisation point. */
        assert_int_equal(ipcp_frame_decode(&d, wire, n, &used, &fr), c->want);
        if (c->want == -IPCP_E_TOOBIG) assert_null(d.payload); /* nothing was allocated */
        ipcp_frame_decoder_reset(&d);
        assert_true(ipcp_frame_decoder_idle(&d));
        ipcp_frame_decoder_fini(&d);
        free(wire);
    }
}

/* A header that declares 4 GiB - 1 is refused before any allocation, with any maximum. */
static void test_huge_declared_length(void **state)
{
    (void)state;
    size_t n;
    uint8_t *wire = encode(1, 1, "x", 1, 0, &n);
    uint32_t huge = UINT32_MAX;
    memcpy(wire + 16, &huge, 4);
    memcpy(wire + 24, &huge, 4);
    reseal(wire);
    struct ipcp_frame_decoder d;
    assert_int_equal(ipcp_frame_decoder_init(&d, IPCP_FRAME_MAX_HARD), 0);
    struct ipcp_frame fr;
    size_t used;
    assert_int_equal(ipcp_frame_decode(&d, wire, IPCP_FRAME_HDR_SIZE, &used, &fr), -IPCP_E_TOOBIG);
    assert_null(d.payload);
    ipcp_frame_decoder_fini(&d);
    free(wire);
    assert_int_equal(ipcp_frame_decoder_init(&d, IPCP_FRAME_MAX_HARD + 1), -EINVAL);
}

/* The encoder refuses what the decoder would refuse. */
static void test_encoder_limits(void **state)
{
    (void)state;
    struct ipcp_frame_enc e;
    uint8_t p[100] = {0};
    struct ipcp_frame_hdr h = {.flags = IPCP_FRAME_F_WHOLE, .len = 100, .total = 100};
    assert_int_equal(ipcp_frame_encode(&e, &h, p, 99), -IPCP_E_TOOBIG);
    h.flags = 0x10;
    assert_int_equal(ipcp_frame_encode(&e, &h, p, 0), -EINVAL);
    h.flags = IPCP_FRAME_F_WHOLE;
    assert_int_equal(ipcp_frame_encode(&e, &h, NULL, 0), -EINVAL);
    h.total = 50;
    assert_int_equal(ipcp_frame_encode(&e, &h, p, 0), -EINVAL);
    h.len = 0;
    h.total = 0;
    assert_int_equal(ipcp_frame_encode(&e, &h, NULL, 0), IPCP_FRAME_HDR_SIZE);
    assert_int_equal(e.iovcnt, 1);
}

/* encode_into lays the same bytes as encode's two iovecs, back to back, and writes nothing
 * when the frame does not fit. */
static void test_encode_into(void **state)
{
    (void)state;
    uint8_t p[300], buf[1000];
    tu_fill(p, sizeof(p), 3);
    const size_t lens[] = {0, 1, 300};
    size_t off = 0;
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(lens); i++) {
        size_t n;
        uint8_t *want = encode((uint16_t)i, i, p, lens[i], 0, &n);
        struct ipcp_frame_hdr h = {.flags = IPCP_FRAME_F_WHOLE,
                                   .type = (uint16_t)i,
                                   .seq = i,
                                   .len = (uint32_t)lens[i],
                                   .total = (uint32_t)lens[i]};
        assert_int_equal(ipcp_frame_encode_into(buf + off, sizeof(buf) - off, &h, p, 0), n);
        assert_memory_equal(buf + off, want, n);
        off += n;
        free(want);
    }
    /* The three frames decode from the one buffer. */
    struct ipcp_frame_decoder d;
    assert_int_equal(ipcp_frame_decoder_init(&d, 0), 0);
    size_t at = 0;
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(lens); i++) {
        struct ipcp_frame fr;
        size_t used;
        assert_int_equal(ipcp_frame_decode(&d, buf + at, off - at, &used, &fr), 1);
        assert_int_equal(fr.hdr.len, lens[i]);
        at += used;
    }
    assert_int_equal(at, off);
    ipcp_frame_decoder_fini(&d);
    /* Too small a buffer: -ENOSPC and not a byte written; the encoder's limits still hold. */
    memset(buf, 0xee, sizeof(buf));
    struct ipcp_frame_hdr h = {.flags = IPCP_FRAME_F_WHOLE, .len = 300, .total = 300};
    assert_int_equal(ipcp_frame_encode_into(buf, IPCP_FRAME_HDR_SIZE + 299, &h, p, 0), -ENOSPC);
    assert_int_equal(ipcp_frame_encode_into(buf, 10, &h, p, 0), -ENOSPC);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xee);
    assert_int_equal(ipcp_frame_encode_into(buf, sizeof(buf), &h, p, 299), -IPCP_E_TOOBIG);
    assert_int_equal(ipcp_frame_encode_into(buf, sizeof(buf), &h, NULL, 0), -EINVAL);
}

/* A frame whose header and payload lie apart (a packet received in two places): each fault has
 * its error, and a good one comes out with its payload where it lies. */
static void test_check_apart(void **state)
{
    (void)state;
    uint8_t p[200];
    tu_fill(p, sizeof(p), 8);
    size_t n;
    uint8_t *wire = encode(3, 4, p, sizeof(p), 0, &n);
    uint8_t hdr[IPCP_FRAME_HDR_SIZE];
    memcpy(hdr, wire, sizeof(hdr));
    struct ipcp_frame fr;
    assert_int_equal(ipcp_frame_check(hdr, p, sizeof(p), 0, 0, &fr), 1);
    assert_ptr_equal(fr.payload, p);
    assert_int_equal(fr.hdr.type, 3);
    assert_int_equal(fr.hdr.seq, 4);
    assert_int_equal(ipcp_frame_check(hdr, p, sizeof(p) - 1, 0, 0, &fr), -IPCP_E_TRUNCATED);
    assert_int_equal(ipcp_frame_check(hdr, p, sizeof(p) + 1, 0, 0, &fr), -EBADMSG);
    assert_int_equal(ipcp_frame_check(hdr, p, sizeof(p), 199, 0, &fr), -IPCP_E_TOOBIG);
    p[7] ^= 1;
    assert_int_equal(ipcp_frame_check(hdr, p, sizeof(p), 0, 0, &fr), -IPCP_E_PAYSUM);
    p[7] ^= 1;
    hdr[9] ^= 1;
    assert_int_equal(ipcp_frame_check(hdr, p, sizeof(p), 0, 0, &fr), -IPCP_E_HDRSUM);
    free(wire);
    wire = encode(0, 0, NULL, 0, 0, &n);
    assert_int_equal(ipcp_frame_check(wire, NULL, 0, 0, 0, &fr), 1);
    assert_int_equal(fr.hdr.len, 0);
    free(wire);
}

/* The payload checksum as an option of the frame: left out (psum 0) with IPCP_FRAME_F_NOSUM;
 * a decoder refuses such a frame unless allowed, and still checks frames that carry one. */
static void test_nosum_option(void **state)
{
    (void)state;
    uint8_t p[500];
    tu_fill(p, sizeof(p), 6);
    struct ipcp_frame_enc e;
    struct ipcp_frame_hdr h = {.flags = IPCP_FRAME_F_WHOLE | IPCP_FRAME_F_NOSUM,
                               .type = 2,
                               .len = sizeof(p),
                               .total = sizeof(p)};
    assert_int_equal(ipcp_frame_encode(&e, &h, p, 0), IPCP_FRAME_HDR_SIZE + sizeof(p));
    for (int i = 32; i < 40; i++)
        assert_int_equal(e.hdr[i], 0);
    uint8_t wire[IPCP_FRAME_HDR_SIZE + sizeof(p)];
    assert_int_equal(ipcp_frame_encode_into(wire, sizeof(wire), &h, p, 0), sizeof(wire));
    assert_memory_equal(wire, e.hdr, IPCP_FRAME_HDR_SIZE);
    struct ipcp_frame_decoder d;
    struct ipcp_frame fr;
    size_t used;
    /* refused by default, as soon as the header is in */
    assert_int_equal(ipcp_frame_decoder_init(&d, 0), 0);
    assert_int_equal(ipcp_frame_decode(&d, wire, sizeof(wire), &used, &fr), -IPCP_E_NOSUM);
    assert_int_equal(used, IPCP_FRAME_HDR_SIZE);
    assert_int_equal(ipcp_frame_check(wire, p, sizeof(p), 0, 0, &fr), -IPCP_E_NOSUM);
    /* allowed: decoded, a changed payload byte goes unnoticed (there is nothing to check) */
    ipcp_frame_decoder_reset(&d);
    ipcp_frame_decoder_allow_nosum(&d, 1);
    wire[IPCP_FRAME_HDR_SIZE + 3] ^= 1;
    assert_int_equal(ipcp_frame_decode(&d, wire, sizeof(wire), &used, &fr), 1);
    assert_int_equal(used, sizeof(wire));
    assert_int_equal(fr.hdr.flags, IPCP_FRAME_F_WHOLE | IPCP_FRAME_F_NOSUM);
    assert_int_equal(ipcp_frame_check(wire, wire + IPCP_FRAME_HDR_SIZE, sizeof(p), 0, 1, &fr), 1);
    /* a frame with its checksum is still checked by a decoder that allows none */
    size_t n;
    uint8_t *summed = encode(1, 1, p, sizeof(p), 0, &n);
    summed[IPCP_FRAME_HDR_SIZE + 3] ^= 1;
    assert_int_equal(ipcp_frame_decode(&d, summed, n, &used, &fr), -IPCP_E_PAYSUM);
    assert_int_equal(ipcp_frame_check(summed, summed + IPCP_FRAME_HDR_SIZE, sizeof(p), 0, 1, &fr),
                     -IPCP_E_PAYSUM);
    free(summed);
    ipcp_frame_decoder_fini(&d);
}

/* Zero-copy feeding: the payload read straight into the decoder's space. */
static void test_space_commit(void **state)
{
    (void)state;
    uint8_t p[5000];
    tu_fill(p, sizeof(p), 9);
    size_t n;
    uint8_t *wire = encode(2, 5, p, sizeof(p), 0, &n);
    struct ipcp_frame_decoder d;
    assert_int_equal(ipcp_frame_decoder_init(&d, 0), 0);
    struct ipcp_frame fr;
    size_t used;
    void *sp;
    size_t spn;
    assert_int_equal(ipcp_frame_decoder_space(&d, &sp, &spn), 0);
    assert_int_equal(ipcp_frame_decode(&d, wire, IPCP_FRAME_HDR_SIZE + 10, &used, &fr), -EAGAIN);
    assert_int_equal(ipcp_frame_decoder_space(&d, &sp, &spn), 1);
    assert_int_equal(spn, sizeof(p) - 10);
    memcpy(sp, wire + IPCP_FRAME_HDR_SIZE + 10, 1000);
    assert_int_equal(ipcp_frame_decoder_commit(&d, 1000, &fr), -EAGAIN);
    assert_int_equal(ipcp_frame_decoder_space(&d, &sp, &spn), 1);
    assert_int_equal(ipcp_frame_decoder_commit(&d, spn + 1, &fr), -EINVAL);
    memcpy(sp, wire + IPCP_FRAME_HDR_SIZE + 1010, spn);
    assert_int_equal(ipcp_frame_decoder_commit(&d, spn, &fr), 1);
    assert_memory_equal(fr.payload, p, sizeof(p));
    ipcp_frame_decoder_fini(&d);
    free(wire);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_sizes),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_each_corruption_has_its_error),
        cmocka_unit_test(test_huge_declared_length),
        cmocka_unit_test(test_encoder_limits),
        cmocka_unit_test(test_encode_into),
        cmocka_unit_test(test_check_apart),
        cmocka_unit_test(test_nosum_option),
        cmocka_unit_test(test_space_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

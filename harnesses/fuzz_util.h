/* fuzz_util.h - helpers shared by the fuzz targets in harnesses/: a live check macro, a reader
 * that turns the fuzzer's bytes into typed values (and returns zeros once they run out, so every
 * input is a valid program), a tiny deterministic PRNG, and error-name printing.
 *
 * Findings abort() with a message on stderr: libFuzzer and AFL++ see a deadly signal, the replay
 * driver dies with SIGABRT; NDEBUG never switches a check off. */
#ifndef IPCP_FUZZ_UTIL_H
#define IPCP_FUZZ_UTIL_H

#undef NDEBUG
#include <assert.h>
#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipcproof/err.h"
#include "splitmix.h"

/* FZ_CHECK(cond, "fmt", ...): an invariant of the target; a failure aborts with its location. */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Return-code equality with both names printed. */
#define FZ_CHECK_RC(got, want, what)                                                               \
    do {                                                                                           \
        long fz_g_ = (long)(got), fz_w_ = (long)(want);                                            \
        FZ_CHECK(fz_g_ == fz_w_, "%s: got %ld (%s), want %ld (%s)", (what), fz_g_,                 \
                 fz_g_ < 0 ? ipcp_errname((int)fz_g_) : "ok", fz_w_,                               \
                 fz_w_ < 0 ? ipcp_errname((int)fz_w_) : "ok");                                     \
    } while (0)

/* Harness bookkeeping (feeding loops, comparisons with the model) gets no coverage
 * instrumentation: its branches mirror the library's and only cost time (libFuzzer's comparison
 * tracing runs on every compare). The code under test keeps all of it. */
#if defined(__clang__)
#define FZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define FZ_NO_COVERAGE
#endif

/* For code under test that lives in a harness (a protocol model): keeps it out of an
 * uninstrumented caller, so its branches still guide the fuzzer. */
#define FZ_NOINLINE __attribute__((noinline))

/* ---- input reader --------------------------------------------------------------------------- */

struct fz_in {
    const uint8_t *p;
    size_t n;
};

static inline struct fz_in fz_in_make(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    return in;
}

static inline size_t fz_left(const struct fz_in *in)
{
    return in->n;
}

static inline uint8_t fz_u8(struct fz_in *in)
{
    if (in->n == 0) return 0;
    uint8_t v = in->p[0];
    in->p++;
    in->n--;
    return v;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
    uint16_t lo = fz_u8(in);
    return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

static inline uint32_t fz_u32(struct fz_in *in)
{
    uint32_t lo = fz_u16(in);
    return lo | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(struct fz_in *in)
{
    uint64_t lo = fz_u32(in);
    return lo | (uint64_t)fz_u32(in) << 32;
}

/* Up to want bytes of input; *got says how many there were. */
static inline const uint8_t *fz_bytes(struct fz_in *in, size_t want, size_t *got)
{
    const uint8_t *p = in->p;
    *got = want < in->n ? want : in->n;
    in->p += *got;
    in->n -= *got;
    return p;
}

/* ---- deterministic PRNG and fills ----------------------------------------------------------- */

/* len bytes that depend on seed: payloads whose corruption or reordering a comparison sees.
 * Byte i is byte i % 8 of the (i / 8)-th splitmix64 output (little-endian words). Never inlined
 * and without coverage instrumentation: inlined into an instrumented target, its loop's compares
 * were traced byte by byte and cost most of the target's time. */
static FZ_NO_COVERAGE __attribute__((noinline, unused)) void fz_fill(uint8_t *buf, size_t len,
                                                                     uint64_t seed)
{
    uint64_t s = seed;
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        uint64_t r = htole64(splitmix64_next(&s));
        memcpy(buf + i, &r, 8);
    }
    if (i < len) { /* fewer than 8 bytes left */
        uint64_t r = splitmix64_next(&s);
        for (unsigned k = 0; k < 8 && i + k < len; k++)
            buf[i + k] = (uint8_t)(r >> (8 * k));
    }
}

/* A piece size for pushing a stream through in odd amounts: mostly small odd sizes, sometimes
 * one byte, sometimes large. Never 0. */
static inline size_t fz_piece(uint64_t *s, size_t cap)
{
    static const size_t sizes[] = {1, 1, 2, 3, 5, 7, 13, 39, 40, 41, 63, 143, 509, 4093};
    size_t n = sizes[splitmix64_next(s) % (sizeof(sizes) / sizeof(sizes[0]))];
    if (n > cap) n = cap;
    return n ? n : 1;
}

#endif

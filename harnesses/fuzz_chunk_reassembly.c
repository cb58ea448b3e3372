/* fuzz_chunk_reassembly.c - arbitrary chunk records into the reassembler (chunk.h), compared
 * step by step with a reference model written from chunk.h's contract.
 *
 * Input: byte 0 picks max_msg (1, 7, 255, 256, 257, 1000, 4096, 65536); then operations of two
 * bytes (op, arg) plus optional operands:
 *   op bit 7 set        special: arg & 3 = 0 reset, 1 read the message again, 2 fini + init
 *                       (a fresh reassembler, the model too), 3 a zero-length chunk continuing
 *                       the message in progress (a chunk stream may hold any number of them)
 *   otherwise a chunk:  flags = op & 3 (FIRST, LAST); op bit 2 adds an unknown flag bit chosen
 *                       by arg; seq (op bits 3-4): the message in progress, the next one, a u64
 *                       from the input, 0; total (op bits 5-6): the message in progress, a u16
 *                       from the input, max_msg, or a lie above max_msg (max_msg + 1 or a u64
 *                       with the top bit set); length (arg bits 3-7): what the message still
 *                       needs, one less, one more, 0, a u8 or a u16 from the input, or the rest
 *                       of it split in 2, 3 or 7. Chunk bytes are a window of a fixed
 *                       random pattern at an offset set by the op's index (the input stays
 *                       small while chunks reach 64 KiB).
 * This reaches every lie a chunk stream can tell: a MIDDLE or LAST without FIRST, a duplicated
 * MIDDLE (more bytes than the total), a total or seq that changes mid-message, LAST too early,
 * chunks after LAST (too many chunks), a FIRST abandoning a partial message, totals above max_msg.
 *
 * After every feed: the return code, the completed message (bytes, length, seq), the abandoned
 * counter and ipcp_reasm_message() of a non-complete state agree with the model, and
 * ipcp_reasm_valid() holds. The buffer never grows past max(max_msg, 256) bytes (bounded
 * allocation whatever a chunk declares). Work per input: at most 4096 operations and 256 KiB of
 * chunk bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ipcproof/chunk.h"
#include "ipcproof/err.h"

#define MAX_OPS   4096
#define MAX_BYTES (256u << 10)
#define PATTERN   (65536 + 2 + 4096) /* chunk bytes: pattern + (op * 61) % 4096 */

static uint8_t pattern[PATTERN];

static const size_t max_choices[8] = {1, 7, 255, 256, 257, 1000, 4096, 65536};

/* The reference: what chunk.h promises, as plainly as possible. */
struct model {
    size_t max_msg;
    int active;
    uint64_t seq, total;
    uint8_t *buf; /* max_msg bytes */
    size_t have;
    int done;
    uint64_t abandoned;
};

FZ_NO_COVERAGE static int model_feed(struct model *m, unsigned flags, uint64_t seq, uint64_t total,
                                     const uint8_t *data, size_t len)
{
    m->done = 0;
    if (flags & ~IPCP_CHUNK_WHOLE) { /* unknown flags: message and chunk dropped */
        m->active = 0;
        return -IPCP_E_FRAGMENT;
    }
    if (flags & IPCP_CHUNK_FIRST) {
        if (m->active) m->abandoned++; /* its sender gave it up */
        m->active = 0;
        if (total > m->max_msg) return -IPCP_E_TOOBIG;
        m->active = 1;
        m->seq = seq;
        m->total = total;
        m->have = 0;
    } else if (!m->active || seq != m->seq || total != m->total) {
        m->active = 0;
        return -IPCP_E_FRAGMENT;
    }
    if (len > m->total - m->have) {
        m->active = 0;
        return -IPCP_E_FRAGMENT;
    }
    memcpy(m->buf + m->have, data, len);
    m->have += len;
    if (flags & IPCP_CHUNK_LAST) {
        m->active = 0;
        if (m->have != m->total) return -IPCP_E_FRAGMENT;
        m->done = 1;
        return 1;
    }
    return 0;
}

FZ_NO_COVERAGE static void check_message(const struct ipcp_reasm *r, const struct model *m,
                                         size_t op)
{
    size_t len = 99;
    uint64_t seq = 0;
    const uint8_t *msg = ipcp_reasm_message(r, &len, &seq);
    if (!m->done) {
        FZ_CHECK(msg == NULL && len == 0, "op %zu: a message is offered where none is complete",
                 op);
        return;
    }
    FZ_CHECK(msg != NULL, "op %zu: no message after a completion", op);
    FZ_CHECK(len == m->total && seq == m->seq, "op %zu: message len %zu seq %llu, want %llu %llu",
             op, len, (unsigned long long)seq, (unsigned long long)m->total,
             (unsigned long long)m->seq);
    FZ_CHECK(len == 0 || memcmp(msg, m->buf, len) == 0, "op %zu: message bytes differ", op);
}

FZ_NO_COVERAGE static void check_state(const struct ipcp_reasm *r, const struct model *m, size_t op)
{
    FZ_CHECK(ipcp_reasm_valid(r), "op %zu: ipcp_reasm_valid() fails", op);
    FZ_CHECK(r->abandoned == m->abandoned, "op %zu: abandoned %llu, want %llu", op,
             (unsigned long long)r->abandoned, (unsigned long long)m->abandoned);
    size_t bound = m->max_msg > 256 ? m->max_msg : 256;
    FZ_CHECK(r->cap <= bound, "op %zu: buffer of %zu bytes with max_msg %zu", op, r->cap,
             m->max_msg);
}

FZ_NO_COVERAGE int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = fz_in_make(data, size);
    if (size < 1) return 0;
    size_t max_msg = max_choices[fz_u8(&in) & 7];
    struct model m = {.max_msg = max_msg};
    static uint8_t model_buf[65536]; /* the largest max_msg: no allocation per input */
    m.buf = model_buf;
    if (pattern[0] == 0 && pattern[1] == 0) fz_fill(pattern, sizeof(pattern), 0xc4c4);
    struct ipcp_reasm r;
    FZ_CHECK_RC(ipcp_reasm_init(&r, max_msg), 0, "reasm_init");
    check_state(&r, &m, 0);
    size_t bytes = 0;
    for (size_t op = 1; op <= MAX_OPS && fz_left(&in) >= 2 && bytes <= MAX_BYTES; op++) {
        uint8_t o = fz_u8(&in), arg = fz_u8(&in);
        unsigned flags;
        uint64_t seq, total;
        size_t len;
        if (o & 0x80) {
            switch (arg & 3) {
            case 0:
                ipcp_reasm_reset(&r);
                m.active = 0;
                m.done = 0;
                check_state(&r, &m, op);
                check_message(&r, &m, op);
                continue;
            case 1:
                check_message(&r, &m, op);
                check_message(&r, &m, op);
                continue;
            case 2:
                ipcp_reasm_fini(&r);
                FZ_CHECK_RC(ipcp_reasm_init(&r, max_msg), 0, "reasm_init again");
                m.active = 0;
                m.done = 0;
                m.abandoned = 0;
                check_state(&r, &m, op);
                continue;
            default:
                flags = 0;
                seq = m.seq;
                total = m.total;
                len = 0;
                goto feed;
            }
        }
        flags = o & 3;
        if (o & 4) flags |= 1u << (2 + (arg & 7)); /* a flag chunk.h does not define */
        switch ((o >> 3) & 3) {
        case 0:
            seq = m.seq;
            break;
        case 1:
            seq = m.seq + 1;
            break;
        case 2:
            seq = fz_u64(&in);
            break;
        default:
            seq = 0;
            break;
        }
        switch ((o >> 5) & 3) {
        case 0:
            total = m.total;
            break;
        case 1:
            total = fz_u16(&in);
            break;
        case 2:
            total = max_msg;
            break;
        default:
            total = (arg & 1) ? (uint64_t)max_msg + 1 : (fz_u64(&in) | (1ull << 63));
            break;
        }
        {
            /* Bytes the message in progress (or a new one of `total`) still needs. */
            uint64_t need64 = (flags & IPCP_CHUNK_FIRST) || !m.active ? total : m.total - m.have;
            size_t need = need64 > max_msg ? max_msg : (size_t)need64;
            switch (arg >> 3) {
            case 0:
            case 1:
            case 2:
                len = need;
                break;
            case 3:
                len = need ? need - 1 : 0;
                break;
            case 4:
                len = need + 1;
                break;
            case 5:
                len = 0;
                break;
            case 6:
            case 7:
                len = need / 2;
                break;
            case 8:
                len = need / 3;
                break;
            case 9:
                len = need / 7;
                break;
            case 10:
            case 11:
                len = fz_u16(&in);
                break;
            default:
                len = fz_u8(&in);
                break;
            }
            if (len > max_msg + 1) len = max_msg + 1;
        }
    feed:
        bytes += len;
        const uint8_t *chunk = pattern + (op * 61) % 4096;
        int want = model_feed(&m, flags, seq, total, chunk, len);
        int got = ipcp_reasm_feed(&r, flags, seq, total, chunk, len);
        FZ_CHECK(got == want,
                 "op %zu: feed(flags %#x, seq %llu, total %llu, len %zu) returned %d (%s), "
                 "model %d (%s)",
                 op, flags, (unsigned long long)seq, (unsigned long long)total, len, got,
                 got < 0 ? ipcp_errname(got) : "ok", want, want < 0 ? ipcp_errname(want) : "ok");
        check_state(&r, &m, op);
        check_message(&r, &m, op);
    }
    ipcp_reasm_fini(&r);
    return 0;
}

/* fuzz_sysvmsg_reasm.c - the SysV channel's reassembler (sysvmsg.h, ipcp_sysvmsg_rx_*) fed the
 * chunk streams of several honest producers, interleaved as a queue interleaves them, mixed
 * with forged and damaged queue messages.
 *
 * Input: byte 0 = geometry: bits 0-1 producers - 1 (1..4), bit 2 two consumers (this one is
 * consumer 1 when bit 3 is set), bits 4-5 room (1, 7, 64, 8160), bits 6-7 max_msg (0 -> 1,
 * 300, 4096, 40000). Then operations, one byte each plus operands:
 *   op & 7 = 0..3  producer (op & 3) sends its next chunk (starting a message of a u16 length
 *                  from the input, capped at max_msg, when it has none in progress)
 *          = 4     producer (op >> 3 & 3) gives its message up half-way (its next one starts
 *                  over with the same seq, as ipcp_sysvmsg_send does after a failed chunk)
 *          = 5     the next chunk of producer (op >> 3 & 3), one input byte xored into a byte
 *                  (position from the input) of the header or the payload - a damaged chunk;
 *                  that producer's message in progress is given up afterwards
 *          = 6     raw bytes: mtype u8 then a u8 length of input bytes, as a queue message
 *          = 7     a chunk of producer (op >> 3 & 3) sent twice (a replay)
 * Honest chunks are made exactly as ipcp_sysvmsg_send makes them (ipcp_sysvmsg_hdr_encode,
 * ipcp_sysvmsg_chunks), with payload bytes from fz_fill keyed by (producer, seq, length).
 *
 * Checked after every feed: ipcp_sysvmsg_rx_valid(); the return code is one of those sysvmsg.h
 * names; a completed message comes from a producer of this consumer, is at most max_msg long,
 * and while a producer's stream holds nothing forged since its last completed message, carries
 * the seq its producer is at and its message completes exactly when its last honest chunk goes in,
 * with exactly the bytes sent; honest chunks are never refused. Work per input: at most 4096
 * operations and 2 MiB of chunk bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ipcproof/err.h"
#include "ipcproof/sysvmsg.h"

#define MAX_OPS   4096
#define MAX_BYTES (2u << 20)
#define HDR       IPCP_SYSVMSG_HDR_SIZE

static const size_t rooms[4] = {1, 7, 64, 8160};
static const size_t maxes[4] = {1, 300, 4096, 40000};

struct prod {
    int active;     /* a message in progress */
    uint64_t seq;   /* of the message in progress / the next one */
    uint32_t total; /* its length */
    uint32_t index; /* next chunk */
    uint32_t count;
    int tainted; /* something forged went into this producer's stream since its last message */
    uint8_t *data;
};

static uint8_t qmsg[HDR + 8160 + 256];

FZ_NO_COVERAGE static size_t make_chunk(const struct prod *p, uint32_t producer, size_t room)
{
    size_t off = (size_t)p->index * room;
    uint32_t len = (uint32_t)(p->total - off < room ? p->total - off : room);
    struct ipcp_sysvmsg_hdr h = {producer, p->seq, p->total, p->index, p->count, len};
    ipcp_sysvmsg_hdr_encode(&h, qmsg);
    if (len > 0) memcpy(qmsg + HDR, p->data + off, len);
    return HDR + len;
}

FZ_NO_COVERAGE static int known_rc(int rc)
{
    return rc == 0 || rc == 1 || rc == -EBADMSG || rc == -IPCP_E_TOOBIG || rc == -IPCP_E_FRAGMENT ||
           rc == -IPCP_E_SEQUENCE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    struct fz_in in = fz_in_make(data, size);
    uint8_t g = fz_u8(&in);
    uint32_t producers = (g & 3u) + 1, consumers = (g & 4u) ? 2 : 1;
    uint32_t me = consumers == 2 && (g & 8u) ? 1 : 0;
    size_t room = rooms[(g >> 4) & 3], max_msg = maxes[(g >> 6) & 3];
    struct ipcp_sysvmsg_rx rx;
    FZ_CHECK_RC(ipcp_sysvmsg_rx_init(&rx, producers, consumers, me, room, max_msg), 0, "init");
    struct prod pr[4] = {{0}};
    for (uint32_t i = 0; i < 4; i++) {
        pr[i].data = malloc(max_msg);
        FZ_CHECK(pr[i].data != NULL, "malloc");
    }
    size_t bytes = 0;
    for (size_t op = 0; op < MAX_OPS && fz_left(&in) > 0 && bytes < MAX_BYTES; op++) {
        uint8_t o = fz_u8(&in);
        unsigned kind = o & 7u;
        uint32_t pi = kind <= 3 ? (o & 3u) : (o >> 3) & 3u;
        if (pi >= producers) pi %= producers;
        struct prod *p = &pr[pi];
        int mine = pi % consumers == me; /* its chunks reach this consumer's queue */
        long mtype = (long)pi + 1;
        size_t n;
        if (kind == 6) { /* raw bytes as a queue message */
            mtype = fz_u8(&in);
            size_t want = fz_u8(&in), got;
            const uint8_t *b = fz_bytes(&in, want, &got);
            memcpy(qmsg, b, got);
            if (mtype >= 1 && mtype <= producers) pr[mtype - 1].tainted = 1;
            int rc = ipcp_sysvmsg_rx_feed(&rx, mtype, qmsg, got);
            FZ_CHECK(known_rc(rc), "op %zu: raw chunk returned %d", op, rc);
            FZ_CHECK(ipcp_sysvmsg_rx_valid(&rx), "op %zu: invalid after a raw chunk", op);
            if (rc == 1) {
                /* a forged one-chunk message can complete: it still must fit the rules */
                size_t len;
                uint32_t who;
                uint64_t seq;
                FZ_CHECK(ipcp_sysvmsg_rx_message(&rx, &len, &who, &seq) != NULL, "message");
                FZ_CHECK(len <= max_msg && who % consumers == me && who + 1 == (uint32_t)mtype,
                         "op %zu: forged message breaks the rules", op);
                pr[who].active = 0; /* its stream restarts: the forger took its seq */
                pr[who].seq = seq + 1;
            }
            continue;
        }
        if (kind == 4) { /* give up half-way: the next message starts over with the same seq */
            p->active = 0;
            continue;
        }
        if (!p->active) { /* a new message */
            size_t t = fz_u16(&in);
            p->total = (uint32_t)(t > max_msg ? max_msg : t);
            p->index = 0;
            p->count = ipcp_sysvmsg_chunks(p->total, room);
            fz_fill(p->data, p->total, ((uint64_t)pi << 48) ^ (p->seq << 16) ^ p->total);
            p->active = 1;
        }
        n = make_chunk(p, pi, room);
        bytes += n;
        if (kind == 5) { /* damaged */
            size_t at = fz_u16(&in) % n;
            qmsg[at] ^= (uint8_t)(fz_u8(&in) | 1);
            p->tainted = 1;
        }
        int rc = ipcp_sysvmsg_rx_feed(&rx, mtype, qmsg, n);
        FZ_CHECK(known_rc(rc), "op %zu: feed returned %d", op, rc);
        FZ_CHECK(ipcp_sysvmsg_rx_valid(&rx), "op %zu: invalid after a feed", op);
        if (!mine) { /* another consumer's producer: always refused */
            FZ_CHECK_RC(rc, -EBADMSG, "a chunk of another consumer's producer");
            p->index++;
            if (p->index == p->count) p->active = 0, p->seq++;
            continue;
        }
        int last = p->index + 1 == p->count;
        if (kind == 7 && !last && rc == 0) {
            /* the same chunk again: a later chunk is refused (and the partial with it); a chunk
             * 0 is a restart of the message, which is what a sender that gave up sends */
            int rc2 = ipcp_sysvmsg_rx_feed(&rx, mtype, qmsg, n);
            FZ_CHECK(known_rc(rc2), "op %zu: replay returned %d", op, rc2);
            FZ_CHECK(ipcp_sysvmsg_rx_valid(&rx), "op %zu: invalid after a replay", op);
            if (!p->tainted && p->index > 0)
                FZ_CHECK(rc2 < 0, "op %zu: a replayed chunk was accepted", op);
            if (!p->tainted && p->index == 0) FZ_CHECK_RC(rc2, 0, "a repeated chunk 0 (a restart)");
            if (p->index > 0) p->tainted = 1;
        }
        if (kind == 7 && rc == 1 && p->count == 1 && !p->tainted) {
            /* a whole message again: a repeat of its seq, refused */
            int rc2 = ipcp_sysvmsg_rx_feed(&rx, mtype, qmsg, n);
            FZ_CHECK_RC(rc2, -IPCP_E_SEQUENCE, "a replayed whole message");
            FZ_CHECK(ipcp_sysvmsg_rx_valid(&rx), "op %zu: invalid after a replay", op);
            p->index++;
            p->active = 0;
            p->seq++;
            continue;
        }
        if (rc == 1) {
            size_t len;
            uint32_t who;
            uint64_t seq;
            const uint8_t *m = ipcp_sysvmsg_rx_message(&rx, &len, &who, &seq);
            FZ_CHECK(m != NULL && who == pi && len <= max_msg, "op %zu: message", op);
            if (!p->tainted) {
                FZ_CHECK(last && kind != 5, "op %zu: completed before its last chunk", op);
                FZ_CHECK(seq == p->seq && len == p->total && memcmp(m, p->data, len) == 0,
                         "op %zu: producer %u message %llu: other bytes than were sent", op, pi,
                         (unsigned long long)p->seq);
            }
        } else if (!p->tainted && kind != 5) {
            FZ_CHECK(rc == 0 && !last, "op %zu: an honest chunk refused (%d) or not completing", op,
                     rc);
        }
        if (kind == 5) {
            p->active = 0; /* given up */
            if (rc == 1) { /* a damaged message completed: in step with its seq again */
                uint64_t seq;
                ipcp_sysvmsg_rx_message(&rx, NULL, NULL, &seq);
                p->seq = seq + 1;
            }
            continue;
        }
        p->index++;
        if (rc == 1 || last) {
            p->active = 0;
            if (rc == 1) {
                uint64_t seq;
                ipcp_sysvmsg_rx_message(&rx, NULL, NULL, &seq);
                p->seq = seq + 1;
                p->tainted = 0; /* the receiver is in step with this producer again */
            } else {
                p->seq++;
            }
        }
    }
    ipcp_sysvmsg_rx_fini(&rx);
    for (uint32_t i = 0; i < 4; i++)
        free(pr[i].data);
    return 0;
}

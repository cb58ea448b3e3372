/* fuzz_mqchan_rx.c - the mq channel's receiver reassembly (mqchan.h, ipcp_mqchan_rx_feed) fed
 * the chunks a queue can hand it: honest producers interleaved at the fuzzer's choice, and, in
 * hostile inputs, forged and corrupted chunks among them.
 *
 * Input: byte 0 = configuration: bits 0-1 the payload per chunk (1, 7, 100, 8160), bits 2-3
 * max_msg (1, 100, 1000, 20000), bits 4-5 producers - 1, bit 6 hostile. Then one byte per
 * operation, on the lane (producer, priority) = (op >> 2) % (producers * 4):
 *   op & 3 = 0, 1  the lane's next chunk: a lane with no message in flight starts one (its
 *                  length a u16 from the input modulo max_msg + 1, its sequence the lane's
 *                  next); the queue keeps the order within a lane, not between lanes
 *   op & 3 = 2     the lane's producer gives its message up (a send that timed out half-way)
 *   op & 3 = 3     hostile inputs only: a chunk with one byte changed (position and value from
 *                  the input), or (op bit 7) a record of input bytes as it comes, at a priority
 *                  from the op. Benign inputs treat it as 0.
 * Checked after every feed: the state is valid (ipcp_mqchan_rx_valid), a delivered message is
 * within max_msg, from a producer in range, at the priority the queue reported. Benign inputs
 * also: every message whose chunks all arrived is delivered exactly then, once, with its
 * producer, priority, sequence, length and bytes; no chunk is refused; a message given up after
 * at least one chunk is counted as abandoned when its lane's next message starts. Work per
 * input: at most 4096 operations and 2 MiB of payload. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ipcproof/err.h"
#include "ipcproof/mqchan.h"

#define MAX_OPS   4096
#define MAX_BYTES (2u << 20)
#define MAX_LANES (4 * IPCP_MQCHAN_PRIOS)

static const size_t payloads[4] = {1, 7, 100, 8160};
static const size_t maxes[4] = {1, 100, 1000, 20000};

struct lane {
    int busy;      /* a message in flight */
    uint64_t seq;  /* its sequence; the lane's next is seq + 1 */
    uint64_t next; /* sequence of the lane's next message */
    uint32_t total, index, count;
    int partial; /* given up after >= 1 chunk, not yet superseded */
};

static uint8_t msgbuf[20000];
static uint8_t chunkbuf[IPCP_MQCHAN_HDR_SIZE + 8160 + 64];

FZ_NO_COVERAGE static uint64_t msg_seed(unsigned lane, uint64_t seq)
{
    return ((uint64_t)lane << 48) ^ (seq * 0x9e3779b97f4a7c15ull) ^ 0x6d71;
}

/* The 8 message bytes at offset 8 * w of the message with this seed (little-endian). */
FZ_NO_COVERAGE static uint64_t msg_word(uint64_t seed, size_t w)
{
    uint64_t z = (seed + w) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 29)) * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 32);
}

/* Message bytes [off, off + len) of the message with this seed, each a function of its offset
 * (a chunk is made without computing the whole message): byte p is byte p % 8 of msg_word(seed,
 * p / 8). Whole words are computed and stored once each, not once per byte. */
FZ_NO_COVERAGE static void fill_range(uint8_t *out, uint64_t seed, size_t off, size_t len)
{
    size_t i = 0;
    for (; i < len && ((off + i) & 7) != 0; i++)
        out[i] = (uint8_t)(msg_word(seed, (off + i) >> 3) >> (((off + i) & 7) * 8));
    for (; len - i >= 8; i += 8) {
        uint64_t z = htole64(msg_word(seed, (off + i) >> 3));
        memcpy(out + i, &z, 8);
    }
    for (; i < len; i++)
        out[i] = (uint8_t)(msg_word(seed, (off + i) >> 3) >> (((off + i) & 7) * 8));
}

/* The lane's next chunk, as a producer encodes it; returns its length. */
FZ_NO_COVERAGE static size_t make_chunk(struct lane *l, unsigned lane, size_t payload)
{
    struct ipcp_mqchan_hdr h = {.prio = (uint8_t)(lane % IPCP_MQCHAN_PRIOS),
                                .producer = (uint16_t)(lane / IPCP_MQCHAN_PRIOS),
                                .seq = l->seq,
                                .total = l->total,
                                .index = l->index,
                                .count = l->count};
    ipcp_mqchan_hdr_encode(&h, chunkbuf);
    size_t off = (size_t)l->index * payload;
    size_t len = l->total - off < payload ? l->total - off : payload;
    fill_range(chunkbuf + IPCP_MQCHAN_HDR_SIZE, msg_seed(lane, l->seq), off, len);
    return IPCP_MQCHAN_HDR_SIZE + len;
}

FZ_NO_COVERAGE static void check_out(const struct ipcp_mqchan_rx *rx,
                                     const struct ipcp_mqchan_msg *m, unsigned prio, size_t op)
{
    FZ_CHECK(m->len <= rx->max_msg, "op %zu: %zu bytes delivered, max_msg %zu", op, m->len,
             rx->max_msg);
    FZ_CHECK(m->producer < rx->producers && m->prio == prio, "op %zu: producer %u prio %u", op,
             m->producer, m->prio);
}

FZ_NO_COVERAGE int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = fz_in_make(data, size);
    if (size < 1) return 0;
    uint8_t cfg = fz_u8(&in);
    size_t payload = payloads[cfg & 3], max_msg = maxes[(cfg >> 2) & 3];
    uint32_t producers = 1 + ((cfg >> 4) & 3);
    int hostile = (cfg >> 6) & 1;
    unsigned lanes = producers * IPCP_MQCHAN_PRIOS;
    struct ipcp_mqchan_rx rx;
    FZ_CHECK_RC(ipcp_mqchan_rx_init(&rx, producers, max_msg, payload + IPCP_MQCHAN_HDR_SIZE), 0,
                "rx_init");
    struct lane ln[MAX_LANES];
    memset(ln, 0, sizeof(ln));
    uint64_t abandoned = 0;
    size_t bytes = 0;
    for (size_t op = 1; op <= MAX_OPS && fz_left(&in) >= 1 && bytes <= MAX_BYTES; op++) {
        uint8_t o = fz_u8(&in);
        unsigned lane = (unsigned)(o >> 2) % lanes, prio = lane % IPCP_MQCHAN_PRIOS;
        struct lane *l = &ln[lane];
        unsigned kind = o & 3;
        if (kind == 3 && !hostile) kind = 0;
        if (kind == 2) { /* the producer gives its message up */
            if (l->busy && l->index > 0) l->partial = 1;
            l->busy = 0;
            continue;
        }
        if (kind == 3 && (o & 0x80)) { /* a record of input bytes */
            size_t got;
            size_t want = fz_u8(&in) % (IPCP_MQCHAN_HDR_SIZE + payload + 1);
            const uint8_t *rec = fz_bytes(&in, want, &got);
            memcpy(chunkbuf, rec, got);
            struct ipcp_mqchan_msg m;
            int rc = ipcp_mqchan_rx_feed(&rx, chunkbuf, got, prio, &m);
            FZ_CHECK(ipcp_mqchan_rx_valid(&rx), "op %zu: invalid after a forged record", op);
            if (rc == 1) check_out(&rx, &m, prio, op);
            continue;
        }
        if (!l->busy) { /* the lane's next message */
            l->busy = 1;
            l->seq = l->next++;
            l->total = (uint32_t)(fz_u16(&in) % (max_msg + 1));
            l->index = 0;
            l->count = ipcp_mqchan_chunks(l->total, payload);
            if (l->partial) abandoned++;
            l->partial = 0;
        }
        size_t n = make_chunk(l, lane, payload);
        bytes += n;
        if (kind == 3) { /* corrupt one byte; the lane's exactness is gone: hostile checks only */
            size_t pos = fz_u16(&in) % n;
            chunkbuf[pos] ^= (uint8_t)(fz_u8(&in) | 1);
        }
        struct ipcp_mqchan_msg m;
        int rc = ipcp_mqchan_rx_feed(&rx, chunkbuf, n, prio, &m);
        FZ_CHECK(ipcp_mqchan_rx_valid(&rx), "op %zu: invalid state", op);
        if (rc == 1) check_out(&rx, &m, prio, op);
        int last = ++l->index == l->count;
        if (last) l->busy = 0;
        if (hostile) {
            FZ_CHECK(rc >= -IPCP_E_LAST && rc <= 1, "op %zu: rc %d", op, rc);
            continue;
        }
        FZ_CHECK_RC(rc, last ? 1 : 0, "feed of an honest chunk");
        if (last) {
            fill_range(msgbuf, msg_seed(lane, l->seq), 0, l->total);
            FZ_CHECK(m.seq == l->seq && m.len == l->total && m.producer == lane / IPCP_MQCHAN_PRIOS,
                     "op %zu: got seq %llu len %zu, want %llu %u", op, (unsigned long long)m.seq,
                     m.len, (unsigned long long)l->seq, l->total);
            FZ_CHECK(m.len == 0 || memcmp(m.data, msgbuf, m.len) == 0, "op %zu: bytes differ", op);
        }
        FZ_CHECK(rx.abandoned == abandoned, "op %zu: abandoned %llu, want %llu", op,
                 (unsigned long long)rx.abandoned, (unsigned long long)abandoned);
        FZ_CHECK(rx.dropped == 0, "op %zu: an honest chunk was dropped", op);
    }
    ipcp_mqchan_rx_fini(&rx);
    return 0;
}

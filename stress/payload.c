/* payload.c - the messages a stress run sends and their verification.
 *
 * Message (producer p, sequence s) is fully determined by (seed, p, s): its length is drawn from
 * [min_size, max_size] and its body is cut from a pool of random bytes at an offset drawn from
 * the same hash. A 40-byte header carries what the consumer needs to check it alone:
 *
 *   off size field
 *     0    4 magic     "IPST"
 *     4    4 run_tag   derived from the seed: messages of another run are torn
 *     8    8 seq
 *    16    4 producer
 *    20    4 len       whole message, header included
 *    24    8 send_ns   CLOCK_MONOTONIC at send (latency)
 *    32    8 sum       XXH3-64 of the body keyed with (seed, producer, seq, len), xor a hash
 *                      of send_ns under the same key
 *
 * Every byte is covered: magic, run tag and length are compared, producer, seq and length key
 * the checksum, and send_ns is folded into it.
 *
 * The producer does not copy the body: it sends straight from its private copy of the pool,
 * writing the header over the 40 bytes before the body and restoring them afterwards
 * (st_payload_prepare / st_payload_restore). The per-message cost of verification is then one
 * XXH3 pass on each side.
 *
 * Keying the checksum with the header's identity means a header of one message followed by the
 * body of another (the classic torn read) never checks out, while a complete old message that is
 * delivered again checks out and is reported as the duplicate it is. XXH3 runs at memory speed,
 * so verification costs little next to the transport (see --overhead). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
/* libxxhash's runtime dispatch picks AVX2/AVX-512 XXH3 where the CPU has it */
#include <xxh_x86dispatch.h>
#endif

#include "stress.h"

#define ST_MAGIC     0x54535049u /* "IPST" little-endian */
#define ST_POOL_SPAN (64u << 10)

static uint64_t msg_hash(const struct st_payload *pl, uint32_t producer, uint64_t seq)
{
    return splitmix64_mix(pl->seed ^ splitmix64_mix(((uint64_t)producer << 40) ^ seq));
}

int st_payload_init(struct st_payload *pl, uint64_t seed, size_t min_size, size_t max_size)
{
    memset(pl, 0, sizeof(*pl));
    if (min_size < ST_HDR_SIZE || max_size < min_size || max_size > ST_MAX_MSG) return -EINVAL;
    pl->seed = seed;
    pl->run_tag = (uint32_t)(splitmix64_mix(seed ^ 0x72756e746167ull) >> 16);
    pl->min_size = min_size;
    pl->max_size = max_size;
    pl->pool_span = ST_POOL_SPAN;
    size_t n = ST_HDR_SIZE + ST_POOL_SPAN + max_size + 8;
    pl->pool_len = n;
    pl->pool = malloc(n);
    if (pl->pool == NULL) return -ENOMEM;
    uint64_t st = seed ^ 0x706f6f6cull;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v = splitmix64_next(&st);
        memcpy(pl->pool + i, &v, 8);
    }
    return 0;
}

void st_payload_fini(struct st_payload *pl)
{
    free(pl->pool);
    pl->pool = NULL;
}

size_t st_payload_size(const struct st_payload *pl, uint32_t producer, uint64_t seq)
{
    size_t span = pl->max_size - pl->min_size + 1;
    return pl->min_size + (size_t)(splitmix64_mix(msg_hash(pl, producer, seq) ^ 0x5a) % span);
}

/* Where the body of (producer, seq) starts in the pool: at least one header size in. */
static size_t body_off(const struct st_payload *pl, uint32_t producer, uint64_t seq)
{
    return ST_HDR_SIZE + (size_t)(msg_hash(pl, producer, seq) % pl->pool_span);
}

static uint64_t body_key(const struct st_payload *pl, uint32_t producer, uint64_t seq, size_t len)
{
    return msg_hash(pl, producer, seq) ^ ((uint64_t)len << 3) ^ pl->run_tag;
}

/* The checksum of a message: its body and its send time, under its key. */
static uint64_t msg_sum(const uint8_t *body, size_t blen, uint64_t key, uint64_t send_ns)
{
    return XXH3_64bits_withSeed(body, blen, key) ^ splitmix64_mix(send_ns ^ key);
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

size_t st_payload_make(const struct st_payload *pl, uint32_t producer, uint64_t seq, void *buf,
                       int verify, int64_t now_ns)
{
    uint8_t *m = buf;
    size_t len = st_payload_size(pl, producer, seq);
    size_t blen = len - ST_HDR_SIZE;
    uint64_t sum = 0;
    if (verify) {
        memcpy(m + ST_HDR_SIZE, pl->pool + body_off(pl, producer, seq), blen);
        sum = msg_sum(m + ST_HDR_SIZE, blen, body_key(pl, producer, seq, len), (uint64_t)now_ns);
    }
    put32(m, ST_MAGIC);
    put32(m + 4, pl->run_tag);
    put64(m + 8, seq);
    put32(m + 16, producer);
    put32(m + 20, (uint32_t)len);
    put64(m + 24, (uint64_t)now_ns);
    put64(m + 32, sum);
    return len;
}

const void *st_payload_prepare(const struct st_payload *pl, uint8_t *arena, uint32_t producer,
                               uint64_t seq, size_t *len, int verify, int64_t now_ns,
                               struct st_restore *undo)
{
    size_t off = body_off(pl, producer, seq);
    size_t l = st_payload_size(pl, producer, seq);
    uint8_t *m = arena + off - ST_HDR_SIZE;
    undo->at = m;
    memcpy(undo->saved, m, ST_HDR_SIZE);
    uint64_t sum = 0;
    if (verify)
        sum = msg_sum(m + ST_HDR_SIZE, l - ST_HDR_SIZE, body_key(pl, producer, seq, l),
                      (uint64_t)now_ns);
    put32(m, ST_MAGIC);
    put32(m + 4, pl->run_tag);
    put64(m + 8, seq);
    put32(m + 16, producer);
    put32(m + 20, (uint32_t)l);
    put64(m + 24, (uint64_t)now_ns);
    put64(m + 32, sum);
    *len = l;
    return m;
}

void st_payload_restore(struct st_restore *undo)
{
    if (undo->at != NULL) memcpy(undo->at, undo->saved, ST_HDR_SIZE);
    undo->at = NULL;
}

static const char *const torn_why[ST_TW_N] = {
    [ST_TW_NONE] = "corrupt",
    [ST_TW_SHORT] = "shorter than the message header",
    [ST_TW_RANGE] = "header out of range",
    [ST_TW_MAGIC] = "bad magic",
    [ST_TW_RUNTAG] = "run tag of another run",
    [ST_TW_PRODUCER] = "producer id out of range",
    [ST_TW_SEQ] = "sequence out of range",
    [ST_TW_HDRLEN] = "length differs from the length in the header",
    [ST_TW_LEN] = "length differs from the length sent",
    [ST_TW_SUM] = "checksum mismatch (body or send time)",
    [ST_TW_EMSGSIZE] = "recv() returned -EMSGSIZE: a message longer than any sent",
};

const char *st_torn_why_text(uint64_t why)
{
    return why < ST_TW_N ? torn_why[why] : "corrupt";
}

int st_payload_check(const struct st_payload *pl, const void *msg, size_t len, uint32_t producers,
                     uint64_t seq_cap, int verify, struct st_msginfo *mi)
{
    const uint8_t *m = msg;
    mi->producer = 0;
    mi->seq = 0;
    mi->send_ns = 0;
    mi->why = ST_TW_NONE;
    if (len < ST_HDR_SIZE) {
        mi->why = ST_TW_SHORT;
        return ST_MSG_TORN;
    }
    mi->producer = get32(m + 16);
    mi->seq = get64(m + 8);
    mi->send_ns = (int64_t)get64(m + 24);
    if (!verify) {
        /* still bounded: the caller indexes per-producer state with these */
        if (mi->producer >= producers || mi->seq >= seq_cap) {
            mi->why = ST_TW_RANGE;
            return ST_MSG_TORN;
        }
        return ST_MSG_OK;
    }
    if (get32(m) != ST_MAGIC) {
        mi->why = ST_TW_MAGIC;
        return ST_MSG_TORN;
    }
    if (get32(m + 4) != pl->run_tag) {
        mi->why = ST_TW_RUNTAG;
        return ST_MSG_TORN;
    }
    if (mi->producer >= producers) {
        mi->why = ST_TW_PRODUCER;
        return ST_MSG_TORN;
    }
    if (mi->seq >= seq_cap) {
        mi->why = ST_TW_SEQ;
        return ST_MSG_TORN;
    }
    if (get32(m + 20) != len) {
        mi->why = ST_TW_HDRLEN;
        return ST_MSG_TORN;
    }
    if (len != st_payload_size(pl, mi->producer, mi->seq)) {
        mi->why = ST_TW_LEN;
        return ST_MSG_TORN;
    }
    uint64_t sum = msg_sum(m + ST_HDR_SIZE, len - ST_HDR_SIZE,
                           body_key(pl, mi->producer, mi->seq, len), (uint64_t)mi->send_ns);
    if (sum != get64(m + 32)) {
        mi->why = ST_TW_SUM;
        return ST_MSG_TORN;
    }
    return ST_MSG_OK;
}

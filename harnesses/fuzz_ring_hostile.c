/* fuzz_ring_hostile.c - the ring's consumer (ring.h) facing a corrupt or malicious producer:
 * between consumer operations the input writes whatever it likes into the shared region -
 * crafted records (lying lengths, flags, sequence numbers, totals, pads), arbitrary bytes at
 * arbitrary offsets of the header and the data area, any value into the tail, head, state or
 * layout words - and an honest producer handle also publishes real messages in between.
 *
 * Input: byte 0: bits 0-1 capacity 128, 256, 1024, 4096; bits 2-3 max_msg 64, capacity - 16,
 * 3 x capacity, 65536. Then operations (op byte, operands):
 *   0 a crafted record at the raw tail: len, flags (any, MARK usually kept), seq, total, then
 *     the tail is advanced by its size, by a chosen amount, or not at all
 *   1 bytes written at an offset of the header (layout, tail, head, state, pids) or the data
 *   2 a u32 stored into the tail or the head word: near the current value, unaligned, huge
 *   3 recv (buffer: max_msg, 1 byte, or a u16), timeout 0
 *   4 peek, then release or not
 *   5 an honest send through the producer handle (0, -EAGAIN, -EMSGSIZE, or what corruption
 *     makes it say: -IPCP_E_CORRUPT, -EPIPE for a state word that says "consumer closed")
 *   6 a second consumer attach on the region (it must validate: bad magic/version/layout/
 *     indices, or -EBUSY), closed again at once
 * Checked: only the errors ring.h documents (-EAGAIN, -EMSGSIZE, -IPCP_E_STATE,
 * -IPCP_E_CORRUPT, -IPCP_E_FRAGMENT, -IPCP_E_SEQUENCE, -IPCP_E_TOOBIG); -IPCP_E_CORRUPT is
 * sticky; a delivered length fits the buffer and max_msg; a peeked message lies inside the data
 * area or the consumer's own buffer; the consumer's buffer never exceeds max(max_msg, 256) bytes
 * whatever a record declares; ipcp_ring_valid() on the consumer after every operation. ASan
 * guards every access: the region is allocated to its exact size. No operation waits (timeout
 * 0 everywhere), so no futex or clock is involved. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "atomics.h"
#include "ipcproof/chunk.h"
#include "ipcproof/err.h"
#include "ipcproof/ring.h"

#define MAX_OPS 1024

static const uint32_t caps[4] = {128, 256, 1024, 4096};

static uint8_t pattern[65536 + 256];

static _Atomic uint32_t *word_at(uint8_t *mem, size_t off)
{
    return (_Atomic uint32_t *)(void *)(mem + off);
}

static int is_consumer_error(long rc)
{
    return rc == -EAGAIN || rc == -EMSGSIZE || rc == -IPCP_E_STATE || rc == -IPCP_E_CORRUPT ||
           rc == -IPCP_E_FRAGMENT || rc == -IPCP_E_SEQUENCE || rc == -IPCP_E_TOOBIG ||
           rc == -EPIPE || rc == -IPCP_E_TRUNCATED; /* the closed bit is shared memory too */
}

FZ_NO_COVERAGE int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (pattern[0] == 0 && pattern[1] == 0) fz_fill(pattern, sizeof(pattern), 0xb0571e);
    struct fz_in in = fz_in_make(data, size);
    uint8_t cfgb = fz_u8(&in);
    uint32_t cap = caps[cfgb & 3];
    size_t maxes[4] = {64, cap - IPCP_RING_REC_HDR, 3u * cap, 65536};
    size_t max_msg = maxes[(cfgb >> 2) & 3];
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = max_msg, .spin = 1};
    size_t size_mem = ipcp_ring_mem_size(cap);
    uint8_t *mem = aligned_alloc(64, size_mem);
    uint8_t *buf = malloc(max_msg + 1);
    FZ_CHECK(mem != NULL && buf != NULL, "malloc");
    uint8_t *area = mem + IPCP_RING_HDR_SIZE;
    struct ipcp_ring prod, cons;
    FZ_CHECK_RC(ipcp_ring_init_mem(&prod, mem, size_mem, IPCP_RING_PRODUCER, &cfg), 0, "init");
    FZ_CHECK_RC(ipcp_ring_attach_mem(&cons, mem, size_mem, IPCP_RING_CONSUMER, &cfg), 0, "attach");
    int corrupt = 0, peeked = 0;
    uint32_t raw_seq = 0;

    for (unsigned op = 1; op <= MAX_OPS && fz_left(&in) > 0; op++) {
        uint8_t o = fz_u8(&in);
        /* The raw (hostile) producer works from the shared tail word as it stands. Relaxed
         * loads and stores: one thread; the consumer reads them with its own ordering. */
        uint32_t tail = ipcp_load_relaxed32(word_at(mem, IPCP_RING_OFF_TAIL));
        switch (o & 7) {
        case 0: { /* a crafted record */
            uint8_t sel = fz_u8(&in);
            uint32_t len;
            switch (sel & 3) {
            case 0:
                len = fz_u8(&in);
                break;
            case 1:
                len = fz_u16(&in);
                break;
            case 2:
                len = fz_u32(&in);
                break;
            default:
                len = cap - IPCP_RING_REC_HDR;
                break;
            }
            uint32_t flags = (sel >> 2) & 7;                    /* FIRST, LAST, PAD bits */
            if (sel & 0x20) flags |= (uint32_t)fz_u8(&in) << 3; /* unknown low bits */
            if (!(sel & 0x40))
                flags |= IPCP_RING_REC_MARK;
            else
                flags |= fz_u32(&in) & ~0xffu; /* a wrong mark */
            uint32_t seq = (sel & 0x80) ? fz_u32(&in) : raw_seq;
            uint8_t tsel = fz_u8(&in);
            uint32_t total;
            switch (tsel & 3) {
            case 0:
                total = len;
                break;
            case 1:
                total = len + fz_u16(&in);
                break;
            case 2:
                total = (uint32_t)max_msg + 1;
                break;
            default:
                total = fz_u32(&in);
                break;
            }
            uint32_t off = tail & (cap - 1);
            uint32_t hdr[4] = {len, flags, seq, total};
            size_t room = cap - off; /* a multiple of 16 unless the tail word was unaligned */
            memcpy(area + off, hdr, room < sizeof(hdr) ? room : sizeof(hdr));
            size_t space = room > sizeof(hdr) ? room - sizeof(hdr) : 0;
            size_t plen = len < space ? len : space;
            if (plen > 0) memcpy(area + off + sizeof(hdr), pattern + (op % 256), plen);
            uint32_t adv;
            switch ((tsel >> 2) & 3) {
            case 0:
            case 1:
                adv = IPCP_RING_REC_HDR + ((len + 15u) & ~15u);
                break;
            case 2:
                adv = (uint32_t)fz_u16(&in);
                break;
            default:
                adv = 0;
                break;
            }
            if (tsel & 0x10) raw_seq++;
            ipcp_store_release32(word_at(mem, IPCP_RING_OFF_TAIL), tail + adv);
            break;
        }
        case 1: { /* arbitrary bytes anywhere in the region */
            uint16_t at = fz_u16(&in);
            size_t n = 1 + fz_u8(&in) % 16, got;
            size_t off = at % size_mem;
            if (n > size_mem - off) n = size_mem - off;
            const uint8_t *src = fz_bytes(&in, n, &got);
            memcpy(mem + off, src, got);
            break;
        }
        case 2: { /* tail or head word */
            uint8_t sel = fz_u8(&in);
            size_t word = (sel & 1) ? IPCP_RING_OFF_HEAD : IPCP_RING_OFF_TAIL;
            uint32_t cur = ipcp_load_relaxed32(word_at(mem, word)), v;
            switch ((sel >> 1) & 3) {
            case 0:
                v = cur + 16u * (uint32_t)(int8_t)fz_u8(&in);
                break;
            case 1:
                v = cur + 1 + fz_u8(&in) % 15; /* unaligned */
                break;
            case 2:
                v = cur + cap + 16u * (fz_u8(&in) % 4); /* a capacity ahead, or more */
                break;
            default:
                v = fz_u32(&in);
                break;
            }
            ipcp_store_release32(word_at(mem, word), v);
            break;
        }
        case 3: { /* recv */
            uint8_t sel = fz_u8(&in);
            size_t bcap = (sel & 3) == 0 ? max_msg : (sel & 3) == 1 ? 1 : fz_u16(&in);
            if (bcap > max_msg) bcap = max_msg;
            ssize_t n = ipcp_ring_recv(&cons, buf, bcap, 0);
            if (n >= 0) {
                FZ_CHECK(!corrupt, "op %u: recv delivered after a sticky -IPCP_E_CORRUPT", op);
                FZ_CHECK((size_t)n <= bcap && (size_t)n <= max_msg,
                         "op %u: recv returned %zd bytes into a buffer of %zu", op, n, bcap);
            } else {
                FZ_CHECK(is_consumer_error(n), "op %u: recv returned %zd (%s)", op, n,
                         ipcp_errname((int)n));
                if (corrupt) FZ_CHECK_RC(n, -IPCP_E_CORRUPT, "recv after corruption");
                if (n == -IPCP_E_STATE) FZ_CHECK(peeked, "op %u: -IPCP_E_STATE, not peeked", op);
                if (n == -EMSGSIZE) {
                    size_t need = ipcp_ring_next_len(&cons);
                    FZ_CHECK(need > bcap && need <= max_msg,
                             "op %u: -EMSGSIZE with next_len %zu (buffer %zu, max %zu)", op, need,
                             bcap, max_msg);
                }
                corrupt |= n == -IPCP_E_CORRUPT;
            }
            break;
        }
        case 4: { /* peek, release */
            const void *p = NULL;
            ssize_t n = ipcp_ring_peek(&cons, &p, 0);
            if (n >= 0) {
                FZ_CHECK(!corrupt, "op %u: peek delivered after corruption", op);
                FZ_CHECK((size_t)n <= max_msg, "op %u: peek of %zd bytes, max %zu", op, n, max_msg);
                const uint8_t *q = p;
                int in_ring = q >= area && q <= area + cap && (size_t)n <= (size_t)(area + cap - q);
                int in_own = cons.c.reasm.buf != NULL && q >= cons.c.reasm.buf &&
                             (size_t)n <= cons.c.reasm.cap - (size_t)(q - cons.c.reasm.buf);
                FZ_CHECK(in_ring || in_own || n == 0, "op %u: peeked %zd bytes outside the ring",
                         op, n);
                if (n > 0) memcpy(buf, p, (size_t)n); /* ASan checks every byte */
                peeked = 1;
            } else {
                FZ_CHECK(is_consumer_error(n) && n != -EMSGSIZE && n != -IPCP_E_STATE,
                         "op %u: peek returned %zd (%s)", op, n, ipcp_errname((int)n));
                if (corrupt) FZ_CHECK_RC(n, -IPCP_E_CORRUPT, "peek after corruption");
                corrupt |= n == -IPCP_E_CORRUPT;
            }
            if (fz_u8(&in) & 1) {
                int rc = ipcp_ring_release(&cons);
                if (corrupt) {
                    FZ_CHECK_RC(rc, -IPCP_E_CORRUPT, "release after corruption");
                } else {
                    FZ_CHECK_RC(rc, peeked ? 0 : -IPCP_E_STATE, "release");
                    peeked = 0;
                }
            }
            break;
        }
        case 5: { /* the honest producer */
            size_t len = fz_u16(&in) % (max_msg + 1);
            int rc = ipcp_ring_send(&prod, pattern, len, 0);
            FZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -IPCP_E_CORRUPT || rc == -EMSGSIZE ||
                         rc == -EPIPE, /* a state word that says "consumer closed" */
                     "op %u: honest send returned %d (%s)", op, rc, ipcp_errname(rc));
            if (rc == 0) raw_seq++;
            break;
        }
        default: { /* a second consumer must validate what it attaches to */
            struct ipcp_ring c2;
            int rc = ipcp_ring_attach_mem(&c2, mem, size_mem, IPCP_RING_CONSUMER, &cfg);
            FZ_CHECK(rc == -EBUSY || rc == -IPCP_E_BADMAGIC || rc == -IPCP_E_BADVERSION ||
                         rc == -IPCP_E_LAYOUT || rc == -IPCP_E_CORRUPT ||
                         rc == -IPCP_E_PIDNS /* a forged namespace field */ || rc == 0,
                     "op %u: attach returned %d (%s)", op, rc, ipcp_errname(rc));
            if (rc == 0) {
                FZ_CHECK(ipcp_ring_valid(&c2), "op %u: attached handle invalid", op);
                ipcp_ring_close(&c2);
            }
            break;
        }
        }
        FZ_CHECK(ipcp_ring_valid(&cons), "op %u: consumer handle invalid", op);
        size_t bound = max_msg > 256 ? max_msg : 256;
        FZ_CHECK(cons.c.reasm.cap <= bound, "op %u: consumer buffer of %zu bytes (max_msg %zu)", op,
                 cons.c.reasm.cap, max_msg);
    }
    ipcp_ring_close(&cons);
    ipcp_ring_close(&prod);
    free(buf);
    free(mem);
    return 0;
}

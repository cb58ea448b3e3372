/* gen_seeds.c - writes the seed inputs of the fuzz targets, with descriptive names, into
 * OUTDIR/<target>/seed-<what>. Frames are made with the library's own encoder, so seeds stay
 * valid when the format changes. ci/seed-corpora runs this, minimizes the result with libFuzzer's
 * -merge=1 and keeps in corpora/<target>/ the named seeds that add coverage.
 *
 * Usage: ipcp_gen_seeds OUTDIR [target ...]   (no target: all of them)
 * Each seed's layout is the one documented at the top of harnesses/fuzz_<target>.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ipcproof/chunk.h"
#include "ipcproof/frame.h"

/* ---- a growable byte buffer ----------------------------------------------------------------- */

struct buf {
    uint8_t b[1 << 17];
    size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n > sizeof(b->b)) {
        fprintf(stderr, "gen_seeds: seed too large\n");
        exit(1);
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put8(struct buf *b, uint8_t v)
{
    put(b, &v, 1);
}
static void put16(struct buf *b, uint16_t v)
{
    put8(b, (uint8_t)v);
    put8(b, (uint8_t)(v >> 8));
}

static void put32(struct buf *b, uint32_t v)
{
    put16(b, (uint16_t)v);
    put16(b, (uint16_t)(v >> 16));
}

static const char *g_out;
static const char *g_target;
static int g_count;

static void emit(const struct buf *b, const char *what)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", g_out, g_target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/seed-%s", g_out, g_target, what);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(b->b, 1, b->n, f) != b->n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    g_count++;
}

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8));
}

/* ---- frame_decode --------------------------------------------------------------------------- */

/* cfg byte of fuzz_frame_decode.c */
#define FD_MAX40    0x00
#define FD_MAX255   0x01
#define FD_MAX4096  0x02
#define FD_MAX64K   0x03
#define FD_FIXH     0x04
#define FD_FIXP     0x08
#define FD_ZC       0x10
#define FD_RESET    0x20
#define FD_BYTEWISE 0x40
#define FD_WHOLE    0x80
#define FD_TINY     0xc0

static void frame(struct buf *b, uint8_t flags, uint16_t type, uint64_t seq, uint32_t writer,
                  uint32_t total, const uint8_t *payload, uint32_t len)
{
    struct ipcp_frame_hdr h = {
        .flags = flags, .type = type, .seq = seq, .len = len, .writer = writer, .total = total};
    struct ipcp_frame_enc e;
    long n = ipcp_frame_encode(&e, &h, payload, IPCP_FRAME_MAX_HARD);
    if (n < 0) {
        fprintf(stderr, "gen_seeds: encode failed (%ld)\n", n);
        exit(1);
    }
    put(b, e.hdr, IPCP_FRAME_HDR_SIZE);
    if (len) put(b, payload, len);
}

static void whole(struct buf *b, uint16_t type, uint64_t seq, uint32_t len)
{
    static uint8_t p[65536];
    pattern(p, len, (unsigned)seq);
    frame(b, IPCP_FRAME_F_WHOLE, type, seq, 0, len, p, len);
}

/* One message of total bytes cut into fragment frames of at most frag bytes. */
static void fragmented(struct buf *b, uint32_t writer, uint64_t seq, uint32_t total, uint32_t frag)
{
    static uint8_t p[65536];
    pattern(p, total, (unsigned)(seq + writer));
    uint32_t off = 0;
    do {
        uint32_t len = total - off < frag ? total - off : frag;
        uint8_t fl = (uint8_t)((off == 0 ? IPCP_FRAME_F_FIRST : 0) |
                               (off + len == total ? IPCP_FRAME_F_LAST : 0));
        frame(b, fl, 7, seq, writer, total, p + off, len);
        off += len;
    } while (off < total);
}

static void start(struct buf *b, uint8_t cfg, uint8_t split_seed)
{
    b->n = 0;
    put8(b, cfg);
    put8(b, split_seed);
}

static void gen_frame_decode(void)
{
    static struct buf b;
    start(&b, FD_MAX4096, 1);
    whole(&b, 1, 0, 0);
    emit(&b, "whole-frame-empty");
    start(&b, FD_MAX4096, 2);
    whole(&b, 1, 0, 64);
    emit(&b, "whole-frame-64b");
    start(&b, FD_MAX4096 | FD_ZC, 3);
    whole(&b, 2, 5, 3000);
    emit(&b, "whole-frame-3000b-zero-copy");
    start(&b, FD_MAX4096, 4);
    whole(&b, 3, 9, 4096);
    emit(&b, "whole-frame-at-max-payload");
    start(&b, FD_MAX255 | FD_BYTEWISE, 0);
    whole(&b, 1, 1, 200);
    emit(&b, "whole-frame-bytewise");
    start(&b, FD_MAX255, 6);
    for (unsigned i = 0; i < 12; i++)
        whole(&b, (uint16_t)i, i, i * 7);
    emit(&b, "twelve-frames-sizes-0-to-77");
    start(&b, FD_MAX255 | FD_WHOLE, 0);
    for (unsigned i = 0; i < 5; i++)
        whole(&b, 1, i, 33);
    emit(&b, "five-frames-in-one-piece");
    start(&b, FD_MAX255 | FD_TINY, 8);
    fragmented(&b, 0, 3, 700, 250);
    emit(&b, "fragments-first-middle-last");
    start(&b, FD_MAX4096, 9);
    {
        /* Two writers' fragments interleaved, as on a pipe with several writers. */
        static uint8_t p[2000];
        pattern(p, sizeof(p), 1);
        frame(&b, IPCP_FRAME_F_FIRST, 7, 0, 1, 2000, p, 1000);
        frame(&b, IPCP_FRAME_F_FIRST, 7, 0, 2, 1500, p, 700);
        frame(&b, 0, 7, 0, 2, 1500, p + 700, 700);
        frame(&b, IPCP_FRAME_F_LAST, 7, 0, 1, 2000, p + 1000, 1000);
        frame(&b, IPCP_FRAME_F_LAST, 7, 0, 2, 1500, p + 1400, 100);
    }
    emit(&b, "fragments-two-writers-interleaved");
    /* Frames without payload checksum: accepted when allowed (split seed bit 7), else refused. */
    {
        static uint8_t p[300];
        pattern(p, sizeof(p), 2);
        for (int allow = 0; allow < 2; allow++) {
            start(&b, FD_MAX4096, (uint8_t)(allow ? 0x85 : 0x05));
            frame(&b, IPCP_FRAME_F_WHOLE | IPCP_FRAME_F_NOSUM, 1, 0, 0, 300, p, 300);
            whole(&b, 1, 1, 50);
            frame(&b, IPCP_FRAME_F_FIRST | IPCP_FRAME_F_NOSUM, 1, 2, 0, 300, p, 100);
            frame(&b, IPCP_FRAME_F_LAST | IPCP_FRAME_F_NOSUM, 1, 2, 0, 300, p + 100, 200);
            emit(&b, allow ? "no-payload-checksum-allowed" : "no-payload-checksum-refused");
        }
    }
    start(&b, FD_MAX64K | FD_ZC, 10);
    fragmented(&b, 5, 77, 9000, 4056);
    emit(&b, "fragments-pipe-buf-sized");
    start(&b, FD_MAX4096, 11);
    whole(&b, 1, 1, 100);
    b.n -= 30;
    emit(&b, "truncated-payload");
    start(&b, FD_MAX4096, 12);
    whole(&b, 1, 1, 10);
    b.n = 2 + 25;
    emit(&b, "truncated-header");

    /* Each corruption, followed by a good frame that the reset (cfg bit 5) reaches. */
    static const struct {
        const char *what;
        size_t off;
        uint8_t xor ;
        uint8_t cfg;
    } bad[] = {
        {"bad-magic-then-good", 0, 0x20, 0},
        {"bad-version-then-good", 4, 0x03, 0},
        {"bad-header-sum-then-good", 28, 0x01, 0},
        {"bad-payload-sum-then-good", 40 + 5, 0x80, 0},
        {"unknown-flag-repaired-then-good", 5, 0x10, FD_FIXH},
        {"total-below-len-repaired-then-good", 24, 0x20, FD_FIXH},
        {"too-big-repaired-then-good", 17, 0x10, FD_FIXH},
        {"payload-changed-repaired-then-good", 40 + 9, 0x55, FD_FIXP | FD_FIXH},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        start(&b, (uint8_t)(FD_MAX4096 | FD_RESET | bad[i].cfg), (uint8_t)(20 + i));
        whole(&b, 1, 1, 48);
        b.b[2 + bad[i].off] ^= bad[i].xor ;
        whole(&b, 1, 2, 48);
        emit(&b, bad[i].what);
    }
    /* A whole-flagged frame whose total differs from its length. */
    start(&b, FD_MAX4096 | FD_RESET | FD_FIXH, 40);
    {
        uint8_t p[16];
        pattern(p, sizeof(p), 3);
        frame(&b, IPCP_FRAME_F_FIRST, 1, 1, 0, 16, p, 16);
        b.b[2 + 5] = IPCP_FRAME_F_WHOLE;
        b.b[2 + 24] = 17;
        whole(&b, 1, 2, 8);
    }
    emit(&b, "whole-total-mismatch-repaired");
    start(&b, FD_MAX4096 | FD_FIXH | FD_FIXP, 41);
    whole(&b, 1, 1, 24);
    memset(b.b + 2 + 28, 0, 12); /* sums zeroed: the repair bits rebuild them */
    emit(&b, "zeroed-sums-repaired");
}

/* ---- chunk_reassembly ------------------------------------------------------------------------ */

/* Op encoding of fuzz_chunk_reassembly.c. */
#define CR_F      0x01
#define CR_L      0x02
#define CR_SEQCUR 0x00
#define CR_SEQNXT 0x08
#define CR_SEQ0   0x18
#define CR_TOTCUR 0x00
#define CR_TOT16  0x20
#define CR_TOTMAX 0x40
#define CR_TOTLIE 0x60
/* arg: length selectors (arg >> 3) */
#define CR_NEED    (0 << 3)
#define CR_NEEDM1  (3 << 3)
#define CR_NEEDP1  (4 << 3)
#define CR_ZERO    (5 << 3)
#define CR_HALF    (6 << 3)
#define CR_THIRD   (8 << 3)
#define CR_SEVENTH (9 << 3)
#define CR_LEN16   (10 << 3)

/* max_msg selectors (byte 0) */
#define CR_MAX255  2
#define CR_MAX1000 5
#define CR_MAX4096 6
#define CR_MAX64K  7

static void cr_op(struct buf *b, uint8_t op, uint8_t arg)
{
    put8(b, op);
    put8(b, arg);
}

static void cr_first(struct buf *b, uint8_t flags, uint16_t total, uint8_t lensel)
{
    cr_op(b, (uint8_t)(flags | CR_SEQ0 | CR_TOT16), lensel);
    put16(b, total);
}

static void gen_chunk_reassembly(void)
{
    static struct buf b;
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F | CR_L, 100, CR_NEED);
    emit(&b, "whole-message-one-chunk");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F | CR_L, 0, CR_NEED);
    emit(&b, "empty-message");
    b.n = 0;
    put8(&b, CR_MAX1000);
    cr_first(&b, CR_F, 1000, CR_THIRD);
    cr_op(&b, CR_SEQCUR | CR_TOTCUR, CR_HALF);
    cr_op(&b, CR_L | CR_SEQCUR | CR_TOTCUR, CR_NEED);
    emit(&b, "first-middle-last-at-max");
    b.n = 0;
    put8(&b, CR_MAX64K);
    cr_first(&b, CR_F, 60000, CR_SEVENTH);
    for (int i = 0; i < 12; i++)
        cr_op(&b, CR_SEQCUR | CR_TOTCUR, CR_SEVENTH);
    cr_op(&b, 0x80, 3); /* a zero-length MIDDLE */
    cr_op(&b, CR_L | CR_SEQCUR | CR_TOTCUR, CR_NEED);
    emit(&b, "many-middles-60000b");
    b.n = 0;
    put8(&b, CR_MAX4096);
    for (int i = 0; i < 4; i++) { /* consecutive messages, the seq counting up */
        cr_op(&b, CR_F | (i ? CR_SEQNXT : CR_SEQ0) | CR_TOT16, CR_HALF);
        put16(&b, (uint16_t)(300 + i));
        cr_op(&b, CR_L | CR_SEQCUR | CR_TOTCUR, CR_NEED);
    }
    emit(&b, "four-messages-in-sequence");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_op(&b, CR_SEQ0 | CR_TOT16, CR_LEN16);
    put16(&b, 100);
    put16(&b, 50);
    cr_first(&b, CR_F | CR_L, 10, CR_NEED);
    emit(&b, "middle-without-first");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F, 100, CR_THIRD);
    cr_op(&b, CR_SEQCUR | CR_TOTCUR, CR_LEN16);
    put16(&b, 40);
    cr_op(&b, CR_SEQCUR | CR_TOTCUR, CR_LEN16); /* the same MIDDLE again: more than the total */
    put16(&b, 40);
    emit(&b, "duplicated-middle");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F, 100, CR_HALF);
    cr_op(&b, CR_L | CR_SEQCUR | CR_TOT16, CR_NEED);
    put16(&b, 120);
    emit(&b, "total-that-lies");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F, 100, CR_HALF);
    cr_op(&b, CR_L | CR_SEQNXT | CR_TOTCUR, CR_NEED);
    emit(&b, "foreign-seq-mid-message");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F, 100, CR_HALF);
    cr_op(&b, CR_L | CR_SEQCUR | CR_TOTCUR, CR_NEEDM1);
    emit(&b, "last-too-early");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F, 100, CR_HALF);
    cr_op(&b, CR_SEQCUR | CR_TOTCUR, CR_NEEDP1);
    emit(&b, "chunk-past-total");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F | CR_L, 64, CR_NEED);
    cr_op(&b, CR_SEQCUR | CR_TOTCUR, CR_ZERO);
    cr_op(&b, CR_L | CR_SEQCUR | CR_TOTCUR, CR_ZERO);
    emit(&b, "too-many-chunks-after-last");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_op(&b, CR_F | CR_SEQ0 | CR_TOTLIE, 1 | CR_ZERO);
    cr_op(&b, CR_F | CR_SEQ0 | CR_TOTMAX, CR_NEED);
    cr_op(&b, CR_L | CR_SEQCUR | CR_TOTCUR, CR_NEED);
    emit(&b, "total-above-max-then-at-max");
    b.n = 0;
    put8(&b, CR_MAX255);
    cr_first(&b, CR_F, 200, CR_HALF);
    cr_op(&b, CR_F | CR_SEQNXT | CR_TOT16, CR_THIRD); /* the sender gave the first one up */
    put16(&b, 150);
    cr_op(&b, CR_SEQCUR | CR_TOTCUR, CR_THIRD);
    cr_op(&b, CR_L | CR_SEQCUR | CR_TOTCUR, CR_NEED);
    emit(&b, "first-abandons-partial");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F, 100, CR_HALF);
    cr_op(&b, 0x04 | CR_L | CR_SEQCUR | CR_TOTCUR, 5 | CR_NEED); /* flag bit 7 */
    cr_first(&b, CR_F | CR_L, 10, CR_NEED);
    emit(&b, "unknown-flag");
    b.n = 0;
    put8(&b, CR_MAX4096);
    cr_first(&b, CR_F, 100, CR_HALF);
    cr_op(&b, 0x80, 0); /* reset */
    cr_op(&b, CR_L | CR_SEQCUR | CR_TOTCUR, CR_NEED);
    cr_first(&b, CR_F | CR_L, 20, CR_NEED);
    cr_op(&b, 0x80, 1); /* read it again */
    cr_op(&b, 0x80, 2); /* fini + init */
    cr_first(&b, CR_F | CR_L, 30, CR_NEED);
    emit(&b, "reset-reread-reinit");
}

/* ---- frame_roundtrip ------------------------------------------------------------------------- */

/* cfg byte 0 */
#define RT_PIPE       0
#define RT_SOCK       1
#define RT_MULTI      2
#define RT_SEQPACKET  3
#define RT_FIFO       4
#define RT_WRITERS(n) ((uint8_t)(((n)-1) << 3))
#define RT_TRUNCATE   0x20
/* byte 1 */
#define RT_MAX100   0
#define RT_MAX5000  1
#define RT_MAX70000 2
#define RT_MAX256K  3
#define RT_FRAG16   (0 << 2)
#define RT_FRAG100  (1 << 2)
#define RT_FRAG1000 (2 << 2)
#define RT_FRAGDEF  (3 << 2)
#define RT_NOSUM    0x10
/* operations */
#define RT_SEND        0
#define RT_RECV        3
#define RT_RECV_ZC     4
#define RT_RECV_SMALL  5
#define RT_FLUSH       6
#define RT_READER_GONE 0x47
#define RT_BATCH       0x42 /* + count byte (1 + count % 24 messages), then each length */
#define RT_W(n)        ((uint8_t)((n) << 3))
#define RT_LONG        0x20
/* send length classes */
#define RT_LEN0    0
#define RT_LEN8    1 /* + u8 */
#define RT_LENFRAG 2 /* + u8 */
#define RT_LENBIG  3 /* + u16 */
#define RT_LENMAX  4
#define RT_LENOVER 5
#define RT_LEN16   6 /* + u16 % 5000 */
/* faults */
#define RT_OK       0
#define RT_SHORT(a) ((uint8_t)(4 | ((a) << 3)))
#define RT_EINTR    5
#define RT_EAGAIN   6
#define RT_SPURIOUS 7

struct rt {
    struct buf ops, faults;
};

/* The operand bytes of a length class (a send's, or one message of a batch). */
static void rt_len(struct rt *t, uint8_t lensel, int operand, uint16_t v)
{
    put8(&t->ops, lensel);
    if (operand == 1) put8(&t->ops, (uint8_t)v);
    if (operand == 2) put16(&t->ops, v);
}

static void rt_send(struct rt *t, uint8_t flags, uint8_t lensel, int operand, uint16_t v)
{
    put8(&t->ops, (uint8_t)(RT_SEND | flags));
    rt_len(t, lensel, operand, v);
}

/* A batch of n messages; their lengths follow with rt_len. */
static void rt_batch(struct rt *t, uint8_t flags, uint8_t n)
{
    put8(&t->ops, (uint8_t)(RT_BATCH | flags));
    put8(&t->ops, (uint8_t)(n - 1));
}

static void rt_op(struct rt *t, uint8_t op)
{
    put8(&t->ops, op);
}

/* Faults are taken from the back: the first one used is the input's last byte. */
static void rt_fault(struct rt *t, uint8_t f)
{
    put8(&t->faults, f);
}

static void rt_emit(struct rt *t, uint8_t cfg, uint8_t b1, const char *what)
{
    static struct buf b;
    b.n = 0;
    put8(&b, cfg);
    put8(&b, b1);
    while (t->faults.n < t->ops.n)
        rt_fault(t, RT_OK);
    while (t->ops.n < t->faults.n)
        rt_op(t, RT_RECV); /* a recv with timeout 0 */
    put(&b, t->ops.b, t->ops.n);
    for (size_t i = t->faults.n; i-- > 0;)
        put8(&b, t->faults.b[i]);
    emit(&b, what);
    t->ops.n = t->faults.n = 0;
}

static void gen_frame_roundtrip(void)
{
    static struct rt t;
    rt_send(&t, RT_LONG, RT_LEN8, 1, 10);
    rt_send(&t, RT_LONG, RT_LEN16, 2, 3000);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_op(&t, RT_RECV_ZC | RT_LONG);
    rt_send(&t, RT_LONG, RT_LEN0, 0, 0);
    rt_op(&t, RT_RECV_SMALL | RT_LONG);
    rt_emit(&t, RT_PIPE, RT_MAX5000, "pipe-three-messages");

    for (int i = 0; i < 4; i++)
        rt_send(&t, RT_LONG, RT_LEN16, 2, (uint16_t)(900 + i));
    for (int i = 0; i < 4; i++)
        rt_op(&t, RT_RECV | RT_LONG);
    for (int i = 0; i < 12; i++)
        rt_fault(&t, (uint8_t)(i % 2 ? RT_SHORT(i * 3) : RT_OK));
    rt_emit(&t, RT_PIPE, RT_MAX5000, "pipe-short-writes-and-reads");

    rt_send(&t, RT_LONG, RT_LEN16, 2, 4000);
    rt_send(&t, RT_LONG, RT_LEN8, 1, 200);
    rt_op(&t, RT_RECV_ZC | RT_LONG);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_fault(&t, RT_EINTR);
    rt_fault(&t, RT_EAGAIN);
    rt_fault(&t, RT_SPURIOUS);
    rt_fault(&t, RT_SHORT(7));
    rt_fault(&t, RT_EINTR);
    rt_fault(&t, RT_EAGAIN);
    rt_emit(&t, RT_SOCK, RT_MAX5000, "socket-eintr-eagain");

    /* A send with timeout 0 that stops half-way: accepted, its tail goes out with the flush. */
    rt_send(&t, 0, RT_LEN16, 2, 4000);
    rt_op(&t, RT_RECV);
    rt_op(&t, RT_FLUSH | RT_LONG);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_fault(&t, RT_SHORT(100));
    rt_fault(&t, RT_EAGAIN);
    rt_emit(&t, RT_SOCK, RT_MAX5000, "timeout0-send-tail-flushed");

    for (int i = 0; i < 4; i++)
        rt_send(&t, (uint8_t)(RT_W(i) | RT_LONG), RT_LENFRAG, 1, (uint16_t)(i + 1));
    rt_send(&t, (uint8_t)(RT_W(1) | RT_LONG), RT_LEN16, 2, 4999);
    for (int i = 0; i < 5; i++)
        rt_op(&t, (uint8_t)(RT_RECV | RT_LONG));
    rt_emit(&t, (uint8_t)(RT_MULTI | RT_WRITERS(4)), RT_MAX70000, "multiwriter-four-writers");

    rt_send(&t, (uint8_t)(RT_W(0) | RT_LONG), RT_LENBIG, 2, 12000); /* 3 fragments */
    rt_send(&t, (uint8_t)(RT_W(1)), RT_LENBIG, 2, 100);             /* stops after one */
    rt_send(&t, (uint8_t)(RT_W(0) | RT_LONG), RT_LEN8, 1, 5);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_op(&t, (uint8_t)(RT_FLUSH | RT_W(1) | RT_LONG));
    rt_op(&t, RT_RECV | RT_LONG);
    rt_fault(&t, RT_OK);
    rt_fault(&t, RT_OK);
    rt_fault(&t, RT_OK);
    rt_fault(&t, RT_OK);
    rt_fault(&t, RT_EAGAIN);
    rt_emit(&t, (uint8_t)(RT_MULTI | RT_WRITERS(2)), RT_MAX70000,
            "multiwriter-fragments-interleaved");

    rt_send(&t, RT_LONG, RT_LEN16, 2, 300);
    rt_send(&t, RT_LONG, RT_LEN8, 1, 16);
    rt_send(&t, RT_LONG, RT_LEN0, 0, 0);
    rt_op(&t, RT_RECV_SMALL | RT_LONG);
    rt_op(&t, RT_RECV_ZC | RT_LONG);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_fault(&t, RT_EINTR);
    rt_emit(&t, RT_SEQPACKET, (uint8_t)(RT_MAX5000 | RT_FRAG16), "seqpacket-fragments-of-16");

    rt_send(&t, RT_LONG, RT_LEN16, 2, 2500);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_emit(&t, RT_SEQPACKET, (uint8_t)(RT_MAX5000 | RT_FRAGDEF), "seqpacket-whole-frames");

    rt_send(&t, RT_LONG, RT_LENBIG, 2, 30000);
    rt_send(&t, RT_LONG, RT_LENMAX, 0, 0);
    rt_send(&t, RT_LONG, RT_LEN8, 1, 1);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_op(&t, RT_RECV_ZC | RT_LONG);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_fault(&t, RT_SHORT(20));
    rt_emit(&t, RT_PIPE, RT_MAX70000, "pipe-large-direct-reads");

    rt_send(&t, RT_LONG, RT_LENOVER, 0, 0);
    rt_send(&t, RT_LONG, RT_LENMAX, 0, 0);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_emit(&t, RT_SOCK, RT_MAX100, "too-big-refused-then-max");

    rt_send(&t, RT_LONG, RT_LEN8, 1, 50);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_send(&t, RT_LONG, RT_LEN8, 1, 60);
    rt_emit(&t, RT_FIFO, RT_MAX5000, "fifo-eof-after-messages");

    rt_send(&t, RT_LONG, RT_LEN8, 1, 70);
    rt_send(&t, 0, RT_LEN16, 2, 3000); /* cut half-way, then the writer is closed */
    rt_fault(&t, RT_OK);
    rt_fault(&t, RT_SHORT(50));
    rt_fault(&t, RT_EAGAIN);
    rt_emit(&t, (uint8_t)(RT_SOCK | RT_TRUNCATE), RT_MAX5000, "truncated-mid-message");

    rt_send(&t, (uint8_t)(RT_W(0) | RT_LONG), RT_LEN8, 1, 9);
    rt_send(&t, (uint8_t)(RT_W(1)), RT_LENBIG, 2, 100); /* FIRST fragment only */
    rt_fault(&t, RT_OK);
    rt_fault(&t, RT_OK);
    rt_fault(&t, RT_EAGAIN);
    rt_emit(&t, (uint8_t)(RT_MULTI | RT_WRITERS(2) | RT_TRUNCATE), RT_MAX70000,
            "multiwriter-truncated-fragments");

    rt_send(&t, RT_LONG, RT_LEN8, 1, 40);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_send(&t, 0, RT_LEN16, 2, 3000); /* half-way: its tail is kept */
    rt_op(&t, RT_READER_GONE);
    rt_send(&t, RT_LONG, RT_LEN8, 1, 10); /* the tail's write fails: -EPIPE */
    rt_op(&t, RT_FLUSH | RT_LONG);
    rt_fault(&t, RT_OK);
    rt_fault(&t, RT_OK);
    rt_fault(&t, RT_SHORT(9));
    rt_fault(&t, RT_EAGAIN);
    rt_emit(&t, RT_PIPE, RT_MAX5000, "reader-gone-epipe");

    /* A batch with timeout 0 cut by a short write and EAGAIN: the messages with a byte out are
     * accepted (the cut one's rest is kept), the others are not. */
    rt_batch(&t, 0, 6);
    for (int i = 0; i < 6; i++)
        rt_len(&t, RT_LEN16, 2, (uint16_t)(500 + 100 * i));
    rt_op(&t, RT_FLUSH | RT_LONG);
    for (int i = 0; i < 3; i++)
        rt_op(&t, RT_RECV | RT_LONG);
    rt_batch(&t, RT_LONG, 3);
    for (int i = 0; i < 3; i++)
        rt_len(&t, RT_LEN8, 1, (uint16_t)(10 + i));
    for (int i = 0; i < 6; i++)
        rt_op(&t, RT_RECV_ZC | RT_LONG);
    rt_fault(&t, RT_SHORT(30));
    rt_fault(&t, RT_EAGAIN);
    rt_emit(&t, RT_SOCK, RT_MAX5000, "batch-cut-by-deadline");

    /* Batches of two writers on one pipe: small frames share PIPE_BUF writes, a large message
     * goes out in fragments between them. */
    rt_batch(&t, (uint8_t)(RT_W(0) | RT_LONG), 5);
    for (int i = 0; i < 5; i++)
        rt_len(&t, i == 2 ? RT_LENFRAG : RT_LEN8, 1, (uint16_t)(i * 40));
    rt_batch(&t, (uint8_t)(RT_W(1) | RT_LONG), 3);
    rt_len(&t, RT_LEN8, 1, 7);
    rt_len(&t, RT_LENBIG, 2, 9000);
    rt_len(&t, RT_LEN0, 0, 0);
    for (int i = 0; i < 8; i++)
        rt_op(&t, RT_RECV | RT_LONG);
    rt_emit(&t, (uint8_t)(RT_MULTI | RT_WRITERS(2)), RT_MAX70000, "multiwriter-batches");

    rt_batch(&t, RT_LONG, 4);
    for (int i = 0; i < 4; i++)
        rt_len(&t, RT_LEN16, 2, (uint16_t)(i * 1000));
    for (int i = 0; i < 4; i++)
        rt_op(&t, RT_RECV | RT_LONG);
    rt_emit(&t, RT_SEQPACKET, (uint8_t)(RT_MAX5000 | RT_FRAG1000), "seqpacket-batch");

    rt_batch(&t, RT_LONG, 3); /* the second is too big: nothing of the batch goes out */
    rt_len(&t, RT_LEN8, 1, 5);
    rt_len(&t, RT_LENOVER, 0, 0);
    rt_len(&t, RT_LEN8, 1, 6);
    rt_batch(&t, RT_LONG, 2);
    rt_len(&t, RT_LEN8, 1, 5);
    rt_len(&t, RT_LENMAX, 0, 0);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_op(&t, RT_RECV | RT_LONG);
    rt_emit(&t, RT_PIPE, RT_MAX100, "batch-too-big-refused");

    /* Both ends without payload checksums (byte 1 bit 4), one by one and in a batch. */
    rt_send(&t, RT_LONG, RT_LEN16, 2, 3000);
    rt_batch(&t, RT_LONG, 3);
    for (int i = 0; i < 3; i++)
        rt_len(&t, RT_LEN8, 1, (uint16_t)(20 * i));
    for (int i = 0; i < 4; i++)
        rt_op(&t, RT_RECV | RT_LONG);
    rt_emit(&t, RT_PIPE, (uint8_t)(RT_MAX5000 | RT_NOSUM), "no-payload-checksum");
}

/* ---- ring_model -------------------------------------------------------------------------- */

#define RM_CAP128          0
#define RM_CAP256          1
#define RM_CAP1024         2
#define RM_CAP4096         3
#define RM_MAXREC          (0 << 2)
#define RM_MAX100          (1 << 2)
#define RM_MAX3CAP         (2 << 2)
#define RM_MAX64K          (3 << 2)
#define RM_CHUNK16         (1 << 4)
#define RM_CHUNK40         (2 << 4)
#define RM_CHUNKHALF       (3 << 4)
#define RM_CONSUMER_CLOSES 0x40
#define RM_MAY_WAIT        0x80

static void rm_send(struct buf *b, int len) /* len < 0: the full record; len > 255: too big */
{
    put8(b, 0);
    if (len < 0) {
        put8(b, 2);
    } else if (len > 255) {
        put8(b, 3);
    } else if (len == 0) {
        put8(b, 0);
    } else {
        put8(b, 1);
        put8(b, (uint8_t)len);
    }
}

static void rm_recv(struct buf *b, uint8_t how) /* 0 max buffer, 1 exact, 2 one byte short */
{
    put8(b, 2);
    put8(b, how);
}

static void rm_big(struct buf *b, uint8_t op, uint16_t v)
{
    put8(b, op);
    put16(b, v);
}

static void gen_ring_model(void)
{
    static struct buf b;
    b.n = 0;
    put8(&b, RM_CAP128 | RM_MAXREC);
    rm_send(&b, 10);
    rm_send(&b, 20);
    rm_recv(&b, 0);
    rm_recv(&b, 1);
    rm_recv(&b, 0); /* empty: -EAGAIN */
    emit(&b, "send-recv-small");

    b.n = 0;
    put8(&b, RM_CAP128 | RM_MAXREC);
    static const int sizes[] = {100, 40, 60, 7, 90, 33, 0, 112, 50, 70};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            rm_send(&b, sizes[i] == 112 ? -1 : sizes[i]);
            rm_recv(&b, (uint8_t)(i % 2));
        }
    emit(&b, "wrap-around-with-pads");

    b.n = 0;
    put8(&b, RM_CAP256 | RM_MAXREC);
    rm_send(&b, -1);
    rm_send(&b, 1); /* full: -EAGAIN */
    rm_recv(&b, 0);
    rm_send(&b, 1);
    rm_send(&b, 200);
    rm_send(&b, 200); /* does not fit */
    rm_recv(&b, 0);
    rm_recv(&b, 0);
    rm_send(&b, 300); /* above max_msg */
    emit(&b, "full-ring-eagain");

    b.n = 0;
    put8(&b, RM_CAP256 | RM_MAXREC);
    put8(&b, 1), put8(&b, 1), put8(&b, 80), put8(&b, 0);               /* reserve 80, commit all */
    put8(&b, 1), put8(&b, 1), put8(&b, 90), put8(&b, 1), put8(&b, 30); /* commit 30 of 90 */
    put8(&b, 1), put8(&b, 1), put8(&b, 20), put8(&b, 2); /* commit 21: -EINVAL, then 20 */
    put8(&b, 1), put8(&b, 1), put8(&b, 50), put8(&b, 3); /* left reserved */
    rm_send(&b, 5);                                      /* -IPCP_E_STATE */
    put8(&b, 1), put8(&b, 0), put8(&b, 0);               /* a new reservation, len 0 */
    put8(&b, 1), put8(&b, 3);                            /* too big: -EMSGSIZE */
    rm_recv(&b, 0);
    rm_recv(&b, 1);
    rm_recv(&b, 0);
    rm_recv(&b, 0);
    emit(&b, "reserve-commit-variants");

    b.n = 0;
    put8(&b, RM_CAP1024 | RM_MAX100);
    rm_send(&b, 64);
    rm_send(&b, 0);
    put8(&b, 3), put8(&b, 0); /* peek */
    put8(&b, 3), put8(&b, 0); /* peek again */
    put8(&b, 7);              /* recv while peeked */
    put8(&b, 3), put8(&b, 1); /* release */
    put8(&b, 3), put8(&b, 1); /* release again: -IPCP_E_STATE */
    put8(&b, 7);
    put8(&b, 3), put8(&b, 0);
    put8(&b, 3), put8(&b, 1);
    put8(&b, 3), put8(&b, 0); /* empty: -EAGAIN */
    emit(&b, "peek-release-zero-copy");

    b.n = 0;
    put8(&b, RM_CAP256 | RM_MAXREC);
    rm_send(&b, 50);
    rm_recv(&b, 2); /* -EMSGSIZE, next_len 50 */
    rm_recv(&b, 1);
    emit(&b, "recv-buffer-one-byte-short");

    b.n = 0;
    put8(&b, RM_CAP128 | RM_MAX3CAP);
    rm_big(&b, 4, 100);
    rm_send(&b, 3);
    rm_recv(&b, 0);
    emit(&b, "larger-than-ring-timeout0");

    b.n = 0;
    put8(&b, RM_CAP256 | RM_MAX3CAP | RM_MAY_WAIT);
    rm_send(&b, 30);
    rm_big(&b, 5, 300); /* abandoned after its first chunks */
    rm_recv(&b, 0);
    rm_recv(&b, 0); /* stops inside the abandoned chunks: -EAGAIN */
    rm_send(&b, 40);
    rm_recv(&b, 0); /* drops them, counts one abandoned */
    emit(&b, "larger-than-ring-abandoned");

    b.n = 0;
    put8(&b, RM_CAP1024 | RM_MAX64K | RM_MAY_WAIT);
    rm_send(&b, 100);
    rm_send(&b, -1);
    rm_big(&b, 6, 30000); /* a consumer thread drains while it is sent in chunks */
    rm_send(&b, 7);
    rm_recv(&b, 0);
    emit(&b, "larger-than-ring-threaded");

    b.n = 0;
    put8(&b, RM_CAP128 | RM_MAX64K | RM_CHUNK16 | RM_MAY_WAIT);
    rm_big(&b, 6, 5000);
    emit(&b, "larger-than-ring-chunks-of-16");

    b.n = 0;
    put8(&b, RM_CAP128 | RM_MAX3CAP | RM_CHUNKHALF | RM_MAY_WAIT);
    rm_send(&b, 9);
    rm_big(&b, 5, 250);
    emit(&b, "producer-closes-after-abandoned");

    b.n = 0;
    put8(&b, RM_CAP128 | RM_MAXREC | RM_CONSUMER_CLOSES);
    rm_send(&b, 9);
    rm_recv(&b, 0);
    emit(&b, "consumer-closes");
}

/* ---- ring_hostile --------------------------------------------------------------------------- */

#define RH_CAP128     0
#define RH_CAP256     1
#define RH_MAX64      (0 << 2)
#define RH_MAXREC     (1 << 2)
#define RH_MAX3CAP    (2 << 2)
#define RH_F          (1 << 2) /* record sel: flags bits */
#define RH_L          (2 << 2)
#define RH_P          (4 << 2)
#define RH_TOT_LEN    0
#define RH_TOT_MORE   1 /* + u16 */
#define RH_TOT_TOOBIG 2
#define RH_ADV_NONE   (3 << 2)
#define RH_SEQ_NEXT   0x10

/* A record with a u8 length. */
static void rh_rec(struct buf *b, uint8_t flags, uint8_t len, uint8_t tsel, int more)
{
    put8(b, 0);
    put8(b, flags);
    put8(b, len);
    put8(b, tsel);
    if ((tsel & 3) == RH_TOT_MORE) put16(b, (uint16_t)more);
}

static void gen_ring_hostile(void)
{
    static struct buf b;
    b.n = 0;
    put8(&b, RH_CAP128 | RH_MAXREC);
    put8(&b, 5), put16(&b, 40); /* honest sends */
    put8(&b, 5), put16(&b, 0);
    put8(&b, 3), put8(&b, 0);
    put8(&b, 4), put8(&b, 1); /* peek, release */
    put8(&b, 3), put8(&b, 0); /* empty */
    emit(&b, "honest-send-recv-peek");

    b.n = 0;
    put8(&b, RH_CAP128 | RH_MAXREC);
    rh_rec(&b, RH_F | RH_L, 20, RH_TOT_LEN | RH_SEQ_NEXT, 0);
    put8(&b, 3), put8(&b, 0);
    rh_rec(&b, RH_F | RH_L, 0, RH_TOT_LEN | RH_SEQ_NEXT, 0);
    put8(&b, 4), put8(&b, 1);
    emit(&b, "crafted-whole-records");

    b.n = 0;
    put8(&b, RH_CAP256 | RH_MAX3CAP);
    rh_rec(&b, RH_F, 100, RH_TOT_MORE, 150);
    rh_rec(&b, 0, 100, RH_TOT_MORE, 150);
    put8(&b, 3), put8(&b, 0); /* stops in the middle: -EAGAIN, parked */
    rh_rec(&b, RH_L, 50, RH_TOT_MORE | RH_SEQ_NEXT, 200);
    put8(&b, 3), put8(&b, 0);
    emit(&b, "crafted-first-middle-last");

    b.n = 0;
    put8(&b, RH_CAP256 | RH_MAX3CAP);
    rh_rec(&b, RH_F, 60, RH_TOT_MORE, 120);
    put8(&b, 4), put8(&b, 0); /* peek parks it */
    rh_rec(&b, RH_L, 60, RH_TOT_MORE, 120);
    put8(&b, 4), put8(&b, 1);
    emit(&b, "crafted-chunks-peeked");

    b.n = 0;
    put8(&b, RH_CAP256 | RH_MAX64);
    rh_rec(&b, RH_F, 30, RH_TOT_TOOBIG, 0); /* total above max_msg: dropped */
    rh_rec(&b, 0, 30, RH_TOT_TOOBIG, 0);    /* skipped */
    rh_rec(&b, RH_L, 30, RH_TOT_TOOBIG | RH_SEQ_NEXT, 0);
    rh_rec(&b, RH_F | RH_L, 10, RH_TOT_LEN | RH_SEQ_NEXT, 0);
    for (int i = 0; i < 3; i++)
        put8(&b, 3), put8(&b, 0);
    emit(&b, "total-above-max-then-skipped");

    b.n = 0;
    put8(&b, RH_CAP256 | RH_MAX3CAP);
    rh_rec(&b, RH_F, 30, RH_TOT_MORE, 10); /* LAST too early */
    rh_rec(&b, RH_L, 10, RH_TOT_MORE | RH_SEQ_NEXT, 10);
    rh_rec(&b, RH_L, 10, RH_TOT_LEN, 0); /* LAST without FIRST */
    rh_rec(&b, 0, 10, RH_TOT_LEN, 0);    /* MIDDLE without FIRST */
    for (int i = 0; i < 4; i++)
        put8(&b, 3), put8(&b, 0);
    emit(&b, "lying-chunks");

    b.n = 0;
    put8(&b, RH_CAP128 | RH_MAXREC);
    put8(&b, 0), put8(&b, RH_F | RH_L | 0x80), put8(&b, 8);
    put8(&b, 9), put8(&b, 0), put8(&b, 0), put8(&b, 0); /* seq 9: a gap */
    put8(&b, RH_TOT_LEN);
    put8(&b, 3), put8(&b, 0);
    put8(&b, 3), put8(&b, 0);
    emit(&b, "sequence-gap");

    b.n = 0;
    put8(&b, RH_CAP128 | RH_MAXREC);
    rh_rec(&b, RH_F | RH_L, 40, RH_TOT_LEN | RH_SEQ_NEXT, 0);
    rh_rec(&b, RH_P, 48, RH_TOT_LEN, 0); /* a pad up to the end */
    rh_rec(&b, RH_F | RH_L, 10, RH_TOT_LEN | RH_SEQ_NEXT, 0);
    put8(&b, 3), put8(&b, 0);
    put8(&b, 3), put8(&b, 0);
    emit(&b, "pad-then-wrap");

    b.n = 0;
    put8(&b, RH_CAP128 | RH_MAXREC);
    put8(&b, 0), put8(&b, RH_F | RH_L | 0x40), put8(&b, 8);
    put8(&b, 0), put8(&b, 0), put8(&b, 0x11), put8(&b, 0x11); /* a wrong mark */
    put8(&b, RH_TOT_LEN);
    put8(&b, 3), put8(&b, 0);
    put8(&b, 3), put8(&b, 0); /* sticky */
    emit(&b, "bad-mark-sticky-corrupt");

    b.n = 0;
    put8(&b, RH_CAP128 | RH_MAXREC);
    put8(&b, 2), put8(&b, 0 << 1 | 0), put8(&b, 0), put8(&b, 2), put8(&b, 1 << 1), put8(&b, 3);
    put8(&b, 3), put8(&b, 0); /* an unaligned tail */
    emit(&b, "unaligned-tail");

    b.n = 0;
    put8(&b, RH_CAP128 | RH_MAXREC);
    put8(&b, 2), put8(&b, 2 << 1), put8(&b, 1); /* tail a capacity ahead */
    put8(&b, 3), put8(&b, 0);
    emit(&b, "tail-beyond-capacity");

    b.n = 0;
    put8(&b, RH_CAP128 | RH_MAXREC);
    put8(&b, 0), put8(&b, RH_F | RH_L | 2), put32(&b, 0x7fffff00); /* a huge length */
    put8(&b, RH_TOT_LEN);
    put8(&b, 4), put8(&b, 0);
    emit(&b, "huge-record-length");

    b.n = 0;
    put8(&b, RH_CAP128 | RH_MAXREC);
    put8(&b, 6);                                           /* attach while attached: -EBUSY */
    put8(&b, 1), put16(&b, 24), put8(&b, 3), put32(&b, 0); /* clear the state word */
    put8(&b, 6);                                           /* attach succeeds, closes */
    put8(&b, 1), put16(&b, 0), put8(&b, 0), put8(&b, 'X'); /* the magic */
    put8(&b, 6);
    put8(&b, 5), put16(&b, 10); /* the consumer closed: -EPIPE */
    emit(&b, "second-attach-and-bad-header");
}

/* ---- ring_sched ---------------------------------------------------------------------------- */

/* Byte 0: mode (bit 0 capacity 256, bits 1-2 spin index, bit 3 sequential consistency, bit 4
 * signals: a futex wait may be interrupted, one more decision byte; bit 5 fenced publishes, as
 * between sides without membarrier); byte 1:
 * count - 1; the lengths; then decisions: with both threads able to run, an even byte runs the
 * producer, an odd one the consumer (a byte is also spent, now and then, on whether a buffered
 * store becomes visible). */
static void rsc_start(struct buf *b, uint8_t mode, const uint8_t *lens, int n)
{
    b->n = 0;
    put8(b, mode);
    put8(b, (uint8_t)(n - 1));
    for (int i = 0; i < n; i++)
        put8(b, lens[i]);
}

static void rsc_run(struct buf *b, uint8_t who, int count)
{
    for (int i = 0; i < count; i++)
        put8(b, who);
}

static void gen_ring_sched(void)
{
    static struct buf b;
    static const uint8_t few[] = {10, 0, 50};
    rsc_start(&b, 0, few, 3);
    for (int i = 0; i < 60; i++)
        put8(&b, (uint8_t)(i & 1));
    emit(&b, "alternating-three-messages");

    static const uint8_t full[] = {112, 112, 48, 48, 48};
    rsc_start(&b, 0, full, 5);
    rsc_run(&b, 0, 80); /* the producer fills the ring and goes to sleep on head */
    rsc_run(&b, 1, 80); /* the consumer drains it and wakes the producer */
    emit(&b, "producer-sleeps-on-full-ring");

    static const uint8_t one[] = {20, 20};
    rsc_start(&b, 2 << 1, one, 2); /* spin 4 */
    rsc_run(&b, 1, 40);            /* the consumer polls, finds nothing and sleeps on tail */
    rsc_run(&b, 0, 40);            /* the producer publishes and wakes it */
    emit(&b, "consumer-sleeps-on-empty-ring");

    rsc_start(&b, 16 | (2 << 1), one, 2); /* the same with signals: its sleeps are interrupted */
    rsc_run(&b, 1, 40);
    rsc_run(&b, 0, 40);
    emit(&b, "signals-interrupt-the-sleeps");

    rsc_start(&b, 32 | (2 << 1), one, 2); /* the same with fenced publishes */
    rsc_run(&b, 1, 40);
    rsc_run(&b, 0, 40);
    emit(&b, "fenced-publishes-consumer-sleeps");

    static const uint8_t wrap[] = {100, 40, 60, 7, 90, 33, 0, 112, 50, 70, 100, 40, 60, 7};
    rsc_start(&b, 0, wrap, 14);
    for (int i = 0; i < 400; i++)
        put8(&b, (uint8_t)((i / 3) & 1));
    emit(&b, "wrap-around-with-pads");

    static const uint8_t big[] = {240, 200, 16, 31, 239};
    rsc_start(&b, 1 | (3 << 1), big, 5); /* capacity 256, spin 32 */
    for (int i = 0; i < 300; i++)
        put8(&b, (uint8_t)((i / 7) & 1));
    emit(&b, "capacity-256-spin-32");

    rsc_start(&b, 8, few, 3); /* sequential consistency: no store buffer */
    for (int i = 0; i < 60; i++)
        put8(&b, (uint8_t)((i / 2) & 1));
    emit(&b, "sequentially-consistent");
}

/* ---- lock_sched ----------------------------------------------------------------------------- */

/* The lock: byte 0 = 0, byte 1 = clients - 2 | (acquisitions - 1) << 2, then per client the
 * point its process dies at (0: lives), comes back (bit 0) under the same pid (bit 1), the point
 * the second process dies at; then decisions (a byte picks the runnable thread, byte % count).
 * A client's points after it opened its handle, when nothing else gets in the way: 1 lock()'s
 * handle check, 2 the receive, 3 the token's acquire, 4 the word's load, 5 the CAS, 6 the
 * acquisition counter, 7-8 inside the critical section, 9 unlock()'s handle check, 10 the
 * releasing CAS, 11 the token's release, 12 the send; 13 on: the next acquisition. */
struct lsc_client {
    uint8_t die, again, die2;
};

static void lsc_lock(struct buf *b, int clients, int rounds, const struct lsc_client *c)
{
    b->n = 0;
    put8(b, 0);
    put8(b, (uint8_t)((clients - 2) | (rounds - 1) << 2));
    for (int i = 0; i < clients; i++) {
        put8(b, c[i].die);
        put8(b, c[i].again);
        put8(b, c[i].die2);
    }
}

static void lsc_decisions(struct buf *b, int n, int period)
{
    for (int i = 0; i < n; i++)
        put8(b, (uint8_t)((i / period) & 1));
}

static void gen_lock_sched(void)
{
    static struct buf b;
    static const struct lsc_client live[4] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    lsc_lock(&b, 2, 1, live);
    emit(&b, "lock-unlock-two-clients");

    lsc_lock(&b, 2, 3, live);
    lsc_decisions(&b, 200, 3);
    emit(&b, "contention-waiter-gets-it-after-unlock");

    static const struct lsc_client in_cs[2] = {{7, 0, 0}, {0, 0, 0}};
    lsc_lock(&b, 2, 2, in_cs); /* client 1 recovers: lock() returns 1 */
    lsc_decisions(&b, 100, 5);
    emit(&b, "holder-dies-recovery-reports-death");

    static const struct lsc_client after_cas[2] = {{6, 0, 0}, {0, 0, 0}};
    lsc_lock(&b, 2, 1, after_cas); /* acquired by the CAS, dead before lock() returned */
    emit(&b, "death-between-acquiring-cas-and-return");

    static const struct lsc_client unsent[2] = {{12, 0, 0}, {0, 0, 0}};
    lsc_lock(&b, 2, 2, unsent); /* released, token never sent: re-created after 10 ms */
    emit(&b, "death-between-release-and-send");

    static const struct lsc_client in_hand[2] = {{3, 0, 0}, {0, 0, 0}};
    lsc_lock(&b, 2, 2, in_hand); /* token received, not taken: lost, re-created */
    emit(&b, "death-with-token-in-hand");

    /* a new process under the dead holder's pid, while client 1 still waits: client 1 recovers
     * (alone, the new process must recover itself: corpora/regressions/lock_sched/) */
    static const struct lsc_client reuse[2] = {{7, 3, 0}, {0, 0, 0}};
    lsc_lock(&b, 2, 2, reuse);
    lsc_decisions(&b, 100, 1);
    emit(&b, "reused-pid-of-dead-holder-another-recovers");

    static const struct lsc_client twice[3] = {{9, 1, 20}, {0, 0, 0}, {3, 3, 0}};
    lsc_lock(&b, 3, 2, twice);
    lsc_decisions(&b, 300, 2);
    emit(&b, "three-clients-two-die-and-come-back");

    static const struct lsc_client one_of_four[4] = {{0, 0, 0}, {0, 0, 0}, {8, 0, 0}, {0, 0, 0}};
    lsc_lock(&b, 4, 2, one_of_four);
    for (int i = 0; i < 300; i++)
        put8(&b, (uint8_t)((i * 3) % 4));
    emit(&b, "four-clients-one-dies");

    /* The handoff: byte 0 = 1, byte 1 = slots - 1 | size selector << 2, byte 2 = messages - 1,
     * byte 3 = forgeries, four bytes each (kind: bit 0 into the OK queue, bits 1-2 replay,
     * fields, the other type, garbage) */
    b.n = 0;
    put8(&b, 1);
    put8(&b, 3 | (1 << 2));
    put8(&b, 9);
    put8(&b, 0);
    lsc_decisions(&b, 120, 4);
    emit(&b, "handoff-four-slots-pipelined");

    b.n = 0;
    put8(&b, 1);
    put8(&b, 0 | (2 << 2));
    put8(&b, 3);
    put8(&b, 4);
    static const uint8_t forged[4][4] = {{1, 0, 0, 0},  /* the OK of message 0 replayed */
                                         {2, 1, 5, 3},  /* a READY naming the wrong slot */
                                         {5, 0, 0, 0},  /* a READY in the OK queue */
                                         {6, 9, 9, 9}}; /* garbage in the READY queue */
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            put8(&b, forged[i][k]);
    lsc_decisions(&b, 120, 3);
    emit(&b, "handoff-one-slot-forged-messages");
}

/* ---- sysvmsg_reasm -------------------------------------------------------------------------- */

/* Geometry byte and ops of fuzz_sysvmsg_reasm.c. */
#define SV_GEO(prod, two, me, room, max)                                                           \
    (uint8_t)(((prod)-1) | ((two) << 2) | ((me) << 3) | ((room) << 4) | ((max) << 6))
#define SV_ROOM7    1
#define SV_ROOM64   2
#define SV_ROOM8160 3
#define SV_MAX300   1
#define SV_MAX4096  2
#define SV_MAX40000 3
#define SV_GIVEUP   4
#define SV_DAMAGE   5
#define SV_RAW      6
#define SV_REPLAY   7

static void sv_new(struct buf *b, uint8_t op, uint16_t total)
{
    put8(b, op);
    put16(b, total);
}

static void gen_sysvmsg_reasm(void)
{
    static struct buf b;
    b.n = 0;
    put8(&b, SV_GEO(1, 0, 0, SV_ROOM64, SV_MAX4096));
    sv_new(&b, 0, 150);
    put8(&b, 0), put8(&b, 0);
    emit(&b, "one-producer-three-chunks");
    b.n = 0;
    put8(&b, SV_GEO(1, 0, 0, SV_ROOM64, SV_MAX4096));
    sv_new(&b, 0, 63);
    sv_new(&b, 0, 64);
    sv_new(&b, 0, 65);
    put8(&b, 0);
    sv_new(&b, 0, 128);
    put8(&b, 0);
    sv_new(&b, 0, 129);
    put8(&b, 0), put8(&b, 0);
    emit(&b, "sizes-around-room");
    b.n = 0;
    put8(&b, SV_GEO(4, 0, 0, SV_ROOM8160, SV_MAX40000));
    for (int i = 0; i < 4; i++)
        sv_new(&b, (uint8_t)i, (uint16_t)(16321 + i));
    for (int r = 0; r < 2; r++)
        for (int i = 3; i >= 0; i--)
            put8(&b, (uint8_t)i);
    emit(&b, "four-producers-interleaved-msgmax");
    b.n = 0;
    put8(&b, SV_GEO(3, 1, 1, SV_ROOM64, SV_MAX300));
    sv_new(&b, 0, 100); /* consumer 0's producer: refused */
    sv_new(&b, 1, 100);
    put8(&b, 0), put8(&b, 1);
    sv_new(&b, 2, 10);
    emit(&b, "two-consumers-foreign-producer");
    b.n = 0;
    put8(&b, SV_GEO(2, 0, 0, SV_ROOM7, SV_MAX300));
    sv_new(&b, 0, 30);
    sv_new(&b, 1, 0);
    put8(&b, 0), put8(&b, 0);
    put8(&b, SV_GIVEUP);
    sv_new(&b, 0, 20);
    put8(&b, 0), put8(&b, 0);
    emit(&b, "give-up-half-way-restart");
    b.n = 0;
    put8(&b, SV_GEO(1, 0, 0, SV_ROOM64, SV_MAX4096));
    for (int at = 0; at < 32; at += 4) {
        put8(&b, SV_DAMAGE);
        put16(&b, 200);
        put16(&b, (uint16_t)at);
        put8(&b, 0x40);
        sv_new(&b, 0, 70);
        put8(&b, 0);
    }
    emit(&b, "damaged-header-fields-then-clean");
    b.n = 0;
    put8(&b, SV_GEO(2, 0, 0, SV_ROOM64, SV_MAX300));
    put8(&b, SV_RAW), put8(&b, 1), put8(&b, 40);
    put32(&b, 0x56535049u), put32(&b, 0), put32(&b, 0), put32(&b, 0); /* magic, p0, seq 0 */
    put32(&b, 8), put32(&b, 0), put32(&b, 1), put32(&b, 8);           /* total 8, 1 of 1, 8 bytes */
    put32(&b, 0x41414141u), put32(&b, 0x41414141u);
    put8(&b, SV_RAW), put8(&b, 2), put8(&b, 3), put8(&b, 1), put8(&b, 2), put8(&b, 3);
    sv_new(&b, 0, 100);
    put8(&b, 0);
    emit(&b, "raw-forged-chunks");
    b.n = 0;
    put8(&b, SV_GEO(1, 0, 0, SV_ROOM7, SV_MAX300));
    sv_new(&b, SV_REPLAY, 30);
    put8(&b, SV_REPLAY), put8(&b, 0), put8(&b, 0), put8(&b, 0); /* chunks 1 (twice), 2, 3, 4 */
    sv_new(&b, 0, 14);
    put8(&b, 0);
    sv_new(&b, SV_REPLAY, 5); /* a whole message twice */
    sv_new(&b, 0, 6);
    emit(&b, "replayed-chunks");
    b.n = 0;
    put8(&b, SV_GEO(2, 0, 0, SV_ROOM7, SV_MAX300));
    for (int i = 0; i < 6; i++)
        sv_new(&b, (uint8_t)(i & 1), 0);
    emit(&b, "empty-messages");
}

/* ---- mqchan_rx ------------------------------------------------------------------------------- */

/* Byte 0 and op encoding of fuzz_mqchan_rx.c. */
#define MR_CFG(payload_sel, max_sel, producers, hostile)                                           \
    ((uint8_t)((payload_sel) | (max_sel) << 2 | ((producers)-1) << 4 | (hostile) << 6))
#define MR_CHUNK(lane)  ((uint8_t)((lane) << 2))
#define MR_GIVEUP(lane) ((uint8_t)((lane) << 2 | 2))
#define MR_BAD(lane)    ((uint8_t)((lane) << 2 | 3))

static void gen_mqchan_rx(void)
{
    static struct buf b;
    b.n = 0; /* one whole message per lane, payload 100, max 1000, 2 producers */
    put8(&b, MR_CFG(2, 2, 2, 0));
    for (uint8_t lane = 0; lane < 8; lane++) {
        put8(&b, MR_CHUNK(lane));
        put16(&b, (uint16_t)(lane * 12));
    }
    emit(&b, "whole-message-per-lane");
    b.n = 0; /* two lanes' chunked messages interleaved chunk by chunk */
    put8(&b, MR_CFG(2, 2, 2, 0));
    put8(&b, MR_CHUNK(1));
    put16(&b, 1000);
    put8(&b, MR_CHUNK(6));
    put16(&b, 555);
    for (int i = 0; i < 10; i++) {
        put8(&b, MR_CHUNK(1));
        put8(&b, MR_CHUNK(6));
    }
    emit(&b, "interleaved-lanes");
    b.n = 0; /* sizes at the chunk boundary: payload 7, lengths 6, 7, 8, 14, 15 */
    put8(&b, MR_CFG(1, 1, 1, 0));
    const uint16_t lens[] = {0, 6, 7, 8, 14, 15, 100};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        put8(&b, MR_CHUNK(0));
        put16(&b, lens[i]);
        for (int k = 0; k < 16; k++)
            put8(&b, MR_CHUNK(0));
    }
    emit(&b, "sizes-around-payload");
    b.n = 0; /* a message given up half-way, then the lane's next */
    put8(&b, MR_CFG(2, 2, 1, 0));
    put8(&b, MR_CHUNK(2));
    put16(&b, 900);
    put8(&b, MR_CHUNK(2));
    put8(&b, MR_GIVEUP(2));
    put8(&b, MR_CHUNK(2));
    put16(&b, 50);
    emit(&b, "given-up-half-way");
    b.n = 0; /* hostile: corrupted chunks and forged records among honest ones */
    put8(&b, MR_CFG(2, 2, 2, 1));
    put8(&b, MR_CHUNK(0));
    put16(&b, 300);
    put8(&b, MR_BAD(0));
    put16(&b, 20); /* byte 20: the chunk index */
    put8(&b, 1);
    put8(&b, MR_CHUNK(0));
    put8(&b, MR_CHUNK(0));
    put8(&b, (uint8_t)(MR_BAD(3) | 0x80));
    put8(&b, 40);
    put(&b, "IPMC\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 16);
    put(&b, "\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00", 16);
    put(&b, "abcdefgh", 8);
    emit(&b, "hostile-corrupt-and-forged");
}

/* ---- cvq_repair --------------------------------------------------------------------------------
 */

/* Byte 0 and op encoding of fuzz_cvq_repair.c. */
#define CQ_GEO(slots, size_sel, hostile, recs)                                                     \
    ((uint8_t)(((slots)-2) | (size_sel) << 3 | (hostile) << 5 | ((recs)-1) << 6))
#define CQ_PUT          0
#define CQ_GET          1
#define CQ_PUT_STOP(st) ((uint8_t)(2 | (st) << 3))
#define CQ_GET_STOP(st) ((uint8_t)(3 | (st) << 3))
#define CQ_REPAIR       4
#define CQ_CTL(word)    ((uint8_t)(5 | (word) << 3))
#define CQ_SLOT(i)      ((uint8_t)(6 | (i) << 3))
#define CQ_REC(i)       ((uint8_t)(7 | (i) << 3))

static void cq_put(struct buf *b, uint8_t len)
{
    put8(b, CQ_PUT);
    put8(b, len);
}

static void cq_get(struct buf *b, uint8_t cap) /* 255: the slot size */
{
    put8(b, CQ_GET);
    put8(b, cap);
}

static void gen_cvq_repair(void)
{
    static struct buf b;
    b.n = 0; /* 3 slots of 8 bytes: 1, 2, 3 messages in flight, round after round */
    put8(&b, CQ_GEO(3, 1, 0, 2));
    for (int r = 0; r < 12; r++) {
        for (int i = 0; i <= r % 3; i++)
            cq_put(&b, (uint8_t)(i * 3 + r % 9));
        for (int i = 0; i <= r % 3; i++)
            cq_get(&b, 255);
    }
    emit(&b, "wrap-around");
    b.n = 0; /* a put stopped after each step, at fill levels 0 and 2 */
    put8(&b, CQ_GEO(3, 1, 0, 2));
    for (int fill = 0; fill <= 2; fill += 2)
        for (uint8_t st = 0; st < 5; st++) {
            for (int i = 0; i < fill; i++)
                cq_put(&b, 4);
            put8(&b, CQ_PUT_STOP(st));
            put8(&b, 7);
            for (int i = 0; i < 3; i++)
                cq_get(&b, 255);
        }
    emit(&b, "put-stopped-at-every-step");
    b.n = 0; /* a get stopped after each step, with one message behind it */
    put8(&b, CQ_GEO(3, 1, 0, 2));
    for (uint8_t st = 0; st < 5; st++) {
        cq_put(&b, 5);
        cq_put(&b, 6);
        put8(&b, CQ_GET_STOP(st));
        cq_get(&b, 255);
        cq_get(&b, 255);
    }
    emit(&b, "get-stopped-at-every-step");
    b.n = 0; /* 2 slots of 64: lengths 0, 64, 65 (refused), a full queue, short buffers */
    put8(&b, CQ_GEO(2, 2, 0, 1));
    cq_put(&b, 0);
    cq_put(&b, 64);
    cq_put(&b, 65);
    cq_put(&b, 1);
    put8(&b, CQ_PUT_STOP(3));
    put8(&b, 2);
    cq_get(&b, 255);
    cq_get(&b, 63);
    cq_get(&b, 64);
    cq_get(&b, 0);
    put8(&b, CQ_REPAIR);
    emit(&b, "sizes-full-short-buffers");
    b.n = 0; /* 9 slots of 255 bytes wrapped, stopped gets and puts across the wrap */
    put8(&b, CQ_GEO(9, 3, 0, 4));
    for (int i = 0; i < 7; i++)
        cq_put(&b, (uint8_t)(250 + i % 6));
    for (int i = 0; i < 6; i++)
        cq_get(&b, 255);
    for (uint8_t st = 0; st < 5; st++) {
        put8(&b, CQ_PUT_STOP(st));
        put8(&b, 255);
        put8(&b, CQ_GET_STOP((uint8_t)(4 - st)));
    }
    emit(&b, "nine-slots-wrapped-deaths");
    b.n = 0; /* hostile: indices, slot states and records overwritten, then repaired */
    put8(&b, CQ_GEO(4, 1, 1, 4));
    cq_put(&b, 3);
    cq_put(&b, 4);
    cq_put(&b, 5);
    put8(&b, CQ_CTL(0));
    put32(&b, 7);
    put8(&b, CQ_REPAIR);
    put8(&b, CQ_CTL(2));
    put32(&b, 0xffffffffu);
    cq_get(&b, 255);
    put8(&b, CQ_SLOT(1));
    put8(&b, 3);
    put16(&b, 9);
    put8(&b, CQ_SLOT(2));
    put8(&b, 5);
    put16(&b, 0xffff);
    put8(&b, CQ_REC(1));
    put8(&b, 9);
    put32(&b, 0x80000000u);
    put8(&b, 7);
    put8(&b, CQ_REPAIR);
    cq_get(&b, 255);
    cq_put(&b, 8);
    emit(&b, "hostile-words");
    b.n = 0; /* hostile: a FULL slot cut off from the run, a head far out of range */
    put8(&b, CQ_GEO(4, 1, 1, 2));
    cq_put(&b, 3);
    cq_put(&b, 4);
    cq_put(&b, 5);
    cq_get(&b, 255);
    put8(&b, CQ_SLOT(0)); /* slots 1-2 are the queue; slot 0 FULL after an EMPTY slot 3 */
    put8(&b, 2);
    put16(&b, 4);
    put8(&b, CQ_REPAIR);
    cq_get(&b, 255);
    cq_get(&b, 255);
    put8(&b, CQ_CTL(0)); /* empty queue, head 9 */
    put32(&b, 9);
    put8(&b, CQ_REPAIR);
    cq_put(&b, 1);
    cq_get(&b, 255);
    emit(&b, "hostile-gap-and-head");
}

/* ---- driver --------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*gen)(void);
} targets[] = {
    {"frame_decode", gen_frame_decode},
    {"chunk_reassembly", gen_chunk_reassembly},
    {"frame_roundtrip", gen_frame_roundtrip},
    {"ring_model", gen_ring_model},
    {"ring_hostile", gen_ring_hostile},
    {"ring_sched", gen_ring_sched},
    {"lock_sched", gen_lock_sched},
    {"sysvmsg_reasm", gen_sysvmsg_reasm},
    {"mqchan_rx", gen_mqchan_rx},
    {"cvq_repair", gen_cvq_repair},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUTDIR [target ...]\n", argv[0]);
        return 2;
    }
    g_out = argv[1];
    if (mkdir(g_out, 0777) != 0 && errno != EEXIST) {
        perror(g_out);
        return 1;
    }
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        int want = argc == 2;
        for (int a = 2; a < argc; a++)
            if (strcmp(argv[a], targets[i].name) == 0) want = 1;
        if (!want) continue;
        g_target = targets[i].name;
        targets[i].gen();
    }
    fprintf(stderr, "gen_seeds: %d seeds written to %s\n", g_count, g_out);
    return 0;
}

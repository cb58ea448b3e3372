/* fuzz_cvq_repair.c - the condvar queue's state repair after a death (cvq.h, ipcp_cvq_repair),
 * sans I/O: the control block, the slot headers and payloads and the endpoint records live in
 * heap memory; the real locked steps of put and get (ipcp_cvq_put_locked / get_locked, stopped
 * after any step as a death would stop them) and raw overwrites from the input make the states
 * the repair must handle.
 *
 * Input: byte 0 = geometry: bits 0-2 slots - 2 (2..9), bits 3-4 slot size (1, 8, 64, 255),
 * bit 5 hostile (ops 5-7 overwrite shared words), bits 6-7 records - 1 (1..4). Then operations,
 * one byte each plus operands:
 *   op & 7 = 0  put a message of (u8 % (slot size + 2)) bytes (slot size + 1: -EMSGSIZE)
 *          = 1  get with a buffer of (u8 % (slot size + 1)) bytes, or the slot size when the
 *               operand is 255
 *          = 2  a put stopped after (op >> 3) % 5 steps, then the repair
 *          = 3  a get stopped after (op >> 3) % 5 steps, then the repair
 *          = 4  the repair alone
 *          = 5  (hostile) control word (op >> 3) % 4 := u32
 *          = 6  (hostile) slot (op >> 3) % slots: state := u8 % 6 (5 unknown), len := u16
 *          = 7  (hostile) record (op >> 3) % records: state := u8, pid := u32, waiting := u8
 * Messages carry fz_fill bytes keyed by their id. The oracle is the list of messages the queue
 * holds (ids and lengths), not a model of the code.
 *
 * Checked: every call returns a documented code; after every repair ipcp_cvq_consistent() is 1
 * and a second repair changes nothing; a slot the repair keeps FULL has the length and payload
 * bytes it had before the repair; a get never returns more than the slot size. While nothing
 * hostile happened: the queue stays consistent after every operation; put and get return
 * -EAGAIN exactly when full / empty and -EMSGSIZE exactly when too long; a get returns the
 * oldest message with its exact bytes; a put stopped before its slot is FULL (steps 0-2) leaves
 * no message and one at steps 3-4 is delivered; a get stopped before its slot is EMPTY (steps
 * 0-2) loses nothing and one at 3-4 consumed its message; the repair reports exactly one
 * discarded put (steps 1-2) or restored get (steps 1-2). At most 4096 operations. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ipcproof/cvq.h"
#include "ipcproof/err.h"

#define MAX_OPS 4096
#define MAX_Q   16

static const uint32_t sizes[4] = {1, 8, 64, 255};

struct msg {
    uint32_t id, len;
};

struct oracle {
    struct msg m[MAX_Q];
    uint32_t head, n;
};

static struct ipcp_cvq_ctl ctl;
static struct ipcp_cvq_rec rec[4];
static uint8_t slots[9 * 272];
static uint8_t before[9 * 272];
static uint8_t buf[256], want[256];

FZ_NO_COVERAGE static void push(struct oracle *o, uint32_t id, uint32_t len)
{
    o->m[(o->head + o->n) % MAX_Q] = (struct msg){id, len};
    o->n++;
}

FZ_NO_COVERAGE static struct msg pop(struct oracle *o)
{
    struct msg m = o->m[o->head];
    o->head = (o->head + 1) % MAX_Q;
    o->n--;
    return m;
}

static struct ipcp_cvq_slot *slot(const struct ipcp_cvq_view *v, uint32_t i)
{
    return (struct ipcp_cvq_slot *)(v->slots + (size_t)i * ipcp_cvq_stride(v->slot_size));
}

/* The repair, with the checks every repair gets. */
FZ_NO_COVERAGE static int repair(const struct ipcp_cvq_view *v, struct ipcp_cvq_fix *fix)
{
    size_t bytes = (size_t)v->nslots * ipcp_cvq_stride(v->slot_size);
    memcpy(before, v->slots, bytes);
    int ch = ipcp_cvq_repair(v, fix);
    FZ_CHECK(ch >= 0, "repair returned %d", ch);
    FZ_CHECK(ipcp_cvq_consistent(v), "inconsistent after the repair");
    for (uint32_t i = 0; i < v->nslots; i++) {
        const struct ipcp_cvq_slot *s = slot(v, i);
        if (s->state != IPCP_CVQ_FULL) continue;
        size_t off = (size_t)i * ipcp_cvq_stride(v->slot_size);
        FZ_CHECK(memcmp(v->slots + off + 4, before + off + 4, 4 + s->len) == 0,
                 "slot %u kept FULL with other bytes", i);
    }
    FZ_CHECK_RC(ipcp_cvq_repair(v, NULL), 0, "a second repair");
    return ch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    struct fz_in in = fz_in_make(data, size);
    uint8_t g = fz_u8(&in);
    uint32_t nslots = (g & 7u) + 2, ssize = sizes[(g >> 3) & 3u], nrec = (g >> 6) + 1u;
    int hostile_ok = (g >> 5) & 1;
    memset(&ctl, 0, sizeof(ctl));
    memset(rec, 0, sizeof(rec));
    memset(slots, 0, sizeof(slots));
    const struct ipcp_cvq_view v = {&ctl, slots, nslots, ssize, rec, nrec};
    FZ_CHECK(ipcp_cvq_consistent(&v), "a zeroed region is an empty queue");
    struct oracle o = {.head = 0, .n = 0};
    int tainted = 0;
    uint32_t next_id = 1;
    for (size_t op = 0; op < MAX_OPS && fz_left(&in) > 0; op++) {
        uint8_t b = fz_u8(&in);
        unsigned kind = b & 7u, arg = b >> 3;
        if (kind >= 5 && !hostile_ok) kind = 4;
        struct ipcp_cvq_fix fix;
        if (kind == 0 || kind == 2) {
            int steps = kind == 0 ? IPCP_CVQ_STEPS : (int)(arg % 5);
            uint32_t len = kind == 0 ? fz_u8(&in) % (ssize + 2) : fz_u8(&in) % (ssize + 1);
            uint32_t id = next_id++;
            fz_fill(buf, len > ssize ? ssize : len, id);
            int rc = ipcp_cvq_put_locked(&v, buf, len, steps);
            FZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EMSGSIZE || rc == -IPCP_E_CORRUPT,
                     "op %zu: put returned %d", op, rc);
            if (!tainted) {
                FZ_CHECK_RC(rc, len > ssize ? -EMSGSIZE : o.n == nslots ? -EAGAIN : 0, "put");
                if (rc == 0 && (kind == 0 || steps >= 3)) push(&o, id, len);
            }
            if (kind == 2) {
                repair(&v, &fix);
                if (!tainted && rc == 0)
                    FZ_CHECK(fix.discarded == (steps == 1 || steps == 2) && fix.restored == 0,
                             "op %zu: discarded %u after a put stopped at %d", op, fix.discarded,
                             steps);
            } else if (rc == -IPCP_E_CORRUPT) {
                repair(&v, NULL);
            }
        } else if (kind == 1 || kind == 3) {
            int steps = kind == 1 ? IPCP_CVQ_STEPS : (int)(arg % 5);
            uint8_t c = kind == 1 ? fz_u8(&in) : 255;
            size_t cap = c == 255 ? ssize : c % (ssize + 1), need = 0;
            ssize_t n = ipcp_cvq_get_locked(&v, buf, cap, steps, &need);
            FZ_CHECK(n >= 0 || n == -EAGAIN || n == -EMSGSIZE || n == -IPCP_E_CORRUPT,
                     "op %zu: get returned %zd", op, n);
            FZ_CHECK(n < 0 || (size_t)n <= cap, "op %zu: %zd bytes into %zu", op, n, cap);
            if (!tainted) {
                if (o.n == 0) {
                    FZ_CHECK_RC(n, -EAGAIN, "get on an empty queue");
                } else {
                    struct msg m = o.m[o.head];
                    if (m.len > cap) {
                        FZ_CHECK_RC(n, -EMSGSIZE, "get into a short buffer");
                        FZ_CHECK(need == m.len, "need %zu, message %u", need, m.len);
                    } else {
                        FZ_CHECK_RC(n, m.len, "get");
                        if (steps >= 2) {
                            fz_fill(want, m.len, m.id);
                            FZ_CHECK(memcmp(buf, want, m.len) == 0, "op %zu: message %u bytes", op,
                                     m.id);
                        }
                        if (kind == 1 || steps >= 3) pop(&o);
                    }
                }
            }
            if (kind == 3) {
                repair(&v, &fix);
                if (!tainted && n >= 0)
                    FZ_CHECK(fix.restored == (steps == 1 || steps == 2) && fix.discarded == 0,
                             "op %zu: restored %u after a get stopped at %d", op, fix.restored,
                             steps);
            } else if (n == -IPCP_E_CORRUPT) {
                repair(&v, NULL);
            }
        } else if (kind == 4) {
            int ch = repair(&v, NULL);
            if (!tainted) FZ_CHECK_RC(ch, 0, "a repair of a consistent queue");
        } else if (kind == 5) {
            uint32_t w = fz_u32(&in); /* head, tail, count or pad */
            memcpy((uint8_t *)&ctl + 4 * (arg % 4), &w, 4);
            tainted = 1;
        } else if (kind == 6) {
            struct ipcp_cvq_slot *s = slot(&v, arg % nslots);
            s->state = fz_u8(&in) % 6;
            s->len = fz_u16(&in);
            tainted = 1;
        } else {
            struct ipcp_cvq_rec *r = &rec[arg % nrec];
            r->state = fz_u8(&in);
            r->pid = fz_u32(&in);
            r->waiting = fz_u8(&in);
            tainted = 1;
        }
        if (!tainted) {
            FZ_CHECK(ipcp_cvq_consistent(&v), "op %zu: inconsistent without a death", op);
            FZ_CHECK(ctl.count == o.n, "op %zu: %u messages, %u expected", op, ctl.count, o.n);
        }
    }
    return 0;
}

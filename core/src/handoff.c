/* handoff.c - the READY/OK handoff (see handoff.h): pure slot state machines and message codec,
 * and a thin layer that moves their messages over two POSIX queues and the data through a
 * shared-memory slot area. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "atomics.h"
#include "deadline.h"
#include "os.h"
#include "proc.h"
#include "ipcproof/err.h"
#include "ipcproof/handoff.h"
#include "ipcproof/registry.h"

/* ==== messages ============================================================================== */

void ipcp_handoff_msg_encode(const struct ipcp_handoff_msg *m, uint8_t out[IPCP_HANDOFF_MSG_SIZE])
{
    uint32_t magic = IPCP_HANDOFF_MSG_MAGIC;
    memset(out, 0, IPCP_HANDOFF_MSG_SIZE);
    memcpy(out, &magic, 4);
    out[4] = m->type;
    out[5] = m->flags;
    memcpy(out + 8, &m->slot, 4);
    memcpy(out + 12, &m->len, 4);
    memcpy(out + 16, &m->seq, 8);
    memcpy(out + 24, &m->sum, 8);
}

int ipcp_handoff_msg_decode(const void *buf, size_t len, struct ipcp_handoff_msg *m)
{
    if (len != IPCP_HANDOFF_MSG_SIZE) return -EBADMSG;
    const uint8_t *p = buf;
    uint32_t magic;
    memcpy(&magic, p, 4);
    if (magic != IPCP_HANDOFF_MSG_MAGIC) return -EBADMSG;
    if (p[4] != IPCP_HANDOFF_READY && p[4] != IPCP_HANDOFF_OK) return -EBADMSG;
    if ((p[5] & ~IPCP_HANDOFF_F_NOSUM) != 0 || p[6] != 0 || p[7] != 0) return -EBADMSG;
    struct ipcp_handoff_msg t;
    t.type = p[4];
    t.flags = p[5];
    memcpy(&t.slot, p + 8, 4);
    memcpy(&t.len, p + 12, 4);
    memcpy(&t.seq, p + 16, 8);
    memcpy(&t.sum, p + 24, 8);
    if (t.type == IPCP_HANDOFF_OK && (t.flags != 0 || t.len != 0 || t.sum != 0)) return -EBADMSG;
    if ((t.flags & IPCP_HANDOFF_F_NOSUM) && t.sum != 0) return -EBADMSG;
    *m = t;
    return 0;
}

uint64_t ipcp_handoff_checksum(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

static int geometry_ok(uint32_t nslots, size_t slot_size)
{
    return nslots >= 1 && nslots <= IPCP_HANDOFF_MAX_SLOTS && slot_size >= 1 &&
           slot_size <= IPCP_HANDOFF_MAX_SLOT;
}

/* ==== sender ================================================================================ */

int ipcp_handoff_tx_init(struct ipcp_handoff_tx *tx, uint32_t nslots, size_t slot_size)
{
    if (!geometry_ok(nslots, slot_size)) return -EINVAL;
    memset(tx, 0, sizeof(*tx));
    tx->nslots = nslots;
    tx->slot_size = (uint32_t)slot_size;
    return 0;
}

int ipcp_handoff_tx_next(const struct ipcp_handoff_tx *tx, uint32_t *slot, uint64_t *seq)
{
    uint32_t s = (uint32_t)(tx->next_seq % tx->nslots);
    if (tx->slot[s].state == IPCP_HANDOFF_READY_SENT) return -EAGAIN;
    if (tx->slot[s].state != IPCP_HANDOFF_FREE) return -IPCP_E_STATE;
    *slot = s;
    *seq = tx->next_seq;
    return 0;
}

int ipcp_handoff_tx_written(struct ipcp_handoff_tx *tx, uint32_t slot, size_t len, uint64_t sum,
                            uint8_t out[IPCP_HANDOFF_MSG_SIZE])
{
    if (slot != tx->next_seq % tx->nslots || tx->slot[slot].state != IPCP_HANDOFF_FREE)
        return -IPCP_E_STATE;
    if (len > tx->slot_size) return -EMSGSIZE;
    tx->slot[slot].state = IPCP_HANDOFF_WRITTEN;
    tx->slot[slot].seq = tx->next_seq;
    tx->slot[slot].len = (uint32_t)len;
    struct ipcp_handoff_msg m = {.type = IPCP_HANDOFF_READY,
                                 .flags = tx->checksum ? 0 : IPCP_HANDOFF_F_NOSUM,
                                 .slot = slot,
                                 .len = (uint32_t)len,
                                 .seq = tx->next_seq,
                                 .sum = tx->checksum ? sum : 0};
    ipcp_handoff_msg_encode(&m, out);
    return 0;
}

int ipcp_handoff_tx_sent(struct ipcp_handoff_tx *tx, uint32_t slot)
{
    if (slot >= tx->nslots || tx->slot[slot].state != IPCP_HANDOFF_WRITTEN) return -IPCP_E_STATE;
    tx->slot[slot].state = IPCP_HANDOFF_READY_SENT;
    tx->next_seq++;
    return 0;
}

int ipcp_handoff_tx_abort(struct ipcp_handoff_tx *tx, uint32_t slot)
{
    if (slot >= tx->nslots || tx->slot[slot].state != IPCP_HANDOFF_WRITTEN) return -IPCP_E_STATE;
    tx->slot[slot].state = IPCP_HANDOFF_FREE;
    tx->slot[slot].len = 0;
    return 0;
}

int ipcp_handoff_tx_on_ok(struct ipcp_handoff_tx *tx, const void *msg, size_t len, uint32_t *slot)
{
    struct ipcp_handoff_msg m;
    int rc = ipcp_handoff_msg_decode(msg, len, &m);
    if (rc < 0) return rc;
    if (m.type != IPCP_HANDOFF_OK || m.slot >= tx->nslots) return -EBADMSG;
    if (tx->slot[m.slot].state != IPCP_HANDOFF_READY_SENT) return -IPCP_E_STATE;
    if (tx->slot[m.slot].seq != m.seq) return -IPCP_E_SEQUENCE;
    tx->slot[m.slot].state = IPCP_HANDOFF_FREE;
    tx->slot[m.slot].len = 0;
    tx->acked++;
    *slot = m.slot;
    return 0;
}

uint32_t ipcp_handoff_tx_inflight(const struct ipcp_handoff_tx *tx)
{
    return (uint32_t)(tx->next_seq - tx->acked);
}

int ipcp_handoff_tx_valid(const struct ipcp_handoff_tx *tx)
{
    if (!geometry_ok(tx->nslots, tx->slot_size)) return 0;
    if (tx->acked > tx->next_seq || tx->next_seq - tx->acked > tx->nslots) return 0;
    uint64_t sent = 0;
    int written = 0;
    for (uint32_t i = 0; i < IPCP_HANDOFF_MAX_SLOTS; i++) {
        uint8_t st = tx->slot[i].state;
        if (i >= tx->nslots) {
            if (st != IPCP_HANDOFF_FREE) return 0;
            continue;
        }
        if (st == IPCP_HANDOFF_FREE) continue;
        if (tx->slot[i].len > tx->slot_size) return 0;
        if (tx->slot[i].seq % tx->nslots != i) return 0;
        if (st == IPCP_HANDOFF_READY_SENT) {
            /* outstanding messages are the last nslots sent at most */
            if (tx->slot[i].seq >= tx->next_seq || tx->next_seq - tx->slot[i].seq > tx->nslots)
                return 0;
            sent++;
        } else if (st == IPCP_HANDOFF_WRITTEN) {
            if (tx->slot[i].seq != tx->next_seq || written++) return 0;
        } else {
            return 0;
        }
    }
    return sent == tx->next_seq - tx->acked;
}

/* ==== receiver ============================================================================== */

int ipcp_handoff_rx_init(struct ipcp_handoff_rx *rx, uint32_t nslots, size_t slot_size)
{
    if (!geometry_ok(nslots, slot_size)) return -EINVAL;
    memset(rx, 0, sizeof(*rx));
    rx->nslots = nslots;
    rx->slot_size = (uint32_t)slot_size;
    return 0;
}

int ipcp_handoff_rx_on_ready(struct ipcp_handoff_rx *rx, const void *msg, size_t len,
                             struct ipcp_handoff_msg *out)
{
    if (rx->reading) return -IPCP_E_STATE;
    struct ipcp_handoff_msg m;
    int rc = ipcp_handoff_msg_decode(msg, len, &m);
    if (rc < 0) return rc;
    if (m.type != IPCP_HANDOFF_READY || m.slot >= rx->nslots || m.len > rx->slot_size ||
        m.slot != m.seq % rx->nslots || (rx->require_sum && (m.flags & IPCP_HANDOFF_F_NOSUM)))
        return -EBADMSG;
    if (m.seq != rx->expect_seq) return -IPCP_E_SEQUENCE;
    rx->reading = 1;
    rx->cur = m;
    *out = m;
    return 0;
}

int ipcp_handoff_rx_verify(const struct ipcp_handoff_rx *rx, const void *copy, size_t len)
{
    if (!rx->reading) return -IPCP_E_STATE;
    if (len != rx->cur.len) return -IPCP_E_PAYSUM;
    if (!(rx->cur.flags & IPCP_HANDOFF_F_NOSUM) && ipcp_handoff_checksum(copy, len) != rx->cur.sum)
        return -IPCP_E_PAYSUM;
    return 0;
}

int ipcp_handoff_rx_done(struct ipcp_handoff_rx *rx, uint8_t out[IPCP_HANDOFF_MSG_SIZE])
{
    if (!rx->reading) return -IPCP_E_STATE;
    struct ipcp_handoff_msg ok = {.type = IPCP_HANDOFF_OK,
                                  .flags = 0,
                                  .slot = rx->cur.slot,
                                  .len = 0,
                                  .seq = rx->cur.seq,
                                  .sum = 0};
    ipcp_handoff_msg_encode(&ok, out);
    rx->expect_seq++;
    rx->reading = 0;
    return 0;
}

int ipcp_handoff_rx_valid(const struct ipcp_handoff_rx *rx)
{
    if (!geometry_ok(rx->nslots, rx->slot_size)) return 0;
    if (!rx->reading) return 1;
    return rx->cur.type == IPCP_HANDOFF_READY && rx->cur.seq == rx->expect_seq &&
           rx->cur.slot == rx->cur.seq % rx->nslots && rx->cur.len <= rx->slot_size;
}

/* ==== over shm and queues =================================================================== */

#define HO_MAGIC   0x4648504fu /* "OPHF" */
#define HO_VERSION 1
#define SLICE_MS   50 /* how often a waiter looks whether its peer died */

struct ho_hdr {
    uint32_t magic;
    uint32_t version;
    uint32_t nslots;
    uint32_t slot_size;
    uint8_t pad0[IPCP_CACHELINE - 16];
    _Atomic uint64_t tx_owner; /* (start << 32) | pid of the sender, 0 until it opens */
    uint8_t pad1[IPCP_CACHELINE - 8];
    _Atomic uint64_t rx_owner; /* same for the receiver */
    uint8_t pad2[IPCP_CACHELINE - 8];
};

struct ipcp_handoff {
    char name[96];  /* shm */
    char rname[96]; /* READY queue */
    char oname[96]; /* OK queue */
    struct ho_hdr *hdr;
    size_t map_size;
    uint32_t nslots;
    size_t slot_size;
    size_t stride;
    unsigned flags; /* IPCP_HANDOFF_NO_CHECKSUM: both sides, by the copy each process has */
    pid_t creator;
    uint64_t pidns; /* the creator's PID namespace (proc.h): both sides must share it */
};

struct ipcp_handoff_ep {
    struct ipcp_handoff *ho;
    int role;
    mqd_t rq, oq;
    struct ipcp_handoff_tx tx;
    struct ipcp_handoff_rx rx;
    int ok_pending; /* an OK that could not be sent yet */
    uint8_t okmsg[IPCP_HANDOFF_MSG_SIZE];
};

static const struct timespec ZERO_TS = {0, 0};

/* The slot address from the local geometry: a slot index is validated before it gets here. */
static uint8_t *slot_ptr(const struct ipcp_handoff *ho, uint32_t slot)
{
    return (uint8_t *)ho->hdr + sizeof(struct ho_hdr) + (size_t)slot * ho->stride;
}

static int peer_dead(const struct ipcp_handoff_ep *ep)
{
    const struct ho_hdr *h = ep->ho->hdr;
    /* relaxed: a hint about the peer's identity, not data we depend on */
    uint64_t o = ipcp_load_relaxed64(ep->role == IPCP_HANDOFF_SENDER ? &h->rx_owner : &h->tx_owner);
    if (o == 0) return 0; /* not opened yet */
    return !ipcp__proc_alive((uint32_t)o, o >> 32, 0xffffffffull);
}

int ipcp_handoff_create(const struct ipcp_handoff_cfg *cfg, struct ipcp_handoff **out)
{
    *out = NULL;
    if (cfg == NULL || !geometry_ok(cfg->nslots, cfg->slot_size) ||
        (cfg->flags & ~IPCP_HANDOFF_NO_CHECKSUM) != 0)
        return -EINVAL;
    struct ipcp_handoff *ho = calloc(1, sizeof(*ho));
    if (ho == NULL) return -ENOMEM;
    ho->nslots = cfg->nslots;
    ho->slot_size = cfg->slot_size;
    ho->flags = cfg->flags;
    ho->stride = (cfg->slot_size + IPCP_CACHELINE - 1) / IPCP_CACHELINE * IPCP_CACHELINE;
    ho->map_size = sizeof(struct ho_hdr) + (size_t)cfg->nslots * ho->stride;
    ho->creator = getpid();
    ho->pidns = ipcp__proc_ns();
    int rc = ipcp__os_objname(ho->name, sizeof(ho->name), "handoff", cfg->stem);
    if (rc < 0) goto fail_free;
    /* the queues share the shm name's pid and suffix */
    const char *rest = ho->name + strlen("/ipcp.handoff");
    snprintf(ho->rname, sizeof(ho->rname), "/ipcp.hready%s", rest);
    snprintf(ho->oname, sizeof(ho->oname), "/ipcp.hok%s", rest);

    void *map;
    rc = ipcp__os_shm_create(ho->name, ho->map_size, &map);
    if (rc < 0) goto fail_free;
    ho->hdr = map;
    ho->hdr->magic = HO_MAGIC;
    ho->hdr->version = HO_VERSION;
    ho->hdr->nslots = cfg->nslots;
    ho->hdr->slot_size = (uint32_t)cfg->slot_size;

    /* one READY (or OK) per slot at most is ever outstanding: nslots messages fit */
    rc = ipcp__os_mq_create(ho->rname, cfg->nslots, IPCP_HANDOFF_MSG_SIZE);
    if (rc < 0) goto fail_shm;
    mq_close((mqd_t)rc);
    rc = ipcp__os_mq_create(ho->oname, cfg->nslots, IPCP_HANDOFF_MSG_SIZE);
    if (rc < 0) goto fail_rq;
    mq_close((mqd_t)rc);
    *out = ho;
    return 0;

fail_rq:
    mq_unlink(ho->rname);
    (void)ipcp_registry_remove("mq", ho->rname);
fail_shm:
    munmap(ho->hdr, ho->map_size);
    shm_unlink(ho->name);
    (void)ipcp_registry_remove("shm", ho->name);
fail_free:
    free(ho);
    return rc;
}

void ipcp_handoff_destroy(struct ipcp_handoff *ho)
{
    if (ho == NULL) return;
    if (getpid() == ho->creator) {
        mq_unlink(ho->rname);
        mq_unlink(ho->oname);
        shm_unlink(ho->name);
        (void)ipcp_registry_remove("mq", ho->rname);
        (void)ipcp_registry_remove("mq", ho->oname);
        (void)ipcp_registry_remove("shm", ho->name);
    }
    munmap(ho->hdr, ho->map_size);
    free(ho);
}

const char *ipcp_handoff_name(const struct ipcp_handoff *ho)
{
    return ho->name;
}

int ipcp_handoff_open(struct ipcp_handoff *ho, int role, struct ipcp_handoff_ep **out)
{
    *out = NULL;
    if (role != IPCP_HANDOFF_SENDER && role != IPCP_HANDOFF_RECEIVER) return -EINVAL;
    uint32_t pid;
    uint64_t start;
    /* each side tells the other's death by its pid: one PID namespace */
    int rc = ipcp__proc_ns_check(ho->pidns);
    if (rc == 0) rc = ipcp__proc_self(&pid, &start);
    if (rc < 0) return rc;
    struct ipcp_handoff_ep *ep = calloc(1, sizeof(*ep));
    if (ep == NULL) return -ENOMEM;
    ep->ho = ho;
    ep->role = role;
    ep->rq = ep->oq = (mqd_t)-1;
    _Atomic uint64_t *owner = role == IPCP_HANDOFF_SENDER ? &ho->hdr->tx_owner : &ho->hdr->rx_owner;
    uint64_t expected = 0;
    /* acq_rel: claims the side exactly once, whoever else tries at the same time */
    if (!ipcp_cas_acq_rel64(owner, &expected, ((start & 0xffffffffull) << 32) | pid)) {
        free(ep);
        return -EBUSY;
    }
    rc = ipcp__os_mq_open(ho->rname, ho->nslots, IPCP_HANDOFF_MSG_SIZE);
    if (rc < 0) goto fail;
    ep->rq = (mqd_t)rc;
    rc = ipcp__os_mq_open(ho->oname, ho->nslots, IPCP_HANDOFF_MSG_SIZE);
    if (rc < 0) goto fail;
    ep->oq = (mqd_t)rc;
    ipcp_handoff_tx_init(&ep->tx, ho->nslots, ho->slot_size);
    ipcp_handoff_rx_init(&ep->rx, ho->nslots, ho->slot_size);
    ep->tx.checksum = ep->rx.require_sum = (ho->flags & IPCP_HANDOFF_NO_CHECKSUM) == 0;
    *out = ep;
    return 0;
fail:
    if (ep->rq != (mqd_t)-1) mq_close(ep->rq);
    ipcp_store_release64(owner, 0); /* give the side back: open may be tried again */
    free(ep);
    return rc;
}

void ipcp_handoff_close(struct ipcp_handoff_ep *ep)
{
    if (ep == NULL) return;
    mq_close(ep->rq);
    mq_close(ep->oq);
    free(ep);
}

/* An OK came out of the queue: feed it to the state machine. */
static int take_ok(struct ipcp_handoff_ep *ep, const uint8_t *msg, ssize_t n)
{
    uint32_t slot;
    int rc = ipcp_handoff_tx_on_ok(&ep->tx, msg, (size_t)n, &slot);
    if (rc < 0) return rc;
    /* The receiver's reads of this slot happened before its OK (kernel-ordered; TSan). */
    ipcp_tsan_acquire(slot_ptr(ep->ho, slot));
    return 0;
}

/* Takes every OK already in the queue, without waiting: 0, or a refusal of one that is not ours
 * (the queue is left with what followed it). */
static int take_queued_oks(struct ipcp_handoff_ep *ep)
{
    uint8_t msg[IPCP_HANDOFF_MSG_SIZE];
    for (;;) {
        ssize_t n = mq_timedreceive(ep->oq, (char *)msg, sizeof(msg), NULL, &ZERO_TS);
        if (n < 0) return errno == ETIMEDOUT || errno == EAGAIN || errno == EINTR ? 0 : -errno;
        int rc = take_ok(ep, msg, n);
        if (rc < 0) return rc;
    }
}

/* Waits for one message on q up to the deadline, in slices that look at the peer. */
static ssize_t wait_msg(struct ipcp_handoff_ep *ep, mqd_t q, uint8_t msg[IPCP_HANDOFF_MSG_SIZE],
                        const struct ipcp_deadline *dl)
{
    for (;;) {
        int left = ipcp__deadline_left_ms(dl);
        int slice = left >= 0 && left < SLICE_MS ? left : SLICE_MS;
        struct timespec ts = ipcp__realtime_after_ms(slice);
        ssize_t n = mq_timedreceive(q, (char *)msg, IPCP_HANDOFF_MSG_SIZE, NULL, &ts);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != ETIMEDOUT) return -errno;
        if (peer_dead(ep)) return -IPCP_E_PEERDEAD;
        if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
    }
}

int ipcp_handoff_send(struct ipcp_handoff_ep *ep, const void *data, size_t len, int timeout_ms)
{
    if (ep->role != IPCP_HANDOFF_SENDER) return -IPCP_E_STATE;
    if (len > ep->ho->slot_size) return -EMSGSIZE;
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    /* OKs are taken only when the next slot needs one: they come back in slot order, the queue
     * holds every one that can be outstanding, and looking for them before every send cost a
     * failed receive (a system call) per message. */
    int rc;
    uint32_t slot;
    uint64_t seq;
    uint8_t msg[IPCP_HANDOFF_MSG_SIZE];
    while ((rc = ipcp_handoff_tx_next(&ep->tx, &slot, &seq)) == -EAGAIN) {
        ssize_t n = wait_msg(ep, ep->oq, msg, &dl);
        if (n < 0) return (int)n;
        rc = take_ok(ep, msg, n);
        if (rc < 0) return rc;
    }
    if (rc < 0) return rc;
    uint8_t *p = slot_ptr(ep->ho, slot);
    memcpy(p, data, len);
    uint64_t sum = ep->tx.checksum ? ipcp_handoff_checksum(data, len) : 0;
    rc = ipcp_handoff_tx_written(&ep->tx, slot, len, sum, msg);
    if (rc < 0) return rc;
    /* Our writes to the slot happen before the receiver's reads (kernel-ordered; TSan). */
    ipcp_tsan_release(p);
    /* At most nslots READYs are outstanding and the queue holds nslots: this only waits when
     * messages that are not ours fill it, or the receiver broke the protocol; bounded by the
     * caller's deadline. Between two tries the OKs in the queue are taken: the receiver may be
     * waiting for room there to send its OK (forged OKs filling it) before it reads READYs
     * again, and with the OKs taken lazily nothing else would empty it. */
    for (;;) {
        struct timespec ts = ZERO_TS;
        if (mq_timedsend(ep->rq, (const char *)msg, sizeof(msg), 0, &ts) == 0) break;
        int e = errno;
        if (e == EINTR) continue;
        if (e == ETIMEDOUT) {
            rc = take_queued_oks(ep);
            if (rc == 0) {
                int left = ipcp__deadline_left_ms(&dl);
                ts = ipcp__realtime_after_ms(left < 0 || left > SLICE_MS ? SLICE_MS : left);
                if (mq_timedsend(ep->rq, (const char *)msg, sizeof(msg), 0, &ts) == 0) break;
                e = errno;
                if (e == EINTR) continue;
                if (e == ETIMEDOUT && ipcp__deadline_left_ms(&dl) != 0 && !peer_dead(ep)) continue;
            }
        }
        ipcp_handoff_tx_abort(&ep->tx, slot);
        if (rc < 0 && e == ETIMEDOUT) return rc; /* a refused OK: nothing was sent */
        return e == ETIMEDOUT && peer_dead(ep) ? -IPCP_E_PEERDEAD : -e;
    }
    return ipcp_handoff_tx_sent(&ep->tx, slot);
}

int ipcp_handoff_flush(struct ipcp_handoff_ep *ep, int timeout_ms)
{
    if (ep->role != IPCP_HANDOFF_SENDER) return -IPCP_E_STATE;
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    uint8_t msg[IPCP_HANDOFF_MSG_SIZE];
    while (ipcp_handoff_tx_inflight(&ep->tx) > 0) {
        ssize_t n = wait_msg(ep, ep->oq, msg, &dl);
        if (n < 0) return (int)n;
        int rc = take_ok(ep, msg, n);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Sends the pending OK. Without a deadline it does not wait: at most nslots OKs are outstanding
 * and the queue holds nslots, so only forged messages filling the queue make it wait. With one it
 * waits for room up to the deadline, in slices that look at the peer: returning "timed out"
 * before the deadline would make a caller's retry loop spin. */
static int send_ok(struct ipcp_handoff_ep *ep, const struct ipcp_deadline *dl)
{
    for (;;) {
        struct timespec ts = ZERO_TS;
        if (dl != NULL) {
            int left = ipcp__deadline_left_ms(dl);
            ts = ipcp__realtime_after_ms(left < 0 || left > SLICE_MS ? SLICE_MS : left);
        }
        if (mq_timedsend(ep->oq, (const char *)ep->okmsg, sizeof(ep->okmsg), 0, &ts) == 0) {
            ep->ok_pending = 0;
            return 0;
        }
        int e = errno;
        if (e == EINTR) continue;
        if (e != ETIMEDOUT || dl == NULL) return -e;
        if (peer_dead(ep)) return -IPCP_E_PEERDEAD;
        if (ipcp__deadline_left_ms(dl) == 0) return -ETIMEDOUT;
    }
}

ssize_t ipcp_handoff_recv(struct ipcp_handoff_ep *ep, void *buf, size_t cap, int timeout_ms)
{
    if (ep->role != IPCP_HANDOFF_RECEIVER) return -IPCP_E_STATE;
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    if (ep->ok_pending) {
        int rc = send_ok(ep, &dl);
        if (rc < 0) return rc;
    }
    struct ipcp_handoff_msg m;
    uint8_t msg[IPCP_HANDOFF_MSG_SIZE];
    if (!ep->rx.reading) {
        ssize_t n = wait_msg(ep, ep->rq, msg, &dl);
        if (n < 0) return n;
        int rc = ipcp_handoff_rx_on_ready(&ep->rx, msg, (size_t)n, &m);
        if (rc < 0) return rc;
    }
    m = ep->rx.cur;
    if (m.len > cap) return -EMSGSIZE;
    uint8_t *p = slot_ptr(ep->ho, m.slot);
    /* The sender's writes to the slot happened before its READY (kernel-ordered; TSan). */
    ipcp_tsan_acquire(p);
    memcpy(buf, p, m.len); /* read once; everything below looks at our copy only */
    int bad = ipcp_handoff_rx_verify(&ep->rx, buf, m.len);
    ipcp_handoff_rx_done(&ep->rx, ep->okmsg);
    ep->ok_pending = 1;
    /* Our reads of the slot happen before the sender writes it again after this OK. */
    ipcp_tsan_release(p);
    int rc = send_ok(ep, NULL);
    if (rc < 0 && rc != -ETIMEDOUT && rc != -EAGAIN) return rc;
    return bad < 0 ? bad : (ssize_t)m.len;
}

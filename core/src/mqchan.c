/* mqchan.c - a POSIX message queue as a data channel (see mqchan.h): the chunk header codec and
 * the per-lane reassembly over chunk.c, both pure, and a thin layer that moves chunks through
 * one queue with a deadline on every wait. Queue creation, naming and limits are mqlock.c's. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "deadline.h"
#include "eptab.h"
#include "os.h"
#include "ipcproof/err.h"
#include "ipcproof/mqchan.h"
#include "ipcproof/mqlock.h"
#include "ipcproof/registry.h"

#define HDR_VERSION 1
#define HDR_SEED    0x6d716368u /* "mqch" */
#define SLICE_MS    100         /* longest single wait: a CLOCK_REALTIME jump costs at most this */

/* ==== header ================================================================================ */

void ipcp_mqchan_hdr_encode(const struct ipcp_mqchan_hdr *h, uint8_t out[IPCP_MQCHAN_HDR_SIZE])
{
    uint32_t magic = IPCP_MQCHAN_MAGIC;
    memcpy(out, &magic, 4);
    out[4] = HDR_VERSION;
    out[5] = h->prio;
    memcpy(out + 6, &h->producer, 2);
    memcpy(out + 8, &h->seq, 8);
    memcpy(out + 16, &h->total, 4);
    memcpy(out + 20, &h->index, 4);
    memcpy(out + 24, &h->count, 4);
    uint32_t check = XXH32(out, 28, HDR_SEED);
    memcpy(out + 28, &check, 4);
}

int ipcp_mqchan_hdr_decode(const void *buf, size_t len, struct ipcp_mqchan_hdr *h)
{
    if (len < IPCP_MQCHAN_HDR_SIZE) return -EBADMSG;
    const uint8_t *p = buf;
    uint32_t magic, check;
    memcpy(&magic, p, 4);
    memcpy(&check, p + 28, 4);
    if (magic != IPCP_MQCHAN_MAGIC || p[4] != HDR_VERSION) return -EBADMSG;
    if (check != XXH32(p, 28, HDR_SEED)) return -EBADMSG;
    h->prio = p[5];
    memcpy(&h->producer, p + 6, 2);
    memcpy(&h->seq, p + 8, 8);
    memcpy(&h->total, p + 16, 4);
    memcpy(&h->index, p + 20, 4);
    memcpy(&h->count, p + 24, 4);
    return 0;
}

uint32_t ipcp_mqchan_chunks(uint64_t total, size_t payload)
{
    if (payload == 0) return 0;
    uint64_t n = total == 0 ? 1 : (total - 1) / payload + 1;
    return n > UINT32_MAX ? 0 : (uint32_t)n;
}

/* ==== receiver reassembly =================================================================== */

int ipcp_mqchan_rx_init(struct ipcp_mqchan_rx *rx, uint32_t producers, size_t max_msg,
                        size_t msgsize)
{
    memset(rx, 0, sizeof(*rx));
    if (producers == 0 || producers > IPCP_MQCHAN_MAX_PRODUCERS || max_msg == 0 ||
        max_msg > IPCP_MQCHAN_MAX_MSG || msgsize <= IPCP_MQCHAN_HDR_SIZE)
        return -EINVAL;
    size_t n = (size_t)producers * IPCP_MQCHAN_PRIOS;
    rx->lane = calloc(n, sizeof(*rx->lane));
    if (rx->lane == NULL) return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        (void)ipcp_reasm_init(&rx->lane[i].r, max_msg); /* max_msg was checked: cannot fail */
    rx->producers = producers;
    rx->max_msg = max_msg;
    rx->payload = msgsize - IPCP_MQCHAN_HDR_SIZE;
    return 0;
}

void ipcp_mqchan_rx_fini(struct ipcp_mqchan_rx *rx)
{
    if (rx->lane != NULL)
        for (size_t i = 0; i < (size_t)rx->producers * IPCP_MQCHAN_PRIOS; i++)
            ipcp_reasm_fini(&rx->lane[i].r);
    free(rx->lane);
    memset(rx, 0, sizeof(*rx));
}

/* A chunk of this lane was refused: its message is dropped, and so are its further chunks. */
static int lane_refuse(struct ipcp_mqchan_lane *l, uint64_t seq, int err)
{
    ipcp_reasm_reset(&l->r);
    l->skipping = 1;
    l->skip_seq = seq;
    return err;
}

int ipcp_mqchan_rx_feed(struct ipcp_mqchan_rx *rx, const void *msg, size_t len, unsigned prio,
                        struct ipcp_mqchan_msg *out)
{
    struct ipcp_mqchan_hdr h;
    int rc = ipcp_mqchan_hdr_decode(msg, len, &h);
    if (rc < 0) return rc;
    if (h.producer >= rx->producers || h.prio >= IPCP_MQCHAN_PRIOS || h.prio != prio)
        return -EBADMSG;
    struct ipcp_mqchan_lane *l = &rx->lane[(size_t)h.producer * IPCP_MQCHAN_PRIOS + h.prio];
    const uint8_t *data = (const uint8_t *)msg + IPCP_MQCHAN_HDR_SIZE;
    size_t dlen = len - IPCP_MQCHAN_HDR_SIZE;

    /* the rest of a refused message goes quietly */
    if (h.index > 0 && l->skipping && h.seq == l->skip_seq) {
        rx->dropped++;
        return 0;
    }
    if (h.total > rx->max_msg) return lane_refuse(l, h.seq, -IPCP_E_TOOBIG);
    /* the geometry follows from the total alone: count, and each chunk's exact length */
    if (h.count != ipcp_mqchan_chunks(h.total, rx->payload) || h.index >= h.count)
        return lane_refuse(l, h.seq, -IPCP_E_FRAGMENT);
    size_t off = (size_t)h.index * rx->payload;
    size_t want = h.total - off < rx->payload ? h.total - off : rx->payload;
    if (dlen != want) return lane_refuse(l, h.seq, -IPCP_E_FRAGMENT);

    if (h.index == 0) {
        if (h.seq < l->next_seq) return lane_refuse(l, h.seq, -IPCP_E_SEQUENCE);
        l->skipping = 0;
        if (l->r.active) rx->abandoned++; /* the producer gave that one up half-way */
        ipcp_reasm_reset(&l->r);
        l->next_seq = h.seq + 1;
        if (h.count == 1) {
            *out = (struct ipcp_mqchan_msg){
                .data = data, .len = dlen, .producer = h.producer, .prio = h.prio, .seq = h.seq};
            return 1;
        }
        rc = ipcp_reasm_feed(&l->r, IPCP_CHUNK_FIRST, h.seq, h.total, data, dlen);
        if (rc < 0) return lane_refuse(l, h.seq, rc);
        l->next_index = 1;
        return 0;
    }
    if (!l->r.active || h.seq != l->r.seq || h.index != l->next_index)
        return lane_refuse(l, h.seq, -IPCP_E_FRAGMENT);
    unsigned flags = h.index == h.count - 1 ? IPCP_CHUNK_LAST : 0;
    rc = ipcp_reasm_feed(&l->r, flags, h.seq, h.total, data, dlen);
    if (rc < 0) return lane_refuse(l, h.seq, rc);
    l->next_index++;
    if (rc == 0) return 0;
    size_t mlen;
    uint64_t mseq;
    const void *m = ipcp_reasm_message(&l->r, &mlen, &mseq);
    *out = (struct ipcp_mqchan_msg){
        .data = m, .len = mlen, .producer = h.producer, .prio = h.prio, .seq = mseq};
    return 1;
}

int ipcp_mqchan_rx_valid(const struct ipcp_mqchan_rx *rx)
{
    if (rx->lane == NULL || rx->producers == 0 || rx->payload == 0) return 0;
    for (size_t i = 0; i < (size_t)rx->producers * IPCP_MQCHAN_PRIOS; i++) {
        const struct ipcp_mqchan_lane *l = &rx->lane[i];
        if (!ipcp_reasm_valid(&l->r) || l->r.max_msg != rx->max_msg) return 0;
        if (!l->r.active) continue;
        /* a message in progress: FIRST seen, not complete, its bytes the chunks so far */
        uint32_t count = ipcp_mqchan_chunks(l->r.total, rx->payload);
        if (l->next_index == 0 || l->next_index >= count || l->r.seq >= l->next_seq) return 0;
        if (l->r.have != (size_t)l->next_index * rx->payload) return 0;
    }
    return 1;
}

/* ==== over a queue ========================================================================== */

struct ipcp_mqchan {
    char name[96];
    uint32_t producers, consumers;
    size_t max_msg;
    struct ipcp_mqchan_info info;
    struct ipcp__eptab tab; /* who opened which endpoint, shared by the forked endpoints */
    pid_t creator;
};

struct ipcp_mqchan_ep {
    struct ipcp_mqchan *ch;
    int role;
    uint16_t producer;
    uint32_t slot; /* its entry in the endpoint table: the producer, or the receiver's */
    mqd_t q;
    uint8_t *buf;      /* one queue message (msgsize bytes) */
    uint64_t next_seq; /* sender: the next message's sequence */
    struct ipcp_mqchan_rx rx;
    int pending; /* receiver: a complete message that did not fit the caller's buffer */
    struct ipcp_mqchan_msg pend;
    struct ipcp_mqchan_stats st;
};

static long lower_to(long want, long limit, int privileged)
{
    return !privileged && limit > 0 && limit < want ? limit : want;
}

int ipcp_mqchan_create(const struct ipcp_mqchan_cfg *cfg, struct ipcp_mqchan **out)
{
    *out = NULL;
    if (cfg == NULL || cfg->producers == 0 || cfg->producers > IPCP_MQCHAN_MAX_PRODUCERS ||
        cfg->consumers == 0 || cfg->consumers > IPCP_MQCHAN_MAX_CONSUMERS || cfg->max_msg == 0 ||
        cfg->max_msg > IPCP_MQCHAN_MAX_MSG || cfg->maxmsg < 0 || cfg->msgsize < 0)
        return -EINVAL;
    struct ipcp_mq_limits lim;
    ipcp_mq_limits_read(&lim);
    long maxmsg =
        cfg->maxmsg ? cfg->maxmsg : lower_to(IPCP_MQCHAN_DEF_MAXMSG, lim.msg_max, lim.privileged);
    long msgsize = cfg->msgsize
                       ? cfg->msgsize
                       : lower_to(IPCP_MQCHAN_DEF_MSGSIZE, lim.msgsize_max, lim.privileged);
    if (msgsize <= IPCP_MQCHAN_HDR_SIZE) return -EINVAL;
    size_t payload = (size_t)msgsize - IPCP_MQCHAN_HDR_SIZE;
    /* chunks of one message must all reach the same receiver */
    if (cfg->consumers > 1 && cfg->max_msg > payload) return -EINVAL;
    if (ipcp_mqchan_chunks(cfg->max_msg, payload) == 0) return -EINVAL;

    struct ipcp_mqchan *ch = calloc(1, sizeof(*ch));
    if (ch == NULL) return -ENOMEM;
    ch->producers = cfg->producers;
    ch->consumers = cfg->consumers;
    ch->max_msg = cfg->max_msg;
    ch->creator = getpid();
    ch->info = (struct ipcp_mqchan_info){
        .maxmsg = maxmsg,
        .msgsize = msgsize,
        .payload = payload,
        .max_chunks = ipcp_mqchan_chunks(cfg->max_msg, payload),
        .msg_max = lim.msg_max,
        .msgsize_max = lim.msgsize_max,
        .privileged = lim.privileged,
    };
    int rc = ipcp__os_objname(ch->name, sizeof(ch->name), "mqchan", cfg->stem);
    if (rc < 0) goto fail;
    rc = ipcp__eptab_create(&ch->tab, cfg->producers, cfg->consumers);
    if (rc < 0) goto fail;
    rc = ipcp__os_mq_create(ch->name, maxmsg, msgsize); /* checks the limits, registers */
    if (rc < 0) goto fail;
    mq_close((mqd_t)rc);
    *out = ch;
    return 0;
fail:
    ipcp__eptab_destroy(&ch->tab);
    free(ch);
    return rc;
}

void ipcp_mqchan_destroy(struct ipcp_mqchan *ch)
{
    if (ch == NULL) return;
    if (getpid() == ch->creator) {
        mq_unlink(ch->name);
        (void)ipcp_registry_remove("mq", ch->name);
    }
    ipcp__eptab_destroy(&ch->tab);
    free(ch);
}

const char *ipcp_mqchan_name(const struct ipcp_mqchan *ch)
{
    return ch->name;
}

void ipcp_mqchan_info(const struct ipcp_mqchan *ch, struct ipcp_mqchan_info *info)
{
    *info = ch->info;
}

int ipcp_mqchan_open(struct ipcp_mqchan *ch, int role, uint32_t index, struct ipcp_mqchan_ep **out)
{
    *out = NULL;
    if (role != IPCP_MQCHAN_SENDER && role != IPCP_MQCHAN_RECEIVER) return -EINVAL;
    if (role == IPCP_MQCHAN_SENDER && index >= ch->producers) return -EINVAL;
    struct ipcp_mqchan_ep *ep = calloc(1, sizeof(*ep));
    if (ep == NULL) return -ENOMEM;
    ep->ch = ch;
    ep->role = role;
    ep->producer = (uint16_t)index;
    ep->q = (mqd_t)-1;
    int rc = -ENOMEM;
    ep->buf = malloc((size_t)ch->info.msgsize);
    if (ep->buf == NULL) goto fail;
    if (role == IPCP_MQCHAN_RECEIVER) {
        rc = ipcp_mqchan_rx_init(&ep->rx, ch->producers, ch->max_msg, (size_t)ch->info.msgsize);
        if (rc < 0) goto fail;
    }
    rc = ipcp__os_mq_open(ch->name, ch->info.maxmsg, ch->info.msgsize);
    if (rc < 0) goto fail;
    ep->q = (mqd_t)rc;
    /* last: nothing can fail after the entry is taken. A sender takes its producer's entry; a
     * receiver the first free consumer entry (receivers share the one queue: no index) */
    rc = role == IPCP_MQCHAN_SENDER ? ipcp__eptab_claim(&ch->tab, IPCP__EPTAB_PRODUCER, index)
                                    : ipcp__eptab_claim_any(&ch->tab, IPCP__EPTAB_CONSUMER);
    if (rc < 0) goto fail;
    ep->slot = role == IPCP_MQCHAN_SENDER ? index : (uint32_t)rc;
    *out = ep;
    return 0;
fail:
    if (ep->q != (mqd_t)-1) mq_close(ep->q);
    ipcp_mqchan_rx_fini(&ep->rx);
    free(ep->buf);
    free(ep);
    return rc;
}

void ipcp_mqchan_close(struct ipcp_mqchan_ep *ep)
{
    if (ep == NULL) return;
    /* what this endpoint sent is in the queue before a peer sees it closed */
    ipcp__eptab_close(&ep->ch->tab,
                      ep->role == IPCP_MQCHAN_SENDER ? IPCP__EPTAB_PRODUCER : IPCP__EPTAB_CONSUMER,
                      ep->slot);
    mq_close(ep->q);
    ipcp_mqchan_rx_fini(&ep->rx);
    free(ep->buf);
    free(ep);
}

/* The absolute CLOCK_REALTIME time of the next wait: the deadline's rest, at most one slice. */
static struct timespec next_wait(const struct ipcp_deadline *dl)
{
    int left = ipcp__deadline_left_ms(dl);
    return ipcp__realtime_after_ms(left < 0 || left > SLICE_MS ? SLICE_MS : left);
}

int ipcp_mqchan_send(struct ipcp_mqchan_ep *ep, const void *data, size_t len, unsigned prio,
                     int timeout_ms)
{
    if (ep->role != IPCP_MQCHAN_SENDER) return -IPCP_E_STATE;
    if (len > ep->ch->max_msg) return -EMSGSIZE;
    if (prio >= IPCP_MQCHAN_PRIOS) return -EINVAL;
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    size_t payload = ep->ch->info.payload;
    struct ipcp_mqchan_hdr h = {.prio = (uint8_t)prio,
                                .producer = ep->producer,
                                .seq = ep->next_seq++, /* a retried message gets a new one */
                                .total = (uint32_t)len,
                                .count = ipcp_mqchan_chunks(len, payload)};
    /* more chunks than the queue holds can only go while the receiver makes room */
    if (timeout_ms == 0 && h.count > (uint32_t)ep->ch->info.maxmsg) {
        ep->next_seq--;
        return -EAGAIN;
    }
    for (h.index = 0; h.index < h.count; h.index++) {
        size_t off = (size_t)h.index * payload;
        size_t clen = len - off < payload ? len - off : payload;
        ipcp_mqchan_hdr_encode(&h, ep->buf);
        if (clen > 0) memcpy(ep->buf + IPCP_MQCHAN_HDR_SIZE, (const uint8_t *)data + off, clen);
        for (;;) {
            struct timespec ts = next_wait(&dl);
            if (mq_timedsend(ep->q, (const char *)ep->buf, IPCP_MQCHAN_HDR_SIZE + clen, prio,
                             &ts) == 0)
                break;
            int e = errno;
            if (e == EINTR) continue;
            if (e != ETIMEDOUT) return -e;
            /* the queue stayed full a slice: nobody will make room once every receiver left */
            int gone = ipcp__eptab_gone(&ep->ch->tab, IPCP__EPTAB_CONSUMER);
            if (gone < 0) return gone;
            if (ipcp__deadline_left_ms(&dl) == 0) return -ETIMEDOUT;
        }
        ep->st.chunks++;
    }
    ep->st.messages++;
    return 0;
}

/* Hands the complete message to the caller, or keeps it when it does not fit. */
static ssize_t deliver(struct ipcp_mqchan_ep *ep, void *buf, size_t cap, unsigned *prio,
                       uint32_t *producer)
{
    if (ep->pend.len > cap) {
        ep->pending = 1;
        return -EMSGSIZE;
    }
    if (ep->pend.len > 0) memcpy(buf, ep->pend.data, ep->pend.len);
    if (prio != NULL) *prio = ep->pend.prio;
    if (producer != NULL) *producer = ep->pend.producer;
    ep->pending = 0;
    ep->st.messages++;
    return (ssize_t)ep->pend.len;
}

ssize_t ipcp_mqchan_recv(struct ipcp_mqchan_ep *ep, void *buf, size_t cap, int timeout_ms,
                         unsigned *prio, uint32_t *producer)
{
    if (ep->role != IPCP_MQCHAN_RECEIVER) return -IPCP_E_STATE;
    /* a pending message lives in ep->buf or a lane's buffer: nothing is received before it
     * is taken */
    if (ep->pending) return deliver(ep, buf, cap, prio, producer);
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    /* < 0: every producer was seen closed or dead before the last receive was tried; what
     * they sent before is in the queue, so once it is empty nothing more can come */
    int gone = 0;
    for (;;) {
        struct timespec ts = gone < 0 ? ipcp__realtime_after_ms(0) : next_wait(&dl);
        unsigned p = 0;
        ssize_t n = mq_timedreceive(ep->q, (char *)ep->buf, (size_t)ep->ch->info.msgsize, &p, &ts);
        if (n < 0) {
            int e = errno;
            if (e == EINTR) continue;
            if (e != ETIMEDOUT) return -e;
            if (gone < 0) return gone; /* drained */
            /* the queue stayed empty a slice: the producers first, then the queue once more */
            gone = ipcp__eptab_gone(&ep->ch->tab, IPCP__EPTAB_PRODUCER);
            if (gone == 0 && ipcp__deadline_left_ms(&dl) == 0) return -ETIMEDOUT;
            continue;
        }
        ep->st.chunks++;
        int rc = ipcp_mqchan_rx_feed(&ep->rx, ep->buf, (size_t)n, p, &ep->pend);
        ep->st.abandoned = ep->rx.abandoned;
        ep->st.dropped = ep->rx.dropped;
        if (rc < 0) {
            ep->st.refused++;
            return rc;
        }
        if (rc == 1) return deliver(ep, buf, cap, prio, producer);
    }
}

void ipcp_mqchan_stats(const struct ipcp_mqchan_ep *ep, struct ipcp_mqchan_stats *s)
{
    *s = ep->st;
}

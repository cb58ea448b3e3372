/* handoff.h - the shared-memory READY/OK handoff: data in shm slots, control over two POSIX
 * message queues.
 *
 * The sender (P1) writes a message into a slot of a shared-memory area and sends
 * READY(slot, seq, len[, checksum]) on the READY queue; the receiver (P2) receives it, copies the
 * slot out, checks the length (and, when the READY carries one, the XXH3-64 checksum) on its
 * copy, and sends OK(slot, seq) on the OK queue. The checksum is on unless both sides agree to
 * do without (IPCP_HANDOFF_NO_CHECKSUM): it costs a pass over the message on each side, more
 * than the copy from 64 KiB on. P1
 * writes into a slot again only after that slot's OK. With N slots the sender pipelines up to N
 * messages; message seq always uses slot seq % N, so both sides know which slot comes next and a
 * READY naming another slot is refused.
 *
 * Everything the peer controls is untrusted: every field of every message is validated (slot
 * index < nslots, len <= slot size, seq the expected one, the slot in the state the message
 * needs), the slot is read once into the receiver's buffer before it is checked, and nothing is
 * allocated from a peer-declared length.
 *
 * The protocol is in pure state machines (ipcp_handoff_tx_*, ipcp_handoff_rx_*) and a message
 * codec that do no I/O, so a fuzzer or model checker can drive both sides through any
 * interleaving; ipcp_handoff_send/recv are a thin layer over them, the queues and the mapping.
 *
 * One sender and one receiver per handoff object, for its whole life. */
#ifndef IPCPROOF_HANDOFF_H
#define IPCPROOF_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

/* ---- messages (pure) ---------------------------------------------------------------------- */

#define IPCP_HANDOFF_MSG_SIZE  32
#define IPCP_HANDOFF_MSG_MAGIC 0x4f485049u /* "IPHO" in little-endian memory order */
#define IPCP_HANDOFF_MAX_SLOTS 64u
#define IPCP_HANDOFF_MAX_SLOT  (64u << 20) /* largest slot size */

enum ipcp_handoff_type { IPCP_HANDOFF_READY = 1, IPCP_HANDOFF_OK = 2 };

/* Wire format, 32 bytes, host byte order: magic u32, type u8, flags u8, 2 zero bytes, slot u32,
 * len u32, seq u64, sum u64. An OK carries flags 0, len 0 and sum 0; a READY's only flag is
 * IPCP_HANDOFF_F_NOSUM (no checksum: sum is 0). */
#define IPCP_HANDOFF_F_NOSUM 0x01u
struct ipcp_handoff_msg {
    uint8_t type;
    uint8_t flags;
    uint32_t slot;
    uint32_t len;
    uint64_t seq;
    uint64_t sum; /* XXH3-64 of the len bytes in the slot (READY) */
};
void ipcp_handoff_msg_encode(const struct ipcp_handoff_msg *m, uint8_t out[IPCP_HANDOFF_MSG_SIZE]);
/* Shape only (the state machines check the rest): 0, or -EBADMSG for a wrong length, magic,
 * type, non-zero padding, an unknown flag, a READY with F_NOSUM and a sum, or an OK with flags,
 * len or sum set. */
int ipcp_handoff_msg_decode(const void *buf, size_t len, struct ipcp_handoff_msg *m);
/* The checksum READY carries: XXH3-64. */
uint64_t ipcp_handoff_checksum(const void *data, size_t len);

/* ---- sender state machine (pure) ----------------------------------------------------------- */

/* Slot states on the sender's side. FREE -> WRITTEN (data in the slot, READY encoded) ->
 * READY_SENT (READY is in the queue) -> FREE (its OK came back). WRITTEN -> FREE by abort
 * (the READY could not be sent: the receiver never heard of it). */
enum ipcp_handoff_slot_state {
    IPCP_HANDOFF_FREE = 0,
    IPCP_HANDOFF_WRITTEN = 1,
    IPCP_HANDOFF_READY_SENT = 2,
};

struct ipcp_handoff_tx {
    uint32_t nslots;
    uint32_t slot_size;
    int checksum;      /* READYs carry the sum given to tx_written (else F_NOSUM); init: 0 */
    uint64_t next_seq; /* seq of the next message; its slot is next_seq % nslots */
    uint64_t acked;    /* OKs accepted */
    struct {
        uint8_t state;
        uint32_t len;
        uint64_t seq;
    } slot[IPCP_HANDOFF_MAX_SLOTS];
};

/* -EINVAL unless 1 <= nslots <= IPCP_HANDOFF_MAX_SLOTS and 1 <= slot_size <= MAX_SLOT. */
int ipcp_handoff_tx_init(struct ipcp_handoff_tx *tx, uint32_t nslots, size_t slot_size);
/* The slot and seq of the next message: 0, or -EAGAIN when that slot still waits for its OK
 * (receive an OK first), or -IPCP_E_STATE when it is WRITTEN (send or abort it first). */
int ipcp_handoff_tx_next(const struct ipcp_handoff_tx *tx, uint32_t *slot, uint64_t *seq);
/* The caller wrote len bytes with checksum sum into the next slot: FREE -> WRITTEN, out = the
 * READY to send (with the sum when tx->checksum is set, else F_NOSUM and no sum). -IPCP_E_STATE
 * (not the next slot, or not FREE), -EMSGSIZE (len > slot size). */
int ipcp_handoff_tx_written(struct ipcp_handoff_tx *tx, uint32_t slot, size_t len, uint64_t sum,
                            uint8_t out[IPCP_HANDOFF_MSG_SIZE]);
/* READY went into the queue: WRITTEN -> READY_SENT, next_seq++. -IPCP_E_STATE otherwise. */
int ipcp_handoff_tx_sent(struct ipcp_handoff_tx *tx, uint32_t slot);
/* READY could not be sent: WRITTEN -> FREE (the same seq is used again). */
int ipcp_handoff_tx_abort(struct ipcp_handoff_tx *tx, uint32_t slot);
/* An OK arrived. 0 (the slot is FREE again; *slot says which), or -EBADMSG (malformed, not an
 * OK, slot >= nslots), -IPCP_E_STATE (the slot has no READY outstanding: a duplicate or
 * invented OK), -IPCP_E_SEQUENCE (seq is not the one the slot carries). The state is unchanged
 * on error. */
int ipcp_handoff_tx_on_ok(struct ipcp_handoff_tx *tx, const void *msg, size_t len, uint32_t *slot);
/* Messages sent and not yet OK'd. */
uint32_t ipcp_handoff_tx_inflight(const struct ipcp_handoff_tx *tx);
/* Invariants (for tests and fuzzers): 1 when they hold. */
int ipcp_handoff_tx_valid(const struct ipcp_handoff_tx *tx);

/* ---- receiver state machine (pure) --------------------------------------------------------- */

struct ipcp_handoff_rx {
    uint32_t nslots;
    uint32_t slot_size;
    int require_sum;     /* a READY without a checksum is refused (-EBADMSG); init: 0 */
    uint64_t expect_seq; /* seq of the next READY */
    int reading;         /* a READY was accepted and its OK not yet produced */
    struct ipcp_handoff_msg cur;
};

int ipcp_handoff_rx_init(struct ipcp_handoff_rx *rx, uint32_t nslots, size_t slot_size);
/* A READY arrived. 0 (*m = the validated message; state READING), or -EBADMSG (malformed, not a
 * READY, slot >= nslots, slot != seq % nslots, len > slot size, no checksum while require_sum),
 * -IPCP_E_SEQUENCE (seq is not expect_seq), -IPCP_E_STATE (a READY is already being read).
 * Unchanged on error. */
int ipcp_handoff_rx_on_ready(struct ipcp_handoff_rx *rx, const void *msg, size_t len,
                             struct ipcp_handoff_msg *m);
/* Checks the receiver's own copy of the slot against the READY (its length, and its checksum
 * when it carries one): 0, or -IPCP_E_PAYSUM.
 * -IPCP_E_STATE if no READY is being read. */
int ipcp_handoff_rx_verify(const struct ipcp_handoff_rx *rx, const void *copy, size_t len);
/* Done with the slot: out = OK(slot, seq); expect_seq++; READING -> idle. -IPCP_E_STATE if no
 * READY is being read. */
int ipcp_handoff_rx_done(struct ipcp_handoff_rx *rx, uint8_t out[IPCP_HANDOFF_MSG_SIZE]);
int ipcp_handoff_rx_valid(const struct ipcp_handoff_rx *rx);

/* ---- over shared memory and two queues ---------------------------------------------------- */

struct ipcp_handoff;    /* names, the mapping (process-local copy) */
struct ipcp_handoff_ep; /* one side's endpoint */

/* By default the sender checksums every message (XXH3-64 in its READY) and the receiver checks
 * it on its copy and refuses a READY without one: that catches a slot written while the receiver
 * reads it (a sender that broke the protocol, or a third process scribbling). With this flag
 * neither does (READYs say F_NOSUM): the protocol never writes a slot before its OK, and the pass
 * costs more than the copy from 64 KiB on. */
#define IPCP_HANDOFF_NO_CHECKSUM 0x1u

struct ipcp_handoff_cfg {
    const char *stem; /* [A-Za-z0-9_-]{1,32} or NULL: random name suffix */
    uint32_t nslots;  /* 1 .. min(IPCP_HANDOFF_MAX_SLOTS, /proc/sys/fs/mqueue/msg_max) */
    size_t slot_size; /* 1 .. IPCP_HANDOFF_MAX_SLOT */
    unsigned flags;   /* IPCP_HANDOFF_NO_CHECKSUM, or 0 */
};

enum { IPCP_HANDOFF_SENDER = 1, IPCP_HANDOFF_RECEIVER = 2 };

/* Creates the slots "/ipcp.handoff.<pid>.<suffix>" (shm) and the queues "/ipcp.hready.<...>"
 * and "/ipcp.hok.<...>" (mq_maxmsg = nslots, mq_msgsize = 32). In the process that will destroy
 * it, before forking. 0, -EINVAL, -IPCP_E_MQ_MAXMSG (nslots above msg_max),
 * -IPCP_E_MQ_QUEUES, -EEXIST, -ENOMEM, -errno; nothing is left behind on failure. */
int ipcp_handoff_create(const struct ipcp_handoff_cfg *cfg, struct ipcp_handoff **out);
/* Unlinks the three objects (in the creating process only), unmaps, frees. NULL is fine. */
void ipcp_handoff_destroy(struct ipcp_handoff *ho);
/* The shm name; the queues are the same with "handoff" replaced by "hready" and "hok". */
const char *ipcp_handoff_name(const struct ipcp_handoff *ho);

/* Opens the sender or the receiver side (in a forked child or a thread). 0, -EINVAL (role),
 * -EBUSY (that side is already open), -errno. */
int ipcp_handoff_open(struct ipcp_handoff *ho, int role, struct ipcp_handoff_ep **ep);
/* Sender: copies len bytes into the next slot and sends READY; waits (up to timeout_ms, < 0 no
 * limit) for that slot's OK first if needed. 0, -EMSGSIZE (len > slot size), -ETIMEDOUT,
 * -IPCP_E_PEERDEAD (the receiver died), -IPCP_E_STATE (not the sender), an OK refused by
 * ipcp_handoff_tx_on_ok, or -errno. */
int ipcp_handoff_send(struct ipcp_handoff_ep *ep, const void *data, size_t len, int timeout_ms);
/* Sender: waits until every sent message was OK'd. 0 or send's errors. */
int ipcp_handoff_flush(struct ipcp_handoff_ep *ep, int timeout_ms);
/* Receiver: the next message into buf. Its length, or -EMSGSIZE (cap too small: the message
 * stays pending for a call with a bigger buffer), -ETIMEDOUT, -IPCP_E_PEERDEAD (the sender died
 * and nothing is pending), -IPCP_E_PAYSUM (the copy does not match the READY's length or
 * checksum: the slot was overwritten or corrupted; the message is OK'd and skipped), a READY
 * refused by ipcp_handoff_rx_on_ready (discarded), -IPCP_E_STATE (not the receiver), or -errno. */
ssize_t ipcp_handoff_recv(struct ipcp_handoff_ep *ep, void *buf, size_t cap, int timeout_ms);
void ipcp_handoff_close(struct ipcp_handoff_ep *ep);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* mqlock.h - mutual exclusion by one token message in a POSIX message queue, surviving the
 * death of the holder.
 *
 * The queue (O_CREAT|O_EXCL, mode 0600, a unique name) holds exactly one valid token. lock =
 * receive the token (mq_timedreceive with an absolute CLOCK_REALTIME deadline), trylock = a
 * receive that does not wait, unlock = send it back. A small shared-memory record holds the
 * owner word, one 64-bit value changed only by compare-and-swap:
 *
 *   bits 63..48  epoch     generation of the token; a token message carries it
 *   bit  47      released  1: the holder left its critical section (the token is on its way back)
 *   bits 46..25  pid       the last process that took the token (0: nobody yet)
 *   bits 24..0   start     low 25 bits of that process's start time (/proc/<pid>/stat field 22),
 *                          so that a reused pid is not mistaken for the holder
 *
 * Receiving a token is only permission to try: the receiver owns the lock once its CAS of the
 * owner word from (epoch, released, *) to (epoch, held, self) succeeds, with the token's epoch.
 * A waiter whose receive times out reads the word: if it names a holder that is dead (or if it
 * says "released" but has not moved for the recovery timeout while the queue is empty) the
 * waiter re-creates the token by CASing the word to (epoch + 1, held, self): exactly one CAS per
 * epoch can succeed, the winner holds the new token in hand and sends it at its unlock. Tokens
 * of an older epoch that turn up later (a slow process resuming) are discarded on receipt, so
 * there is never more than one valid token, and never zero for longer than the recovery timeout.
 * docs/locks.md gives the argument in full.
 *
 * The decision logic is pure (ipcp_mqlock_on_token, _on_timeout, _on_unlock and the token and
 * word codecs): it does no I/O, so a model checker or fuzzer can drive N clients through every
 * interleaving. The I/O layer below is a thin loop around it.
 *
 * Recovery is per process: the holder's death means the death of its process. A thread that
 * exits while holding is not detected (its process still lives). */
#ifndef IPCPROOF_MQLOCK_H
#define IPCPROOF_MQLOCK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

/* ---- pure protocol pieces (no I/O) ------------------------------------------------------- */

#define IPCP_MQLOCK_TOKEN_SIZE  16
#define IPCP_MQLOCK_TOKEN_MAGIC 0x4b545049u /* "IPTK" in little-endian memory order */
#define IPCP_MQLOCK_PID_BITS    22          /* PID_MAX_LIMIT is 2^22 */
#define IPCP_MQLOCK_START_BITS  25
#define IPCP_MQLOCK_START_MASK  ((1ull << IPCP_MQLOCK_START_BITS) - 1)

/* A token message: 16 bytes, host byte order: magic u32, version u16 (1), epoch u16, sender pid
 * u32 (informational), check u32 (XXH32 of the first 12 bytes). */
struct ipcp_mqlock_token {
    uint16_t epoch;
    uint32_t sender;
};
void ipcp_mqlock_token_encode(uint8_t out[IPCP_MQLOCK_TOKEN_SIZE], uint16_t epoch, uint32_t sender);
/* 0, or -IPCP_E_TOKEN when msg is not a token of this format (length, magic, version, check). */
int ipcp_mqlock_token_decode(const void *msg, size_t len, struct ipcp_mqlock_token *tok);

struct ipcp_mqlock_owner {
    uint16_t epoch;
    uint8_t released; /* 0 or 1 */
    uint32_t pid;     /* < 2^22 */
    uint32_t start;   /* masked with IPCP_MQLOCK_START_MASK by pack */
};
/* pid and start are masked to their field widths. */
uint64_t ipcp_mqlock_word_pack(const struct ipcp_mqlock_owner *o);
void ipcp_mqlock_word_unpack(uint64_t w, struct ipcp_mqlock_owner *o);
/* 1 if w can occur: a held word always names a pid (the only invalid pattern is held + pid 0). */
int ipcp_mqlock_word_valid(uint64_t w);
/* The word a fresh lock starts with: epoch 1, released, nobody. */
uint64_t ipcp_mqlock_word_initial(void);

/* The caller's identity: its pid and its start time (any width; masked when packed). */
struct ipcp_mqlock_self {
    uint32_t pid;
    uint64_t start;
};

enum ipcp_mqlock_action {
    IPCP_MQLOCK_TAKE = 1, /* CAS(word, seen -> *desired); on success the caller holds the lock */
    IPCP_MQLOCK_DROP,     /* the token is stale (older epoch): discard it and keep waiting */
    IPCP_MQLOCK_WAIT,     /* nothing to do: keep waiting */
    IPCP_MQLOCK_RECOVER,  /* probe the queue without waiting; if it yields a token, handle that
                             token with on_token; if it is empty, CAS(word, seen -> *desired): on
                             success the caller holds a re-created token; on failure another
                             party moved first: keep waiting */
};

/* A token `tok` was received and the owner word then read as `seen`. Returns
 *   IPCP_MQLOCK_TAKE   epochs match and the word says released: *desired = (epoch, held, self).
 *                      If the CAS fails, read the word again and call again.
 *   IPCP_MQLOCK_DROP   tok->epoch differs from the word's epoch: a token made obsolete by a
 *                      recovery; discard it.
 *   -IPCP_E_TOKEN      epochs match but the word says held: a second valid token exists (a
 *                      broken invariant); discard it (that restores "one token") and report.
 *   -IPCP_E_CORRUPT    seen is not a valid word. */
int ipcp_mqlock_on_token(const struct ipcp_mqlock_token *tok, uint64_t seen,
                         const struct ipcp_mqlock_self *self, uint64_t *desired);

/* What a waiter remembers across receive timeouts, to notice a released word that stopped
 * moving. Zero it (ipcp_mqlock_watch_reset) when a lock call starts. */
struct ipcp_mqlock_watch {
    uint64_t word;
    uint64_t acq; /* the record's acquisition counter seen with word */
    int64_t since_ns;
    int armed;
};
void ipcp_mqlock_watch_reset(struct ipcp_mqlock_watch *w);

/* Tells whether process pid, started at start (masked with IPCP_MQLOCK_START_MASK), is alive:
 * 1 alive, 0 dead. The I/O layer reads /proc; a model supplies its own. */
typedef int (*ipcp_mqlock_alive_fn)(void *ctx, uint32_t pid, uint32_t start);

/* A receive timed out; the owner word was then read as `seen` and the record's acquisition
 * counter as `acq`, at time now_ns (monotonic). Returns
 *   IPCP_MQLOCK_WAIT     the holder is alive (alive() is asked only for a held word naming
 *                        another process), or a released word has not been still for
 *                        recovery_ns yet;
 *   IPCP_MQLOCK_RECOVER  *desired = (epoch + 1, held, self); *died = 1 when seen names a dead
 *                        holder that had not released (the protected data may be half
 *                        updated), 0 when the word says released (a token lost on its way:
 *                        its sender or receiver died, or stalls, between queue and word);
 *   -IPCP_E_CORRUPT      seen is not a valid word. */
int ipcp_mqlock_on_timeout(struct ipcp_mqlock_watch *w, uint64_t seen, uint64_t acq, int64_t now_ns,
                           int64_t recovery_ns, const struct ipcp_mqlock_self *self,
                           ipcp_mqlock_alive_fn alive, void *alive_ctx, uint64_t *desired,
                           int *died);

/* The holder (which took epoch `epoch`) unlocks: *desired = (epoch, released, self) to CAS from
 * *expected = (epoch, held, self). A failed CAS means the word was changed while we held it (a
 * recovery judged us dead, or the record is corrupt): the caller must not send its token
 * (it is stale) and reports -IPCP_E_TOKEN. */
void ipcp_mqlock_on_unlock(uint16_t epoch, const struct ipcp_mqlock_self *self, uint64_t *expected,
                           uint64_t *desired);

/* ---- POSIX message queue limits ---------------------------------------------------------- */

struct ipcp_mq_limits {
    long msg_max;     /* /proc/sys/fs/mqueue/msg_max (0 if unreadable) */
    long msgsize_max; /* /proc/sys/fs/mqueue/msgsize_max (0 if unreadable) */
    long queues_max;  /* /proc/sys/fs/mqueue/queues_max (0 if unreadable) */
    int privileged;   /* CAP_SYS_RESOURCE is effective: the hard limits apply instead */
};
/* Reads the limits that apply to this process. Always returns 0 (unreadable values are 0). */
int ipcp_mq_limits_read(struct ipcp_mq_limits *l);
/* Pure: 0 when a queue with maxmsg messages of msgsize bytes can be created under l;
 * -IPCP_E_MQ_MAXMSG or -IPCP_E_MQ_MSGSIZE naming the limit that refuses it; -EINVAL for values
 * <= 0. A limit that could not be read (0) is not checked. */
int ipcp_mq_limits_check(const struct ipcp_mq_limits *l, long maxmsg, long msgsize);

/* ---- the lock over real queues and shared memory ----------------------------------------- */

struct ipcp_mqlock;        /* the lock: names, the record mapping (process-local copy) */
struct ipcp_mqlock_handle; /* one user's endpoint: its own queue descriptor */

struct ipcp_mqlock_cfg {
    const char *stem; /* [A-Za-z0-9_-]{1,32} or NULL: random name suffix */
    int recovery_ms;  /* how long a released token may be missing before it is re-created;
                         0: 250. Dead holders are noticed within recovery_ms / 5 (at most 50). */
    unsigned depth;   /* queue capacity (room for stale tokens besides the valid one); 0: 4,
                         2 .. /proc/sys/fs/mqueue/msg_max */
};

/* Creates the queue "/ipcp.mqlock.<pid>.<suffix>" (mq_maxmsg = depth, mq_msgsize = 16) and a
 * shared-memory record of the same name, and puts the first token in the queue. Call it in the
 * process that will destroy the lock, before forking the users. Returns 0, -EINVAL (cfg),
 * -IPCP_E_MQ_MAXMSG (depth above msg_max), -IPCP_E_MQ_QUEUES (queue limit reached), -EEXIST
 * (stem already used), -ENOMEM or another -errno; nothing is left behind on failure. */
int ipcp_mqlock_create(const struct ipcp_mqlock_cfg *cfg, struct ipcp_mqlock **out);
/* Unlinks the queue and the record (only in the creating process; elsewhere it only releases
 * this process's memory), unmaps and frees. Close this process's handles first. NULL is fine. */
void ipcp_mqlock_destroy(struct ipcp_mqlock *l);
/* The name shared by the queue and the record, e.g. "/ipcp.mqlock.123.0123456789abcdef". */
const char *ipcp_mqlock_name(const struct ipcp_mqlock *l);

/* Opens an endpoint in the calling process or thread (after fork; one per thread: a handle is
 * not thread-safe). Returns 0, -IPCP_E_LAYOUT (the queue under the name is not ours), -ENOENT
 * (destroyed) or -errno. */
int ipcp_mqlock_open(struct ipcp_mqlock *l, struct ipcp_mqlock_handle **h);
/* Waits up to timeout_ms (< 0: no limit) for the lock. Returns 0 acquired; 1 acquired, and the
 * previous holder died holding it (the protected data may be inconsistent); -ETIMEDOUT;
 * -IPCP_E_TOKEN a second valid token or a foreign message was found and destroyed (the lock
 * is not held; calling again is fine); -IPCP_E_STATE this handle already holds it or was
 * opened in another process; -IPCP_E_CORRUPT the record holds an impossible word; -errno. */
int ipcp_mqlock_lock(struct ipcp_mqlock_handle *h, int timeout_ms);
/* Like lock without waiting: 0, 1, -EBUSY (held by a live holder), or lock's errors. A dead
 * holder is recovered at once; a lost released token is not (that needs the recovery time). */
int ipcp_mqlock_trylock(struct ipcp_mqlock_handle *h);
/* Returns 0; -IPCP_E_STATE not held; -IPCP_E_TOKEN the record changed while we held it (our
 * token is stale and is not sent), or the lock was released but a second valid token had to be
 * destroyed to make room; -errno from mq_timedsend (the token is lost and will be re-created
 * after the recovery time). */
int ipcp_mqlock_unlock(struct ipcp_mqlock_handle *h);
/* Closes the queue descriptor; does not unlock (a held lock is recovered like a death). */
void ipcp_mqlock_close(struct ipcp_mqlock_handle *h);

struct ipcp_mqlock_stats {
    uint64_t acquisitions; /* successful lock/trylock calls, recoveries included */
    uint64_t recoveries;   /* tokens re-created */
    uint64_t deaths;       /* recoveries from a holder that died holding (lock returned 1) */
    uint64_t stale;        /* stale tokens discarded */
    uint64_t duplicates;   /* second valid tokens discarded (should stay 0) */
    uint64_t foreign;      /* foreign messages discarded (should stay 0) */
    uint16_t epoch;        /* current epoch */
    uint64_t word;         /* the owner word (ipcp_mqlock_word_unpack: who holds it, if anyone) */
};
/* Counters kept in the shared record (untrusted: informational). */
void ipcp_mqlock_stats(const struct ipcp_mqlock *l, struct ipcp_mqlock_stats *s);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* mqlock.c - the mq token lock (see mqlock.h), plus the OS-object plumbing that the handoff and
 * lock modules share: object names, shared-memory and queue creation under the mq limits (process
 * identity and liveness from /proc are proc.c's).
 *
 * The protocol decisions are the pure functions at the top; the I/O layer below only moves
 * tokens between the queue and those functions, with a deadline on every wait. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "atomics.h"
#include "deadline.h"
#include "os.h"
#include "proc.h"
#include "ipcproof/err.h"
#include "ipcproof/mqlock.h"
#include "ipcproof/registry.h"
#include "ipcproof/shm.h"

#define TOKEN_VERSION 1
#define TOKEN_SEED    0x6d716c6bu /* "mqlk" */
#define PID_MASK      ((1u << IPCP_MQLOCK_PID_BITS) - 1)
#define RELEASED_BIT  (1ull << 47)

/* ==== pure protocol pieces ================================================================= */

void ipcp_mqlock_token_encode(uint8_t out[IPCP_MQLOCK_TOKEN_SIZE], uint16_t epoch, uint32_t sender)
{
    uint32_t magic = IPCP_MQLOCK_TOKEN_MAGIC;
    uint16_t version = TOKEN_VERSION;
    memcpy(out, &magic, 4);
    memcpy(out + 4, &version, 2);
    memcpy(out + 6, &epoch, 2);
    memcpy(out + 8, &sender, 4);
    uint32_t check = XXH32(out, 12, TOKEN_SEED);
    memcpy(out + 12, &check, 4);
}

int ipcp_mqlock_token_decode(const void *msg, size_t len, struct ipcp_mqlock_token *tok)
{
    if (len != IPCP_MQLOCK_TOKEN_SIZE) return -IPCP_E_TOKEN;
    const uint8_t *p = msg;
    uint32_t magic, check;
    uint16_t version;
    memcpy(&magic, p, 4);
    memcpy(&version, p + 4, 2);
    memcpy(&check, p + 12, 4);
    if (magic != IPCP_MQLOCK_TOKEN_MAGIC || version != TOKEN_VERSION) return -IPCP_E_TOKEN;
    if (check != XXH32(p, 12, TOKEN_SEED)) return -IPCP_E_TOKEN;
    memcpy(&tok->epoch, p + 6, 2);
    memcpy(&tok->sender, p + 8, 4);
    return 0;
}

uint64_t ipcp_mqlock_word_pack(const struct ipcp_mqlock_owner *o)
{
    return ((uint64_t)o->epoch << 48) | (o->released ? RELEASED_BIT : 0) |
           ((uint64_t)(o->pid & PID_MASK) << IPCP_MQLOCK_START_BITS) |
           ((uint64_t)o->start & IPCP_MQLOCK_START_MASK);
}

void ipcp_mqlock_word_unpack(uint64_t w, struct ipcp_mqlock_owner *o)
{
    o->epoch = (uint16_t)(w >> 48);
    o->released = (w & RELEASED_BIT) != 0;
    o->pid = (uint32_t)(w >> IPCP_MQLOCK_START_BITS) & PID_MASK;
    o->start = (uint32_t)(w & IPCP_MQLOCK_START_MASK);
}

int ipcp_mqlock_word_valid(uint64_t w)
{
    struct ipcp_mqlock_owner o;
    ipcp_mqlock_word_unpack(w, &o);
    return o.released || o.pid != 0;
}

uint64_t ipcp_mqlock_word_initial(void)
{
    struct ipcp_mqlock_owner o = {.epoch = 1, .released = 1, .pid = 0, .start = 0};
    return ipcp_mqlock_word_pack(&o);
}

static uint64_t held_by(uint16_t epoch, const struct ipcp_mqlock_self *self)
{
    struct ipcp_mqlock_owner o = {
        .epoch = epoch, .released = 0, .pid = self->pid, .start = (uint32_t)self->start};
    return ipcp_mqlock_word_pack(&o);
}

int ipcp_mqlock_on_token(const struct ipcp_mqlock_token *tok, uint64_t seen,
                         const struct ipcp_mqlock_self *self, uint64_t *desired)
{
    if (!ipcp_mqlock_word_valid(seen)) return -IPCP_E_CORRUPT;
    struct ipcp_mqlock_owner o;
    ipcp_mqlock_word_unpack(seen, &o);
    if (tok->epoch != o.epoch) return IPCP_MQLOCK_DROP;
    /* The one valid token of this epoch travels only while the word says released: the holder
     * sets released before it sends, and the receiver clears it by its CAS. A token of the
     * current epoch while the word says held is therefore a second one. */
    if (!o.released) return -IPCP_E_TOKEN;
    *desired = held_by(o.epoch, self);
    return IPCP_MQLOCK_TAKE;
}

void ipcp_mqlock_watch_reset(struct ipcp_mqlock_watch *w)
{
    memset(w, 0, sizeof(*w));
}

int ipcp_mqlock_on_timeout(struct ipcp_mqlock_watch *w, uint64_t seen, uint64_t acq, int64_t now_ns,
                           int64_t recovery_ns, const struct ipcp_mqlock_self *self,
                           ipcp_mqlock_alive_fn alive, void *alive_ctx, uint64_t *desired,
                           int *died)
{
    if (!ipcp_mqlock_word_valid(seen)) return -IPCP_E_CORRUPT;
    struct ipcp_mqlock_owner o;
    ipcp_mqlock_word_unpack(seen, &o);
    if (!o.released) {
        w->armed = 0;
#ifdef IPCP_MQLOCK_REVERT_PID_FIX /* only the fuzz target's revert check builds this */
        if (o.pid == (self->pid & PID_MASK)) return IPCP_MQLOCK_WAIT;
#endif
        /* Another thread of this very process holds it: we are alive, so it is. The start
         * time must match too: a process that inherited a dead holder's pid is not the
         * holder, and must recover the lock rather than wait for itself for ever. */
        if (o.pid == (self->pid & PID_MASK) &&
            o.start == (uint32_t)(self->start & IPCP_MQLOCK_START_MASK))
            return IPCP_MQLOCK_WAIT;
        if (o.pid == (self->pid & PID_MASK)) {
            *desired = held_by((uint16_t)(o.epoch + 1), self);
            *died = 1;
            return IPCP_MQLOCK_RECOVER;
        }
        if (alive(alive_ctx, o.pid, o.start)) return IPCP_MQLOCK_WAIT;
        *desired = held_by((uint16_t)(o.epoch + 1), self);
        *died = 1;
        return IPCP_MQLOCK_RECOVER;
    }
    /* Released: the token is in the queue (we would have received it), or between a sender and
     * the queue, or between the queue and a receiver's CAS. Re-create it only once the word and
     * the acquisition counter have stood still for the recovery time. That is safe even if the
     * token was only delayed: whoever holds it fails its CAS (or sends a stale token). */
    if (!w->armed || w->word != seen || w->acq != acq) {
        w->armed = 1;
        w->word = seen;
        w->acq = acq;
        w->since_ns = now_ns;
        return IPCP_MQLOCK_WAIT;
    }
    if (now_ns - w->since_ns < recovery_ns) return IPCP_MQLOCK_WAIT;
    *desired = held_by((uint16_t)(o.epoch + 1), self);
    *died = 0;
    return IPCP_MQLOCK_RECOVER;
}

void ipcp_mqlock_on_unlock(uint16_t epoch, const struct ipcp_mqlock_self *self, uint64_t *expected,
                           uint64_t *desired)
{
    struct ipcp_mqlock_owner o = {
        .epoch = epoch, .released = 1, .pid = self->pid, .start = (uint32_t)self->start};
    *expected = held_by(epoch, self);
    *desired = ipcp_mqlock_word_pack(&o);
}

/* ==== the lock ============================================================================== */

#define MQLOCK_MAGIC    0x4b4c514du /* "MQLK" */
#define MQLOCK_VERSION  1
#define DEFAULT_RECOVER 250
#define DEFAULT_DEPTH   4
#define MAX_DEPTH       64
#define CAS_RETRIES     64

struct mqlock_rec {
    uint32_t magic;
    uint32_t version;
    uint32_t depth;
    uint32_t reserved;
    uint8_t pad0[IPCP_CACHELINE - 16];
    _Atomic uint64_t word;         /* the owner word (mqlock.h) */
    _Atomic uint64_t acquisitions; /* bumped after every successful take or recovery */
    uint8_t pad1[IPCP_CACHELINE - 16];
    _Atomic uint64_t recoveries;
    _Atomic uint64_t deaths;
    _Atomic uint64_t stale;
    _Atomic uint64_t duplicates;
    _Atomic uint64_t foreign;
};

struct ipcp_mqlock {
    char name[96];
    struct mqlock_rec *rec;
    long depth;
    int recovery_ms;
    int check_ms;
    pid_t creator;
    uint64_t pidns; /* the creator's PID namespace (proc.h): every opener must share it */
};

struct ipcp_mqlock_handle {
    struct ipcp_mqlock *l;
    mqd_t q;
    struct ipcp_mqlock_self self;
    uint32_t forkgen; /* ipcp__os_forkgen() at open: another value = inherited over fork */
    int held;
    uint16_t epoch; /* epoch of the token we hold */
    /* How long the word and the acquisition counter have stood still, as this handle saw them:
     * kept across lock() calls, so that a lost token is re-created after recovery_ms of
     * standstill even when every call times out sooner (a fresh watch per call never got
     * there, and callers retrying with short timeouts waited for ever). */
    struct ipcp_mqlock_watch watch;
};

/* Internal results besides -errno. */
enum { R_NONE = 0, R_ACQ = 1, R_ACQ_DIED = 2 };

static const struct timespec ZERO_TS = {0, 0}; /* an expired deadline: do not wait */

int ipcp_mqlock_create(const struct ipcp_mqlock_cfg *cfg, struct ipcp_mqlock **out)
{
    *out = NULL;
    int recovery_ms = cfg && cfg->recovery_ms ? cfg->recovery_ms : DEFAULT_RECOVER;
    unsigned depth = cfg && cfg->depth ? cfg->depth : DEFAULT_DEPTH;
    if (recovery_ms < 0 || depth > MAX_DEPTH) return -EINVAL;
    struct ipcp_mqlock *l = calloc(1, sizeof(*l));
    if (l == NULL) return -ENOMEM;
    l->depth = (long)depth;
    l->recovery_ms = recovery_ms;
    l->check_ms = recovery_ms / 5 < 1 ? 1 : recovery_ms / 5 > 50 ? 50 : recovery_ms / 5;
    l->creator = getpid();
    l->pidns = ipcp__proc_ns();
    int rc = ipcp__os_objname(l->name, sizeof(l->name), "mqlock", cfg ? cfg->stem : NULL);
    if (rc < 0) goto fail_free;
    void *map;
    rc = ipcp__os_shm_create(l->name, sizeof(struct mqlock_rec), &map);
    if (rc < 0) goto fail_free;
    l->rec = map;
    l->rec->magic = MQLOCK_MAGIC;
    l->rec->version = MQLOCK_VERSION;
    l->rec->depth = depth;
    /* No user exists yet (they are forked or started after create returns). */
    ipcp_store_release64(&l->rec->word, ipcp_mqlock_word_initial());

    int q = ipcp__os_mq_create(l->name, (long)depth, IPCP_MQLOCK_TOKEN_SIZE);
    if (q < 0) {
        rc = q;
        goto fail_shm;
    }
    uint8_t tok[IPCP_MQLOCK_TOKEN_SIZE];
    ipcp_mqlock_token_encode(tok, 1, (uint32_t)l->creator);
    ipcp_tsan_release(l->rec); /* the record's initial contents travel with the first token */
    if (mq_timedsend((mqd_t)q, (const char *)tok, sizeof(tok), 0, &ZERO_TS) < 0) {
        rc = -errno;
        mq_close((mqd_t)q);
        mq_unlink(l->name);
        (void)ipcp_registry_remove("mq", l->name);
        goto fail_shm;
    }
    mq_close((mqd_t)q);
    *out = l;
    return 0;

fail_shm:
    munmap(l->rec, sizeof(struct mqlock_rec));
    shm_unlink(l->name);
    (void)ipcp_registry_remove("shm", l->name);
fail_free:
    free(l);
    return rc;
}

void ipcp_mqlock_destroy(struct ipcp_mqlock *l)
{
    if (l == NULL) return;
    if (getpid() == l->creator) {
        mq_unlink(l->name);
        shm_unlink(l->name);
        (void)ipcp_registry_remove("mq", l->name);
        (void)ipcp_registry_remove("shm", l->name);
    }
    munmap(l->rec, sizeof(struct mqlock_rec));
    free(l);
}

const char *ipcp_mqlock_name(const struct ipcp_mqlock *l)
{
    return l->name;
}

int ipcp_mqlock_open(struct ipcp_mqlock *l, struct ipcp_mqlock_handle **out)
{
    *out = NULL;
    /* Recovery takes the lock from a holder whose pid is dead: only in the creator's PID
     * namespace does that pid name the holder. */
    int rc = ipcp__proc_ns_check(l->pidns);
    if (rc < 0) return rc;
    struct ipcp_mqlock_handle *h = calloc(1, sizeof(*h));
    if (h == NULL) return -ENOMEM;
    h->l = l;
    h->forkgen = ipcp__os_forkgen();
    ipcp_mqlock_watch_reset(&h->watch);
    rc = ipcp__proc_self(&h->self.pid, &h->self.start);
    if (rc < 0) {
        free(h);
        return rc;
    }
    rc = ipcp__os_mq_open(l->name, l->depth, IPCP_MQLOCK_TOKEN_SIZE);
    if (rc < 0) {
        free(h);
        return rc;
    }
    h->q = (mqd_t)rc;
    *out = h;
    return 0;
}

void ipcp_mqlock_close(struct ipcp_mqlock_handle *h)
{
    if (h == NULL) return;
    mq_close(h->q);
    free(h);
}

/* A message came out of the queue: R_ACQ, R_NONE (stale token dropped) or -error. */
static int take_token(struct ipcp_mqlock_handle *h, const uint8_t *msg, ssize_t len)
{
    struct mqlock_rec *rec = h->l->rec;
    struct ipcp_mqlock_token tok;
    if (ipcp_mqlock_token_decode(msg, (size_t)len, &tok) < 0) {
        ipcp_fetch_add_relaxed64(&rec->foreign, 1);
        return -IPCP_E_TOKEN;
    }
    /* The kernel ordered the sender's mq_send before this receive; TSan cannot see that. */
    ipcp_tsan_acquire(rec);
    /* acquire: pairs with the release half of the unlocker's CAS to released. */
    uint64_t seen = ipcp_load_acquire64(&rec->word);
    for (int i = 0; i < CAS_RETRIES; i++) {
        uint64_t desired;
        int act = ipcp_mqlock_on_token(&tok, seen, &h->self, &desired);
        if (act == -IPCP_E_TOKEN) ipcp_fetch_add_relaxed64(&rec->duplicates, 1);
        if (act < 0) return act;
        if (act == IPCP_MQLOCK_DROP) {
            ipcp_fetch_add_relaxed64(&rec->stale, 1);
            return R_NONE;
        }
        /* acq_rel: on success we see the previous holder's critical section (acquire); on
         * failure `seen` is reloaded (a recovery changed the epoch) and we decide again. */
        if (ipcp_cas_acq_rel64(&rec->word, &seen, desired)) {
            ipcp_fetch_add_relaxed64(&rec->acquisitions, 1);
            h->held = 1;
            h->epoch = tok.epoch;
            return R_ACQ;
        }
    }
    return -IPCP_E_CORRUPT; /* the word keeps changing under an epoch that matches: not us */
}

/* Drains the queue without waiting; if it is empty, CASes seen -> desired (a re-created
 * token). R_ACQ (a real token turned up and was taken), R_ACQ_DIED / R_ACQ (recovered),
 * R_NONE (someone else moved first), or -error. */
static int recover(struct ipcp_mqlock_handle *h, uint64_t seen, uint64_t desired, int died)
{
    struct mqlock_rec *rec = h->l->rec;
    uint8_t msg[IPCP_MQLOCK_TOKEN_SIZE];
    int empty = 0;
    for (long i = 0; i <= h->l->depth && !empty; i++) {
        ssize_t n = mq_timedreceive(h->q, (char *)msg, sizeof(msg), NULL, &ZERO_TS);
        if (n >= 0) {
            int r = take_token(h, msg, n);
            if (r != R_NONE) return r;
        } else if (errno == ETIMEDOUT || errno == EAGAIN) {
            empty = 1;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
    if (!empty) return R_NONE; /* tokens keep arriving: somebody is sending, not lost */
    /* The CAS on the whole word is the "exactly once": every recoverer of this epoch compares
     * against the same value and only the first succeeds. acq_rel: we see what the dead holder
     * wrote before it died (as far as it reached memory) and publish our claim. */
    if (!ipcp_cas_acq_rel64(&rec->word, &seen, desired)) return R_NONE;
    struct ipcp_mqlock_owner o;
    ipcp_mqlock_word_unpack(desired, &o);
    ipcp_fetch_add_relaxed64(&rec->acquisitions, 1);
    ipcp_fetch_add_relaxed64(&rec->recoveries, 1);
    if (died) ipcp_fetch_add_relaxed64(&rec->deaths, 1);
    h->held = 1;
    h->epoch = o.epoch;
    return died ? R_ACQ_DIED : R_ACQ;
}

static int proc_alive(void *ctx, uint32_t pid, uint32_t start)
{
    (void)ctx;
    return ipcp__proc_alive(pid, start, IPCP_MQLOCK_START_MASK);
}

/* A receive timed out: look at the word and recover if the protocol says so. */
static int after_timeout(struct ipcp_mqlock_handle *h, struct ipcp_mqlock_watch *w,
                         int64_t recovery_ns)
{
    struct mqlock_rec *rec = h->l->rec;
    /* acquire: a recoverer must see everything the word's last writer published. */
    uint64_t seen = ipcp_load_acquire64(&rec->word);
    uint64_t acq = ipcp_load_relaxed64(&rec->acquisitions);
    uint64_t desired;
    int died = 0;
    int act = ipcp_mqlock_on_timeout(w, seen, acq, ipcp__now_ns(), recovery_ns, &h->self,
                                     proc_alive, NULL, &desired, &died);
    if (act < 0) return act;
    if (act != IPCP_MQLOCK_RECOVER) return R_NONE;
    int r = recover(h, seen, desired, died);
    if (r == R_NONE) ipcp_mqlock_watch_reset(w);
    return r;
}

static int check_handle(const struct ipcp_mqlock_handle *h)
{
    if (h->held) return -IPCP_E_STATE;
    if (ipcp__os_forkgen() != h->forkgen) return -IPCP_E_STATE; /* inherited over fork */
    return 0;
}

static int result(int r)
{
    return r == R_ACQ_DIED ? 1 : 0;
}

int ipcp_mqlock_lock(struct ipcp_mqlock_handle *h, int timeout_ms)
{
    int rc = check_handle(h);
    if (rc < 0) return rc;
    struct ipcp_deadline dl;
    ipcp__deadline_init(&dl, timeout_ms);
    int64_t recovery_ns = (int64_t)h->l->recovery_ms * 1000000;
    uint8_t msg[IPCP_MQLOCK_TOKEN_SIZE];
    for (;;) {
        int left = ipcp__deadline_left_ms(&dl);
        int slice = h->l->check_ms;
        if (left >= 0 && left < slice) slice = left;
        /* Absolute CLOCK_REALTIME, normalised: mq_timedreceive knows no other clock. Short
         * slices bound what a realtime jump can do to one wait. */
        struct timespec ts = ipcp__realtime_after_ms(slice);
        ssize_t n = mq_timedreceive(h->q, (char *)msg, sizeof(msg), NULL, &ts);
        int r = R_NONE;
        if (n >= 0) {
            r = take_token(h, msg, n);
        } else if (errno == ETIMEDOUT) {
            r = after_timeout(h, &h->watch, recovery_ns);
        } else if (errno != EINTR) {
            return -errno;
        }
        if (r < 0) return r;
        if (r != R_NONE) return result(r);
        if (ipcp__deadline_left_ms(&dl) == 0) return -ETIMEDOUT;
    }
}

int ipcp_mqlock_trylock(struct ipcp_mqlock_handle *h)
{
    int rc = check_handle(h);
    if (rc < 0) return rc;
    uint8_t msg[IPCP_MQLOCK_TOKEN_SIZE];
    for (long i = 0; i <= h->l->depth; i++) {
        ssize_t n = mq_timedreceive(h->q, (char *)msg, sizeof(msg), NULL, &ZERO_TS);
        if (n >= 0) {
            int r = take_token(h, msg, n);
            if (r < 0) return r;
            if (r != R_NONE) return result(r);
            continue; /* a stale token: look again */
        }
        if (errno == EINTR) continue;
        if (errno != ETIMEDOUT && errno != EAGAIN) return -errno;
        /* Empty: only a dead holder is recovered at once (recovery_ns = never for released). */
        struct ipcp_mqlock_watch w;
        ipcp_mqlock_watch_reset(&w);
        int r = after_timeout(h, &w, INT64_MAX);
        if (r < 0) return r;
        return r == R_NONE ? -EBUSY : result(r);
    }
    return -EBUSY;
}

int ipcp_mqlock_unlock(struct ipcp_mqlock_handle *h)
{
    if (!h->held || ipcp__os_forkgen() != h->forkgen) return -IPCP_E_STATE;
    struct mqlock_rec *rec = h->l->rec;
    h->held = 0;
    uint64_t expected, desired;
    ipcp_mqlock_on_unlock(h->epoch, &h->self, &expected, &desired);
    /* release: our critical section happens before whoever CASes the word next. */
    if (!ipcp_cas_acq_rel64(&rec->word, &expected, desired)) return -IPCP_E_TOKEN;
    uint8_t tok[IPCP_MQLOCK_TOKEN_SIZE], msg[IPCP_MQLOCK_TOKEN_SIZE];
    ipcp_mqlock_token_encode(tok, h->epoch, h->self.pid);
    /* The kernel orders this send before the next receive; make it visible to TSan. */
    ipcp_tsan_release(rec);
    int result_rc = 0;
    for (long i = 0; i <= h->l->depth + 1; i++) {
        if (mq_timedsend(h->q, (const char *)tok, sizeof(tok), 0, &ZERO_TS) == 0) return result_rc;
        if (errno == EINTR) continue;
        if (errno != ETIMEDOUT && errno != EAGAIN) return -errno;
        /* Full: only stale tokens, duplicates or foreign messages can fill it. Drop one. */
        ssize_t n = mq_timedreceive(h->q, (char *)msg, sizeof(msg), NULL, &ZERO_TS);
        if (n < 0) {
            if (errno == ETIMEDOUT || errno == EAGAIN || errno == EINTR) continue;
            return -errno;
        }
        struct ipcp_mqlock_token t;
        if (ipcp_mqlock_token_decode(msg, (size_t)n, &t) < 0) {
            ipcp_fetch_add_relaxed64(&rec->foreign, 1);
        } else if (t.epoch == h->epoch) {
            ipcp_fetch_add_relaxed64(&rec->duplicates, 1);
            result_rc = -IPCP_E_TOKEN;
        } else {
            ipcp_fetch_add_relaxed64(&rec->stale, 1);
        }
    }
    return -IPCP_E_TOKEN; /* the queue keeps filling with messages that are not ours */
}

void ipcp_mqlock_stats(const struct ipcp_mqlock *l, struct ipcp_mqlock_stats *s)
{
    const struct mqlock_rec *rec = l->rec;
    s->acquisitions = ipcp_load_relaxed64(&rec->acquisitions);
    s->recoveries = ipcp_load_relaxed64(&rec->recoveries);
    s->deaths = ipcp_load_relaxed64(&rec->deaths);
    s->stale = ipcp_load_relaxed64(&rec->stale);
    s->duplicates = ipcp_load_relaxed64(&rec->duplicates);
    s->foreign = ipcp_load_relaxed64(&rec->foreign);
    s->word = ipcp_load_relaxed64(&rec->word);
    struct ipcp_mqlock_owner o;
    ipcp_mqlock_word_unpack(s->word, &o);
    s->epoch = o.epoch;
}

/* ring_setup.c - formatting a region, attaching a side to it (checking everything the header
 * says once), the shm/memfd/System V backends, close, and the handle's invariants. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "ring_impl.h"

static int cfg_capacity(const struct ipcp_ring_cfg *cfg, size_t *cap)
{
    size_t c = cfg != NULL && cfg->capacity != 0 ? cfg->capacity : IPCP_RING_DEFAULT_CAP;
    if (c < IPCP_RING_MIN_CAP || c > IPCP_RING_MAX_CAP || (c & (c - 1)) != 0) return -EINVAL;
    *cap = c;
    return 0;
}

static int cfg_max_msg(const struct ipcp_ring_cfg *cfg, size_t *max)
{
    size_t m = cfg != NULL && cfg->max_msg != 0 ? cfg->max_msg : IPCP_RING_DEFAULT_MAXMSG;
    if (m > IPCP_RING_MAX_MSG_LIMIT) return -EINVAL;
    *max = m;
    return 0;
}

size_t ipcp_ring_mem_size(size_t capacity)
{
    if (capacity < IPCP_RING_MIN_CAP || capacity > IPCP_RING_MAX_CAP ||
        (capacity & (capacity - 1)) != 0)
        return 0;
    return IPCP_RING_HDR_SIZE + capacity;
}

int ipcp_ring_format(void *mem, size_t size, const struct ipcp_ring_cfg *cfg)
{
    size_t cap, max;
    int rc;
    if ((rc = cfg_capacity(cfg, &cap)) < 0 || (rc = cfg_max_msg(cfg, &max)) < 0) return rc;
    if (mem == NULL || ((uintptr_t)mem & (IPCP_CACHELINE - 1)) != 0 ||
        size < IPCP_RING_HDR_SIZE + cap)
        return -EINVAL;
    struct ring_shared *s = mem;
    memset(s, 0, sizeof(*s));
    s->magic = IPCP_RING_MAGIC;
    s->version = IPCP_RING_VERSION;
    s->hdr_size = IPCP_RING_HDR_SIZE;
    s->rec_hdr = IPCP_RING_REC_HDR;
    s->capacity = (uint32_t)cap;
    s->max_msg = (uint32_t)max;
    s->pidns = ipcp__proc_ns();
    return 0;
}

static void ring_reset(struct ipcp_ring *r)
{
    memset(r, 0, sizeof(*r));
    r->shm.fd = -1;
    r->shm.shmid = -1;
    r->peer_fd = -1;
}

/* Validates the region and opens side `role` over it. On failure the handle holds nothing
 * (the caller releases r->shm). */
static int ring_open(struct ipcp_ring *r, void *mem, size_t size, int role,
                     const struct ipcp_ring_cfg *cfg)
{
    if (role != IPCP_RING_NONE && role != IPCP_RING_PRODUCER && role != IPCP_RING_CONSUMER)
        return -EINVAL;
    if (mem == NULL || ((uintptr_t)mem & (IPCP_CACHELINE - 1)) != 0 ||
        size < IPCP_RING_HDR_SIZE + IPCP_RING_MIN_CAP)
        return -EINVAL;
    size_t own_max;
    int rc = cfg_max_msg(cfg, &own_max);
    if (rc < 0) return rc;
    size_t want_cap = cfg != NULL ? cfg->capacity : 0;

    struct ring_shared *s = mem;
    uint32_t f[6]; /* magic, version, hdr_size, rec_hdr, capacity, max_msg: read once */
    memcpy(f, s, sizeof(f));
    ipcp_compiler_barrier();
    if (f[0] != IPCP_RING_MAGIC) return -IPCP_E_BADMAGIC;
    if (f[1] != IPCP_RING_VERSION) return -IPCP_E_BADVERSION;
    uint32_t cap = f[4], hmax = f[5];
    if (f[2] != IPCP_RING_HDR_SIZE || f[3] != IPCP_RING_REC_HDR || cap < IPCP_RING_MIN_CAP ||
        cap > IPCP_RING_MAX_CAP || (cap & (cap - 1)) != 0 || size - IPCP_RING_HDR_SIZE < cap ||
        (want_cap != 0 && want_cap != cap) || hmax == 0 || hmax > own_max)
        return -IPCP_E_LAYOUT;
    /* Acquire: a producer that attached earlier may have published records already. */
    uint32_t t = ipcp_load_acquire32(&s->tail), h = ipcp_load_acquire32(&s->head);
    if (((t | h) & (IPCP_RING_ALIGN - 1)) != 0 || t - h > cap) return -IPCP_E_CORRUPT;
    /* A side judges its peer's liveness by the pid the peer records: only within one PID
     * namespace. An observer (IPCP_RING_NONE) judges nothing. */
    uint64_t ns;
    memcpy(&ns, &s->pidns, sizeof(ns)); /* written once at format, read once */
    if (role != IPCP_RING_NONE && (rc = ipcp__proc_ns_check(ns)) < 0) return rc;

    r->role = role;
    r->base = mem;
    r->data = (uint8_t *)mem + IPCP_RING_HDR_SIZE;
    r->size = size;
    r->cap = cap;
    r->mask = cap - 1;
    r->max_msg = hmax;
    r->spin = cfg != NULL && cfg->spin != 0 ? cfg->spin : IPCP_RING_DEFAULT_SPIN;
    if (role == IPCP_RING_PRODUCER) {
        r->p.tail = t;
        r->p.head_seen = h;
        size_t ch = cfg != NULL && cfg->chunk != 0 ? cfg->chunk : cap / 4 - IPCP_RING_REC_HDR;
        if (ch < 16) ch = 16;
        if (ch > cap - IPCP_RING_REC_HDR) ch = cap - IPCP_RING_REC_HDR;
        r->p.chunk = ch;
    } else if (role == IPCP_RING_CONSUMER) {
        r->c.head = h;
        r->c.tail_seen = h;
        if ((rc = ipcp_reasm_init(&r->c.reasm, hmax)) < 0) return rc;
    }
    if (role != IPCP_RING_NONE) {
        int prod = role == IPCP_RING_PRODUCER;
        uint32_t bit = prod ? ST_PROD_ATTACHED : ST_CONS_ATTACHED;
        /* This side will issue membarrier before it sleeps (ring_wait.c) */
        uint32_t asym = ipcp__ring_membarrier_ready() ? (prod ? ST_PROD_ASYM : ST_CONS_ASYM) : 0;
        uint32_t st = ipcp_load_relaxed32(&s->state);
        do {
            if (st & bit) {
                ipcp_reasm_fini(&r->c.reasm);
                return -EBUSY;
            }
        } while (!ipcp_cas32(&s->state, &st, st | bit | asym)); /* acq_rel: one side per role */
        /* Release: the pid is complete before the peer reads it (relaxed there, once). */
        ipcp_store_release32(role == IPCP_RING_PRODUCER ? &s->prod_pid : &s->cons_pid,
                             (uint32_t)getpid());
    }
    return 0;
}

int ipcp_ring_attach_mem(struct ipcp_ring *r, void *mem, size_t size, int role,
                         const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ring_open(r, mem, size, role, cfg);
    if (rc < 0) ring_reset(r);
    return rc;
}

int ipcp_ring_init_mem(struct ipcp_ring *r, void *mem, size_t size, int role,
                       const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ipcp_ring_format(mem, size, cfg);
    if (rc < 0) return rc;
    return ipcp_ring_attach_mem(r, mem, size, role, cfg);
}

/* Both sides attached: the name has done its job. */
static void unlink_when_paired(struct ipcp_ring *r)
{
    uint32_t st = ipcp_load_acquire32(&sh(r)->state);
    if ((st & (ST_PROD_ATTACHED | ST_CONS_ATTACHED)) == (ST_PROD_ATTACHED | ST_CONS_ATTACHED))
        ipcp_shm_unlink(&r->shm);
}

static int ring_finish_open(struct ipcp_ring *r, int rc, int role, const struct ipcp_ring_cfg *cfg,
                            int fmt)
{
    if (rc == 0 && fmt) rc = ipcp_ring_format(r->shm.addr, r->shm.size, cfg);
    if (rc == 0) rc = ring_open(r, r->shm.addr, r->shm.size, role, cfg);
    if (rc < 0) {
        ipcp_shm_close(&r->shm);
        ring_reset(r);
        return rc;
    }
    r->own_shm = 1;
    return 0;
}

int ipcp_ring_create(struct ipcp_ring *r, const char *stem, int role,
                     const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    size_t cap;
    int rc = cfg_capacity(cfg, &cap);
    if (rc < 0) return rc;
    rc = ipcp_shm_create(&r->shm, "ring", stem, IPCP_RING_HDR_SIZE + cap);
    return ring_finish_open(r, rc, role, cfg, 1);
}

int ipcp_ring_attach(struct ipcp_ring *r, const char *name, int role,
                     const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ipcp_shm_attach(&r->shm, name, IPCP_RING_HDR_SIZE + IPCP_RING_MIN_CAP,
                             IPCP_RING_HDR_SIZE + IPCP_RING_MAX_CAP);
    rc = ring_finish_open(r, rc, role, cfg, 0);
    if (rc == 0) unlink_when_paired(r);
    return rc;
}

int ipcp_ring_create_memfd(struct ipcp_ring *r, int role, const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    size_t cap;
    int rc = cfg_capacity(cfg, &cap);
    if (rc < 0) return rc;
    rc = ipcp_shm_create_memfd(&r->shm, "ring", IPCP_RING_HDR_SIZE + cap);
    return ring_finish_open(r, rc, role, cfg, 1);
}

int ipcp_ring_attach_fd(struct ipcp_ring *r, int fd, int role, const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ipcp_shm_attach_fd(&r->shm, fd, IPCP_RING_HDR_SIZE + IPCP_RING_MIN_CAP,
                                IPCP_RING_HDR_SIZE + IPCP_RING_MAX_CAP);
    return ring_finish_open(r, rc, role, cfg, 0);
}

int ipcp_ring_create_sysv(struct ipcp_ring *r, key_t key, int role, const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    size_t cap;
    int rc = cfg_capacity(cfg, &cap);
    if (rc < 0) return rc;
    rc = ipcp_shm_create_sysv(&r->shm, key, IPCP_RING_HDR_SIZE + cap);
    return ring_finish_open(r, rc, role, cfg, 1);
}

int ipcp_ring_attach_sysv(struct ipcp_ring *r, int shmid, int role, const struct ipcp_ring_cfg *cfg)
{
    ring_reset(r);
    int rc = ipcp_shm_attach_sysv(&r->shm, shmid, IPCP_RING_HDR_SIZE + IPCP_RING_MIN_CAP,
                                  IPCP_RING_HDR_SIZE + IPCP_RING_MAX_CAP);
    rc = ring_finish_open(r, rc, role, cfg, 0);
    if (rc == 0) unlink_when_paired(r);
    return rc;
}

int ipcp_ring_shmid(const struct ipcp_ring *r)
{
    return r->own_shm && r->shm.backend == IPCP_SHM_SYSV ? r->shm.shmid : -1;
}

int ipcp_ring_nattch(const struct ipcp_ring *r)
{
    return r->own_shm ? ipcp_shm_nattch(&r->shm) : -EINVAL;
}

const char *ipcp_ring_name(const struct ipcp_ring *r)
{
    return r->own_shm ? r->shm.name : "";
}

int ipcp_ring_fd(const struct ipcp_ring *r)
{
    return r->own_shm ? r->shm.fd : -1;
}

void *ipcp_ring_mem(const struct ipcp_ring *r, size_t *size)
{
    if (size != NULL) *size = r->size;
    return r->base;
}

void ipcp_ring_close(struct ipcp_ring *r)
{
    if (r->base != NULL && r->role != IPCP_RING_NONE) {
        struct ring_shared *s = sh(r);
        int prod = r->role == IPCP_RING_PRODUCER;
        /* acq_rel: every record we published (or consumed) is ordered before the close mark,
         * which the peer acquire-loads before its final re-check. */
        ipcp_fetch_or32(&s->state, prod ? ST_PROD_CLOSED : ST_CONS_CLOSED);
        ipcp__ring_wake(prod ? &s->tail : &s->head); /* the peer sleeps on our index */
    }
    if (r->peer_pid != 0 && r->peer_fd >= 0) close(r->peer_fd);
    if (r->role == IPCP_RING_CONSUMER) ipcp_reasm_fini(&r->c.reasm);
    if (r->own_shm) ipcp_shm_close(&r->shm);
    ring_reset(r);
}

int ipcp_ring_valid(const struct ipcp_ring *r)
{
    if (r->role == IPCP_RING_NONE) return 1;
    if (r->role != IPCP_RING_PRODUCER && r->role != IPCP_RING_CONSUMER) return 0;
    if (r->base == NULL || r->data != r->base + IPCP_RING_HDR_SIZE) return 0;
    if (r->cap < IPCP_RING_MIN_CAP || r->cap > IPCP_RING_MAX_CAP || (r->cap & r->mask) != 0 ||
        r->mask != r->cap - 1 || r->size < IPCP_RING_HDR_SIZE + (size_t)r->cap)
        return 0;
    if (r->max_msg == 0 || r->max_msg > IPCP_RING_MAX_MSG_LIMIT || r->spin == 0) return 0;
    const uint32_t am = IPCP_RING_ALIGN - 1;
    if (r->role == IPCP_RING_PRODUCER) {
        if (((r->p.tail | r->p.head_seen) & am) != 0 || r->p.tail - r->p.head_seen > r->cap)
            return 0;
        if (r->p.chunk < 16 || r->p.chunk > r->cap - IPCP_RING_REC_HDR) return 0;
        if (r->p.reserved &&
            (r->p.res_off != (r->p.tail & r->mask) || r->p.res_len > r->cap - IPCP_RING_REC_HDR ||
             r->p.res_off + rec_size((uint32_t)r->p.res_len) > r->cap ||
             rec_size((uint32_t)r->p.res_len) > r->cap - (r->p.tail - r->p.head_seen)))
            return 0;
        return 1;
    }
    if (((r->c.head | r->c.tail_seen) & am) != 0 || r->c.tail_seen - r->c.head > r->cap) return 0;
    if (r->c.mode != MODE_IDLE && r->c.mode != MODE_REASM && r->c.mode != MODE_SKIP) return 0;
    if ((r->c.mode == MODE_REASM) != (r->c.reasm.active != 0)) return 0;
    if (!ipcp_reasm_valid(&r->c.reasm) || r->c.reasm.max_msg != r->max_msg) return 0;
    if (r->c.peeked == 1 && (r->c.peek_rsz == 0 || r->c.peek_rsz > r->c.tail_seen - r->c.head ||
                             r->c.peek_len > r->c.peek_rsz - IPCP_RING_REC_HDR))
        return 0;
    if (r->c.peeked == 2 && !r->c.reasm.done) return 0;
    if (r->c.peeked < 0 || r->c.peeked > 2) return 0;
    return 1;
}

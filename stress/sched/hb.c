/* hb.c - happens-before data-race detection for `--mode sched`; see hb.h.
 *
 * Clocks. C[t] is thread t's vector clock; C[t][t] moves on at each of its releases, so two
 * accesses of t in different epochs are told apart. A synchronisation object's clock L is the
 * join of what its releases gave; an acquire joins L into C[t]. A thread's release fence keeps a
 * copy of its clock (F[t]) that its later relaxed stores give; its relaxed loads and RMWs collect
 * the clocks they read (A[t]), which its next acquire fence takes.
 *
 * Shadow. Every byte a plain access touched has two 32-bit words: the epoch (clock << 6 | thread)
 * of its last write, and of its last read, or (SHARED | i) when reads of several threads since
 * that write are unordered, i indexing a vector clock of reads. A write checks both against the
 * writer's clock, a read checks the write; unordered and from another thread: a race. Shadow
 * pages (4 KiB of memory each) hang in a hash table, and are dropped when the memory is freed.
 *
 * Places. The shadow holds epochs only; each thread keeps a log of its last HB_LOG accesses (the
 * range, read or write, clock, code address and step), where the earlier access of a race is
 * found again: the newest of that thread, of that kind, at that clock, covering the byte. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>
#include <sys/mman.h>

#include "hb.h"

#define PAGE       4096u
#define TID_BITS   6
#define CLOCK_MAX  ((1u << (31 - TID_BITS)) - 1) /* bit 31 marks a shared read */
#define SHARED     0x80000000u
#define BUCKETS    4096u
#define HB_LOG     8192u
#define RVC_MAX    (1u << 20) /* vector clocks of shared reads; past it a read keeps one epoch */
#define SYNC_FIRST 1024u

typedef uint32_t vc_t[HB_MAX_THREADS];

struct spage {
    uintptr_t base;
    struct spage *next;
    uint32_t lo, hi; /* the bytes ever touched: [lo, hi) (what a reuse must clear) */
    uint32_t w[PAGE], r[PAGE];
};

struct sync {
    uintptr_t key;
    uint32_t kind, used;
    uint32_t vc; /* index in sync_vc */
};

struct logent {
    uintptr_t addr;
    uint64_t size, step;
    const void *pc;
    uint32_t clock, write;
};

struct pend {
    uintptr_t addr;
    int gives; /* 0: nothing to give (a relaxed store without a release fence) */
    vc_t vc;
};

static struct {
    int on;
    uint32_t n;
    vc_t C[HB_MAX_THREADS], F[HB_MAX_THREADS], A[HB_MAX_THREADS];
    uint8_t has_f[HB_MAX_THREADS];
    struct pend pend[HB_MAX_THREADS][HB_PENDING]; /* a ring: the oldest at pend0 */
    uint32_t npend[HB_MAX_THREADS], pend0[HB_MAX_THREADS];
    /* synchronisation objects: open addressing, and their clocks */
    struct sync *sync;
    uint32_t *sync_vc;
    uint32_t sync_cap, sync_n;
    /* the shadow */
    struct spage **bucket;
    struct spage *last, *spare;
    /* vector clocks of shared reads, a free list through their first word */
    uint32_t *rvc;
    uint32_t rvc_cap, rvc_n, rvc_free;
    /* the logs */
    struct logent *log[HB_MAX_THREADS];
    uint64_t nlog[HB_MAX_THREADS];
} H;

/* ---- memory of its own: anonymous mappings (never the heap it watches) ----------------------- */

static void *map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap(void *p, size_t len)
{
    if (p != NULL) munmap(p, len);
}

static size_t sync_bytes(uint32_t cap)
{
    return (size_t)cap * sizeof(struct sync);
}

static size_t syncvc_bytes(uint32_t cap)
{
    return (size_t)cap * H.n * sizeof(uint32_t);
}

void hb_end(void)
{
    for (uint32_t b = 0; H.bucket != NULL && b < BUCKETS; b++)
        for (struct spage *p = H.bucket[b], *nx; p != NULL; p = nx) {
            nx = p->next;
            unmap(p, sizeof(*p));
        }
    for (struct spage *p = H.spare, *nx; p != NULL; p = nx) {
        nx = p->next;
        unmap(p, sizeof(*p));
    }
    unmap(H.bucket, BUCKETS * sizeof(*H.bucket));
    unmap(H.sync, sync_bytes(H.sync_cap));
    unmap(H.sync_vc, syncvc_bytes(H.sync_cap));
    unmap(H.rvc, (size_t)H.rvc_cap * H.n * sizeof(uint32_t));
    for (uint32_t t = 0; t < HB_MAX_THREADS; t++)
        unmap(H.log[t], HB_LOG * sizeof(struct logent));
    memset(&H, 0, sizeof(H));
}

int hb_begin(uint32_t n)
{
    hb_end();
    if (n == 0 || n > HB_MAX_THREADS) return -1;
    H.n = n;
    H.sync_cap = SYNC_FIRST;
    H.sync = map(sync_bytes(H.sync_cap));
    H.sync_vc = map(syncvc_bytes(H.sync_cap));
    H.bucket = map(BUCKETS * sizeof(*H.bucket));
    if (H.sync == NULL || H.sync_vc == NULL || H.bucket == NULL) {
        hb_end();
        return -1;
    }
    for (uint32_t t = 0; t < n; t++)
        H.C[t][t] = 1;
    H.on = 1;
    return 0;
}

int hb_on(void)
{
    return H.on;
}

/* ---- vector clocks ------------------------------------------------------------------------ */

static void join(uint32_t *dst, const uint32_t *src)
{
    for (uint32_t u = 0; u < H.n; u++)
        if (src[u] > dst[u]) dst[u] = src[u];
}

/* t's own component moves on after a release */
static void tick(uint32_t t)
{
    if (++H.C[t][t] >= CLOCK_MAX) H.on = 0; /* epochs would not fit: stop rather than lie */
}

static uint32_t hash_key(uintptr_t key, uint32_t kind)
{
    uint64_t x = ((uint64_t)key ^ ((uint64_t)kind << 61)) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(x >> 32);
}

static int sync_grow(void)
{
    uint32_t cap = H.sync_cap * 2;
    struct sync *ns = map(sync_bytes(cap));
    uint32_t *nv = map(syncvc_bytes(cap));
    if (ns == NULL || nv == NULL) {
        unmap(ns, sync_bytes(cap));
        unmap(nv, syncvc_bytes(cap));
        return -1;
    }
    for (uint32_t i = 0; i < H.sync_cap; i++) {
        const struct sync *s = &H.sync[i];
        if (!s->used) continue;
        uint32_t j = hash_key(s->key, s->kind) & (cap - 1);
        while (ns[j].used)
            j = (j + 1) & (cap - 1);
        ns[j] = *s;
    }
    memcpy(nv, H.sync_vc, syncvc_bytes(H.sync_cap));
    unmap(H.sync, sync_bytes(H.sync_cap));
    unmap(H.sync_vc, syncvc_bytes(H.sync_cap));
    H.sync = ns;
    H.sync_vc = nv;
    H.sync_cap = cap;
    return 0;
}

/* The clock of (key, kind); NULL when it has none (and create is 0, or memory ran out). */
static uint32_t *sync_clock(const void *key, int kind, int create)
{
    uintptr_t k = (uintptr_t)key;
    uint32_t j = hash_key(k, (uint32_t)kind) & (H.sync_cap - 1);
    for (; H.sync[j].used; j = (j + 1) & (H.sync_cap - 1))
        if (H.sync[j].key == k && H.sync[j].kind == (uint32_t)kind)
            return &H.sync_vc[(size_t)H.sync[j].vc * H.n];
    if (!create) return NULL;
    if (2 * (H.sync_n + 1) > H.sync_cap) {
        if (sync_grow() < 0) {
            H.on = 0;
            return NULL;
        }
        return sync_clock(key, kind, create);
    }
    H.sync[j] = (struct sync){.key = k, .kind = (uint32_t)kind, .used = 1, .vc = H.sync_n++};
    return &H.sync_vc[(size_t)H.sync[j].vc * H.n]; /* zero: never used before */
}

void hb_acquire(uint32_t t, const void *key, int kind)
{
    if (!H.on) return;
    const uint32_t *l = sync_clock(key, kind, 0);
    if (l != NULL) join(H.C[t], l);
}

void hb_release(uint32_t t, const void *key, int kind)
{
    if (!H.on) return;
    uint32_t *l = sync_clock(key, kind, 1);
    if (l == NULL) return;
    join(l, H.C[t]);
    tick(t);
}

static int acquires(int mo)
{
    return mo == HB_CONSUME || mo == HB_ACQUIRE || mo == HB_ACQ_REL || mo == HB_SEQ_CST;
}

static int releases(int mo)
{
    return mo == HB_RELEASE || mo == HB_ACQ_REL || mo == HB_SEQ_CST;
}

/* the reading half of an atomic operation */
static void take(uint32_t t, const void *a, int mo)
{
    const uint32_t *l = sync_clock(a, HB_ATOMIC, 0);
    if (l != NULL) join(acquires(mo) ? H.C[t] : H.A[t], l);
}

/* the writing half, performed now */
static void give(uint32_t t, const void *a, int mo)
{
    if (!releases(mo) && !H.has_f[t]) return;
    uint32_t *l = sync_clock(a, HB_ATOMIC, 1);
    if (l == NULL) return;
    join(l, releases(mo) ? H.C[t] : H.F[t]);
    if (releases(mo)) tick(t);
}

void hb_load(uint32_t t, const void *a, int mo)
{
    if (H.on) take(t, a, mo);
}

void hb_store(uint32_t t, const void *a, int mo)
{
    if (H.on) give(t, a, mo);
}

void hb_rmw(uint32_t t, const void *a, int mo)
{
    if (!H.on) return;
    take(t, a, mo);
    give(t, a, mo);
}

void hb_fence(uint32_t t, int mo)
{
    if (!H.on) return;
    if (acquires(mo)) join(H.C[t], H.A[t]);
    if (releases(mo)) {
        memcpy(H.F[t], H.C[t], H.n * sizeof(uint32_t));
        H.has_f[t] = 1;
        tick(t);
    }
}

void hb_store_buffered(uint32_t t, const void *a, int mo)
{
    if (!H.on) return;
    if (H.npend[t] == HB_PENDING) hb_store_flushed(t); /* the caller flushes first: never */
    struct pend *p = &H.pend[t][(H.pend0[t] + H.npend[t]++) % HB_PENDING];
    p->addr = (uintptr_t)a;
    p->gives = releases(mo) || H.has_f[t];
    if (p->gives) memcpy(p->vc, releases(mo) ? H.C[t] : H.F[t], H.n * sizeof(uint32_t));
    if (releases(mo)) tick(t);
}

void hb_store_flushed(uint32_t t)
{
    if (!H.on || H.npend[t] == 0) return;
    struct pend *p = &H.pend[t][H.pend0[t]];
    if (p->gives) {
        uint32_t *l = sync_clock((const void *)p->addr, HB_ATOMIC, 1);
        if (l != NULL) join(l, p->vc);
    }
    H.npend[t]--;
    H.pend0[t] = (H.pend0[t] + 1) % HB_PENDING;
}

/* ---- the shadow --------------------------------------------------------------------------- */

static uint32_t bucket_of(uintptr_t base)
{
    return (uint32_t)(((uint64_t)base >> 12) * 0x9e3779b97f4a7c15ull >> 52) & (BUCKETS - 1);
}

static struct spage *shadow(uintptr_t base, int create)
{
    if (H.last != NULL && H.last->base == base) return H.last;
    uint32_t b = bucket_of(base);
    for (struct spage *p = H.bucket[b]; p != NULL; p = p->next)
        if (p->base == base) return H.last = p;
    if (!create) return NULL;
    struct spage *p = H.spare;
    if (p != NULL)
        H.spare = p->next;
    else if ((p = map(sizeof(*p))) == NULL) {
        H.on = 0;
        return NULL;
    }
    p->base = base;
    p->lo = PAGE;
    p->hi = 0;
    p->next = H.bucket[b];
    H.bucket[b] = p;
    return H.last = p;
}

static uint32_t *rvc_at(uint32_t i)
{
    return &H.rvc[(size_t)i * H.n];
}

/* A vector clock for shared reads (zero), or UINT32_MAX when none can be had. */
static uint32_t rvc_new(void)
{
    uint32_t i;
    if (H.rvc_free != 0) {
        i = H.rvc_free - 1;
        H.rvc_free = rvc_at(i)[0];
    } else {
        if (H.rvc_n == H.rvc_cap) {
            uint32_t cap = H.rvc_cap ? H.rvc_cap * 2 : 4096;
            if (cap > RVC_MAX) return UINT32_MAX;
            uint32_t *nv = map((size_t)cap * H.n * sizeof(uint32_t));
            if (nv == NULL) return UINT32_MAX;
            if (H.rvc != NULL) memcpy(nv, H.rvc, (size_t)H.rvc_cap * H.n * sizeof(uint32_t));
            unmap(H.rvc, (size_t)H.rvc_cap * H.n * sizeof(uint32_t));
            H.rvc = nv;
            H.rvc_cap = cap;
        }
        i = H.rvc_n++;
    }
    memset(rvc_at(i), 0, H.n * sizeof(uint32_t));
    return i;
}

static void rvc_drop(uint32_t i)
{
    rvc_at(i)[0] = H.rvc_free;
    H.rvc_free = i + 1;
}

void hb_forget(const void *a, size_t n)
{
    if (H.bucket == NULL || n == 0) return;
    uintptr_t lo = (uintptr_t)a, hi = lo + n < lo ? UINTPTR_MAX : lo + n;
    for (uintptr_t base = lo & ~(uintptr_t)(PAGE - 1); base < hi; base += PAGE) {
        struct spage *p = shadow(base, 0);
        if (p != NULL) {
            uint32_t from = base < lo ? (uint32_t)(lo - base) : 0;
            uint32_t to = hi - base < PAGE ? (uint32_t)(hi - base) : PAGE;
            int whole = from <= p->lo && to >= p->hi;
            if (from < p->lo) from = p->lo; /* nothing was ever recorded outside [lo, hi) */
            if (to > p->hi) to = p->hi;
            for (uint32_t k = from; k < to; k++)
                if (p->r[k] & SHARED) rvc_drop(p->r[k] & ~SHARED);
            if (from < to) {
                memset(&p->w[from], 0, (to - from) * sizeof(uint32_t));
                memset(&p->r[from], 0, (to - from) * sizeof(uint32_t));
            }
            if (whole) { /* nothing left: the page is kept for the next one */
                struct spage **pp = &H.bucket[bucket_of(base)];
                while (*pp != p)
                    pp = &(*pp)->next;
                *pp = p->next;
                p->next = H.spare;
                H.spare = p;
                H.last = NULL;
            }
        }
        if (base + PAGE < base) break; /* the top of the address space */
    }
}

/* ---- accesses ----------------------------------------------------------------------------- */

static uint32_t epoch(uint32_t t)
{
    return H.C[t][t] << TID_BITS | t;
}

static void log_access(uint32_t t, uintptr_t a, size_t n, int write, const void *pc, uint64_t step)
{
    if (H.log[t] == NULL && (H.log[t] = map(HB_LOG * sizeof(struct logent))) == NULL) return;
    H.log[t][H.nlog[t]++ % HB_LOG] = (struct logent){
        .addr = a, .size = n, .step = step, .pc = pc, .clock = H.C[t][t], .write = (uint32_t)write};
}

/* The earlier access of a race: thread u's newest access of that kind at that clock covering x. */
static void find_prev(struct hb_access *p, uint32_t u, int write, uint32_t clock, uintptr_t x)
{
    *p = (struct hb_access){.thread = u, .write = (uint32_t)write, .addr = x, .size = 1};
    uint64_t end = H.nlog[u], from = end > HB_LOG ? end - HB_LOG : 0;
    for (uint64_t i = end; H.log[u] != NULL && i > from; i--) {
        const struct logent *e = &H.log[u][(i - 1) % HB_LOG];
        if (e->write == (uint32_t)write && e->clock == clock && x >= e->addr &&
            x - e->addr < e->size) {
            p->addr = e->addr;
            p->size = e->size;
            p->step = e->step;
            p->pc = e->pc;
            p->known = 1;
            return;
        }
    }
}

/* The earlier access at x of u (epoch word e, a write or not) is not ordered before t's. */
static int unordered(uint32_t t, uint32_t e)
{
    uint32_t u = e & ((1u << TID_BITS) - 1);
    return e != 0 && u != t && (e >> TID_BITS) > H.C[t][u];
}

static void race_at(struct hb_race *r, uintptr_t x, uint32_t u, int write, uint32_t clock)
{
    r->at = x;
    find_prev(&r->prev, u, write, clock, x);
}

/* Checks byte k of page p; returns 1 on a race (filled), else records it (*changed when it was
 * not already there). */
static int one_byte(struct spage *p, uint32_t k, uint32_t t, int write, struct hb_race *r,
                    int *changed)
{
    uint32_t e = epoch(t), w = p->w[k], rd = p->r[k];
    uintptr_t x = p->base + k;
    if (write ? w == e : rd == e) return 0;
    if (unordered(t, w)) {
        race_at(r, x, w & ((1u << TID_BITS) - 1), 1, w >> TID_BITS);
        return 1;
    }
    if (write) {
        if (rd & SHARED) {
            const uint32_t *v = rvc_at(rd & ~SHARED);
            for (uint32_t u = 0; u < H.n; u++)
                if (u != t && v[u] > H.C[t][u]) {
                    race_at(r, x, u, 0, v[u]);
                    return 1;
                }
            rvc_drop(rd & ~SHARED);
        } else if (unordered(t, rd)) {
            race_at(r, x, rd & ((1u << TID_BITS) - 1), 0, rd >> TID_BITS);
            return 1;
        }
        p->w[k] = e;
        p->r[k] = 0;
    } else if (rd & SHARED) {
        rvc_at(rd & ~SHARED)[t] = H.C[t][t];
    } else if (!unordered(t, rd)) {
        p->r[k] = e;
    } else {
        uint32_t i = rvc_new();
        if (i == UINT32_MAX) { /* out of room: keep the newest read only (may miss a race) */
            p->r[k] = e;
        } else {
            uint32_t *v = rvc_at(i);
            v[rd & ((1u << TID_BITS) - 1)] = rd >> TID_BITS;
            v[t] = H.C[t][t];
            p->r[k] = SHARED | i;
        }
    }
    *changed = 1;
    return 0;
}

int hb_access(uint32_t t, const void *a, size_t n, int write, const void *pc, uint64_t step,
              struct hb_race *race)
{
    if (!H.on || n == 0 || t >= H.n) return 0;
    uintptr_t lo = (uintptr_t)a, hi = lo + n < lo ? UINTPTR_MAX : lo + n;
    int changed = 0;
    for (uintptr_t x = lo; x < hi;) {
        uintptr_t base = x & ~(uintptr_t)(PAGE - 1);
        struct spage *p = shadow(base, 1);
        if (p == NULL) return 0;
        uint32_t to = hi - base < PAGE ? (uint32_t)(hi - base) : PAGE;
        if ((uint32_t)(x - base) < p->lo) p->lo = (uint32_t)(x - base);
        if (to > p->hi) p->hi = to;
        for (uint32_t k = (uint32_t)(x - base); k < to; k++)
            if (one_byte(p, k, t, write, race, &changed)) {
                race->cur = (struct hb_access){.thread = t,
                                               .write = (uint32_t)write,
                                               .addr = lo,
                                               .size = n,
                                               .step = step,
                                               .pc = pc,
                                               .known = 1};
                return 1;
            }
        x = base + to;
        if (x == 0) break;
    }
    if (changed) log_access(t, lo, n, write, pc, step);
    return 0;
}

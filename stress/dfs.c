/* dfs.c - `--strategy dfs`: every schedule with at most B preemptions, one after the other
 * (iterative context bounding, as in CHESS: Musuvathi and Qadeer, PLDI 2007).
 *
 * Stateless search: each schedule is a fresh run. A run is fully determined by its prefix, the
 * alternative taken at each of its first branching points (0 after the prefix: the running thread
 * goes on, buffered stores stay buffered). The scheduler runtime reports every branching point
 * it met (how many alternatives, which was taken, whether taking another is a preemption), and
 * the next prefix is the deepest point that still has an untried alternative within the bound,
 * with everything before it kept: a depth-first walk of the tree of schedules, in which a
 * schedule's preemptions are the non-zero choices at preempting points. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

int st_dfs_next(const struct st_sched_report *sr, unsigned bound, uint8_t *prefix, uint32_t *plen)
{
    uint64_t n = sr->nchoices < ST_SCHED_CHOICES ? sr->nchoices : ST_SCHED_CHOICES;
    /* preemptions before each point */
    unsigned used = 0;
    static unsigned before[ST_SCHED_CHOICES];
    for (uint64_t k = 0; k < n; k++) {
        before[k] = used;
        const struct st_sched_choice *ch = &sr->choices[k];
        if (ch->preempt && ch->taken != 0) used++;
    }
    for (uint64_t k = n; k-- > 0;) {
        const struct st_sched_choice *ch = &sr->choices[k];
        if ((unsigned)ch->taken + 1 >= ch->nalt) continue;
        if (ch->preempt && before[k] + 1 > bound) continue;
        for (uint64_t j = 0; j < k; j++)
            prefix[j] = sr->choices[j].taken;
        prefix[k] = (uint8_t)(ch->taken + 1);
        *plen = (uint32_t)(k + 1);
        return 1;
    }
    return 0;
}

/* --shard I/N: a schedule belongs to the shard its first `depth` choices hash to. */
static uint64_t key_hash(const uint8_t *prefix, uint32_t plen, uint32_t depth)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (uint32_t k = 0; k < depth; k++) {
        h ^= k < plen ? prefix[k] : 0;
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

uint32_t st_dfs_shard_depth(uint32_t nshards)
{
    uint32_t d = 2;
    while (nshards > 1 && (1u << (d - 2)) < nshards && d < 24)
        d++;
    return d;
}

int st_dfs_owner(const uint8_t *prefix, uint32_t plen, uint32_t shard, uint32_t nshards)
{
    if (nshards <= 1) return 1;
    uint32_t depth = st_dfs_shard_depth(nshards);
    if (plen < depth) return -1; /* its subtree spans shards: a run tells more */
    return key_hash(prefix, plen, depth) % nshards == shard;
}

int st_dfs_run_owner(const struct st_sched_report *sr, uint32_t shard, uint32_t nshards)
{
    if (nshards <= 1) return 1;
    uint8_t taken[24] = {0}; /* a run with fewer points took 0 at the missing ones */
    uint32_t depth = st_dfs_shard_depth(nshards);
    for (uint32_t k = 0; k < depth && k < sr->nchoices && k < ST_SCHED_CHOICES; k++)
        taken[k] = sr->choices[k].taken;
    return key_hash(taken, depth, depth) % nshards == shard;
}

int st_dfs_skip(const struct st_sched_report *sr, unsigned bound, uint32_t nshards, uint8_t *prefix,
                uint32_t *plen)
{
    uint32_t depth = st_dfs_shard_depth(nshards);
    uint64_t n = sr->nchoices < ST_SCHED_CHOICES ? sr->nchoices : ST_SCHED_CHOICES;
    uint32_t top = depth < *plen ? depth : *plen; /* positions below: the run's points */
    if (top > n) top = (uint32_t)n;
    unsigned used = 0;
    static unsigned before[ST_SCHED_CHOICES];
    for (uint32_t k = 0; k < top; k++) {
        before[k] = used;
        used += sr->choices[k].preempt && prefix[k] != 0;
    }
    for (uint32_t k = top; k-- > 0;) {
        const struct st_sched_choice *ch = &sr->choices[k];
        if ((unsigned)prefix[k] + 1 >= ch->nalt) continue;
        if (ch->preempt && before[k] + 1 > bound) continue;
        prefix[k]++;
        *plen = k + 1;
        return 1;
    }
    return 0;
}

int st_dfs_advance(const struct st_sched_report *sr, unsigned bound, uint32_t shard,
                   uint32_t nshards, uint8_t *prefix, uint32_t *plen)
{
    if (!st_dfs_next(sr, bound, prefix, plen)) return 0;
    while (st_dfs_owner(prefix, *plen, shard, nshards) == 0)
        if (!st_dfs_skip(sr, bound, nshards, prefix, plen)) return 0;
    return 1;
}

unsigned st_dfs_cost(const struct st_sched_report *sr)
{
    uint64_t n = sr->nchoices < ST_SCHED_CHOICES ? sr->nchoices : ST_SCHED_CHOICES;
    unsigned cost = 0;
    for (uint64_t k = 0; k < n; k++)
        cost += sr->choices[k].preempt && sr->choices[k].taken != 0;
    return cost;
}

int st_dfs_path(const uint8_t *prefix, uint32_t plen, char *buf, size_t cap)
{
    size_t len = 0;
    for (uint32_t k = 0; k < plen && len < cap; k++)
        if (prefix[k] != 0)
            len += (size_t)snprintf(buf + len, cap - len, "%s%" PRIu32 ":%u", len ? "," : "", k,
                                    prefix[k]);
    if (len == 0) len = (size_t)snprintf(buf, cap, "none");
    return len < cap ? 0 : -1;
}

int st_dfs_parse(const char *s, uint8_t *prefix, uint32_t *plen, char *err, size_t errcap)
{
    *plen = 0;
    if (strcmp(s, "none") == 0) return 0;
    const char *p = s;
    long long last = -1;
    while (*p) {
        char *end;
        unsigned long long k = strtoull(p, &end, 10);
        if (end == p || *end != ':') {
            snprintf(err, errcap, "'%s' is not POINT:ALTERNATIVE,... (or none)", s);
            return -1;
        }
        p = end + 1;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || v == 0 || v > 255) {
            snprintf(err, errcap, "'%s': an alternative is 1..255 (0 is the default)", s);
            return -1;
        }
        if ((long long)k <= last || k >= ST_SCHED_CHOICES) {
            snprintf(err, errcap, "'%s': points must ascend, below %u", s, ST_SCHED_CHOICES);
            return -1;
        }
        for (unsigned long long j = (unsigned long long)(last + 1); j < k; j++)
            prefix[j] = 0;
        prefix[k] = (uint8_t)v;
        last = (long long)k;
        *plen = (uint32_t)(k + 1);
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* ring_tu.c - helpers shared by the ring's unit tests (ring_tu.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring_tu.h"
#include "testutil.h"

int rtu_own_objects(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ipcp.ring.%ld.", (long)getpid());
    return tu_shm_count(prefix);
}

uint32_t rtu_rd32(const void *base, size_t off)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)base + off, 4);
    return v;
}

void rtu_wr32(void *base, size_t off, uint32_t v)
{
    memcpy((uint8_t *)base + off, &v, 4);
}

void rtu_put_rec(void *base, uint32_t off, uint32_t len, uint32_t flags, uint32_t seq,
                 uint32_t total)
{
    uint32_t h[4] = {len, flags, seq, total};
    memcpy((uint8_t *)base + HDR + off, h, sizeof(h));
}

void rtu_pair_open(struct rtu_pair *pr, const struct ipcp_ring_cfg *cfg, uint32_t start)
{
    size_t cap = cfg->capacity;
    pr->size = ipcp_ring_mem_size(cap);
    assert_true(pr->size > 0);
    pr->mem = aligned_alloc(64, pr->size);
    assert_non_null(pr->mem);
    memset(pr->mem, 0xee, pr->size);
    assert_int_equal(ipcp_ring_format(pr->mem, pr->size, cfg), 0);
    rtu_wr32(pr->mem, IPCP_RING_OFF_TAIL, start);
    rtu_wr32(pr->mem, IPCP_RING_OFF_HEAD, start);
    assert_int_equal(ipcp_ring_attach_mem(&pr->p, pr->mem, pr->size, IPCP_RING_PRODUCER, cfg), 0);
    assert_int_equal(ipcp_ring_attach_mem(&pr->c, pr->mem, pr->size, IPCP_RING_CONSUMER, cfg), 0);
    assert_true(ipcp_ring_valid(&pr->p));
    assert_true(ipcp_ring_valid(&pr->c));
}

void rtu_pair_close(struct rtu_pair *pr)
{
    ipcp_ring_close(&pr->p);
    ipcp_ring_close(&pr->c);
    free(pr->mem);
    pr->mem = NULL;
}

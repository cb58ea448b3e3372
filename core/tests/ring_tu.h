/* ring_tu.h - helpers shared by the shared-memory ring's unit tests (ring_test.c,
 * ring_setup_test.c, ring_block_test.c): a ring in plain memory with both sides open, raw reads
 * and writes of the region as a hostile peer would make them, and a count of this process's
 * ring objects in /dev/shm. Prefix rtu_. */
#ifndef IPCP_RING_TU_H
#define IPCP_RING_TU_H

#include <stddef.h>
#include <stdint.h>

#include "ipcproof/ring.h"

#define HDR  IPCP_RING_HDR_SIZE
#define RHDR IPCP_RING_REC_HDR
#define MARK IPCP_RING_REC_MARK
#define F    IPCP_CHUNK_FIRST
#define L    IPCP_CHUNK_LAST

/* Entries in /dev/shm named for a ring of this process ("ipcp.ring.<pid>."). */
int rtu_own_objects(void);

/* The 32-bit word at byte offset off of the region. */
uint32_t rtu_rd32(const void *base, size_t off);
void rtu_wr32(void *base, size_t off, uint32_t v);

/* A record header written by hand, as a hostile producer would. */
void rtu_put_rec(void *base, uint32_t off, uint32_t len, uint32_t flags, uint32_t seq,
                 uint32_t total);

/* A region in plain memory with both sides open; indices start at `start`. */
struct rtu_pair {
    void *mem;
    size_t size;
    struct ipcp_ring p, c;
};

void rtu_pair_open(struct rtu_pair *pr, const struct ipcp_ring_cfg *cfg, uint32_t start);
void rtu_pair_close(struct rtu_pair *pr);

#endif

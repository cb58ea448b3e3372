/* eptab.h - the endpoint table of a channel whose endpoints are forked processes (or threads):
 * one owner word per producer and per consumer in an anonymous MAP_SHARED mapping made by the
 * creator before it forks, so that every endpoint can tell whether its peers are still there.
 *
 * A word is 0 while its endpoint was never opened, (start << 32) | pid of the process that
 * opened it (ipcp__proc_self; start masked to 32 bits), and IPCP__EPTAB_CLOSED once it closed.
 * An endpoint claims its word with a compare-and-swap from 0, so each is opened once; closed or
 * dead, a word is never free again. A peer is judged by proc.h's rule (pid and start time, in
 * the creator's PID namespace: an opener from another one is refused).
 *
 * The mapping is shared with the code under test: every word is read once and judged as it is
 * (a forged word is at worst a peer that looks alive until the caller's deadline, or gone).
 * The counts and the creator's namespace are kept in the process-local handle that fork copies.
 * Not installed. */
#ifndef IPCP_EPTAB_H
#define IPCP_EPTAB_H

#include <stddef.h>
#include <stdint.h>

#define IPCP__EPTAB_CLOSED UINT64_MAX
#define IPCP__EPTAB_MAX_EP 4096u /* producers, and consumers, per table */

enum { IPCP__EPTAB_PRODUCER = 0, IPCP__EPTAB_CONSUMER = 1 };

struct ipcp__eptab {
    _Atomic uint64_t *word; /* producers words, then consumers words; NULL: none */
    uint32_t n[2];          /* producers, consumers */
    uint64_t ns;            /* the creator's PID namespace (ipcp__proc_ns) */
    size_t len;             /* bytes mapped */
};

/* Maps a table of producers + consumers words, all 0 (in the process that forks the endpoints,
 * before it does). 0, -EINVAL (a count 0 or above IPCP__EPTAB_MAX_EP), -errno of mmap. */
int ipcp__eptab_create(struct ipcp__eptab *t, uint32_t producers, uint32_t consumers);
/* Unmaps (in every process that holds it; the words of its endpoints are left as they are).
 * A zeroed or destroyed table is fine. */
void ipcp__eptab_destroy(struct ipcp__eptab *t);

/* Claims endpoint index of side for this process: 0, -EINVAL (side or index), -EBUSY (opened
 * before), -IPCP_E_PIDNS (this process is in another PID namespace than the creator), or the
 * error of ipcp__proc_self. */
int ipcp__eptab_claim(struct ipcp__eptab *t, int side, uint32_t index);
/* Claims the first endpoint of side that was never opened: its index, or -EBUSY (none left),
 * -EINVAL, -IPCP_E_PIDNS, the error of ipcp__proc_self. */
int ipcp__eptab_claim_any(struct ipcp__eptab *t, int side);
/* Marks a claimed endpoint closed (release: what it did before happens before a peer sees it
 * closed). */
void ipcp__eptab_close(struct ipcp__eptab *t, int side, uint32_t index);

/* One endpoint: 0 (alive, or not opened yet: it may still come), -EPIPE (closed),
 * -IPCP_E_PEERDEAD (its process died). -EINVAL for a side or index out of range. */
int ipcp__eptab_state(const struct ipcp__eptab *t, int side, uint32_t index);
/* Every endpoint of side: 0 while one of them may still act (alive or not opened yet), else
 * -IPCP_E_PEERDEAD when one of them died, else -EPIPE (all closed). Words are loaded with
 * acquire: what a closed endpoint did before ipcp__eptab_close is visible after this. */
int ipcp__eptab_gone(const struct ipcp__eptab *t, int side);

#endif

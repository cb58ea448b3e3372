/* checker.h - the verdict of one case, from the results area and the endpoints' wait statuses.
 *
 * Runs in the supervisor after every endpoint has been reaped. Everything in the results area
 * was written by processes that ran the protocol's code, so every value is read once and
 * bounds-checked before it is used, and nothing in it is ever dereferenced. */
#ifndef IPCP_STRESS_CHECKER_H
#define IPCP_STRESS_CHECKER_H

#include <stddef.h>

#include "stress.h"

/* Adds every violation and note of the case to rep and fills its statistics. */
void st_check_case(const struct st_case *cs, const struct st_outcome *o, struct st_report *rep);

/* "producer 0", "consumer 1", "worker 3". */
const char *st_endpoint_name(const struct st_case *cs, uint32_t i, char *buf, size_t cap);

/* Errors that are expected consequences of a peer's death (-EPIPE, -IPCP_E_PEERDEAD, ...). */
int st_tolerated_after_kill(int err);

/* A consumer died or failed (not as the tolerated consequence of a producer's kill): what it had
 * read is gone with it, so loss is not checked and nobody waits for those messages. */
int st_consumer_lost(const struct st_case *cs);

#endif

/* cvq_hooks.h - what cvq.c exposes to its white-box tests (core/tests/cvq_test.c) only. */
#ifndef IPCP_CVQ_HOOKS_H
#define IPCP_CVQ_HOOKS_H

#include <stdint.h>

/* cvq.c test hooks: a put (get) of this process does only the first N steps of its locked part
 * (0 .. IPCP_CVQ_STEPS - 1) and then SIGKILLs the process, holding the mutex; -1: off. */
extern int ipcp__cvq_die_put;
extern int ipcp__cvq_die_get;
/* cvq.c, for tests: the queue's mutex (pthread_mutex_t *), endpoint i's condvar
 * (pthread_cond_t *), and the view of the region. */
struct ipcp_cvq;
struct ipcp_cvq_view;
void *ipcp__cvq_mutex(struct ipcp_cvq *q);
void *ipcp__cvq_cond(struct ipcp_cvq *q, uint32_t i);
const struct ipcp_cvq_view *ipcp__cvq_view(const struct ipcp_cvq *q);

#endif

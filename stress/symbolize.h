/* symbolize.h - the code places of a schedule's report as "function file.c:12", by addr2line. */
#ifndef IPCP_STRESS_SYMBOLIZE_H
#define IPCP_STRESS_SYMBOLIZE_H

#include "sched/schedapi.h"

/* Fills the `where` of every event and blocked thread of r from its module + offset: the
 * function and the source line when the module has debug information, else the dynamic symbol
 * the runtime found, else "module+0xoffset". Runs addr2line once per module (with a deadline). */
void st_symbolize(struct st_sched_report *r);

#endif

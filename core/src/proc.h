/* proc.h - process identity and liveness from /proc (proc.c), one rule for every protocol: a
 * process is its pid and its start time, so a reused pid is not the same process. A program that
 * runs the library as threads of one process may define both functions itself (the linker then
 * leaves proc.c out: harnesses/fuzz_lock_sched.c). Not installed. */
#ifndef IPCP_PROC_H
#define IPCP_PROC_H

#include <stdint.h>

/* This process: pid and start time (clock ticks after boot, /proc/self/stat field 22). */
int ipcp__proc_self(uint32_t *pid, uint64_t *start);
/* 1 while the process pid whose start time, masked with start_mask, equals start exists and is
 * not a zombie; 0 once it is gone (or its pid was reused). Unknown cases count as alive. */
int ipcp__proc_alive(uint32_t pid, uint64_t start, uint64_t start_mask);

#endif

/* proc.h - process identity and liveness from /proc (proc.c), one rule for every protocol: a
 * process is its pid and its start time, so a reused pid is not the same process, and a pid
 * means a process only in the PID namespace it was read in: every object records its creator's
 * namespace, and an opener from another one is refused (ipcp__proc_ns_check), so the peers that
 * judge each other's liveness by pid always number processes alike. A program that runs the
 * library as threads of one process may define these functions itself (the linker then leaves
 * proc.c out: harnesses/fuzz_lock_sched.c). Not installed. */
#ifndef IPCP_PROC_H
#define IPCP_PROC_H

#include <stdint.h>

/* This process: pid and start time (clock ticks after boot, /proc/self/stat field 22). */
int ipcp__proc_self(uint32_t *pid, uint64_t *start);
/* 1 while the process pid whose start time, masked with start_mask, equals start exists and is
 * not a zombie; 0 once it is gone (or its pid was reused). Unknown cases count as alive: /proc
 * unreadable, or mounted for another PID namespace (a process that unshared its namespace and
 * kept its parent's /proc, where /proc/<pid> is somebody else): then only kill(pid, 0) answers,
 * and a zombie or a reused pid counts as alive until the caller's deadline. */
int ipcp__proc_alive(uint32_t pid, uint64_t start, uint64_t start_mask);

/* The PID namespace this process's pids are numbered in (the inode of /proc/self/ns/pid);
 * 0 when /proc cannot tell. */
uint64_t ipcp__proc_ns(void);
/* Opening an object whose creator recorded PID namespace ns: 0 when the pids it records mean
 * the same processes here (the same namespace, or either unknown), -IPCP_E_PIDNS when the
 * namespaces differ (a live peer could be judged dead by its pid, and a lock recovered from
 * it). */
int ipcp__proc_ns_check(uint64_t ns);

#endif

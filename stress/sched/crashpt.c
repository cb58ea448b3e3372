/* crashpt.c - inside libipcproof-sched.so: where the harness's code is (its own copies are not
 * the protocol's scheduling points), and the crash points of process mode (schedrt.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>

#include "schedrt.h"

/* The text of the main executable (the harness): its own copies are not the protocol's. */
static uintptr_t exe_lo, exe_hi;

static int find_exe(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            exe_lo = info->dlpi_addr + ph->p_vaddr;
            exe_hi = exe_lo + ph->p_memsz;
        }
    }
    return 1; /* the first object is the executable */
}

void sr_find_harness(void)
{
    if (exe_hi == 0) dl_iterate_phdr(find_exe, NULL);
}

int sr_from_harness(const void *pc)
{
    return (uintptr_t)pc >= exe_lo && (uintptr_t)pc < exe_hi;
}

/* ---- crash points (process mode) --------------------------------------------------------- */

/* Armed in the victim's thread: the number of scheduling points left before it dies. */
static SR_TLS volatile uint64_t crash_left, crash_seen;

void sr_crash_point(void)
{
    if (crash_left == 0) return;
    crash_seen++;
    if (--crash_left == 0) raise(SIGKILL); /* before the operation of this point */
}

/* Counts the scheduling points of this thread from now on, and SIGKILLs the process at the
 * n-th (1-based), before its operation happens. */
SR_EXPORT void ipcproof_sched_crash_arm(uint64_t n)
{
    sr_find_harness(); /* the harness's copies do not count */
    crash_seen = 0;
    crash_left = n;
}

/* Stops counting; returns how many points were seen (fewer than n: it never died). */
SR_EXPORT uint64_t ipcproof_sched_crash_disarm(void)
{
    crash_left = 0;
    return crash_seen;
}

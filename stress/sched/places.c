/* places.c - inside libipcproof-sched.so: code places. Where the harness's code is (its own
 * copies are not the protocol's scheduling points), and a code address as a module of the
 * report's table and an offset in it, which the supervisor names with addr2line (schedrt.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "schedapi.h"
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

/* pc as a module of the report's table + offset; where = the dynamic symbol, if any */
void sr_place(struct st_sched_report *r, const void *pc, struct st_sched_pc *at, char *where,
              size_t cap)
{
    Dl_info di;
    memset(at, 0, sizeof(*at));
    where[0] = '\0';
    if (pc == NULL || !dladdr(pc, &di) || di.dli_fname == NULL) return;
    uint32_t m = 0;
    for (uint32_t i = 0; i < ST_SCHED_MODULES && r->modules[i][0]; i++)
        if (strcmp(r->modules[i], di.dli_fname) == 0) m = i + 1;
    for (uint32_t i = 0; m == 0 && i < ST_SCHED_MODULES; i++)
        if (r->modules[i][0] == '\0') {
            snprintf(r->modules[i], sizeof(r->modules[i]), "%s", di.dli_fname);
            m = i + 1;
        }
    at->module = m;
    at->offset = (uint64_t)((uintptr_t)pc - (uintptr_t)di.dli_fbase);
    if (di.dli_sname != NULL)
        snprintf(where, cap, "%s+0x%lx", di.dli_sname,
                 (unsigned long)((uintptr_t)pc - (uintptr_t)di.dli_saddr));
}

/* Names the code places of the trace's events (module + offset, and the symbol if any). */
SR_EXPORT void ipcproof_sched_place_trace(struct st_sched_report *r)
{
    uint64_t from = r->nevents > ST_SCHED_TRACE ? r->nevents - ST_SCHED_TRACE : 0;
    for (uint64_t i = from; i < r->nevents; i++) {
        struct st_sched_event *e = &r->trace[i % ST_SCHED_TRACE];
        sr_place(r, (const void *)(uintptr_t)e->pc, &e->at, e->where, sizeof(e->where));
    }
}

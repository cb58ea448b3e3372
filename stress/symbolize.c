/* symbolize.c - code places of a schedule's report as function and source line; see symbolize.h.
 *
 * The runtime records each place as a module (path) and an offset in it; the supervisor, which
 * has time to spare once a schedule failed, asks binutils' addr2line for the function and line of
 * every offset of a module in one run. Places are then the same from run to run (no addresses of
 * this run), which keeps traces byte for byte comparable. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spawn.h"
#include "symbolize.h"

#define MAX_PCS 512

struct slot {
    const struct st_sched_pc *at;
    char *where; /* [160] */
};

static const char *base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Runs addr2line on the offsets of module m; fills where[] of the slots that are in it. */
static void one_module(const struct st_sched_report *r, uint32_t m, struct slot *sl, size_t n)
{
    const char *path = r->modules[m - 1];
    char *argv[MAX_PCS + 8];
    char offs[MAX_PCS][24];
    size_t k = 0, idx[MAX_PCS];
    argv[k++] = "addr2line";
    argv[k++] = "-f";
    argv[k++] = "-C";
    argv[k++] = "-e";
    argv[k++] = (char *)path;
    size_t first = k, cnt = 0;
    for (size_t i = 0; i < n && cnt < MAX_PCS; i++) {
        if (sl[i].at->module != m) continue;
        snprintf(offs[cnt], sizeof(offs[cnt]), "0x%" PRIx64, sl[i].at->offset);
        argv[first + cnt] = offs[cnt];
        idx[cnt++] = i;
    }
    argv[first + cnt] = NULL;
    if (cnt == 0) return;
    char tmp[] = "/tmp/ipcproof-sym-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) return;
    unlink(tmp);
    struct st_child_opts o = {.out_fd = fd, .in_null = 1, .die_with_parent = 1};
    pid_t pid = st_spawn_exec(&o, argv, NULL);
    int rc = pid > 0 ? st_wait_timeout(pid, 20) : -1;
    FILE *f = rc == 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL) {
        close(fd);
        return;
    }
    rewind(f);
    char fn[256], line[512];
    for (size_t j = 0; j < cnt; j++) {
        if (!fgets(fn, sizeof(fn), f) || !fgets(line, sizeof(line), f)) break;
        fn[strcspn(fn, "\n")] = '\0';
        line[strcspn(line, "\n (")] = '\0';
        char *w = sl[idx[j]].where;
        const char *file = base(line);
        int known_fn = strcmp(fn, "??") != 0, known_line = strncmp(file, "??", 2) != 0;
        if (known_fn && known_line)
            snprintf(w, 160, "%.80s %.70s", fn, file);
        else if (known_fn)
            snprintf(w, 160, "%.80s (%.60s)", fn, base(path));
        /* else keep what the runtime found */
    }
    fclose(f);
}

void st_symbolize(struct st_sched_report *r)
{
    struct slot sl[ST_SCHED_TRACE + ST_SCHED_MAX_THREADS + 2];
    size_t n = 0;
    uint64_t from = r->nevents > ST_SCHED_TRACE ? r->nevents - ST_SCHED_TRACE : 0;
    for (uint64_t i = from; i < r->nevents; i++) {
        struct st_sched_event *e = &r->trace[i % ST_SCHED_TRACE];
        sl[n].at = &e->at;
        sl[n++].where = e->where;
    }
    for (uint32_t i = 0; i < ST_SCHED_MAX_THREADS; i++)
        if (r->blocked[i].blocked) {
            sl[n].at = &r->blocked[i].at;
            sl[n++].where = r->blocked[i].where;
        }
    for (int i = 0; r->status == ST_SCHED_RACE && i < 2; i++)
        if (r->race.access[i].known) {
            sl[n].at = &r->race.access[i].at;
            sl[n++].where = r->race.access[i].where;
        }
    /* a fallback first: module+offset where the runtime found no symbol */
    for (size_t i = 0; i < n; i++) {
        uint32_t m = sl[i].at->module;
        if (sl[i].where[0] == '\0' && m >= 1 && m <= ST_SCHED_MODULES)
            snprintf(sl[i].where, 160, "%.100s+0x%" PRIx64, base(r->modules[m - 1]),
                     sl[i].at->offset);
        else if (sl[i].where[0] == '\0')
            snprintf(sl[i].where, 160, "?");
    }
    for (uint32_t m = 1; m <= ST_SCHED_MODULES; m++) {
        r->modules[m - 1][sizeof(r->modules[m - 1]) - 1] = '\0';
        if (r->modules[m - 1][0]) one_module(r, m, sl, n);
    }
}

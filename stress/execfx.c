/* execfx.c - short-io and signals for exec endpoints: the interposer in the programs; see
 * execfx.h. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checker.h"
#include "execfx.h"
#include "faults/faults.h"
#include "spawn.h"

#define CHECK_EVERY_NS (50 * (int64_t)1000000)
#define PENDING_NS     (300 * (int64_t)1000000) /* a dynamic image has loaded its preloads by then */

int st_exfx_open(struct st_exfx *x, const struct st_config *c, uint64_t seed_salt,
                 const int *contract, int ncontract, char **env, size_t *n)
{
    memset(x, 0, sizeof(*x));
    x->fd = -1;
    x->on = (c->faults & (ST_FAULT_SHORTIO | ST_FAULT_SIGNALS)) != 0;
    x->signals = (c->faults & ST_FAULT_SIGNALS) != 0;
    if (!x->on) return 0;
    x->state = ST_EXFX_UNSEEN;
    char lib[PATH_MAX];
    const char *found = st_faults_lib();
    if (found == NULL || realpath(found, lib) == NULL) return -ENOENT;
    x->fd = memfd_create(IPCP_FX_MEMFD, MFD_CLOEXEC);
    if (x->fd < 0) return -errno;
    void *p = MAP_FAILED;
    if (ftruncate(x->fd, (off_t)sizeof(struct ipcp_fx_page)) == 0)
        p = mmap(NULL, sizeof(struct ipcp_fx_page), PROT_READ | PROT_WRITE, MAP_SHARED, x->fd, 0);
    if (p == MAP_FAILED) {
        int r = -errno;
        close(x->fd);
        x->fd = -1;
        return r;
    }
    x->page = p;
    x->page->magic = IPCP_FX_MAGIC;

    /* one process's entries at a time (the worker starts one program) */
    static char buf[ST_EXFX_ENV][PATH_MAX * 2 + 32];
    size_t k = 0;
    const char *old = getenv("LD_PRELOAD");
    snprintf(buf[k], sizeof(buf[k]), "LD_PRELOAD=%s%s%s", lib, old && *old ? ":" : "",
             old && *old ? old : "");
    env[(*n)++] = buf[k++];
    snprintf(buf[k], sizeof(buf[k]), "%s=%d", IPCP_FX_ENV_FD, x->fd);
    env[(*n)++] = buf[k++];
    double rate = c->faults & ST_FAULT_SHORTIO ? c->fault_rate : 0;
    snprintf(buf[k], sizeof(buf[k]), "%s=%u", IPCP_FX_ENV_RATE,
             (unsigned)((rate < 0   ? 0
                         : rate > 1 ? 1
                                    : rate) *
                        1e6));
    env[(*n)++] = buf[k++];
    snprintf(buf[k], sizeof(buf[k]), "%s=%" PRIu64, IPCP_FX_ENV_SEED,
             splitmix64_mix(c->seed ^ 0x73686f7274ull ^ seed_salt));
    env[(*n)++] = buf[k++];
    /* the contract pipes (and wherever stderr goes): the program's talk with ipcproof, not the
     * protocol under test */
    size_t len = (size_t)snprintf(buf[k], sizeof(buf[k]), "%s=", IPCP_FX_ENV_SKIP);
    for (int i = 0, m = 0; i < ncontract && m < IPCP_FX_MAX_SKIP; i++) {
        struct stat st;
        if (contract[i] < 0 || fstat(contract[i], &st) != 0) continue;
        len += (size_t)snprintf(buf[k] + len, sizeof(buf[k]) - len, "%s%llu:%llu", m ? "," : "",
                                (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
        m++;
    }
    env[(*n)++] = buf[k++];
    env[*n] = NULL;
    return 0;
}

int st_exfx_fd(const struct st_exfx *x)
{
    return x->on ? x->fd : -1;
}

/* ---- what /proc says of one process -----------------------------------------------------------
 */

/* The text of /proc/<pid>/<what> (at most cap - 1 bytes); its length, or -1. */
static ssize_t proc_read(pid_t pid, const char *what, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (got == cap - 1) break;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* Whether /proc/<pid>/maps names the interposer: 1, 0, or -1 (unreadable). */
static int has_interposer(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return -1;
    char line[PATH_MAX + 128];
    int found = 0, any = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        any = 1;
        found = strstr(line, "/" IPCP_FX_LIB) != NULL;
    }
    fclose(f);
    return found ? 1 : any ? 0 : -1;
}

/* Whether an ELF interpreter (ld.so) was loaded into the image: AT_BASE in its auxv. */
static int has_interpreter(pid_t pid)
{
    uint64_t av[128];
    ssize_t n = proc_read(pid, "auxv", (char *)av, sizeof(av));
    for (ssize_t i = 0; n > 0 && (size_t)(i + 2) * sizeof(uint64_t) <= (size_t)n; i += 2)
        if (av[i] == AT_BASE) return av[i + 1] != 0;
    return -1;
}

/* The mask after "Name:\t" in /proc/<pid>/status, or 0. */
static uint64_t status_mask(const char *status, const char *name)
{
    const char *p = strstr(status, name);
    return p ? strtoull(p + strlen(name), NULL, 16) : 0;
}

/* "pid 123 (/path/to/exe)" into who. */
static void describe(pid_t pid, char *who, size_t cap, const char *why)
{
    char path[64], exe[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, exe, sizeof(exe) - 1);
    if (n <= 0) {
        char stat[256];
        n = proc_read(pid, "comm", stat, sizeof(stat));
        snprintf(exe, sizeof(exe), "%s", n > 0 ? stat : "?");
        exe[strcspn(exe, "\n")] = '\0';
    } else {
        exe[n] = '\0';
    }
    snprintf(who, cap, "pid %d (%.80s) %s", (int)pid, exe, why);
}

/* The slot of a process (pid; -pid for the signal handler's check) that does not show what it
 * should yet, taken now if it had none: its index, or -1 when every slot is taken (so many
 * programs starting at once: none is judged before its grace time). st_exfx_check frees the
 * slots of processes that left the tree. */
static int pending_slot(struct st_exfx *x, pid_t pid, int64_t now)
{
    int free_at = -1;
    for (int i = 0; i < ST_EXFX_PENDING; i++) {
        if (x->pending[i] == pid) return i;
        if (x->pending[i] == 0 && free_at < 0) free_at = i;
    }
    if (free_at >= 0) {
        x->pending[free_at] = pid;
        x->pending_since[free_at] = now;
    }
    return free_at;
}

/* Still in its grace time (or no slot to time it): not judged now. */
static int pending_grace(struct st_exfx *x, pid_t pid, int64_t now)
{
    int i = pending_slot(x, pid, now);
    return i < 0 || now - x->pending_since[i] < PENDING_NS;
}

static void pending_clear(struct st_exfx *x, pid_t pid)
{
    for (int i = 0; i < ST_EXFX_PENDING; i++)
        if (x->pending[i] == pid) x->pending[i] = 0;
}

static void offend(struct st_exfx *x, int state, pid_t pid, const char *why)
{
    if (x->state == ST_EXFX_MISSING || x->state == ST_EXFX_NOHANDLER) return; /* the first one */
    x->state = state;
    describe(pid, x->who, sizeof(x->who), why);
}

static void check_one(struct st_exfx *x, pid_t pid, int64_t now)
{
    char st[2048];
    ssize_t n = proc_read(pid, "stat", st, sizeof(st));
    const char *r = n > 0 ? strrchr(st, ')') : NULL;
    if (r == NULL || r[1] == '\0' || r[2] == 'Z' || r[2] == 'X') return; /* gone, or a zombie */
    int in = has_interposer(pid);
    if (in == 1) {
        pending_clear(x, pid);
        if (x->signals) {
            char status[4096];
            if (proc_read(pid, "status", status, sizeof(status)) <= 0) return;
            uint64_t bit = 1ull << (IPCP_FX_SIGNAL - 1);
            int caught = (status_mask(status, "SigCgt:") & bit) != 0;
            int blocked = (status_mask(status, "SigBlk:") & bit) != 0;
            if (!caught || blocked) {
                /* the constructor may not have run yet: the same test as for the library */
                if (pending_grace(x, -pid, now)) return;
                offend(x, ST_EXFX_NOHANDLER, pid,
                       blocked ? "blocks SIGURG, the signal of --fault signals"
                               : "replaced the interposer's SIGURG handler (or ignores the "
                                 "signal): --fault signals cannot interrupt it");
                return;
            }
            pending_clear(x, -pid);
        }
        if (x->state == ST_EXFX_UNSEEN) x->state = ST_EXFX_OK;
        return;
    }
    char path[64];
    struct stat es;
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    if (stat(path, &es) == 0 && (es.st_mode & (S_ISUID | S_ISGID))) {
        offend(x, ST_EXFX_MISSING, pid,
               "is setuid or setgid: the loader ignores LD_PRELOAD for it");
        return;
    }
    if (in < 0) return; /* unreadable: it is going away (or not ours to look at) */
    int interp = has_interpreter(pid);
    if (interp == 0) {
        offend(x, ST_EXFX_MISSING, pid, "is statically linked: LD_PRELOAD cannot reach it");
        return;
    }
    /* dynamically linked, without the library: just exec()ed and still loading it, or started
     * without LD_PRELOAD - the first passes, the second lasts */
    if (pending_grace(x, pid, now)) return;
    offend(x, ST_EXFX_MISSING, pid,
           "runs without the interposer (LD_PRELOAD removed from its environment?)");
}

void st_exfx_check(struct st_exfx *x, pid_t leader, int force)
{
    if (!x->on || leader <= 1) return;
    int64_t now = st_now_ns();
    if (!force && now < x->next_ns) return;
    x->next_ns = now + CHECK_EVERY_NS;
    /* the tree under the leader, breadth first (at most 64 processes) */
    pid_t todo[64];
    size_t head = 0, tail = 0;
    todo[tail++] = leader;
    while (head < tail) {
        pid_t p = todo[head++];
        check_one(x, p, now);
        pid_t kids[32];
        size_t k = st_children_of(p, kids, 32);
        for (size_t j = 0; j < k && tail < 64; j++)
            todo[tail++] = kids[j];
    }
    /* a process that left the tree (most often: a short program that exited while it was
     * loading) frees its slot; kept, such slots once filled up and the next program still
     * loading was judged at once, "without the interposer" */
    for (int i = 0; i < ST_EXFX_PENDING; i++) {
        pid_t p = x->pending[i] < 0 ? -x->pending[i] : x->pending[i];
        int seen = 0;
        for (size_t j = 0; j < tail && !seen; j++)
            seen = todo[j] == p;
        if (p != 0 && !seen && tail < 64) x->pending[i] = 0;
    }
}

void st_exfx_close(struct st_exfx *x, struct st_exfx_out *out)
{
    if (out != NULL) memset(out, 0, sizeof(*out));
    if (!x->on) return;
    /* a program too quick for any look at /proc: the interposer said itself that it started in
     * its image (the page's count), which is what the look would have found */
    if (x->state == ST_EXFX_UNSEEN && x->page != NULL &&
        atomic_load_explicit(&x->page->images, memory_order_relaxed) > 0)
        x->state = ST_EXFX_OK;
    if (out != NULL) {
        out->state = x->state;
        snprintf(out->who, sizeof(out->who), "%s", x->who);
        if (x->page != NULL) {
            out->injected = atomic_load_explicit(&x->page->injected, memory_order_relaxed);
            out->signals = atomic_load_explicit(&x->page->signals, memory_order_relaxed);
        }
    }
    if (x->page != NULL) munmap(x->page, sizeof(struct ipcp_fx_page));
    if (x->fd >= 0) close(x->fd);
    x->page = NULL;
    x->fd = -1;
    x->on = 0;
}

/* ---- the supervisor's verdict ------------------------------------------------------------------
 */

void st_exfx_judge(const struct st_case *cs, struct st_report *rep, int started)
{
    const struct st_config *c = cs->cfg;
    const char *fault = (c->faults & ST_FAULT_SHORTIO) && (c->faults & ST_FAULT_SIGNALS)
                            ? "short-io and signals"
                        : c->faults & ST_FAULT_SHORTIO ? "short-io"
                                                       : "signals";
    uint64_t injected = 0, handled = 0;
    char na[sizeof(rep->na)] = "";
    for (uint32_t i = 0; i < cs->nworkers; i++) {
        const struct st_slot *s = &cs->slots[i];
        if (!atomic_load_explicit(&s->done, memory_order_acquire)) continue;
        injected += atomic_load_explicit(&s->exfx_injected, memory_order_relaxed);
        handled += atomic_load_explicit(&s->exfx_signals, memory_order_relaxed);
        uint32_t state = atomic_load_explicit(&s->exfx_state, memory_order_relaxed);
        if (state == ST_EXFX_OK || state == ST_EXFX_OFF) continue;
        char nm[48], what[512];
        st_endpoint_name(cs, i, nm, sizeof(nm));
        if (state == ST_EXFX_UNSEEN)
            snprintf(what, sizeof(what),
                     "--fault %s: %s's program ended before ipcproof could see "
                     "the interposer in it",
                     fault, nm);
        else
            snprintf(what, sizeof(what), "--fault %s did not reach %s's program: %.*s", fault, nm,
                     ST_EXFX_WHO, s->exfx_who);
        st_report_note(rep, "%s", what);
        if (!na[0]) {
            snprintf(na, sizeof(na), "%s", what);
        }
    }
    rep->io_faults = injected;
    rep->signals = handled;
    if (c->faults & ST_FAULT_SIGNALS)
        st_report_note(rep,
                       "signal storm: %" PRIu64 " SIGURGs taken by the programs' handlers (one "
                       "every %u us to each program's process group)",
                       handled, cs->signal_us);
    if (c->faults & ST_FAULT_SHORTIO)
        st_report_note(rep,
                       "short-io: %" PRIu64 " short counts, EINTRs and EAGAINs injected into the "
                       "programs' pipes, FIFOs and sockets",
                       injected);
    if (!started) return;
    if (!na[0] && (c->faults & ST_FAULT_SHORTIO) && injected == 0)
        snprintf(na, sizeof(na),
                 "--fault short-io injected nothing: the programs made no read, write, send or "
                 "recv on a pipe, FIFO or socket of their own (their stdin and stdout with "
                 "ipcproof are left alone) that the kernel could interrupt or cut short: shared "
                 "memory or message queues?");
    if (!na[0] && (c->faults & ST_FAULT_SIGNALS) && handled == 0)
        snprintf(na, sizeof(na), "--fault signals: no signal reached the programs' handlers");
    if (na[0]) snprintf(rep->na, sizeof(rep->na), "%s", na);
}

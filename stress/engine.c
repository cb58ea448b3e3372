/* engine.c - the supervisor of one stress case.
 *
 * The supervisor runs no protocol code. A case goes: load (the protocol host loads the plugin
 * and reports what it exports) -> create (in the host) -> spawn (the host's spawner forks the
 * endpoints, which the supervisor, a child subreaper, adopts) -> start barrier -> run (bounded
 * by count and time) -> stop -> reap and decode every wait status -> check -> destroy (in the
 * host) -> sweep (whatever the protocol forked and left running is killed and reported) -> leak
 * check. Every step has a deadline: a constructor, create() or destroy() that hangs, crashes or
 * exits becomes a `deadlock` or `crash` verdict and the case still ends with a report. The run
 * itself, with its watchdog, is runloop.c. */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checker.h"
#include "elfinfo.h"
#include "engine.h"
#include "exec.h"
#include "execfx.h"
#include "host.h"
#include "sanrep.h"
#include "ipcproof/err.h"
#include "spawn.h"
#include "stress.h"
#include "symbolize.h"

#define TSAN_EXIT      66
#define SWEEP_GRACE_NS 200000000LL /* what the protocol forked gets this long to exit */

static volatile int interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

void st_setup_error(struct st_report *r, const char *fmt, ...)
{
    r->status = 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

/* ---- the results area ----------------------------------------------------------------------- */

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Sized before the host is forked for whichever kind the protocol turns out to be: slots for
 * max(producers + consumers, workers) endpoints and the producers' delivery bitmaps. Guard pages
 * on both sides; MAP_NORESERVE: the bitmaps of a duration-bounded run are sized for the cap but
 * only touched where messages land. */
static int map_results(struct st_case *cs, const struct st_config *c, void **base, size_t *len)
{
    size_t pg = page_size();
    uint32_t nslots = c->producers + c->consumers;
    if (c->workers > nslots) nslots = c->workers;
    size_t off = (sizeof(struct st_shared) + 63u) & ~(size_t)63u;
    size_t slots = sizeof(struct st_slot) * nslots;
    size_t bm = cs->bitmap_words * sizeof(uint64_t) * c->producers;
    size_t data = (off + slots + bm + pg - 1) / pg * pg;
    *len = data + 2 * pg;
    void *m = mmap(NULL, *len, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -errno;
    char *d = (char *)m + pg;
    if (mprotect(d, data, PROT_READ | PROT_WRITE) < 0) {
        int e = -errno;
        munmap(m, *len);
        return e;
    }
    *base = m;
    cs->map_len = *len;
    cs->sh = (struct st_shared *)d;
    cs->slots = (struct st_slot *)(d + off);
    cs->bitmaps = (_Atomic uint64_t *)(d + off + slots);
    return 0;
}

/* The endpoints of the case once its kind is known. */
static void lay_out(struct st_case *cs, const struct st_config *c, int chan, uint32_t flags)
{
    cs->is_chan = chan;
    cs->exec = c->exec_producer != NULL || c->exec_worker != NULL;
    cs->proto_flags = flags;
    if (chan) {
        cs->producers = c->producers;
        cs->consumers = c->consumers;
        cs->nworkers = c->producers + c->consumers;
        cs->fifo = (flags & IPCP_CHAN_FIFO) != 0;
        for (uint32_t i = 0; i < cs->nworkers; i++) {
            cs->w[i].role = i < cs->producers ? ST_ROLE_PRODUCER : ST_ROLE_CONSUMER;
            cs->w[i].rindex = i < cs->producers ? i : i - cs->producers;
        }
    } else {
        cs->producers = cs->consumers = 0;
        cs->nworkers = c->workers;
        for (uint32_t i = 0; i < cs->nworkers; i++) {
            cs->w[i].role = ST_ROLE_LOCKER;
            cs->w[i].rindex = i;
        }
    }
    for (uint32_t i = 0; i < cs->nworkers; i++)
        cs->w[i].index = i;
}

/* ---- fault choices -------------------------------------------------------------------------- */

static uint32_t pick(uint64_t *rng, uint32_t from, uint32_t n)
{
    return from + (uint32_t)(splitmix64_next(rng) % (n ? n : 1));
}

static void choose_faults(struct st_case *cs, const struct st_config *c, struct st_report *rep)
{
    uint64_t rng = splitmix64_mix(c->seed ^ 0x6b696c6cull);
    cs->kill_point = c->kill_point;
    if (c->faults & ST_FAULT_KILL) {
        uint32_t v = pick(&rng, 0, cs->nworkers);
        if (cs->is_chan && c->kill_point == ST_KP_SEND_BLOCKED) v = pick(&rng, 0, cs->producers);
        if (cs->is_chan && c->kill_point == ST_KP_RECV_BLOCKED)
            v = pick(&rng, cs->producers, cs->consumers);
        cs->kill_victim = v + 1;
        if (cs->is_chan) {
            /* a point in time when the run is bounded by time, else an operation count */
            uint64_t expect = c->messages;
            if (cs->w[v].role == ST_ROLE_CONSUMER && expect)
                expect = expect * cs->producers / cs->consumers;
            if (c->duration > 0) {
                double frac = 0.1 + 0.5 * (double)(splitmix64_next(&rng) % 1000) / 1000.0;
                cs->kill_time_ns = (int64_t)(frac * c->duration * 1e9);
                if (cs->kill_time_ns < 1) cs->kill_time_ns = 1;
            } else {
                cs->kill_at = 1 + splitmix64_next(&rng) % (expect / 2 ? expect / 2 : 1);
            }
        } else {
            /* early in the run (the victim's first 256 acquisitions), so that the rest of the
             * run tests the recovery */
            uint64_t lim = c->messages ? c->messages / 2 : 256;
            if (lim > 256) lim = 256;
            cs->kill_at = splitmix64_next(&rng) % (lim ? lim : 1);
            cs->kill_in_cs = (cs->proto_flags & IPCP_LOCK_ROBUST) != 0;
        }
    }
    if (c->crash_point) {
        /* the victim's third operation (the lock has been used before; the channel carries a
         * few messages), from the seed for which endpoint */
        cs->kill_victim =
            pick(&rng, 0, cs->is_chan ? cs->producers + cs->consumers : cs->nworkers) + 1;
        if (cs->is_chan && c->crash_role == 1) cs->kill_victim = pick(&rng, 0, cs->producers) + 1;
        if (cs->is_chan && c->crash_role == 2)
            cs->kill_victim = pick(&rng, cs->producers, cs->consumers) + 1;
        cs->kill_at = 2;
        cs->kill_in_cs = 0;
    }
    if (c->faults & ST_FAULT_STOP) {
        /* one endpoint (another than the kill's, when there is one) stops for 50..500 ms after
         * a few of its operations: a peer that is slow, not dead */
        uint32_t v = pick(&rng, 0, cs->nworkers);
        if (cs->nworkers > 1 && v + 1 == cs->kill_victim) v = (v + 1) % cs->nworkers;
        cs->stop_victim = v + 1;
        cs->stop_at = 1 + splitmix64_next(&rng) % 64;
        cs->stop_ms = 50 + (unsigned)(splitmix64_next(&rng) % 451);
    }
    if ((c->faults & ST_FAULT_SIGNALS) && c->mode != ST_MODE_SCHED) /* sched: its own choices */
        cs->signal_us = c->signal_us ? c->signal_us : 200 + (unsigned)(splitmix64_next(&rng) % 800);
    rep->signal_us = cs->signal_us;
    if ((c->faults & ST_FAULT_SHORTIO) && !cs->exec) { /* exec: in the programs (execfx.h) */
        *(void **)&cs->faults_arm = dlsym(RTLD_DEFAULT, "ipcproof_faults_arm");
        *(void **)&cs->faults_count = dlsym(RTLD_DEFAULT, "ipcproof_faults_injected");
        if (cs->faults_count == NULL) cs->faults_arm = NULL;
        double rate = c->fault_rate;
        if (rate < 0) rate = 0;
        if (rate > 1) rate = 1;
        cs->fault_rate_ppm = (unsigned)(rate * 1e6);
    }
}

/* ---- the protocol host ---------------------------------------------------------------------- */

/* A step of the host did not end as it should: a verdict about the protocol (or an error). */
static void host_failed(struct st_sup *S, const char *step, int r, const struct st_hmsg *m)
{
    struct st_report *rep = S->rep;
    struct st_hostconn *h = &S->host;
    if (!interrupted) snprintf(rep->setup_failure, sizeof(rep->setup_failure), "%s", step);
    if (r == 0 && !interrupted)
        st_report_add(rep, ST_V_DEADLOCK, 1,
                      "%s did not return within %.1f s (the protocol host, pid %d, was killed)",
                      step, (double)S->setup_ns / 1e9, (int)h->pid);
    st_host_kill(h);
    if (interrupted) {
        st_setup_error(rep, "interrupted");
    } else if (r == -1) {
        char how[128];
        st_host_describe_exit(h->status, how, sizeof(how));
        st_report_add(
            rep, ST_V_CRASH, 1, "the protocol host (pid %d) %s inside %s%s", (int)h->pid, how, step,
            WIFEXITED(h->status) ? ": the protocol ended the process (exit() called?)" : "");
    } else if (r == -2) {
        st_report_add(rep, ST_V_CRASH, 1, "%s: %s", step, m->text);
    }
}

static int host_step(struct st_sup *S, const char *step, int want, struct st_hmsg *m)
{
    int r = st_host_await(&S->host, want, m, st_now_ns() + S->setup_ns, &interrupted);
    if (r == 1 && (int)m->type != want) {
        r = -2;
        snprintf(m->text, sizeof(m->text), "the protocol host answered out of turn");
    }
    if (r != 1) host_failed(S, step, r, m);
    return r == 1;
}

/* Adopts the endpoints the spawner forked: they are our children once it has exited. */
static int adopt(struct st_sup *S, const struct st_hmsg *m)
{
    struct st_outcome *o = &S->o;
    uint32_t want = S->cs.cfg->mode != ST_MODE_PROCESS ? 1 : S->cs.nworkers;
    if (m->rc < 0 || m->npids != want) {
        st_setup_error(S->rep, "forking the endpoints failed: %s",
                       m->rc < 0 ? ipcp_strerror(m->rc) : "wrong count");
        return -1;
    }
    int64_t give_up = st_now_ns() + 5000000000LL;
    for (uint32_t i = 0; i < want; i++) {
        o->pids[i] = m->pids[i];
        o->nproc = i + 1;
        for (;;) {
            int st;
            pid_t w = m->pids[i] > 0 ? waitpid(m->pids[i], &st, WNOHANG) : -1;
            if (w == m->pids[i]) {
                o->reaped[i] = 1;
                o->status[i] = st;
                if (!st_sup_ended_ok(S, i, st)) {
                    st_sup_mark_dead(S, i);
                    if (o->crash_ns == 0) o->crash_ns = st_now_ns();
                }
                break;
            }
            if (w == 0) break; /* a live child of ours */
            if (st_now_ns() > give_up) {
                o->nproc = i; /* not ours: never signal it */
                st_setup_error(S->rep, "endpoint pid %d did not become a child of the supervisor",
                               (int)m->pids[i]);
                return -1;
            }
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    return 0;
}

/* ---- sanitizer reports ---------------------------------------------------------------------- */

/* The reports the sanitizers printed into the captured output, as frames of the `race` and
 * `crash` violations they explain. */
static void attach_reports(struct st_report *rep)
{
    if (rep->output == NULL) return;
    size_t pos = 0, len = strlen(rep->output);
    struct st_sanrep sr;
    while (st_sanrep_next(rep->output, len, &pos, &sr)) {
        int race = strcmp(sr.tool, "ThreadSanitizer") == 0 && strstr(sr.title, "SEGV") == NULL &&
                   strstr(sr.title, "signal") == NULL;
        for (int i = 0; i < rep->nv; i++) {
            struct st_violation *v = &rep->v[i];
            if (v->kind != (race ? ST_V_RACE : ST_V_CRASH) || v->frames[0]) continue;
            size_t fl = (size_t)snprintf(v->frames, sizeof(v->frames), "%s: %s", sr.tool, sr.title);
            for (int f = 0; f < sr.nframes && fl < sizeof(v->frames); f++) {
                const struct st_sanframe *fr = &sr.frames[f];
                char at[300] = "";
                if (fr->file[0] && fr->line)
                    snprintf(at, sizeof(at), " %s:%u", fr->file, fr->line);
                else if (fr->file[0])
                    snprintf(at, sizeof(at), " %s", fr->file);
                fl += (size_t)snprintf(v->frames + fl, sizeof(v->frames) - fl, "\n#%d %s%s%s%s", f,
                                       fr->func[0] ? fr->func : "?", at,
                                       fr->module[0] ? " in " : "", fr->module);
            }
            char one[400];
            st_sanrep_format(&sr, one, sizeof(one));
            size_t dl = strlen(v->detail);
            dl += (size_t)snprintf(v->detail + dl, sizeof(v->detail) - dl, ": %s", one);
            /* the harness's own counter, which each holder reads and writes in the critical
             * section: the lock gave TSan no happens-before between two holders */
            if (race && sr.nframes > 0 && strcmp(sr.frames[0].func, "run_locker") == 0 &&
                dl < sizeof(v->detail))
                snprintf(v->detail + dl, sizeof(v->detail) - dl,
                         " - on ipcproof's critical-section counter: ThreadSanitizer saw no "
                         "happens-before between two holders of the lock. Either its ordering is "
                         "missing (relaxed atomics), or it synchronises through the kernel "
                         "(flock, fcntl, semop, a futex), which TSan cannot see: annotate that "
                         "with __tsan_release/__tsan_acquire (docs/plugins.md, section 5)");
            break;
        }
    }
}

/* ---- one run -------------------------------------------------------------------------------- */

static int check_sizes(const struct st_config *c, int chan, struct st_report *rep)
{
    if (c->mode != ST_MODE_PROCESS && (c->faults & ST_FAULT_KILL)) {
        st_setup_error(rep, "--fault kill needs --mode process (a SIGKILL ends every thread)");
        return -1;
    }
    if (chan) {
        if (c->producers < 1 || c->consumers < 1 ||
            c->producers + c->consumers > ST_MAX_ENDPOINTS) {
            st_setup_error(rep, "--producers and --consumers must be >= 1 and add up to at most %u",
                           ST_MAX_ENDPOINTS);
            return -1;
        }
        if (c->min_size < ST_HDR_SIZE || c->max_size < c->min_size || c->max_size > ST_MAX_MSG) {
            st_setup_error(rep,
                           "message sizes must satisfy %u <= --min-size <= --max-size <= %u "
                           "(every message carries a %u-byte header)",
                           ST_HDR_SIZE, ST_MAX_MSG, ST_HDR_SIZE);
            return -1;
        }
    } else if (c->workers < 1 || c->workers > ST_MAX_ENDPOINTS) {
        st_setup_error(rep, "--workers must be in 1..%u", ST_MAX_ENDPOINTS);
        return -1;
    }
    if (c->messages == 0 && c->duration <= 0) {
        st_setup_error(rep, "--messages or --duration must bound the run");
        return -1;
    }
    return 0;
}

/* Whether a ThreadSanitizer report from this case is a verdict. */
static void judge_race(const struct st_config *c, struct st_outcome *o)
{
    o->race_trusted = 1;
    if (c->plugin == NULL) return; /* built-in: the core library is built like ipcproof */
    char why[160] = "";
    int k = st_elf_tsan_kind(c->plugin, why, sizeof(why));
    if (k == ST_TSAN_CLANG) return;
    o->race_trusted = 0;
    snprintf(o->race_why, sizeof(o->race_why),
             "%s is not built with clang's -fsanitize=thread, so ThreadSanitizer cannot see its "
             "synchronisation (build it with clang-14 -fsanitize=thread, or use --plugin-src)",
             c->plugin);
}

static void after_run_notes(struct st_sup *S)
{
    struct st_case *cs = &S->cs;
    const struct st_config *c = cs->cfg;
    struct st_report *rep = S->rep;
    rep->signals = atomic_load(&cs->sh->signals);
    rep->io_faults = atomic_load(&cs->sh->io_faults);
    if (cs->sched_rep != NULL) /* the schedules' total is noted by runs.c */
        rep->signals = cs->sched_rep->interrupts;
    else if (cs->exec && (c->faults & (ST_FAULT_SIGNALS | ST_FAULT_SHORTIO)))
        st_exfx_judge(cs, rep, S->o.start_ns != 0);
    else if (c->faults & ST_FAULT_SIGNALS)
        st_report_note(
            rep, "signal storm: %" PRIu64 " SIGALRMs handled by the workers (one every %u us)",
            rep->signals, cs->signal_us);
    if ((c->faults & ST_FAULT_SHORTIO) && !cs->exec) {
        st_report_note(rep, "short-io: %" PRIu64 " short counts, EINTRs and EAGAINs injected",
                       rep->io_faults);
        if (rep->io_faults == 0 && S->o.start_ns)
            snprintf(rep->na, sizeof(rep->na),
                     "--fault short-io injected nothing: no I/O call of the protocol was one the "
                     "kernel could interrupt or cut short (shared memory or message queues; "
                     "records of at most PIPE_BUF bytes on pipes)");
    }
    if (!cs->is_chan && cs->kill_victim && !c->crash_point) {
        uint32_t v = cs->kill_victim - 1;
        char nm[48];
        if (v < S->o.nproc && S->o.reaped[v] && WIFSIGNALED(S->o.status[v]))
            st_report_note(rep, "kill fault: %s killed%s", st_endpoint_name(cs, v, nm, sizeof(nm)),
                           cs->kill_in_cs ? " inside the critical section" : "");
        else
            st_report_note(rep, "kill fault: %s ended before the kill point",
                           st_endpoint_name(cs, v, nm, sizeof(nm)));
    }
}

/* Destroy in the host, then end whatever the protocol left running. */
static void finish_host(struct st_sup *S, int created)
{
    struct st_hostconn *h = &S->host;
    struct st_report *rep = S->rep;
    if (!S->host_started) return;
    if (created && !h->exited) {
        struct st_hmsg m;
        if (st_host_cmd(h, ST_HC_DESTROY) == 0 && host_step(S, "destroy()", ST_HM_DESTROYED, &m)) {
            int st;
            if (st_wait_until(h->pid, &st, st_now_ns() + 2000000000LL, NULL) == 1) {
                h->exited = 1;
                h->status = st;
            }
        }
    }
    if (!h->exited) st_host_cmd(h, ST_HC_QUIT);
    if (!h->exited && st_wait_until(h->pid, &h->status, st_now_ns() + 500000000LL, NULL) == 1)
        h->exited = 1;
    st_host_kill(h);
    /* the endpoints are reaped: every child left is something the protocol forked */
    char who[600] = "";
    size_t n = st_sweep(NULL, 0, SWEEP_GRACE_NS, who, sizeof(who));
    if (n)
        st_report_add(rep, ST_V_LEAK, n,
                      "process%s the protocol started still running after destroy(): %s (killed)",
                      n == 1 ? "" : "es", who);
    st_capture_pump(&h->out, 0);
}

int st_run_once(const struct st_config *c, struct st_report *rep, int verify, uint64_t schedule)
{
    static unsigned case_no;
    struct st_sup *S = calloc(1, sizeof(*S));
    if (S == NULL) {
        st_setup_error(rep, "out of memory");
        return 2;
    }
    S->rep = rep;
    S->setup_ns = (int64_t)((c->setup > 0 ? c->setup : ST_SETUP_MS / 1000.0) * 1e9);
    struct st_case *cs = &S->cs;
    cs->cfg = c;
    cs->verify = verify;
    cs->schedule = schedule;
    snprintf(cs->run_id, sizeof(cs->run_id), "ipcproof-%d-%u", (int)getpid(), ++case_no);
    snprintf(rep->run_id, sizeof(rep->run_id), "%s", cs->run_id);
    judge_race(c, &S->o);
    struct st_snapshot before = {0}, after = {0};
    void *area = NULL;
    size_t area_len = 0, plan_len = (sizeof(struct st_case) + page_size() - 1) & ~(page_size() - 1);
    int created = 0, r;
    struct st_hmsg m;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    /* everything the host and the endpoints inherit is ready before the host is forked */
    cs->seq_cap = c->messages ? c->messages : ST_DURATION_CAP;
    cs->bitmap_words = (size_t)((cs->seq_cap + 63) / 64);
    size_t minsz = c->min_size < ST_HDR_SIZE ? ST_HDR_SIZE : c->min_size;
    size_t maxsz = c->max_size < minsz ? minsz : c->max_size;
    r = st_payload_init(&cs->pl, c->seed, minsz, maxsz > ST_MAX_MSG ? ST_MAX_MSG : maxsz);
    if (r == 0) r = map_results(cs, c, &area, &area_len);
    if (r < 0) {
        st_setup_error(rep, "results area: %s", ipcp_strerror(r));
        goto out;
    }
    S->plan = mmap(NULL, plan_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S->plan == MAP_FAILED) {
        S->plan = NULL;
        st_setup_error(rep, "mmap: %s", strerror(errno));
        goto out;
    }
    if (c->mode == ST_MODE_SCHED) {
        void *m = mmap(NULL, sizeof(struct st_sched_report), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            st_setup_error(rep, "mmap: %s", strerror(errno));
            goto out;
        }
        cs->sched_rep = m;
    }
    st_snapshot_take(&before, rep->run_id);

    /* load */
    struct st_hostargs ha = {.proto = c->proto,
                             .plugin = c->plugin,
                             .instrumented =
                                 c->mode == ST_MODE_SCHED || c->crash_point || c->crash_points,
                             .cs = S->plan};
    r = st_host_start(&S->host, &ha);
    if (r < 0) {
        st_setup_error(rep, "fork: %s", strerror(-r));
        goto out;
    }
    S->host_started = 1;
    r = st_host_await(&S->host, ST_HM_LOADED, &m, st_now_ns() + S->setup_ns, &interrupted);
    if (r == 1 && m.type == ST_HM_LOAD_FAILED) { /* not a verdict: an error (missing file...) */
        st_setup_error(rep, "%s", m.text);
        goto finish;
    }
    if (r == 1 && m.type != ST_HM_LOADED) {
        r = -2;
        snprintf(m.text, sizeof(m.text), "the protocol host answered out of turn");
    }
    if (r != 1) {
        host_failed(S, "loading the plugin (its constructors)", r, &m);
        goto finish;
    }
    int chan = c->kind == ST_KIND_LOCK ? 0 : c->kind == ST_KIND_CHANNEL ? 1 : m.has_chan != 0;
    rep->chan = chan;
    rep->kind_known = 1;
    if ((chan && !m.has_chan) || (!chan && !m.has_lock)) {
        st_setup_error(rep, "%s does not export a %s protocol", c->proto ? c->proto : c->plugin,
                       chan ? "channel" : "lock");
        goto finish;
    }
    snprintf(rep->proto_name, sizeof(rep->proto_name), "%s", chan ? m.chan_name : m.lock_name);
    rep->proto_flags = chan ? m.chan_flags : m.lock_flags;
    if (check_sizes(c, chan, rep) < 0) goto finish;
    if (c->mode != ST_MODE_PROCESS &&
        (rep->proto_flags & (chan ? IPCP_CHAN_PROCESSES : IPCP_LOCK_PROCESSES))) {
        snprintf(rep->na, sizeof(rep->na),
                 "%s declares IPCP_%s_PROCESSES: it works between processes, not between the "
                 "threads of one, and %s mode runs every endpoint as a thread",
                 rep->proto_name, chan ? "CHAN" : "LOCK", st_mode_name(c->mode));
        goto finish;
    }
    if (c->crash_point && !chan && !(rep->proto_flags & IPCP_LOCK_ROBUST)) {
        st_setup_error(rep,
                       "crash points kill a holder inside lock() or unlock(): only a lock that "
                       "claims IPCP_LOCK_ROBUST has to survive that");
        goto finish;
    }
    lay_out(cs, c, chan, rep->proto_flags);
    choose_faults(cs, c, rep);
    if ((c->faults & ST_FAULT_SHORTIO) && !cs->exec && cs->faults_arm == NULL) {
        st_setup_error(rep, "--fault short-io: the interposer libipcproof-faults.so is not loaded");
        goto finish;
    }
    memcpy(S->plan, cs, sizeof(*cs)); /* the host's copy; ours stays out of its reach */

    /* create, spawn */
    if (st_host_cmd(&S->host, chan ? ST_HC_CREATE_CHAN : ST_HC_CREATE_LOCK) < 0) {
        host_failed(S, "create()", -1, &m);
    } else if (host_step(S, "create()", ST_HM_CREATED, &m)) {
        if (m.rc < 0 && c->exec_setup != NULL && m.rc != -ENOTSUP) {
            st_setup_error(rep, "--exec-setup '%s' failed (its output is below)", c->exec_setup);
            rep->create_err = m.rc;
        } else if (m.rc == -ENOTSUP && c->exec_setup != NULL) {
            st_setup_error(rep, "--exec-setup declined this configuration (exit %d): not supported",
                           ST_EXEC_DECLINE);
            rep->create_err = m.rc;
        } else if (m.rc < 0) {
            char eb[64];
            snprintf(eb, sizeof(eb), "%s", ipcp_errname(m.rc));
            st_setup_error(rep, "create() returned %s%s (%s)", strcmp(eb, "E?") ? "-" : "",
                           strcmp(eb, "E?") ? eb : "an unknown code", ipcp_strerror(m.rc));
            if (!strcmp(eb, "E?"))
                snprintf(rep->error + strlen(rep->error), sizeof(rep->error) - strlen(rep->error),
                         ": %d", m.rc);
            rep->create_err = m.rc;
        } else {
            created = 1;
            if (host_step(S, "forking the endpoints", ST_HM_SPAWNED, &m) && adopt(S, &m) == 0)
                st_sup_run_loop(S);
            else {
                atomic_store(&cs->sh->abort_run, 1);
                st_sup_kill_all(S);
                for (uint32_t i = 0; i < S->o.nproc; i++)
                    if (!S->o.reaped[i]) st_kill_reap(S->o.pids[i]);
            }
        }
    }
    if (rep->status != 2 && S->o.nproc > 0) {
        if (cs->sched_rep != NULL)
            st_sched_outcome(cs->sched_rep, cs->schedule, S->o.nproc && !S->o.watchdog_killed, rep);
        st_check_case(cs, &S->o, rep);
        after_run_notes(S);
    }
    if (c->crash_point && cs->kill_victim && cs->sh != NULL) {
        rep->crash_point = c->crash_point;
        rep->crash_not_alone = atomic_load(&cs->sh->quiet_late) != 0;
        uint64_t seen = atomic_load(&cs->slots[cs->kill_victim - 1].crash_seen);
        if (seen)
            rep->crash_points_all = seen; /* it lived: the point is past its operation */
        else if (S->o.killed_by_fault == cs->kill_victim)
            st_report_note(rep, "crash point %" PRIu64 ": %s died there", c->crash_point,
                           st_endpoint_name(cs, cs->kill_victim - 1, (char[48]){0}, 48));
        else if (rep->status == 0 && !rep->nv)
            /* neither dead nor past its operation: it never got to one (a consumer no producer
             * writes to, say), so no point can be tried; --crash-points would count in vain */
            snprintf(rep->na, sizeof(rep->na),
                     "crash point %" PRIu64 ": %s never reached its third operation, so it had "
                     "nowhere to die (another --seed picks another endpoint)",
                     c->crash_point, st_endpoint_name(cs, cs->kill_victim - 1, (char[48]){0}, 48));
    }
    if (cs->sched_rep != NULL && rep->status != 2) {
        if (rep->nv && cs->sched_rep->status != ST_SCHED_DEADLOCK &&
            cs->sched_rep->status != ST_SCHED_LOSTWAKE && cs->sched_rep->status != ST_SCHED_RACE)
            st_symbolize(cs->sched_rep);
        free(rep->sched);
        rep->sched = malloc(sizeof(*rep->sched));
        if (rep->sched != NULL) memcpy(rep->sched, cs->sched_rep, sizeof(*rep->sched));
        rep->schedule = schedule;
    }
finish:
    finish_host(S, created);
    st_snapshot_take(&after, rep->run_id);
    {
        char lbuf[900] = "";
        size_t foreign = 0;
        size_t n = st_snapshot_diff(&before, &after, rep->run_id, rep->sandboxed, lbuf,
                                    sizeof(lbuf), &foreign);
        if (n) {
            int st = rep->status;
            st_report_add(rep, ST_V_LEAK, n, "left behind after destroy(): %s (removed)", lbuf);
            if (st == 2) rep->status = 2;
            st_snapshot_remove(&before, &after, rep->run_id, rep->sandboxed);
        }
        if (foreign)
            st_report_note(rep,
                           "%zu new IPC object%s not named with this run's id appeared meanwhile "
                           "(another program's?): not counted as a leak",
                           foreign, foreign == 1 ? "" : "s");
    }
    st_snapshot_free(&before);
    st_snapshot_free(&after);
    if (S->host_started) {
        uint64_t dropped = 0;
        free(rep->output);
        rep->output = st_capture_text(&S->host.out, &dropped);
        rep->output_dropped = dropped;
        attach_reports(rep);
        st_host_fini(&S->host);
    }
out:
    if (cs->sched_rep != NULL) munmap(cs->sched_rep, sizeof(struct st_sched_report));
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (S->plan != NULL) munmap(S->plan, plan_len);
    if (area != NULL) munmap(area, area_len);
    st_payload_fini(&cs->pl);
    free(S);
    if (rep->status == 0 && rep->nv) rep->status = 1;
    return rep->status;
}

void st_report_free(struct st_report *rep)
{
    free(rep->output);
    rep->output = NULL;
    free(rep->sched);
    rep->sched = NULL;
    free(rep->dfs_path);
    rep->dfs_path = NULL;
}

int st_interrupted(void)
{
    return interrupted;
}

/* report.c - the result model of one stress case, its human summary and its JSON report. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "stress.h"

_Static_assert(ST_SCHED_CHOICES == 8192, "the dfs line of st_report_print names it");

static const char *const vkind_names[ST_V_NKINDS] = {
    [ST_V_LOSS] = "loss",
    [ST_V_DUPLICATE] = "duplicate",
    [ST_V_REORDER] = "reorder",
    [ST_V_TORN] = "torn",
    [ST_V_EXCLUSION] = "exclusion",
    [ST_V_DEADLOCK] = "deadlock",
    [ST_V_CRASH] = "crash",
    [ST_V_RACE] = "race",
    [ST_V_LEAK] = "leak",
    [ST_V_ERROR] = "error",
    [ST_V_STARVATION] = "starvation",
};

const char *st_vkind_name(int kind)
{
    return kind >= 0 && kind < ST_V_NKINDS ? vkind_names[kind] : "?";
}

static const char *const phase_names[ST_PH_NPHASES] = {
    [ST_PH_START] = "start",
    [ST_PH_OPEN] = "open()",
    [ST_PH_BARRIER] = "start barrier",
    [ST_PH_SEND] = "send()",
    [ST_PH_RECV] = "recv()",
    [ST_PH_LOCK] = "lock()",
    [ST_PH_CS] = "critical section",
    [ST_PH_UNLOCK] = "unlock()",
    [ST_PH_CLOSE] = "close()",
    [ST_PH_DONE] = "done",
    [ST_PH_QUIET] = "a wait for the crash-point victim",
};

const char *st_phase_name(int phase)
{
    return phase >= 0 && phase < ST_PH_NPHASES ? phase_names[phase] : "?";
}

void st_report_add(struct st_report *r, int kind, uint64_t count, const char *fmt, ...)
{
    if (r->status < 1) r->status = 1;
    for (int i = 0; i < r->nv; i++) {
        if (r->v[i].kind == kind) { /* one entry per kind: add up, keep the first detail */
            r->v[i].count += count;
            return;
        }
    }
    if (r->nv >= ST_MAX_VIOLATIONS) return;
    struct st_violation *v = &r->v[r->nv++];
    v->kind = kind;
    v->count = count;
    v->frames[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
    va_end(ap);
}

void st_report_note(struct st_report *r, const char *fmt, ...)
{
    size_t len = strlen(r->notes);
    if (len + 4 >= sizeof(r->notes)) return;
    if (len) {
        strcpy(r->notes + len, "; ");
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes + len, sizeof(r->notes) - len, fmt, ap);
    va_end(ap);
}

static const char *role_word(int role)
{
    return role == ST_ROLE_PRODUCER ? "producer" : role == ST_ROLE_CONSUMER ? "consumer" : "worker";
}

/* The last scheduling decisions of a failing schedule. */
static void print_trace(FILE *o, const struct st_report *r, unsigned max)
{
    const struct st_sched_report *sr = r->sched;
    uint64_t n = sr->nevents < ST_SCHED_TRACE ? sr->nevents : ST_SCHED_TRACE;
    if (n > max) n = max;
    fprintf(o, "  the last %llu of %llu operations of schedule %llu (trace %016llx):\n",
            (unsigned long long)n, (unsigned long long)sr->nevents, (unsigned long long)r->schedule,
            (unsigned long long)sr->trace_hash);
    for (uint64_t i = sr->nevents - n; i < sr->nevents; i++) {
        char line[256];
        st_sched_event_line(sr, &sr->trace[i % ST_SCHED_TRACE], line, sizeof(line));
        fprintf(o, "    %s\n", line);
    }
}

/* The protocol's own output, for a failing case only. */
static void print_output(FILE *o, const struct st_report *r)
{
    if (r->output == NULL || r->output[0] == '\0') return;
    fprintf(o, "output of the protocol's processes (last %zu bytes%s):\n", strlen(r->output),
            r->output_dropped ? ", the rest was dropped" : "");
    const char *p = r->output;
    while (*p) {
        size_t n = strcspn(p, "\n");
        fprintf(o, "  | %.*s\n", (int)n, p);
        p += n;
        if (*p) p++;
    }
}

static const char *human(double v, char *buf, size_t cap)
{
    if (v >= 1e9)
        snprintf(buf, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, cap, "%.1fk", v / 1e3);
    else
        snprintf(buf, cap, "%.0f", v);
    return buf;
}

static const char *dur(uint64_t ns, char *buf, size_t cap)
{
    if (ns >= 1000000000ull)
        snprintf(buf, cap, "%.2f s", (double)ns / 1e9);
    else if (ns >= 1000000ull)
        snprintf(buf, cap, "%.2f ms", (double)ns / 1e6);
    else if (ns >= 1000ull)
        snprintf(buf, cap, "%.1f us", (double)ns / 1e3);
    else
        snprintf(buf, cap, "%" PRIu64 " ns", ns);
    return buf;
}

static void faults_str(unsigned f, char *buf, size_t cap)
{
    (void)st_faults_str(f, buf, cap);
}

void st_report_print(const struct st_config *c, const struct st_report *r, const char *repro)
{
    FILE *o = stdout;
    char a[32], b[32], d1[32], d2[32], d3[32], d4[32], d5[32], fl[64];
    if (r->status == 2) {
        o = stderr; /* a setup error is named on stderr, as every exit status 2 */
        fprintf(o, "ipcproof stress: setup error: %s\n", r->error);
        for (int i = 0; i < r->nv; i++)
            fprintf(o, "  %s (%" PRIu64 "): %s\n", st_vkind_name(r->v[i].kind), r->v[i].count,
                    r->v[i].detail);
        print_output(o, r);
        return;
    }
    faults_str(c->faults, fl, sizeof(fl));
    if (r->chan)
        fprintf(o,
                "ipcproof stress: %s (channel%s) | %s mode | %" PRIu32 " producer%s, %" PRIu32
                " consumer%s | %zu..%zu bytes | faults %s | seed %" PRIu64 "\n",
                r->proto_name, r->proto_flags & IPCP_CHAN_FIFO ? ", FIFO" : "",
                st_mode_name(c->mode), c->producers, c->producers == 1 ? "" : "s", c->consumers,
                c->consumers == 1 ? "" : "s", c->min_size, c->max_size, fl, c->seed);
    else
        fprintf(o,
                "ipcproof stress: %s (lock%s) | %s mode | %" PRIu32 " workers | faults %s | seed "
                "%" PRIu64 "\n",
                r->proto_name,
                r->proto_flags & IPCP_LOCK_ROBUST
                    ? (r->proto_flags & IPCP_LOCK_FAIR ? ", robust, fair" : ", robust")
                    : (r->proto_flags & IPCP_LOCK_FAIR ? ", fair" : ""),
                st_mode_name(c->mode), c->workers, fl, c->seed);
    if (c->mode == ST_MODE_SCHED) /* the counts are the last schedule's; its time is virtual */
        fprintf(o,
                "  last schedule: %" PRIu64 " %s, %" PRIu64 " %s (virtual time: no rates); %" PRIu64
                " retried calls\n",
                r->chan ? r->sent : r->received, r->chan ? "sent" : "acquisitions",
                r->chan ? r->received : r->counter, r->chan ? "received" : "counter", r->retries);
    else if (r->chan)
        fprintf(o,
                "  sent %" PRIu64 ", received %" PRIu64 " in %.3f s: %s msgs/s, %s B/s; %" PRIu64
                " retried calls\n",
                r->sent, r->received, r->seconds, human(r->msgs_per_s, a, sizeof(a)),
                human((double)r->bytes / r->seconds, b, sizeof(b)), r->retries);
    else
        fprintf(o,
                "  %" PRIu64 " acquisitions in %.3f s: %s /s; counter %" PRIu64 "; %" PRIu64
                " recoveries; %" PRIu64 " retried calls\n",
                r->received, r->seconds, human(r->msgs_per_s, a, sizeof(a)), r->counter,
                r->recovered, r->retries);
    fprintf(o, "  %s%s: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
            r->chan ? "latency send->recv" : "lock wait",
            c->mode == ST_MODE_SCHED ? " (virtual)" : "", dur(stats_hist_pct(r->hist, 50), d1, 32),
            dur(stats_hist_pct(r->hist, 90), d2, 32), dur(stats_hist_pct(r->hist, 99), d3, 32),
            dur(stats_hist_pct(r->hist, 99.9), d4, 32), dur(stats_hist_pct(r->hist, 100), d5, 32));
    if (r->has_overhead)
        fprintf(o, "  verification overhead: verified %s msgs/s, unverified %s msgs/s: %.1f %%\n",
                human(r->verified_mps, a, sizeof(a)), human(r->unverified_mps, b, sizeof(b)),
                r->unverified_mps > 0 ? 100.0 * r->verified_mps / r->unverified_mps : 0.0);
    if (r->notes[0]) fprintf(o, "  notes: %s\n", r->notes);
    if (!r->sandboxed) fprintf(o, "  leak check: /dev/shm diff by name (no private namespace)\n");
    if (c->opt && *c->opt) fprintf(o, "  options: %s\n", c->opt);
    if (c->mode == ST_MODE_SCHED && r->sched != NULL) {
        char shard[40] = "";
        if (c->nshards > 1) snprintf(shard, sizeof(shard), ", shard %u/%u", c->shard, c->nshards);
        fprintf(o,
                "  sched: %s, %s%s%s, %llu schedule%s run (%llu scheduling points); the last, "
                "#%llu: %llu points, %llu switches, trace %016llx\n",
                st_strategy_name(c->strategy), c->memory_sc ? "sc" : "tso",
                c->no_races ? ", no race detection" : "", shard,
                (unsigned long long)r->schedules_run, r->schedules_run == 1 ? "" : "s",
                (unsigned long long)r->sched_steps_total, (unsigned long long)r->schedule,
                (unsigned long long)r->sched->steps, (unsigned long long)r->sched->switches,
                (unsigned long long)r->sched->trace_hash);
        if (c->strategy == ST_SCHED_DFS && c->choices_arg == NULL) {
            if (r->dfs_exhausted)
                fprintf(o,
                        "  dfs: every schedule%s with at most %u preemption%s ran (%llu): none "
                        "is left for this workload\n",
                        c->nshards > 1 ? " of this shard" : "", c->preemptions,
                        c->preemptions == 1 ? "" : "s", (unsigned long long)r->dfs_distinct);
            else if (r->nv == 0 && r->status != 2)
                fprintf(o, "  dfs: NOT exhaustive: %s%s\n",
                        r->dfs_diverged    ? "the runs are not deterministic (see notes)"
                        : r->dfs_truncated ? "schedules have more branching points than dfs "
                                             "explores (8192): fewer --messages or --workers"
                                           : "--schedules ran out before the tree did",
                        r->dfs_complete >= 0 && !r->dfs_diverged && !r->dfs_truncated
                            ? (r->dfs_complete == 0 ? " (every schedule without a preemption ran)"
                                                    : " (the passes of fewer preemptions are "
                                                      "complete)")
                            : "");
        }
        if (c->strategy == ST_SCHED_PCT && r->sched_k && c->depth >= 1) {
            /* PCT's guarantee: one schedule finds a given depth-d bug with p >= 1/(n k^(d-1)) */
            double p = 1.0 / r->sched->nthreads;
            for (unsigned d = 1; d < c->depth; d++)
                p /= (double)r->sched_k;
            double all = 1.0;
            for (uint64_t i = 0; i < r->schedules_run && all > 1e-300; i++)
                all *= 1.0 - p;
            fprintf(o,
                    "  pct depth %u, %u threads, k %llu: a depth-%u bug is found by one schedule "
                    "with probability >= %.3g, by these %llu with >= %.3g\n",
                    c->depth, r->sched->nthreads, (unsigned long long)r->sched_k, c->depth, p,
                    (unsigned long long)r->schedules_run, 1.0 - all);
        }
    }
    if (r->nv == 0 && r->na[0]) {
        fprintf(o, "N/A: %s\n", r->na);
        return;
    }
    if (r->nv == 0) {
        fprintf(o, "PASS: no violation%s\n", c->no_verify ? " (--no-verify: checks were off)" : "");
        return;
    }
    fprintf(o, "  per endpoint:");
    for (uint32_t i = 0; i < r->nep; i++)
        fprintf(o, "%s %s %" PRIu32 ": %" PRIu64 " ops, %" PRIu64 " retried", i ? ";" : "",
                role_word(r->ep[i].role), r->ep[i].index, r->ep[i].ops, r->ep[i].retries);
    fprintf(o, "\n");
    fprintf(o, "FAIL: %d kind%s of violation\n", r->nv, r->nv == 1 ? "" : "s");
    for (int i = 0; i < r->nv; i++) {
        fprintf(o, "  %s (%" PRIu64 "): %s\n", st_vkind_name(r->v[i].kind), r->v[i].count,
                r->v[i].detail);
        const char *f = r->v[i].frames;
        while (*f) {
            size_t n = strcspn(f, "\n");
            fprintf(o, "      at %.*s\n", (int)n, f);
            f += n;
            if (*f) f++;
        }
    }
    if (r->sched != NULL && r->sched->nevents) print_trace(o, r, 40);
    print_output(o, r);
    fprintf(o, "rerun: %s\n", repro);
}

json_t *st_report_json_obj(const struct st_config *c, const struct st_report *r, const char *repro)
{
    json_t *root = json_object();
    const char *result = r->status == 2 ? "error" : r->nv ? "fail" : r->na[0] ? "n/a" : "pass";
    json_object_set_new(root, "result", json_string(result));
    json_object_set_new(root, "kind", json_string(r->chan ? "channel" : "lock"));
    json_object_set_new(root, "mode", json_string(st_mode_name(c->mode)));
    json_object_set_new(root, "seed", json_integer((json_int_t)c->seed));
    json_object_set_new(root, "protocol", json_string(r->proto_name));
    if (c->plugin) json_object_set_new(root, "plugin", json_string(c->plugin));
    json_object_set_new(root, "run_id", json_string(r->run_id));
    if (r->status == 2) {
        json_object_set_new(root, "error", json_string(r->error));
        if (r->create_err) json_object_set_new(root, "create_errno", json_integer(-r->create_err));
    }
    json_t *cfg = json_object();
    json_object_set_new(cfg, "producers", json_integer(c->producers));
    json_object_set_new(cfg, "consumers", json_integer(c->consumers));
    json_object_set_new(cfg, "workers", json_integer(c->workers));
    json_object_set_new(cfg, "messages", json_integer((json_int_t)c->messages));
    json_object_set_new(cfg, "duration", json_real(c->duration));
    json_object_set_new(cfg, "min_size", json_integer((json_int_t)c->min_size));
    json_object_set_new(cfg, "max_size", json_integer((json_int_t)c->max_size));
    char fl[64];
    faults_str(c->faults, fl, sizeof(fl));
    json_object_set_new(cfg, "faults", json_string(fl));
    json_object_set_new(cfg, "options", json_string(c->opt ? c->opt : ""));
    json_object_set_new(cfg, "verify", json_boolean(!c->no_verify));
    json_object_set_new(root, "config", cfg);

    json_t *vs = json_array();
    for (int i = 0; i < r->nv; i++) {
        json_t *v = json_object();
        json_object_set_new(v, "kind", json_string(st_vkind_name(r->v[i].kind)));
        json_object_set_new(v, "count", json_integer((json_int_t)r->v[i].count));
        json_object_set_new(v, "detail", json_string(r->v[i].detail));
        if (r->v[i].frames[0]) {
            json_t *fr = json_array();
            const char *f = r->v[i].frames;
            while (*f) {
                size_t n = strcspn(f, "\n");
                json_array_append_new(fr, json_stringn(f, n));
                f += n;
                if (*f) f++;
            }
            json_object_set_new(v, "frames", fr);
        }
        json_array_append_new(vs, v);
    }
    json_object_set_new(root, "violations", vs);

    json_t *st = json_object();
    json_object_set_new(st, "messages_sent", json_integer((json_int_t)r->sent));
    json_object_set_new(st, "messages_received", json_integer((json_int_t)r->received));
    json_object_set_new(st, "seconds", json_real(r->seconds));
    json_object_set_new(st, "msgs_per_s", json_real(r->msgs_per_s));
    json_object_set_new(st, "bytes_received", json_integer((json_int_t)r->bytes));
    json_object_set_new(st, "retries", json_integer((json_int_t)r->retries));
    json_t *lat = json_object();
    json_object_set_new(lat, "p50", json_integer((json_int_t)stats_hist_pct(r->hist, 50)));
    json_object_set_new(lat, "p90", json_integer((json_int_t)stats_hist_pct(r->hist, 90)));
    json_object_set_new(lat, "p99", json_integer((json_int_t)stats_hist_pct(r->hist, 99)));
    json_object_set_new(lat, "p999", json_integer((json_int_t)stats_hist_pct(r->hist, 99.9)));
    json_object_set_new(lat, "max", json_integer((json_int_t)stats_hist_pct(r->hist, 100)));
    json_object_set_new(st, r->chan ? "latency_ns" : "lock_wait_ns", lat);
    if (!r->chan) {
        json_object_set_new(st, "acquisitions", json_integer((json_int_t)r->received));
        json_object_set_new(st, "counter", json_integer((json_int_t)r->counter));
        json_object_set_new(st, "recoveries", json_integer((json_int_t)r->recovered));
    }
    if (r->has_overhead) {
        json_object_set_new(st, "verified_msgs_per_s", json_real(r->verified_mps));
        json_object_set_new(st, "unverified_msgs_per_s", json_real(r->unverified_mps));
        json_object_set_new(
            st, "verified_ratio",
            json_real(r->unverified_mps > 0 ? r->verified_mps / r->unverified_mps : 0.0));
    }
    json_t *eps = json_array();
    for (uint32_t i = 0; i < r->nep; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "role", json_string(role_word(r->ep[i].role)));
        json_object_set_new(e, "index", json_integer(r->ep[i].index));
        json_object_set_new(e, "ops", json_integer((json_int_t)r->ep[i].ops));
        json_object_set_new(e, "retries", json_integer((json_int_t)r->ep[i].retries));
        json_object_set_new(e, "timeouts", json_integer((json_int_t)r->ep[i].timeouts));
        json_object_set_new(e, "max_wait_s", json_real(r->ep[i].max_wait_s));
        if (r->ep[i].cpu_wait_s >= 0)
            json_object_set_new(e, "cpu_wait_s", json_real(r->ep[i].cpu_wait_s));
        json_array_append_new(eps, e);
    }
    json_object_set_new(st, "endpoints", eps);
    json_object_set_new(root, "stats", st);
    if (c->mode == ST_MODE_SCHED && r->sched != NULL) {
        const struct st_sched_report *sr = r->sched;
        json_t *sj = json_object();
        json_object_set_new(sj, "strategy", json_string(st_strategy_name(c->strategy)));
        if (c->nshards > 1) {
            json_object_set_new(sj, "shard", json_integer(c->shard));
            json_object_set_new(sj, "shards", json_integer(c->nshards));
        }
        if (c->strategy == ST_SCHED_DFS) {
            json_object_set_new(sj, "preemptions", json_integer(c->preemptions));
            json_object_set_new(sj, "exhausted", json_boolean(r->dfs_exhausted));
            json_object_set_new(sj, "complete_bound", json_integer(r->dfs_complete));
            json_object_set_new(sj, "distinct", json_integer((json_int_t)r->dfs_distinct));
            if (r->dfs_path) json_object_set_new(sj, "choices", json_string(r->dfs_path));
        }
        json_object_set_new(sj, "depth", json_integer(c->depth));
        json_object_set_new(sj, "memory", json_string(c->memory_sc ? "sc" : "tso"));
        json_object_set_new(sj, "races", json_boolean(!c->no_races));
        json_object_set_new(sj, "race_checked_accesses", json_integer((json_int_t)sr->accesses));
        json_object_set_new(sj, "schedules_run", json_integer((json_int_t)r->schedules_run));
        json_object_set_new(sj, "schedule", json_integer((json_int_t)r->schedule));
        json_object_set_new(sj, "steps", json_integer((json_int_t)sr->steps));
        json_object_set_new(sj, "steps_total", json_integer((json_int_t)r->sched_steps_total));
        json_object_set_new(sj, "switches", json_integer((json_int_t)sr->switches));
        if (r->minimised) {
            json_t *mj = json_object();
            json_object_set_new(mj, "from_preemptions", json_integer(r->min_from_preemptions));
            json_object_set_new(mj, "from_messages",
                                json_integer((json_int_t)r->min_from_messages));
            json_object_set_new(mj, "preemptions", json_integer(r->min_preemptions));
            json_object_set_new(mj, "messages", json_integer((json_int_t)r->min_messages));
            json_object_set_new(mj, "runs", json_integer((json_int_t)r->min_runs));
            json_object_set_new(sj, "minimised", mj);
        }
        if (c->faults & ST_FAULT_SIGNALS) { /* the reported schedule's, and all of them */
            json_object_set_new(sj, "signals", json_integer((json_int_t)sr->interrupts));
            json_object_set_new(sj, "signals_total", json_integer((json_int_t)r->signals));
        }
        char h[24];
        snprintf(h, sizeof(h), "%016llx", (unsigned long long)sr->trace_hash);
        json_object_set_new(sj, "trace_hash", json_string(h));
        if (r->nv || r->status == 2) {
            json_t *tr = json_array();
            uint64_t n = sr->nevents < ST_SCHED_TRACE ? sr->nevents : ST_SCHED_TRACE;
            for (uint64_t i = sr->nevents - n; i < sr->nevents; i++) {
                char line[256];
                st_sched_event_line(sr, &sr->trace[i % ST_SCHED_TRACE], line, sizeof(line));
                json_array_append_new(tr, json_string(line));
            }
            json_object_set_new(sj, "trace", tr);
        }
        json_object_set_new(root, "sched", sj);
    }
    if (r->na[0]) json_object_set_new(root, "not_applicable", json_string(r->na));
    if (r->crash_point) {
        json_object_set_new(root, "crash_point", json_integer((json_int_t)r->crash_point));
        if (r->crash_points_all)
            json_object_set_new(root, "crash_points_in_operation",
                                json_integer((json_int_t)r->crash_points_all));
    }
    if (r->setup_failure[0])
        json_object_set_new(root, "setup_failure", json_string(r->setup_failure));
    if (r->output && r->output[0] && (r->status == 2 || r->nv)) {
        json_object_set_new(root, "output", json_string(r->output));
        json_object_set_new(root, "output_dropped_bytes",
                            json_integer((json_int_t)r->output_dropped));
    }
    json_object_set_new(root, "sandboxed", json_boolean(r->sandboxed));
    if (r->notes[0]) json_object_set_new(root, "notes", json_string(r->notes));
    json_object_set_new(root, "repro", json_string(repro));
    return root;
}

int st_report_json(const struct st_config *c, const struct st_report *r, const char *repro,
                   FILE *out)
{
    json_t *root = st_report_json_obj(c, r, repro);
    int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(root);
    if (rc != 0 || fflush(out) != 0) {
        fprintf(stderr, "ipcproof: cannot write the --json report\n");
        return -1;
    }
    return 0;
}

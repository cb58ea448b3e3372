/* report.c - the human summary and the JSON report of one stress case. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "stress.h"

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
    snprintf(buf, cap, "%s%s%s%s", f & ST_FAULT_KILL ? "kill," : "",
             f & ST_FAULT_SIGNALS ? "signals," : "", f & ST_FAULT_SHORTIO ? "short-io," : "",
             f ? "" : "none");
    size_t n = strlen(buf);
    if (n && buf[n - 1] == ',') buf[n - 1] = '\0';
}

void st_report_print(const struct st_config *c, const struct st_report *r, const char *repro)
{
    FILE *o = stdout;
    char a[32], b[32], d1[32], d2[32], d3[32], d4[32], d5[32], fl[64];
    if (r->status == 2) {
        fprintf(o, "ipcproof stress: setup error: %s\n", r->error);
        for (int i = 0; i < r->nv; i++)
            fprintf(o, "  %s (%" PRIu64 "): %s\n", st_vkind_name(r->v[i].kind), r->v[i].count,
                    r->v[i].detail);
        fprintf(o, "rerun: %s\n", repro);
        return;
    }
    faults_str(c->faults, fl, sizeof(fl));
    if (r->chan)
        fprintf(o,
                "ipcproof stress: %s (channel%s) | %s mode | %" PRIu32 " producer%s, %" PRIu32
                " consumer%s | %zu..%zu bytes | faults %s | seed %" PRIu64 "\n",
                r->proto_name, r->proto_flags & IPCP_CHAN_FIFO ? ", FIFO" : "",
                c->mode == ST_MODE_THREAD ? "thread" : "process", c->producers,
                c->producers == 1 ? "" : "s", c->consumers, c->consumers == 1 ? "" : "s",
                c->min_size, c->max_size, fl, c->seed);
    else
        fprintf(o,
                "ipcproof stress: %s (lock%s) | %s mode | %" PRIu32 " workers | faults %s | seed "
                "%" PRIu64 "\n",
                r->proto_name, r->proto_flags & IPCP_LOCK_ROBUST ? ", robust" : "",
                c->mode == ST_MODE_THREAD ? "thread" : "process", c->workers, fl, c->seed);
    if (r->chan)
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
    fprintf(o, "  %s: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
            r->chan ? "latency send->recv" : "lock wait", dur(st_hist_pct(r->hist, 50), d1, 32),
            dur(st_hist_pct(r->hist, 90), d2, 32), dur(st_hist_pct(r->hist, 99), d3, 32),
            dur(st_hist_pct(r->hist, 99.9), d4, 32), dur(st_hist_pct(r->hist, 100), d5, 32));
    if (r->has_overhead)
        fprintf(o, "  verification overhead: verified %s msgs/s, unverified %s msgs/s: %.1f %%\n",
                human(r->verified_mps, a, sizeof(a)), human(r->unverified_mps, b, sizeof(b)),
                r->unverified_mps > 0 ? 100.0 * r->verified_mps / r->unverified_mps : 0.0);
    if (r->notes[0]) fprintf(o, "  notes: %s\n", r->notes);
    if (!r->sandboxed) fprintf(o, "  leak check: /dev/shm diff by name (no private namespace)\n");
    if (r->nv == 0) {
        fprintf(o, "PASS: no violation%s\n", c->no_verify ? " (--no-verify: checks were off)" : "");
        return;
    }
    fprintf(o, "FAIL: %d kind%s of violation\n", r->nv, r->nv == 1 ? "" : "s");
    for (int i = 0; i < r->nv; i++)
        fprintf(o, "  %s (%" PRIu64 "): %s\n", st_vkind_name(r->v[i].kind), r->v[i].count,
                r->v[i].detail);
    fprintf(o, "rerun: %s\n", repro);
}

int st_report_json(const struct st_config *c, const struct st_report *r, const char *repro,
                   const char *path)
{
    json_t *root = json_object();
    const char *result = r->status == 2 ? "error" : r->nv ? "fail" : "pass";
    json_object_set_new(root, "result", json_string(result));
    json_object_set_new(root, "kind", json_string(r->chan ? "channel" : "lock"));
    json_object_set_new(root, "mode",
                        json_string(c->mode == ST_MODE_THREAD ? "thread" : "process"));
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
    json_object_set_new(lat, "p50", json_integer((json_int_t)st_hist_pct(r->hist, 50)));
    json_object_set_new(lat, "p90", json_integer((json_int_t)st_hist_pct(r->hist, 90)));
    json_object_set_new(lat, "p99", json_integer((json_int_t)st_hist_pct(r->hist, 99)));
    json_object_set_new(lat, "p999", json_integer((json_int_t)st_hist_pct(r->hist, 99.9)));
    json_object_set_new(lat, "max", json_integer((json_int_t)st_hist_pct(r->hist, 100)));
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
    json_object_set_new(root, "stats", st);
    json_object_set_new(root, "sandboxed", json_boolean(r->sandboxed));
    if (r->notes[0]) json_object_set_new(root, "notes", json_string(r->notes));
    json_object_set_new(root, "repro", json_string(repro));
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(root);
    if (rc != 0) {
        fprintf(stderr, "ipcproof: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* vbattery.c - validate's battery: the table of cases, the rounds that spend the budget, the
 * verdict table and the JSON report. A new case is one line of `battery[]`. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sarif.h"
#include "spawn.h"
#include "validate.h"

/* case flags */
#define VC_CHAN    0x01u
#define VC_LOCK    0x02u
#define VC_THREAD  0x04u
#define VC_MULTI   0x08u   /* about several endpoints: no 1:1 fallback */
#define VC_ROBUST  0x10u   /* only for a lock that claims IPCP_LOCK_ROBUST */
#define VC_FRAGILE 0x20u   /* only for a lock that does not */
#define VC_SIGNALS 0x40u   /* a signal storm: denser in every round */
#define VC_KILL    0x80u   /* count the kills and how many went wrong */
#define VC_SCHED   0x100u  /* --mode sched: schedules, not seconds */
#define VC_DFS     0x400u  /* with --strategy dfs: every schedule within the bound, in turn */
#define VC_CRASHPT 0x200u  /* --crash-points: the runtime of sched mode, in process mode */
#define VC_SHORTIO 0x800u  /* --fault short-io: the interposer in the endpoints' process */
#define VC_SIZES   0x1000u /* about message sizes: no smaller-size fallback */
/* what exec endpoints (programs, not a plugin in ipcproof's workers) cannot be put through:
 * short-io and signals reach them through the interposer (execfx.h), the rest needs the code in
 * ipcproof's process */
#define VC_NOT_EXEC (VC_THREAD | VC_SCHED | VC_CRASHPT)

struct vdef {
    const char *name;
    unsigned flags;
    const char *args; /* stress arguments, blank-separated */
};

static const struct vdef battery[] = {
    {"1 producer, 1 consumer", VC_CHAN, "--producers 1 --consumers 1 --max-size 512"},
    {"4 producers, 1 consumer", VC_CHAN | VC_MULTI, "--producers 4 --consumers 1"},
    {"2 producers, 2 consumers", VC_CHAN | VC_MULTI, "--producers 2 --consumers 2"},
    {"sizes above PIPE_BUF", VC_CHAN | VC_SIZES,
     "--producers 4 --consumers 1 --min-size 4097 --max-size 32768"},
    {"sizes above capacity", VC_CHAN | VC_SIZES,
     "--producers 1 --consumers 1 --capacity 4096 --min-size 2048 --max-size 16384"},
    {"slow consumer", VC_CHAN, "--producers 2 --consumers 1 --consumer-delay 200 --max-size 4096"},
    {"slow producers", VC_CHAN, "--producers 2 --consumers 1 --producer-delay 200 --max-size 4096"},
    {"kill: anywhere", VC_CHAN | VC_KILL,
     "--producers 2 --consumers 1 --fault kill --max-size 4096"},
    {"kill: 4 producers, anywhere", VC_CHAN | VC_MULTI | VC_KILL,
     "--producers 4 --consumers 1 --fault kill --max-size 4096"},
    {"kill: a producer blocked on a full channel", VC_CHAN | VC_KILL,
     "--producers 1 --consumers 1 --consumer-delay 300 --fault kill --kill-point send-blocked"},
    {"kill: 4 producers, one blocked on a full channel", VC_CHAN | VC_MULTI | VC_KILL,
     "--producers 4 --consumers 1 --consumer-delay 300 --fault kill --kill-point send-blocked"},
    {"kill: a consumer waiting on an empty channel", VC_CHAN | VC_MULTI | VC_KILL,
     "--producers 1 --consumers 2 --producer-delay 300 --fault kill --kill-point recv-blocked"},
    /* a death at every scheduling point of one operation, not only where --fault kill lands:
     * between a slot claimed and the slot published, say (docs/sched.md, crash points). Bounded
     * by time: messages for a dead consumer may wait for ever (need not be rerouted). The other
     * endpoints must still be at work when the victim dies (its third operation): with a small
     * quota, a victim that started late found the other producer done, and a cell it left
     * claimed blocked nothing */
    {"crash: a producer dies at every point of send()", VC_CHAN | VC_CRASHPT,
     "--producers 2 --consumers 1 --crash-points --crash-role producer --messages 20000 "
     "--duration 0.5"},
    {"crash: a consumer dies at every point of recv()", VC_CHAN | VC_CRASHPT,
     "--producers 2 --consumers 2 --crash-points --crash-role consumer --messages 20000 "
     "--duration 0.5"},
    {"stop: a peer paused a while", VC_CHAN,
     "--producers 2 --consumers 1 --fault stop --max-size 4096"},
    {"fault signals", VC_CHAN | VC_SIGNALS,
     "--producers 2 --consumers 1 --fault signals --max-size 8192"},
    {"fault short-io", VC_CHAN | VC_SHORTIO,
     "--producers 2 --consumers 1 --fault short-io --max-size 8192"},
    {"threads: 1 producer, 1 consumer", VC_CHAN | VC_THREAD, "--producers 1 --consumers 1"},
    {"threads: 4 producers, 1 consumer", VC_CHAN | VC_THREAD | VC_MULTI,
     "--producers 4 --consumers 1 --max-size 8192"},
    {"threads: 2 producers, 2 consumers", VC_CHAN | VC_THREAD | VC_MULTI,
     "--producers 2 --consumers 2"},
    {"threads: fault signals", VC_CHAN | VC_THREAD | VC_SIGNALS,
     "--producers 2 --consumers 1 --fault signals --max-size 4096"},
    {"sched: 1 producer, 1 consumer", VC_CHAN | VC_SCHED, "--producers 1 --consumers 1"},
    {"sched: 2 producers, 1 consumer", VC_CHAN | VC_SCHED | VC_MULTI,
     "--producers 2 --consumers 1"},
    {"sched: 2 producers, 2 consumers, small capacity", VC_CHAN | VC_SCHED | VC_MULTI,
     "--producers 2 --consumers 2 --capacity 2048 --max-size 512"},
    {"sched: fault signals", VC_CHAN | VC_SCHED | VC_SIGNALS,
     "--producers 2 --consumers 1 --fault signals"},
    {"dfs: 1 producer, 1 consumer, 3 messages, <= 2 preemptions", VC_CHAN | VC_SCHED | VC_DFS,
     "--producers 1 --consumers 1 --messages 3 --preemptions 2"},
    {"lock: 2 workers", VC_LOCK, "--workers 2"},
    {"lock: 4 workers", VC_LOCK, "--workers 4"},
    {"lock: 8 workers", VC_LOCK, "--workers 8"},
    {"lock threads: 2 workers", VC_LOCK | VC_THREAD, "--workers 2"},
    {"lock threads: 4 workers", VC_LOCK | VC_THREAD, "--workers 4"},
    {"lock sched: 2 workers", VC_LOCK | VC_SCHED, "--workers 2"},
    {"lock sched: 3 workers", VC_LOCK | VC_SCHED, "--workers 3"},
    {"lock sched: fault signals", VC_LOCK | VC_SCHED | VC_SIGNALS, "--workers 3 --fault signals"},
    {"lock dfs: 2 workers, 3 each, <= 2 preemptions", VC_LOCK | VC_SCHED | VC_DFS,
     "--workers 2 --messages 3 --preemptions 2"},
    /* a robust lock loses a holder inside its critical section and must hand the lock on; any
     * other lock loses a contender outside it, which it must survive */
    {"lock: kill of a holder", VC_LOCK | VC_ROBUST | VC_KILL, "--workers 4 --fault kill"},
    {"lock: kill of a holder, 2 workers", VC_LOCK | VC_ROBUST | VC_KILL,
     "--workers 2 --fault kill"},
    {"lock: kill of a non-holder", VC_LOCK | VC_FRAGILE | VC_KILL, "--workers 4 --fault kill"},
    {"lock: a holder dies at every point of lock()/unlock()", VC_LOCK | VC_ROBUST | VC_CRASHPT,
     "--workers 3 --crash-points --messages 200"},
    {"lock: stop of a worker", VC_LOCK, "--workers 4 --fault stop"},
    {"lock: fault signals", VC_LOCK | VC_SIGNALS, "--workers 4 --fault signals"},
    {"lock: fault short-io", VC_LOCK | VC_SHORTIO, "--workers 4 --fault short-io"},
};

#define MAX_ARGS 96

static void build(struct vstate *v)
{
    int robust = (v->lock_flags & IPCP_LOCK_ROBUST) != 0;
    for (size_t i = 0; i < sizeof(battery) / sizeof(battery[0]); i++) {
        const struct vdef *d = &battery[i];
        if ((d->flags & VC_CHAN) && !v->has_chan) continue;
        if ((d->flags & VC_LOCK) && !v->has_lock) continue;
        if ((d->flags & VC_ROBUST) && !robust) continue;
        if ((d->flags & VC_FRAGILE) && robust) continue;
        if (v->ncases >= VB_MAX_CASES) break;
        struct vcase *c = &v->cases[v->ncases++];
        memset(c, 0, sizeof(*c));
        c->def = d;
        c->mode = d->flags & VC_SCHED    ? ST_MODE_SCHED
                  : d->flags & VC_THREAD ? ST_MODE_THREAD
                                         : ST_MODE_PROCESS;
        c->crashpts = (d->flags & VC_CRASHPT) != 0;
        if ((v->exec.producer || v->exec.worker) && (d->flags & VC_NOT_EXEC)) {
            c->na = 1;
            snprintf(c->na_why, sizeof(c->na_why),
                     "exec endpoints are programs: threads, schedules and crash points need "
                     "a plugin (docs/exec.md)");
        } else if ((c->mode == ST_MODE_SCHED || c->crashpts) && v->sched_na[0]) {
            c->na = 1;
            snprintf(c->na_why, sizeof(c->na_why), "%s", v->sched_na);
        }
        snprintf(c->name, sizeof(c->name), "%s", d->name);
        snprintf(c->args, sizeof(c->args), "%s", d->args);
        c->seeds = json_array();
        c->failed_seeds = json_array();
    }
}

/* --producers N / --consumers N -> 1; returns whether anything changed. */
static int to_one_to_one(struct vcase *c)
{
    char out[sizeof(c->args)] = "", buf[sizeof(c->args)];
    snprintf(buf, sizeof(buf), "%s", c->args);
    int changed = 0, next_is_count = 0;
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        const char *w = t;
        if (next_is_count && strcmp(t, "1") != 0) {
            w = "1";
            changed = 1;
        }
        next_is_count = strcmp(t, "--producers") == 0 || strcmp(t, "--consumers") == 0;
        size_t len = strlen(out);
        snprintf(out + len, sizeof(out) - len, "%s%s", len ? " " : "", w);
    }
    if (changed) snprintf(c->args, sizeof(c->args), "%s", out);
    return changed;
}

#define SIZE_FALLBACK_MIN 256  /* the smallest --max-size the size fallback goes down to */
#define STRESS_MAX_SIZE   1024 /* ipcproof stress's own default --max-size (config.c) */

/* --max-size N -> N/2 (and --min-size down to it), for a protocol whose create() refused the
 * sizes (-EMSGSIZE): the case is not about sizes, so it runs with smaller ones. Returns the new
 * maximum, or 0 when it would go below SIZE_FALLBACK_MIN. */
static size_t to_smaller_size(struct vcase *c)
{
    char out[sizeof(c->args)] = "", buf[sizeof(c->args)], num[24];
    snprintf(buf, sizeof(buf), "%s", c->args);
    size_t max = STRESS_MAX_SIZE;
    const char *m = strstr(buf, "--max-size ");
    if (m != NULL) max = (size_t)strtoull(m + strlen("--max-size "), NULL, 10);
    if (max / 2 < SIZE_FALLBACK_MIN) return 0;
    max /= 2;
    snprintf(num, sizeof(num), "%zu", max);
    int next = 0; /* 1: the value of --max-size, 2: of --min-size */
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        const char *w = t;
        if (next == 1 || (next == 2 && strtoull(t, NULL, 10) > max)) w = num;
        next = strcmp(t, "--max-size") == 0 ? 1 : strcmp(t, "--min-size") == 0 ? 2 : 0;
        size_t len = strlen(out);
        snprintf(out + len, sizeof(out) - len, "%s%s", len ? " " : "", w);
    }
    if (m == NULL) {
        size_t len = strlen(out);
        snprintf(out + len, sizeof(out) - len, " --max-size %s", num);
    }
    snprintf(c->args, sizeof(c->args), "%s", out);
    return max;
}

static int tolerable_create_err(int e)
{
    return e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP || e == EMSGSIZE || e == ENOSYS ||
           e == E2BIG || e == ERANGE;
}

/* ---- one run -------------------------------------------------------------------------------- */

struct vrun {
    int rc;
    char result[16];
    double mps;
    json_t *report;
};

static const unsigned lock_pauses[] = {0, 50, 300, 2000};

static void run_stress(struct vstate *v, struct vcase *c, unsigned round, double dur, uint64_t seed,
                       const char *json, const char *log, struct vrun *out)
{
    char *argv[MAX_ARGS], words[sizeof(c->args)];
    int n = 0;
    const char *bin, *so;
    int tsan;
    /* crash points need what sched mode needs: the runtime and the TSan build of the plugin */
    vt_binary_for(v, c->crashpts ? ST_MODE_SCHED : c->mode, &bin, &so, &tsan);
    char durs[32], seeds[32], msgs[32], stall[32], period[32], pause[32];
    snprintf(durs, sizeof(durs), "%.2f", dur);
    snprintf(seeds, sizeof(seeds), "%" PRIu64, seed);
    /* an odd multiple of a prime: a run that ends on its quota does not end on a boundary of
     * the protocol's own batches (a producer that loses its last partial batch at close() is
     * caught: with 100000 messages and batches of 8 it was not) */
    unsigned mult = 2 * (round < 8 ? round : 8) + 1;
    snprintf(msgs, sizeof(msgs), "%u", (c->def->flags & VC_LOCK ? 199999u : 99991u) * mult);
    /* a stall ends a failing case early, so that it does not eat the others' budget */
    snprintf(stall, sizeof(stall), "%.1f", dur * 3 > 3 ? dur * 3 : 3.0);
    argv[n++] = (char *)bin;
    argv[n++] = "stress";
    if (v->exec.producer) {
        argv[n++] = "--exec-producer";
        argv[n++] = (char *)v->exec.producer;
        argv[n++] = "--exec-consumer";
        argv[n++] = (char *)v->exec.consumer;
        if (v->exec.setup) {
            argv[n++] = "--exec-setup";
            argv[n++] = (char *)v->exec.setup;
        }
        if (v->exec.teardown) {
            argv[n++] = "--exec-teardown";
            argv[n++] = (char *)v->exec.teardown;
        }
        if (v->exec.fifo) argv[n++] = "--fifo";
    } else if (v->exec.worker) {
        argv[n++] = "--exec-worker";
        argv[n++] = (char *)v->exec.worker;
        if (v->exec.robust) argv[n++] = "--robust";
        if (v->exec.setup) {
            argv[n++] = "--exec-setup";
            argv[n++] = (char *)v->exec.setup;
        }
        if (v->exec.teardown) {
            argv[n++] = "--exec-teardown";
            argv[n++] = (char *)v->exec.teardown;
        }
    } else {
        argv[n++] = v->proto ? "--proto" : "--plugin";
        argv[n++] = (char *)(v->proto ? v->proto : so);
    }
    argv[n++] = "--kind";
    argv[n++] = c->def->flags & VC_LOCK ? "lock" : "channel";
    argv[n++] = "--mode";
    argv[n++] = (char *)st_mode_name(c->mode);
    snprintf(words, sizeof(words), "%s", c->args);
    for (char *save = NULL, *t = strtok_r(words, " ", &save); t && n < MAX_ARGS - 30;
         t = strtok_r(NULL, " ", &save))
        argv[n++] = t;
    /* a storm denser every round, down to 20 us (in sched mode the scheduler chooses) */
    if ((c->def->flags & VC_SIGNALS) && !(c->def->flags & VC_SCHED) && round > 0) {
        unsigned p = round < 6 ? 1000u >> round : 20u;
        snprintf(period, sizeof(period), "%u", p < 20 ? 20 : p);
        argv[n++] = "--signal-period";
        argv[n++] = period;
    }
    if ((c->def->flags & VC_LOCK) && lock_pauses[round % 4]) {
        snprintf(pause, sizeof(pause), "%u", lock_pauses[round % 4]);
        argv[n++] = "--lock-pause";
        argv[n++] = pause;
    }
    if (c->crashpts) { /* one run per point: the count, not the time, bounds it */
    } else if (c->mode == ST_MODE_SCHED) { /* schedules instead of seconds: ~100 a second */
        snprintf(durs, sizeof(durs), "%u", (unsigned)(dur * 80 > 10 ? dur * 80 : 10));
        argv[n++] = "--schedules";
        argv[n++] = durs;
        if (c->def->flags & VC_DFS) {
            argv[n++] = "--strategy";
            argv[n++] = "dfs";
        } else if (round % 2) {
            argv[n++] = "--strategy";
            argv[n++] = "random";
        }
    } else {
        argv[n++] = "--duration";
        argv[n++] = durs;
        argv[n++] = "--messages";
        argv[n++] = msgs;
    }
    argv[n++] = "--seed";
    argv[n++] = seeds;
    argv[n++] = "--stall";
    argv[n++] = stall;
    if (v->opt && *v->opt) {
        argv[n++] = "--opt";
        argv[n++] = (char *)v->opt;
    }
    if (v->no_sandbox) argv[n++] = "--no-sandbox";
    argv[n++] = "--json";
    argv[n++] = (char *)json;
    argv[n++] = "--quiet";
    argv[n] = NULL;
    unlink(json);
    /* setup (3 x 5 s at most), the run, the stall, the sweep */
    out->rc = vt_run(argv, log, dur + atof(stall) + 30, tsan);
    json_error_t je;
    out->report = json_load_file(json, 0, &je);
    const char *res = json_string_value(json_object_get(out->report, "result"));
    snprintf(out->result, sizeof(out->result), "%s", res ? res : "error");
    if (out->rc < 0 || out->rc > 2) snprintf(out->result, sizeof(out->result), "error");
    out->mps =
        json_number_value(json_object_get(json_object_get(out->report, "stats"), "msgs_per_s"));
    if (strcmp(bin, st_self_exe()) != 0 && c->bin[0] == '\0')
        snprintf(c->bin, sizeof(c->bin), "%s", bin);
}

static void take_violations(struct vcase *c, json_t *vs)
{
    size_t i, klen = 0, dlen = 0;
    json_t *x;
    c->kinds[0] = c->detail[0] = '\0';
    json_array_foreach(vs, i, x)
    {
        const char *k = json_string_value(json_object_get(x, "kind"));
        const char *d = json_string_value(json_object_get(x, "detail"));
        if (klen < sizeof(c->kinds))
            klen += (size_t)snprintf(c->kinds + klen, sizeof(c->kinds) - klen, "%s%s", i ? "," : "",
                                     k ? k : "?");
        if (dlen < sizeof(c->detail))
            dlen += (size_t)snprintf(c->detail + dlen, sizeof(c->detail) - dlen, "%s%s: %s",
                                     i ? "\n      " : "", k ? k : "?", d ? d : "");
        json_t *fr = json_object_get(x, "frames");
        size_t j;
        json_t *f;
        json_array_foreach(fr, j, f) if (dlen < sizeof(c->detail)) dlen += (size_t)snprintf(
            c->detail + dlen, sizeof(c->detail) - dlen, "\n        at %s", json_string_value(f));
    }
}

/* Runs case c once; returns 1 when the battery must stop (the protocol's setup failed). */
static int run_case(struct vstate *v, struct vcase *c, int idx, unsigned round, double dur)
{
    char json[PATH_MAX], log[PATH_MAX];
    uint64_t seed = v->seed + (uint64_t)round * 1000u + (uint64_t)idx;
    snprintf(json, sizeof(json), "%s/run.json", v->tmpdir);
    snprintf(log, sizeof(log), "%s/case%02d-r%u.log", v->tmpdir, idx, round);
    struct vrun r = {0};
    run_stress(v, c, round, dur, seed, json, log, &r);
    int stop = 0;
    json_t *rep = r.report;
    if (strcmp(r.result, "error") == 0 && r.rc == 2) {
        json_int_t ce = json_integer_value(json_object_get(rep, "create_errno"));
        size_t smaller;
        if ((ce == EMSGSIZE || ce == E2BIG) && (c->def->flags & VC_CHAN) &&
            !(c->def->flags & VC_SIZES) && (smaller = to_smaller_size(c)) > 0) {
            /* a protocol for messages up to some size: the case is not about sizes, so it runs
             * with smaller ones (halved until create() takes them) */
            char *s = strstr(c->name, " (max ");
            if (s != NULL) *s = '\0';
            size_t len = strlen(c->name);
            snprintf(c->name + len, sizeof(c->name) - len, " (max %zu B)", smaller);
            json_decref(rep);
            unlink(log);
            return run_case(v, c, idx, round, dur);
        }
        int sizes_refused = (ce == EMSGSIZE || ce == E2BIG) && (c->def->flags & VC_SIZES);
        if (ce && tolerable_create_err((int)ce) && !sizes_refused && !c->fallback &&
            !(c->def->flags & VC_MULTI) && !(c->def->flags & VC_LOCK) && to_one_to_one(c)) {
            /* a protocol for one producer and one consumer: the case is not about the counts,
             * so it runs with 1 and 1, and the faults, sizes and speeds are still tested */
            c->fallback = 1;
            size_t len = strlen(c->name);
            snprintf(c->name + len, sizeof(c->name) - len, " (1:1)");
            json_decref(rep);
            unlink(log);
            return run_case(v, c, idx, round, dur);
        }
        if (ce && tolerable_create_err((int)ce)) {
            c->na = 1;
            const char *e = json_string_value(json_object_get(rep, "error"));
            snprintf(c->na_why, sizeof(c->na_why), "%s", e ? e : "create() refused it");
            json_decref(rep);
            unlink(log);
            return 0;
        }
    }
    v->runs++;
    c->runs++;
    json_array_append_new(c->seeds, json_integer((json_int_t)seed));
    if (strcmp(r.result, "n/a") == 0) {
        c->na = 1;
        const char *why = json_string_value(json_object_get(rep, "not_applicable"));
        snprintf(c->na_why, sizeof(c->na_why), "%s", why ? why : "not applicable");
    }
    const char *notes = json_string_value(json_object_get(rep, "notes"));
    int killed = notes && strstr(notes, "kill fault: ") && !strstr(notes, "before the kill point");
    if ((c->def->flags & VC_KILL) && killed) c->kills++;
    int failed = strcmp(r.result, "fail") == 0, errored = strcmp(r.result, "error") == 0;
    if (failed || errored) {
        if (failed) c->fails++;
        if (errored) c->errors++;
        if (killed && failed) c->kills_failed++;
        json_array_append_new(c->failed_seeds, json_integer((json_int_t)seed));
        if (c->violations == NULL || (failed && !c->rec_is_fail)) {
            json_decref(c->violations);
            if (c->log[0]) unlink(c->log);
            c->rec_is_fail = failed;
            c->violations = json_incref(json_object_get(rep, "violations"));
            if (c->violations == NULL) c->violations = json_array();
            take_violations(c, c->violations);
            const char *e = json_string_value(json_object_get(rep, "error"));
            if (errored && r.rc >= 0 && r.rc <= 2)
                snprintf(c->detail, sizeof(c->detail), "%s", e ? e : "setup error");
            else if (errored)
                snprintf(c->detail, sizeof(c->detail), "the stress run %s",
                         r.rc < 0 ? "did not end in time (killed)" : "ended abnormally");
            const char *rp = json_string_value(json_object_get(rep, "repro"));
            snprintf(c->repro, sizeof(c->repro), "%s", rp ? rp : "");
            snprintf(c->log, sizeof(c->log), "%s", log);
            log[0] = '\0'; /* keep it */
        }
        const char *sf = json_string_value(json_object_get(rep, "setup_failure"));
        if (sf != NULL) {
            snprintf(v->stopped, sizeof(v->stopped),
                     "the protocol failed in %s (case \"%s\"): every other case would repeat it",
                     sf, c->name);
            stop = 1;
        }
    } else if (strcmp(r.result, "pass") == 0) {
        c->mps = r.mps;
    }
    if (log[0]) unlink(log);
    json_decref(rep);
    return stop;
}

/* ---- the rounds ----------------------------------------------------------------------------- */

static const char *case_result(const struct vcase *c)
{
    if (c->fails) return "fail";
    if (c->errors) return "error";
    if (c->na) return "n/a";
    if (c->runs) return "pass";
    return "not run";
}

static void human_rate(double v, char *buf, size_t cap)
{
    if (v >= 1e6)
        snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, cap, "%.1fk", v / 1e3);
    else if (v > 0)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "-");
}

static void print_log(const char *path, int max_lines)
{
    FILE *f = fopen(path, "re");
    if (!f) return;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f) && n++ < max_lines)
        printf("      | %s", line);
    fclose(f);
}

static double elapsed(const struct vstate *v)
{
    return (double)(st_now_ns() - v->t0) / 1e9;
}

/* The first round runs every case once, however short the budget (a verdict covers the whole
 * battery), and should still end within it: case i gets an equal share of what is left of the
 * first round's part of the budget, after the overhead each run was measured to cost beyond its
 * duration (starting, loading the protocol, reaping, the sweep), and at least RUN_MIN_S (a
 * second for programs, which start an interpreter first). */
#define FIRST_ROUND_SHARE 0.8
#define RUN_MIN_S         0.1
static double first_round_dur(const struct vstate *v, int i, double d0, double overhead)
{
    unsigned rest = 0;
    for (int j = i; j < v->ncases; j++)
        rest += !v->cases[j].na;
    double left = v->budget * FIRST_ROUND_SHARE - elapsed(v);
    double d = rest ? left / rest - overhead : d0;
    double min = (v->exec.producer || v->exec.worker) ? 1.0 : RUN_MIN_S;
    return d > d0 ? d0 : d < min ? min : d;
}

int vb_run_battery(struct vstate *v, volatile int *interrupted)
{
    build(v);
    int runnable = v->ncases;
    double d0 = v->budget * 0.5 / (runnable ? runnable : 1);
    if (d0 < RUN_MIN_S) d0 = RUN_MIN_S;
    /* programs (--exec-*) start an interpreter or a runtime first: a run shorter than a second
     * may end before they did anything */
    if ((v->exec.producer || v->exec.worker) && d0 < 1.0) d0 = 1.0;
    if (d0 > 20) d0 = 20;
    char name[160];
    snprintf(name, sizeof(name), "%s%s%s", v->has_chan ? v->chan_name : "",
             v->has_chan && v->has_lock ? " + " : "", v->has_lock ? v->lock_name : "");
    printf("ipcproof validate: %s (%s%s%s%s%s) | budget %.0f s | seed %" PRIu64 "%s%s\n", name,
           v->has_chan ? "channel" : "",
           v->has_chan && (v->chan_flags & IPCP_CHAN_FIFO) ? ", FIFO" : "",
           v->has_chan && v->has_lock ? " + " : "",
           v->has_lock ? ((v->lock_flags & IPCP_LOCK_ROBUST) ? "lock, robust" : "lock") : "",
           v->has_lock && (v->lock_flags & IPCP_LOCK_FAIR) ? ", fair" : "", v->budget, v->seed,
           v->opt && *v->opt ? " | options " : "", v->opt && *v->opt ? v->opt : "");
    if (v->exec.producer || v->exec.worker)
        ; /* programs: no thread mode */
    else if (!v->proto && !(v->tsan_so && v->tsan_bin))
        vt_note(v,
                "thread mode runs without ThreadSanitizer: %s; races are not looked for (give "
                "--plugin-src, or --plugin-tsan with a clang-14 -fsanitize=thread build)",
                v->tsan_bin ? "no TSan build of the plugin"
                            : "no TSan build of ipcproof (build the tsan preset or set "
                              "IPCPROOF_TSAN_BIN)");
    else if (v->proto && !v->tsan_bin)
        vt_note(v, "thread mode runs without ThreadSanitizer (no TSan build of ipcproof: build the "
                   "tsan preset or set IPCPROOF_TSAN_BIN): races are not looked for");
    fflush(stdout);
    double overhead = 0.15; /* seconds a run takes beyond its duration, measured as we go */
    int stop = 0;
    for (unsigned round = 0; !stop && !*interrupted; round++) {
        double dur = d0 * (1.0 + 0.5 * round);
        if (dur > 30 && dur > d0) dur = d0 > 30 ? d0 : 30;
        unsigned ran = 0, failed_before = 0;
        for (int i = 0; i < v->ncases; i++)
            failed_before += v->cases[i].fails + v->cases[i].errors;
        for (int i = 0; i < v->ncases && !stop && !*interrupted; i++) {
            struct vcase *c = &v->cases[i];
            if (c->na) continue;
            double left = v->budget - elapsed(v);
            /* the first round runs every case, however short the budget: a verdict covers the
             * whole battery; later rounds only what fits */
            if (round > 0 && left < dur + overhead) {
                stop = 2;
                break;
            }
            double d = round == 0 ? first_round_dur(v, i, dur, overhead) : dur;
            int64_t t = st_now_ns();
            stop = run_case(v, c, i, round, d);
            double took = (double)(st_now_ns() - t) / 1e9 - d;
            if (took > 0) overhead = 0.8 * overhead + 0.2 * took;
            ran++;
        }
        int partial = stop == 2;
        stop = 0;
        if (ran == 0) break;
        if (!partial) v->rounds = round + 1;
        unsigned failed_now = 0;
        for (int i = 0; i < v->ncases; i++)
            failed_now += v->cases[i].fails + v->cases[i].errors;
        printf("  round %u%s: %u runs, %u failed, %.1f s of %.0f s%s\n", round + 1,
               partial ? " (cut short by the budget)" : "", ran, failed_now - failed_before,
               elapsed(v), v->budget, round == 0 ? " (every case once)" : "");
        fflush(stdout);
        if (partial) break;
        if (v->budget - elapsed(v) < d0 + overhead) break;
        if (v->stopped[0]) break;
    }

    /* the verdict table */
    printf("  %-46s %-8s %-7s %5s %10s  %s\n", "case", "mode", "result", "runs", "msgs/s",
           "violations");
    int fails = 0, errors = 0, nas = 0, passes = 0, notrun = 0;
    for (int i = 0; i < v->ncases; i++) {
        struct vcase *c = &v->cases[i];
        const char *res = case_result(c);
        char rate[32], runs[32];
        human_rate(c->mps, rate, sizeof(rate));
        if (c->fails || c->errors)
            snprintf(runs, sizeof(runs), "%u/%u", c->fails + c->errors, c->runs);
        else
            snprintf(runs, sizeof(runs), "%u", c->runs);
        printf("  %-46s %-8s %-7s %5s %10s  %s\n", c->name, st_mode_name(c->mode), res, runs, rate,
               c->kinds[0] ? c->kinds : "-");
        if (c->kills && (c->def->flags & VC_KILL))
            printf("      %u kill%s, %u went wrong\n", c->kills, c->kills == 1 ? "" : "s",
                   c->kills_failed);
        if (!strcmp(res, "fail") || !strcmp(res, "error")) {
            if (!strcmp(res, "fail"))
                fails++;
            else
                errors++;
            printf("      %s\n", c->detail);
            if (c->repro[0])
                printf("      rerun%s%s: %s\n", c->bin[0] ? " with " : "", c->bin, c->repro);
            if (c->log[0]) print_log(c->log, v->verbose ? 200 : 60);
        } else if (!strcmp(res, "pass")) {
            passes++;
        } else if (!strcmp(res, "n/a")) {
            nas++;
            printf("      not applicable: %s\n", c->na_why);
        } else {
            notrun++;
        }
    }
    if (v->stopped[0]) vt_note(v, "stopped early: %s", v->stopped);
    int status = fails ? 1 : errors || notrun ? 2 : passes ? 0 : 2;
    if (v->notes[0]) printf("notes:\n  %s\n", v->notes);
    printf("verdict: %s (%d passed, %d failed, %d errors, %d not applicable%s) in %u runs, %u "
           "round%s, %.1f s\n",
           status == 0   ? "PASS"
           : status == 1 ? "FAIL"
                         : "ERROR",
           passes, fails, errors, nas, notrun ? ", some not run" : "", v->runs, v->rounds,
           v->rounds == 1 ? "" : "s", elapsed(v));
    if (fails) {
        printf("rerun the failing cases:\n");
        for (int i = 0; i < v->ncases; i++)
            if (v->cases[i].fails)
                printf("  %s%s%s\n", v->cases[i].repro, v->cases[i].bin[0] ? "   # with " : "",
                       v->cases[i].bin);
    }
    vb_write_json(v, status);
    return status;
}

/* ---- JSON ----------------------------------------------------------------------------------- */

void vb_write_json(struct vstate *v, int status)
{
    if (v->jf == NULL && v->sf == NULL) return;
    json_t *root = json_object();
    json_object_set_new(root, "result",
                        json_string(status == 0   ? "pass"
                                    : status == 1 ? "fail"
                                                  : "error"));
    json_object_set_new(root, "kind",
                        json_string(v->has_chan && v->has_lock ? "channel+lock"
                                    : v->has_lock              ? "lock"
                                                               : "channel"));
    char name[160];
    snprintf(name, sizeof(name), "%s%s%s", v->has_chan ? v->chan_name : "",
             v->has_chan && v->has_lock ? " + " : "", v->has_lock ? v->lock_name : "");
    json_object_set_new(root, "protocol",
                        json_string(name[0]     ? name
                                    : v->proto  ? v->proto
                                    : v->plugin ? v->plugin
                                                : v->plugin_src));
    if (v->exec.producer || v->exec.worker)
        json_object_set_new(root, "exec",
                            json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:b}", "producer",
                                      v->exec.producer, "consumer", v->exec.consumer, "worker",
                                      v->exec.worker, "setup", v->exec.setup, "teardown",
                                      v->exec.teardown, "fifo", v->exec.fifo, "robust",
                                      v->exec.robust));
    json_object_set_new(root, "seed", json_integer((json_int_t)v->seed));
    json_object_set_new(root, "budget", json_real(v->budget));
    json_object_set_new(root, "options", json_string(v->opt ? v->opt : ""));
    json_object_set_new(root, "seconds", json_real(elapsed(v)));
    json_object_set_new(root, "rounds", json_integer(v->rounds));
    json_object_set_new(root, "runs", json_integer(v->runs));
    if (v->error[0]) json_object_set_new(root, "error", json_string(v->error));
    if (v->stopped[0]) json_object_set_new(root, "stopped", json_string(v->stopped));
    if (v->notes[0]) json_object_set_new(root, "notes", json_string(v->notes));
    json_t *cases = json_array(), *all = json_array();
    const char *first_repro = NULL;
    for (int i = 0; i < v->ncases; i++) {
        struct vcase *c = &v->cases[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(c->name));
        json_object_set_new(o, "mode", json_string(st_mode_name(c->mode)));
        json_object_set_new(o, "result", json_string(case_result(c)));
        json_object_set_new(o, "runs", json_integer(c->runs));
        json_object_set_new(o, "failed_runs", json_integer(c->fails + c->errors));
        json_object_set_new(o, "seeds", json_incref(c->seeds));
        json_object_set_new(o, "failed_seeds", json_incref(c->failed_seeds));
        if (c->def->flags & VC_KILL) {
            json_object_set_new(o, "kills", json_integer(c->kills));
            json_object_set_new(o, "kills_failed", json_integer(c->kills_failed));
        }
        json_object_set_new(o, "msgs_per_s", json_real(c->mps));
        if (c->detail[0]) json_object_set_new(o, "detail", json_string(c->detail));
        if (c->na) json_object_set_new(o, "not_applicable", json_string(c->na_why));
        json_object_set_new(o, "violations",
                            c->violations ? json_incref(c->violations) : json_array());
        if (c->repro[0]) json_object_set_new(o, "repro", json_string(c->repro));
        if (c->bin[0]) json_object_set_new(o, "binary", json_string(c->bin));
        json_array_append_new(cases, o);
        size_t k;
        json_t *x;
        json_array_foreach(c->violations, k, x)
        {
            json_t *cp = json_deep_copy(x);
            json_object_set_new(cp, "case", json_string(c->name));
            if (c->repro[0]) json_object_set_new(cp, "repro", json_string(c->repro));
            json_array_append_new(all, cp);
            if (!first_repro && c->repro[0]) first_repro = c->repro;
        }
    }
    if (status == 1 && v->ncases == 0 && v->error[0]) { /* loading the plugin failed */
        json_t *x = json_object();
        json_object_set_new(x, "kind",
                            json_string(strstr(v->error, "did not return") ? "deadlock" : "crash"));
        json_object_set_new(x, "count", json_integer(1));
        json_object_set_new(x, "detail", json_string(v->error));
        json_object_set_new(x, "case", json_string("loading the plugin"));
        char rp[PATH_MAX + 128];
        const char *so = v->plain_so ? v->plain_so : v->tsan_so;
        snprintf(rp, sizeof(rp), "ipcproof stress --plugin %s --messages 1000 --seed %" PRIu64,
                 so ? so : "?", v->seed);
        json_object_set_new(x, "repro", json_string(rp));
        json_object_set_new(root, "repro", json_string(rp));
        json_array_append_new(all, x);
    }
    json_object_set_new(root, "cases", cases);
    json_object_set_new(root, "violations", all);
    if (first_repro) json_object_set_new(root, "repro", json_string(first_repro));
    if (v->jf != NULL) {
        rewind(v->jf);
        if (ftruncate(fileno(v->jf), 0) < 0 ||
            json_dumpf(root, v->jf, JSON_INDENT(2) | JSON_ENSURE_ASCII) != 0 || fflush(v->jf) != 0)
            fprintf(stderr, "ipcproof validate: cannot write %s\n", v->json);
    }
    struct st_sarif_src src = {.source = v->plugin_src,
                               .program = v->exec.producer ? v->exec.producer : v->exec.worker,
                               .version = IPCP_VERSION};
    if (v->sf != NULL && st_sarif_write(root, &src, v->sf) < 0)
        fprintf(stderr, "ipcproof validate: cannot write %s\n", v->sarif);
    json_decref(root);
}

void vb_keep_only_plugins(struct vstate *v)
{
    for (int i = 0; i < v->ncases; i++)
        if (v->cases[i].log[0]) unlink(v->cases[i].log);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/run.json", v->tmpdir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/describe.json", v->tmpdir);
    unlink(p);
}

void vb_free(struct vstate *v)
{
    for (int i = 0; i < v->ncases; i++) {
        json_decref(v->cases[i].violations);
        json_decref(v->cases[i].seeds);
        json_decref(v->cases[i].failed_seeds);
    }
}

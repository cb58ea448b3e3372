/* runs.c - the runs a stress case is made of: one run (st_run_once, engine.c), or schedule
 * after schedule (--mode sched: pct and random, or the depth-first search of dfs), one crash
 * point after the other (--crash-points), verified and unverified rounds (--overhead). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

static void oom(struct st_report *rep)
{
    rep->status = 2;
    snprintf(rep->error, sizeof(rep->error), "out of memory");
}

#define OVERHEAD_ROUNDS 3

/* --fault signals in sched mode: how many blocking calls the scheduler interrupted, in all. */
static void note_signals(const struct st_config *c, struct st_report *rep, uint64_t signals)
{
    rep->signals = signals;
    if (c->faults & ST_FAULT_SIGNALS)
        st_report_note(rep,
                       "signals: %" PRIu64
                       " blocking call%s of the protocol interrupted in %" PRIu64
                       " schedule%s (the scheduler's choice)",
                       signals, signals == 1 ? "" : "s", rep->schedules_run,
                       rep->schedules_run == 1 ? "" : "s");
}

/* Sched mode: schedule after schedule (each a whole case: create, threads, check, destroy) until
 * one fails or --schedules ran; the report is that of the first failing schedule, or of the
 * last one. */
static int run_schedules(const struct st_config *c, struct st_report *rep)
{
    uint64_t first = c->one_schedule ? c->first_schedule : 0;
    uint64_t n = c->one_schedule ? 1 : c->schedules, steps = 0, signals = 0;
    struct st_report *tmp = calloc(1, sizeof(*tmp));
    if (tmp == NULL) {
        oom(rep);
        return 2;
    }
    /* pct's k, the expected length of a schedule: as given, else that of the first schedule
     * (which runs with 1000); the rerun line names it, so that a replay is the same schedule */
    struct st_config cc = *c;
    if (cc.sched_steps == 0) cc.sched_steps = 1000;
    char notes[sizeof(rep->notes)];
    memcpy(notes, rep->notes, sizeof(notes)); /* the sandbox's, not the previous run's */
    int st = 0;
    for (uint64_t i = 0; i < n && !st_interrupted(); i++) {
        memset(tmp, 0, sizeof(*tmp));
        tmp->sandboxed = rep->sandboxed;
        memcpy(tmp->notes, notes, sizeof(tmp->notes));
        /* --shard I/N: schedules I, I + N, I + 2N, ... (another job runs the others) */
        uint64_t sched_no = c->nshards > 1 ? c->shard + i * c->nshards : first + i;
        st = st_run_once(&cc, tmp, !c->no_verify, sched_no);
        if (tmp->sched) steps += tmp->sched->steps;
        signals += tmp->signals;
        st_report_free(rep);
        *rep = *tmp; /* takes over its malloc()ed parts */
        memset(tmp, 0, sizeof(*tmp));
        rep->schedules_run = i + 1;
        rep->sched_steps_total = steps;
        rep->sched_k = cc.sched_steps;
        if (st != 0 || rep->nv || rep->na[0]) break; /* n/a: the scheduler lost control */
        if (i == 0 && c->sched_steps == 0 && rep->sched && rep->sched->steps > 100)
            cc.sched_steps = rep->sched->steps;
    }
    note_signals(c, rep, signals);
    free(tmp);
    return st;
}

/* --strategy dfs: the schedule of the prefix given (--choices), or the search: iterative
 * bounding, as in CHESS: every schedule without a preemption (depth first, dfs.c), then every
 * one with at most 1, ... up to --preemptions, so that a capped search has covered the shallow
 * ones first. A pass runs the schedules of the passes before it again (their runs are how it
 * learns the tree: the search keeps no state) but counts only those new to it. It stops at the
 * first failure, when the last pass is done, or when --schedules ran. Every run is schedule 0
 * of the seed (the same workload); the report numbers them. */
static int run_dfs(const struct st_config *c, struct st_report *rep)
{
    struct st_report *tmp = calloc(1, sizeof(*tmp));
    uint8_t *prefix = calloc(ST_SCHED_CHOICES, 1);
    uint8_t *nalt = calloc(ST_SCHED_CHOICES, 1); /* of the previous run, to see divergence */
    char *path = malloc(ST_DFS_PATH_MAX);
    if (tmp == NULL || prefix == NULL || nalt == NULL || path == NULL) {
        free(tmp), free(prefix), free(nalt), free(path);
        oom(rep);
        return 2;
    }
    struct st_config cc = *c;
    uint32_t plen = c->nchoices;
    if (plen) memcpy(prefix, c->choices, plen);
    cc.choices = prefix;
    char notes[sizeof(rep->notes)];
    memcpy(notes, rep->notes, sizeof(notes));
    uint64_t n = c->choices_arg ? 1 : c->schedules, steps = 0, distinct = 0, signals = 0;
    int st = 0, truncated = 0, diverged = 0, exhausted = 0;
    unsigned bound = c->choices_arg ? c->preemptions : 0; /* of the pass */
    for (uint64_t i = 0; i < n && !st_interrupted(); i++) {
        memset(tmp, 0, sizeof(*tmp));
        tmp->sandboxed = rep->sandboxed;
        memcpy(tmp->notes, notes, sizeof(tmp->notes));
        cc.nchoices = plen;
        int path_ok = st_dfs_path(prefix, plen, path, ST_DFS_PATH_MAX) == 0;
        st = st_run_once(&cc, tmp, !c->no_verify, 0);
        if (tmp->sched) steps += tmp->sched->steps;
        signals += tmp->signals;
        st_report_free(rep);
        *rep = *tmp;
        memset(tmp, 0, sizeof(*tmp));
        rep->schedule = (c->one_schedule ? c->first_schedule : 0) + i;
        rep->schedules_run = i + 1;
        rep->sched_steps_total = steps;
        rep->dfs_path = path_ok ? strdup(path) : NULL; /* else rerun: the search up to it */
        const struct st_sched_report *sr = rep->sched;
        /* a run of this pass's cost is new; with --shard, only this shard's schedules count
         * (the few runs above the shard depth are made by every shard, to learn the tree) */
        if (sr != NULL && (st_dfs_cost(sr) == bound || c->choices_arg) &&
            st_dfs_run_owner(sr, c->shard, c->nshards))
            distinct++;
        rep->dfs_distinct = distinct;
        rep->dfs_complete = (int)bound - 1; /* the passes before this one are complete */
        if (sr != NULL) {
            uint64_t m = sr->nchoices < ST_SCHED_CHOICES ? sr->nchoices : ST_SCHED_CHOICES;
            /* the points before the last prescribed one must be those of the run it came from */
            for (uint32_t k = 0; k + 1 < plen && i > 0 && !diverged; k++)
                if (k >= m || sr->choices[k].nalt != nalt[k]) diverged = 1;
            if (sr->diverged) diverged = 1;
            if (sr->nchoices > ST_SCHED_CHOICES) truncated = 1;
            for (uint64_t k = 0; k < m; k++)
                nalt[k] = sr->choices[k].nalt;
        }
        if (st != 0 || rep->nv || rep->na[0] || sr == NULL || c->choices_arg) break;
        if (st_dfs_advance(sr, bound, c->shard, c->nshards, prefix, &plen)) continue;
        if (bound < c->preemptions) { /* the next pass, from the first schedule */
            bound++;
            plen = 0;
            continue;
        }
        rep->dfs_complete = (int)bound;
        exhausted = 1;
        break;
    }
    note_signals(c, rep, signals);
    rep->dfs_exhausted = exhausted && !truncated && !diverged;
    rep->dfs_truncated = truncated;
    rep->dfs_diverged = diverged;
    if (diverged)
        st_report_note(rep, "dfs: a schedule did not follow the choices it was given: the "
                            "protocol's runs are not deterministic under the scheduler (its own "
                            "clock, randomness or threads?), so the search is not exhaustive");
    free(tmp), free(prefix), free(nalt), free(path);
    return st;
}

/* --crash-points: the victim dies at point 1 of its operation, then 2, ... one run each, until a
 * run fails or the victim lives through the whole operation (every point was tried). */
static int run_crash_points(const struct st_config *c, struct st_report *rep)
{
    struct st_report *tmp = calloc(1, sizeof(*tmp));
    if (tmp == NULL) {
        oom(rep);
        return 2;
    }
    struct st_config cc = *c;
    char notes[sizeof(rep->notes)];
    memcpy(notes, rep->notes, sizeof(notes)); /* the sandbox's, not the previous run's */
    int st = 0, again = 0;
    for (uint64_t n = 1; n <= 500 && !st_interrupted(); n++) {
        memset(tmp, 0, sizeof(*tmp));
        tmp->sandboxed = rep->sandboxed;
        memcpy(tmp->notes, notes, sizeof(tmp->notes));
        cc.crash_point = n;
        st = st_run_once(&cc, tmp, !c->no_verify, 0);
        st_report_free(rep);
        *rep = *tmp;
        memset(tmp, 0, sizeof(*tmp));
        if (st != 0 || rep->nv || rep->na[0] || rep->crash_points_all) break;
        /* the victim did not have lock() to itself: its n-th point was on another path, and
         * this point is tried again (twice at most) rather than counted as passed */
        if (rep->crash_not_alone && again < 2) {
            again++;
            n--;
            continue;
        }
        if (rep->crash_not_alone)
            st_report_note(rep,
                           "crash point %" PRIu64 ": the other workers stayed in lock() "
                           "while the victim went, three times: its path may differ",
                           n);
        again = 0;
    }
    if (rep->crash_points_all && !rep->nv && st == 0)
        st_report_note(rep,
                       "crash points: the victim died at each of the %" PRIu64
                       " scheduling points of its operation in turn, and every run passed",
                       rep->crash_points_all);
    free(tmp);
    return st;
}

int st_run_case(const struct st_config *c, struct st_report *rep)
{
    if (c->crash_points) return run_crash_points(c, rep);
    if (c->mode == ST_MODE_SCHED && c->strategy == ST_SCHED_DFS) return run_dfs(c, rep);
    if (c->mode == ST_MODE_SCHED) return run_schedules(c, rep);
    if (!c->overhead) return st_run_once(c, rep, !c->no_verify, 0);
    /* verified and unverified runs alternate, OVERHEAD_ROUNDS of each, and the medians are
     * compared: on a loaded machine one run of each says little */
    struct st_report *tmp = calloc(1, sizeof(*tmp));
    double ver[OVERHEAD_ROUNDS], unv[OVERHEAD_ROUNDS];
    if (tmp == NULL) {
        oom(rep);
        return 2;
    }
    int st = st_run_once(c, rep, 1, 0);
    ver[0] = rep->msgs_per_s;
    for (int k = 0; k < OVERHEAD_ROUNDS * 2 - 1 && st != 2 && rep->chan; k++) {
        int verify = k % 2 == 1;
        memset(tmp, 0, sizeof(*tmp));
        tmp->sandboxed = rep->sandboxed;
        int st2 = st_run_once(c, tmp, verify, 0);
        if (st2 == 2) {
            st_report_note(rep, "%s run failed: %s", verify ? "verified" : "unverified",
                           tmp->error);
            st = 2;
            st_report_free(tmp);
            break;
        }
        if (verify)
            ver[k / 2 + 1] = tmp->msgs_per_s;
        else
            unv[k / 2] = tmp->msgs_per_s;
        for (int i = 0; i < tmp->nv; i++) /* every run still sees crashes, leaks, ... */
            st_report_add(rep, tmp->v[i].kind, tmp->v[i].count, "(%s run) %s",
                          verify ? "verified" : "unverified", tmp->v[i].detail);
        st_report_free(tmp);
    }
    if (st != 2 && rep->chan) {
        rep->has_overhead = 1;
        rep->verified_mps = stats_median(ver, OVERHEAD_ROUNDS);
        rep->unverified_mps = stats_median(unv, OVERHEAD_ROUNDS);
    }
    free(tmp);
    return rep->status;
}

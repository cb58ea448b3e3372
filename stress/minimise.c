/* minimise.c - a failing schedule of --mode sched made small before it is reported.
 *
 * The scheduler runtime records every branching point of a schedule as dfs numbers them (which
 * alternative was taken, how many there were, whether taking another than the first preempts),
 * whatever the strategy. So a failing pct or random schedule is also a dfs path, and
 * `--strategy dfs --choices P:A,...` reruns it. The minimiser starts from that path and tries,
 * one candidate schedule at a time, each a fresh run of the case:
 *
 *   1. the path as recorded (it must fail again with the same kind of violation, else the
 *      schedule is reported as found);
 *   2. fewer messages (per producer, or acquisitions per worker): 1, 2, ... the first count with
 *      which the path still fails;
 *   3. each non-default choice in turn, last to first (a preemption, a flush, a signal, a free
 *      choice), replaced by the default one: the running thread goes on, a store stays
 *      buffered, no signal;
 *   4. a dfs search below the path's preemptions (at most 2) with what is left of the budget;
 *   5. fewer messages again.
 *
 * A candidate is kept when it fails with the same kind and is smaller: fewer preemptions, then
 * fewer messages, then fewer non-default choices. A kept run's own recorded choices become the
 * path (points after a changed one may differ). At most `budget` candidates run, in an order that
 * depends on nothing but the inputs: the same failing schedule always gives the same result. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

struct min_state {
    struct st_config cc; /* the candidate's configuration: dfs, the path, the messages */
    const struct st_report *found;
    enum st_vkind kind; /* the violation to keep */
    uint64_t runs, budget;
    uint8_t *path; /* the best path so far (ST_SCHED_CHOICES) */
    uint32_t plen;
    uint64_t msgs;
    unsigned cost, nonzero;
    struct st_report *best; /* its run's report (NULL before the first) */
    struct st_report *tmp;
};

static unsigned path_nonzero(const uint8_t *p, uint32_t n)
{
    unsigned k = 0;
    for (uint32_t i = 0; i < n; i++)
        k += p[i] != 0;
    return k;
}

/* The run's recorded choices as a path, without the trailing defaults; -1 when it had more
 * branching points than are recorded (a path cannot say the rest). */
static int take_path(const struct st_sched_report *sr, uint8_t *path, uint32_t *plen)
{
    if (sr->nchoices > ST_SCHED_CHOICES) return -1;
    uint32_t n = (uint32_t)sr->nchoices;
    for (uint32_t k = 0; k < n; k++)
        path[k] = sr->choices[k].taken;
    while (n > 0 && path[n - 1] == 0)
        n--;
    *plen = n;
    return 0;
}

static int has_kind(const struct st_report *r, enum st_vkind kind)
{
    for (int i = 0; i < r->nv; i++)
        if ((enum st_vkind)r->v[i].kind == kind) return 1;
    return 0;
}

/* Runs the candidate (path, msgs); keeps it when it fails the same way and is smaller (or when
 * `first`: the recorded path itself). 1 kept, 0 not, -1 the budget is spent. */
static int try_candidate(struct min_state *m, const uint8_t *path, uint32_t plen, uint64_t msgs,
                         int first)
{
    if (m->runs >= m->budget || st_interrupted()) return -1;
    m->runs++;
    m->cc.choices = path;
    m->cc.nchoices = plen;
    m->cc.messages = msgs;
    memset(m->tmp, 0, sizeof(*m->tmp));
    m->tmp->sandboxed = m->found->sandboxed;
    int st = st_run_once(&m->cc, m->tmp, !m->cc.no_verify, 0);
    const struct st_sched_report *sr = m->tmp->sched;
    static uint8_t got[ST_SCHED_CHOICES];
    uint32_t glen = 0;
    int keep = st != 2 && sr != NULL && has_kind(m->tmp, m->kind) && take_path(sr, got, &glen) == 0;
    if (keep && !first) {
        unsigned cost = st_dfs_cost(sr), nz = path_nonzero(got, glen);
        keep = cost < m->cost || (cost == m->cost && msgs < m->msgs) ||
               (cost == m->cost && msgs == m->msgs && nz < m->nonzero);
    }
    if (!keep) {
        st_report_free(m->tmp);
        return 0;
    }
    memcpy(m->path, got, glen);
    m->plen = glen;
    m->msgs = msgs;
    m->cost = st_dfs_cost(sr);
    m->nonzero = path_nonzero(got, glen);
    if (m->best != NULL) {
        st_report_free(m->best);
        *m->best = *m->tmp;
    } else {
        m->best = malloc(sizeof(*m->best));
        if (m->best == NULL) {
            st_report_free(m->tmp);
            return -1;
        }
        *m->best = *m->tmp;
    }
    memset(m->tmp, 0, sizeof(*m->tmp));
    return 1;
}

/* Step 2 and 4: the fewest messages with which the path still fails. */
static void fewer_messages(struct min_state *m)
{
    static uint8_t cand[ST_SCHED_CHOICES];
    for (uint64_t n = 1; n < m->msgs; n++) {
        memcpy(cand, m->path, m->plen);
        int r = try_candidate(m, cand, m->plen, n, 0);
        if (r != 0) return;
    }
}

/* Step 3: each non-default choice replaced by the default, last to first (the points before it
 * stay where they are; those after it may move, which is why the last go first). */
static void fewer_choices(struct min_state *m)
{
    static uint8_t cand[ST_SCHED_CHOICES];
    for (uint32_t k = m->plen; k-- > 0;) {
        if (k >= m->plen || m->path[k] == 0) continue;
        memcpy(cand, m->path, m->plen);
        cand[k] = 0;
        if (try_candidate(m, cand, m->plen, m->msgs, 0) < 0) return;
    }
}

/* Step 4: a choice removed moves the points after it, so a path of many choices rarely loses
 * one on its own. dfs with a bound below the path's preemptions (at most DFS_BOUND), on the
 * messages found so far, with what is left of the budget: iterative bounding finds a failing
 * schedule with the fewest preemptions, if there is one within the budget. */
#define DFS_BOUND 2
static void fewer_by_search(struct min_state *m)
{
    if (m->cost == 0 || m->runs + 2 > m->budget || st_interrupted()) return;
    struct st_config cc = m->cc;
    cc.choices = NULL;
    cc.nchoices = 0;
    cc.choices_arg = NULL;
    cc.messages = m->msgs;
    cc.preemptions = m->cost - 1 < DFS_BOUND ? m->cost - 1 : DFS_BOUND;
    cc.schedules = m->budget - m->runs - 1; /* and one to rerun what it finds */
    cc.shard = cc.nshards = 0;
    memset(m->tmp, 0, sizeof(*m->tmp));
    m->tmp->sandboxed = m->found->sandboxed;
    int st = st_run_case(&cc, m->tmp);
    m->runs += m->tmp->schedules_run;
    static uint8_t got[ST_SCHED_CHOICES];
    uint32_t glen = 0;
    const struct st_sched_report *sr = m->tmp->sched;
    if (st == 2 || sr == NULL || !has_kind(m->tmp, m->kind) || take_path(sr, got, &glen) < 0 ||
        st_dfs_cost(sr) >= m->cost) {
        st_report_free(m->tmp);
        return;
    }
    /* its path, rerun as a candidate of its own (the search's report is of a search) */
    st_report_free(m->tmp);
    try_candidate(m, got, glen, m->msgs, 0);
}

int st_minimise(struct st_config *c, struct st_report *rep, uint64_t budget)
{
    const struct st_sched_report *sr = rep->sched;
    if (budget == 0 || sr == NULL || rep->nv == 0 || c->mode != ST_MODE_SCHED) return 0;
    struct min_state m = {.cc = *c, .found = rep, .kind = rep->v[0].kind, .budget = budget};
    m.path = calloc(ST_SCHED_CHOICES, 1);
    m.tmp = calloc(1, sizeof(*m.tmp));
    uint8_t *rec = calloc(ST_SCHED_CHOICES, 1);
    char *text = malloc(ST_DFS_PATH_MAX);
    int done = 0;
    if (m.path == NULL || m.tmp == NULL || rec == NULL || text == NULL) goto out;
    m.cc.strategy = ST_SCHED_DFS;
    m.cc.choices_arg = "";
    m.cc.one_schedule = 0;
    uint32_t rlen = 0;
    unsigned from_cost = st_dfs_cost(sr);
    uint64_t from_msgs = c->messages;
    if (take_path(sr, rec, &rlen) < 0) {
        st_report_note(rep, "not minimised: the schedule has more than %u branching points",
                       ST_SCHED_CHOICES);
        goto out;
    }
    m.msgs = from_msgs;
    if (try_candidate(&m, rec, rlen, from_msgs, 1) != 1) {
        st_report_note(rep, "not minimised: its choices, rerun as a dfs path, did not fail the "
                            "same way (the protocol's runs depend on more than the schedule?)");
        goto out;
    }
    fewer_messages(&m);
    fewer_choices(&m);
    fewer_by_search(&m);
    fewer_messages(&m);
    if (st_dfs_path(m.path, m.plen, text, ST_DFS_PATH_MAX) < 0) {
        st_report_note(rep, "not minimised: its choices are too many for a rerun line");
        goto out;
    }
    /* the report is the minimised run's, with the search's counts */
    struct st_report *b = m.best;
    b->schedules_run = rep->schedules_run;
    b->schedule = rep->schedule;
    b->sched_steps_total = rep->sched_steps_total;
    b->sched_k = rep->sched_k;
    b->signals = rep->signals;
    b->min_runs = m.runs;
    b->min_from_preemptions = from_cost;
    b->min_from_messages = from_msgs;
    b->min_preemptions = m.cost;
    b->min_messages = m.msgs;
    b->minimised = 1;
    b->dfs_path = strdup(text);
    memcpy(b->notes, rep->notes, sizeof(b->notes));
    st_report_note(b,
                   "minimised from %u preemption%s / %" PRIu64 " messages to %u / %" PRIu64
                   " (%" PRIu64 " candidate schedules run); the rerun line is its dfs path",
                   from_cost, from_cost == 1 ? "" : "s", from_msgs, m.cost, m.msgs, m.runs);
    st_report_free(rep);
    *rep = *b;
    free(b);
    m.best = NULL;
    c->strategy = ST_SCHED_DFS;
    c->messages = m.msgs;
    if (c->preemptions < m.cost) c->preemptions = m.cost;
    done = 1;
out:
    if (m.best != NULL) {
        st_report_free(m.best);
        free(m.best);
    }
    if (m.tmp != NULL) st_report_free(m.tmp);
    free(m.tmp), free(m.path), free(rec), free(text);
    return done;
}

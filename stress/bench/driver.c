/* driver.c - `ipcproof bench`: the options, the cases of every family, the interleaved
 * repetitions of each case's sides (bench.h).
 *
 * Each row compares a protocol (side 0) with one baseline doing the same bytes without the
 * protocol. The sides of a case run alternately (protocol, baseline, baseline, protocol, ...) so
 * that the noise of a shared machine hits both alike, and the ratio protocol/baseline is taken
 * per repetition: the table shows the median ratio with its min and max, and the median of each
 * side's figure. Every measurement is between two processes (fork) over fresh OS objects, except
 * the single-thread baselines (memcpy, uncontended locks); the bench's own message queues are
 * unlinked right after mq_open, and the protocols' named objects are destroyed after each run
 * (`ipcproof clean` removes those of a crashed one).
 *
 * A benchmark, not a test: it prints figures and exits 0 when every row was measured, whether or
 * not the aims were met. --smoke (tiny counts, one repetition) exists so that ctest can check the
 * structure of the JSON quickly; its figures mean nothing. docs/bench.md has the current table. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "atomics.h"
#include "stats.h"

enum bench_mode bench_mode;
int bench_reps;
const char *const bench_mode_name[] = {"full", "quick", "smoke"};
const size_t bench_sizes[B_NSIZES] = {64, 4096, 65536, 1u << 20};
struct bench_row bench_rows[B_MAX_ROWS];
int bench_nrows;

/* The families, in the order of the table. */
static const struct bench_family *const families[] = {
    &bench_frame, &bench_ring,  &bench_chan, &bench_handoff,
    &bench_lock,  &bench_sched, &bench_exec, &bench_stress,
};

static struct {
    const char *json;
    const char *only;
} g_opt;

static struct bench_case g_cases[B_MAX_CASES];
static int g_ncases;

static int case_selected(const struct bench_case *c)
{
    return g_opt.only == NULL || strstr(c->stem, g_opt.only) != NULL ||
           strcmp(c->group, g_opt.only) == 0;
}

/* One case of def d: size index k (-1: unsized). */
static void add_case(const struct bench_family *f, const struct bench_def *d, int k)
{
    if (g_ncases >= B_MAX_CASES) return;
    struct bench_case *c = &g_cases[g_ncases++];
    memset(c, 0, sizeof(*c));
    int ki = k < 0 ? 0 : k;
    const char *label = k < 0 ? "" : bench_size_label(bench_sizes[k]);
    if (d->inst)
        snprintf(c->stem, sizeof(c->stem), d->stem, d->inst(d->xk), label);
    else
        snprintf(c->stem, sizeof(c->stem), d->stem, label);
    c->group = f->group;
    c->def = d;
    c->kind = d->kind;
    c->size = k < 0 ? d->size : bench_sizes[k];
    c->count = bench_scaled(d->count[ki], d->floor);
    c->xk = d->xk;
    c->variant = d->variant;
    if (d->aim[ki] > 0) {
        c->aim_op = d->aim_op;
        c->aim = d->aim[ki];
    }
    for (int s = 0; s < B_MAX_SIDES && (d->how[s].pair || d->how[s].run); s++) {
        c->nsides = s + 1;
        c->side_name[s] = d->how[s].name ? d->how[s].name : d->names ? d->names(d, s) : "?";
    }
    c->na = d->na ? d->na(d) : NULL;
}

static void build_cases(void)
{
    for (size_t f = 0; f < IPCP_ARRAY_SIZE(families); f++) {
        for (size_t i = 0; i < families[f]->ndefs; i++) {
            const struct bench_def *d = &families[f]->defs[i];
            if (d->sizes == 0) {
                add_case(families[f], d, -1);
                continue;
            }
            for (int k = 0; k < B_NSIZES; k++)
                if (d->sizes & (1u << k)) add_case(families[f], d, k);
        }
    }
}

/* One run of one side. */
static int run_side(const struct bench_case *c, int side, double v[2], char *err, size_t cap)
{
    const struct bench_how *h = &c->def->how[side];
    return h->pair ? bench_pair_run(c, side, h->pair, v, err, cap) : h->run(c, side, v, err, cap);
}

static const char *row_unit(const struct bench_case *c)
{
    return c->kind == K_TPUT ? "MB/s" : c->kind == K_RTT ? "us" : c->def->unit;
}

static const char *case_extra(const struct bench_case *c)
{
    return c->def->extra ? c->def->extra : c->kind == K_TPUT ? "msgs_per_s" : NULL;
}

static struct bench_row *new_row(const struct bench_case *c, int base, const char *suffix)
{
    if (bench_nrows >= B_MAX_ROWS) return NULL;
    struct bench_row *r = &bench_rows[bench_nrows++];
    memset(r, 0, sizeof(*r));
    const char *tag = c->nsides > 2 ? c->def->how[base].tag : NULL;
    snprintf(r->name, sizeof(r->name), "%.63s%s%.12s%s%.12s", c->stem, suffix[0] ? "/" : "", suffix,
             tag ? "/vs-" : "", tag ? tag : "");
    r->unit = row_unit(c);
    r->baseline_name = c->side_name[base];
    r->reps = bench_reps;
    r->count = c->count;
    r->na = c->na;
    return r;
}

/* Median, min and max of the ratios side 0 / side b of metric m, and the medians of each side. */
static void row_figures(struct bench_row *row, double val[][B_MAX_REPS][2], int b, int m, int reps)
{
    double p[B_MAX_REPS] = {0}, q[B_MAX_REPS] = {0}, ratio[B_MAX_REPS] = {0};
    if (reps < 1 || reps > B_MAX_REPS) return;
    for (int r = 0; r < reps; r++) {
        p[r] = val[0][r][m];
        q[r] = val[b][r][m];
        ratio[r] = q[r] > 0 ? p[r] / q[r] : 0;
    }
    row->rmin = row->rmax = ratio[0];
    for (int r = 1; r < reps; r++) {
        if (ratio[r] < row->rmin) row->rmin = ratio[r];
        if (ratio[r] > row->rmax) row->rmax = ratio[r];
    }
    row->value = stats_median(p, (size_t)reps);
    row->baseline = stats_median(q, (size_t)reps);
    row->ratio = stats_median(ratio, (size_t)reps);
}

/* Runs the sides of one case alternately, bench_reps times, and appends its rows. */
static int run_case(const struct bench_case *c)
{
    int reps = bench_reps;
    double val[B_MAX_SIDES][B_MAX_REPS][2];
    char err[200] = "";
    int failed = 0;
    struct bench_case cc = *c;
    if (c->na == NULL && !c->def->fixed && c->kind != K_RTT && bench_mode != BENCH_SMOKE) {
        /* One run of each side, discarded: warms up, and scales the count so that a run of the
         * slowest side lasts about the target time (short runs are all noise on a shared
         * machine, long ones make the whole bench slow). */
        double slowest = 0;
        for (int k = 0; k < c->nsides && !failed; k++) {
            double v[2];
            int64_t t0 = bench_now_ns();
            if (run_side(&cc, k, v, err, sizeof(err)) < 0) failed = 1;
            double dt = (double)(bench_now_ns() - t0) / 1e9;
            if (dt > slowest) slowest = dt;
        }
        double f = slowest > 0 ? bench_calib_target_s() / slowest : 64;
        f = f > 64 ? 64 : f < 1.0 / 16 ? 1.0 / 16 : f;
        cc.count = (long)((double)cc.count * f);
        if (cc.count < 20) cc.count = 20;
    }
    c = &cc;
    if (c->na == NULL && !failed) {
        for (int r = 0; r < reps && !failed; r++) {
            for (int k = 0; k < c->nsides && !failed; k++) {
                int side = r % 2 == 0 ? k : c->nsides - 1 - k; /* ABBA: drift cancels */
                double v[2] = {0, 0};
                if (run_side(c, side, v, err, sizeof(err)) < 0) {
                    failed = 1;
                    break;
                }
                val[side][r][0] = v[0];
                val[side][r][1] = v[1];
            }
        }
    }
    int nmetric = c->kind == K_RTT ? 2 : 1;
    const char *extra = case_extra(c);
    for (int m = 0; m < nmetric; m++) {
        for (int b = 1; b < c->nsides; b++) {
            const char *suffix = c->kind == K_TPUT  ? "throughput"
                                 : c->kind == K_RTT ? (m == 0 ? "rtt-p50" : "rtt-p99")
                                                    : "";
            struct bench_row *row = new_row(c, b, suffix);
            if (row == NULL) return -1;
            if (m == 0 && b == 1) { /* an aim is against the first baseline */
                row->aim_op = c->aim_op;
                row->aim = c->aim;
            }
            if (c->na) continue;
            if (failed) {
                snprintf(row->error, sizeof(row->error), "%s", err);
                continue;
            }
            row_figures(row, val, b, m, reps);
            if (extra) {
                struct bench_row x = {.value = 0};
                row_figures(&x, val, b, 1, reps);
                row->extra = extra;
                row->xval = x.value;
                row->xbase = x.baseline;
            }
        }
    }
    return failed ? -1 : 0;
}

static const char usage_text[] =
    "usage: ipcproof bench [--quick | --smoke] [--reps N] [--only TEXT] [--json FILE]\n"
    "  every protocol against its raw mechanism, sides interleaved; ratio = protocol/baseline,\n"
    "  median of N repetitions (default 5) with min and max\n"
    "  --quick      smaller counts (under a minute on 2 cores)\n"
    "  --smoke      tiny counts, 1 repetition: checks that every row runs (figures meaningless)\n"
    "  --reps N     repetitions of each side (1..31)\n"
    "  --only TEXT  rows whose name contains TEXT, or a group: frame ring chan lock handoff "
    "stress\n"
    "  --json FILE  the rows as JSON: {\"machine\":{...},\"rows\":[{\"name\",\"unit\",\"value\",\n"
    "               "
    "\"baseline_name\",\"baseline\",\"ratio\",\"min_ratio\",\"max_ratio\",\"reps\",...}]}\n";

int st_bench_main(int argc, char **argv)
{
    enum { O_QUICK = 1, O_SMOKE, O_REPS, O_ONLY, O_JSON, O_HELP };
    static const struct option opts[] = {{"quick", no_argument, NULL, O_QUICK},
                                         {"smoke", no_argument, NULL, O_SMOKE},
                                         {"reps", required_argument, NULL, O_REPS},
                                         {"only", required_argument, NULL, O_ONLY},
                                         {"json", required_argument, NULL, O_JSON},
                                         {"help", no_argument, NULL, O_HELP},
                                         {NULL, 0, NULL, 0}};
    memset(&g_opt, 0, sizeof(g_opt));
    bench_mode = BENCH_FULL;
    bench_reps = -1;
    optind = 1;
    opterr = 0;
    for (;;) {
        int o = getopt_long(argc, argv, "", opts, NULL);
        if (o == -1) break;
        switch (o) {
        case O_QUICK:
            bench_mode = BENCH_QUICK;
            break;
        case O_SMOKE:
            bench_mode = BENCH_SMOKE;
            break;
        case O_REPS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > B_MAX_REPS) {
                fprintf(stderr, "ipcproof bench: --reps must be 1..%d\n", B_MAX_REPS);
                return 2;
            }
            bench_reps = (int)n;
            break;
        }
        case O_ONLY:
            g_opt.only = optarg;
            break;
        case O_JSON:
            g_opt.json = optarg;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "ipcproof bench: bad option '%s'\n", argv[optind - 1]);
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ipcproof bench: unexpected argument '%s'\n", argv[optind]);
        fputs(usage_text, stderr);
        return 2;
    }
    if (bench_reps < 0) bench_reps = bench_mode == BENCH_SMOKE ? 1 : 5;

    /* A reader gone is an error return, never a signal; a pipe channel then also skips its
     * per-write SIGPIPE mask (fdchan.h), as a server that ignores SIGPIPE would. */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bench_on_alarm; /* no SA_RESTART: a blocked call returns EINTR */
    sigemptyset(&sa.sa_mask);
    struct sigaction old_alarm;
    sigaction(SIGALRM, &sa, &old_alarm);

    struct bench_machine m;
    memset(&m, 0, sizeof(m));
    m.ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    bench_read_line("/proc/cpuinfo", "model name", m.cpu, sizeof(m.cpu));
    struct utsname u;
    if (uname(&u) == 0) snprintf(m.kernel, sizeof(m.kernel), "%s", u.release);
    bench_read_line("/proc/loadavg", NULL, m.load0, sizeof(m.load0));

    g_ncases = bench_nrows = 0;
    build_cases();
    printf("ipcproof bench (%s): %d alternating repetition%s per row; ratio = protocol / "
           "baseline, median with min and max\n",
           bench_mode_name[bench_mode], bench_reps, bench_reps == 1 ? "" : "s");
    printf("machine: %ld CPUs, %s, Linux %s, load %s\n", m.ncpu, m.cpu[0] ? m.cpu : "?", m.kernel,
           m.load0);
    printf("build: %s, %s, sanitizers: %s\n", bench_compiler(),
           bench_optimized() ? "optimized" : "NOT optimized", bench_sanitizers());
    if (!bench_optimized() || strcmp(bench_sanitizers(), "none") != 0)
        printf("warning: figures of an unoptimized or sanitized build say little about a "
               "release build\n");
    if (bench_mode == BENCH_SMOKE) printf("smoke mode: the figures mean nothing\n");
    printf("\n");
    bench_print_header();

    int64_t t0 = bench_now_ns();
    int failures = 0, selected = 0;
    for (int i = 0; i < g_ncases; i++) {
        if (!case_selected(&g_cases[i])) continue;
        selected++;
        int first = bench_nrows;
        int64_t c0 = bench_now_ns();
        if (run_case(&g_cases[i]) < 0) failures++;
        for (int k = first; k < bench_nrows; k++)
            bench_rows[k].seconds = (double)(bench_now_ns() - c0) / 1e9;
        for (int k = first; k < bench_nrows; k++) {
            bench_row_noise(&bench_rows[k]);
            bench_print_row(&bench_rows[k]);
        }
    }
    double seconds = (double)(bench_now_ns() - t0) / 1e9;
    bench_read_line("/proc/loadavg", NULL, m.load1, sizeof(m.load1));
    printf("\n%d row%s in %.1f s; load at the end %s\n", bench_nrows, bench_nrows == 1 ? "" : "s",
           seconds, m.load1);
    sigaction(SIGALRM, &old_alarm, NULL);
    if (selected == 0) {
        fprintf(stderr, "ipcproof bench: no row matches --only %s\n", g_opt.only);
        return 2;
    }
    if (g_opt.json && bench_write_json(g_opt.json, &m, seconds) < 0) return 1;
    return failures ? 1 : 0;
}

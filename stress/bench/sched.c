/* sched.c - the sched family of `ipcproof bench` (bench.h): the scheduler's cost, schedules of
 * `--mode sched` against the same workload on the operating system's scheduler. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"
#include "atomics.h"

/* The workloads of issue 12: the example ring, 2 threads and 16 messages; the example robust
 * mutex, 3 contenders and 20 acquisitions each. Side 0 runs c->count schedules in one `--mode
 * sched` run (the TSan build of the plugin); side 1 runs the same workload in `--mode thread`
 * (the plain build), one run per process, SCHED_B_UNSCHED times. Both figures are runs of the
 * workload per second of wall time, process start included (side 1 pays it every run). */
#define SCHED_B_UNSCHED 10
static const struct {
    const char *plugin, *args[8];
} sched_work[] = {
    {"good_ring",
     {"--kind", "channel", "--producers", "1", "--consumers", "1", "--messages", "16"}},
    {"good_robust_mutex", {"--kind", "lock", "--workers", "3", "--messages", "20", NULL, NULL}},
};

static const char *sched_plugin(int w, int tsan)
{
    static char path[2][2][PATH_MAX];
    const char *exe = bench_self_exe();
    if (exe == NULL) return NULL;
    const char *slash = strrchr(exe, '/');
    snprintf(path[w][tsan], sizeof(path[w][tsan]), "%.*s/plugins/%s%s.so",
             (int)(slash ? slash - exe : 1), slash ? exe : ".", tsan ? "tsan/" : "",
             sched_work[w].plugin);
    return access(path[w][tsan], R_OK) == 0 ? path[w][tsan] : NULL;
}

static int run_sched(const struct bench_case *c, int side, double v[2], char *err, size_t cap)
{
    const char *plugin = sched_plugin(c->variant, side == 0);
    if (plugin == NULL) return bench_fail(err, cap, "no example plugin next to ipcproof");
    char count[32];
    snprintf(count, sizeof(count), "%ld", c->count);
    const char *args[24] = {"stress", "--plugin", plugin, "--mode", side ? "thread" : "sched",
                            "--seed", "1"};
    int n = 7;
    for (int i = 0; i < 8 && sched_work[c->variant].args[i]; i++)
        args[n++] = sched_work[c->variant].args[i];
    if (side == 0) args[n++] = "--schedules", args[n++] = count;
    args[n] = NULL;
    int runs = side == 0 ? 1 : SCHED_B_UNSCHED;
    double total = 0;
    for (int r = 0; r < runs; r++) {
        double secs;
        json_t *root = bench_spawn_stress(args, &secs, err, cap);
        if (root == NULL) return -1;
        json_decref(root);
        total += secs;
    }
    v[0] = (side == 0 ? (double)c->count : (double)runs) / total;
    return 0;
}

static const char *sched_na(const struct bench_def *d)
{
    if (strcmp(bench_sanitizers(), "none") != 0)
        return "--mode sched needs a build of ipcproof without sanitizers";
    if (sched_plugin(d->variant, 1) == NULL || sched_plugin(d->variant, 0) == NULL)
        return "the example plugins are not next to ipcproof (a build tree's stress/)";
    return NULL;
}

#define SCHED_ROW(stem_, w)                                                                        \
    {                                                                                              \
        .stem = stem_, .kind = K_SCALAR, .variant = w, .count = {400}, .floor = 4,                 \
        .unit = "runs/s", .fixed = 1,                                                              \
        .how = {{.name = "one schedule (--mode sched)", .run = run_sched},                         \
                {.name = "one run on the OS scheduler (--mode thread)", .run = run_sched}},        \
        .na = sched_na                                                                             \
    }

/* count: schedules in the sched run */
static const struct bench_def sched_defs[] = {
    SCHED_ROW("sched/ring-2t-16msg", 0),
    SCHED_ROW("sched/lock-3w-20acq", 1),
};

const struct bench_family bench_sched = {"sched", sched_defs, IPCP_ARRAY_SIZE(sched_defs)};

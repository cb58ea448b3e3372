/* stress.c - the stress family of `ipcproof bench` (bench.h): whole `ipcproof stress` runs of
 * this binary, and the helpers the exec and sched families share: the checker's overhead, a
 * verified run against the same with --no-verify. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"
#include "atomics.h"
#include "spawn.h"

const char *bench_sanitizers(void)
{
#if defined(IPCP_TSAN)
    return "thread";
#elif defined(IPCP_ASAN)
    return "address";
#else
    return "none";
#endif
}

const char *bench_self_exe(void)
{
    static char path[PATH_MAX];
    if (path[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
        if (n <= 0) return NULL;
        path[n] = '\0';
    }
    return path;
}

static const char *tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* Runs `ipcproof ARGS --json F --quiet` (args[0] is "stress"), within the run limit; returns its
 * report (to json_decref) and the wall time, or NULL with err set (and the first line of its
 * output). */
json_t *bench_spawn_stress(const char *const *args, double *secs, char *err, size_t cap)
{
    const char *exe = bench_self_exe();
    if (exe == NULL) return bench_fail(err, cap, "cannot read /proc/self/exe"), NULL;
    char json[PATH_MAX - 16], log[PATH_MAX];
    snprintf(json, sizeof(json), "%s/ipcp-bench-%ld-XXXXXX", tmp_dir(), (long)getpid());
    int fd = mkstemp(json);
    if (fd < 0) return bench_fail(err, cap, "mkstemp: %s", strerror(errno)), NULL;
    close(fd);
    snprintf(log, sizeof(log), "%s.log", json);
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)exe;
    for (int i = 0; args[i] != NULL && n < 36; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = "--json";
    argv[n++] = json;
    argv[n++] = "--quiet";
    argv[n] = NULL;
    int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct st_child_opts o = {.out_fd = lf, .in_null = 1, .die_with_parent = 1};
    int64_t t0 = bench_now_ns();
    pid_t pid = lf < 0 ? -errno : st_spawn_exec(&o, argv, NULL);
    if (lf >= 0) close(lf);
    json_t *root = NULL;
    if (pid < 0) {
        bench_fail(err, cap, "fork: %s", strerror((int)-pid));
    } else {
        int st = bench_reap(pid, B_RUN_LIMIT_S * 1000);
        *secs = (double)(bench_now_ns() - t0) / 1e9;
        json_error_t je;
        root = json_load_file(json, 0, &je);
        const char *res = root ? json_string_value(json_object_get(root, "result")) : NULL;
        if (st != 0 || res == NULL || strcmp(res, "pass") != 0) {
            char line[120] = "";
            FILE *f = fopen(log, "r");
            if (f) {
                if (fgets(line, sizeof(line), f) == NULL) line[0] = '\0';
                line[strcspn(line, "\n")] = '\0';
                fclose(f);
            }
            bench_fail(err, cap, "ipcproof %s exited with %d, result %s%s%s", args[0], st,
                       res ? res : "?", line[0] ? ": " : "", line);
            json_decref(root);
            root = NULL;
        }
    }
    unlink(json);
    unlink(log);
    return root;
}

/* stats.msgs_per_s of `ipcproof ARGS` (a stress run) into v[0]; 0 or -1 with err set. */
int bench_stress_mps(const char *const *args, double v[2], char *err, size_t cap)
{
    double secs;
    json_t *root = bench_spawn_stress(args, &secs, err, cap);
    if (root == NULL) return -1;
    json_t *mps = json_object_get(json_object_get(root, "stats"), "msgs_per_s");
    int ok = json_is_number(mps) && json_number_value(mps) > 0;
    if (ok)
        v[0] = json_number_value(mps);
    else
        bench_fail(err, cap, "stress reported no msgs/s");
    json_decref(root);
    return ok ? 0 : -1;
}

/* `ipcproof stress --proto frame-unix --messages N [--no-verify]`. */
static int run_stress(const struct bench_case *c, int side, double v[2], char *err, size_t cap)
{
    char count[32];
    snprintf(count, sizeof(count), "%ld", c->count);
    const char *args[] = {
        "stress", "--proto", "frame-unix", "--messages", count, side ? "--no-verify" : NULL, NULL};
    return bench_stress_mps(args, v, err, cap);
}

static const struct bench_def stress_defs[] = {
    {.stem = "stress-verify/frame-unix",
     .kind = K_SCALAR,
     .count = {200000},
     .floor = 2000,
     .unit = "msgs/s",
     .fixed = 1, /* each run is a whole stress case; its count is fixed */
     .how = {{.name = "stress (verified)", .run = run_stress},
             {.name = "stress --no-verify", .run = run_stress}},
     .aim_op = AIM_GE,
     .aim = {0.85}},
};

const struct bench_family bench_stress = {"stress", stress_defs, IPCP_ARRAY_SIZE(stress_defs)};

/* exec.c - the exec family of `ipcproof bench` (bench.h): the black box's cost, programs as
 * endpoints against a plugin on the same transport, both through `ipcproof stress`. */
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "bench.h"
#include "atomics.h"

/* The shell pair of stress/exec/examples (cat into a FIFO, cat out of it: the framing passes
 * through unchanged) against the built-in frame-fifo, both through `ipcproof stress`, so the
 * ratio is what a user pays for checking programs instead of a plugin. */
static const char *exec_examples(void)
{
#ifdef IPCP_SOURCE_DIR
    static char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/stress/exec/examples", IPCP_SOURCE_DIR);
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof(probe), "%s/shell_producer.sh", dir);
    if (access(probe, X_OK) == 0) return dir;
#endif
    return NULL;
}

static int run_exec(const struct bench_case *c, int side, double v[2], char *err, size_t cap)
{
    char count[32], p[4][PATH_MAX + 32];
    snprintf(count, sizeof(count), "%ld", c->count);
    const char *dir = exec_examples();
    if (dir == NULL) return bench_fail(err, cap, "no stress/exec/examples");
    static const char *const files[] = {"shell_producer.sh", "shell_consumer.sh", "shell_setup.sh",
                                        "fifo_teardown.sh"};
    for (int i = 0; i < 4; i++)
        snprintf(p[i], sizeof(p[i]), "%s/%s", dir, files[i]);
    const char *exec_args[] = {"stress", "--exec-producer",
                               p[0],     "--exec-consumer",
                               p[1],     "--exec-setup",
                               p[2],     "--exec-teardown",
                               p[3],     "--messages",
                               count,    "--seed",
                               "1",      NULL};
    const char *plugin_args[] = {"stress", "--proto", "frame-fifo", "--messages",
                                 count,    "--seed",  "1",          NULL};
    return bench_stress_mps(side == 0 ? exec_args : plugin_args, v, err, cap);
}

static const char *exec_na(const struct bench_def *d)
{
    (void)d;
    return exec_examples() == NULL ? "stress/exec/examples is not at hand (a source checkout)"
                                   : NULL;
}

static const struct bench_def exec_defs[] = {
    {.stem = "exec/fifo-shell-pair",
     .kind = K_SCALAR,
     .count = {100000},
     .floor = 2000,
     .unit = "msgs/s",
     .how = {{.name = "programs (--exec-*: cat into a FIFO, cat out)", .run = run_exec},
             {.name = "plugin (--proto frame-fifo)", .run = run_exec}},
     .na = exec_na},
};

/* In the stress group: `--only stress` selects it with stress-verify. */
const struct bench_family bench_exec = {"stress", exec_defs, IPCP_ARRAY_SIZE(exec_defs)};

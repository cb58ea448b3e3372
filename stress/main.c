/* main.c - the ipcproof command line: a table of commands, each in its own module.
 *
 * Exit status of every command: 0 success / no violation; 1 violations (stress, validate) or
 * "still fails" (repro); 2 usage or setup error, with a message on stderr naming what was wrong.
 * See docs/stress.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cli.h"
#include "stress.h"

#ifndef IPCP_VERSION
#define IPCP_VERSION "0"
#endif

/* One command's help (bench prints its own), or every command's. */
static int help_for(const char *cmd)
{
    if (cmd != NULL && strcmp(cmd, "bench") == 0) {
        char *argv[] = {"bench", "--help", NULL};
        return st_bench_main(2, argv);
    }
    if (cmd != NULL && st_usage_cmd(stdout, cmd) == 0) return 0;
    if (cmd != NULL && strcmp(cmd, "--help") != 0 && strcmp(cmd, "-h") != 0) {
        fprintf(stderr, "ipcproof help: unknown command '%s'\n", cmd);
        st_usage(stderr);
        return 2;
    }
    st_usage(stdout);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    return help_for(argc > 1 ? argv[1] : NULL);
}

static int list_protocols(void)
{
    int status = 0;
    /* the header is a comment: scripts take the first word of every other line */
    printf("# %-14s %-8s %-22s %s\n", "protocol", "kind", "ordering", "robust (a holder's death)");
    for (size_t i = 0; i < st_builtin_count(); i++) {
        const struct ipcp_channel_ops *ch;
        const struct ipcp_lock_ops *lk;
        const char *tname;
        st_builtin_get(i, &ch, &lk, &tname);
        const char *name = ch ? ch->name : lk->name;
        if (strcmp(name, tname) != 0) {
            fprintf(stderr, "ipcproof list: protos.def names '%s' but its ops say '%s'\n", tname,
                    name);
            status = 2;
        }
        if (ch)
            printf("%-16s %-8s %-22s %s\n", ch->name, "channel",
                   ch->flags & IPCP_CHAN_FIFO ? "fifo per producer" : "none promised", "-");
        else
            printf("%-16s %-8s %-22s %s\n", lk->name, "lock",
                   lk->flags & IPCP_LOCK_FAIR ? "fair (first come)" : "none promised",
                   lk->flags & IPCP_LOCK_ROBUST ? "yes: lock() says so" : "no");
    }
    return status;
}

static int cmd_list(int argc, char **argv)
{
    if (argc > 1) st_cli_die("list", "unexpected argument '%s'", argv[1]);
    return list_protocols();
}

/* repro: the reproduction workflow lives in the source tree's ci/reproduce (it builds the
 * sanitizer flavour there); run it with our arguments and hand back its exit status (0 fixed,
 * 1 still fails, 2 usage or build error). IPCPROOF_SOURCE_DIR overrides the build-time path. */
static int cmd_repro(int argc, char **argv)
{
    const char *src = getenv("IPCPROOF_SOURCE_DIR");
    if (src == NULL || src[0] == '\0') src = IPCP_SOURCE_DIR;
    char script[4096];
    snprintf(script, sizeof(script), "%s/ci/reproduce", src);
    if (access(script, X_OK) != 0) {
        fprintf(stderr,
                "ipcproof repro: %s not found: set IPCPROOF_SOURCE_DIR to an ipcproof checkout\n",
                script);
        return 2;
    }
    if (argc < 2) st_cli_die("repro", "which crash file? (ipcproof repro FILE)");
    argv[0] = script;
    execv(script, argv);
    fprintf(stderr, "ipcproof repro: %s: %s\n", script, strerror(errno));
    return 2;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("ipcproof %s\nplugin ABI %d\ncc: %s\nsanitizers: %s\n", IPCP_VERSION,
           IPCP_PLUGIN_ABI_VERSION, st_build_cc(),
           st_build_sanitizers()[0] ? st_build_sanitizers() : "none");
    return 0;
}

static const struct {
    const char *name;
    int (*main)(int argc, char **argv);
} commands[] = {
    {"stress", st_stress_main},
    {"validate", st_validate_main},
    {"bench", st_bench_main},
    {"repro", cmd_repro},
    {"list", cmd_list},
    {"clean", st_clean_main},
    {"describe", st_describe_main},
    {"replay", st_replay_main},
    {"version", cmd_version},
    {"--version", cmd_version},
    {"help", cmd_help},
    {"--help", cmd_help},
    {"-h", cmd_help},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        st_usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        /* `COMMAND --help` and `COMMAND -h`, anywhere after it: that command's help, exit 0 */
        for (int a = 2; a < argc && commands[i].main != cmd_help; a++)
            if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0)
                return help_for(argv[1][0] == '-' ? NULL : argv[1]);
        return commands[i].main(argc - 1, argv + 1);
    }
    st_cli_die(argv[1], "unknown command (stress, validate, bench, repro, list, clean, version, "
                        "help)");
}

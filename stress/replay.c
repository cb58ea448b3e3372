/* replay.c - `ipcproof replay REPORT.json`: one schedule of --mode sched, run again.
 *
 * The report of a failing `ipcproof stress --mode sched` run (its --json file, which may be kept
 * as FILE.sched) names the protocol, the configuration, the seed and the schedule that failed
 * (`repro`) and the schedule's trace hash. replay runs exactly that schedule again, prints its
 * trace and says whether it is the same interleaving: exit status 1 when the violation happens
 * again with the same trace (reproduced), 0 when the schedule now passes (fixed), 2 when it ran
 * differently (the protocol or ipcproof changed) or could not run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "spawn.h"
#include "stress.h"

#define MAX_WORDS 96

/* Splits the rerun line "ipcproof stress ..." like a shell would (single quotes only, which is
 * what st_config_repro() writes). Returns the word count, -1 when it is not such a line. */
static int split(char *line, char **w, int cap)
{
    int n = 0;
    char *p = line, *o = line;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        if (n >= cap - 1) return -1;
        w[n++] = o;
        while (*p && *p != ' ') {
            if (*p == '\'') {
                for (p++; *p && *p != '\''; p++)
                    *o++ = *p;
                if (*p == '\'') p++;
            } else if (*p == '\\' && p[1]) {
                *o++ = p[1];
                p += 2;
            } else {
                *o++ = *p++;
            }
        }
        if (*p) p++;
        *o++ = '\0';
    }
    w[n] = NULL;
    return n >= 2 && strcmp(w[0], "ipcproof") == 0 && strcmp(w[1], "stress") == 0 ? n : -1;
}

int st_replay_main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        st_cli_die("replay", "which report? (ipcproof replay REPORT.json, the --json file of a "
                             "failing --mode sched run)");
    json_error_t je;
    json_t *root = json_load_file(argv[1], 0, &je);
    if (root == NULL) st_cli_die("replay", "%s: %s", argv[1], je.text);
    const char *repro = json_string_value(json_object_get(root, "repro"));
    json_t *sched = json_object_get(root, "sched");
    const char *hash = json_string_value(json_object_get(sched, "trace_hash"));
    if (repro == NULL || sched == NULL || hash == NULL || strstr(repro, "--mode sched") == NULL ||
        strstr(repro, "--schedule ") == NULL)
        st_cli_die("replay", "%s is not the report of a failing --mode sched run", argv[1]);
    char line[4096], *words[MAX_WORDS + 4];
    snprintf(line, sizeof(line), "%s", repro);
    int n = split(line, words, MAX_WORDS);
    if (n < 0) st_cli_die("replay", "%s: its rerun line cannot be read", argv[1]);
    char tmp[] = "/tmp/ipcproof-replay-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "ipcproof replay: mkstemp: %s\n", strerror(errno));
        json_decref(root);
        return 2;
    }
    close(fd);
    words[0] = (char *)st_self_exe();
    words[n++] = "--json";
    words[n++] = tmp;
    words[n] = NULL;
    printf("replaying schedule of %s\n  %s\n", argv[1], repro);
    fflush(stdout);
    struct st_child_opts o = {.out_fd = -1, .die_with_parent = 1};
    pid_t pid = st_spawn_exec(&o, words, NULL);
    int rc = pid > 0 ? st_wait_timeout(pid, 3600) : -1;
    json_t *now = json_load_file(tmp, 0, &je);
    unlink(tmp);
    const char *hash2 =
        json_string_value(json_object_get(json_object_get(now, "sched"), "trace_hash"));
    int status;
    if (rc == 0) {
        printf("the schedule passes now: fixed\n");
        status = 0;
    } else if (rc == 1 && hash2 && strcmp(hash, hash2) == 0) {
        printf("reproduced: the same interleaving (trace %s)\n", hash);
        status = 1;
    } else {
        printf("the schedule ran differently (trace %s, recorded %s): the protocol or ipcproof "
               "changed since the report was written\n",
               hash2 ? hash2 : "none", hash);
        status = 2;
    }
    json_decref(now);
    json_decref(root);
    return status;
}

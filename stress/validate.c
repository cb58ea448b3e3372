/* validate.c - `ipcproof validate`: the whole battery on one protocol, for the whole budget.
 *
 * The battery is a table of cases (vbattery.c), each a separate `ipcproof stress ... --json`
 * run (this binary, or the ThreadSanitizer build for the thread-mode cases), so one case cannot
 * disturb the next and every row comes with the exact command that reruns it. The first round
 * runs every case once; then, while the budget (--budget, 60 s) lasts, more rounds run every
 * case again with new seeds, longer runs, denser signal storms and varied pauses between lock
 * acquisitions. The table reports, per case, how many runs and which seeds failed.
 *
 * The protocol is never loaded here: `ipcproof describe` (in a protocol host of the binary that
 * will run it) says what it exports. A plugin that crashes, exits or hangs while loading, or
 * whose create() or destroy() does, ends the battery at once with that verdict: every other case
 * would only repeat it. Every run has a deadline; SIGINT/SIGTERM stop the running case (which
 * cleans up after itself) and remove the temp directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "elfinfo.h"
#include "plugbuild.h"
#include "spawn.h"
#include "stress.h"
#include "validate.h"

#ifndef IPCP_TSAN_BIN_DEFAULT
#define IPCP_TSAN_BIN_DEFAULT ""
#endif
#ifndef IPCP_PLAIN_BIN_DEFAULT
#define IPCP_PLAIN_BIN_DEFAULT ""
#endif
#ifndef IPCP_VERSION
#define IPCP_VERSION "0"
#endif
#ifndef IPCP_INCLUDE_DIR_BUILD
#define IPCP_INCLUDE_DIR_BUILD ""
#endif
#ifndef IPCP_INCLUDE_DIR_INSTALL
#define IPCP_INCLUDE_DIR_INSTALL ""
#endif

static volatile int interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

void vt_note(struct vstate *v, const char *fmt, ...)
{
    size_t len = strlen(v->notes);
    if (len + 4 >= sizeof(v->notes)) return;
    if (len) {
        strcpy(v->notes + len, "\n  ");
        len += 3;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->notes + len, sizeof(v->notes) - len, fmt, ap);
    va_end(ap);
}

/* ---- running one command -------------------------------------------------------------------- */

static int mmap_bits_high(void)
{
    FILE *f = fopen("/proc/sys/vm/mmap_rnd_bits", "re");
    int bits = 0;
    if (f) {
        if (fscanf(f, "%d", &bits) != 1) bits = 0;
        fclose(f);
    }
    return bits > 28;
}

/* Runs argv with stdout+stderr to log (inherited when NULL), in its own process group, dying
 * with us; SIGTERM to it on interruption (it cleans up, then SIGKILL after 5 s), SIGKILL after
 * timeout_s. Returns the exit status, 128+signal, or -1 (could not start, or killed). */
int vt_run(char *const argv[], const char *log, double timeout_s, int tsan)
{
    int fd = -1;
    if (log) fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    /* ThreadSanitizer of LLVM 14 dies on kernels with more than 28 bits of mmap randomisation;
     * setarch -R does the same as this, for this child only */
    int old = -1;
    if (tsan && mmap_bits_high()) old = personality(0xffffffff);
    if (old != -1) personality((unsigned long)old | ADDR_NO_RANDOMIZE);
    char *env[] = {tsan && getenv("TSAN_OPTIONS") == NULL
                       ? "TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1"
                       : NULL,
                   NULL};
    struct st_child_opts o = {.out_fd = fd, .in_null = 1, .new_pgrp = 1, .die_with_parent = 1};
    pid_t pid = st_spawn_exec(&o, argv, env);
    if (old != -1) personality((unsigned long)old);
    if (fd >= 0) close(fd);
    if (pid < 0) return -1;
    int st = 0;
    int r = st_wait_until(pid, &st, st_now_ns() + (int64_t)(timeout_s * 1e9), &interrupted);
    if (r == 0 && interrupted) { /* let it clean up: destroy(), its sweep, its report */
        kill(pid, SIGTERM);
        r = st_wait_until(pid, &st, st_now_ns() + 5000000000LL, NULL);
    }
    if (r != 1) {
        kill(-pid, SIGKILL);
        st_kill_reap(pid);
        return -1;
    }
    kill(-pid, SIGKILL); /* anything left in its group */
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- plugins, their builds and the TSan ipcproof -------------------------------------------- */

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *include_dir(void)
{
    static char buf[PATH_MAX * 2];
    const char *env = getenv("IPCPROOF_INCLUDE_DIR");
    if (env && *env) return env;
    /* an installed ipcproof (BINDIR/../include) before the source tree it was built from */
    char exe[PATH_MAX];
    snprintf(exe, sizeof(exe), "%s", st_self_exe());
    char *s = strrchr(exe, '/');
    if (s) *s = '\0';
    snprintf(buf, sizeof(buf), "%s/../include/ipcproof/plugin.h", exe);
    if (is_file(buf)) {
        snprintf(buf, sizeof(buf), "%s/../include", exe);
        return buf;
    }
    snprintf(buf, sizeof(buf), "%s/ipcproof/plugin.h", IPCP_INCLUDE_DIR_BUILD);
    if (IPCP_INCLUDE_DIR_BUILD[0] && is_file(buf)) return IPCP_INCLUDE_DIR_BUILD;
    return IPCP_INCLUDE_DIR_INSTALL;
}

/* ipcproof-tsan next to this binary (where a package installs the twin), or "". */
static const char *sibling_twin(void)
{
    static char buf[PATH_MAX + 16];
    snprintf(buf, sizeof(buf), "%s", st_self_exe());
    char *slash = strrchr(buf, '/');
    if (slash == NULL) return "";
    snprintf(slash + 1, sizeof(buf) - (size_t)(slash + 1 - buf), "ipcproof-tsan");
    return access(buf, X_OK) == 0 ? buf : "";
}

static const char *find_tsan_bin(void)
{
    if (st_is_tsan_build()) return st_self_exe();
    const char *env = getenv("IPCPROOF_TSAN_BIN");
    if (env != NULL) return *env && access(env, X_OK) == 0 ? env : NULL; /* "" = none */
    const char *twin = sibling_twin();
    if (twin[0]) return twin;
    if (IPCP_TSAN_BIN_DEFAULT[0] && access(IPCP_TSAN_BIN_DEFAULT, X_OK) == 0)
        return IPCP_TSAN_BIN_DEFAULT;
    return NULL;
}

/* A twin of another version or plugin ABI would judge another ipcproof's cases: not used. */
static void check_twin(struct vstate *v)
{
    if (v->tsan_bin == NULL || v->tsan_bin == st_self_exe()) return;
    char log[PATH_MAX * 2];
    snprintf(log, sizeof(log), "%s/twin-version.txt", v->tmpdir);
    char *argv[] = {(char *)v->tsan_bin, "version", NULL};
    int rc = vt_run(argv, log, 30, 1);
    char want[2][64], line[256];
    snprintf(want[0], sizeof(want[0]), "ipcproof %s\n", IPCP_VERSION);
    snprintf(want[1], sizeof(want[1]), "plugin ABI %d\n", IPCP_PLUGIN_ABI_VERSION);
    int seen = 0;
    FILE *f = rc == 0 ? fopen(log, "re") : NULL;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        for (int i = 0; i < 2; i++)
            if (strcmp(line, want[i]) == 0) seen |= 1 << i;
    if (f != NULL) fclose(f);
    unlink(log);
    if (seen == 3) return;
    vt_note(v, "%s is not this ipcproof's twin (not version %s, plugin ABI %d): thread mode runs "
               "without ThreadSanitizer",
            v->tsan_bin, IPCP_VERSION, IPCP_PLUGIN_ABI_VERSION);
    v->tsan_bin = NULL;
}

static int have_program(const char *name)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
        if (access(buf, X_OK) == 0) return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

/* Asks a TSan ipcproof which compiler built it (`ipcproof version`). */
static void tsan_cc(const char *bin, const char *tmpdir, char *cc, size_t cap)
{
    snprintf(cc, cap, "clang-14");
    char log[PATH_MAX * 2];
    snprintf(log, sizeof(log), "%s/version.txt", tmpdir);
    char *argv[] = {(char *)bin, "version", NULL};
    if (vt_run(argv, log, 30, 1) != 0) return;
    FILE *f = fopen(log, "re");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "cc: ", 4) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(cc, cap, "%s", line + 4);
        }
    fclose(f);
}

/* Decides which binary runs which plugin; 0, or -1 with the reason in v->error. */
static int choose_plugins(struct vstate *v)
{
    v->tsan_bin = find_tsan_bin();
    check_twin(v);
    if (v->proto || v->exec.producer || v->exec.worker) return 0;
    char why[256] = "";
    if (v->plugin_src) {
        char tcc[PATH_MAX] = "";
        if (v->tsan_bin)
            tsan_cc(v->tsan_bin, v->tmpdir, tcc, sizeof(tcc));
        else if (have_program("clang-14")) /* for the sched cases, run by the plain binary */
            snprintf(tcc, sizeof(tcc), "clang-14");
        struct st_plugbuild b = {.src = v->plugin_src,
                                 .cflags = v->cflags,
                                 .outdir = v->tmpdir,
                                 .cc = getenv("CC"),
                                 .cxx = getenv("CXX"),
                                 .tsan_cc = tcc[0] ? tcc : NULL,
                                 .include_dir = include_dir()};
        char err[8192];
        if (st_plugbuild(&b, v->built_plain, v->built_tsan, sizeof(v->built_plain), err,
                         sizeof(err)) < 0) {
            snprintf(v->error, sizeof(v->error), "building %s failed:\n%s", v->plugin_src, err);
            return -1;
        }
        if (err[0]) vt_note(v, "%s", err);
        v->plain_so = v->built_plain;
        v->tsan_so = v->built_tsan[0] ? v->built_tsan : NULL;
        return 0;
    }
    int k = st_elf_tsan_kind(v->plugin, why, sizeof(why));
    if (k < 0) {
        snprintf(v->error, sizeof(v->error), "--plugin %s: %s", v->plugin, why);
        return -1;
    }
    if (k == ST_TSAN_GCC) {
        snprintf(v->error, sizeof(v->error),
                 "%s was built with gcc's -fsanitize=thread, which needs libtsan.so and cannot be "
                 "loaded into ipcproof: build it with clang-14 -fsanitize=thread (--plugin-tsan) "
                 "or give the source with --plugin-src",
                 v->plugin);
        return -1;
    }
    if (k == ST_TSAN_CLANG) {
        v->tsan_so = v->plugin;
        v->plain_so = NULL;
    } else {
        v->plain_so = v->plugin;
    }
    if (v->plugin_tsan) {
        int t = st_elf_tsan_kind(v->plugin_tsan, why, sizeof(why));
        if (t != ST_TSAN_CLANG) {
            snprintf(v->error, sizeof(v->error),
                     "--plugin-tsan %s is not built with clang's -fsanitize=thread%s%s",
                     v->plugin_tsan, why[0] ? ": " : "", why);
            return -1;
        }
        v->tsan_so = v->plugin_tsan;
    }
    if (v->tsan_so && !v->tsan_bin && v->plain_so == NULL) {
        snprintf(v->error, sizeof(v->error),
                 "%s is a ThreadSanitizer build, but no TSan build of ipcproof was found (build "
                 "the tsan preset or set IPCPROOF_TSAN_BIN)",
                 v->tsan_so);
        return -1;
    }
    return 0;
}

/* The binary and plugin of a case; *tsan says whether the binary is a TSan build. */
void vt_binary_for(const struct vstate *v, int mode, const char **bin, const char **so, int *tsan)
{
    *bin = st_self_exe();
    *so = v->plain_so;
    *tsan = st_is_tsan_build();
    if (mode == ST_MODE_SCHED) { /* the TSan build of the plugin, in the plain binary */
        *bin = v->sched_bin;
        *so = v->tsan_so;
        *tsan = 0;
        return;
    }
    int thread = mode == ST_MODE_THREAD;
    if (v->exec.producer || v->exec.worker) return; /* programs: this binary, process mode */
    if (v->proto) {
        if (thread && v->tsan_bin) {
            *bin = v->tsan_bin;
            *tsan = 1;
        }
        return;
    }
    if (v->tsan_so && v->tsan_bin && (thread || v->plain_so == NULL)) {
        *bin = v->tsan_bin;
        *so = v->tsan_so;
        *tsan = 1;
    }
}

/* A file next to a binary (where a build tree keeps ipcproof's libraries), or in its libdir. */
static int sibling_exists(const char *bin, const char *file)
{
    char path[PATH_MAX * 2];
    const char *slash = strrchr(bin, '/');
    int dir = slash ? (int)(slash - bin) : 1;
    snprintf(path, sizeof(path), "%.*s/%s", dir, slash ? bin : ".", file);
    if (access(path, R_OK) == 0) return 1;
#ifdef IPCP_BIN_TO_LIBDIR
    snprintf(path, sizeof(path), "%.*s/%s/%s", dir, slash ? bin : ".", IPCP_BIN_TO_LIBDIR, file);
    if (access(path, R_OK) == 0) return 1;
#endif
    return 0;
}

/* Where the sched cases run: a build of ipcproof without sanitizers that has the scheduler
 * runtime (this one, $IPCPROOF_PLAIN_BIN, or the default preset's build of the source tree),
 * with the ThreadSanitizer build of the plugin (the instrumentation is what makes every atomic
 * operation a scheduling point). */
static void choose_sched(struct vstate *v)
{
    if (!st_build_sanitizers()[0] && st_sched_lib() != NULL) {
        v->sched_bin = st_self_exe();
    } else {
        const char *env = getenv("IPCPROOF_PLAIN_BIN");
        if (env != NULL && *env && access(env, X_OK) == 0)
            v->sched_bin = env;
        else if (IPCP_PLAIN_BIN_DEFAULT[0] && access(IPCP_PLAIN_BIN_DEFAULT, X_OK) == 0)
            v->sched_bin = IPCP_PLAIN_BIN_DEFAULT;
    }
    if (v->sched_bin == NULL)
        snprintf(v->sched_na, sizeof(v->sched_na),
                 "no build of ipcproof without sanitizers with the scheduler runtime (build the "
                 "default preset or set IPCPROOF_PLAIN_BIN)");
    else if (v->proto && !sibling_exists(v->sched_bin, "libipcproof-protos-sched.so"))
        snprintf(v->sched_na, sizeof(v->sched_na),
                 "no libipcproof-protos-sched.so (the instrumented built-in protocols) next to %s",
                 v->sched_bin);
    else if (!v->proto && v->tsan_so == NULL)
        snprintf(v->sched_na, sizeof(v->sched_na),
                 "no clang -fsanitize=thread build of the plugin, whose atomics the scheduler "
                 "would not see (give --plugin-src, or --plugin-tsan)");
}

/* ---- what the protocol is ------------------------------------------------------------------- */

/* 0, 1 (loading it failed: a verdict, in v->error), 2 (an error, in v->error). */
static int describe(struct vstate *v)
{
    if (v->exec.producer) { /* programs: a channel, FIFO when the user says so */
        v->has_chan = 1;
        snprintf(v->chan_name, sizeof(v->chan_name), "exec");
        v->chan_flags = v->exec.fifo ? IPCP_CHAN_FIFO : 0;
        return 0;
    }
    if (v->exec.worker) { /* programs: a lock, robust when the user says so */
        v->has_lock = 1;
        snprintf(v->lock_name, sizeof(v->lock_name), "exec");
        v->lock_flags = v->exec.robust ? IPCP_LOCK_ROBUST : 0;
        return 0;
    }
    const char *bin, *so;
    int tsan;
    vt_binary_for(v, ST_MODE_PROCESS, &bin, &so, &tsan);
    char out[PATH_MAX];
    snprintf(out, sizeof(out), "%s/describe.json", v->tmpdir);
    char *argv[] = {(char *)bin, "describe", v->proto ? "--proto" : "--plugin",
                    (char *)(v->proto ? v->proto : so), NULL};
    int rc = vt_run(argv, out, 30, tsan);
    json_error_t je;
    json_t *o = json_load_file(out, JSON_DISABLE_EOF_CHECK, &je);
    const char *res = json_string_value(json_object_get(o, "result"));
    if (o == NULL || res == NULL) {
        snprintf(v->error, sizeof(v->error), "`%s describe` failed (status %d)", bin, rc);
        json_decref(o);
        return 2;
    }
    if (strcmp(res, "ok") != 0) {
        const char *e = json_string_value(json_object_get(o, "error"));
        snprintf(v->error, sizeof(v->error), "%s", e ? e : res);
        int verdict = strcmp(res, "crash") == 0 ? 1 : 2;
        json_decref(o);
        return verdict;
    }
    json_t *ch = json_object_get(o, "channel"), *lk = json_object_get(o, "lock");
    v->has_chan = ch != NULL;
    v->has_lock = lk != NULL;
    if (ch) {
        snprintf(v->chan_name, sizeof(v->chan_name), "%s",
                 json_string_value(json_object_get(ch, "name")));
        v->chan_flags = (uint32_t)json_integer_value(json_object_get(ch, "flags"));
    }
    if (lk) {
        snprintf(v->lock_name, sizeof(v->lock_name), "%s",
                 json_string_value(json_object_get(lk, "name")));
        v->lock_flags = (uint32_t)json_integer_value(json_object_get(lk, "flags"));
    }
    json_decref(o);
    return 0;
}

/* ---- output --------------------------------------------------------------------------------- */

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[PATH_MAX * 2];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* A child that removes the temp directory when validate dies without doing it (SIGKILL): it waits
 * for its parent-death signal with every signal blocked (a Ctrl-C to the process group is
 * validate's to handle) and no fd open (it holds no pipe of validate's open). Stopped once
 * validate has removed the directory itself. */
static pid_t janitor_start(const char *dir)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (int fd = 0; fd < 1024; fd++)
        close(fd);
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    if (getppid() == parent) {
        sigset_t w;
        sigemptyset(&w);
        sigaddset(&w, SIGUSR1);
        int sig;
        while (sigwait(&w, &sig) != 0)
            ;
    }
    rm_tree(dir);
    _exit(0);
}

static void janitor_stop(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    (void)st_wait_timeout(pid, 5);
}

static void usage_die(const char *fmt, const char *arg)
{
    st_cli_die("validate", fmt, arg);
}

static void parse(struct vstate *v, int argc, char **argv)
{
    static const struct option opts[] = {
        {"proto", required_argument, NULL, 'p'},
        {"plugin", required_argument, NULL, 'P'},
        {"plugin-tsan", required_argument, NULL, 'T'},
        {"plugin-src", required_argument, NULL, 'S'},
        {"cflags", required_argument, NULL, 'c'},
        {"budget", required_argument, NULL, 'b'},
        {"json", required_argument, NULL, 'j'},
        {"seed", required_argument, NULL, 's'},
        {"kind", required_argument, NULL, 'k'},
        {"opt", required_argument, NULL, 'o'},
        {"no-sandbox", no_argument, NULL, 'N'},
        {"verbose", no_argument, NULL, 'v'},
        {"exec-producer", required_argument, NULL, 'E'},
        {"exec-consumer", required_argument, NULL, 'C'},
        {"exec-setup", required_argument, NULL, 'U'},
        {"exec-teardown", required_argument, NULL, 'D'},
        {"fifo", no_argument, NULL, 'F'},
        {"exec-worker", required_argument, NULL, 'W'},
        {"robust", no_argument, NULL, 'R'},
        {"sarif", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    v->budget = 60;
    v->seed = ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16)) & 0xffffffffu;
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p':
            v->proto = optarg;
            break;
        case 'P':
            v->plugin = optarg;
            break;
        case 'T':
            v->plugin_tsan = optarg;
            break;
        case 'S':
            v->plugin_src = optarg;
            break;
        case 'c':
            v->cflags = optarg;
            break;
        case 'j':
            v->json = optarg;
            break;
        case 'o':
            v->opt = optarg;
            break;
        case 'N':
            v->no_sandbox = 1;
            break;
        case 'v':
            v->verbose = 1;
            break;
        case 'b':
            v->budget = st_cli_double("validate", "--budget", optarg, 1, 86400);
            break;
        case 's':
            v->seed = st_cli_u64("validate", "--seed", optarg, 0, INT64_MAX / 2);
            break;
        case 'k':
            if (strcmp(optarg, "channel") == 0)
                v->kind = ST_KIND_CHANNEL;
            else if (strcmp(optarg, "lock") == 0)
                v->kind = ST_KIND_LOCK;
            else
                usage_die("--kind: '%s' is not channel or lock", optarg);
            break;
        case 'E':
            v->exec.producer = optarg;
            break;
        case 'C':
            v->exec.consumer = optarg;
            break;
        case 'U':
            v->exec.setup = optarg;
            break;
        case 'D':
            v->exec.teardown = optarg;
            break;
        case 'F':
            v->exec.fifo = 1;
            break;
        case 'W':
            v->exec.worker = optarg;
            break;
        case 'R':
            v->exec.robust = 1;
            break;
        case 'A':
            v->sarif = optarg;
            break;
        case 'h':
            (void)st_usage_cmd(stdout, "validate");
            exit(0);
        default:
            usage_die("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_die("unexpected argument '%s'", argv[optind]);
    int exec =
        v->exec.producer || v->exec.consumer || v->exec.setup || v->exec.teardown || v->exec.worker;
    if (v->exec.worker && (v->exec.producer || v->exec.consumer || v->exec.fifo))
        usage_die("%s", "--exec-worker (lock contenders) goes without --exec-producer, "
                        "--exec-consumer and --fifo");
    if (v->exec.worker && !*v->exec.worker) usage_die("%s", "--exec-worker needs a command");
    if (v->exec.robust && !v->exec.worker) usage_die("%s", "--robust goes with --exec-worker");
    if (v->exec.worker && v->kind == ST_KIND_CHANNEL)
        usage_die("%s", "--kind channel: --exec-worker runs lock contenders");
    if (exec && !v->exec.worker &&
        (!v->exec.producer || !v->exec.consumer || !*v->exec.producer || !*v->exec.consumer))
        usage_die("%s", "black-box endpoints need both --exec-producer 'CMD' and "
                        "--exec-consumer 'CMD' (docs/exec.md)");
    if (v->exec.fifo && !exec) usage_die("%s", "--fifo goes with --exec-producer/--exec-consumer");
    if (exec && !v->exec.worker && v->kind == ST_KIND_LOCK)
        usage_die("%s", "--kind lock: lock contenders are --exec-worker 'CMD'");
    if ((v->proto != NULL) + (v->plugin != NULL) + (v->plugin_src != NULL) + exec != 1)
        usage_die("%s", "exactly one of --proto, --plugin, --plugin-src, --exec-producer/"
                        "--exec-consumer and --exec-worker");
    if (v->plugin_tsan && !v->plugin) usage_die("%s", "--plugin-tsan goes with --plugin");
    if (v->cflags && !v->plugin_src) usage_die("%s", "--cflags goes with --plugin-src");
}

int st_validate_main(int argc, char **argv)
{
    struct vstate *v = calloc(1, sizeof(*v));
    if (v == NULL) return 2;
    parse(v, argc, argv);
    /* the report's file first: a bad path is an error before anything runs */
    if (v->json != NULL && (v->jf = fopen(v->json, "we")) == NULL)
        st_cli_die("validate", "--json: cannot write '%s': %s", v->json, strerror(errno));
    if (v->sarif != NULL && (v->sf = fopen(v->sarif, "we")) == NULL)
        st_cli_die("validate", "--sarif: cannot write '%s': %s", v->sarif, strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    (void)st_subreaper_enable(); /* what a killed stress run leaves is ours to sweep */
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    const char *tdir = getenv("TMPDIR");
    if (tdir && strlen(tdir) > 900) tdir = NULL;
    snprintf(v->tmpdir, sizeof(v->tmpdir), "%s/ipcproof-validate-XXXXXX",
             tdir && *tdir ? tdir : "/tmp");
    if (mkdtemp(v->tmpdir) == NULL) {
        fprintf(stderr, "ipcproof validate: mkdtemp: %s\n", strerror(errno));
        return 2;
    }
    fflush(NULL); /* nothing buffered is written twice */
    pid_t janitor = janitor_start(v->tmpdir);
    v->t0 = st_now_ns();
    int status = 2;
    if (choose_plugins(v) < 0) {
        fprintf(stderr, "ipcproof validate: %s\n", v->error);
        vb_write_json(v, 2);
        goto out;
    }
    int d = describe(v);
    if (d != 0) {
        if (d == 1) {
            printf("ipcproof validate: %s\nverdict: FAIL (loading the plugin failed)\n", v->error);
        } else {
            fprintf(stderr, "ipcproof validate: %s\n", v->error);
        }
        status = d;
        vb_write_json(v, status);
        goto out;
    }
    if (v->kind == ST_KIND_CHANNEL) v->has_lock = 0;
    if (v->kind == ST_KIND_LOCK) v->has_chan = 0;
    if (!v->has_chan && !v->has_lock) {
        snprintf(v->error, sizeof(v->error), "the protocol has no %s",
                 v->kind == ST_KIND_LOCK ? "lock" : "channel");
        fprintf(stderr, "ipcproof validate: %s\n", v->error);
        vb_write_json(v, 2);
        goto out;
    }
    choose_sched(v);
    status = vb_run_battery(v, &interrupted);
out:
    if (v->jf) fclose(v->jf);
    if (v->sf) fclose(v->sf);
    if (v->plugin_src && status == 1) {
        printf("the plugins built from %s are kept in %s for the rerun lines\n", v->plugin_src,
               v->tmpdir);
        vb_keep_only_plugins(v);
    } else {
        rm_tree(v->tmpdir);
    }
    janitor_stop(janitor); /* (a directory kept for the rerun lines is the user's) */
    char who[512] = "";
    if (st_sweep(NULL, 0, 100000000LL, who, sizeof(who)))
        fprintf(stderr, "ipcproof validate: killed what the cases left running: %s\n", who);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    vb_free(v);
    free(v);
    if (interrupted) {
        fprintf(stderr, "ipcproof validate: interrupted\n");
        return 2;
    }
    return status;
}

/* stresscmd.c - `ipcproof stress`: one case, its summary, its JSON report, its exit status.
 *
 * Exit status: 0 no violation; 1 at least one violation; 2 usage or setup error (a bad option,
 * a plugin that does not load or speaks another ABI, create() failing). Everything that can be
 * refused is refused before the protocol is loaded: options, the --json path, a plugin built
 * with a ThreadSanitizer this binary cannot host. */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "elfinfo.h"
#include "host.h"
#include "ipcproof/registry.h"
#include "spawn.h"
#include "exec.h"
#include "sarif.h"
#include "stress.h"

enum {
    O_PROTO = 256,
    O_PLUGIN,
    O_KIND,
    O_MODE,
    O_PRODUCERS,
    O_CONSUMERS,
    O_WORKERS,
    O_MESSAGES,
    O_DURATION,
    O_MINSIZE,
    O_MAXSIZE,
    O_CAPACITY,
    O_SEED,
    O_FAULT,
    O_FRATE,
    O_OPT,
    O_JSON,
    O_PROGRESS,
    O_QUIET,
    O_NOVERIFY,
    O_OVERHEAD,
    O_CDELAY,
    O_PDELAY,
    O_WATCHDOG,
    O_STALL,
    O_NOSANDBOX,
    O_KILLPOINT,
    O_SIGPERIOD,
    O_LOCKPAUSE,
    O_SETUP,
    O_STRATEGY,
    O_DEPTH,
    O_SCHEDULES,
    O_SCHEDULE,
    O_SCHEDSTEPS,
    O_PLAINPOINTS,
    O_MEMORY,
    O_RACES,
    O_CRASHPOINT,
    O_CRASHPOINTS,
    O_CRASHROLE,
    O_LOSTWAKEUPS,
    O_PREEMPTIONS,
    O_CHOICES,
    O_MINIMISE,
    O_SHARD,
    O_EXECPROD,
    O_EXECCONS,
    O_EXECSETUP,
    O_EXECTEARDOWN,
    O_FIFO,
    O_EXECWORKER,
    O_SARIF,
    O_ROBUST,
    O_HELP,
};

static const struct option stress_opts[] = {
    {"proto", required_argument, NULL, O_PROTO},
    {"plugin", required_argument, NULL, O_PLUGIN},
    {"kind", required_argument, NULL, O_KIND},
    {"mode", required_argument, NULL, O_MODE},
    {"producers", required_argument, NULL, O_PRODUCERS},
    {"consumers", required_argument, NULL, O_CONSUMERS},
    {"workers", required_argument, NULL, O_WORKERS},
    {"messages", required_argument, NULL, O_MESSAGES},
    {"duration", required_argument, NULL, O_DURATION},
    {"min-size", required_argument, NULL, O_MINSIZE},
    {"max-size", required_argument, NULL, O_MAXSIZE},
    {"capacity", required_argument, NULL, O_CAPACITY},
    {"seed", required_argument, NULL, O_SEED},
    {"fault", required_argument, NULL, O_FAULT},
    {"fault-rate", required_argument, NULL, O_FRATE},
    {"opt", required_argument, NULL, O_OPT},
    {"json", required_argument, NULL, O_JSON},
    {"progress", no_argument, NULL, O_PROGRESS},
    {"quiet", no_argument, NULL, O_QUIET},
    {"no-verify", no_argument, NULL, O_NOVERIFY},
    {"overhead", no_argument, NULL, O_OVERHEAD},
    {"consumer-delay", required_argument, NULL, O_CDELAY},
    {"producer-delay", required_argument, NULL, O_PDELAY},
    {"watchdog", required_argument, NULL, O_WATCHDOG},
    {"stall", required_argument, NULL, O_STALL},
    {"no-sandbox", no_argument, NULL, O_NOSANDBOX},
    {"kill-point", required_argument, NULL, O_KILLPOINT},
    {"signal-period", required_argument, NULL, O_SIGPERIOD},
    {"lock-pause", required_argument, NULL, O_LOCKPAUSE},
    {"setup-timeout", required_argument, NULL, O_SETUP},
    {"strategy", required_argument, NULL, O_STRATEGY},
    {"depth", required_argument, NULL, O_DEPTH},
    {"schedules", required_argument, NULL, O_SCHEDULES},
    {"schedule", required_argument, NULL, O_SCHEDULE},
    {"sched-steps", required_argument, NULL, O_SCHEDSTEPS},
    {"plain-points", no_argument, NULL, O_PLAINPOINTS},
    {"memory", required_argument, NULL, O_MEMORY},
    {"races", required_argument, NULL, O_RACES},
    {"crash-point", required_argument, NULL, O_CRASHPOINT},
    {"crash-points", no_argument, NULL, O_CRASHPOINTS},
    {"crash-role", required_argument, NULL, O_CRASHROLE},
    {"lost-wakeups", no_argument, NULL, O_LOSTWAKEUPS},
    {"preemptions", required_argument, NULL, O_PREEMPTIONS},
    {"choices", required_argument, NULL, O_CHOICES},
    {"minimise", required_argument, NULL, O_MINIMISE},
    {"shard", required_argument, NULL, O_SHARD},
    {"exec-producer", required_argument, NULL, O_EXECPROD},
    {"exec-consumer", required_argument, NULL, O_EXECCONS},
    {"exec-setup", required_argument, NULL, O_EXECSETUP},
    {"exec-teardown", required_argument, NULL, O_EXECTEARDOWN},
    {"fifo", no_argument, NULL, O_FIFO},
    {"exec-worker", required_argument, NULL, O_EXECWORKER},
    {"sarif", required_argument, NULL, O_SARIF},
    {"robust", no_argument, NULL, O_ROBUST},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static unsigned parse_faults(const char *s)
{
    unsigned f = 0;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "kill") == 0)
            f |= ST_FAULT_KILL;
        else if (strcmp(t, "signals") == 0)
            f |= ST_FAULT_SIGNALS;
        else if (strcmp(t, "short-io") == 0)
            f |= ST_FAULT_SHORTIO;
        else if (strcmp(t, "stop") == 0)
            f |= ST_FAULT_STOP;
        else if (strcmp(t, "none") != 0)
            st_cli_die("stress", "--fault: unknown fault '%s' (kill, stop, signals, short-io)", t);
    }
    return f;
}

/* --exec-*: both commands, nothing else naming the protocol, what programs cannot do (yet). */
static void check_exec(struct st_config *c)
{
    const char *C = "stress";
    int any = c->exec_producer || c->exec_consumer || c->exec_setup || c->exec_teardown ||
              c->exec_worker || c->exec_robust;
    if (!any) {
        if (c->proto != NULL && strcmp(c->proto, ST_EXEC_PROTO) == 0)
            st_cli_die(C, "unknown protocol '%s' (`ipcproof list` prints the built-in ones)",
                       c->proto);
        if (c->exec_fifo) st_cli_die(C, "--fifo goes with --exec-producer and --exec-consumer");
        return;
    }
    if (c->exec_worker != NULL) {
        if (c->exec_producer || c->exec_consumer || c->exec_fifo)
            st_cli_die(C, "--exec-worker (lock contenders) goes without --exec-producer, "
                          "--exec-consumer and --fifo (channel endpoints)");
        if (!*c->exec_worker) st_cli_die(C, "--exec-worker needs a command, not ''");
        if (c->kind == ST_KIND_CHANNEL)
            st_cli_die(C, "--kind channel: --exec-worker runs lock contenders");
    } else if (c->exec_robust) {
        st_cli_die(C, "--robust goes with --exec-worker");
    } else if (c->exec_producer == NULL || c->exec_consumer == NULL)
        st_cli_die(C,
                   "--exec-%s 'CMD' is missing: black-box endpoints need both a producer and "
                   "a consumer command (docs/exec.md)",
                   c->exec_producer ? "consumer" : "producer");
    if (c->proto != NULL || c->plugin != NULL)
        st_cli_die(C, "--exec-producer/--exec-consumer replace --proto and --plugin: give one");
    if (c->exec_worker == NULL && (!*c->exec_producer || !*c->exec_consumer))
        st_cli_die(C, "--exec-producer and --exec-consumer need a command, not ''");
    if (c->exec_worker == NULL && c->kind == ST_KIND_LOCK)
        st_cli_die(C, "--kind lock: lock contenders are --exec-worker 'CMD'");
    if (c->mode != ST_MODE_PROCESS)
        st_cli_die(C, "--mode %s: exec endpoints are programs, so only --mode process applies",
                   st_mode_name(c->mode));
    if ((c->faults & (ST_FAULT_SIGNALS | ST_FAULT_SHORTIO)) && st_faults_lib() == NULL)
        st_cli_die(C,
                   "--fault %s on exec endpoints preloads libipcproof-faults.so into the "
                   "programs: it is not next to the ipcproof binary nor in its libdir (or "
                   "IPCPROOF_FAULTS_LIB=path)",
                   c->faults & ST_FAULT_SIGNALS ? "signals" : "short-io");
    if (c->crash_point || c->crash_points)
        st_cli_die(C, "--crash-point needs a plugin built with -fsanitize=thread, not a program");
    if (c->no_verify || c->overhead)
        st_cli_die(C, "%s does not apply to exec endpoints",
                   c->no_verify ? "--no-verify" : "--overhead");
    c->proto = ST_EXEC_PROTO;
    c->kind = c->exec_worker ? ST_KIND_LOCK : ST_KIND_CHANNEL;
}

static void parse_stress(int argc, char **argv, struct st_config *c)
{
    const char *C = "stress";
    int seed_set = 0, messages_set = 0, preempt_set = 0, schedules_set = 0;
    const char *sched_opt = NULL;
    st_config_defaults(c);
    optind = 1;
    opterr = 0;
    for (;;) {
        int li = -1;
        int o = getopt_long(argc, argv, "", stress_opts, &li);
        if (o == -1) break;
        const char *a = optarg;
        char opt[64];
        snprintf(opt, sizeof(opt), "--%s", li >= 0 ? stress_opts[li].name : "?");
        switch (o) {
        case O_PROTO:
            c->proto = a;
            break;
        case O_PLUGIN:
            c->plugin = a;
            break;
        case O_KIND:
            if (strcmp(a, "channel") == 0)
                c->kind = ST_KIND_CHANNEL;
            else if (strcmp(a, "lock") == 0)
                c->kind = ST_KIND_LOCK;
            else
                st_cli_die(C, "--kind: '%s' is not channel or lock", a);
            break;
        case O_MODE:
            if (strcmp(a, "process") == 0)
                c->mode = ST_MODE_PROCESS;
            else if (strcmp(a, "thread") == 0)
                c->mode = ST_MODE_THREAD;
            else if (strcmp(a, "sched") == 0)
                c->mode = ST_MODE_SCHED;
            else
                st_cli_die(C, "--mode: '%s' is not process, thread or sched", a);
            break;
        case O_PRODUCERS:
            c->producers = (uint32_t)st_cli_u64(C, opt, a, 1, ST_MAX_ENDPOINTS);
            break;
        case O_CONSUMERS:
            c->consumers = (uint32_t)st_cli_u64(C, opt, a, 1, ST_MAX_ENDPOINTS);
            break;
        case O_WORKERS:
            c->workers = (uint32_t)st_cli_u64(C, opt, a, 1, ST_MAX_ENDPOINTS);
            break;
        case O_MESSAGES:
            c->messages = st_cli_u64(C, opt, a, 1, 1ull << 32);
            messages_set = 1;
            break;
        case O_DURATION:
            c->duration = st_cli_double(C, opt, a, 0.001, 86400);
            break;
        case O_MINSIZE:
            c->min_size = (size_t)st_cli_u64(C, opt, a, ST_HDR_SIZE, ST_MAX_MSG);
            break;
        case O_MAXSIZE:
            c->max_size = (size_t)st_cli_u64(C, opt, a, ST_HDR_SIZE, ST_MAX_MSG);
            break;
        case O_CAPACITY:
            c->capacity = (size_t)st_cli_u64(C, opt, a, 0, 1ull << 40);
            break;
        case O_SEED:
            c->seed = st_cli_u64(C, opt, a, 0, INT64_MAX);
            seed_set = 1;
            break;
        case O_FAULT:
            c->faults |= parse_faults(a);
            break;
        case O_FRATE:
            c->fault_rate = st_cli_double(C, opt, a, 0, 1);
            break;
        case O_OPT:
            c->opt = a;
            break;
        case O_JSON:
            c->json = a;
            break;
        case O_PROGRESS:
            c->progress = 1;
            break;
        case O_QUIET:
            c->quiet = 1;
            if (c->progress < 0) c->progress = 0;
            break;
        case O_NOVERIFY:
            c->no_verify = 1;
            break;
        case O_OVERHEAD:
            c->overhead = 1;
            break;
        case O_CDELAY:
            c->consumer_delay_us = (unsigned)st_cli_u64(C, opt, a, 0, 1000000);
            break;
        case O_PDELAY:
            c->producer_delay_us = (unsigned)st_cli_u64(C, opt, a, 0, 1000000);
            break;
        case O_WATCHDOG:
            c->watchdog = st_cli_double(C, opt, a, 0.1, 86400);
            break;
        case O_STALL:
            c->stall = st_cli_double(C, opt, a, 0.1, 86400);
            break;
        case O_NOSANDBOX:
            c->no_sandbox = 1;
            break;
        case O_KILLPOINT:
            if (strcmp(a, "any") == 0)
                c->kill_point = ST_KP_ANY;
            else if (strcmp(a, "send-blocked") == 0)
                c->kill_point = ST_KP_SEND_BLOCKED;
            else if (strcmp(a, "recv-blocked") == 0)
                c->kill_point = ST_KP_RECV_BLOCKED;
            else
                st_cli_die(C, "--kill-point: '%s' is not any, send-blocked or recv-blocked", a);
            break;
        case O_SIGPERIOD:
            c->signal_us = (unsigned)st_cli_u64(C, opt, a, 20, 1000000);
            break;
        case O_LOCKPAUSE:
            c->lock_pause_us = (unsigned)st_cli_u64(C, opt, a, 0, 1000000);
            break;
        case O_SETUP:
            c->setup = st_cli_double(C, opt, a, 0.1, 3600);
            break;
        case O_STRATEGY:
            if (strcmp(a, "pct") == 0)
                c->strategy = ST_SCHED_PCT;
            else if (strcmp(a, "random") == 0)
                c->strategy = ST_SCHED_RANDOM;
            else if (strcmp(a, "dfs") == 0)
                c->strategy = ST_SCHED_DFS;
            else
                st_cli_die(C, "--strategy: '%s' is not pct, random or dfs", a);
            sched_opt = opt;
            break;
        case O_DEPTH:
            c->depth = (unsigned)st_cli_u64(C, opt, a, 1, 16);
            sched_opt = opt;
            break;
        case O_SCHEDULES:
            c->schedules = st_cli_u64(C, opt, a, 1, 1ull << 40);
            schedules_set = 1;
            sched_opt = opt;
            break;
        case O_SCHEDULE:
            c->first_schedule = st_cli_u64(C, opt, a, 0, 1ull << 40);
            c->one_schedule = 1;
            sched_opt = opt;
            break;
        case O_SCHEDSTEPS:
            c->sched_steps = st_cli_u64(C, opt, a, 1, 1ull << 40);
            sched_opt = opt;
            break;
        case O_PLAINPOINTS:
            c->plain_points = 1;
            sched_opt = "--plain-points";
            break;
        case O_CRASHPOINT:
            c->crash_point = st_cli_u64(C, opt, a, 1, 100000);
            break;
        case O_CRASHPOINTS:
            c->crash_points = 1;
            break;
        case O_CRASHROLE:
            if (strcmp(a, "producer") == 0)
                c->crash_role = 1;
            else if (strcmp(a, "consumer") == 0)
                c->crash_role = 2;
            else
                st_cli_die(C, "--crash-role: '%s' is not producer or consumer", a);
            break;
        case O_LOSTWAKEUPS:
            c->lost_wakeups = 1;
            sched_opt = "--lost-wakeups";
            break;
        case O_PREEMPTIONS:
            c->preemptions = (unsigned)st_cli_u64(C, opt, a, 0, 64);
            preempt_set = 1;
            sched_opt = opt;
            break;
        case O_SHARD: {
            unsigned i, n;
            char end;
            if (sscanf(a, "%u/%u%c", &i, &n, &end) != 2 || n < 1 || n > 4096 || i >= n)
                st_cli_die(C, "--shard: '%s' is not I/N with 0 <= I < N <= 4096", a);
            c->shard = i;
            c->nshards = n;
            sched_opt = opt;
            break;
        }
        case O_CHOICES: {
            static uint8_t prefix[ST_SCHED_CHOICES];
            char err[160];
            if (st_dfs_parse(a, prefix, &c->nchoices, err, sizeof(err)) < 0)
                st_cli_die(C, "--choices: %s", err);
            c->choices = prefix;
            c->choices_arg = a;
            sched_opt = opt;
            break;
        }
        case O_MINIMISE:
            c->minimise = st_cli_u64(C, opt, a, 0, 100000);
            sched_opt = opt;
            break;
        case O_RACES:
            if (strcmp(a, "on") == 0)
                c->no_races = 0;
            else if (strcmp(a, "off") == 0)
                c->no_races = 1;
            else
                st_cli_die(C, "--races: '%s' is not on or off", a);
            sched_opt = opt;
            break;
        case O_MEMORY:
            if (strcmp(a, "sc") == 0)
                c->memory_sc = 1;
            else if (strcmp(a, "tso") == 0)
                c->memory_sc = 0;
            else
                st_cli_die(C, "--memory: '%s' is not tso or sc", a);
            sched_opt = opt;
            break;
        case O_EXECPROD:
            c->exec_producer = a;
            break;
        case O_EXECCONS:
            c->exec_consumer = a;
            break;
        case O_EXECSETUP:
            c->exec_setup = a;
            break;
        case O_EXECTEARDOWN:
            c->exec_teardown = a;
            break;
        case O_FIFO:
            c->exec_fifo = 1;
            break;
        case O_SARIF:
            c->sarif = a;
            break;
        case O_EXECWORKER:
            c->exec_worker = a;
            break;
        case O_ROBUST:
            c->exec_robust = 1;
            break;
        case O_HELP:
            (void)st_usage_cmd(stdout, "stress");
            exit(0);
        default:
            if (o == ':' || (optopt && optopt >= O_PROTO))
                st_cli_die(C, "%s needs a value", argv[optind - 1]);
            st_cli_die(C, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) st_cli_die(C, "unexpected argument '%s'", argv[optind]);
    check_exec(c);
    if ((c->proto != NULL) == (c->plugin != NULL))
        st_cli_die(C, "exactly one of --proto NAME, --plugin FILE.so and --exec-producer/"
                      "--exec-consumer");
    if (c->min_size > c->max_size)
        st_cli_die(C, "--min-size %zu is above --max-size %zu", c->min_size, c->max_size);
    if (c->mode == ST_MODE_SCHED) {
        /* many short schedules: the counts alone end each one, time is virtual */
        if (c->duration > 0)
            st_cli_die(C, "--duration does not apply to --mode sched (its time is virtual): "
                          "--messages and --schedules bound the run");
        if (c->faults & ~ST_FAULT_SIGNALS)
            st_cli_die(C,
                       "--fault %s does not apply to --mode sched yet (signals does: the "
                       "scheduler delivers them at blocking calls)",
                       c->faults & ST_FAULT_KILL   ? "kill"
                       : c->faults & ST_FAULT_STOP ? "stop"
                                                   : "short-io");
        if (c->signal_us)
            st_cli_die(C, "--signal-period does not apply to --mode sched (the scheduler chooses "
                          "where signals arrive)");
        if (!messages_set) c->messages = ST_SCHED_MSGS;
        if (c->strategy == ST_SCHED_DFS && !schedules_set) c->schedules = ST_DFS_SCHEDULES;
        if (c->strategy != ST_SCHED_DFS && (preempt_set || c->choices_arg))
            st_cli_die(C, "%s goes with --strategy dfs",
                       c->choices_arg ? "--choices" : "--preemptions");
        if (c->nshards > 1 && (c->one_schedule || c->choices_arg))
            st_cli_die(C, "--shard splits a search; --schedule and --choices name one schedule");
        if (c->strategy == ST_SCHED_DFS && c->one_schedule && !c->choices_arg)
            st_cli_die(C, "--schedule I names a pct or random schedule; a dfs schedule is "
                          "rerun with --choices (its rerun line has them)");
    } else if (sched_opt != NULL) {
        st_cli_die(C, "%s goes with --mode sched", sched_opt);
    }
    if (c->messages == 0 && c->duration <= 0) c->messages = ST_DEFAULT_MSGS;
    if (!seed_set) c->seed = ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16)) & 0xffffffffu;
    if ((c->crash_point || c->crash_points) && c->mode != ST_MODE_PROCESS)
        st_cli_die(C, "--crash-point%s needs --mode process (the victim's process dies)",
                   c->crash_points ? "s" : "");
    if ((c->crash_point || c->crash_points) && (c->faults & ST_FAULT_KILL))
        st_cli_die(C, "--crash-point and --fault kill are two ways to kill: choose one");
    if (c->crash_role && !c->crash_point && !c->crash_points)
        st_cli_die(C, "--crash-role goes with --crash-point or --crash-points");
    if (c->crash_point && c->crash_points)
        st_cli_die(C, "--crash-point N tries one point, --crash-points all of them: choose one");
    if (c->kill_point != ST_KP_ANY && !(c->faults & ST_FAULT_KILL))
        st_cli_die(C, "--kill-point goes with --fault kill");
    if (c->mode == ST_MODE_THREAD && (c->faults & ST_FAULT_KILL))
        st_cli_die(C, "--fault kill needs --mode process (a SIGKILL ends every thread)");
    if (c->mode == ST_MODE_THREAD && (c->faults & ST_FAULT_STOP))
        st_cli_die(C, "--fault stop needs --mode process (a SIGSTOP stops every thread)");
}

/* A plugin built with a ThreadSanitizer this binary cannot host fails in dlopen() with an
 * obscure message: say what to do instead, before anything runs. */
static void check_plugin_build(const struct st_config *c)
{
    if (c->plugin == NULL) return;
    char why[256] = "";
    int k = st_elf_tsan_kind(c->plugin, why, sizeof(why));
    if (k == ST_TSAN_GCC)
        st_cli_die(
            "stress",
            "%s was built with gcc's -fsanitize=thread, which needs libtsan.so and cannot "
            "be loaded into ipcproof: build it with clang-14 -fsanitize=thread (for the TSan "
            "build of ipcproof) or without -fsanitize (for this one), or give validate "
            "--plugin-src",
            c->plugin);
    if (k == ST_TSAN_CLANG && !st_is_tsan_build() && c->mode != ST_MODE_SCHED && !c->crash_point &&
        !c->crash_points)
        st_cli_die("stress",
                   "%s is a ThreadSanitizer build: run it with the TSan build of ipcproof (the "
                   "tsan preset's stress/ipcproof), or build it without -fsanitize=thread",
                   c->plugin);
}

/* Re-runs this command once with environment changes (the short-io interposer, TSan quiet).
 * IPCPROOF_REEXEC guards against a loop. */
static void reexec(char **argv, const char *why)
{
    if (getenv("IPCPROOF_REEXEC") != NULL) {
        fprintf(stderr, "ipcproof stress: %s did not take effect\n", why);
        exit(2);
    }
    setenv("IPCPROOF_REEXEC", "1", 1);
    fflush(NULL);
    execv(st_self_exe(), argv);
    fprintf(stderr, "ipcproof stress: re-exec for %s: %s\n", why, strerror(errno));
    exit(2);
}

/* --fault short-io and --mode sched: the interposer (the scheduler runtime) must be preloaded
 * before libc is used by anything, and the workers are forked (the protocol's create() state must
 * survive), so the whole command re-runs itself once with LD_PRELOAD set. The short-io interposer
 * stays disarmed except in worker threads, which arm it after the start barrier; the scheduler
 * runtime only acts in the threads of a schedule: the supervisor's own calls go straight to
 * libc. */
static void ensure_preload(char **argv, const char *lib, const char *symbol, const char *what)
{
    if (dlsym(RTLD_DEFAULT, symbol) != NULL) {
        unsetenv("LD_PRELOAD"); /* loaded; do not hand it to anything we might run */
        return;
    }
    if (lib == NULL) {
        fprintf(stderr, "ipcproof stress: %s\n", what);
        exit(2);
    }
    char pre[PATH_MAX * 2];
    const char *old = getenv("LD_PRELOAD");
    snprintf(pre, sizeof(pre), "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
    setenv("LD_PRELOAD", pre, 1);
    reexec(argv, "LD_PRELOAD of the interposer");
}

/* A process-mode case never needs ThreadSanitizer's verdict (each endpoint is a process of its
 * own, TSan sees no other thread), and LLVM 14's TSan reports a false mutex misuse after a robust
 * mutex's EOWNERDEAD: in a TSan build, process mode runs with TSan's reports off. */
static int tsan_quiet(char **argv, int process_mode, int *reexec_needed)
{
    *reexec_needed = 0;
    if (!st_is_tsan_build() || !process_mode) return 0;
    const char *old = getenv("TSAN_OPTIONS");
    if (old && strstr(old, "report_bugs=0")) return 1;
    char opts[2048];
    snprintf(opts, sizeof(opts), "%s%sreport_bugs=0", old && *old ? old : "",
             old && *old ? ":" : "");
    setenv("TSAN_OPTIONS", opts, 1);
    *reexec_needed = 1;
    (void)argv;
    return 1;
}

int st_stress_main(int argc, char **argv)
{
    struct st_config c;
    parse_stress(argc, argv, &c);
    st_exec_bind(&c); /* before anything forks: the hosts and workers inherit it */
    check_plugin_build(&c);
    int again = 0;
    int quiet_tsan = tsan_quiet(argv - 1, c.mode == ST_MODE_PROCESS, &again);
    /* also carries TSAN_OPTIONS over; exec endpoints: the interposer goes into the programs
     * (execfx.h), not into ipcproof */
    if ((c.faults & ST_FAULT_SHORTIO) && strcmp(c.proto ? c.proto : "", ST_EXEC_PROTO) != 0)
        ensure_preload(argv - 1, st_faults_lib(), "ipcproof_faults_arm",
                       "--fault short-io needs libipcproof-faults.so next to the ipcproof binary "
                       "or in its libdir (or IPCPROOF_FAULTS_LIB=path)");
    if (c.mode == ST_MODE_SCHED || c.crash_point || c.crash_points) {
        if (st_build_sanitizers()[0])
            st_cli_die("stress",
                       "--mode sched and crash points need a build of ipcproof without "
                       "sanitizers (this one is "
                       "built with %s, whose runtime owns the instrumentation callbacks): use the "
                       "default preset's stress/ipcproof",
                       st_build_sanitizers());
        ensure_preload(argv - 1, st_sched_lib(), "ipcproof_sched_begin",
                       "--mode sched needs libipcproof-sched.so next to the ipcproof binary or in "
                       "its libdir (or IPCPROOF_SCHED_LIB=path)");
    }
    if (again) reexec(argv - 1, "TSAN_OPTIONS=report_bugs=0");
    unsetenv("IPCPROOF_REEXEC");

    /* the report's file first: a bad path is an error before anything runs */
    FILE *jf = NULL, *sf = NULL;
    if (c.json != NULL && (jf = fopen(c.json, "we")) == NULL)
        st_cli_die("stress", "--json: cannot write '%s': %s", c.json, strerror(errno));
    if (c.sarif != NULL && (sf = fopen(c.sarif, "we")) == NULL)
        st_cli_die("stress", "--sarif: cannot write '%s': %s", c.sarif, strerror(errno));
    signal(SIGPIPE, SIG_IGN); /* a host that is gone is seen in its wait status */
    int r = st_subreaper_enable();
    if (r < 0) {
        fprintf(stderr, "ipcproof stress: PR_SET_CHILD_SUBREAPER: %s\n", strerror(-r));
        return 2;
    }
    struct st_report *rep = calloc(1, sizeof(*rep));
    if (rep == NULL) return 2;
    rep->chan = c.kind != ST_KIND_LOCK;
    /* every object named with this run's ids is ours: if we are killed, `ipcproof clean` finds
     * them through the registry (before the sandbox: its /dev/shm is not the registry's) */
    char stem[48];
    snprintf(stem, sizeof(stem), "ipcproof-%d-", (int)getpid());
    (void)ipcp_registry_add("stem", stem);
    char why[256] = "";
    if (!c.no_sandbox) rep->sandboxed = st_sandbox_enter(why, sizeof(why));
    if (why[0]) st_report_note(rep, "%s", why);
    if (quiet_tsan)
        st_report_note(rep, "process mode in a ThreadSanitizer build: TSan reports are off (each "
                            "endpoint is a process of its own)");
    int status = st_run_case(&c, rep);
    /* a failure found by a search is reported minimised; a rerun of one schedule is not */
    if (c.mode == ST_MODE_SCHED && status != 2 && rep->nv && rep->sched != NULL &&
        !c.one_schedule && !c.choices_arg)
        st_minimise(&c, rep, c.minimise);
    /* a plugin exporting both kinds runs its channel unless told: say so in the repro */
    if (rep->kind_known) c.repro_kind = rep->chan ? ST_KIND_CHANNEL : ST_KIND_LOCK;
    if (c.kind == ST_KIND_AUTO && rep->kind_known) c.kind = c.repro_kind;
    if (c.mode == ST_MODE_SCHED && (rep->nv || status == 2) && rep->sched != NULL) {
        c.one_schedule = 1; /* the rerun line replays exactly the failing schedule */
        c.first_schedule = rep->schedule;
        if (c.strategy == ST_SCHED_PCT) c.sched_steps = rep->sched_k;
        if (c.strategy == ST_SCHED_DFS && rep->dfs_path != NULL) {
            c.choices_arg = rep->dfs_path;       /* the schedule's own choices */
        } else if (c.strategy == ST_SCHED_DFS) { /* too many to write: the search up to it */
            c.one_schedule = 0;
            c.choices_arg = NULL;
            c.schedules = rep->schedule + 1;
        }
    }
    if (c.crash_points && (rep->nv || status == 2) && rep->crash_point) {
        c.crash_points = 0; /* the rerun line kills at the point that failed */
        c.crash_point = rep->crash_point;
    }
    char repro[4096];
    st_config_repro(&c, repro, sizeof(repro));
    if (!c.quiet || status != 0) st_report_print(&c, rep, repro);
    if (c.mode == ST_MODE_SCHED && (rep->nv || status == 2) && rep->sched != NULL)
        printf("replay it exactly: ipcproof replay %s\n",
               c.json ? c.json : "REPORT.json (give --json to keep the report)");
    if (jf != NULL) {
        if (st_report_json(&c, rep, repro, jf) < 0 && status == 0) status = 2;
        fclose(jf);
    }
    if (sf != NULL) {
        json_t *obj = st_report_json_obj(&c, rep, repro);
        struct st_sarif_src src = {.program = c.exec_producer ? c.exec_producer : c.exec_worker,
                                   .version = IPCP_VERSION};
        if (st_sarif_write(obj, &src, sf) < 0) {
            fprintf(stderr, "ipcproof stress: cannot write %s\n", c.sarif);
            if (status == 0) status = 2;
        }
        json_decref(obj);
        fclose(sf);
    }
    if (status == 0 && rep->nv) status = 1;
    st_report_free(rep);
    free(rep);
    (void)ipcp_registry_remove("stem", stem);
    return status;
}

/* `ipcproof describe (--proto NAME | --plugin FILE.so)`: what a protocol exports, as one line of
 * JSON on stdout, found by loading it in a protocol host (never in this process). Exit status 0,
 * 1 when loading it crashed, exited or hung (a verdict about the plugin), 2 when it could not
 * be loaded. validate asks the binary that will run a plugin (plain or TSan) this way. */
int st_describe_main(int argc, char **argv)
{
    const char *proto = NULL, *plugin = NULL;
    double timeout = ST_SETUP_MS / 1000.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--proto") == 0 && i + 1 < argc)
            proto = argv[++i];
        else if (strcmp(argv[i], "--plugin") == 0 && i + 1 < argc)
            plugin = argv[++i];
        else if (strcmp(argv[i], "--setup-timeout") == 0 && i + 1 < argc)
            timeout = st_cli_double("describe", "--setup-timeout", argv[++i], 0.1, 3600);
        else
            st_cli_die("describe", "unknown or incomplete option '%s'", argv[i]);
    }
    if ((proto != NULL) == (plugin != NULL))
        st_cli_die("describe", "exactly one of --proto NAME and --plugin FILE.so");
    signal(SIGPIPE, SIG_IGN);
    struct st_hmsg m;
    char err[512] = "";
    int r = st_host_probe(proto, plugin, timeout, &m, err, sizeof(err));
    json_t *o = json_object();
    json_object_set_new(o, "result", json_string(r == 0 ? "ok" : r == 1 ? "crash" : "error"));
    if (r != 0) json_object_set_new(o, "error", json_string(err));
    if (r == 0 && m.has_chan)
        json_object_set_new(o, "channel",
                            json_pack("{s:s, s:i}", "name", m.chan_name, "flags", m.chan_flags));
    if (r == 0 && m.has_lock)
        json_object_set_new(o, "lock",
                            json_pack("{s:s, s:i}", "name", m.lock_name, "flags", m.lock_flags));
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s != NULL) printf("%s\n", s);
    free(s);
    json_decref(o);
    return r;
}

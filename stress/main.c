/* main.c - the ipcproof command line: stress, validate, bench, repro, list, clean, version.
 *
 * Exit status: 0 no violation; 1 at least one violation; 2 usage or setup error (bad flag, a
 * plugin that does not load or speaks another ABI, create() failing). See docs/stress.md. */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if __has_include("ipcproof/shm.h")
#include "ipcproof/shm.h"
#define HAVE_SHM_CLEAN 1
#endif

#include "internal.h"
#include "ipcproof/err.h"
#include "bench.h"
#include "stress.h"

#ifndef IPCP_BUILD_SANITIZERS
#define IPCP_BUILD_SANITIZERS ""
#endif
#ifndef IPCP_BUILD_CC
#define IPCP_BUILD_CC "cc"
#endif
#ifndef IPCP_VERSION
#define IPCP_VERSION "0"
#endif

static const char usage_text[] =
    "usage: ipcproof stress (--proto NAME | --plugin FILE.so) [options]\n"
    "       ipcproof validate (--proto NAME | --plugin FILE.so [--plugin-tsan FILE.so] |\n"
    "                          --plugin-src FILE.c) [--budget SECONDS] [--json FILE] [--seed S]\n"
    "       ipcproof bench [--quick | --smoke] [--reps N] [--only TEXT] [--json FILE]\n"
    "       ipcproof repro FILE [--target NAME] [--flavour libfuzzer|asan] [--minimize]\n"
    "       ipcproof list | clean [--dry-run] | version\n"
    "\n"
    "stress options:\n"
    "  --mode process|thread        endpoints as processes (default) or threads of one child\n"
    "  --producers N --consumers N  channel endpoints (default 1 and 1)\n"
    "  --workers N                  lock contenders (default 2)\n"
    "  --messages N                 stop after N messages per producer (acquisitions per worker)\n"
    "  --duration S                 stop after S seconds (default: --messages 10000)\n"
    "  --min-size B --max-size B    message sizes, header of 40 bytes included (64..1024)\n"
    "  --seed S                     every random choice derives from it\n"
    "  --fault kill,signals,short-io   fault injection\n"
    "  --fault-rate R               short-io: share of wrapped calls that fail (0.05)\n"
    "  --opt k=v,...                passed to the protocol's create() as options\n"
    "  --capacity B                 buffer size hint passed to create()\n"
    "  --kind channel|lock          for a plugin that exports both (default channel)\n"
    "  --consumer-delay US --producer-delay US   slow endpoints down per message\n"
    "  --json FILE                  machine-readable report\n"
    "  --progress | --quiet         progress line every second / no summary\n"
    "  --no-verify                  checks off (to measure their cost)\n"
    "  --overhead                   run verified, then unverified, report both rates\n"
    "  --watchdog S --stall S       case deadline / longest time without progress (5)\n"
    "  --no-sandbox                 no private IPC+mount namespace for the leak check\n";

static void usage_exit(const char *msg)
{
    if (msg) fprintf(stderr, "ipcproof: %s\n", msg);
    fputs(usage_text, stderr);
    exit(2);
}

/* ---- build facts ---------------------------------------------------------------------------- */

const char *st_build_sanitizers(void)
{
    return IPCP_BUILD_SANITIZERS;
}

const char *st_build_cc(void)
{
    return IPCP_BUILD_CC;
}

int st_is_tsan_build(void)
{
#ifdef IPCP_TSAN
    return 1;
#else
    return 0;
#endif
}

const char *st_self_exe(void)
{
    static char path[PATH_MAX];
    if (path[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
        if (n <= 0) return "ipcproof";
        path[n] = '\0';
    }
    return path;
}

static int exists(const char *p)
{
    return access(p, R_OK) == 0;
}

const char *st_faults_lib(void)
{
    static char path[PATH_MAX * 2];
    const char *env = getenv("IPCPROOF_FAULTS_LIB");
    if (env && *env) return exists(env) ? env : NULL;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", st_self_exe());
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    /* the build tree keeps it next to the binary; an install has it in the libdir */
    snprintf(path, sizeof(path), "%s/libipcproof-faults.so", dir);
    if (exists(path)) return path;
#ifdef IPCP_BIN_TO_LIBDIR
    snprintf(path, sizeof(path), "%s/%s/libipcproof-faults.so", dir, IPCP_BIN_TO_LIBDIR);
    if (exists(path)) return path;
#endif
    return NULL;
}

/* ---- configuration ------------------------------------------------------------------------- */

void st_config_defaults(struct st_config *c)
{
    memset(c, 0, sizeof(*c));
    c->mode = ST_MODE_PROCESS;
    c->producers = 1;
    c->consumers = 1;
    c->workers = 2;
    c->min_size = 64;
    c->max_size = 1024;
    c->fault_rate = ST_DEFAULT_FRATE;
    c->opt = "";
    c->progress = -1;
}

static void append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* Shell-quotes s when it holds anything but plain characters. */
static void append_arg(char *buf, size_t cap, const char *s)
{
    int plain = *s != '\0';
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=,:+-@%", *p))
            plain = 0;
    if (plain) {
        append(buf, cap, " %s", s);
        return;
    }
    append(buf, cap, " '");
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            append(buf, cap, "'\\''");
        else
            append(buf, cap, "%c", *p);
    }
    append(buf, cap, "'");
}

void st_config_repro(const struct st_config *c, char *buf, size_t cap)
{
    buf[0] = '\0';
    append(buf, cap, "ipcproof stress");
    if (c->proto) {
        append(buf, cap, " --proto");
        append_arg(buf, cap, c->proto);
    } else if (c->plugin) {
        append(buf, cap, " --plugin");
        append_arg(buf, cap, c->plugin);
    }
    if (c->kind == ST_KIND_LOCK) append(buf, cap, " --kind lock");
    if (c->kind == ST_KIND_CHANNEL) append(buf, cap, " --kind channel");
    append(buf, cap, " --mode %s", c->mode == ST_MODE_THREAD ? "thread" : "process");
    enum st_kind k = c->kind != ST_KIND_AUTO ? c->kind : c->repro_kind;
    int lock = k == ST_KIND_LOCK ? 1 : k == ST_KIND_CHANNEL ? 0 : -1; /* -1: print both */
    if (lock != 1)
        append(buf, cap, " --producers %" PRIu32 " --consumers %" PRIu32, c->producers,
               c->consumers);
    if (lock != 0) append(buf, cap, " --workers %" PRIu32, c->workers);
    if (c->messages) append(buf, cap, " --messages %" PRIu64, c->messages);
    if (c->duration > 0) append(buf, cap, " --duration %g", c->duration);
    if (lock != 1) append(buf, cap, " --min-size %zu --max-size %zu", c->min_size, c->max_size);
    if (c->capacity) append(buf, cap, " --capacity %zu", c->capacity);
    append(buf, cap, " --seed %" PRIu64, c->seed);
    if (c->faults) {
        append(buf, cap, " --fault %s%s%s", c->faults & ST_FAULT_KILL ? "kill" : "",
               (c->faults & ST_FAULT_KILL) && (c->faults & ~ST_FAULT_KILL) ? "," : "",
               c->faults & ST_FAULT_SIGNALS
                   ? (c->faults & ST_FAULT_SHORTIO ? "signals,short-io" : "signals")
                   : (c->faults & ST_FAULT_SHORTIO ? "short-io" : ""));
        if ((c->faults & ST_FAULT_SHORTIO) && c->fault_rate != ST_DEFAULT_FRATE)
            append(buf, cap, " --fault-rate %g", c->fault_rate);
    }
    if (c->opt && *c->opt) {
        append(buf, cap, " --opt");
        append_arg(buf, cap, c->opt);
    }
    if (c->consumer_delay_us) append(buf, cap, " --consumer-delay %u", c->consumer_delay_us);
    if (c->producer_delay_us) append(buf, cap, " --producer-delay %u", c->producer_delay_us);
    if (c->no_verify) append(buf, cap, " --no-verify");
    if (c->watchdog > 0) append(buf, cap, " --watchdog %g", c->watchdog);
    if (c->stall > 0) append(buf, cap, " --stall %g", c->stall);
    if (c->no_sandbox) append(buf, cap, " --no-sandbox");
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (*s == '-') goto bad;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end != '\0' || v < min || v > max) goto bad;
    return v;
bad:;
    char msg[160];
    snprintf(msg, sizeof(msg), "%s: '%s' is not a number in %" PRIu64 "..%" PRIu64, opt, s, min,
             max);
    usage_exit(msg);
    return 0;
}

static double parse_double(const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= min && v <= max)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s: '%s' is not a number in %g..%g", opt, s, min, max);
        usage_exit(msg);
    }
    return v;
}

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
        else if (strcmp(t, "none") != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "--fault: unknown fault '%s' (kill, signals, short-io)", t);
            usage_exit(msg);
        }
    }
    return f;
}

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
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static void parse_stress(int argc, char **argv, struct st_config *c)
{
    int seed_set = 0;
    st_config_defaults(c);
    optind = 1;
    opterr = 0;
    for (;;) {
        int o = getopt_long(argc, argv, "", stress_opts, NULL);
        if (o == -1) break;
        const char *a = optarg;
        const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
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
                usage_exit("--kind must be channel or lock");
            break;
        case O_MODE:
            if (strcmp(a, "process") == 0)
                c->mode = ST_MODE_PROCESS;
            else if (strcmp(a, "thread") == 0)
                c->mode = ST_MODE_THREAD;
            else
                usage_exit("--mode must be process or thread");
            break;
        case O_PRODUCERS:
            c->producers = (uint32_t)parse_u64(name, a, 1, ST_MAX_ENDPOINTS);
            break;
        case O_CONSUMERS:
            c->consumers = (uint32_t)parse_u64(name, a, 1, ST_MAX_ENDPOINTS);
            break;
        case O_WORKERS:
            c->workers = (uint32_t)parse_u64(name, a, 1, ST_MAX_ENDPOINTS);
            break;
        case O_MESSAGES:
            c->messages = parse_u64(name, a, 1, 1ull << 32);
            break;
        case O_DURATION:
            c->duration = parse_double(name, a, 0.001, 86400);
            break;
        case O_MINSIZE:
            c->min_size = (size_t)parse_u64(name, a, ST_HDR_SIZE, ST_MAX_MSG);
            break;
        case O_MAXSIZE:
            c->max_size = (size_t)parse_u64(name, a, ST_HDR_SIZE, ST_MAX_MSG);
            break;
        case O_CAPACITY:
            c->capacity = (size_t)parse_u64(name, a, 0, 1ull << 40);
            break;
        case O_SEED:
            c->seed = parse_u64(name, a, 0, INT64_MAX);
            seed_set = 1;
            break;
        case O_FAULT:
            c->faults |= parse_faults(a);
            break;
        case O_FRATE:
            c->fault_rate = parse_double(name, a, 0, 1);
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
            c->consumer_delay_us = (unsigned)parse_u64(name, a, 0, 1000000);
            break;
        case O_PDELAY:
            c->producer_delay_us = (unsigned)parse_u64(name, a, 0, 1000000);
            break;
        case O_WATCHDOG:
            c->watchdog = parse_double(name, a, 0.1, 86400);
            break;
        case O_STALL:
            c->stall = parse_double(name, a, 0.1, 86400);
            break;
        case O_NOSANDBOX:
            c->no_sandbox = 1;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            exit(0);
        default: {
            char msg[160];
            snprintf(msg, sizeof(msg), "stress: unknown or incomplete option '%s'", name);
            usage_exit(msg);
        }
        }
    }
    if (optind < argc) {
        char msg[160];
        snprintf(msg, sizeof(msg), "stress: unexpected argument '%s'", argv[optind]);
        usage_exit(msg);
    }
    if ((c->proto != NULL) == (c->plugin != NULL))
        usage_exit("stress: exactly one of --proto NAME and --plugin FILE.so");
    if (c->min_size > c->max_size) usage_exit("--min-size is above --max-size");
    if (c->messages == 0 && c->duration <= 0) c->messages = ST_DEFAULT_MSGS;
    if (!seed_set) c->seed = ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16)) & 0xffffffffu;
}

/* --fault short-io: the interposer must be preloaded before libc is used by anything, and the
 * workers are forked (the protocol's create() state must survive), so the whole command re-runs
 * itself once with LD_PRELOAD set. The interposer stays disarmed except in worker threads, which
 * arm it after the start barrier: the supervisor's own I/O is never faulted. */
static void ensure_interposer(char **argv)
{
    if (dlsym(RTLD_DEFAULT, "ipcproof_faults_arm") != NULL) {
        unsetenv("LD_PRELOAD"); /* loaded; do not hand it to anything we might run */
        return;
    }
    if (getenv("IPCPROOF_REEXEC") != NULL) {
        fprintf(stderr, "ipcproof: --fault short-io: LD_PRELOAD of the interposer did not take "
                        "effect\n");
        exit(2);
    }
    const char *lib = st_faults_lib();
    if (lib == NULL) {
        fprintf(stderr, "ipcproof: --fault short-io needs libipcproof-faults.so next to the "
                        "ipcproof binary or in its libdir (or IPCPROOF_FAULTS_LIB=path)\n");
        exit(2);
    }
    char pre[PATH_MAX * 2];
    const char *old = getenv("LD_PRELOAD");
    snprintf(pre, sizeof(pre), "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
    setenv("LD_PRELOAD", pre, 1);
    setenv("IPCPROOF_REEXEC", "1", 1);
    fflush(NULL);
    execv(st_self_exe(), argv);
    fprintf(stderr, "ipcproof: re-exec with the interposer: %s\n", strerror(errno));
    exit(2);
}

static int cmd_stress(int argc, char **argv)
{
    struct st_config c;
    parse_stress(argc, argv, &c);
    char repro[4096];
    st_config_repro(&c, repro, sizeof(repro));
    if (c.faults & ST_FAULT_SHORTIO) ensure_interposer(argv - 1);
    unsetenv("IPCPROOF_REEXEC");

    struct st_report *rep = calloc(1, sizeof(*rep));
    if (rep == NULL) return 2;
    char why[256] = "";
    if (!c.no_sandbox) rep->sandboxed = st_sandbox_enter(why, sizeof(why));
    if (why[0]) st_report_note(rep, "%s", why);
    struct st_proto p;
    char err[512];
    int status;
    if (st_proto_load(c.proto, c.plugin, &p, err, sizeof(err)) < 0) {
        rep->status = 2;
        snprintf(rep->error, sizeof(rep->error), "%s", err);
        status = 2;
    } else {
        /* a plugin exporting both kinds runs its channel unless told: say so in the repro */
        if (c.kind == ST_KIND_AUTO && p.chan && p.lock) c.kind = ST_KIND_CHANNEL;
        c.repro_kind = c.kind != ST_KIND_AUTO ? c.kind : p.chan ? ST_KIND_CHANNEL : ST_KIND_LOCK;
        st_config_repro(&c, repro, sizeof(repro));
        status = st_run_case(&c, &p, rep);
    }
    if (!c.quiet || status != 0) st_report_print(&c, rep, repro);
    if (c.json && st_report_json(&c, rep, repro, c.json) < 0 && status == 0) status = 2;
    if (status == 0 && rep->nv) status = 1;
    if (status != 2) st_proto_unload(&p);
    free(rep);
    return status;
}

static int cmd_list(void)
{
    int status = 0;
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
            printf("%-16s channel%s\n", ch->name, ch->flags & IPCP_CHAN_FIFO ? "  fifo" : "");
        else
            printf("%-16s lock%s\n", lk->name, lk->flags & IPCP_LOCK_ROBUST ? "     robust" : "");
    }
    return status;
}

#ifdef HAVE_SHM_CLEAN
static void clean_cb(const char *name, long pid, int removed, void *arg)
{
    (void)arg;
    if (removed < 0)
        printf("  %s (pid %ld): cannot remove: %s\n", name, pid, strerror(-removed));
    else
        printf("  %s (pid %ld)%s\n", name, pid, removed ? ": removed" : "");
}
#endif

static int cmd_clean(int argc, char **argv)
{
    int dry_run = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "-n") == 0)
            dry_run = 1;
        else
            usage_exit("clean: the only option is --dry-run");
    }
#ifndef HAVE_SHM_CLEAN
    (void)dry_run;
#endif
#ifdef HAVE_SHM_CLEAN
    int r = ipcp_shm_clean(dry_run, clean_cb, NULL);
    if (r < 0) {
        fprintf(stderr, "ipcproof clean: %s\n", ipcp_strerror(r));
        return 2;
    }
    printf("ipcproof clean: %d object%s of dead owners %s\n", r, r == 1 ? "" : "s",
           dry_run ? "found (dry run)" : "found and removed");
    return 0;
#else
    fprintf(stderr, "ipcproof clean: this build has no shared-memory module to clean up after\n");
    return 2;
#endif
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
    if (argc < 2) usage_exit("repro: which crash file?");
    argv[0] = script;
    execv(script, argv);
    fprintf(stderr, "ipcproof repro: %s: %s\n", script, strerror(errno));
    return 2;
}

static int cmd_version(void)
{
    printf("ipcproof %s\nplugin ABI %d\ncc: %s\nsanitizers: %s\n", IPCP_VERSION,
           IPCP_PLUGIN_ABI_VERSION, st_build_cc(),
           st_build_sanitizers()[0] ? st_build_sanitizers() : "none");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) usage_exit(NULL);
    const char *cmd = argv[1];
    if (strcmp(cmd, "stress") == 0) return cmd_stress(argc - 1, argv + 1);
    if (strcmp(cmd, "validate") == 0) return st_validate_main(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return st_bench_main(argc - 1, argv + 1);
    if (strcmp(cmd, "repro") == 0) return cmd_repro(argc - 1, argv + 1);
    if (strcmp(cmd, "list") == 0) return cmd_list();
    if (strcmp(cmd, "clean") == 0) return cmd_clean(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) return cmd_version();
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "unknown command '%s'", cmd);
    usage_exit(msg);
    return 2;
}

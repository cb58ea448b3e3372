/* validate.c - `ipcproof validate`: a fixed battery of stress cases on one protocol.
 *
 * Each case is a separate `ipcproof stress ... --json FILE` process (this binary, or the
 * ThreadSanitizer build of it for the thread-mode cases), so one case cannot disturb the next,
 * and every row of the verdict table comes with the exact command that reruns it. The budget
 * (--budget, 60 s by default) is shared out as the cases' --duration; every case also has a
 * message cap, so a fast protocol finishes early.
 *
 * Thread mode runs in a ThreadSanitizer build when one is available: this binary if it is one,
 * else $IPCPROOF_TSAN_BIN, else the tsan preset's build configured at build time. A plugin must
 * be built with -fsanitize=thread too for TSan to see inside it: --plugin-tsan FILE.so, or
 * --plugin-src FILE.c which builds both variants ($CC for the plain one; the compiler of the TSan
 * build for the other, since a TSan plugin must use the same runtime as the binary loading it). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "host.h"
#include "internal.h"
#include "stress.h"

#ifndef IPCP_TSAN_BIN_DEFAULT
#define IPCP_TSAN_BIN_DEFAULT ""
#endif
#ifndef IPCP_INCLUDE_DIR_BUILD
#define IPCP_INCLUDE_DIR_BUILD ""
#endif
#ifndef IPCP_INCLUDE_DIR_INSTALL
#define IPCP_INCLUDE_DIR_INSTALL ""
#endif

#define MAX_CASES 24
#define MAX_ARGS  64

struct vcase {
    char name[64];
    int thread;
    int lock;
    const char *args[24]; /* case-specific stress arguments */
    int nargs;
    /* outcome */
    int rc; /* exit status of the stress run; -1 not run */
    char result[16];
    double mps;
    char kinds[128];
    char repro[2048];
    char detail[1200];
    json_t *violations;
    int na;       /* the protocol refused this configuration */
    int multi;    /* the case is about several endpoints: no 1-to-1 fallback */
    int fallback; /* ran with 1 producer and 1 consumer because the protocol refused more */
    char log[PATH_MAX];
    const char *bin; /* the ipcproof that ran it, when not this one (the TSan build) */
};

struct vstate {
    const char *proto, *plugin, *plugin_tsan, *plugin_src, *json, *opt;
    double budget;
    uint64_t seed;
    int verbose;
    enum st_kind kind;
    char tmpdir[1024];
    char built_plain[PATH_MAX], built_tsan[PATH_MAX];
    const char *tsan_bin;
    const char *thread_plugin;
    char notes[1024];
    struct vcase cases[MAX_CASES];
    int ncases;
};

static void note(struct vstate *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct vstate *v, const char *fmt, ...)
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

static void vusage(const char *msg)
{
    fprintf(stderr,
            "ipcproof validate: %s\n"
            "usage: ipcproof validate (--proto NAME | --plugin FILE.so [--plugin-tsan FILE.so] |\n"
            "                          --plugin-src FILE.c) [--budget SECONDS] [--json FILE]\n"
            "                          [--seed S] [--kind channel|lock] [--opt k=v,...] "
            "[--verbose]\n",
            msg);
    exit(2);
}

/* ---- running one command ----------------------------------------------------------------------
 */

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

/* Runs argv with stdout+stderr to log (or inherited when NULL); kills it after timeout_s.
 * Returns the exit status, 128+signal, or -1 when it could not start. */
static int run_cmd(char *const argv[], const char *log, double timeout_s, int no_aslr,
                   const char *tsan_opts)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        /* ThreadSanitizer of LLVM 14 dies on kernels with more than 28 bits of mmap
         * randomisation; setarch -R does the same as this */
        if (no_aslr && mmap_bits_high()) personality(ADDR_NO_RANDOMIZE);
        if (tsan_opts && getenv("TSAN_OPTIONS") == NULL) setenv("TSAN_OPTIONS", tsan_opts, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "ipcproof validate: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int64_t deadline = ipcp__now_ns() + (int64_t)(timeout_s * 1e9);
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR) return -1;
        if (ipcp__now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 128 + SIGKILL;
        }
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- plugin sources and the TSan build ------------------------------------------------------- */

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
    snprintf(buf, sizeof(buf), "%s/ipcproof/plugin.h", IPCP_INCLUDE_DIR_BUILD);
    if (IPCP_INCLUDE_DIR_BUILD[0] && is_file(buf)) return IPCP_INCLUDE_DIR_BUILD;
    char exe[PATH_MAX];
    snprintf(exe, sizeof(exe), "%s", st_self_exe());
    char *s = strrchr(exe, '/');
    if (s) *s = '\0';
    snprintf(buf, sizeof(buf), "%s/../include/ipcproof/plugin.h", exe);
    if (is_file(buf)) {
        snprintf(buf, sizeof(buf), "%s/../include", exe);
        return buf;
    }
    return IPCP_INCLUDE_DIR_INSTALL;
}

/* Asks a TSan ipcproof which compiler built it (`ipcproof version`). */
static void tsan_cc(const char *bin, const char *tmpdir, char *cc, size_t cap)
{
    snprintf(cc, cap, "clang-14");
    char log[PATH_MAX * 2];
    snprintf(log, sizeof(log), "%s/version.txt", tmpdir);
    char *argv[] = {(char *)bin, "version", NULL};
    if (run_cmd(argv, log, 30, 1, NULL) != 0) return;
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

static int build_plugin(const char *cc, const char *src, const char *out, int tsan, const char *log)
{
    char *argv[MAX_ARGS];
    int n = 0;
    argv[n++] = (char *)cc;
    argv[n++] = "-shared";
    argv[n++] = "-fPIC";
    argv[n++] = "-g";
    argv[n++] = tsan ? "-O1" : "-O2";
    if (tsan) argv[n++] = "-fsanitize=thread";
    char inc[PATH_MAX * 2 + 3];
    snprintf(inc, sizeof(inc), "-I%s", include_dir());
    argv[n++] = inc;
    argv[n++] = (char *)src;
    argv[n++] = "-o";
    argv[n++] = (char *)out;
    argv[n++] = "-lpthread";
    argv[n] = NULL;
    return run_cmd(argv, log, 300, 0, NULL);
}

static void print_file(const char *path, int max_lines)
{
    FILE *f = fopen(path, "re");
    if (!f) return;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f) && n++ < max_lines)
        fprintf(stderr, "    | %s", line);
    fclose(f);
}

static const char *find_tsan_bin(void)
{
    if (st_is_tsan_build()) return st_self_exe();
    const char *env = getenv("IPCPROOF_TSAN_BIN");
    if (env != NULL) return *env && access(env, X_OK) == 0 ? env : NULL; /* "" = none */
    if (IPCP_TSAN_BIN_DEFAULT[0] && access(IPCP_TSAN_BIN_DEFAULT, X_OK) == 0)
        return IPCP_TSAN_BIN_DEFAULT;
    return NULL;
}

/* ---- the battery ------------------------------------------------------------------------------
 */

static struct vcase *add_case(struct vstate *v, const char *name, int lock, int thread, ...)
{
    if (v->ncases >= MAX_CASES) return NULL;
    struct vcase *c = &v->cases[v->ncases++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->lock = lock;
    c->thread = thread;
    c->rc = -1;
    va_list ap;
    va_start(ap, thread);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && c->nargs < 23)
        c->args[c->nargs++] = a;
    va_end(ap);
    return c;
}

static void mark_multi(struct vcase *c)
{
    if (c) c->multi = 1;
}

static void build_battery(struct vstate *v, int chan, int lock, int robust)
{
    if (chan) {
        add_case(v, "1 producer, 1 consumer", 0, 0, "--producers", "1", "--consumers", "1",
                 "--min-size", "64", "--max-size", "512", NULL);
        mark_multi(add_case(v, "4 producers, 1 consumer", 0, 0, "--producers", "4", "--consumers",
                            "1", "--min-size", "64", "--max-size", "1024", NULL));
        mark_multi(add_case(v, "2 producers, 2 consumers", 0, 0, "--producers", "2", "--consumers",
                            "2", "--min-size", "64", "--max-size", "1024", NULL));
        add_case(v, "sizes above PIPE_BUF", 0, 0, "--producers", "4", "--consumers", "1",
                 "--min-size", "4097", "--max-size", "32768", NULL);
        add_case(v, "sizes above capacity", 0, 0, "--producers", "1", "--consumers", "1",
                 "--capacity", "4096", "--min-size", "2048", "--max-size", "16384", NULL);
        add_case(v, "slow consumer", 0, 0, "--producers", "2", "--consumers", "1",
                 "--consumer-delay", "200", "--min-size", "64", "--max-size", "4096", NULL);
        add_case(v, "slow producers", 0, 0, "--producers", "2", "--consumers", "1",
                 "--producer-delay", "200", "--min-size", "64", "--max-size", "4096", NULL);
        add_case(v, "fault kill", 0, 0, "--producers", "2", "--consumers", "1", "--fault", "kill",
                 "--min-size", "64", "--max-size", "4096", NULL);
        add_case(v, "fault signals", 0, 0, "--producers", "2", "--consumers", "1", "--fault",
                 "signals", "--min-size", "64", "--max-size", "8192", NULL);
        add_case(v, "fault short-io", 0, 0, "--producers", "2", "--consumers", "1", "--fault",
                 "short-io", "--min-size", "64", "--max-size", "8192", NULL);
        add_case(v, "threads: 1 producer, 1 consumer", 0, 1, "--producers", "1", "--consumers", "1",
                 "--min-size", "64", "--max-size", "1024", NULL);
        mark_multi(add_case(v, "threads: 4 producers, 1 consumer", 0, 1, "--producers", "4",
                            "--consumers", "1", "--min-size", "64", "--max-size", "8192", NULL));
        mark_multi(add_case(v, "threads: 2 producers, 2 consumers", 0, 1, "--producers", "2",
                            "--consumers", "2", "--min-size", "64", "--max-size", "1024", NULL));
        add_case(v, "threads: fault signals", 0, 1, "--producers", "2", "--consumers", "1",
                 "--fault", "signals", "--min-size", "64", "--max-size", "4096", NULL);
    }
    if (lock) {
        add_case(v, "lock: 2 workers", 1, 0, "--workers", "2", NULL);
        add_case(v, "lock: 4 workers", 1, 0, "--workers", "4", NULL);
        add_case(v, "lock: 8 workers", 1, 0, "--workers", "8", NULL);
        add_case(v, "lock threads: 2 workers", 1, 1, "--workers", "2", NULL);
        add_case(v, "lock threads: 4 workers", 1, 1, "--workers", "4", NULL);
        /* a robust lock loses a holder inside its critical section and must hand the lock on;
         * any other lock loses a contender outside it, which it must survive */
        add_case(v, robust ? "lock: fault kill of a holder" : "lock: fault kill of a non-holder", 1,
                 0, "--workers", "4", "--fault", "kill", NULL);
        add_case(v, "lock: fault signals", 1, 0, "--workers", "4", "--fault", "signals", NULL);
        add_case(v, "lock: fault short-io", 1, 0, "--workers", "4", "--fault", "short-io", NULL);
    }
}

static int tolerable_create_err(int e)
{
    return e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP || e == EMSGSIZE || e == ENOSYS ||
           e == E2BIG || e == ERANGE;
}

static void read_case_json(struct vcase *c, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        snprintf(c->result, sizeof(c->result), "error");
        snprintf(c->detail, sizeof(c->detail), "no report (%s)", jerr.text);
        return;
    }
    const char *res = json_string_value(json_object_get(root, "result"));
    snprintf(c->result, sizeof(c->result), "%s", res ? res : "?");
    json_t *st = json_object_get(root, "stats");
    c->mps = json_number_value(json_object_get(st, "msgs_per_s"));
    const char *repro = json_string_value(json_object_get(root, "repro"));
    snprintf(c->repro, sizeof(c->repro), "%s", repro ? repro : "");
    json_t *vs = json_object_get(root, "violations");
    c->violations = json_incref(vs);
    size_t i;
    json_t *x;
    size_t klen = 0, dlen = 0;
    json_array_foreach(vs, i, x)
    {
        const char *k = json_string_value(json_object_get(x, "kind"));
        const char *d = json_string_value(json_object_get(x, "detail"));
        if (klen < sizeof(c->kinds))
            klen += (size_t)snprintf(c->kinds + klen, sizeof(c->kinds) - klen, "%s%s", i ? "," : "",
                                     k ? k : "?");
        if (dlen < sizeof(c->detail))
            dlen += (size_t)snprintf(c->detail + dlen, sizeof(c->detail) - dlen, "%s%s: %s",
                                     i ? "\n      " : "", k ? k : "?", d ? d : "");
    }
    if (strcmp(c->result, "error") == 0) {
        const char *e = json_string_value(json_object_get(root, "error"));
        json_int_t ce = json_integer_value(json_object_get(root, "create_errno"));
        snprintf(c->detail, sizeof(c->detail), "%s", e ? e : "setup error");
        if (ce && tolerable_create_err((int)ce)) {
            c->na = 1;
            snprintf(c->result, sizeof(c->result), "n/a");
        }
    }
    json_decref(root);
}

static void run_case_once(struct vstate *v, struct vcase *c, int idx, double dur);

/* A protocol for one producer and one consumer (a SPSC ring) refuses the counts of most cases;
 * those that are not about the counts run again with 1 and 1, so that the faults, sizes and
 * speeds are still tested. */
static void run_case(struct vstate *v, struct vcase *c, int idx, double dur)
{
    run_case_once(v, c, idx, dur);
    if (!c->na || c->multi || c->lock) return;
    int changed = 0;
    for (int i = 0; i + 1 < c->nargs; i++) {
        if ((strcmp(c->args[i], "--producers") == 0 || strcmp(c->args[i], "--consumers") == 0) &&
            strcmp(c->args[i + 1], "1") != 0) {
            c->args[i + 1] = "1";
            changed = 1;
        }
    }
    if (!changed) return;
    json_decref(c->violations);
    c->violations = NULL;
    c->na = 0;
    c->kinds[0] = c->detail[0] = c->result[0] = '\0';
    c->mps = 0;
    c->fallback = 1;
    size_t len = strlen(c->name);
    snprintf(c->name + len, sizeof(c->name) - len, " (1:1)");
    run_case_once(v, c, idx, dur);
}

static void run_case_once(struct vstate *v, struct vcase *c, int idx, double dur)
{
    char *argv[MAX_ARGS];
    int n = 0;
    const char *bin = st_self_exe();
    const char *plugin = v->plugin;
    int tsan = 0;
    if (c->thread && v->tsan_bin) {
        bin = v->tsan_bin;
        plugin = v->thread_plugin;
        tsan = 1;
        if (strcmp(bin, st_self_exe()) != 0) c->bin = bin;
    }
    char json[PATH_MAX], durs[32], seeds[32], msgs[32], stall[32];
    snprintf(json, sizeof(json), "%s/case%02d.json", v->tmpdir, idx);
    snprintf(c->log, sizeof(c->log), "%s/case%02d.log", v->tmpdir, idx);
    snprintf(durs, sizeof(durs), "%.2f", dur);
    snprintf(seeds, sizeof(seeds), "%" PRIu64, v->seed + (uint64_t)idx);
    snprintf(msgs, sizeof(msgs), "%u", c->lock ? 200000u : 100000u);
    /* a stall ends a failing case early, so that it does not eat the others' budget */
    snprintf(stall, sizeof(stall), "%.1f", dur * 3 > 3 ? dur * 3 : 3.0);
    argv[n++] = (char *)bin;
    argv[n++] = "stress";
    if (v->proto) {
        argv[n++] = "--proto";
        argv[n++] = (char *)v->proto;
    } else {
        argv[n++] = "--plugin";
        argv[n++] = (char *)plugin;
    }
    argv[n++] = "--kind";
    argv[n++] = c->lock ? "lock" : "channel";
    argv[n++] = "--mode";
    argv[n++] = c->thread ? "thread" : "process";
    for (int i = 0; i < c->nargs; i++)
        argv[n++] = (char *)c->args[i];
    argv[n++] = "--duration";
    argv[n++] = durs;
    argv[n++] = "--messages";
    argv[n++] = msgs;
    argv[n++] = "--seed";
    argv[n++] = seeds;
    argv[n++] = "--stall";
    argv[n++] = stall;
    if (v->opt && *v->opt) {
        argv[n++] = "--opt";
        argv[n++] = (char *)v->opt;
    }
    argv[n++] = "--json";
    argv[n++] = json;
    argv[n++] = "--quiet";
    argv[n] = NULL;
    unlink(json);
    c->rc = run_cmd(argv, c->log, 4 * dur + 120, tsan,
                    "halt_on_error=1:exitcode=66:second_deadlock_stack=1");
    read_case_json(c, json);
    if (c->rc != 0 && c->rc != 1 && c->rc != 2 && !c->na) {
        snprintf(c->result, sizeof(c->result), "error");
        snprintf(c->detail, sizeof(c->detail), "the stress run ended with status %d", c->rc);
    }
}

/* ---- output --------------------------------------------------------------------------------- */

static void human_rate(double v, char *buf, size_t cap)
{
    if (v >= 1e6)
        snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, cap, "%.1fk", v / 1e3);
    else
        snprintf(buf, cap, "%.0f", v);
}

static int write_json(struct vstate *v, const char *name, const char *kind, int status)
{
    json_t *root = json_object();
    json_object_set_new(root, "result",
                        json_string(status == 0   ? "pass"
                                    : status == 1 ? "fail"
                                                  : "error"));
    json_object_set_new(root, "kind", json_string(kind));
    json_object_set_new(root, "protocol", json_string(name));
    json_object_set_new(root, "seed", json_integer((json_int_t)v->seed));
    json_object_set_new(root, "budget", json_real(v->budget));
    json_t *cases = json_array(), *all = json_array();
    const char *first_repro = NULL;
    for (int i = 0; i < v->ncases; i++) {
        struct vcase *c = &v->cases[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(c->name));
        json_object_set_new(o, "mode", json_string(c->thread ? "thread" : "process"));
        json_object_set_new(o, "result", json_string(c->result[0] ? c->result : "skipped"));
        json_object_set_new(o, "msgs_per_s", json_real(c->mps));
        if (c->detail[0]) json_object_set_new(o, "detail", json_string(c->detail));
        json_object_set_new(o, "violations",
                            c->violations ? json_incref(c->violations) : json_array());
        if (c->repro[0]) json_object_set_new(o, "repro", json_string(c->repro));
        if (c->bin) json_object_set_new(o, "binary", json_string(c->bin));
        json_array_append_new(cases, o);
        size_t k;
        json_t *x;
        json_array_foreach(c->violations, k, x)
        {
            json_t *cp = json_deep_copy(x);
            json_object_set_new(cp, "case", json_string(c->name));
            if (c->repro[0]) json_object_set_new(cp, "repro", json_string(c->repro));
            json_array_append_new(all, cp);
            if (!first_repro && c->repro[0]) first_repro = c->repro;
        }
    }
    json_object_set_new(root, "cases", cases);
    json_object_set_new(root, "violations", all);
    if (first_repro) json_object_set_new(root, "repro", json_string(first_repro));
    int rc = json_dump_file(root, v->json, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(root);
    if (rc != 0) fprintf(stderr, "ipcproof validate: cannot write %s\n", v->json);
    return rc;
}

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

/* ---- main ----------------------------------------------------------------------------------- */

int st_validate_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"proto", required_argument, NULL, 'p'},
        {"plugin", required_argument, NULL, 'P'},
        {"plugin-tsan", required_argument, NULL, 'T'},
        {"plugin-src", required_argument, NULL, 'S'},
        {"budget", required_argument, NULL, 'b'},
        {"json", required_argument, NULL, 'j'},
        {"seed", required_argument, NULL, 's'},
        {"kind", required_argument, NULL, 'k'},
        {"opt", required_argument, NULL, 'o'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct vstate *v = calloc(1, sizeof(*v));
    if (v == NULL) return 2;
    v->budget = 60;
    v->seed = ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16)) & 0xffffffffu;
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
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
        case 'j':
            v->json = optarg;
            break;
        case 'o':
            v->opt = optarg;
            break;
        case 'v':
            v->verbose = 1;
            break;
        case 'b':
            v->budget = strtod(optarg, &end);
            if (*end || !(v->budget >= 1 && v->budget <= 86400))
                vusage("--budget must be 1..86400 seconds");
            break;
        case 's':
            errno = 0;
            v->seed = strtoull(optarg, &end, 0);
            if (errno || *end || optarg[0] == '-' || v->seed > INT64_MAX)
                vusage("--seed must be a number below 2^63");
            break;
        case 'k':
            if (strcmp(optarg, "channel") == 0)
                v->kind = ST_KIND_CHANNEL;
            else if (strcmp(optarg, "lock") == 0)
                v->kind = ST_KIND_LOCK;
            else
                vusage("--kind must be channel or lock");
            break;
        case 'h':
            vusage("help");
            break;
        default:
            vusage("unknown or incomplete option");
        }
    }
    if (optind < argc) vusage("unexpected argument");
    if ((v->proto != NULL) + (v->plugin != NULL) + (v->plugin_src != NULL) != 1)
        vusage("exactly one of --proto, --plugin, --plugin-src");
    if (v->plugin_tsan && !v->plugin) vusage("--plugin-tsan goes with --plugin");

    const char *tdir = getenv("TMPDIR");
    if (tdir && strlen(tdir) > 900) tdir = NULL;
    snprintf(v->tmpdir, sizeof(v->tmpdir), "%s/ipcproof-validate-XXXXXX",
             tdir && *tdir ? tdir : "/tmp");
    if (mkdtemp(v->tmpdir) == NULL) {
        fprintf(stderr, "ipcproof validate: mkdtemp: %s\n", strerror(errno));
        return 2;
    }
    int status = 2;
    v->tsan_bin = find_tsan_bin();

    /* --plugin-src: build the plain and the TSan variant */
    if (v->plugin_src) {
        const char *cc = getenv("CC");
        if (!cc || !*cc) cc = "cc";
        const char *base = strrchr(v->plugin_src, '/');
        base = base ? base + 1 : v->plugin_src;
        char stem[256];
        snprintf(stem, sizeof(stem), "%.*s", (int)strcspn(base, "."), base);
        snprintf(v->built_plain, sizeof(v->built_plain), "%s/%s.so", v->tmpdir, stem);
        char log[PATH_MAX];
        snprintf(log, sizeof(log), "%s/build.log", v->tmpdir);
        if (build_plugin(cc, v->plugin_src, v->built_plain, 0, log) != 0) {
            fprintf(stderr, "ipcproof validate: building %s with %s failed:\n", v->plugin_src, cc);
            print_file(log, 60);
            goto out;
        }
        v->plugin = v->built_plain;
        if (v->tsan_bin) {
            char tcc[PATH_MAX];
            tsan_cc(v->tsan_bin, v->tmpdir, tcc, sizeof(tcc));
            snprintf(v->built_tsan, sizeof(v->built_tsan), "%s/%s-tsan.so", v->tmpdir, stem);
            if (build_plugin(tcc, v->plugin_src, v->built_tsan, 1, log) != 0) {
                fprintf(stderr, "ipcproof validate: building the TSan variant with %s failed:\n",
                        tcc);
                print_file(log, 60);
                goto out;
            }
            v->plugin_tsan = v->built_tsan;
        }
    }

    /* what the protocol is */
    struct st_hmsg pm;
    char err[512];
    if (st_host_probe(v->proto, v->plugin, 10, &pm, err, sizeof(err)) != 0) {
        fprintf(stderr, "ipcproof validate: %s\n", err);
        goto out;
    }
    int chan = pm.has_chan != 0, lock = pm.has_lock != 0;
    if (v->kind == ST_KIND_CHANNEL) lock = 0;
    if (v->kind == ST_KIND_LOCK) chan = 0;
    if (!chan && !lock) {
        fprintf(stderr, "ipcproof validate: the protocol has no %s\n",
                v->kind == ST_KIND_LOCK ? "lock" : "channel");
        goto out;
    }
    char name[192];
    snprintf(name, sizeof(name), "%s%s%s", chan ? pm.chan_name : "", chan && lock ? " + " : "",
             lock ? pm.lock_name : "");
    uint32_t cflags = chan ? pm.chan_flags : 0, lflags = lock ? pm.lock_flags : 0;

    /* who runs thread mode */
    if (v->tsan_bin) {
        if (v->proto) {
            v->thread_plugin = NULL;
        } else if (v->plugin_tsan) {
            v->thread_plugin = v->plugin_tsan;
        } else {
            v->thread_plugin = v->plugin;
            if (!st_is_tsan_build())
                note(v,
                     "thread mode: %s was not given with --plugin-tsan: ThreadSanitizer "
                     "cannot see inside a plugin built without -fsanitize=thread",
                     v->plugin);
        }
        if (!st_is_tsan_build()) note(v, "thread mode runs in the TSan build %s", v->tsan_bin);
    } else {
        note(v, "thread mode runs without ThreadSanitizer (no TSan build of ipcproof: set "
                "IPCPROOF_TSAN_BIN or build the tsan preset): races are not looked for");
    }

    build_battery(v, chan, lock, (lflags & IPCP_LOCK_ROBUST) != 0);
    int runnable = 0;
    for (int i = 0; i < v->ncases; i++)
        runnable += !v->cases[i].na;
    double per = v->budget * 0.75 / (runnable ? runnable : 1);
    if (per < 0.3) per = 0.3;
    if (per > 20) per = 20;

    printf("ipcproof validate: %s (%s%s%s%s) | budget %.0f s | seed %" PRIu64 "\n", name,
           chan ? "channel" : "", chan && (cflags & IPCP_CHAN_FIFO) ? ", FIFO" : "",
           chan && lock ? " + " : "",
           lock ? ((lflags & IPCP_LOCK_ROBUST) ? "lock, robust" : "lock") : "", v->budget, v->seed);
    printf("  %-36s %-8s %-7s %10s  %s\n", "case", "mode", "result", "msgs/s", "violations");
    fflush(stdout);
    int64_t t0 = ipcp__now_ns();
    int fails = 0, errors = 0, nas = 0, passes = 0;
    for (int i = 0; i < v->ncases; i++) {
        struct vcase *c = &v->cases[i];
        /* every case runs: one that ate more than its share (a watchdog firing) shortens the
         * others, down to 0.3 s each */
        double left = v->budget * 0.9 - (double)(ipcp__now_ns() - t0) / 1e9;
        int todo = 0;
        for (int k = i; k < v->ncases; k++)
            todo += !v->cases[k].na;
        double d = per;
        if (todo && left / todo < d) d = left / todo;
        if (d < 0.3) d = 0.3;
        if (!c->na) run_case(v, c, i, d);
        char rate[32] = "-";
        if (c->mps > 0) human_rate(c->mps, rate, sizeof(rate));
        printf("  %-36s %-8s %-7s %10s  %s\n", c->name, c->thread ? "thread" : "process", c->result,
               rate, c->kinds[0] ? c->kinds : "-");
        if (strcmp(c->result, "fail") == 0) {
            fails++;
            printf("      %s\n      rerun%s%s: %s\n", c->detail, c->bin ? " with " : "",
                   c->bin ? c->bin : "", c->repro);
            if (strstr(c->kinds, "race") || strstr(c->kinds, "crash") || v->verbose)
                print_file(c->log, 80);
        } else if (strcmp(c->result, "pass") == 0) {
            passes++;
            if (v->verbose) print_file(c->log, 40);
        } else if (strcmp(c->result, "n/a") == 0) {
            nas++;
            printf("      not applicable: %s\n", c->detail);
        } else if (strcmp(c->result, "skipped") != 0) {
            errors++;
            printf("      %s\n", c->detail);
            if (c->repro[0]) printf("      rerun: %s\n", c->repro);
            print_file(c->log, 40);
        }
        fflush(stdout);
    }
    status = fails ? 1 : errors ? 2 : passes ? 0 : 2;
    if (v->notes[0]) printf("notes:\n  %s\n", v->notes);
    printf("verdict: %s (%d passed, %d failed, %d errors, %d not applicable) in %.1f s\n",
           status == 0   ? "PASS"
           : status == 1 ? "FAIL"
                         : "ERROR",
           passes, fails, errors, nas, (double)(ipcp__now_ns() - t0) / 1e9);
    if (fails) {
        printf("rerun the failing cases:\n");
        for (int i = 0; i < v->ncases; i++)
            if (strcmp(v->cases[i].result, "fail") == 0)
                printf("  %s%s%s\n", v->cases[i].repro, v->cases[i].bin ? "   # with " : "",
                       v->cases[i].bin ? v->cases[i].bin : "");
    }
    if (v->json &&
        write_json(v, name,
                   chan && lock ? "channel+lock"
                   : chan       ? "channel"
                                : "lock",
                   status) != 0 &&
        status == 0)
        status = 2;
out:
    for (int i = 0; i < v->ncases; i++)
        json_decref(v->cases[i].violations);
    if (v->plugin_src && status == 1) {
        printf("the plugins built from %s are kept in %s for the rerun lines\n", v->plugin_src,
               v->tmpdir);
        /* keep only the built plugins */
        for (int i = 0; i < v->ncases; i++) {
            char p[PATH_MAX + 16];
            snprintf(p, sizeof(p), "%s/case%02d.json", v->tmpdir, i);
            unlink(p);
            unlink(v->cases[i].log);
        }
    } else {
        rm_tree(v->tmpdir);
    }
    free(v);
    return status;
}

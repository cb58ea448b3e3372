/* cli.c - command-line helpers; see cli.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stress.h"

_Noreturn void st_cli_die(const char *cmd, const char *fmt, ...)
{
    fflush(stdout);
    fprintf(stderr, "ipcproof %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(`ipcproof help` lists the commands and their options)\n");
    exit(2);
}

uint64_t st_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    int ok = isdigit((unsigned char)*p);
    char *end = (char *)p;
    unsigned long long v = 0;
    if (ok) {
        errno = 0;
        v = strtoull(p, &end, 10);
        ok = errno == 0 && *end == '\0' && v >= min && v <= max;
    }
    if (!ok)
        st_cli_die(cmd, "%s: '%s' is not a whole number in %" PRIu64 "..%" PRIu64, opt, s, min,
                   max);
    return v;
}

double st_cli_double(const char *cmd, const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* decimal only: no hex floats, no inf/nan */
    int ok = errno == 0 && end != s && *end == '\0' && isfinite(v) && v >= min && v <= max;
    for (const char *p = s; ok && *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.' && *p != 'e' && *p != 'E' && *p != '-' &&
            *p != '+')
            ok = 0;
    if (!ok) st_cli_die(cmd, "%s: '%s' is not a number in %g..%g", opt, s, min, max);
    return v;
}

static const char top_text[] =
    "usage: ipcproof COMMAND [options]      (ipcproof help COMMAND, or COMMAND --help)\n"
    "\n"
    "  stress     one stress case of a protocol: --proto NAME | --plugin FILE.so | your programs\n"
    "  validate   the whole battery of cases on one protocol, one verdict table\n"
    "  bench      every built-in protocol against its raw mechanism\n"
    "  repro      reproduce a fuzzer crash file (runs the source tree's ci/reproduce)\n"
    "  describe   what a plugin exports (loaded in a child)\n"
    "  replay     one failing --mode sched schedule again, with its trace\n"
    "  list       the built-in protocols\n"
    "  clean      remove what crashed runs left behind (--dry-run: only list it)\n"
    "  version    version, plugin ABI, compiler and sanitizers of this build\n"
    "  help       this text, or one command's options\n"
    "\n"
    "exit status: 0 no violation (success), 1 violations (repro: still fails), 2 usage or setup\n"
    "error, with a message on stderr naming what was wrong\n"
    "docs: docs/stress.md (stress, validate), docs/plugins.md (your protocol as a plugin),\n"
    "docs/exec.md (your programs), docs/sched.md (--mode sched), docs/bench.md, docs/clean.md,\n"
    "docs/fuzzing.md (repro)\n";

#define EXEC_TEXT                                                                                  \
    "  EXEC = --exec-producer CMD --exec-consumer CMD [--fifo]   your programs as channel\n"       \
    "         endpoints, or --exec-worker CMD [--robust] as lock contenders; with\n"               \
    "         [--exec-setup CMD] [--exec-teardown CMD] (docs/exec.md)\n"

static const char stress_text[] =
    "usage: ipcproof stress (--proto NAME | --plugin FILE.so | EXEC) [options]\n" EXEC_TEXT "\n"
    "stress options:\n"
    "  --mode process|thread|sched  endpoints as processes (default), threads of one child, or\n"
    "                               threads run one at a time by the scheduler (docs/sched.md)\n"
    "  --producers N --consumers N  channel endpoints (default 1 and 1)\n"
    "  --workers N                  lock contenders (default 2)\n"
    "  --messages N                 stop after N messages per producer (acquisitions per worker)\n"
    "  --duration S                 stop after S seconds (default: --messages 10000)\n"
    "  --min-size B --max-size B    message sizes, header of 40 bytes included (64..1024)\n"
    "  --seed S                     every random choice derives from it\n"
    "  --fault kill,stop,signals,short-io   fault injection (stop: SIGSTOP one endpoint\n"
    "                               50..500 ms, then SIGCONT)\n"
    "  --fault-rate R               short-io: share of wrapped calls that fail (0.05)\n"
    "  --opt k=v,...                passed to the protocol's create() as options\n"
    "  --capacity B                 buffer size hint passed to create()\n"
    "  --kind channel|lock          for a plugin that exports both (default channel)\n"
    "  --consumer-delay US --producer-delay US   slow endpoints down per message\n"
    "  --json FILE                  machine-readable report\n"
    "  --sarif FILE                 the violations as SARIF 2.1.0 (GitHub code scanning)\n"
    "  --progress | --quiet         progress line every second / no summary\n"
    "  --no-verify                  checks off (to measure their cost)\n"
    "  --overhead                   run verified, then unverified, report both rates\n"
    "  --watchdog S --stall S       case deadline / longest time without progress (5)\n"
    "  --no-sandbox                 no private IPC+mount namespace for the leak check\n"
    "  --kill-point any|send-blocked|recv-blocked   where --fault kill strikes a channel\n"
    "  --signal-period US           --fault signals: one SIGALRM every US us (20..; default:\n"
    "                               200..1000 from the seed)\n"
    "  --lock-pause US              locks: random pause of up to US us between acquisitions\n"
    "  --setup-timeout S            limit of loading the plugin, create() and destroy() (5)\n"
    "  --crash-point N              (a -fsanitize=thread plugin) one endpoint dies at the N-th\n"
    "                               scheduling point of its third operation (docs/sched.md)\n"
    "  --crash-points               N = 1, 2, ... until every point of it was tried\n"
    "  --crash-role producer|consumer  (channels) which kind of endpoint dies (default: either,\n"
    "                               from the seed)\n"
    "sched options (--mode sched, a plugin built with clang-14 -fsanitize=thread):\n"
    "  --strategy pct|random|dfs    pct (default): priorities and d-1 change points;\n"
    "                               dfs: every schedule with at most --preemptions B (2),\n"
    "                               up to --schedules (10000 for dfs)\n"
    "  --depth D                    pct's bug depth (3)\n"
    "  --schedules N                how many schedules (100); stops at the first failing one\n"
    "  --schedule I                 only schedule I (the rerun line of a failure)\n"
    "  --sched-steps K              pct's expected length of a schedule (1000)\n"
    "  --plain-points               plain reads and writes are scheduling points too\n"
    "  --memory tso|sc              tso (default): a store buffer per thread (x86-TSO);\n"
    "                               sc: sequential consistency\n"
    "  --lost-wakeups               a futex waiter asleep on a word that changed while nobody\n"
    "                               can run is a violation (its wake-up was lost)\n"
    "  --races on|off               on (default): two plain accesses of the same bytes, one a\n"
    "                               write, not ordered by happens-before are a `race`\n"
    "  --choices P:A,...|none       dfs: only the schedule taking alternative A at branching\n"
    "                               point P (the rerun line of a failure)\n"
    "  --minimise N                 a failing schedule is rerun with fewer preemptions and\n"
    "                               messages, at most N candidates (500; 0: as found)\n"
    "  --shard I/N                  this job's part of the search, none shared with the other\n"
    "                               N-1 jobs: schedules I, I+N, ...; dfs: the subtrees of I\n";

static const char validate_text[] =
    "usage: ipcproof validate (--proto NAME | --plugin FILE.so [--plugin-tsan FILE.so] |\n"
    "                          --plugin-src FILE.c|.cpp [--cflags FLAGS] | EXEC) "
    "[options]\n" EXEC_TEXT "\n"
    "  --budget SECONDS             time for the whole battery (60); rounds repeat the cases\n"
    "  --json FILE                  machine-readable report (opened before anything runs)\n"
    "  --sarif FILE                 the violations as SARIF 2.1.0 (GitHub code scanning)\n"
    "  --seed S                     every run's seed derives from it\n"
    "  --kind channel|lock          for a plugin that exports both (default: both)\n"
    "  --opt k=v,...                passed to the protocol's create() (programs: IPCPROOF_OPT_*)\n"
    "  --no-sandbox                 no private IPC+mount namespace for the leak check\n"
    "  --verbose                    every run's command line and output\n";

static const char short_text[] =
    "usage: ipcproof repro FILE [--target NAME] [--flavour libfuzzer|asan] [--minimize]\n"
    "  runs the source tree's ci/reproduce (IPCPROOF_SOURCE_DIR overrides where): builds the\n"
    "  sanitizer flavour, replays FILE, prints the symbolized stack; 0 fixed, 1 still fails\n"
    "\x1e"
    "usage: ipcproof describe (--proto NAME | --plugin FILE.so) [--setup-timeout S]\n"
    "  loads the protocol in a child and prints what it exports, as JSON\n"
    "\x1e"
    "usage: ipcproof replay REPORT.json\n"
    "  re-runs the failing schedule of a --mode sched report (its --json) and prints its trace\n"
    "\x1e"
    "usage: ipcproof list\n"
    "  the built-in protocols: name, kind (channel or lock), fifo / robust / fair\n"
    "\x1e"
    "usage: ipcproof clean [--dry-run | -n]\n"
    "  removes the OS objects (shm, queues, semaphores, FIFOs, registry entries) whose creating\n"
    "  ipcproof process is dead; --dry-run lists them only (docs/clean.md)\n"
    "\x1e"
    "usage: ipcproof version\n"
    "  version, plugin ABI, compiler and sanitizers of this build\n"
    "\x1e"
    "usage: ipcproof help [COMMAND]\n"
    "  every command, or one command's options\n";

void st_usage(FILE *out)
{
    fputs(top_text, out);
}

int st_usage_cmd(FILE *out, const char *cmd)
{
    static const char *const shorts[] = {"repro", "describe", "replay", "list",
                                         "clean", "version",  "help"};
    if (strcmp(cmd, "stress") == 0) {
        fputs(stress_text, out);
        return 0;
    }
    if (strcmp(cmd, "validate") == 0) {
        fputs(validate_text, out);
        return 0;
    }
    const char *t = short_text;
    for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++) {
        const char *end = strchr(t, '\x1e');
        size_t n = end ? (size_t)(end - t) : strlen(t);
        if (strcmp(cmd, shorts[i]) == 0) {
            fwrite(t, 1, n, out);
            return 0;
        }
        t = end ? end + 1 : t + n;
    }
    return -1;
}

/* config.c - the configuration of one stress case: defaults and the rerun line. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "stress.h"

const char *st_strategy_name(unsigned strategy)
{
    return strategy == ST_SCHED_RANDOM ? "random" : strategy == ST_SCHED_DFS ? "dfs" : "pct";
}

const char *st_mode_name(int mode)
{
    return mode == ST_MODE_THREAD ? "thread" : mode == ST_MODE_SCHED ? "sched" : "process";
}

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
    c->strategy = ST_SCHED_PCT;
    c->preemptions = 2;
    c->depth = 3;
    c->schedules = 100;
    c->minimise = ST_MINIMISE_RUNS;
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

const char *st_faults_str(unsigned faults, char *buf, size_t cap)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{ST_FAULT_KILL, "kill"},
                 {ST_FAULT_STOP, "stop"},
                 {ST_FAULT_SIGNALS, "signals"},
                 {ST_FAULT_SHORTIO, "short-io"}};
    snprintf(buf, cap, "%s", faults ? "" : "none");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (faults & names[i].bit) {
            size_t n = strlen(buf);
            snprintf(buf + n, cap - n, "%s%s", n ? "," : "", names[i].name);
        }
    return buf;
}

void st_config_repro(const struct st_config *c, char *buf, size_t cap)
{
    buf[0] = '\0';
    append(buf, cap, "ipcproof stress");
    if (c->exec_worker) {
        append(buf, cap, " --exec-worker");
        append_arg(buf, cap, c->exec_worker);
        if (c->exec_robust) append(buf, cap, " --robust");
    }
    if (c->exec_producer) {
        append(buf, cap, " --exec-producer");
        append_arg(buf, cap, c->exec_producer);
        append(buf, cap, " --exec-consumer");
        append_arg(buf, cap, c->exec_consumer);
        if (c->exec_fifo) append(buf, cap, " --fifo");
    }
    if (c->exec_setup) {
        append(buf, cap, " --exec-setup");
        append_arg(buf, cap, c->exec_setup);
    }
    if (c->exec_teardown) {
        append(buf, cap, " --exec-teardown");
        append_arg(buf, cap, c->exec_teardown);
    }
    if (c->exec_producer || c->exec_worker) {
    } else if (c->proto) {
        append(buf, cap, " --proto");
        append_arg(buf, cap, c->proto);
    } else if (c->plugin) {
        append(buf, cap, " --plugin");
        append_arg(buf, cap, c->plugin);
    }
    if (c->kind == ST_KIND_LOCK && !c->exec_worker) append(buf, cap, " --kind lock");
    if (c->kind == ST_KIND_CHANNEL && !c->exec_producer) append(buf, cap, " --kind channel");
    append(buf, cap, " --mode %s", st_mode_name(c->mode));
    if (c->mode == ST_MODE_SCHED) {
        append(buf, cap, " --strategy %s", st_strategy_name(c->strategy));
        if (c->strategy == ST_SCHED_PCT) append(buf, cap, " --depth %u", c->depth);
        if (c->strategy == ST_SCHED_DFS) append(buf, cap, " --preemptions %u", c->preemptions);
        if (c->strategy == ST_SCHED_DFS && c->choices_arg) {
            append(buf, cap, " --choices");
            append_arg(buf, cap, c->choices_arg);
        }
        if (c->one_schedule)
            append(buf, cap, " --schedule %" PRIu64, c->first_schedule);
        else
            append(buf, cap, " --schedules %" PRIu64, c->schedules);
        if (c->sched_steps) append(buf, cap, " --sched-steps %" PRIu64, c->sched_steps);
        if (c->plain_points) append(buf, cap, " --plain-points");
        if (c->memory_sc) append(buf, cap, " --memory sc");
        if (c->lost_wakeups) append(buf, cap, " --lost-wakeups");
        if (c->no_races) append(buf, cap, " --races off");
        if (c->nshards > 1 && !c->one_schedule && !c->choices_arg)
            append(buf, cap, " --shard %u/%u", c->shard, c->nshards);
    }
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
        char fl[64];
        append(buf, cap, " --fault %s", st_faults_str(c->faults, fl, sizeof(fl)));
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
    if (c->crash_point) append(buf, cap, " --crash-point %" PRIu64, c->crash_point);
    if (c->crash_points) append(buf, cap, " --crash-points");
    if (c->crash_role)
        append(buf, cap, " --crash-role %s", c->crash_role == 1 ? "producer" : "consumer");
    static const char *const kp[] = {"any", "send-blocked", "recv-blocked"};
    if ((c->faults & ST_FAULT_KILL) && c->kill_point != ST_KP_ANY)
        append(buf, cap, " --kill-point %s", kp[c->kill_point]);
    if (c->signal_us) append(buf, cap, " --signal-period %u", c->signal_us);
    if (c->lock_pause_us && lock != 0) append(buf, cap, " --lock-pause %u", c->lock_pause_us);
    if (c->setup > 0) append(buf, cap, " --setup-timeout %g", c->setup);
}

/* exec.c - black-box endpoints: the user's programs as producers and consumers; see exec.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"
#include "execfx.h"
#include "spawn.h"

#define RBUF_MIN    (64u << 10)
#define ROLE_WORKER 3    /* a lock contender (IPCP_ROLE_* are 1 and 2 in plugin.h) */
#define LINE_MS     5000 /* longest wait for "released" after ipcproof let a worker go */

static const struct st_config *cfg;
static const struct st_case *bound_case;

void st_exec_bind(const struct st_config *c)
{
    cfg = c;
}

void st_exec_bind_case(const struct st_case *cs)
{
    bound_case = cs;
}

struct exec_ep {
    int role;
    pid_t pid;     /* the /bin/sh -c that runs the command: leads the process group */
    int in_fd;     /* the program's stdin (write end), -1 once closed */
    int out_fd;    /* consumer: the program's stdout (read end) */
    int exited;    /* reaped: status is valid */
    int status;    /* its wait status */
    int stdin_eof; /* its stdin was closed on purpose */
    int why;       /* first contract failure (enum st_exec_why) */
    int64_t val;
    /* producer: the record being written across send() retries */
    const void *cur;
    size_t cur_len, cur_off;
    /* consumer: bytes read from stdout, not yet handed out */
    uint8_t *rbuf;
    size_t rcap, rlen, roff;
    struct st_exfx fx; /* --fault short-io/signals: the interposer in the program */
};

const char *st_exec_why_text(int why, int64_t val, char *buf, size_t cap)
{
    switch (why) {
    case ST_EX_SPAWN:
        snprintf(buf, cap, "could not be started: %s", strerror((int)val));
        break;
    case ST_EX_STATUS:
        snprintf(buf, cap, "exited with status %lld", (long long)val);
        break;
    case ST_EX_SIGNAL:
        snprintf(buf, cap, "was killed by signal %lld (%s)", (long long)val, strsignal((int)val));
        break;
    case ST_EX_EARLY:
        if (val < 0)
            snprintf(buf, cap,
                     "closed its %s before ipcproof closed its stdin: the contract is "
                     "to run until stdin ends",
                     val == -2 ? "stdout" : "stdin");
        else
            snprintf(buf, cap,
                     "exited (status %lld) before ipcproof closed its stdin: the contract is to "
                     "run until stdin ends",
                     (long long)val);
        break;
    case ST_EX_NOEXIT:
        snprintf(buf, cap, "did not exit within %lld ms after its stdin ended (killed)",
                 (long long)val);
        break;
    case ST_EX_FRAMING: {
        /* four printable bytes where a length belongs: text on stdout, most likely a print */
        char txt[5];
        int text = 1;
        for (int i = 0; i < 4; i++) {
            txt[i] = (char)((uint64_t)val >> (8 * i));
            text &= txt[i] >= 0x20 && txt[i] < 0x7f;
        }
        txt[4] = '\0';
        if (text)
            snprintf(buf, cap,
                     "wrote text to stdout (\"%s...\" where a record's length belongs): stdout "
                     "carries the records only, print anything else to stderr",
                     txt);
        else
            snprintf(buf, cap,
                     "wrote a malformed record to stdout: a length of %lld bytes (every record "
                     "is a 4-byte little-endian length, then that many bytes)",
                     (long long)val);
        break;
    }
    case ST_EX_LINE:
        snprintf(buf, cap, "%s",
                 val == 1   ? "wrote a line other than \"acquired\" while ipcproof waited for it"
                 : val == 2 ? "wrote a line other than \"released\" after ipcproof let it go"
                 : val == 3 ? "did not write \"released\" within 5 s after ipcproof let it go"
                            : "wrote a line of more than 256 bytes (the contract's are "
                              "\"acquired\" and \"released\")");
        break;
    case ST_EX_TRUNCATED:
        snprintf(buf, cap, "ended its stdout inside a record (%lld bytes of it came)",
                 (long long)val);
        break;
    default:
        snprintf(buf, cap, "failed");
    }
    return buf;
}

static void fail(struct exec_ep *e, int why, int64_t val)
{
    if (e->why == ST_EX_NONE) {
        e->why = why;
        e->val = val;
    }
}

/* The signal that ended the program, or 0. /bin/sh -c runs it as a child and reports a death by
 * signal N as exit status 128 + N, the shell's convention, which is taken at its word. */
static int signal_of(int status)
{
    if (WIFSIGNALED(status)) return WTERMSIG(status);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    return code > 128 && code < 128 + 65 ? code - 128 : 0;
}

/* ---- create / destroy: the optional setup and teardown commands ------------------------------ */

/* IPCPROOF_* for a program; returns the number of entries set (env has room for 40; callers
 * keep ST_EXFX_ENV more after them). */
static size_t make_env(char **env, const char *role, uint32_t index, const char *run_id)
{
    static char buf[40][160];
    size_t n = 0;
#define ENV(...) snprintf(env[n] = buf[n], sizeof(buf[n]), __VA_ARGS__), n++
    ENV("IPCPROOF_EXEC_CONTRACT=%d", ST_EXEC_CONTRACT);
    ENV("IPCPROOF_ROLE=%s", role);
    ENV("IPCPROOF_INDEX=%u", index);
    ENV("IPCPROOF_PRODUCERS=%u", cfg->producers);
    ENV("IPCPROOF_CONSUMERS=%u", cfg->consumers);
    ENV("IPCPROOF_WORKERS=%u", cfg->workers);
    ENV("IPCPROOF_RUN_ID=%s", run_id);
    ENV("IPCPROOF_CAPACITY=%zu", cfg->capacity);
    ENV("IPCPROOF_MAX_SIZE=%zu", cfg->max_size);
    ENV("IPCPROOF_SEED=%llu", (unsigned long long)cfg->seed);
    /* --opt k=v,... -> IPCPROOF_OPT_K=v (names upper-cased, other characters as '_') */
    char opts[1024];
    snprintf(opts, sizeof(opts), "%s", cfg->opt ? cfg->opt : "");
    for (char *save = NULL, *t = strtok_r(opts, ",", &save); t && n < 39;
         t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        const char *v = eq ? eq + 1 : "1";
        if (eq) *eq = '\0';
        char name[64];
        size_t k = 0;
        for (const char *p = t; *p && k < sizeof(name) - 1; p++)
            name[k++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
        name[k] = '\0';
        ENV("IPCPROOF_OPT_%s=%s", name, v);
    }
#undef ENV
    env[n] = NULL;
    return n;
}

/* Runs CMD to its end (the host's setup deadline bounds it); 0 or -ECHILD after saying why. */
static int run_aux(const char *what, const char *cmd, const char *run_id)
{
    char *env[41 + ST_EXFX_ENV];
    make_env(env, what, 0, run_id);
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    struct st_child_opts o = {.out_fd = -1, .in_null = 1, .new_pgrp = 1, .die_with_parent = 1};
    pid_t pid = st_spawn_exec(&o, argv, env);
    if (pid < 0) {
        fprintf(stderr, "ipcproof: --exec-%s: cannot start /bin/sh: %s\n", what, strerror(-pid));
        return -ECHILD;
    }
    int st;
    if (st_wait_until(pid, &st, 0, NULL) != 1) return -ECHILD;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == ST_EXEC_DECLINE && strcmp(what, "setup") == 0) {
        fprintf(stderr, "ipcproof: --exec-setup declined this configuration (exit %d)\n",
                ST_EXEC_DECLINE);
        return -ENOTSUP; /* like a create() that refuses the counts: validate adapts */
    }
    char why[160];
    st_exec_why_text(signal_of(st) ? ST_EX_SIGNAL : ST_EX_STATUS,
                     signal_of(st) ? signal_of(st) : WEXITSTATUS(st), why, sizeof(why));
    fprintf(stderr, "ipcproof: --exec-%s '%s' %s\n", what, cmd, why);
    return -ECHILD;
}

struct exec_ctx {
    char run_id[ST_RUN_ID_MAX + 1];
};

static int create_any(const char *run_id, void **ctx)
{
    static struct exec_ctx x; /* one case per host process */
    snprintf(x.run_id, sizeof(x.run_id), "%s", run_id);
    if (cfg->exec_setup != NULL) {
        int r = run_aux("setup", cfg->exec_setup, x.run_id);
        if (r < 0) return r;
    }
    *ctx = &x;
    return 0;
}

static int ex_create(const struct ipcp_chan_cfg *cc, void **ctx)
{
    if (cfg == NULL || cfg->exec_producer == NULL || cfg->exec_consumer == NULL) return -EINVAL;
    return create_any(cc->run_id, ctx);
}

static int ex_lock_create(const struct ipcp_lock_cfg *lc, void **ctx)
{
    if (cfg == NULL || cfg->exec_worker == NULL) return -EINVAL;
    return create_any(lc->run_id, ctx);
}

static void ex_destroy(void *ctx)
{
    struct exec_ctx *x = ctx;
    if (cfg->exec_teardown != NULL) (void)run_aux("teardown", cfg->exec_teardown, x->run_id);
}

/* ---- the endpoints ----------------------------------------------------------------------------
 */

static int ex_open(void *ctx, int role, uint32_t index, void **epp)
{
    struct exec_ctx *x = ctx;
    struct exec_ep *e = calloc(1, sizeof(*e));
    if (e == NULL) return -ENOMEM;
    e->role = role;
    e->in_fd = e->out_fd = -1;
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    int consumer = role != IPCP_ROLE_PRODUCER; /* reads the program's stdout: consumer, worker */
    if (pipe2(in, O_CLOEXEC) < 0 || (consumer && pipe2(out, O_CLOEXEC) < 0)) {
        int r = -errno;
        for (int i = 0; i < 2; i++) {
            if (in[i] >= 0) close(in[i]);
            if (out[i] >= 0) close(out[i]);
        }
        free(e);
        return r;
    }
    if (consumer) {
        e->rcap = cfg->max_size + 4 > RBUF_MIN ? cfg->max_size + 4 : RBUF_MIN;
        e->rbuf = malloc(e->rcap);
    }
    char *env[41 + ST_EXFX_ENV];
    static const char *const roles[] = {"", "producer", "consumer", "worker"};
    size_t nenv = make_env(env, roles[role], index, x->run_id);
    /* its stdin, stdout and stderr are the contract with ipcproof: never faulted */
    int contract[3] = {in[0], consumer ? out[1] : 1, 2};
    int fr = st_exfx_open(&e->fx, cfg, (uint64_t)role << 32 | index, contract, 3, env, &nenv);
    const char *cmd = role == ROLE_WORKER          ? cfg->exec_worker
                      : role == IPCP_ROLE_CONSUMER ? cfg->exec_consumer
                                                   : cfg->exec_producer;
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    /* stdin from in[0], stdout (consumers) to out[1]; stderr (and a producer's stdout) go where
     * the worker's go: the case's captured output */
    struct st_child_opts o = {.out_fd = -1,
                              .pipe_io = 1,
                              .in_fd = in[0],
                              .stdout_fd = consumer ? out[1] : -1,
                              .new_pgrp = 1,
                              .die_with_parent = 1,
                              .keep_fd = st_exfx_fd(&e->fx)};
    pid_t pid = fr < 0 ? fr : consumer && e->rbuf == NULL ? -ENOMEM : st_spawn_exec(&o, argv, env);
    close(in[0]);
    if (consumer) close(out[1]);
    if (pid < 0) {
        close(in[1]);
        if (consumer) close(out[0]);
        st_exfx_close(&e->fx, NULL);
        free(e->rbuf);
        free(e);
        return (int)pid;
    }
    (void)setpgid(pid, pid); /* also here: the kill fault may come before the child ran */
    e->pid = pid;
    e->in_fd = in[1];
    e->out_fd = consumer ? out[0] : -1;
    fcntl(e->in_fd, F_SETFL, O_NONBLOCK);
    if (consumer) fcntl(e->out_fd, F_SETFL, O_NONBLOCK);
    *epp = e;
    return 0;
}

pid_t st_exec_pgid(void *ep)
{
    const struct exec_ep *e = ep;
    return e != NULL && e->pid > 1 ? e->pid : 0;
}

static int64_t deadline_of(int timeout_ms)
{
    return st_now_ns() + (int64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
}

/* Waits until fd is ready for ev or the deadline; 1 ready, 0 timed out, -errno. EINTR: -EINTR
 * (the worker retries, as with a protocol). */
static int wait_fd(int fd, short ev, int64_t deadline)
{
    int64_t left = deadline - st_now_ns();
    if (left < 0) left = 0;
    struct pollfd p = {.fd = fd, .events = ev};
    int r = poll(&p, 1, (int)((left + 999999) / 1000000));
    if (r < 0) return -errno;
    return r > 0;
}

static void reap_if_exited(struct exec_ep *e)
{
    if (!e->exited && waitpid(e->pid, &e->status, WNOHANG) == e->pid) e->exited = 1;
}

/* The program closed its end of a pipe before ipcproof closed its stdin: it is exiting (or
 * crashing) most likely; give it a moment so that the report can say which. */
static void ended_early(struct exec_ep *e, int fd_code)
{
    if (!e->exited &&
        st_wait_until(e->pid, &e->status, st_now_ns() + 300 * (int64_t)1000000, NULL) == 1)
        e->exited = 1;
    if (e->exited && signal_of(e->status))
        fail(e, ST_EX_SIGNAL, signal_of(e->status));
    else
        fail(e, ST_EX_EARLY, e->exited ? WEXITSTATUS(e->status) : fd_code);
}

/* Every consumer has ended or died: nobody will take what a producer still sends. */
static int all_consumers_gone(void)
{
    const struct st_case *cs = bound_case;
    if (cs == NULL) return 0;
    for (uint32_t i = cs->producers; i < cs->nworkers; i++)
        if (!atomic_load_explicit(&cs->slots[i].done, memory_order_acquire) &&
            !atomic_load_explicit(&cs->slots[i].dead, memory_order_acquire))
            return 0;
    return 1;
}

static int ex_send(void *ep, const void *msg, size_t len, int timeout_ms)
{
    struct exec_ep *e = ep;
    st_exfx_check(&e->fx, e->pid, 0);
    if (e->in_fd < 0 || len > UINT32_MAX) return -EPIPE;
    if (e->cur != msg || e->cur_len != len) { /* a new record (a retry continues the old one) */
        e->cur = msg;
        e->cur_len = len;
        e->cur_off = 0;
    }
    uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 24)};
    int64_t deadline = deadline_of(timeout_ms);
    while (e->cur_off < len + 4) {
        struct iovec iov[2];
        int n = 0;
        if (e->cur_off < 4) iov[n++] = (struct iovec){hdr + e->cur_off, 4 - e->cur_off};
        size_t body = e->cur_off < 4 ? 0 : e->cur_off - 4;
        iov[n++] = (struct iovec){(uint8_t *)msg + body, len - body};
        ssize_t w = writev(e->in_fd, iov, n);
        if (w > 0) {
            e->cur_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR && e->cur_off == 0) return -EINTR;
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EPIPE) {
            ended_early(e, -1); /* the program closed its stdin */
            return -EPROTO;
        }
        if (w < 0 && errno != EAGAIN) return -errno;
        /* whole record or nothing: once part of it is in the pipe, the rest follows whatever the
         * timeout (the watchdog judges a program that stops reading), unless nobody is left to
         * take it */
        int started = e->cur_off > 0;
        if (started && all_consumers_gone()) return -EPIPE;
        int r = wait_fd(e->in_fd, POLLOUT, started ? st_now_ns() + 100000000 : deadline);
        if (r < 0 && r != -EINTR) return r;
        if (r == 0 && !started) return -ETIMEDOUT;
        if (r == -EINTR && !started) return -EINTR;
    }
    e->cur = NULL;
    e->cur_len = e->cur_off = 0;
    return 0;
}

static int all_producers_ended(void)
{
    const struct st_case *cs = bound_case;
    if (cs == NULL) return 0;
    for (uint32_t i = 0; i < cs->producers; i++)
        if (!atomic_load_explicit(&cs->slots[i].done, memory_order_acquire) &&
            !atomic_load_explicit(&cs->slots[i].dead, memory_order_acquire))
            return 0;
    return 1;
}

static void close_stdin(struct exec_ep *e)
{
    if (e->in_fd >= 0) close(e->in_fd);
    e->in_fd = -1;
    e->stdin_eof = 1;
}

/* One whole record out of rbuf: its length (>= 0), -EAGAIN when incomplete, -EMSGSIZE/-EPROTO. */
static ssize_t take_record(struct exec_ep *e, void *buf, size_t cap)
{
    size_t have = e->rlen - e->roff;
    if (have < 4) return -EAGAIN;
    const uint8_t *p = e->rbuf + e->roff;
    uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (n > ST_MAX_MSG) { /* no message of any run is this long: not a record boundary */
        fail(e, ST_EX_FRAMING, n);
        return -EPROTO;
    }
    if (n > cap) {    /* longer than any message of this run: merged or corrupted messages */
        e->roff += 4; /* the bytes follow; the worker stops reading at -EMSGSIZE */
        return -EMSGSIZE;
    }
    if (have < 4 + (size_t)n) return -EAGAIN;
    memcpy(buf, p + 4, n);
    e->roff += 4 + (size_t)n;
    return (ssize_t)n;
}

static ssize_t ex_recv(void *ep, void *buf, size_t cap, int timeout_ms)
{
    struct exec_ep *e = ep;
    st_exfx_check(&e->fx, e->pid, 0);
    if (!e->stdin_eof && all_producers_ended()) close_stdin(e);
    /* after its stdin closed, the program has a while to write what it has left and exit */
    int64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        ssize_t r = take_record(e, buf, cap);
        if (r != -EAGAIN) return r;
        if (e->roff > 0) { /* keep the partial record at the front */
            memmove(e->rbuf, e->rbuf + e->roff, e->rlen - e->roff);
            e->rlen -= e->roff;
            e->roff = 0;
        }
        ssize_t n = read(e->out_fd, e->rbuf + e->rlen, e->rcap - e->rlen);
        if (n > 0) {
            e->rlen += (size_t)n;
            continue;
        }
        if (n == 0) { /* EOF: the program closed its stdout (it exited, most likely) */
            if (e->rlen > 0) {
                fail(e, ST_EX_TRUNCATED, (int64_t)e->rlen);
                return -EPROTO;
            }
            if (!e->stdin_eof) {
                /* a consumer that stops when its channel ends (its producers closed it) may see
                 * that a moment before ipcproof has seen the producers end: wait for that */
                int64_t until = st_now_ns() + (int64_t)ST_DRAIN_MS * 1000000;
                while (!all_producers_ended() && st_now_ns() < until)
                    (void)poll(NULL, 0, 10);
                if (all_producers_ended()) return -EPIPE;
                ended_early(e, -2);
                return -EPROTO;
            }
            return -EPIPE; /* end of stream, as the contract says */
        }
        if (errno == EINTR) return -EINTR;
        if (errno != EAGAIN) return -errno;
        int w = wait_fd(e->out_fd, POLLIN, deadline);
        if (w < 0) return w;
        if (w == 0) {
            if (!e->stdin_eof && all_producers_ended()) close_stdin(e);
            return -ETIMEDOUT;
        }
    }
}

static void kill_group(struct exec_ep *e)
{
    if (e->pid > 1) kill(-e->pid, SIGKILL);
}

/* Consumers (channels) or lock workers of the case that are done or dead. */
static uint32_t peers_gone(void)
{
    const struct st_case *cs = bound_case;
    if (cs == NULL) return 0;
    uint32_t n = 0;
    for (uint32_t i = cs->is_chan ? cs->producers : 0; i < cs->nworkers; i++)
        n += atomic_load_explicit(&cs->slots[i].done, memory_order_acquire) ||
             atomic_load_explicit(&cs->slots[i].dead, memory_order_acquire);
    return n;
}

/* After its stdin ended, a consumer or a lock worker has ST_DRAIN_MS to exit, counted again from
 * the last time a peer of its kind ended (eight lock workers leave one after the other, each
 * first waiting for the lock the others hold: on a loaded machine that takes more than 2 s in
 * all, and a program waiting its turn is not one that does not exit); a producer as long as it
 * takes to send what it read while a consumer takes it (the watchdog judges a stall), then
 * ST_DRAIN_MS once no consumer is left. */
static void wait_exit(struct exec_ep *e)
{
    int64_t grace = (int64_t)ST_DRAIN_MS * 1000000, until = 0;
    uint32_t gone = e->role != IPCP_ROLE_PRODUCER ? peers_gone() : 0;
    if (e->role != IPCP_ROLE_PRODUCER) until = st_now_ns() + grace;
    for (;;) {
        int64_t now = st_now_ns();
        if (until == 0 && all_consumers_gone()) until = now + grace;
        if (e->role != IPCP_ROLE_PRODUCER) {
            uint32_t g = peers_gone();
            if (g != gone) { /* a peer ended: it may have let go of what this one waits for */
                gone = g;
                until = now + grace;
            }
        }
        int64_t slice = now + 100000000;
        int st, r = st_wait_until(e->pid, &st, until && until < slice ? until : slice, NULL);
        if (r == 1) {
            e->exited = 1;
            e->status = st;
            return;
        }
        if (r < 0 || (until && st_now_ns() >= until)) {
            fail(e, ST_EX_NOEXIT, ST_DRAIN_MS);
            return;
        }
    }
}

int st_exec_close(void *ep, int64_t *val, struct st_exfx_out *fx)
{
    struct exec_ep *e = ep;
    if (fx != NULL) memset(fx, 0, sizeof(*fx));
    if (e == NULL) return ST_EX_NONE;
    reap_if_exited(e);
    if (!e->exited) st_exfx_check(&e->fx, e->pid, 1); /* one last look while it still runs */
    if (e->role == IPCP_ROLE_PRODUCER && e->in_fd >= 0) {
        /* gone with messages still unread in its stdin: it stopped before the end */
        int unread = 0;
        reap_if_exited(e);
        if (e->exited && ioctl(e->in_fd, FIONREAD, &unread) == 0 && unread > 0)
            fail(e, ST_EX_EARLY, WIFEXITED(e->status) ? WEXITSTATUS(e->status) : -1);
    }
    close_stdin(e);
    if (!e->exited) wait_exit(e);
    if (e->exited) {
        if (signal_of(e->status))
            fail(e, ST_EX_SIGNAL, signal_of(e->status));
        else if (WIFEXITED(e->status) && WEXITSTATUS(e->status) != 0)
            fail(e, ST_EX_STATUS, WEXITSTATUS(e->status));
    }
    kill_group(e); /* whatever it left running in its group */
    if (!e->exited) st_kill_reap(e->pid);
    if (e->out_fd >= 0) close(e->out_fd);
    int why = e->why;
    *val = e->val;
    st_exfx_close(&e->fx, fx);
    free(e->rbuf);
    free(e);
    return why;
}

static void ex_close(void *ep)
{
    int64_t v;
    (void)st_exec_close(ep, &v, NULL);
}

/* ---- lock contenders: one line "acquired" in, ipcproof's line out, one line "released" in ---- */

static int ex_lock_open(void *ctx, uint32_t index, void **h)
{
    return ex_open(ctx, ROLE_WORKER, index, h);
}

/* The next line of the worker's stdout, without its newline, into line (NUL-terminated): 0,
 * -ETIMEDOUT, -EINTR, or -EPROTO (a contract failure, recorded). */
static int read_line(struct exec_ep *e, char *line, size_t cap, int64_t deadline)
{
    for (;;) {
        uint8_t *nl = memchr(e->rbuf + e->roff, '\n', e->rlen - e->roff);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (e->rbuf + e->roff));
            snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), e->rbuf + e->roff);
            e->roff += n + 1;
            return 0;
        }
        if (e->rlen - e->roff > 256) { /* no contract line is this long */
            fail(e, ST_EX_LINE, 0);
            return -EPROTO;
        }
        memmove(e->rbuf, e->rbuf + e->roff, e->rlen - e->roff);
        e->rlen -= e->roff;
        e->roff = 0;
        ssize_t r = read(e->out_fd, e->rbuf + e->rlen, e->rcap - e->rlen);
        if (r > 0) {
            e->rlen += (size_t)r;
            continue;
        }
        if (r == 0) {
            ended_early(e, -2);
            return -EPROTO;
        }
        if (errno == EINTR) return -EINTR;
        if (errno != EAGAIN) return -errno;
        int w = wait_fd(e->out_fd, POLLIN, deadline);
        if (w < 0) return w;
        if (w == 0) return -ETIMEDOUT;
    }
}

static int expect_line(struct exec_ep *e, const char *want, int64_t deadline)
{
    char line[64];
    int r = read_line(e, line, sizeof(line), deadline);
    if (r < 0) return r;
    if (strcmp(line, want) == 0) return 0;
    fail(e, ST_EX_LINE, strcmp(want, "acquired") == 0 ? 1 : 2);
    return -EPROTO;
}

static int ex_lock(void *h, int timeout_ms)
{
    struct exec_ep *e = h;
    st_exfx_check(&e->fx, e->pid, 0);
    return expect_line(e, "acquired", deadline_of(timeout_ms));
}

static int ex_unlock(void *h)
{
    struct exec_ep *e = h;
    int64_t deadline = deadline_of(LINE_MS);
    /* one byte into an empty pipe (the worker read the last one before saying "acquired") */
    for (;;) {
        ssize_t w = write(e->in_fd, "\n", 1);
        if (w == 1) break;
        if (w < 0 && errno == EPIPE) {
            ended_early(e, -1);
            return -EPROTO;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) return -errno;
        if (st_now_ns() > deadline) return -ETIMEDOUT;
        (void)poll(NULL, 0, 1);
    }
    int r;
    do
        r = expect_line(e, "released", deadline);
    while (r == -EINTR);
    if (r == -ETIMEDOUT) {
        fail(e, ST_EX_LINE, 3);
        return -EPROTO;
    }
    return r;
}

static void ex_lock_close(void *h)
{
    int64_t v;
    (void)st_exec_close(h, &v, NULL);
}

static const struct ipcp_lock_ops exec_lock_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "exec",
    .flags = 0,
    .create = ex_lock_create,
    .open = ex_lock_open,
    .lock = ex_lock,
    .unlock = ex_unlock,
    .close = ex_lock_close,
    .destroy = ex_destroy,
};
static const struct ipcp_lock_ops exec_robust_lock_ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION,
    .name = "exec",
    .flags = IPCP_LOCK_ROBUST,
    .create = ex_lock_create,
    .open = ex_lock_open,
    .lock = ex_lock,
    .unlock = ex_unlock,
    .close = ex_lock_close,
    .destroy = ex_destroy,
};

const struct ipcp_lock_ops *st_exec_lock(void)
{
    if (cfg == NULL || cfg->exec_worker == NULL) return NULL;
    return cfg->exec_robust ? &exec_robust_lock_ops : &exec_lock_ops;
}

#define EXEC_OPS(fl)                                                                               \
    {                                                                                              \
        .abi_version = IPCP_PLUGIN_ABI_VERSION, .name = "exec", .flags = (fl),                     \
        .create = ex_create, .open = ex_open, .send = ex_send, .recv = ex_recv, .close = ex_close, \
        .destroy = ex_destroy,                                                                     \
    }
static const struct ipcp_channel_ops exec_ops = EXEC_OPS(0);
static const struct ipcp_channel_ops exec_fifo_ops = EXEC_OPS(IPCP_CHAN_FIFO);

const struct ipcp_channel_ops *st_exec_chan(void)
{
    if (cfg != NULL && cfg->exec_worker != NULL) return NULL;
    return cfg != NULL && cfg->exec_fifo ? &exec_fifo_ops : &exec_ops;
}

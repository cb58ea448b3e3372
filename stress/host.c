/* host.c - the protocol host (in its own process) and the supervisor's end of it; see host.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "spawn.h"

/* ---- in the host ---------------------------------------------------------------------------- */

static void put(int fd, const struct st_hmsg *m)
{
    /* one write of less than PIPE_BUF: atomic; the supervisor may be gone (EPIPE is ignored) */
    ssize_t r;
    do {
        r = write(fd, m, sizeof(*m));
    } while (r < 0 && errno == EINTR);
}

static void hmsg_init(struct st_hmsg *m, int type)
{
    memset(m, 0, sizeof(*m));
    m->magic = ST_HM_MAGIC;
    m->type = (uint32_t)type;
}

/* Only the pipes and stdio survive into the plugin's process: nothing else of the supervisor's
 * (an open --json file, say) is within its reach. */
static void close_other_fds(int keep1, int keep2)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return;
    int dfd = dirfd(d);
    int fds[1024], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 1024) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (fd > 2 && fd != keep1 && fd != keep2 && fd != dfd) fds[n++] = fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

static int read_cmd(int fd)
{
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r == 1) return (unsigned char)c;
        if (r < 0 && errno == EINTR) continue;
        return -1; /* EOF: the supervisor is gone or gave up */
    }
}

/* In an endpoint forked by the spawner: wait until the spawner's exit handed us to the
 * supervisor, then die with it. */
static void adopted(pid_t sup)
{
    int64_t give_up = st_now_ns() + 10000000000LL;
    while (getppid() != sup) {
        if (st_now_ns() > give_up) _exit(121);
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != sup) _exit(120);
}

/* The spawner: forks every endpoint, reports their pids and exits, so that they are reparented
 * to the supervisor (the nearest subreaper). */
static int spawner(struct st_hostargs *a)
{
    struct st_case *cs = a->cs;
    struct st_hmsg m;
    hmsg_init(&m, ST_HM_SPAWNED);
    uint32_t n = cs->cfg->mode != ST_MODE_PROCESS ? 1 : cs->nworkers;
    for (uint32_t i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            m.rc = -errno;
            break;
        }
        if (pid == 0) {
            adopted(a->supervisor);
            st_child_setup(cs);
            if (cs->cfg->mode == ST_MODE_THREAD) _exit(st_thread_child(cs));
            if (cs->cfg->mode == ST_MODE_SCHED) _exit(st_sched_child(cs));
            _exit(st_worker_main(&cs->w[i]));
        }
        m.pids[m.npids++] = pid;
    }
    put(a->ctl_wr, &m);
    return 0;
}

static int host_main(void *arg)
{
    struct st_hostargs *a = arg;
    signal(SIGPIPE, SIG_IGN);
    close_other_fds(a->ctl_wr, a->cmd_rd);
    struct st_proto p;
    struct st_hmsg m;
    char err[512];
    if (st_proto_load(a->proto, a->plugin, a->instrumented, &p, err, sizeof(err)) < 0) {
        hmsg_init(&m, ST_HM_LOAD_FAILED);
        snprintf(m.text, sizeof(m.text), "%.399s", err);
        put(a->ctl_wr, &m);
        _exit(0);
    }
    hmsg_init(&m, ST_HM_LOADED);
    m.has_chan = p.chan != NULL;
    m.has_lock = p.lock != NULL;
    if (p.chan) {
        m.chan_flags = p.chan->flags;
        snprintf(m.chan_name, sizeof(m.chan_name), "%s", p.chan->name);
    }
    if (p.lock) {
        m.lock_flags = p.lock->flags;
        snprintf(m.lock_name, sizeof(m.lock_name), "%s", p.lock->name);
    }
    put(a->ctl_wr, &m);

    int cmd = read_cmd(a->cmd_rd);
    if (a->cs == NULL || (cmd != ST_HC_CREATE_CHAN && cmd != ST_HC_CREATE_LOCK)) _exit(0);
    /* the supervisor's plan, copied out of the shared page: ours (and the endpoints') now */
    static struct st_case mine;
    memcpy(&mine, a->cs, sizeof(mine));
    struct st_case *cs = &mine;
    for (uint32_t i = 0; i < ST_MAX_ENDPOINTS; i++)
        cs->w[i].cs = cs;
    a->cs = cs;
    const struct st_config *c = cs->cfg;
    void *ctx = NULL;
    int rc;
    if (cmd == ST_HC_CREATE_CHAN) {
        cs->chan = p.chan;
        struct ipcp_chan_cfg cc = {.run_id = cs->run_id,
                                   .producers = c->producers,
                                   .consumers = c->consumers,
                                   .max_msg = c->max_size,
                                   .capacity = c->capacity,
                                   .options = c->opt ? c->opt : ""};
        rc = cs->chan != NULL ? p.chan->create(&cc, &ctx) : -ENOENT;
    } else {
        cs->lock = p.lock;
        struct ipcp_lock_cfg lc = {
            .run_id = cs->run_id, .workers = c->workers, .options = c->opt ? c->opt : ""};
        rc = cs->lock != NULL ? p.lock->create(&lc, &ctx) : -ENOENT;
    }
    hmsg_init(&m, ST_HM_CREATED);
    m.rc = rc;
    put(a->ctl_wr, &m);
    if (rc < 0) _exit(0);
    cs->ctx = ctx;

    fflush(NULL);
    pid_t sp = fork();
    if (sp == 0) _exit(spawner(a));
    if (sp < 0) {
        hmsg_init(&m, ST_HM_SPAWNED);
        m.rc = -errno;
        put(a->ctl_wr, &m);
    } else {
        int st;
        while (waitpid(sp, &st, 0) < 0 && errno == EINTR) {
        }
    }
    /* the run: wait for the word (or for the supervisor to go away, then clean up anyway) */
    do {
        cmd = read_cmd(a->cmd_rd);
    } while (cmd >= 0 && cmd != ST_HC_DESTROY);
    if (cs->chan != NULL)
        cs->chan->destroy(ctx);
    else
        cs->lock->destroy(ctx);
    hmsg_init(&m, ST_HM_DESTROYED);
    put(a->ctl_wr, &m);
    /* _exit: the plugin's destructors and atexit handlers are not part of the protocol */
    _exit(0);
}

/* ---- in the supervisor ---------------------------------------------------------------------- */

int st_host_start(struct st_hostconn *h, struct st_hostargs *a)
{
    memset(h, 0, sizeof(*h));
    h->pid = -1;
    h->ctl_rd = h->cmd_wr = -1;
    int ctl[2], cmd[2], rc = st_capture_open(&h->out);
    if (rc < 0) return rc;
    if (pipe2(ctl, O_CLOEXEC) < 0) {
        rc = -errno;
        st_capture_free(&h->out);
        return rc;
    }
    if (pipe2(cmd, O_CLOEXEC) < 0) {
        rc = -errno;
        close(ctl[0]);
        close(ctl[1]);
        st_capture_free(&h->out);
        return rc;
    }
    a->ctl_wr = ctl[1];
    a->cmd_rd = cmd[0];
    a->supervisor = getpid();
    struct st_child_opts o = {
        .out_fd = h->out.wr, .in_null = 1, .new_pgrp = 1, .die_with_parent = 1};
    pid_t pid = st_spawn_fn(&o, host_main, a);
    close(ctl[1]);
    close(cmd[0]);
    st_capture_close_wr(&h->out);
    if (pid < 0) {
        close(ctl[0]);
        close(cmd[1]);
        st_capture_free(&h->out);
        return (int)pid;
    }
    h->pid = pid;
    h->ctl_rd = ctl[0];
    h->cmd_wr = cmd[1];
    (void)fcntl(h->ctl_rd, F_SETFL, O_NONBLOCK);
    (void)fcntl(h->cmd_wr, F_SETFL, O_NONBLOCK);
    return 0;
}

int st_host_poll_exit(struct st_hostconn *h)
{
    if (h->exited) return 1;
    if (h->pid <= 0) return 0;
    int st;
    if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
        h->exited = 1;
        h->status = st;
        return 1;
    }
    return 0;
}

/* 1: a whole record in *m; 0: nothing yet; -2: garbage. */
static int take_record(struct st_hostconn *h, struct st_hmsg *m)
{
    while (h->rlen < sizeof(h->rbuf)) {
        ssize_t n = read(h->ctl_rd, h->rbuf + h->rlen, sizeof(h->rbuf) - h->rlen);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        h->rlen += (size_t)n;
    }
    if (h->rlen < sizeof(h->rbuf)) return 0;
    memcpy(m, h->rbuf, sizeof(*m));
    h->rlen = 0;
    if (m->magic != ST_HM_MAGIC || m->type < ST_HM_LOADED || m->type > ST_HM_DESTROYED ||
        m->npids > ST_MAX_ENDPOINTS) {
        memset(m, 0, sizeof(*m));
        snprintf(m->text, sizeof(m->text),
                 "the protocol host sent garbage on its control pipe (a plugin wrote into it?)");
        return -2;
    }
    /* strings come from the plugin's memory: make sure they end and are printable */
    char *strs[] = {m->chan_name, m->lock_name, m->text};
    size_t caps[] = {sizeof(m->chan_name), sizeof(m->lock_name), sizeof(m->text)};
    for (size_t k = 0; k < 3; k++) {
        strs[k][caps[k] - 1] = '\0';
        for (char *p = strs[k]; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) *p = '?';
    }
    return 1;
}

int st_host_await(struct st_hostconn *h, int want, struct st_hmsg *m, int64_t deadline_ns,
                  volatile int *stop)
{
    (void)want;
    for (;;) {
        st_capture_pump(&h->out, 0);
        int r = take_record(h, m);
        if (r != 0) return r;
        if (st_host_poll_exit(h)) {
            /* it may have written its last record just before exiting */
            r = take_record(h, m);
            st_capture_pump(&h->out, 0);
            return r != 0 ? r : -1;
        }
        if ((stop != NULL && *stop) || st_now_ns() > deadline_ns) return 0;
        struct pollfd p[2] = {{.fd = h->ctl_rd, .events = POLLIN},
                              {.fd = h->out.rd, .events = POLLIN}};
        (void)poll(p, 2, 5);
    }
}

int st_host_cmd(struct st_hostconn *h, char cmd)
{
    if (h->cmd_wr < 0) return -EPIPE;
    ssize_t r;
    do {
        r = write(h->cmd_wr, &cmd, 1);
    } while (r < 0 && errno == EINTR);
    return r == 1 ? 0 : -errno;
}

void st_host_kill(struct st_hostconn *h)
{
    if (h->pid > 0 && !h->exited) {
        /* the group while its leader is unreaped (its pid cannot have been reused) */
        kill(-h->pid, SIGKILL);
        kill(h->pid, SIGKILL);
        int st;
        if (st_wait_until(h->pid, &st, st_now_ns() + 5000000000LL, NULL) == 1) {
            h->exited = 1;
            h->status = st;
        }
    }
}

void st_host_fini(struct st_hostconn *h)
{
    if (h->ctl_rd >= 0) close(h->ctl_rd);
    if (h->cmd_wr >= 0) close(h->cmd_wr);
    h->ctl_rd = h->cmd_wr = -1;
    st_capture_free(&h->out);
}

void st_host_describe_exit(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "was killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, cap, "ended with wait status 0x%x", (unsigned)status);
}

int st_host_probe(const char *proto, const char *plugin, double timeout_s, struct st_hmsg *m,
                  char *err, size_t cap)
{
    struct st_hostconn h;
    struct st_hostargs a = {.proto = proto, .plugin = plugin, .cs = NULL};
    int r = st_host_start(&h, &a);
    if (r < 0) {
        snprintf(err, cap, "fork: %s", strerror(-r));
        return 2;
    }
    int64_t deadline = st_now_ns() + (int64_t)(timeout_s * 1e9);
    r = st_host_await(&h, ST_HM_LOADED, m, deadline, NULL);
    int status;
    if (r == 1 && m->type == ST_HM_LOADED) {
        status = 0;
    } else if (r == 1 && m->type == ST_HM_LOAD_FAILED) {
        snprintf(err, cap, "%s", m->text);
        status = 2;
    } else if (r == 0) {
        snprintf(err, cap,
                 "loading the plugin (its constructors) did not return within %.1f s (the "
                 "process was killed)",
                 timeout_s);
        status = 1;
    } else if (r == -1) {
        char how[128];
        st_host_describe_exit(h.status, how, sizeof(how));
        snprintf(err, cap, "the process loading the plugin %s inside its constructors%s", how,
                 WIFEXITED(h.status) ? " (exit() called by the plugin?)" : "");
        status = 1;
    } else {
        snprintf(err, cap, "loading the plugin: %s", m->text);
        status = 1;
    }
    if (!h.exited) st_host_cmd(&h, ST_HC_QUIT);
    if (!h.exited && st_wait_until(h.pid, &h.status, st_now_ns() + 500000000LL, NULL) == 1)
        h.exited = 1;
    st_host_kill(&h);
    char who[256] = "";
    pid_t none = 0;
    (void)st_sweep(&none, 0, 100000000LL, who, sizeof(who));
    st_host_fini(&h);
    return status;
}

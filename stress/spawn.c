/* spawn.c - starting, waiting for, reaping and sweeping processes; see spawn.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"

int64_t st_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void child_setup(const struct st_child_opts *o, pid_t parent)
{
    if (o == NULL) return;
    if (o->die_with_parent) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(120); /* the parent died before the prctl */
    }
    if (o->new_pgrp) (void)setpgid(0, 0);
    if (o->in_null) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            dup2(fd, 0);
            close(fd);
        }
    }
    if (o->out_fd >= 0) {
        dup2(o->out_fd, 1);
        dup2(o->out_fd, 2);
        if (o->out_fd > 2) close(o->out_fd);
    }
    if (o->pipe_io) { /* the fds are O_CLOEXEC: only their copies as 0 and 1 survive exec */
        if (o->in_fd == 0)
            (void)fcntl(0, F_SETFD, 0);
        else
            dup2(o->in_fd, 0);
        if (o->stdout_fd == 1)
            (void)fcntl(1, F_SETFD, 0);
        else if (o->stdout_fd >= 0)
            dup2(o->stdout_fd, 1);
    }
    if (o->keep_fd > 2) (void)fcntl(o->keep_fd, F_SETFD, 0);
    /* the parent's interrupt handlers are its own business; an ignored SIGPIPE is kept (a fn
     * child writing to a dead peer gets EPIPE, like its parent) */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

pid_t st_spawn_fn(const struct st_child_opts *opts, int (*fn)(void *), void *arg)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid > 0) return pid;
    child_setup(opts, parent);
    _exit(fn(arg) & 0xff);
}

pid_t st_spawn_exec(const struct st_child_opts *opts, char *const argv[], char *const env[])
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid > 0) return pid;
    child_setup(opts, parent);
    signal(SIGPIPE, SIG_DFL); /* a program starts with the default */
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq == NULL) {
            unsetenv(env[i]);
        } else {
            char name[256];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - env[i]), env[i]);
            setenv(name, eq + 1, 1);
        }
    }
    execvp(argv[0], argv);
    dprintf(2, "ipcproof: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int st_wait_until(pid_t pid, int *status, int64_t deadline_ns, volatile int *stop)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    int rc;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid) {
            rc = 1;
            break;
        }
        if (w < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        if (stop != NULL && *stop) {
            rc = 0;
            break;
        }
        int64_t left = deadline_ns ? deadline_ns - st_now_ns() : 1000000000;
        if (left <= 0) {
            rc = 0;
            break;
        }
        int ms = (int)(left / 1000000) + 1;
        if (fd >= 0) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            (void)poll(&p, 1, ms > 100 ? 100 : ms); /* wakes up for *stop now and then */
        } else {
            struct timespec ts = {0, 1000000}; /* no pidfd: poll waitpid every millisecond */
            nanosleep(&ts, NULL);
        }
    }
    if (fd >= 0) close(fd);
    return rc;
}

int st_wait_timeout(pid_t pid, double timeout_s)
{
    if (pid <= 0) return -1;
    int st = 0;
    int r = st_wait_until(pid, &st, st_now_ns() + (int64_t)(timeout_s * 1e9), NULL);
    if (r == 0) {
        st_kill_reap(pid);
        return -1;
    }
    if (r < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void st_kill_reap(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    int st;
    (void)st_wait_until(pid, &st, st_now_ns() + 5000000000LL, NULL);
}

int st_subreaper_enable(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -errno;
}

/* /proc/<pid>/task/<tid>/children, for every thread (who: "self" or a pid); *ok says whether
 * any of those files could be read. */
static size_t children_from_task(const char *who, pid_t *out, size_t cap, int *ok)
{
    size_t n = 0;
    *ok = 0;
    char dir[48];
    snprintf(dir, sizeof(dir), "/proc/%s/task", who);
    DIR *d = opendir(dir);
    if (d == NULL) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[96];
        snprintf(path, sizeof(path), "%s/%.16s/children", dir, e->d_name);
        FILE *f = fopen(path, "re");
        if (f == NULL) continue;
        *ok = 1;
        long v;
        while (fscanf(f, "%ld", &v) == 1)
            if (n < cap && v > 0) out[n++] = (pid_t)v;
        fclose(f);
    }
    closedir(d);
    return n;
}

static long stat_ppid(const char *pid, char *comm, size_t cap)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%.16s/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *l = strchr(buf, '('), *r = strrchr(buf, ')');
    if (l == NULL || r == NULL || r < l) return -1;
    if (comm != NULL) snprintf(comm, cap, "%.*s", (int)(r - l - 1), l + 1);
    char state;
    long ppid;
    if (sscanf(r + 1, " %c %ld", &state, &ppid) != 2) return -1;
    return ppid;
}

size_t st_children_of(pid_t pid, pid_t *out, size_t cap)
{
    char who[24];
    int ok;
    snprintf(who, sizeof(who), "%d", (int)pid);
    return children_from_task(who, out, cap, &ok);
}

/* NULL-safe fallback when /proc/self/task/<tid>/children is missing: a scan of /proc. */
size_t st_children(pid_t *out, size_t cap)
{
    int ok;
    size_t n = children_from_task("self", out, cap, &ok);
    if (ok) return n;
    long me = (long)getpid();
    DIR *d = opendir("/proc");
    if (d == NULL) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (stat_ppid(e->d_name, NULL, 0) == me && n < cap) out[n++] = (pid_t)atol(e->d_name);
    }
    closedir(d);
    return n;
}

static int in(const pid_t *set, size_t n, pid_t p)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == p) return 1;
    return 0;
}

size_t st_reap_strays(const pid_t *keep, size_t nkeep)
{
    pid_t kids[256];
    size_t n = st_children(kids, 256), reaped = 0;
    for (size_t i = 0; i < n; i++) {
        if (in(keep, nkeep, kids[i])) continue;
        int st;
        if (waitpid(kids[i], &st, WNOHANG) == kids[i]) reaped++;
    }
    return reaped;
}

static int is_zombie(pid_t pid)
{
    char p[24], path[64], buf[256];
    snprintf(p, sizeof(p), "%d", (int)pid);
    snprintf(path, sizeof(path), "/proc/%s/stat", p);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 1; /* gone */
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 1;
    buf[n] = '\0';
    char *r = strrchr(buf, ')');
    return r == NULL || r[1] == '\0' || r[2] == 'Z' || r[2] == 'X';
}

size_t st_sweep(const pid_t *keep, size_t nkeep, int64_t grace_ns, char *desc, size_t cap)
{
    size_t killed = 0, len = desc != NULL ? strlen(desc) : 0;
    int64_t grace_end = st_now_ns() + grace_ns, give_up = grace_end + 5000000000LL;
    for (;;) {
        st_reap_strays(keep, nkeep);
        pid_t kids[256];
        size_t n = st_children(kids, 256), live = 0;
        for (size_t i = 0; i < n; i++)
            if (!in(keep, nkeep, kids[i])) live++;
        if (live == 0) break;
        int64_t now = st_now_ns();
        if (now > give_up) break;
        if (now < grace_end) {
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (in(keep, nkeep, kids[i]) || is_zombie(kids[i])) continue;
            char comm[64] = "?", p[24];
            snprintf(p, sizeof(p), "%d", (int)kids[i]);
            (void)stat_ppid(p, comm, sizeof(comm));
            if (kill(kids[i], SIGKILL) == 0) {
                if (desc != NULL && len + 2 < cap)
                    len += (size_t)snprintf(desc + len, cap - len, "%spid %d (%s)", len ? ", " : "",
                                            (int)kids[i], comm);
                killed++;
            }
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return killed;
}

/* x86-64 numbers of the calls a protocol may block in; others are shown by number */
static const char *syscall_name(long nr)
{
    static const struct {
        long nr;
        const char *name;
    } t[] = {{0, "read"},         {1, "write"},          {7, "poll"},
             {23, "select"},      {34, "pause"},         {35, "nanosleep"},
             {43, "accept"},      {44, "sendto"},        {45, "recvfrom"},
             {46, "sendmsg"},     {47, "recvmsg"},       {61, "wait4"},
             {64, "semget"},      {65, "semop"},         {69, "msgsnd"},
             {70, "msgrcv"},      {72, "fcntl"},         {73, "flock"},
             {202, "futex"},      {220, "semtimedop"},   {230, "clock_nanosleep"},
             {232, "epoll_wait"}, {242, "mq_timedsend"}, {243, "mq_timedreceive"},
             {270, "pselect6"},   {271, "ppoll"},        {281, "epoll_pwait"}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i].nr == nr) return t[i].name;
    return NULL;
}

void st_threads_doing(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    size_t len = 0;
    unsigned futex = 0;
    buf[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL) {
        snprintf(buf, cap, "process %d is gone", (int)pid);
        return;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL && len < cap;) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p2[96], line[128] = "";
        snprintf(p2, sizeof(p2), "/proc/%d/task/%.16s/syscall", (int)pid, e->d_name);
        FILE *f = fopen(p2, "r");
        if (f == NULL) continue;
        if (fgets(line, sizeof(line), f) == NULL) line[0] = '\0';
        fclose(f);
        char *end;
        long nr = strtol(line, &end, 10);
        if (end != line && nr == 202) {
            futex++;
            continue;
        }
        const char *name = end != line ? syscall_name(nr) : NULL;
        if (end == line)
            len += (size_t)snprintf(buf + len, cap - len, "%sthread %.16s is running",
                                    len ? "; " : "", e->d_name);
        else if (name != NULL)
            len += (size_t)snprintf(buf + len, cap - len, "%sthread %.16s is blocked in %s()",
                                    len ? "; " : "", e->d_name, name);
        else
            len += (size_t)snprintf(buf + len, cap - len, "%sthread %.16s is in system call %ld",
                                    len ? "; " : "", e->d_name, nr);
    }
    closedir(d);
    if (len < cap) snprintf(buf + len, cap - len, "%s%u in futex waits", len ? "; " : "", futex);
}

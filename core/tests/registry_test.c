/* registry_test.c - the registry of created objects and the clean-up of dead owners' objects.
 *
 * A child that creates a shm object, a queue, a named and a SysV semaphore, a FIFO and a unix
 * socket file through the library and is SIGKILLed has all of them removed by clean (and none by
 * a dry run); a live owner's objects are kept; an entry of another PID namespace is reported as
 * not checked and its objects kept; an entry whose pid is alive with another start time (pid
 * reuse) is a dead owner; an entry naming an object that was replaced, or forged by another
 * user, removes nothing; a rewrite cut short by death counts as far as its complete lines go;
 * a dead owner's stem takes the objects named with it; SysV segments and message queues
 * registered by hand go too; objects without an entry are reported, never removed; destroying an
 * object drops its line and the last one the entry; the socket file and the FIFO are 0600
 * whatever the umask.
 *
 * The test keeps its entries in a private registry directory (ipcp_registry_set_dir in main),
 * so that it neither sees nor cleans entries of other processes on this machine; every name
 * carries this process's pid. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "ipcproof/err.h"
#include "ipcproof/handoff.h"
#include "ipcproof/lock.h"
#include "ipcproof/mqlock.h"
#include "ipcproof/registry.h"
#include "ipcproof/shm.h"
#include "ipcproof/sysvmsg.h"
#include "ipcproof/xport.h"
#include "testutil.h"

static char regdir[128];

/* ---- what clean reported ------------------------------------------------------------------ */

#define MAX_ITEMS 1024

struct item {
    int status;
    char kind[16];
    char name[256];
    long pid;
    int err;
    int why;
    long uid;
    long long age;
};

static struct seen {
    int n;
    struct item it[MAX_ITEMS];
    struct ipcp_registry_summary sum;
} sn;

static void on_item(const struct ipcp_registry_item *it, void *arg)
{
    struct seen *s = arg;
    if (s->n >= MAX_ITEMS) return;
    struct item *x = &s->it[s->n++];
    x->status = it->status;
    snprintf(x->kind, sizeof(x->kind), "%s", it->kind);
    snprintf(x->name, sizeof(x->name), "%s", it->name);
    x->pid = it->pid;
    x->err = it->err;
    x->why = it->why;
    x->uid = it->uid;
    x->age = it->age_s;
}

/* Every item of status st says: owner dead for `why`, owned by us, made within the last
 * `max_age` seconds (age -1: unknown, allowed only when max_age < 0). Returns how many. */
static int check_details(int st, int why, long long max_age)
{
    int n = 0;
    for (int i = 0; i < sn.n; i++) {
        const struct item *x = &sn.it[i];
        if (x->status != st) continue;
        n++;
        if (x->why != why) fail_msg("%s %s: why %d, expected %d", x->kind, x->name, x->why, why);
        if (x->uid != (long)geteuid())
            fail_msg("%s %s: uid %ld, expected %ld", x->kind, x->name, x->uid, (long)geteuid());
        if (max_age >= 0 && (x->age < 0 || x->age > max_age))
            fail_msg("%s %s: age %lld s", x->kind, x->name, x->age);
    }
    return n;
}

static void clean(unsigned flags)
{
    memset(&sn, 0, sizeof(sn));
    int rc = ipcp_registry_clean(flags, on_item, &sn, &sn.sum);
    if (rc != 0) fail_msg("ipcp_registry_clean: %s", ipcp_strerror(rc));
}

/* The status clean reported for kind/name; fails unless it was reported exactly once. */
static int status_of(const char *kind, const char *name)
{
    int found = -1, times = 0;
    for (int i = 0; i < sn.n; i++)
        if (strcmp(sn.it[i].kind, kind) == 0 && strcmp(sn.it[i].name, name) == 0) {
            found = sn.it[i].status;
            times++;
        }
    if (times != 1) fail_msg("%s %s reported %d times", kind, name, times);
    return found;
}

static int reported(const char *kind, const char *name)
{
    for (int i = 0; i < sn.n; i++)
        if (strcmp(sn.it[i].kind, kind) == 0 && strcmp(sn.it[i].name, name) == 0) return 1;
    return 0;
}

static void expect(const char *kind, const char *name, enum ipcp_registry_status want)
{
    int got = status_of(kind, name);
    if (got != (int)want)
        fail_msg("%s %s: '%s', expected '%s'", kind, name,
                 ipcp_registry_status_text((enum ipcp_registry_status)got),
                 ipcp_registry_status_text(want));
}

/* ---- objects ------------------------------------------------------------------------------ */

static int shm_exists(const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "/dev/shm/%s", name + 1);
    return access(p, F_OK) == 0;
}

static int sem_exists(const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "/dev/shm/sem.%s", name + 1);
    return access(p, F_OK) == 0;
}

static int mq_exists(const char *name)
{
    mqd_t q = mq_open(name, O_RDONLY | O_CLOEXEC);
    if (q == (mqd_t)-1) return errno == ENOENT ? 0 : 1;
    mq_close(q);
    return 1;
}

static int sysv_sem_exists(int id)
{
    struct semid_ds ds;
    return semctl(id, 0, IPC_STAT, &ds) == 0;
}

static int sysv_shm_exists(int id)
{
    struct shmid_ds ds;
    return shmctl(id, IPC_STAT, &ds) == 0;
}

static int sysv_msg_exists(int id)
{
    struct msqid_ds ds;
    return msgctl(id, IPC_STAT, &ds) == 0;
}

static int path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Registry entries in the private directory. */
static int entries(void)
{
    DIR *d = opendir(regdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, IPCP_REGISTRY_PREFIX, strlen(IPCP_REGISTRY_PREFIX)) == 0) n++;
    closedir(d);
    return n;
}

static unsigned long long my_pidns(void)
{
    struct stat st;
    assert_int_equal(stat("/proc/self/ns/pid", &st), 0);
    return (unsigned long long)st.st_ino;
}

static unsigned long long my_start(void)
{
    uint32_t pid;
    uint64_t start;
    assert_int_equal(ipcp__proc_self(&pid, &start), 0);
    return start;
}

/* A pid that was just used and is gone (reaped). */
static long dead_pid(void)
{
    pid_t p = fork();
    if (p == 0) _exit(0);
    assert_true(p > 0);
    assert_int_equal(waitpid(p, NULL, 0), p);
    return (long)p;
}

/* A shm object made without the library, so without a registry line. */
static void make_raw_shm(const char *name)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
}

static void ident_of(const char *path, char *buf, size_t cap)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    snprintf(buf, cap, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
}

/* Writes an entry as another process would have: file name and header from the arguments. */
static void forge_entry(char *file, size_t cap, unsigned long long pidns, long pid,
                        unsigned long long start, const char *lines)
{
    snprintf(file, cap, "%s/" IPCP_REGISTRY_PREFIX "%llu.%ld.%llu", regdir, pidns, pid, start);
    FILE *f = fopen(file, "wx");
    assert_non_null(f);
    fprintf(f, "ipcp-registry 1 pid=%ld start=%llu pidns=%llu uid=%u\n%s", pid, start, pidns,
            (unsigned)geteuid(), lines);
    assert_int_equal(fclose(f), 0);
}

/* ---- a creator that is SIGKILLed ---------------------------------------------------------- */

struct made {
    char shm[IPCP_SHM_NAME_MAX];
    char mq[IPCP_SHM_NAME_MAX]; /* mqlock: its record shm has the same name */
    char sem[96];               /* posix-sem lock: the semaphore */
    char semshm[96];            /* ... and its record */
    int semid;                  /* sysv-sem lock */
    char sysvshm[96];           /* ... and its record */
    int segid;                  /* a SysV segment (ipcp_shm_create_sysv) */
    int msqid;                  /* a SysV message queue (ipcp_sysvmsg_create) */
    char fifo[96], sock[96];
    int ok;
};

static void paths_for(struct made *m, long tag)
{
    snprintf(m->fifo, sizeof(m->fifo), "/tmp/ipcp-regtest-%ld-fifo", tag);
    snprintf(m->sock, sizeof(m->sock), "/tmp/ipcp-regtest-%ld-sock", tag);
}

static int create_all(struct made *m)
{
    struct ipcp_shm s;
    if (ipcp_shm_create(&s, "ring", NULL, 4096) < 0) return 1;
    snprintf(m->shm, sizeof(m->shm), "%s", s.name);
    struct ipcp_mqlock *ml;
    struct ipcp_mqlock_cfg mc = {0};
    if (ipcp_mqlock_create(&mc, &ml) < 0) return 2;
    snprintf(m->mq, sizeof(m->mq), "%s", ipcp_mqlock_name(ml));
    struct ipcp_lock_cfg lc = {.run_id = NULL, .workers = 1, .options = NULL};
    struct ipcp_lock_ctx *ps, *sv;
    struct ipcp_lock_objects o;
    if (ipcp_lock_create(IPCP_LOCK_POSIX_SEM, &lc, &ps) < 0) return 3;
    ipcp_lock_objects(ps, &o);
    snprintf(m->sem, sizeof(m->sem), "%s", o.sem);
    snprintf(m->semshm, sizeof(m->semshm), "%s", o.shm);
    if (ipcp_lock_create(IPCP_LOCK_SYSV_SEM, &lc, &sv) < 0) return 4;
    ipcp_lock_objects(sv, &o);
    m->semid = o.semid;
    snprintf(m->sysvshm, sizeof(m->sysvshm), "%s", o.shm);
    struct ipcp_shm seg;
    if (ipcp_shm_create_sysv(&seg, IPC_PRIVATE, 8192) < 0) return 7;
    m->segid = seg.shmid;
    struct ipcp_sysvmsg_cfg qc = {.producers = 1, .consumers = 1, .max_msg = 100};
    struct ipcp_sysvmsg *q;
    if (ipcp_sysvmsg_create(&qc, &q) < 0) return 8;
    m->msqid = ipcp_sysvmsg_id(q, 0);
    if (ipcp_xport_fifo_create(m->fifo) < 0) return 5;
    int l = ipcp_xport_unix_listen(m->sock, SOCK_STREAM);
    if (l < 0) return 6;
    m->ok = 1;
    return 0; /* nothing is destroyed: the caller dies with everything in place */
}

struct child_arg {
    int pfd[2];
    long tag;
};

static int killed_creator(void *arg)
{
    struct child_arg *a = arg;
    struct made m = {0};
    paths_for(&m, a->tag);
    int rc = create_all(&m);
    if (write(a->pfd[1], &m, sizeof(m)) != (ssize_t)sizeof(m)) return 9;
    if (rc != 0) return rc;
    for (;;)
        pause();
}

static int all_exist(const struct made *m)
{
    return shm_exists(m->shm) + mq_exists(m->mq) + shm_exists(m->mq) + sem_exists(m->sem) +
           shm_exists(m->semshm) + sysv_sem_exists(m->semid) + shm_exists(m->sysvshm) +
           sysv_shm_exists(m->segid) + sysv_msg_exists(m->msqid) + path_exists(m->fifo) +
           path_exists(m->sock);
}

static void expect_all(const struct made *m, enum ipcp_registry_status st)
{
    char id[16];
    snprintf(id, sizeof(id), "%d", m->semid);
    expect("shm", m->shm, st);
    expect("mq", m->mq, st);
    expect("shm", m->mq, st);
    expect("sem", m->sem, st);
    expect("shm", m->semshm, st);
    expect("sysv-sem", id, st);
    expect("shm", m->sysvshm, st);
    snprintf(id, sizeof(id), "%d", m->segid);
    expect("sysv-shm", id, st);
    snprintf(id, sizeof(id), "%d", m->msqid);
    expect("sysv-msg", id, st);
    expect("path", m->fifo, st);
    expect("path", m->sock, st);
}

static void test_killed_creator_cleaned(void **s)
{
    (void)s;
    struct child_arg a = {.tag = (long)getpid()};
    assert_int_equal(pipe2(a.pfd, O_CLOEXEC), 0);
    pid_t child = tu_spawn(killed_creator, &a);
    struct made m;
    assert_int_equal(read(a.pfd[0], &m, sizeof(m)), (ssize_t)sizeof(m));
    close(a.pfd[0]);
    close(a.pfd[1]);
    if (!m.ok) {
        int st = tu_wait(child, 10000);
        fail_msg("the child could not create its objects (step %d)", WEXITSTATUS(st));
    }
    assert_int_equal(all_exist(&m), 11);
    assert_int_equal(entries(), 1);

    /* alive: everything kept, with its owner and age */
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect_all(&m, IPCP_REG_KEPT_ALIVE);
    assert_int_equal(all_exist(&m), 11);
    assert_int_equal(check_details(IPCP_REG_KEPT_ALIVE, IPCP_REG_WHY_NONE, 600), 11);

    kill(child, SIGKILL);
    assert_int_equal(waitpid(child, NULL, 0), child);

    /* dead, dry run: nothing removed */
    clean(IPCP_REG_CLEAN_DRY_RUN | IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect_all(&m, IPCP_REG_WOULD_REMOVE);
    assert_int_equal(all_exist(&m), 11);
    assert_int_equal(check_details(IPCP_REG_WOULD_REMOVE, IPCP_REG_WHY_PID_GONE, 600), 11);
    assert_int_equal(entries(), 1);
    assert_int_equal(sn.sum.dead, 1);

    /* dead: everything removed, then the entry */
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect_all(&m, IPCP_REG_REMOVED);
    assert_int_equal(sn.sum.count[IPCP_REG_REMOVED], 11);
    assert_int_equal(check_details(IPCP_REG_REMOVED, IPCP_REG_WHY_PID_GONE, 600), 11);
    assert_int_equal(all_exist(&m), 0);
    assert_int_equal(entries(), 0);

    /* and nothing is left to do */
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    assert_int_equal(sn.n, 0);
}

/* ---- objects registered by hand ---------------------------------------------------------- */

static int sysv_creator(void *arg)
{
    int *pfd = arg;
    int ids[2];
    ids[0] = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    ids[1] = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    char id[16];
    snprintf(id, sizeof(id), "%d", ids[0]);
    if (ids[0] < 0 || ipcp_registry_add("sysv-shm", id) != 0) ids[0] = -1;
    snprintf(id, sizeof(id), "%d", ids[1]);
    if (ids[1] < 0 || ipcp_registry_add("sysv-msg", id) != 0) ids[1] = -1;
    if (write(pfd[1], ids, sizeof(ids)) != (ssize_t)sizeof(ids)) return 1;
    return 0; /* exits without removing them */
}

static void test_registered_by_hand(void **s)
{
    (void)s;
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    pid_t child = tu_spawn(sysv_creator, pfd);
    int ids[2];
    assert_int_equal(read(pfd[0], ids, sizeof(ids)), (ssize_t)sizeof(ids));
    tu_wait_ok(child, 10000);
    close(pfd[0]);
    close(pfd[1]);
    assert_true(ids[0] >= 0 && ids[1] >= 0);
    char shmid[16], msgid[16];
    snprintf(shmid, sizeof(shmid), "%d", ids[0]);
    snprintf(msgid, sizeof(msgid), "%d", ids[1]);
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect("sysv-shm", shmid, IPCP_REG_REMOVED);
    expect("sysv-msg", msgid, IPCP_REG_REMOVED);
    struct shmid_ds sd;
    struct msqid_ds md;
    assert_true(shmctl(ids[0], IPC_STAT, &sd) < 0);
    assert_true(msgctl(ids[1], IPC_STAT, &md) < 0);
    assert_int_equal(entries(), 0);
}

/* ---- a live owner ------------------------------------------------------------------------- */

static int live_owner(void *arg)
{
    struct child_arg *a = arg;
    struct ipcp_shm s;
    char fifo[96];
    snprintf(fifo, sizeof(fifo), "/tmp/ipcp-regtest-%ld-live", a->tag);
    struct made m = {0};
    if (ipcp_shm_create(&s, "ring", NULL, 4096) < 0 || ipcp_xport_fifo_create(fifo) < 0) return 1;
    snprintf(m.shm, sizeof(m.shm), "%s", s.name);
    snprintf(m.fifo, sizeof(m.fifo), "%s", fifo);
    m.ok = 1;
    if (write(a->pfd[1], &m, sizeof(m)) != (ssize_t)sizeof(m)) return 2;
    char go;
    if (read(a->pfd[0], &go, 1) != 1) return 3;
    ipcp_shm_close(&s); /* drops its line */
    unlink(fifo);       /* the caller's unlink: the line stays until the next write */
    return 0;
}

static void test_live_owner_kept(void **s)
{
    (void)s;
    struct child_arg a = {.tag = (long)getpid()};
    int up[2], down[2];
    assert_int_equal(pipe2(up, O_CLOEXEC), 0);
    assert_int_equal(pipe2(down, O_CLOEXEC), 0);
    a.pfd[0] = down[0];
    a.pfd[1] = up[1];
    pid_t child = tu_spawn(live_owner, &a);
    struct made m;
    assert_int_equal(read(up[0], &m, sizeof(m)), (ssize_t)sizeof(m));
    assert_true(m.ok);

    /* our own objects are a live owner's too */
    struct ipcp_shm mine;
    assert_int_equal(ipcp_shm_create(&mine, "ring", NULL, 4096), 0);

    clean(0); /* not a dry run */
    expect("shm", m.shm, IPCP_REG_KEPT_ALIVE);
    expect("path", m.fifo, IPCP_REG_KEPT_ALIVE);
    expect("shm", mine.name, IPCP_REG_KEPT_ALIVE);
    assert_true(shm_exists(m.shm));
    assert_true(path_exists(m.fifo));
    assert_true(shm_exists(mine.name));
    assert_int_equal(sn.sum.alive, 2);

    assert_int_equal(write(down[1], "g", 1), 1);
    tu_wait_ok(child, 10000);
    ipcp_shm_close(&mine);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);

    /* the child's entry only names the FIFO it unlinked: already gone, and the entry goes */
    assert_int_equal(entries(), 1);
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect("path", m.fifo, IPCP_REG_GONE);
    assert_false(reported("shm", m.shm));
    assert_int_equal(entries(), 0);
}

/* ---- entries written elsewhere ------------------------------------------------------------ */

static void test_other_pidns_not_checked(void **s)
{
    (void)s;
    long pid = dead_pid();
    char name[96], lines[256], file[256];
    snprintf(name, sizeof(name), "/ipcp.ring.%ld.regtest-ns-%ld", pid, (long)getpid());
    make_raw_shm(name);
    snprintf(lines, sizeof(lines), "shm 0 - %s\n", name);
    forge_entry(file, sizeof(file), my_pidns() + 1, pid, 12345, lines);

    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect("shm", name, IPCP_REG_OTHER_PIDNS);
    assert_int_equal(sn.sum.foreign, 1);
    assert_true(shm_exists(name));
    assert_int_equal(entries(), 1);

    assert_int_equal(unlink(file), 0);
    assert_int_equal(shm_unlink(name), 0);
}

static int sleeper(void *arg)
{
    int fd = *(int *)arg;
    char c;
    return read(fd, &c, 1) == 1 ? 0 : 1;
}

static void test_pid_reuse_is_dead(void **s)
{
    (void)s;
    /* a live process whose start time is not the recorded one: a reused pid */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t live = tu_spawn(sleeper, &p[0]);
    char name[96], fifo[96], other[96], lines[1024], file[256], id1[64], id2[64];
    snprintf(name, sizeof(name), "/ipcp.ring.%ld.regtest-reuse-%ld", (long)live, (long)getpid());
    snprintf(fifo, sizeof(fifo), "/tmp/ipcp-regtest-%ld-reuse", (long)getpid());
    snprintf(other, sizeof(other), "/tmp/ipcp-regtest-%ld-replaced", (long)getpid());
    make_raw_shm(name);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(mkfifo(other, 0600), 0);
    ident_of(fifo, id1, sizeof(id1));
    ident_of(other, id2, sizeof(id2));
    /* "other" was registered with the FIFO's identity: it is not the registered object */
    snprintf(lines, sizeof(lines), "shm 0 - %s\npath 0 %s %s\npath 0 %s %s\n", name, id1, fifo, id1,
             other);
    forge_entry(file, sizeof(file), my_pidns(), (long)live, 1, lines);

    clean(IPCP_REG_CLEAN_DRY_RUN | IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect("shm", name, IPCP_REG_WOULD_REMOVE);
    expect("path", fifo, IPCP_REG_WOULD_REMOVE);
    expect("path", other, IPCP_REG_KEPT_OTHER);
    assert_int_equal(check_details(IPCP_REG_WOULD_REMOVE, IPCP_REG_WHY_PID_REUSED, 600), 2);
    assert_true(shm_exists(name));
    assert_true(path_exists(fifo));
    assert_int_equal(entries(), 1);

    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect("shm", name, IPCP_REG_REMOVED);
    expect("path", fifo, IPCP_REG_REMOVED);
    expect("path", other, IPCP_REG_KEPT_OTHER);
    assert_false(shm_exists(name));
    assert_false(path_exists(fifo));
    assert_true(path_exists(other));
    assert_int_equal(entries(), 0);

    assert_int_equal(unlink(other), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    tu_wait_ok(live, 10000);
    close(p[0]);
    close(p[1]);
}

static void test_own_pid_other_start_is_dead(void **s)
{
    (void)s;
    char name[96], lines[256], file[256];
    snprintf(name, sizeof(name), "/ipcp.ring.%ld.regtest-self", (long)getpid());
    make_raw_shm(name);
    snprintf(lines, sizeof(lines), "shm 0 - %s\n", name);
    forge_entry(file, sizeof(file), my_pidns(), (long)getpid(), my_start() + 1, lines);
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect("shm", name, IPCP_REG_REMOVED);
    assert_false(shm_exists(name));
    assert_int_equal(entries(), 0);
}

/* A writer that died between writing <entry>.tmp and renaming it: alone, the .tmp is the entry
 * as far as its complete lines go; next to an entry it only goes with its dead owner. */
static void test_unfinished_rewrite(void **s)
{
    (void)s;
    long pid = dead_pid();
    char name[96], cut[96], lines[512], file[256], tmp[300];
    snprintf(name, sizeof(name), "/ipcp.ring.%ld.regtest-tmp-%ld", pid, (long)getpid());
    snprintf(cut, sizeof(cut), "/ipcp.ring.%ld.regtest-tm", pid);
    make_raw_shm(name);
    make_raw_shm(cut); /* named by the unfinished last line: not trusted */
    snprintf(lines, sizeof(lines), "shm 0 - %s\nshm 0 - %s", name, cut);
    forge_entry(file, sizeof(file), my_pidns(), pid, 31337, lines);
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    assert_int_equal(rename(file, tmp), 0);
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect("shm", name, IPCP_REG_REMOVED);
    assert_false(reported("shm", cut));
    assert_false(shm_exists(name));
    assert_true(shm_exists(cut));
    assert_false(path_exists(tmp));
    assert_int_equal(shm_unlink(cut), 0);

    /* next to its entry: the entry decides, the .tmp goes with it */
    make_raw_shm(name);
    snprintf(lines, sizeof(lines), "shm 0 - %s\n", name);
    forge_entry(file, sizeof(file), my_pidns(), pid, 31338, lines);
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    FILE *f = fopen(tmp, "wx");
    assert_non_null(f);
    fprintf(f, "ipcp-registry 1 pid=%ld start=31338 pidns=%llu uid=%u\n", pid, my_pidns(),
            (unsigned)geteuid());
    assert_int_equal(fclose(f), 0);
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect("shm", name, IPCP_REG_REMOVED);
    assert_int_equal(sn.sum.entries, 1);
    assert_false(path_exists(tmp));
    assert_int_equal(entries(), 0);
}

static void test_stem_of_dead_owner(void **s)
{
    (void)s;
    long pid = dead_pid();
    char stem[64], name[128], fifo[128], lines[256], file[256];
    snprintf(stem, sizeof(stem), "regtest-stem-%ld", (long)getpid());
    snprintf(name, sizeof(name), "/ipcp.ring.%ld.%s", pid, stem);
    snprintf(fifo, sizeof(fifo), "/tmp/ipcp.fifo.%s.0", stem);
    make_raw_shm(name);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(lines, sizeof(lines), "stem 0 - %s\n", stem);
    forge_entry(file, sizeof(file), my_pidns(), pid, 777, lines);

    clean(IPCP_REG_CLEAN_DRY_RUN);
    expect("shm", name, IPCP_REG_WOULD_REMOVE);
    expect("path", fifo, IPCP_REG_WOULD_REMOVE);
    assert_true(shm_exists(name));
    assert_true(path_exists(fifo));

    clean(0);
    expect("shm", name, IPCP_REG_REMOVED);
    expect("path", fifo, IPCP_REG_REMOVED);
    assert_false(shm_exists(name));
    assert_false(path_exists(fifo));
    assert_int_equal(entries(), 0);
}

/* Root only: an entry forged by another user may only name that user's objects. */
static void test_forged_entry_removes_nothing(void **s)
{
    (void)s;
    if (geteuid() != 0) {
        skip();
        return;
    }
    long pid = dead_pid();
    char name[96], lines[256], file[256];
    snprintf(name, sizeof(name), "/ipcp.ring.%ld.regtest-forged-%ld", pid, (long)getpid());
    make_raw_shm(name); /* owned by root */
    snprintf(lines, sizeof(lines), "shm 0 - %s\n", name);
    /* header says uid 0, the file belongs to 65534: not a well-formed entry */
    forge_entry(file, sizeof(file), my_pidns(), pid, 4242, lines);
    assert_int_equal(chown(file, 65534, 65534), 0);
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    assert_false(reported("shm", name));
    assert_int_equal(sn.sum.unreadable, 1);
    assert_true(shm_exists(name));
    assert_int_equal(unlink(file), 0);

    /* header and file agree on 65534, the object is root's: kept */
    snprintf(file, sizeof(file), "%s/" IPCP_REGISTRY_PREFIX "%llu.%ld.%d", regdir, my_pidns(), pid,
             4243);
    FILE *f = fopen(file, "wx");
    assert_non_null(f);
    fprintf(f, "ipcp-registry 1 pid=%ld start=4243 pidns=%llu uid=65534\n%s", pid, my_pidns(),
            lines);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chown(file, 65534, 65534), 0);
    clean(IPCP_REG_CLEAN_REGISTERED_ONLY);
    expect("shm", name, IPCP_REG_KEPT_OTHER);
    assert_true(shm_exists(name));
    assert_int_equal(entries(), 0);
    assert_int_equal(shm_unlink(name), 0);
}

static void test_unregistered_reported_not_removed(void **s)
{
    (void)s;
    long pid = dead_pid();
    char name[96];
    snprintf(name, sizeof(name), "/ipcp.ring.%ld.regtest-noreg-%ld", pid, (long)getpid());
    make_raw_shm(name);
    clean(0);
    expect("shm", name, IPCP_REG_NO_ENTRY);
    for (int i = 0; i < sn.n; i++)
        if (strcmp(sn.it[i].name, name) == 0) assert_int_equal(sn.it[i].pid, pid);
    assert_true(shm_exists(name));
    struct statfs sf;
    int mounted = statfs("/dev/mqueue", &sf) == 0 && (unsigned long)sf.f_type == 0x19800202;
    assert_int_equal(sn.sum.mq_listed, mounted);
    assert_int_equal(shm_unlink(name), 0);
}

/* ---- the lines follow the objects --------------------------------------------------------- */

static int entry_lines(void)
{
    DIR *d = opendir(regdir);
    assert_non_null(d);
    int lines = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, IPCP_REGISTRY_PREFIX, strlen(IPCP_REGISTRY_PREFIX)) != 0) continue;
        char p[400];
        snprintf(p, sizeof(p), "%s/%s", regdir, e->d_name);
        FILE *f = fopen(p, "r");
        assert_non_null(f);
        char buf[1024];
        lines = -1; /* the header */
        while (fgets(buf, sizeof(buf), f) != NULL)
            lines++;
        fclose(f);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    closedir(d);
    return lines; /* -1: no entry */
}

static void test_lines_follow_objects(void **s)
{
    (void)s;
    char stem[64];
    snprintf(stem, sizeof(stem), "regtest-own-%ld", (long)getpid());
    assert_int_equal(ipcp_registry_add("stem", "short"), -EINVAL);
    assert_int_equal(ipcp_registry_add("nonsense", "/x"), -EINVAL);
    assert_int_equal(ipcp_registry_add("shm", "no-slash"), -EINVAL);
    assert_int_equal(ipcp_registry_remove("stem", stem), -ENOENT);
    assert_int_equal(entry_lines(), -1);

    assert_int_equal(ipcp_registry_add("stem", stem), 0);
    assert_int_equal(ipcp_registry_add("stem", stem), 0); /* once */
    assert_int_equal(entry_lines(), 1);

    struct ipcp_shm m;
    assert_int_equal(ipcp_shm_create(&m, "ring", NULL, 4096), 0);
    struct ipcp_mqlock_cfg mc = {0};
    struct ipcp_mqlock *ml;
    assert_int_equal(ipcp_mqlock_create(&mc, &ml), 0);
    struct ipcp_handoff_cfg hc = {.stem = NULL, .nslots = 2, .slot_size = 64};
    struct ipcp_handoff *ho;
    assert_int_equal(ipcp_handoff_create(&hc, &ho), 0);
    struct ipcp_lock_cfg lc = {.run_id = NULL, .workers = 1, .options = NULL};
    struct ipcp_lock_ctx *ps, *sv;
    assert_int_equal(ipcp_lock_create(IPCP_LOCK_POSIX_SEM, &lc, &ps), 0);
    assert_int_equal(ipcp_lock_create(IPCP_LOCK_SYSV_SEM, &lc, &sv), 0);
    /* stem, shm, mqlock (2), handoff (3), posix-sem lock (2), sysv-sem lock (2) */
    assert_int_equal(entry_lines(), 11);

    ipcp_lock_destroy(sv);
    ipcp_lock_destroy(ps);
    ipcp_handoff_destroy(ho);
    ipcp_mqlock_destroy(ml);
    assert_int_equal(entry_lines(), 2);
    ipcp_shm_close(&m);
    assert_int_equal(entry_lines(), 1);
    assert_int_equal(ipcp_registry_remove("stem", stem), 0);
    assert_int_equal(entry_lines(), -1);
    assert_int_equal(ipcp_registry_set_dir(regdir), 0); /* no lines: allowed */
}

/* ---- files of xport.c --------------------------------------------------------------------- */

static void test_socket_and_fifo_are_0600(void **s)
{
    (void)s;
    char sock[96], fifo[96];
    snprintf(sock, sizeof(sock), "/tmp/ipcp-regtest-%ld-mode.sock", (long)getpid());
    snprintf(fifo, sizeof(fifo), "/tmp/ipcp-regtest-%ld-mode.fifo", (long)getpid());
    mode_t old = umask(0);
    int l = ipcp_xport_unix_listen(sock, SOCK_STREAM);
    int f = ipcp_xport_fifo_create(fifo);
    umask(old);
    assert_true(l >= 0);
    assert_int_equal(f, 0);
    struct stat st;
    assert_int_equal(lstat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    int c = ipcp_xport_unix_connect(sock, SOCK_STREAM, 1000); /* still a working listener */
    assert_true(c >= 0);
    close(c);
    assert_int_equal(entry_lines(), 2);
    close(l);
    assert_int_equal(unlink(sock), 0);
    assert_int_equal(unlink(fifo), 0);
    /* the caller's unlink(2) is noticed at the next registry write */
    char stem[64];
    snprintf(stem, sizeof(stem), "regtest-mode-%ld", (long)getpid());
    assert_int_equal(ipcp_registry_add("stem", stem), 0);
    assert_int_equal(entry_lines(), 1);
    assert_int_equal(ipcp_registry_remove("stem", stem), 0);
    assert_int_equal(entry_lines(), -1);
}

int main(void)
{
    snprintf(regdir, sizeof(regdir), "/dev/shm/ipcproof-regtest.XXXXXX");
    if (mkdtemp(regdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    if (ipcp_registry_set_dir(regdir) != 0) {
        fprintf(stderr, "ipcp_registry_set_dir failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_follow_objects),
        cmocka_unit_test(test_socket_and_fifo_are_0600),
        cmocka_unit_test(test_killed_creator_cleaned),
        cmocka_unit_test(test_registered_by_hand),
        cmocka_unit_test(test_live_owner_kept),
        cmocka_unit_test(test_other_pidns_not_checked),
        cmocka_unit_test(test_pid_reuse_is_dead),
        cmocka_unit_test(test_own_pid_other_start_is_dead),
        cmocka_unit_test(test_unfinished_rewrite),
        cmocka_unit_test(test_stem_of_dead_owner),
        cmocka_unit_test(test_forged_entry_removes_nothing),
        cmocka_unit_test(test_unregistered_reported_not_removed),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* whatever a failed test left: its entries go with the directory */
    DIR *d = opendir(regdir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') unlinkat(dirfd(d), e->d_name, 0);
    if (d != NULL) closedir(d);
    rmdir(regdir);
    return failed;
}

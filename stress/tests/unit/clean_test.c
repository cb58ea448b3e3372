/* clean_test.c - `ipcproof clean` (stress/clean.c) on a registry of its own.
 *
 * Leftovers of every kind from a SIGKILLed process (a SysV segment, a SysV message queue, a
 * POSIX shm object, a FIFO), the objects of a live process and of an owner in another PID
 * namespace: `clean --dry-run` lists exactly the dead owner's objects as "would remove", each
 * with its owner pid and uid, its age and why the owner is dead, and removes nothing; `clean`
 * then removes exactly those, and keeps the others with their reasons.
 *
 * SysV objects made without the library (no registry entry), as a crashed program leaves them:
 * a segment, a queue and a semaphore set whose processes are all gone are listed as "not
 * checked" with the pid they record and the ipcrm line, and never removed; a segment whose
 * creator is alive is not listed, only counted. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcproof/registry.h"
#include "ipcproof/shm.h"
#include "ipcproof/sysvmsg.h"
#include "ipcproof/xport.h"
#include "stress.h"
#include "unitutil.h"

struct made {
    int segid, msqid;
    char shm[IPCP_SHM_NAME_MAX];
    char fifo[96];
    int ok;
};

struct child {
    int out[2]; /* the child writes what it made here */
    int go[2];  /* and waits for a byte here */
    int full;   /* 1: every kind; 0: a shm object and a segment only */
};

static int creator(void *arg)
{
    struct child *c = arg;
    struct made m = {0};
    alarm(120); /* a failed test never releases it: it must not outlive the test for long */
    struct ipcp_shm seg, obj;
    if (ipcp_shm_create_sysv(&seg, IPC_PRIVATE, 4096) == 0 &&
        ipcp_shm_create(&obj, "ring", NULL, 4096) == 0) {
        m.segid = seg.shmid;
        snprintf(m.shm, sizeof(m.shm), "%s", obj.name);
        m.ok = 1;
    }
    if (m.ok && c->full) {
        struct ipcp_sysvmsg_cfg qc = {.producers = 1, .consumers = 1, .max_msg = 10};
        struct ipcp_sysvmsg *q;
        snprintf(m.fifo, sizeof(m.fifo), "/tmp/ipcp-cleantest-%ld.fifo", (long)getpid());
        m.ok = ipcp_sysvmsg_create(&qc, &q) == 0 && ipcp_xport_fifo_create(m.fifo) == 0;
        if (m.ok) m.msqid = ipcp_sysvmsg_id(q, 0);
    }
    if (write(c->out[1], &m, sizeof(m)) != (ssize_t)sizeof(m)) return 1;
    char go;
    return read(c->go[0], &go, 1) == 1 ? 0 : 2; /* until killed, or told to go */
}

static pid_t spawn(int (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    if (pid == 0) _exit(fn(arg));
    return pid;
}

/* Runs st_clean_main with argv and returns its stdout (malloc'ed) and exit code. */
static char *run_clean(int dry, int *rc)
{
    char path[] = "/tmp/ipcp-cleantest-out-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    char *argv[] = {"clean", dry ? "--dry-run" : NULL, NULL};
    *rc = st_clean_main(dry ? 2 : 1, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fd, out, (size_t)len, 0), (ssize_t)len);
    close(fd);
    return out;
}

/* The line of out naming kind and name, into buf; NULL if none; fails if there are two. */
static const char *line_of(const char *out, const char *kind, const char *name, char *buf,
                           size_t cap)
{
    char key[256];
    snprintf(key, sizeof(key), " %-8s %s  (", kind, name);
    const char *hit = strstr(out, key);
    if (hit == NULL) return NULL;
    if (strstr(hit + 1, key) != NULL) fail_msg("%s %s listed twice", kind, name);
    while (hit > out && hit[-1] != '\n')
        hit--;
    const char *end = strchr(hit, '\n');
    size_t n = end != NULL ? (size_t)(end - hit) : strlen(hit);
    if (n >= cap) n = cap - 1;
    memcpy(buf, hit, n);
    buf[n] = '\0';
    return buf;
}

static void expect_line(const char *out, const char *kind, const char *name, const char *label,
                        const char *why)
{
    char buf[512];
    if (line_of(out, kind, name, buf, sizeof(buf)) == NULL)
        fail_msg("%s %s not listed in:\n%s", kind, name, out);
    char want[64];
    snprintf(want, sizeof(want), "  %-12s ", label);
    if (strncmp(buf, want, strlen(want)) != 0 || strstr(buf, why) == NULL)
        fail_msg("%s %s: '%s', expected '%s' and '%s'", kind, name, buf, label, why);
    char uid[32];
    snprintf(uid, sizeof(uid), "; uid %ld, age ", (long)geteuid());
    if (strstr(buf, uid) == NULL) fail_msg("no owner uid and age in '%s'", buf);
}

static int count(const char *out, const char *label)
{
    char want[64];
    snprintf(want, sizeof(want), "\n  %-12s ", label);
    int n = 0;
    for (const char *p = out; (p = strstr(p, want)) != NULL; p++)
        n++;
    return n;
}

static int seg_exists(int id)
{
    struct shmid_ds ds;
    return shmctl(id, IPC_STAT, &ds) == 0;
}

static int msq_exists(int id)
{
    struct msqid_ds ds;
    return msgctl(id, IPC_STAT, &ds) == 0;
}

static int shm_exists(const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "/dev/shm%s", name);
    return access(p, F_OK) == 0;
}

static void test_clean_lists_and_removes_exactly_the_dead(void **state)
{
    const char *dir = *state;
    assert_int_equal(ipcp_registry_set_dir(dir), 0);

    /* the dead owner */
    struct child d = {.full = 1};
    assert_int_equal(pipe2(d.out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(d.go, O_CLOEXEC), 0);
    pid_t dead = spawn(creator, &d);
    struct made dm;
    assert_int_equal(read(d.out[0], &dm, sizeof(dm)), (ssize_t)sizeof(dm));
    assert_true(dm.ok);
    kill(dead, SIGKILL);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    /* the live owner */
    struct child l = {.full = 0};
    assert_int_equal(pipe2(l.out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(l.go, O_CLOEXEC), 0);
    pid_t live = spawn(creator, &l);
    struct made lm;
    assert_int_equal(read(l.out[0], &lm, sizeof(lm)), (ssize_t)sizeof(lm));
    assert_true(lm.ok);
    /* an owner in another PID namespace (an entry as a container sharing /dev/shm writes it) */
    char foreign[96], file[512];
    snprintf(foreign, sizeof(foreign), "/ipcp.ring.77.cleantest%ld", (long)getpid());
    int fd = shm_open(foreign, O_CREAT | O_EXCL | O_RDWR, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(file, sizeof(file), "%s/" IPCP_REGISTRY_PREFIX "1.77.1", dir);
    FILE *f = fopen(file, "wx");
    assert_non_null(f);
    fprintf(f, "ipcp-registry 1 pid=77 start=1 pidns=1 uid=%u\nshm 0 - %s\n", (unsigned)geteuid(),
            foreign);
    assert_int_equal(fclose(f), 0);

    /* a peer of the dead owner that registered its shm object too (as a worker that opened
     * it does), dead as well: one object, listed and counted once */
    struct stat ns;
    assert_int_equal(stat("/proc/self/ns/pid", &ns), 0);
    snprintf(file, sizeof(file), "%s/" IPCP_REGISTRY_PREFIX "%lu.%ld.2", dir,
             (unsigned long)ns.st_ino, (long)dead);
    f = fopen(file, "wx");
    assert_non_null(f);
    fprintf(f, "ipcp-registry 1 pid=%ld start=2 pidns=%lu uid=%u\nshm 0 - %s\n", (long)dead,
            (unsigned long)ns.st_ino, (unsigned)geteuid(), dm.shm);
    assert_int_equal(fclose(f), 0);

    char seg[16], msq[16], lseg[16];
    snprintf(seg, sizeof(seg), "%d", dm.segid);
    snprintf(msq, sizeof(msq), "%d", dm.msqid);
    snprintf(lseg, sizeof(lseg), "%d", lm.segid);
    char gone[64], alive[64];
    snprintf(gone, sizeof(gone), "pid %ld is gone: its run ended", (long)dead);
    snprintf(alive, sizeof(alive), "pid %ld is alive", (long)live);

    int rc;
    char *out = run_clean(1, &rc);
    assert_int_equal(rc, 0);
    expect_line(out, "sysv-shm", seg, "would remove", gone);
    expect_line(out, "sysv-msg", msq, "would remove", gone);
    expect_line(out, "shm", dm.shm, "would remove", gone);
    expect_line(out, "path", dm.fifo, "would remove", gone);
    assert_int_equal(count(out, "would remove"), 4);
    expect_line(out, "sysv-shm", lseg, "kept", alive);
    expect_line(out, "shm", lm.shm, "kept", alive);
    expect_line(out, "shm", foreign, "not checked", "pid 77 of another PID namespace");
    assert_non_null(strstr(out, "4 would be removed"));
    free(out);
    assert_true(seg_exists(dm.segid) && msq_exists(dm.msqid) && shm_exists(dm.shm));
    assert_int_equal(access(dm.fifo, F_OK), 0);

    out = run_clean(0, &rc);
    assert_int_equal(rc, 0);
    expect_line(out, "sysv-shm", seg, "removed", gone);
    expect_line(out, "sysv-msg", msq, "removed", gone);
    expect_line(out, "shm", dm.shm, "removed", gone);
    expect_line(out, "path", dm.fifo, "removed", gone);
    assert_int_equal(count(out, "removed"), 4);
    expect_line(out, "sysv-shm", lseg, "kept", alive);
    free(out);
    assert_false(seg_exists(dm.segid) || msq_exists(dm.msqid) || shm_exists(dm.shm));
    assert_int_equal(access(dm.fifo, F_OK), -1);
    assert_true(seg_exists(lm.segid) && shm_exists(lm.shm) && shm_exists(foreign));

    /* the live owner ends without closing anything: now its objects go too */
    assert_int_equal(write(l.go[1], "g", 1), 1);
    int st;
    assert_int_equal(waitpid(live, &st, 0), live);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    out = run_clean(0, &rc);
    assert_int_equal(count(out, "removed"), 2);
    free(out);
    assert_false(seg_exists(lm.segid) || shm_exists(lm.shm));
    shm_unlink(foreign);
    unlink(file);
    for (int i = 0; i < 2; i++) {
        close(d.out[i]);
        close(d.go[i]);
        close(l.out[i]);
        close(l.go[i]);
    }
}

/* made by a process that then exits: a segment nobody attached, a queue it sent to, a set
 * whose first semaphore it changed */
struct raw_sysv {
    int seg, msq, sem;
};

static int raw_creator(void *arg)
{
    int fd = *(int *)arg;
    struct raw_sysv r = {
        .seg = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600),
        .msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600),
        .sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600),
    };
    struct {
        long mtype;
        char b[8];
    } m = {1, "x"};
    struct sembuf up = {.sem_num = 0, .sem_op = 1, .sem_flg = 0};
    if (r.msq >= 0 && msgsnd(r.msq, &m, sizeof(m.b), IPC_NOWAIT) < 0) r.msq = -1;
    if (r.sem >= 0 && semop(r.sem, &up, 1) < 0) r.sem = -1;
    return write(fd, &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1;
}

static int raw_holder(void *arg)
{
    struct child *c = arg;
    alarm(120); /* a failed test never releases it: it must not outlive the test for long */
    int seg = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    if (write(c->out[1], &seg, sizeof(seg)) != (ssize_t)sizeof(seg)) return 1;
    char go;
    return read(c->go[0], &go, 1) == 1 ? 0 : 2;
}

static void test_clean_lists_sysv_without_entry(void **state)
{
    const char *dir = *state;
    assert_int_equal(ipcp_registry_set_dir(dir), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t gone = spawn(raw_creator, &p[1]);
    int st;
    assert_int_equal(waitpid(gone, &st, 0), gone);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct raw_sysv r;
    assert_int_equal(read(p[0], &r, sizeof(r)), (ssize_t)sizeof(r));
    assert_true(r.seg >= 0 && r.msq >= 0 && r.sem >= 0);
    struct child h = {0};
    assert_int_equal(pipe2(h.out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(h.go, O_CLOEXEC), 0);
    pid_t live = spawn(raw_holder, &h);
    int hseg;
    assert_int_equal(read(h.out[0], &hseg, sizeof(hseg)), (ssize_t)sizeof(hseg));
    assert_true(hseg >= 0);

    char seg[16], msq[16], sem[16], lseg[16], why[128], buf[512];
    snprintf(seg, sizeof(seg), "%d", r.seg);
    snprintf(msq, sizeof(msq), "%d", r.msq);
    snprintf(sem, sizeof(sem), "%d", r.sem);
    snprintf(lseg, sizeof(lseg), "%d", hseg);
    for (int dry = 1; dry >= 0; dry--) {
        int rc;
        char *out = run_clean(dry, &rc);
        assert_int_equal(rc, 0);
        snprintf(why, sizeof(why), "its creator, pid %ld, is gone, none attached; ipcrm -m %s",
                 (long)gone, seg);
        expect_line(out, "sysv-shm", seg, "not checked", why);
        snprintf(why, sizeof(why), "its last sender, pid %ld, is gone; ipcrm -q %s", (long)gone,
                 msq);
        expect_line(out, "sysv-msg", msq, "not checked", why);
        snprintf(why, sizeof(why), "its last user, pid %ld, is gone; ipcrm -s %s", (long)gone, sem);
        expect_line(out, "sysv-sem", sem, "not checked", why);
        if (line_of(out, "sysv-shm", lseg, buf, sizeof(buf)) != NULL)
            fail_msg("a segment whose creator is alive is listed: %s", buf);
        assert_non_null(strstr(out, "without a registry entry ")); /* the count of those in use */
        assert_non_null(strstr(out, " in use by live processes: not listed"));
        free(out);
        /* never removed, not even by a real clean */
        struct semid_ds sds;
        union {
            int val;
            struct semid_ds *buf;
        } a = {.buf = &sds};
        assert_true(seg_exists(r.seg) && msq_exists(r.msq) && semctl(r.sem, 0, IPC_STAT, a) == 0);
    }
    assert_int_equal(write(h.go[1], "g", 1), 1);
    assert_int_equal(waitpid(live, &st, 0), live);
    assert_int_equal(shmctl(r.seg, IPC_RMID, NULL), 0);
    assert_int_equal(shmctl(hseg, IPC_RMID, NULL), 0);
    assert_int_equal(msgctl(r.msq, IPC_RMID, NULL), 0);
    assert_int_equal(semctl(r.sem, 0, IPC_RMID), 0);
    for (int i = 0; i < 2; i++) {
        close(p[i]);
        close(h.out[i]);
        close(h.go[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean_lists_sysv_without_entry, ut_dir_setup,
                                        ut_dir_teardown),
        cmocka_unit_test_setup_teardown(test_clean_lists_and_removes_exactly_the_dead, ut_dir_setup,
                                        ut_dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

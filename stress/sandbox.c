/* sandbox.c - where a stress case runs, and what it left behind.
 *
 * When the system allows it (root, or CAP_SYS_ADMIN), `ipcproof stress` moves itself into a
 * private mount and IPC namespace before the first case: /dev/shm becomes an empty tmpfs that
 * only this process tree sees, an mqueue fs is mounted inside it so the POSIX message queues of
 * the (also private) IPC namespace can be listed, and SysV IPC objects are private too. Anything
 * found there after destroy() is a leak of this run, whatever its name, and nothing a broken
 * plugin leaks can pollute the host: the namespace goes away with the process.
 *
 * Otherwise the leak check compares /dev/shm (and /dev/mqueue when mounted) before and after
 * the case and reports new entries named with the run id (only those: another run going on at
 * the same time is not this run's leak); SysV objects cannot be attributed then and are not
 * checked. A leak is removed once reported. In both modes the temp directory is
 * searched for entries named with the run id (FIFOs, socket files). */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stress.h"

#define MQ_DIR_NAME ".ipcproof-mq"
#define MQ_DIR      "/dev/shm/" MQ_DIR_NAME

static int mq_in_sandbox;

int st_sandbox_enter(char *why, size_t cap)
{
    static int state = -1;
    if (state >= 0) return state;
    state = 0;
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC) < 0) {
        snprintf(why, cap, "no private namespace (unshare: %s)", strerror(errno));
        return 0;
    }
    /* our mounts must not propagate back to the host's namespace */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        snprintf(why, cap, "no private mounts (%s)", strerror(errno));
        return 0;
    }
    if (mount("ipcproof-shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) {
        snprintf(why, cap, "no private /dev/shm (%s)", strerror(errno));
        return 0;
    }
    if (mkdir(MQ_DIR, 0700) == 0 && mount("mqueue", MQ_DIR, "mqueue", 0, NULL) == 0)
        mq_in_sandbox = 1;
    else
        snprintf(why, cap, "message queues not listed (mqueue mount: %s)", strerror(errno));
    state = 1;
    return 1;
}

static void add_name(struct st_snapshot *s, const char *kind, const char *name)
{
    char **nn = realloc(s->names, sizeof(char *) * (s->n + 1));
    if (nn == NULL) return;
    s->names = nn;
    size_t len = strlen(kind) + strlen(name) + 2;
    char *e = malloc(len);
    if (e == NULL) return;
    snprintf(e, len, "%s:%s", kind, name);
    s->names[s->n++] = e;
}

static void list_dir(struct st_snapshot *s, const char *dir, const char *kind, const char *must)
{
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (strcmp(e->d_name, MQ_DIR_NAME) == 0) continue;
        if (strncmp(e->d_name, "ipcp-reg.", 9) == 0) continue; /* the registry (docs/clean.md) */
        if (must != NULL && strstr(e->d_name, must) == NULL) continue;
        add_name(s, kind, e->d_name);
    }
    closedir(d);
}

static void list_sysv(struct st_snapshot *s, const char *file, const char *kind)
{
    FILE *f = fopen(file, "re");
    if (f == NULL) return;
    char line[512];
    int first = 1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (first) { /* column titles */
            first = 0;
            continue;
        }
        long long key;
        long id;
        if (sscanf(line, "%lld %ld", &key, &id) == 2) {
            char name[64];
            snprintf(name, sizeof(name), "key=0x%llx,id=%ld", key, id);
            add_name(s, kind, name);
        }
    }
    fclose(f);
}

void st_snapshot_take(struct st_snapshot *s, const char *run_id)
{
    memset(s, 0, sizeof(*s));
    list_dir(s, "/dev/shm", "shm", NULL);
    if (mq_in_sandbox)
        list_dir(s, MQ_DIR, "mq", NULL);
    else
        list_dir(s, "/dev/mqueue", "mq", NULL);
    list_sysv(s, "/proc/sysvipc/shm", "sysv-shm");
    list_sysv(s, "/proc/sysvipc/sem", "sysv-sem");
    list_sysv(s, "/proc/sysvipc/msg", "sysv-msg");
    const char *tmp = getenv("TMPDIR");
    list_dir(s, tmp && *tmp ? tmp : "/tmp", "tmp", run_id);
    if (tmp && *tmp && strcmp(tmp, "/tmp") != 0) list_dir(s, "/tmp", "tmp", run_id);
}

void st_snapshot_free(struct st_snapshot *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    s->names = NULL;
    s->n = 0;
}

static int has(const struct st_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return 1;
    return 0;
}

/* name carries run_id as a whole ("ipcproof-12-1" is not in "ipcproof-12-10"). */
static int has_run_id(const char *name, const char *run_id)
{
    size_t n = strlen(run_id);
    for (const char *p = strstr(name, run_id); p != NULL; p = strstr(p + 1, run_id))
        if (p[n] < '0' || p[n] > '9') return 1;
    return 0;
}

static int ours(const char *entry, const char *run_id, int sandboxed)
{
    if (sandboxed) return 1;
    const char *name = strchr(entry, ':');
    name = name ? name + 1 : entry;
    if (strncmp(entry, "sysv-", 5) == 0) return 0; /* cannot be attributed outside the sandbox */
    return has_run_id(name, run_id);
}

size_t st_snapshot_diff(const struct st_snapshot *before, const struct st_snapshot *after,
                        const char *run_id, int sandboxed, char *buf, size_t cap, size_t *foreign)
{
    size_t n = 0, len = strlen(buf);
    *foreign = 0;
    for (size_t i = 0; i < after->n; i++) {
        const char *e = after->names[i];
        if (has(before, e)) continue;
        if (!ours(e, run_id, sandboxed)) {
            if (strncmp(e, "tmp:", 4) != 0) (*foreign)++;
            continue;
        }
        if (len + 2 < cap) len += (size_t)snprintf(buf + len, cap - len, "%s%s", n ? ", " : "", e);
        n++;
    }
    return n;
}

static void remove_one(const char *e)
{
    const char *name = strchr(e, ':');
    if (name == NULL) return;
    name++;
    char path[PATH_MAX];
    if (strncmp(e, "shm:", 4) == 0) {
        snprintf(path, sizeof(path), "/dev/shm/%s", name); /* shm objects and sem.* alike */
        unlink(path);
    } else if (strncmp(e, "mq:", 3) == 0) {
        snprintf(path, sizeof(path), "/%s", name);
        mq_unlink(path);
    } else if (strncmp(e, "tmp:", 4) == 0) {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%s/%s", tmp && *tmp ? tmp : "/tmp", name);
        if (unlink(path) < 0) {
            snprintf(path, sizeof(path), "/tmp/%s", name);
            unlink(path);
        }
    } else if (strncmp(e, "sysv-", 5) == 0) {
        const char *id = strstr(name, "id=");
        if (id == NULL) return;
        int v = atoi(id + 3);
        if (strncmp(e, "sysv-shm:", 9) == 0) shmctl(v, IPC_RMID, NULL);
        if (strncmp(e, "sysv-sem:", 9) == 0) semctl(v, 0, IPC_RMID);
        if (strncmp(e, "sysv-msg:", 9) == 0) msgctl(v, IPC_RMID, NULL);
    }
}

void st_snapshot_remove(const struct st_snapshot *before, const struct st_snapshot *after,
                        const char *run_id, int sandboxed)
{
    for (size_t i = 0; i < after->n; i++) {
        const char *e = after->names[i];
        if (!has(before, e) && ours(e, run_id, sandboxed)) remove_one(e);
    }
}

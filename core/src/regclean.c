/* regclean.c - ipcp_registry_clean(): the clean-up of dead owners' objects (registry.c keeps the
 * entries; see registry.h for the file format and the rules). Read every entry, decide its
 * owner's state, then act on the dead owners' lines only, after checking each object still is
 * the one registered; then list the library-named and SysV objects that no entry lists. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "os.h"
#include "proc.h"
#include "registry_int.h"
#include "ipcproof/registry.h"
#include "ipcproof/shm.h"

#define MQ_DIR          "/dev/mqueue"
#define MQUEUE_FS_MAGIC 0x19800202 /* statfs f_type of an mqueue file system */
#define ENTRY_SIZE_MAX  (1 << 20)  /* a larger entry is not ours */
#define LINE_KIND_ENTRY "entry"

/* ==== clean ================================================================================= */

enum { S_ALIVE, S_DEAD, S_FOREIGN, S_UNKNOWN, S_BAD, S_VANISHED };

struct entry {
    char file[ENTRY_NAME_MAX];
    int side; /* a <file>.tmp next to its entry: only removed with a dead owner */
    unsigned long long pidns, start;
    long pid;
    uid_t uid;
    int state;
    int why;    /* S_DEAD: enum ipcp_registry_why */
    int err;    /* S_UNKNOWN, S_BAD */
    char *text; /* the file's contents; lines[].name point into it */
    struct rline *lines;
    size_t n;
};

struct cleaner {
    unsigned flags;
    void (*cb)(const struct ipcp_registry_item *it, void *arg);
    void *arg;
    struct ipcp_registry_summary sum;
    unsigned long long pidns, ipcns, start;
    struct entry *e;
    size_t ne;
    const struct entry *cur; /* the entry whose lines are being reported, or NULL */
    long long made;          /* ctime of the object being reported, -1: unknown */
    long long now;           /* CLOCK_REALTIME seconds when clean began */
    long obj_uid;            /* owner uid of the object being reported, -1: the entry's */
    const char *pid_is;      /* SysV objects without an entry: the item's pid_is, attached */
    long attached;
};

const char *ipcp_registry_status_text(enum ipcp_registry_status s)
{
    switch (s) {
    case IPCP_REG_REMOVED:
        return "removed";
    case IPCP_REG_WOULD_REMOVE:
        return "would remove (dry run)";
    case IPCP_REG_GONE:
        return "already gone";
    case IPCP_REG_KEPT_ALIVE:
        return "kept: owner alive";
    case IPCP_REG_KEPT_OTHER:
        return "kept: the name now belongs to another object or owner";
    case IPCP_REG_OTHER_PIDNS:
        return "not checked: owner in another PID namespace";
    case IPCP_REG_OTHER_IPCNS:
        return "not checked: created in another IPC namespace";
    case IPCP_REG_NO_ENTRY:
        return "not checked: no registry entry";
    case IPCP_REG_UNCHECKED:
        return "not checked: cannot read";
    case IPCP_REG_FAILED:
        return "failed";
    default:
        return "?";
    }
}

static void report(struct cleaner *c, int status, const char *kind, const char *name, long pid,
                   int err, const char *entry)
{
    c->sum.count[status]++;
    long long made = c->made;
    long obj_uid = c->obj_uid;
    const char *pid_is = c->pid_is;
    long attached = c->attached;
    c->made = -1;
    c->obj_uid = -1;
    c->pid_is = NULL;
    c->attached = -1;
    if (c->cb == NULL) return;
    const struct entry *e = entry != NULL ? c->cur : NULL;
    struct ipcp_registry_item it = {
        .status = (enum ipcp_registry_status)status,
        .kind = kind,
        .name = name,
        .pid = pid,
        .err = err,
        .entry = entry,
        .why = e != NULL && e->state == S_DEAD ? (enum ipcp_registry_why)e->why : IPCP_REG_WHY_NONE,
        .uid = obj_uid >= 0                     ? obj_uid
               : e != NULL && e->state != S_BAD ? (long)e->uid
                                                : -1,
        .age_s = made < 0        ? -1
                 : made > c->now ? 0
                                 : c->now - made,
        .pid_is = pid_is,
        .attached = attached,
    };
    c->cb(&it, c->arg);
}

/* Reads and parses one entry file; sets e->state to S_BAD (with e->err) when it is not a
 * well-formed entry of the identity its name claims. */
static void read_entry(int dfd, struct entry *e)
{
    e->state = S_BAD;
    int fd = openat(dfd, e->file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        e->err = errno;
        if (errno == ENOENT) e->state = S_VANISHED; /* its owner dropped its last line */
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > ENTRY_SIZE_MAX) {
        e->err = EBADMSG;
        close(fd);
        return;
    }
    e->text = malloc((size_t)st.st_size + 1);
    ssize_t got = e->text != NULL ? ipcp__os_read_full(fd, e->text, (size_t)st.st_size) : 0;
    size_t len = got > 0 ? (size_t)got : 0;
    close(fd);
    if (e->text == NULL) {
        e->err = ENOMEM;
        return;
    }
    e->text[len] = '\0';
    char *nl = strchr(e->text, '\n');
    if (nl == NULL) {
        e->err = EBADMSG;
        return;
    }
    *nl = '\0';
    long hpid;
    unsigned long long hstart, hns;
    unsigned huid;
    int ver;
    if (sscanf(e->text, HEADER_TAG " %d pid=%ld start=%llu pidns=%llu uid=%u", &ver, &hpid, &hstart,
               &hns, &huid) != 5 ||
        ver != FORMAT_VERSION || hpid != e->pid || hstart != e->start || hns != e->pidns ||
        (uid_t)huid != st.st_uid) {
        e->err = EBADMSG;
        return;
    }
    e->uid = st.st_uid;
    size_t cap = 0;
    for (char *s = nl + 1; *s != '\0';) {
        char *end = strchr(s, '\n');
        if (end == NULL) break; /* an unfinished last line is not trusted */
        *end = '\0';
        struct rline l;
        if (ipcp__reg_parse_line(s, &l) == 0) {
            if (e->n == cap) {
                cap = cap ? cap * 2 : 8;
                struct rline *nlines = realloc(e->lines, cap * sizeof(*nlines));
                if (nlines == NULL) {
                    e->err = ENOMEM;
                    return;
                }
                e->lines = nlines;
            }
            e->lines[e->n++] = l;
        }
        s = end + 1;
    }
    e->state = S_UNKNOWN; /* readable; the owner's state comes next */
}

static void owner_state(const struct cleaner *c, struct entry *e)
{
    if (e->pidns == 0 || c->pidns == 0 || e->pidns != c->pidns) {
        e->state = S_FOREIGN;
        return;
    }
    if (e->pid == (long)getpid()) {
        e->state = e->start == c->start ? S_ALIVE : S_DEAD;
        e->why = IPCP_REG_WHY_PID_REUSED;
        return;
    }
    char state;
    uint64_t start;
    /* the liveness question of clean: whether the creator may still use its objects, so a
     * zombie is alive (its parent may still use them); the protocols' question (proc.c) is
     * whether a peer still acts, for which a zombie is dead */
    int rc = e->pid > 0 && e->pid <= (long)UINT32_MAX
                 ? ipcp__os_proc_stat((uint32_t)e->pid, &state, &start)
                 : -ENOENT;
    if (rc == -ENOENT || rc == -ESRCH) {
        e->state = S_DEAD;
        e->why = IPCP_REG_WHY_PID_GONE;
    } else if (rc < 0) {
        e->state = S_UNKNOWN;
        e->err = -rc;
    } else {
        /* A zombie is alive: its parent may still use what it created. */
        e->state = start == e->start ? S_ALIVE : S_DEAD;
        e->why = IPCP_REG_WHY_PID_REUSED;
    }
}

/* Is kind/name listed by an entry whose owner is not dead (or by any entry)? Its pid or 0. */
static long listed(const struct cleaner *c, int kind, const char *name, int any_state)
{
    for (size_t i = 0; i < c->ne; i++) {
        const struct entry *e = &c->e[i];
        if (e->side || e->state == S_BAD || e->state == S_VANISHED ||
            (!any_state && e->state == S_DEAD))
            continue;
        for (size_t j = 0; j < e->n; j++) {
            const struct rline *l = &e->lines[j];
            if (l->kind == kind && strcmp(l->name, name) == 0) return e->pid;
            if (l->kind == K_STEM && kind != K_STEM && strstr(name, l->name) != NULL) return e->pid;
        }
    }
    return 0;
}

static int mq_mounted(void)
{
    struct statfs sf;
    return statfs(MQ_DIR, &sf) == 0 && (unsigned long)sf.f_type == MQUEUE_FS_MAGIC;
}

/* The objects named with a dead owner's stem: in /dev/shm, /dev/mqueue (when mounted), /tmp and
 * $TMPDIR. Only objects owned by the entry's uid, not directories, not listed by anyone else. */
static void clean_stem(struct cleaner *c, const struct entry *e, const char *stem, int *failed)
{
    const char *tmpdir = getenv("TMPDIR");
    const char *dirs[4] = {SHM_DIR, mq_mounted() ? MQ_DIR : NULL, "/tmp",
                           tmpdir != NULL && tmpdir[0] == '/' ? tmpdir : NULL};
    struct stat seen[4];
    int listed_dir[4] = {0};
    const struct owner o = {.pid = e->pid, .uid = e->uid};
    for (int d = 0; d < 4; d++) {
        if (dirs[d] == NULL) continue;
        int dfd = open(dirs[d], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) continue;
        int dup_dir = fstat(dfd, &seen[d]) < 0;
        for (int k = 0; k < d && !dup_dir; k++) /* $TMPDIR may be /tmp */
            dup_dir = listed_dir[k] && seen[k].st_dev == seen[d].st_dev &&
                      seen[k].st_ino == seen[d].st_ino;
        listed_dir[d] = !dup_dir;
        DIR *dir = dup_dir ? NULL : fdopendir(dfd);
        if (dir == NULL) {
            close(dfd);
            continue;
        }
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            const char *dn = de->d_name;
            if (dn[0] == '.' || strstr(dn, stem) == NULL) continue;
            if (strncmp(dn, IPCP_REGISTRY_PREFIX, strlen(IPCP_REGISTRY_PREFIX)) == 0) continue;
            int kind = d == 0   ? (strncmp(dn, "sem.", 4) == 0 ? K_SEM : K_SHM)
                       : d == 1 ? K_MQ
                                : K_PATH;
            char name[PATH_MAX];
            int n = kind == K_PATH  ? snprintf(name, sizeof(name), "%s/%s", dirs[d], dn)
                    : kind == K_SEM ? snprintf(name, sizeof(name), "/%s", dn + 4)
                                    : snprintf(name, sizeof(name), "/%s", dn);
            if (n < 0 || (size_t)n >= sizeof(name)) continue;
            int own_line = 0;
            for (size_t j = 0; j < e->n && !own_line; j++)
                own_line = e->lines[j].kind == kind && strcmp(e->lines[j].name, name) == 0;
            if (own_line) continue; /* handled with the entry's explicit lines */
            struct stat st;
            if (fstatat(dfd, dn, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode)) continue;
            c->made = (long long)st.st_ctime;
            c->obj_uid = (long)st.st_uid;
            long other = listed(c, kind, name, 0);
            if (other != 0 || st.st_uid != o.uid) {
                report(c, IPCP_REG_KEPT_OTHER, ipcp__reg_kind_names[kind], name,
                       other ? other : e->pid, 0, e->file);
                continue;
            }
            if (c->flags & IPCP_REG_CLEAN_DRY_RUN) {
                report(c, IPCP_REG_WOULD_REMOVE, ipcp__reg_kind_names[kind], name, e->pid, 0,
                       e->file);
                continue;
            }
            int rc = kind == K_MQ ? (mq_unlink(name) < 0 ? -errno : 0)
                                  : (unlinkat(dfd, dn, 0) < 0 ? -errno : 0);
            if (rc == 0)
                report(c, IPCP_REG_REMOVED, ipcp__reg_kind_names[kind], name, e->pid, 0, e->file);
            else if (rc != -ENOENT) {
                report(c, IPCP_REG_FAILED, ipcp__reg_kind_names[kind], name, e->pid, -rc, e->file);
                *failed = 1;
            }
        }
        closedir(dir);
    }
}

static void clean_dead(struct cleaner *c, int dfd, const struct entry *e)
{
    c->cur = e;
    const struct owner o = {.pid = e->pid, .uid = e->uid};
    int dry = (c->flags & IPCP_REG_CLEAN_DRY_RUN) != 0;
    int failed = 0;
    for (size_t j = 0; j < e->n; j++) {
        const struct rline *l = &e->lines[j];
        const char *kn = ipcp__reg_kind_names[l->kind];
        if (l->kind == K_STEM) {
            clean_stem(c, e, l->name, &failed);
            continue;
        }
        long other = listed(c, l->kind, l->name, 0);
        if (other != 0) {
            report(c, IPCP_REG_KEPT_OTHER, kn, l->name, other, 0, e->file);
            continue;
        }
        if ((l->kind == K_MQ || ipcp__reg_is_sysv(l->kind)) &&
            (l->ipcns == 0 || l->ipcns != c->ipcns)) {
            report(c, IPCP_REG_OTHER_IPCNS, kn, l->name, e->pid, 0, e->file);
            continue;
        }
        int err;
        long long made;
        int r = ipcp__reg_probe(l, &o, &err, &made);
        c->made = r == P_SAME ? made : -1;
        if (r == P_GONE) {
            report(c, IPCP_REG_GONE, kn, l->name, e->pid, 0, e->file);
        } else if (r == P_OTHER) {
            report(c, IPCP_REG_KEPT_OTHER, kn, l->name, e->pid, 0, e->file);
        } else if (r == P_ERR) {
            report(c, IPCP_REG_FAILED, kn, l->name, e->pid, err, e->file);
            failed = 1;
        } else if (dry) {
            report(c, IPCP_REG_WOULD_REMOVE, kn, l->name, e->pid, 0, e->file);
        } else {
            int rc = ipcp__reg_remove_object(l, &o);
            if (rc == 0) {
                report(c, IPCP_REG_REMOVED, kn, l->name, e->pid, 0, e->file);
            } else if (rc == -ENOENT) {
                report(c, IPCP_REG_GONE, kn, l->name, e->pid, 0, e->file);
            } else if (rc == -EEXIST) {
                report(c, IPCP_REG_KEPT_OTHER, kn, l->name, e->pid, 0, e->file);
            } else {
                report(c, IPCP_REG_FAILED, kn, l->name, e->pid, -rc, e->file);
                failed = 1;
            }
        }
    }
    /* A failure keeps the entry, so that a later clean (as root, say) can retry. */
    if (dry || failed) return;
    if (unlinkat(dfd, e->file, 0) < 0 && errno != ENOENT)
        report(c, IPCP_REG_FAILED, LINE_KIND_ENTRY, e->file, e->pid, errno, e->file);
}

/* Library-named objects ("ipcp.*", "sem.ipcp.*") that no readable entry lists. */
static void scan_unregistered(struct cleaner *c, const char *dir, int is_mq)
{
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *dn = de->d_name;
        int kind = is_mq ? K_MQ : K_SHM;
        const char *obj = dn;
        if (!is_mq && strncmp(dn, "sem.", 4) == 0) {
            kind = K_SEM;
            obj = dn + 4;
        }
        long pid;
        if (ipcp_shm_parse_name(obj, NULL, 0, &pid) < 0) continue;
        char name[NAME_MAX + 2];
        snprintf(name, sizeof(name), "/%s", obj);
        if (listed(c, kind, name, 1) != 0) continue;
        struct stat st;
        if (fstatat(dirfd(d), dn, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            c->made = (long long)st.st_ctime;
            c->obj_uid = (long)st.st_uid;
        }
        /* The pid in the name may be that of an entry we could not read: say so. */
        const struct entry *bad = NULL;
        for (size_t i = 0; i < c->ne && bad == NULL; i++)
            if (!c->e[i].side && c->e[i].state == S_BAD && c->e[i].pid == pid) bad = &c->e[i];
        if (bad != NULL)
            report(c, IPCP_REG_UNCHECKED, ipcp__reg_kind_names[kind], name, pid, bad->err,
                   bad->file);
        else
            report(c, IPCP_REG_NO_ENTRY, ipcp__reg_kind_names[kind], name, pid, 0, NULL);
    }
    closedir(d);
}

/* Does a process with this pid exist? As for the owners of entries, a zombie does (its parent
 * may still use what it made), and a pid whose /proc cannot be read counts as alive. */
static int pid_exists(long pid)
{
    if (pid <= 0 || pid > (long)UINT32_MAX) return 0;
    char state;
    uint64_t start;
    int rc = ipcp__os_proc_stat((uint32_t)pid, &state, &start);
    return !(rc == -ENOENT || rc == -ESRCH);
}

#define SEM_SCAN_MAX 256 /* semaphores of a set looked at for their last user */

/* The SysV objects that no entry lists (ipcp__os_sysv_list's callback): the caller's (every
 * one for root) that no live process uses are reported, the others counted. */
static void scan_sysv_one(const struct ipcp__sysv_obj *o, void *arg)
{
    struct cleaner *c = arg;
    static const int kinds[] = {K_SYSV_SHM, K_SYSV_MSG, K_SYSV_SEM};
    int kind = kinds[o->kind];
    char name[16];
    snprintf(name, sizeof(name), "%d", o->id);
    if (listed(c, kind, name, 1) != 0) return;
    uid_t me = geteuid();
    if (me != 0 && o->uid != (long)me && o->cuid != (long)me) return;
    long pid = o->pid[0], other = o->pid[1];
    const char *pid_is = o->kind == IPCP__SYSV_SHM ? "creator" : "last sender";
    int in_use = o->kind == IPCP__SYSV_SHM && o->count != 0;
    if (o->kind == IPCP__SYSV_MSG && pid == 0 && other != 0) {
        pid = other; /* never sent to (or not since), but received from */
        other = 0;
        pid_is = "last receiver";
    } else if (o->kind == IPCP__SYSV_SEM) {
        pid_is = "last user";
        for (long i = 0; i < o->count && i < SEM_SCAN_MAX && !in_use; i++) {
            int p = semctl(o->id, (int)i, GETPID);
            if (p < 0)
                in_use = errno != EINVAL && errno != EIDRM; /* cannot tell: leave it be */
            else if (p > 0 && pid_exists(p))
                in_use = 1;
            else if (p > 0 && pid == 0)
                pid = p;
        }
        if (o->count < 0 || o->count > SEM_SCAN_MAX) in_use = 1; /* not all looked at */
    }
    if (in_use || pid_exists(pid) || pid_exists(other)) {
        c->sum.sysv_in_use++;
        return;
    }
    c->made = o->ctime;
    c->obj_uid = o->uid;
    c->pid_is = pid != 0 ? pid_is : "none";
    c->attached = o->kind == IPCP__SYSV_SHM ? o->count : -1;
    report(c, IPCP_REG_NO_ENTRY, ipcp__reg_kind_names[kind], name, pid, 0, NULL);
}

static void free_cleaner(struct cleaner *c)
{
    for (size_t i = 0; i < c->ne; i++) {
        free(c->e[i].text);
        free(c->e[i].lines);
    }
    free(c->e);
}

/* Lists the registry directory into c->e. A "<entry>.tmp" is a rewrite that its writer did not
 * finish (it died between write and rename): next to its entry it is only a side file; alone
 * (the very first write of the entry) it is the entry, as far as its complete lines go. */
static int list_entries(struct cleaner *c, int dfd)
{
    int rfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) return -errno;
    DIR *d = fdopendir(rfd);
    if (d == NULL) {
        int e = errno;
        close(rfd);
        return -e;
    }
    size_t cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct entry e = {0};
        if (strlen(de->d_name) >= sizeof(e.file) ||
            ipcp__reg_parse_entry_name(de->d_name, &e.pidns, &e.pid, &e.start, &e.side) < 0)
            continue;
        if (c->ne == cap) {
            cap = cap ? cap * 2 : 16;
            struct entry *ne = realloc(c->e, cap * sizeof(*ne));
            if (ne == NULL) {
                rc = -ENOMEM;
                break;
            }
            c->e = ne;
        }
        strcpy(e.file, de->d_name);
        c->e[c->ne++] = e;
    }
    closedir(d);
    for (size_t i = 0; i < c->ne; i++) {
        struct entry *t = &c->e[i];
        if (!t->side) continue;
        size_t base = strlen(t->file) - strlen(TMP_SUFFIX);
        int alone = 1;
        for (size_t j = 0; j < c->ne && alone; j++)
            alone = c->e[j].side || strlen(c->e[j].file) != base ||
                    strncmp(c->e[j].file, t->file, base) != 0;
        if (alone) t->side = 0;
    }
    return rc;
}

int ipcp_registry_clean(unsigned flags, void (*cb)(const struct ipcp_registry_item *it, void *arg),
                        void *arg, struct ipcp_registry_summary *sum)
{
    struct cleaner c = {
        .flags = flags, .cb = cb, .arg = arg, .made = -1, .obj_uid = -1, .attached = -1};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    c.now = (long long)now.tv_sec;
    c.pidns = ipcp__os_ns_inode("pid");
    c.ipcns = ipcp__os_ns_inode("ipc");
    uint32_t p32;
    uint64_t start = 0;
    if (ipcp__proc_self(&p32, &start) < 0) start = 0;
    c.start = start;

    int dfd = ipcp__reg_dup_dir();
    if (dfd < 0) return dfd;
    int rc = list_entries(&c, dfd);
    if (rc < 0) {
        close(dfd);
        free_cleaner(&c);
        return rc;
    }

    for (size_t i = 0; i < c.ne; i++) {
        struct entry *e = &c.e[i];
        if (e->side) {
            owner_state(&c, e);
            continue;
        }
        read_entry(dfd, e);
        if (e->state == S_VANISHED) continue;
        if (e->state != S_BAD) owner_state(&c, e);
        c.sum.entries++;
        c.sum.dead += e->state == S_DEAD;
        c.sum.alive += e->state == S_ALIVE;
        c.sum.foreign += e->state == S_FOREIGN;
        c.sum.unknown += e->state == S_UNKNOWN;
        c.sum.unreadable += e->state == S_BAD;
    }
    for (size_t i = 0; i < c.ne; i++) {
        const struct entry *e = &c.e[i];
        if (e->state == S_VANISHED) continue;
        if (e->side) {
            if (e->state == S_DEAD && !(flags & IPCP_REG_CLEAN_DRY_RUN)) unlinkat(dfd, e->file, 0);
            continue;
        }
        c.cur = e;
        if (e->state == S_DEAD) {
            clean_dead(&c, dfd, e);
            continue;
        }
        if (e->state == S_BAD) {
            report(&c, IPCP_REG_UNCHECKED, LINE_KIND_ENTRY, e->file, e->pid, e->err, e->file);
            continue;
        }
        int st = e->state == S_ALIVE     ? IPCP_REG_KEPT_ALIVE
                 : e->state == S_FOREIGN ? IPCP_REG_OTHER_PIDNS
                                         : IPCP_REG_UNCHECKED;
        for (size_t j = 0; j < e->n; j++) {
            const struct rline *l = &e->lines[j];
            int err;
            long long made;
            /* only to tell its age: a kept object is not judged (not ours to look into) */
            if (st != IPCP_REG_UNCHECKED && l->kind != K_STEM &&
                (!ipcp__reg_is_sysv(l->kind) || (l->ipcns != 0 && l->ipcns == c.ipcns)) &&
                ipcp__reg_probe(l, NULL, &err, &made) == P_SAME)
                c.made = made;
            report(&c, st, ipcp__reg_kind_names[l->kind], l->name, e->pid,
                   st == IPCP_REG_UNCHECKED ? e->err : 0, e->file);
        }
    }
    close(dfd);
    c.cur = NULL;

    if (!(flags & IPCP_REG_CLEAN_REGISTERED_ONLY)) {
        scan_unregistered(&c, SHM_DIR, 0);
        c.sum.mq_listed = mq_mounted();
        if (c.sum.mq_listed) scan_unregistered(&c, MQ_DIR, 1);
        c.sum.sysv_listed = 1;
        for (int k = IPCP__SYSV_SHM; k <= IPCP__SYSV_SEM; k++)
            if (ipcp__os_sysv_list(k, scan_sysv_one, &c) < 0) c.sum.sysv_listed = 0;
    }
    if (sum != NULL) *sum = c.sum;
    free_cleaner(&c);
    return 0;
}

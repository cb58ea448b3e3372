/* registry.c - the registry of created OS objects: kinds, names and lines, this process's entry,
 * and the objects' probe and removal; the clean-up of dead owners' objects is regclean.c. See
 * registry.h for the file format and the rules.
 *
 * Writing side: one mutex guards this process's in-memory copy of its entry (the lines), which
 * is the truth: an added line is appended to the file, a removed one makes the whole entry be
 * written anew from memory into "<entry>.tmp" and renamed over the entry (atomic: a reader sees
 * the old or the new entry, never a half-written one; a crash leaves at most the .tmp, which
 * clean removes with its dead owner, or reads as the entry when it is alone: the first write).
 * Nothing here is fatal to the caller's object. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "os.h"
#include "proc.h"
#include "registry_int.h"
#include "ipcproof/registry.h"
#include "ipcproof/shm.h"

/* ==== kinds, names, lines ================================================================== */

const char *const ipcp__reg_kind_names[K_COUNT] = {"shm",      "mq",       "sem",  "sysv-sem",
                                                   "sysv-shm", "sysv-msg", "path", "stem"};

static int kind_of(const char *s)
{
    for (int k = 0; s != NULL && k < K_COUNT; k++)
        if (strcmp(s, ipcp__reg_kind_names[k]) == 0) return k;
    return -1;
}

static int stem_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Checks name for kind and writes its canonical form (absolute path for K_PATH). */
static int canon_name(int kind, const char *name, char *out, size_t cap)
{
    if (name == NULL || name[0] == '\0') return -EINVAL;
    size_t n = strlen(name);
    switch (kind) {
    case K_SHM:
    case K_MQ:
    case K_SEM:
        if (name[0] != '/' || n < 2 || n > NAME_MAX - 4 || n >= cap) return -EINVAL;
        for (size_t i = 1; i < n; i++)
            if (name[i] == '/' || (unsigned char)name[i] <= ' ' || name[i] == 0x7f) return -EINVAL;
        memcpy(out, name, n + 1);
        return 0;
    case K_SYSV_SEM:
    case K_SYSV_SHM:
    case K_SYSV_MSG: {
        if (n > 10) return -EINVAL;
        long long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (name[i] < '0' || name[i] > '9') return -EINVAL;
            v = v * 10 + (name[i] - '0');
        }
        if (v > INT_MAX || n >= cap) return -EINVAL;
        memcpy(out, name, n + 1);
        return 0;
    }
    case K_STEM:
        if (n < IPCP_REGISTRY_STEM_MIN || n > IPCP_REGISTRY_STEM_MAX || n >= cap) return -EINVAL;
        for (size_t i = 0; i < n; i++)
            if (!stem_char(name[i])) return -EINVAL;
        memcpy(out, name, n + 1);
        return 0;
    case K_PATH: {
        if (strchr(name, '\n') != NULL) return -EINVAL;
        size_t len = 0;
        if (name[0] != '/') {
            if (getcwd(out, cap) == NULL) return -errno;
            len = strlen(out);
            if (len + 1 >= cap) return -ENAMETOOLONG;
            if (len == 0 || out[len - 1] != '/') out[len++] = '/';
        }
        if (len + n >= cap) return -ENAMETOOLONG;
        memcpy(out + len, name, n + 1);
        return 0;
    }
    default:
        return -EINVAL;
    }
}

/* "/dev/shm/<name>" or "/dev/shm/sem.<name>" for a POSIX shm object or semaphore. */
static int shm_path(int kind, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, SHM_DIR "/%s%s", kind == K_SEM ? "sem." : "", name + 1);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The identity of the object now under the name (dev:ino), for kinds that have one. */
static int object_ident(int kind, const char *name, unsigned long long *dev,
                        unsigned long long *ino)
{
    struct stat st;
    char p[PATH_MAX];
    switch (kind) {
    case K_SHM:
    case K_SEM:
        if (shm_path(kind, name, p, sizeof(p)) < 0 || lstat(p, &st) < 0) return -1;
        break;
    case K_PATH:
        if (lstat(name, &st) < 0) return -1;
        break;
    case K_MQ: {
        mqd_t q = mq_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (q == (mqd_t)-1) return -1;
        int rc = fstat((int)q, &st);
        mq_close(q);
        if (rc < 0) return -1;
        break;
    }
    default:
        return -1;
    }
    *dev = (unsigned long long)st.st_dev;
    *ino = (unsigned long long)st.st_ino;
    return 0;
}

/* Appends "<kind> <ipcns> <dev>:<ino>|- <name>\n" to buf; the length, or -ENAMETOOLONG. */
static int format_line(const struct rline *l, char *buf, size_t cap)
{
    char ident[48] = "-";
    if (l->has_ident) snprintf(ident, sizeof(ident), "%llu:%llu", l->dev, l->ino);
    int n = snprintf(buf, cap, "%s %llu %s %s\n", ipcp__reg_kind_names[l->kind], l->ipcns, ident,
                     l->name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}

static int parse_u64(const char **s, unsigned long long *v)
{
    const char *p = *s;
    unsigned long long x = 0;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (x > (ULLONG_MAX - d) / 10) return -1;
        x = x * 10 + d;
        p++;
    }
    *s = p;
    *v = x;
    return 0;
}

int ipcp__reg_parse_line(char *s, struct rline *l)
{
    char *sp = strchr(s, ' ');
    if (sp == NULL) return -1;
    *sp = '\0';
    l->kind = kind_of(s);
    if (l->kind < 0) return -1;
    const char *p = sp + 1;
    if (parse_u64(&p, &l->ipcns) < 0 || *p++ != ' ') return -1;
    l->has_ident = 0;
    l->dev = l->ino = 0;
    if (*p == '-') {
        p++;
    } else {
        if (parse_u64(&p, &l->dev) < 0 || *p++ != ':' || parse_u64(&p, &l->ino) < 0) return -1;
        l->has_ident = 1;
    }
    if (*p++ != ' ') return -1;
    char canon[PATH_MAX];
    if (canon_name(l->kind, p, canon, sizeof(canon)) < 0 || strcmp(canon, p) != 0) return -1;
    l->name = (char *)p;
    return 0;
}

int ipcp__reg_parse_entry_name(const char *file, unsigned long long *pidns, long *pid,
                               unsigned long long *start, int *tmp)
{
    size_t pl = strlen(IPCP_REGISTRY_PREFIX);
    if (strncmp(file, IPCP_REGISTRY_PREFIX, pl) != 0) return -1;
    const char *p = file + pl;
    unsigned long long ns, pd, st;
    if (parse_u64(&p, &ns) < 0 || *p++ != '.' || parse_u64(&p, &pd) < 0 || *p++ != '.' ||
        parse_u64(&p, &st) < 0)
        return -1;
    if (pd == 0 || pd > INT_MAX) return -1;
    if (*p == '\0')
        *tmp = 0;
    else if (strcmp(p, TMP_SUFFIX) == 0)
        *tmp = 1;
    else
        return -1;
    *pidns = ns;
    *pid = (long)pd;
    *start = st;
    return 0;
}

/* ==== this process's entry ================================================================= */

static struct {
    pthread_mutex_t mu;
    char dir[PATH_MAX]; /* registry directory */
    int dirfd;          /* O_PATH descriptor of it, or -1 */
    int have_dir;       /* ddev/dino are set */
    dev_t ddev;         /* identity of the registry directory: a closed and reused descriptor */
    ino_t dino;         /* number, or another directory mounted on the path, is noticed */
    pid_t pid;          /* process the lines belong to; 0: none yet */
    unsigned long long start, pidns;
    char file[ENTRY_NAME_MAX];
    int exists; /* the entry file was written by this process */
    struct rline *lines;
    size_t n, cap;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER, .dir = IPCP_REGISTRY_DIR, .dirfd = -1};

/* Opens R.dir. The first directory opened is the registry for good (inherited over fork): if
 * later another directory is found under the path (a private /dev/shm was mounted over the
 * shared one after the program lost our descriptor), nothing is written there: an entry in it
 * would be out of reach of `ipcproof clean` outside and vanish with the mount, and is none of the
 * business of whoever lists that directory (the stress sandbox's leak check). -errno. */
static int open_dir_locked(void)
{
    R.dirfd = -1;
    int fd = open(R.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (R.have_dir && (st.st_dev != R.ddev || st.st_ino != R.dino)) {
        close(fd);
        return -EXDEV;
    }
    R.dirfd = fd;
    R.ddev = st.st_dev;
    R.dino = st.st_ino;
    R.have_dir = 1;
    return fd;
}

/* Our directory descriptor: the one opened at load time, or again by path if the program closed
 * it (never closing that number: it may be the program's now). -errno. */
static int dirfd_locked(void)
{
    struct stat st;
    if (R.dirfd >= 0 && fstat(R.dirfd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == R.ddev &&
        st.st_ino == R.dino)
        return R.dirfd;
    return open_dir_locked();
}

static void free_lines_locked(void)
{
    for (size_t i = 0; i < R.n; i++)
        free(R.lines[i].name);
    free(R.lines);
    R.lines = NULL;
    R.n = R.cap = 0;
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&R.mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&R.mu);
}

static void atfork_child(void)
{
    /* The child's objects go into an entry of its own; the parent's lines stay the parent's. */
    free_lines_locked();
    R.pid = 0;
    R.exists = 0;
    pthread_mutex_unlock(&R.mu);
}

static void prune_at_exit(void);

/* At load time, before the program can mount a private /dev/shm over the shared one. */
__attribute__((constructor)) static void registry_init(void)
{
    pthread_mutex_lock(&R.mu);
    if (R.dirfd < 0) open_dir_locked();
    pthread_mutex_unlock(&R.mu);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

__attribute__((destructor)) static void registry_fini(void)
{
    prune_at_exit();
}

/* Makes the lines this process's (a fork without atfork handlers: clone) and its identity
 * known. */
static void own_locked(void)
{
    pid_t me = getpid();
    if (R.pid == me) return;
    free_lines_locked();
    R.exists = 0;
    R.pid = me;
    uint32_t p32;
    uint64_t start = 0;
    if (ipcp__proc_self(&p32, &start) < 0) start = 0;
    R.start = start;
    R.pidns = ipcp__os_ns_inode("pid");
    snprintf(R.file, sizeof(R.file), IPCP_REGISTRY_PREFIX "%llu.%ld.%llu", R.pidns, (long)me,
             R.start);
}

static int find_locked(int kind, const char *name)
{
    for (size_t i = 0; i < R.n; i++)
        if (R.lines[i].kind == kind && strcmp(R.lines[i].name, name) == 0) return (int)i;
    return -1;
}

static void drop_locked(size_t i)
{
    free(R.lines[i].name);
    R.lines[i] = R.lines[--R.n];
}

/* Writes the whole entry from memory into <file>.tmp and renames it over <file>. */
static int rewrite_locked(void)
{
    int dfd = dirfd_locked();
    if (dfd < 0) return dfd;
    size_t cap = 128;
    for (size_t i = 0; i < R.n; i++)
        cap += strlen(R.lines[i].name) + 96;
    char *buf = malloc(cap);
    if (buf == NULL) return -ENOMEM;
    int len = snprintf(buf, cap, HEADER_TAG " %d pid=%ld start=%llu pidns=%llu uid=%u\n",
                       FORMAT_VERSION, (long)R.pid, R.start, R.pidns, (unsigned)geteuid());
    for (size_t i = 0; i < R.n && len >= 0; i++) {
        int n = format_line(&R.lines[i], buf + len, cap - (size_t)len);
        len = n < 0 ? -1 : len + n;
    }
    if (len < 0) {
        free(buf);
        return -ENAMETOOLONG;
    }
    char tmp[ENTRY_NAME_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, R.file);
    int rc = 0;
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) rc = -errno;
    if (rc == 0) {
        rc = ipcp__os_write_all(fd, buf, (size_t)len);
        if (close(fd) < 0 && rc == 0) rc = -errno;
    }
    if (rc == 0 && renameat(dfd, tmp, dfd, R.file) < 0) rc = -errno;
    if (rc < 0 && fd >= 0) unlinkat(dfd, tmp, 0);
    free(buf);
    if (rc == 0) R.exists = 1;
    return rc;
}

/* Appends line i with one write; falls back to a rewrite if the entry is missing or the write
 * was short. */
static int append_locked(size_t i)
{
    int dfd = dirfd_locked();
    if (dfd < 0) return dfd;
    if (!R.exists) return rewrite_locked();
    char line[PATH_MAX + 128];
    int len = format_line(&R.lines[i], line, sizeof(line));
    if (len < 0) return len;
    int fd = openat(dfd, R.file, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return rewrite_locked();
    /* the whole line; on a failure the file is rewritten from the lines in memory */
    int rc = ipcp__os_write_all(fd, line, (size_t)len);
    close(fd);
    return rc == 0 ? 0 : rewrite_locked();
}

/* Writes the entry after lines were dropped: removes the file with its last line. */
static int store_locked(void)
{
    if (R.n > 0) return rewrite_locked();
    if (!R.exists) return 0;
    int dfd = dirfd_locked();
    R.exists = 0;
    if (dfd < 0) return dfd;
    if (unlinkat(dfd, R.file, 0) < 0 && errno != ENOENT) return -errno;
    return 0;
}

/* Drops the path lines whose file is gone (the caller of ipcp_xport_fifo_create() unlinks it
 * with unlink(2), and nobody tells us). 1 if any was dropped. */
static int prune_paths_locked(void)
{
    int dropped = 0;
    for (size_t i = 0; i < R.n;) {
        struct stat st;
        const struct rline *l = &R.lines[i];
        if (l->kind == K_PATH && lstat(l->name, &st) < 0 && (errno == ENOENT || errno == ENOTDIR)) {
            drop_locked(i);
            dropped = 1;
            continue;
        }
        i++;
    }
    return dropped;
}

int ipcp_registry_add(const char *kind, const char *name)
{
    int k = kind_of(kind);
    if (k < 0) return -EINVAL;
    char canon[PATH_MAX];
    int rc = canon_name(k, name, canon, sizeof(canon));
    if (rc < 0) return rc;
    struct rline l = {.kind = k};
    if (k == K_MQ || ipcp__reg_is_sysv(k)) l.ipcns = ipcp__os_ns_inode("ipc");
    l.has_ident = object_ident(k, canon, &l.dev, &l.ino) == 0;
    l.name = strdup(canon);
    if (l.name == NULL) return -ENOMEM;

    pthread_mutex_lock(&R.mu);
    own_locked();
    if (find_locked(k, canon) >= 0) {
        pthread_mutex_unlock(&R.mu);
        free(l.name);
        return 0;
    }
    if (R.n == R.cap) {
        size_t cap = R.cap ? R.cap * 2 : 8;
        struct rline *nl = realloc(R.lines, cap * sizeof(*nl));
        if (nl == NULL) {
            pthread_mutex_unlock(&R.mu);
            free(l.name);
            return -ENOMEM;
        }
        R.lines = nl;
        R.cap = cap;
    }
    R.lines[R.n++] = l;
    rc = prune_paths_locked() ? rewrite_locked() : append_locked(R.n - 1);
    pthread_mutex_unlock(&R.mu);
    return rc;
}

int ipcp_registry_remove(const char *kind, const char *name)
{
    int k = kind_of(kind);
    if (k < 0) return -EINVAL;
    char canon[PATH_MAX];
    int rc = canon_name(k, name, canon, sizeof(canon));
    if (rc < 0) return rc;
    pthread_mutex_lock(&R.mu);
    if (R.pid != getpid()) { /* nothing registered by this process */
        pthread_mutex_unlock(&R.mu);
        return -ENOENT;
    }
    int i = find_locked(k, canon);
    if (i < 0) {
        pthread_mutex_unlock(&R.mu);
        return -ENOENT;
    }
    drop_locked((size_t)i);
    prune_paths_locked();
    rc = store_locked();
    pthread_mutex_unlock(&R.mu);
    return rc;
}

int ipcp_registry_set_dir(const char *dir)
{
    if (dir == NULL) dir = IPCP_REGISTRY_DIR;
    if (dir[0] != '/' || strlen(dir) >= sizeof(R.dir)) return -EINVAL;
    pthread_mutex_lock(&R.mu);
    if (R.pid == getpid() && R.n > 0) {
        pthread_mutex_unlock(&R.mu);
        return -EBUSY;
    }
    int old = dirfd_locked();
    if (old >= 0) close(old);
    strcpy(R.dir, dir);
    R.have_dir = 0;
    R.exists = 0;
    int rc = open_dir_locked();
    pthread_mutex_unlock(&R.mu);
    return rc < 0 ? rc : 0;
}

const char *ipcp_registry_dir(void)
{
    return R.dir;
}

int ipcp__reg_dup_dir(void)
{
    pthread_mutex_lock(&R.mu);
    int dfd = dirfd_locked();
    if (dfd >= 0) {
        int d = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        dfd = d < 0 ? -errno : d;
    }
    pthread_mutex_unlock(&R.mu);
    return dfd;
}

/* ==== objects: does it still exist, is it the registered one, remove it ==================== */

union semun_arg {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

static int same_file(const struct rline *l, const struct owner *o, const struct stat *st)
{
    if (l->has_ident &&
        ((unsigned long long)st->st_dev != l->dev || (unsigned long long)st->st_ino != l->ino))
        return 0;
    return o == NULL || st->st_uid == o->uid;
}

static int sysv_check(const struct rline *l, const struct owner *o, int id, int *err,
                      long long *ctime)
{
    int rc;
    uid_t cuid = 0, uid = 0;
    time_t made = 0;
    if (l->kind == K_SYSV_SEM) {
        struct semid_ds ds;
        union semun_arg a = {.buf = &ds};
        rc = semctl(id, 0, IPC_STAT, a);
        if (rc == 0) {
            cuid = ds.sem_perm.cuid;
            uid = ds.sem_perm.uid;
            made = ds.sem_ctime;
        }
    } else if (l->kind == K_SYSV_SHM) {
        struct shmid_ds ds;
        rc = shmctl(id, IPC_STAT, &ds);
        if (rc == 0) {
            cuid = ds.shm_perm.cuid;
            uid = ds.shm_perm.uid;
            made = ds.shm_ctime;
            /* shm remembers its creator: a reused id is somebody else's segment */
            if (o != NULL && o->pid > 0 && (long)ds.shm_cpid != o->pid) return P_OTHER;
            /* marked removed (IPC_RMID once both sides attached): it goes with its last detach */
            if (ds.shm_perm.mode & SHM_DEST) return P_GONE;
        }
    } else {
        struct msqid_ds ds;
        rc = msgctl(id, IPC_STAT, &ds);
        if (rc == 0) {
            cuid = ds.msg_perm.cuid;
            uid = ds.msg_perm.uid;
            made = ds.msg_ctime;
        }
    }
    if (rc < 0) {
        if (errno == EINVAL || errno == EIDRM) return P_GONE;
        *err = errno;
        return P_ERR;
    }
    if (o != NULL && cuid != o->uid && uid != o->uid) return P_OTHER;
    *ctime = (long long)made;
    return P_SAME;
}

int ipcp__reg_probe(const struct rline *l, const struct owner *o, int *err, long long *ctime)
{
    struct stat st;
    char p[PATH_MAX];
    *err = 0;
    *ctime = -1;
    switch (l->kind) {
    case K_SHM:
    case K_SEM:
    case K_PATH:
        if (l->kind != K_PATH && shm_path(l->kind, l->name, p, sizeof(p)) < 0) return P_GONE;
        if (lstat(l->kind == K_PATH ? l->name : p, &st) < 0) {
            if (errno == ENOENT || errno == ENOTDIR) return P_GONE;
            *err = errno;
            return P_ERR;
        }
        *ctime = (long long)st.st_ctime;
        return same_file(l, o, &st) ? P_SAME : P_OTHER;
    case K_MQ: {
        mqd_t q = mq_open(l->name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (q == (mqd_t)-1) {
            if (errno == ENOENT) return P_GONE;
            *err = errno;
            return P_ERR;
        }
        int rc = fstat((int)q, &st);
        int e = errno;
        mq_close(q);
        if (rc < 0) {
            *err = e;
            return P_ERR;
        }
        *ctime = (long long)st.st_ctime;
        return same_file(l, o, &st) ? P_SAME : P_OTHER;
    }
    case K_SYSV_SEM:
    case K_SYSV_SHM:
    case K_SYSV_MSG:
        return sysv_check(l, o, atoi(l->name), err, ctime);
    default:
        return P_SAME;
    }
}

int ipcp__reg_remove_object(const struct rline *l, const struct owner *o)
{
    char p[PATH_MAX];
    switch (l->kind) {
    case K_SHM:
    case K_SEM:
        if (shm_path(l->kind, l->name, p, sizeof(p)) < 0) return -ENAMETOOLONG;
        return unlink(p) < 0 ? -errno : 0;
    case K_MQ:
        return mq_unlink(l->name) < 0 ? -errno : 0;
    case K_SYSV_SEM:
    case K_SYSV_SHM:
    case K_SYSV_MSG: {
        int id = atoi(l->name);
        int rc = l->kind == K_SYSV_SEM   ? semctl(id, 0, IPC_RMID)
                 : l->kind == K_SYSV_SHM ? shmctl(id, IPC_RMID, NULL)
                                         : msgctl(id, IPC_RMID, NULL);
        if (rc == 0) return 0;
        return errno == EINVAL || errno == EIDRM ? -ENOENT : -errno;
    }
    case K_PATH: {
        /* Check and unlink inside one open directory: a swapped parent cannot redirect us. */
        if (strlen(l->name) >= sizeof(p)) return -ENAMETOOLONG;
        strcpy(p, l->name);
        char *slash = strrchr(p, '/'); /* an absolute path: there is one */
        const char *base = l->name + (slash - p) + 1;
        slash[slash == p ? 1 : 0] = '\0';
        int dfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) return errno == ENOTDIR ? -ENOENT : -errno;
        struct stat st;
        int rc = 0;
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
            rc = -errno;
        else if (!same_file(l, o, &st))
            rc = -EEXIST; /* replaced between the probe and now */
        else if (S_ISDIR(st.st_mode))
            rc = -EISDIR;
        else if (unlinkat(dfd, base, 0) < 0)
            rc = -errno;
        close(dfd);
        return rc;
    }
    default:
        return -EINVAL;
    }
}

static void prune_at_exit(void)
{
    if (pthread_mutex_trylock(&R.mu) != 0) return; /* another thread is writing: leave it */
    if (R.pid == getpid() && R.n > 0) {
        int dropped = 0;
        for (size_t i = 0; i < R.n;) {
            int err;
            long long made;
            int r = R.lines[i].kind == K_STEM ? P_SAME
                                              : ipcp__reg_probe(&R.lines[i], NULL, &err, &made);
            if (r == P_GONE || r == P_OTHER) {
                drop_locked(i);
                dropped = 1;
                continue;
            }
            i++;
        }
        if (dropped) store_locked();
    }
    pthread_mutex_unlock(&R.mu);
}

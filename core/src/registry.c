/* registry.c - the registry of created OS objects and the clean-up of dead owners' objects; see
 * registry.h for the file format and the rules.
 *
 * Writing side: one mutex guards this process's in-memory copy of its entry (the lines), which
 * is the truth: an added line is appended to the file, a removed one makes the whole entry be
 * written anew from memory into "<entry>.tmp" and renamed over the entry (atomic: a reader sees
 * the old or the new entry, never a half-written one; a crash leaves at most the .tmp, which
 * clean removes with its dead owner, or reads as the entry when it is alone: the first write).
 * Nothing here is fatal to the caller's object.
 *
 * Cleaning side: read every entry, decide its owner's state, then act on the dead owners' lines
 * only, after checking each object still is the one registered. */
#include <dirent.h>
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
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "os.h"
#include "proc.h"
#include "ipcproof/registry.h"
#include "ipcproof/shm.h"

#define SHM_DIR         "/dev/shm" /* where glibc keeps POSIX shm objects and semaphores */
#define MQ_DIR          "/dev/mqueue"
#define MQUEUE_FS_MAGIC 0x19800202 /* statfs f_type of an mqueue file system */
#define HEADER_TAG      "ipcp-registry"
#define FORMAT_VERSION  1
#define TMP_SUFFIX      ".tmp"
#define ENTRY_NAME_MAX  96
#define ENTRY_SIZE_MAX  (1 << 20) /* a larger entry is not ours */
#define LINE_KIND_ENTRY "entry"

/* ==== kinds, names, lines ================================================================== */

enum kind { K_SHM, K_MQ, K_SEM, K_SYSV_SEM, K_SYSV_SHM, K_SYSV_MSG, K_PATH, K_STEM, K_COUNT };

static const char *const kind_names[K_COUNT] = {"shm",      "mq",       "sem",  "sysv-sem",
                                                "sysv-shm", "sysv-msg", "path", "stem"};

static int kind_of(const char *s)
{
    for (int k = 0; s != NULL && k < K_COUNT; k++)
        if (strcmp(s, kind_names[k]) == 0) return k;
    return -1;
}

static int is_sysv(int k)
{
    return k == K_SYSV_SEM || k == K_SYSV_SHM || k == K_SYSV_MSG;
}

static int stem_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* One registered object. ipcns/dev/ino are 0 when unknown. */
struct rline {
    int kind;
    unsigned long long ipcns;
    int has_ident;
    unsigned long long dev, ino;
    char *name;
};

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

static unsigned long long ns_inode(const char *which)
{
    char p[48];
    snprintf(p, sizeof(p), "/proc/self/ns/%s", which);
    struct stat st;
    return stat(p, &st) == 0 ? (unsigned long long)st.st_ino : 0;
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
    int n = snprintf(buf, cap, "%s %llu %s %s\n", kind_names[l->kind], l->ipcns, ident, l->name);
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

/* Parses one object line (without its '\n') into l; l->name points into the line. */
static int parse_line(char *s, struct rline *l)
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

/* "<pidns>.<pid>.<start>" after the prefix, optionally followed by ".tmp". */
static int parse_entry_name(const char *file, unsigned long long *pidns, long *pid,
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
    R.pidns = ns_inode("pid");
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
    if (k == K_MQ || is_sysv(k)) l.ipcns = ns_inode("ipc");
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

/* ==== objects: does it still exist, is it the registered one, remove it ==================== */

enum { P_SAME, P_GONE, P_OTHER, P_ERR };

/* The owner an object must belong to; NULL: any (this process pruning its own lines). */
struct owner {
    long pid;
    uid_t uid;
};

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

/* Is the object under l's name still the registered one? P_SAME (with *ctime, when it was made
 * or last changed, as the kernel keeps it: st_ctime, the SysV ctime), P_GONE, P_OTHER, or P_ERR
 * with *err (it could not be looked at). */
static int probe(const struct rline *l, const struct owner *o, int *err, long long *ctime)
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

/* Removes the object (probe() said P_SAME): 0 or -errno; -ENOENT means it went meanwhile. */
static int remove_object(const struct rline *l, const struct owner *o)
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
            int r = R.lines[i].kind == K_STEM ? P_SAME : probe(&R.lines[i], NULL, &err, &made);
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
        if (parse_line(s, &l) == 0) {
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
                report(c, IPCP_REG_KEPT_OTHER, kind_names[kind], name, other ? other : e->pid, 0,
                       e->file);
                continue;
            }
            if (c->flags & IPCP_REG_CLEAN_DRY_RUN) {
                report(c, IPCP_REG_WOULD_REMOVE, kind_names[kind], name, e->pid, 0, e->file);
                continue;
            }
            int rc = kind == K_MQ ? (mq_unlink(name) < 0 ? -errno : 0)
                                  : (unlinkat(dfd, dn, 0) < 0 ? -errno : 0);
            if (rc == 0)
                report(c, IPCP_REG_REMOVED, kind_names[kind], name, e->pid, 0, e->file);
            else if (rc != -ENOENT) {
                report(c, IPCP_REG_FAILED, kind_names[kind], name, e->pid, -rc, e->file);
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
        const char *kn = kind_names[l->kind];
        if (l->kind == K_STEM) {
            clean_stem(c, e, l->name, &failed);
            continue;
        }
        long other = listed(c, l->kind, l->name, 0);
        if (other != 0) {
            report(c, IPCP_REG_KEPT_OTHER, kn, l->name, other, 0, e->file);
            continue;
        }
        if ((l->kind == K_MQ || is_sysv(l->kind)) && (l->ipcns == 0 || l->ipcns != c->ipcns)) {
            report(c, IPCP_REG_OTHER_IPCNS, kn, l->name, e->pid, 0, e->file);
            continue;
        }
        int err;
        long long made;
        int r = probe(l, &o, &err, &made);
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
            int rc = remove_object(l, &o);
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
            report(c, IPCP_REG_UNCHECKED, kind_names[kind], name, pid, bad->err, bad->file);
        else
            report(c, IPCP_REG_NO_ENTRY, kind_names[kind], name, pid, 0, NULL);
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
    report(c, IPCP_REG_NO_ENTRY, kind_names[kind], name, pid, 0, NULL);
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
            parse_entry_name(de->d_name, &e.pidns, &e.pid, &e.start, &e.side) < 0)
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
    c.pidns = ns_inode("pid");
    c.ipcns = ns_inode("ipc");
    uint32_t p32;
    uint64_t start = 0;
    if (ipcp__proc_self(&p32, &start) < 0) start = 0;
    c.start = start;

    pthread_mutex_lock(&R.mu);
    int dfd = dirfd_locked();
    if (dfd >= 0) {
        int d = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        dfd = d < 0 ? -errno : d;
    }
    pthread_mutex_unlock(&R.mu);
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
                (!is_sysv(l->kind) || (l->ipcns != 0 && l->ipcns == c.ipcns)) &&
                probe(l, NULL, &err, &made) == P_SAME)
                c.made = made;
            report(&c, st, kind_names[l->kind], l->name, e->pid,
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

/* shm.c - names, POSIX shm objects, memfds, SysV segments and the clean-up of crashed runs; see
 * shm.h.
 *
 * This is a thin I/O layer: every failure path closes what it opened and unlinks what it
 * created, so a failed call leaves nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "deadline.h"
#include "os.h"
#include "splitmix.h"
#include "ipcproof/err.h"
#include "ipcproof/registry.h"
#include "ipcproof/shm.h"

static int valid_kind(const char *kind)
{
    if (kind == NULL) return 0;
    size_t n = strlen(kind);
    if (n == 0 || n > IPCP_SHM_KIND_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((kind[i] >= 'a' && kind[i] <= 'z') || (kind[i] >= '0' && kind[i] <= '9'))) return 0;
    return 1;
}

static int stem_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int valid_stem(const char *stem)
{
    if (stem == NULL) return 0;
    size_t n = strlen(stem);
    if (n == 0 || n > IPCP_SHM_STEM_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!stem_char(stem[i])) return 0;
    return 1;
}

/* 64 random bits. getrandom() without GRND_NONBLOCK could block early at boot; the fallback
 * only has to make names unlikely to collide, since O_EXCL catches a collision anyway. */
static uint64_t random64(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v)) return v;
    static _Atomic uint64_t counter;
    return splitmix64_mix((uint64_t)ipcp__now_ns() ^ ((uint64_t)getpid() << 32) ^
                          ipcp_fetch_add_relaxed64(&counter, SPLITMIX64_GAMMA));
}

static int format_name(char *buf, size_t cap, const char *kind, const char *rest)
{
    int n = snprintf(buf, cap, "/ipcp.%s.%ld.%s", kind, (long)getpid(), rest);
    if (n < 0) return -EINVAL;
    if ((size_t)n >= cap || n >= IPCP_SHM_NAME_MAX) {
        if (cap > 0) buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    return n;
}

int ipcp_shm_name(char *buf, size_t cap, const char *kind)
{
    if (!valid_kind(kind)) return -EINVAL;
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)random64());
    return format_name(buf, cap, kind, hex);
}

int ipcp_shm_name_stem(char *buf, size_t cap, const char *kind, const char *stem)
{
    if (!valid_kind(kind) || !valid_stem(stem)) return -EINVAL;
    return format_name(buf, cap, kind, stem);
}

int ipcp_shm_parse_name(const char *name, char *kind, size_t kind_cap, long *pid)
{
    if (name == NULL) return -EINVAL;
    if (name[0] == '/') name++;
    if (strncmp(name, "ipcp.", 5) != 0) return -EINVAL;
    const char *k = name + 5;
    size_t kn = 0;
    while ((k[kn] >= 'a' && k[kn] <= 'z') || (k[kn] >= '0' && k[kn] <= '9'))
        kn++;
    if (kn == 0 || kn > IPCP_SHM_KIND_MAX || k[kn] != '.') return -EINVAL;
    const char *p = k + kn + 1;
    size_t pn = 0;
    long v = 0;
    while (p[pn] >= '0' && p[pn] <= '9') {
        if (pn >= 10) return -EINVAL;
        v = v * 10 + (p[pn] - '0');
        pn++;
    }
    if (pn == 0 || p[pn] != '.' || v <= 0 || v > INT_MAX) return -EINVAL;
    if (!valid_stem(p + pn + 1)) return -EINVAL;
    if (kind != NULL) {
        if (kind_cap <= kn) return -ENAMETOOLONG;
        memcpy(kind, k, kn);
        kind[kn] = '\0';
    }
    if (pid != NULL) *pid = v;
    return 0;
}

static void shm_reset(struct ipcp_shm *m)
{
    memset(m, 0, sizeof(*m));
    m->fd = -1;
    m->shmid = -1;
}

/* Unlinks m->name only if it still names the object we mapped (same device and inode): a name
 * that was unlinked and re-created by someone else is left alone. */
static int unlink_if_same(struct ipcp_shm *m)
{
    int fd = shm_open(m->name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return errno == ENOENT ? 0 : -errno;
    struct stat st;
    int same = fstat(fd, &st) == 0 && st.st_dev == m->dev && st.st_ino == m->ino;
    close(fd);
    if (!same) return 0;
    if (shm_unlink(m->name) < 0 && errno != ENOENT) return -errno;
    return 0;
}

static int map_fd(struct ipcp_shm *m, int fd, size_t size)
{
    void *a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (a == MAP_FAILED) return -errno;
    m->addr = a;
    m->size = size;
    return 0;
}

int ipcp_shm_create(struct ipcp_shm *m, const char *kind, const char *stem, size_t size)
{
    shm_reset(m);
    if (size == 0 || size > (size_t)INT64_MAX) return -EINVAL;
    int fd = -1;
    for (int attempt = 0; attempt < 4; attempt++) {
        int rc = stem != NULL ? ipcp_shm_name_stem(m->name, sizeof(m->name), kind, stem)
                              : ipcp_shm_name(m->name, sizeof(m->name), kind);
        if (rc < 0) return rc;
        fd = shm_open(m->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST || stem != NULL) break;
    }
    if (fd < 0) {
        int err = -errno;
        shm_reset(m);
        return err;
    }
    int rc = 0;
    struct stat st;
    if (ftruncate(fd, (off_t)size) < 0 || fstat(fd, &st) < 0) rc = -errno;
    if (rc == 0) rc = map_fd(m, fd, size);
    if (rc < 0) {
        shm_unlink(m->name); /* created by us a moment ago, under O_EXCL */
        close(fd);
        shm_reset(m);
        return rc;
    }
    close(fd); /* the mapping keeps the object alive */
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->owner = 1;
    m->linked = 1;
    (void)ipcp_registry_add("shm", m->name); /* best effort: never fails the creation */
    return 0;
}

int ipcp_shm_create_memfd(struct ipcp_shm *m, const char *kind, size_t size)
{
    shm_reset(m);
    if (size == 0 || size > (size_t)INT64_MAX) return -EINVAL;
    char label[IPCP_SHM_NAME_MAX];
    int rc = ipcp_shm_name(label, sizeof(label), kind);
    if (rc < 0) return rc;
    int fd = memfd_create(label + 1, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -errno;
    rc = 0;
    if (ftruncate(fd, (off_t)size) < 0) rc = -errno;
    /* Sealed: no process holding the fd can shrink the object under a mapping (SIGBUS). */
    if (rc == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        rc = -errno;
    if (rc == 0) rc = map_fd(m, fd, size);
    if (rc < 0) {
        close(fd);
        shm_reset(m);
        return rc;
    }
    m->fd = fd;
    m->backend = IPCP_SHM_MEMFD;
    m->owner = 1;
    return 0;
}

static int attach_fd(struct ipcp_shm *m, int fd, size_t min_size, size_t max_size, struct stat *st)
{
    if (fstat(fd, st) < 0) return -errno;
    if (st->st_size < 0 || (uint64_t)st->st_size < min_size || (uint64_t)st->st_size > max_size)
        return -IPCP_E_LAYOUT;
    if (st->st_size == 0) return -IPCP_E_LAYOUT;
    return map_fd(m, fd, (size_t)st->st_size);
}

int ipcp_shm_attach(struct ipcp_shm *m, const char *name, size_t min_size, size_t max_size)
{
    shm_reset(m);
    if (ipcp_shm_parse_name(name, NULL, 0, NULL) < 0 || name[0] != '/' ||
        strlen(name) >= sizeof(m->name))
        return -EINVAL;
    int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct stat st;
    int rc = attach_fd(m, fd, min_size, max_size, &st);
    close(fd);
    if (rc < 0) {
        shm_reset(m);
        return rc;
    }
    memcpy(m->name, name, strlen(name) + 1);
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->linked = 1;
    return 0;
}

int ipcp_shm_attach_fd(struct ipcp_shm *m, int fd, size_t min_size, size_t max_size)
{
    shm_reset(m);
    if (fd < 0) return -EBADF;
    struct stat st;
    int rc = attach_fd(m, fd, min_size, max_size, &st);
    if (rc < 0) shm_reset(m);
    return rc;
}

/* ---- System V segments ---------------------------------------------------------------- */

void ipcp_shm_sysv_limits_read(struct ipcp_shm_sysv_limits *l)
{
    long page = sysconf(_SC_PAGESIZE);
    l->page = page > 0 ? (uint64_t)page : 4096;
    /* the kernel's defaults (SHMMAX, SHMALL, SHMMNI of include/uapi/linux/shm.h) */
    l->shmmax = ipcp__proc_u64("/proc/sys/kernel/shmmax", UINT64_MAX - (1ull << 24));
    l->shmall = ipcp__proc_u64("/proc/sys/kernel/shmall", UINT64_MAX - (1ull << 24));
    l->shmmni = ipcp__proc_u64("/proc/sys/kernel/shmmni", 4096);
    struct shm_info info;
    if (shmctl(0, SHM_INFO, (struct shmid_ds *)(void *)&info) >= 0) {
        l->used_pages = (uint64_t)info.shm_tot;
        l->used_ids = (uint64_t)info.used_ids;
    } else {
        l->used_pages = l->used_ids = 0;
    }
}

int ipcp_shm_sysv_check(const struct ipcp_shm_sysv_limits *l, size_t size)
{
    if (size == 0) return -EINVAL;
    if ((uint64_t)size > l->shmmax) return -IPCP_E_SHMMAX;
    if (l->used_ids >= l->shmmni) return -IPCP_E_SHMMNI;
    uint64_t page = l->page != 0 ? l->page : 4096;
    uint64_t pages = (uint64_t)size / page + ((uint64_t)size % page != 0);
    if (l->used_pages > l->shmall || pages > l->shmall - l->used_pages) return -IPCP_E_SHMALL;
    return 0;
}

static void sysv_register(int add, int id)
{
    char name[16];
    snprintf(name, sizeof(name), "%d", id);
    /* best effort: never fails the creation */
    (void)(add ? ipcp_registry_add("sysv-shm", name) : ipcp_registry_remove("sysv-shm", name));
}

int ipcp_shm_create_sysv(struct ipcp_shm *m, key_t key, size_t size)
{
    shm_reset(m);
    if (size == 0 || size > (size_t)INT64_MAX) return -EINVAL;
    int id = shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
    if (id < 0) {
        int err = -errno;
        if (err == -EINVAL || err == -ENOSPC) {
            /* which limit: shmmax (EINVAL), shmmni or shmall (ENOSPC) */
            struct ipcp_shm_sysv_limits l;
            ipcp_shm_sysv_limits_read(&l);
            int why = ipcp_shm_sysv_check(&l, size);
            if (why < 0) return why; /* else the usage changed since: the kernel's word */
        }
        return err;
    }
    sysv_register(1, id);
    void *a = shmat(id, NULL, 0);
    if (a == (void *)-1) {
        int err = -errno;
        shmctl(id, IPC_RMID, NULL); /* created by us a moment ago, under IPC_EXCL */
        sysv_register(0, id);
        return err;
    }
    m->addr = a;
    m->size = size;
    m->backend = IPCP_SHM_SYSV;
    m->shmid = id;
    m->owner = 1;
    m->linked = 1;
    return 0;
}

/* The segment's description, if this user owns and created it. */
static int sysv_stat(int id, struct shmid_ds *ds)
{
    if (shmctl(id, IPC_STAT, ds) < 0) return -errno;
    uid_t me = geteuid();
    if (ds->shm_perm.uid != me || ds->shm_perm.cuid != me) return -EPERM;
    return 0;
}

int ipcp_shm_attach_sysv(struct ipcp_shm *m, int shmid, size_t min_size, size_t max_size)
{
    shm_reset(m);
    if (shmid < 0) return -EINVAL;
    struct shmid_ds ds;
    int rc = sysv_stat(shmid, &ds);
    if (rc < 0) return rc;
    if (ds.shm_segsz < min_size || ds.shm_segsz > max_size || ds.shm_segsz == 0)
        return -IPCP_E_LAYOUT;
    void *a = shmat(shmid, NULL, 0);
    if (a == (void *)-1) return -errno;
    /* Attached, the id cannot go to another segment: check that it still is the one measured. */
    struct shmid_ds now;
    rc = sysv_stat(shmid, &now);
    if (rc == 0 && (now.shm_segsz != ds.shm_segsz || now.shm_cpid != ds.shm_cpid ||
                    now.shm_ctime != ds.shm_ctime))
        rc = -IPCP_E_LAYOUT;
    if (rc < 0) {
        shmdt(a);
        return rc;
    }
    m->addr = a;
    m->size = ds.shm_segsz;
    m->backend = IPCP_SHM_SYSV;
    m->shmid = shmid;
    m->linked = 1;
    return 0;
}

int ipcp_shm_nattch(const struct ipcp_shm *m)
{
    if (m->backend != IPCP_SHM_SYSV || m->shmid < 0) return -EINVAL;
    struct shmid_ds ds;
    if (shmctl(m->shmid, IPC_STAT, &ds) < 0) return -errno;
    return ds.shm_nattch > INT_MAX ? INT_MAX : (int)ds.shm_nattch;
}

/* IPC_RMID while we are attached: the id still names our segment. */
static int sysv_remove(struct ipcp_shm *m)
{
    if (shmctl(m->shmid, IPC_RMID, NULL) < 0 && errno != EINVAL && errno != EIDRM) return -errno;
    return 0;
}

/* ---- all backends ------------------------------------------------------------------------ */

int ipcp_shm_unlink(struct ipcp_shm *m)
{
    if (!m->linked) return 0;
    if (m->backend == IPCP_SHM_SYSV) {
        m->linked = 0;
        int rc = sysv_remove(m);
        if (m->owner) sysv_register(0, m->shmid); /* nothing left to clean after a crash */
        return rc;
    }
    if (m->name[0] == '\0') return 0;
    m->linked = 0;
    int rc = unlink_if_same(m);
    if (m->owner) (void)ipcp_registry_remove("shm", m->name);
    return rc;
}

void ipcp_shm_close(struct ipcp_shm *m)
{
    if (m->backend == IPCP_SHM_SYSV) {
        if (m->owner && m->linked) sysv_remove(m); /* before the detach: the id is still ours */
        if (m->addr != NULL) shmdt(m->addr);
        if (m->owner && m->shmid >= 0) sysv_register(0, m->shmid);
        shm_reset(m);
        return;
    }
    if (m->addr != NULL) munmap(m->addr, m->size);
    if (m->fd >= 0) close(m->fd);
    if (m->owner && m->linked && m->name[0] != '\0') unlink_if_same(m);
    /* Ours is gone from the name either way (unlinked now, earlier, or by the peer). */
    if (m->owner && m->name[0] != '\0') (void)ipcp_registry_remove("shm", m->name);
    shm_reset(m);
}

/* The compatibility form of ipcp_registry_clean(): only the objects of dead owners, reported
 * the old way (name as listed in /dev/shm, removed 1 / 0 in a dry run / -errno). */
struct compat_clean {
    void (*cb)(const char *name, long pid, int removed, void *arg);
    void *arg;
    int found;
};

static void compat_item(const struct ipcp_registry_item *it, void *arg)
{
    struct compat_clean *c = arg;
    int removed;
    if (it->status == IPCP_REG_REMOVED)
        removed = 1;
    else if (it->status == IPCP_REG_WOULD_REMOVE)
        removed = 0;
    else if (it->status == IPCP_REG_FAILED && strcmp(it->kind, "entry") != 0)
        removed = -it->err;
    else
        return;
    c->found++;
    if (c->cb == NULL) return;
    char name[PATH_MAX];
    int posix = strcmp(it->kind, "shm") == 0 || strcmp(it->kind, "mq") == 0;
    if (strcmp(it->kind, "sem") == 0)
        snprintf(name, sizeof(name), "sem.%s", it->name + 1);
    else
        snprintf(name, sizeof(name), "%s", posix ? it->name + 1 : it->name);
    c->cb(name, it->pid, removed, c->arg);
}

int ipcp_shm_clean(int dry_run, void (*cb)(const char *name, long pid, int removed, void *arg),
                   void *arg)
{
    struct compat_clean c = {.cb = cb, .arg = arg, .found = 0};
    unsigned flags = IPCP_REG_CLEAN_REGISTERED_ONLY | (dry_run ? IPCP_REG_CLEAN_DRY_RUN : 0);
    int rc = ipcp_registry_clean(flags, compat_item, &c, NULL);
    return rc < 0 ? rc : c.found;
}

/* shm.h - named OS objects of libipcproof: the naming rule, POSIX shared memory objects and
 * memfds, and the clean-up of objects left behind by crashed runs.
 *
 * Naming: every named OS object the library creates (shm objects, message queues) is called
 *     /ipcp.<kind>.<creator pid>.<16 hex digits from getrandom>    e.g. /ipcp.ring.1234.9f3a...
 * or, when the caller supplies a stem (the stress plugin ABI hands out a run_id),
 *     /ipcp.<kind>.<creator pid>.<stem>
 * <kind> is [a-z0-9]{1,16}; <stem> is [A-Za-z0-9_-]{1,64}. Neither contains a '.', so the pid
 * can always be parsed back. Who created an object, and whether that process is dead, is
 * recorded in the registry (registry.h), which ipcp_shm_clean() consults.
 *
 * Objects: ipcp_shm_create() makes a new object with O_CREAT|O_EXCL, mode 0600, sizes it with
 * ftruncate, maps it MAP_SHARED and records it in the registry (ipcp_shm_close() or the
 * creator's ipcp_shm_unlink() drops it again); ipcp_shm_attach() maps an existing one after
 * checking its size; ipcp_shm_create_memfd() is the nameless alternative for related processes
 * (the fd is inherited over fork or passed with SCM_RIGHTS and mapped with
 * ipcp_shm_attach_fd()). A memfd
 * is sealed against shrinking and growing, so no peer can make the mapping raise SIGBUS; a POSIX
 * shm object cannot be sealed: a peer with write access could truncate it.
 *
 * System V segments (backend IPCP_SHM_SYSV): ipcp_shm_create_sysv() makes a segment with
 * shmget(key, size, IPC_CREAT|IPC_EXCL|0600), key IPC_PRIVATE or one from ftok(3), attaches it
 * and records its id in the registry ("sysv-shm"); ipcp_shm_attach_sysv() attaches a segment by
 * id after checking its owner and size; ipcp_shm_unlink() marks it removed (IPC_RMID: it lives on
 * while attached, and vanishes with its last detach, crash or not); ipcp_shm_nattch() counts the
 * processes attached (the peer shows up as one more). A SysV segment cannot shrink either: its
 * size is fixed at creation. The kernel's limits (/proc/sys/kernel/shmmax, shmall, shmmni, per IPC
 * namespace) are reported as -IPCP_E_SHMMAX, -IPCP_E_SHMALL and -IPCP_E_SHMMNI.
 *
 * Every fd is O_CLOEXEC. Returns are >= 0 on success, -errno or -IPCP_E_* on failure; on failure
 * nothing is left behind (no fd, no mapping, no name). Functions on one struct ipcp_shm are not
 * thread-safe; distinct structs are independent. */
#ifndef IPCPROOF_SHM_H
#define IPCPROOF_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

#define IPCP_SHM_NAME_MAX 112 /* bytes for a name, NUL included */
#define IPCP_SHM_KIND_MAX 16
#define IPCP_SHM_STEM_MAX 64

/* Writes "/ipcp.<kind>.<pid>.<16 hex>" into buf (random part from getrandom(2)). Returns the
 * length, -EINVAL for a bad kind, -ENAMETOOLONG if cap is too small. */
int ipcp_shm_name(char *buf, size_t cap, const char *kind);
/* Same with the caller's stem instead of the random part: "/ipcp.<kind>.<pid>.<stem>". */
int ipcp_shm_name_stem(char *buf, size_t cap, const char *kind, const char *stem);
/* Parses a name made by the two functions above (with or without the leading '/'): 0 and *pid
 * (and the kind, if kind != NULL), or -EINVAL when it is not one of ours. */
int ipcp_shm_parse_name(const char *name, char *kind, size_t kind_cap, long *pid);

/* Where the memory of a mapping comes from. */
enum ipcp_shm_backend {
    IPCP_SHM_POSIX = 0, /* a named object in /dev/shm (shm_open) */
    IPCP_SHM_MEMFD = 1, /* a sealed memfd, shared by fd */
    IPCP_SHM_SYSV = 2,  /* a System V segment (shmget/shmat), shared by id */
};

/* One mapping of a shared memory object. All fields are read-only for the caller. */
struct ipcp_shm {
    void *addr;  /* mapping, MAP_SHARED (or shmat), read-write; NULL when closed */
    size_t size; /* bytes mapped (the object's size) */
    int backend; /* enum ipcp_shm_backend */
    int fd;      /* memfd kept open (for passing it on), else -1 */
    int shmid;   /* SysV segment id, else -1 */
    int owner;   /* created by this struct: ipcp_shm_close() unlinks the name (removes the
                    segment) if still linked */
    int linked;  /* the name (segment) may still exist and nobody of ours unlinked it yet */
    dev_t dev;   /* identity of the object, to never unlink a newer object of the same name */
    ino_t ino;
    char name[IPCP_SHM_NAME_MAX]; /* "/ipcp...." ("" for a memfd) */
};

/* Creates and maps a new POSIX shm object of `size` bytes (zero-filled) named after kind and
 * stem (stem NULL: a random name; on the unlikely EEXIST a new random name is tried). -EEXIST
 * when an object with the stem's name exists; -EINVAL for a bad kind/stem or size 0. */
int ipcp_shm_create(struct ipcp_shm *m, const char *kind, const char *stem, size_t size);
/* Creates a memfd (MFD_CLOEXEC, sealed: no shrink, no grow) of `size` bytes and maps it. m->fd
 * stays open until ipcp_shm_close(). */
int ipcp_shm_create_memfd(struct ipcp_shm *m, const char *kind, size_t size);
/* Opens the named object and maps it whole if its size lies in [min_size, max_size]
 * (-IPCP_E_LAYOUT otherwise). The name is not unlinked (see ipcp_shm_unlink). -ENOENT if it
 * does not exist. */
int ipcp_shm_attach(struct ipcp_shm *m, const char *name, size_t min_size, size_t max_size);
/* Maps an object given by fd (a memfd from a related process), same size check. The fd is not
 * taken over: the caller still closes it. */
int ipcp_shm_attach_fd(struct ipcp_shm *m, int fd, size_t min_size, size_t max_size);
/* System V limits of this IPC namespace, and what is in use now. */
struct ipcp_shm_sysv_limits {
    uint64_t shmmax;     /* largest segment, bytes (/proc/sys/kernel/shmmax) */
    uint64_t shmall;     /* all segments together, pages (/proc/sys/kernel/shmall) */
    uint64_t shmmni;     /* number of segments (/proc/sys/kernel/shmmni) */
    uint64_t used_pages; /* pages of all segments now (shmctl SHM_INFO; 0 if unknown) */
    uint64_t used_ids;   /* segments now (0 if unknown) */
    uint64_t page;       /* page size, bytes */
};
/* Reads the limits (kernel defaults where /proc cannot be read) and the usage. */
void ipcp_shm_sysv_limits_read(struct ipcp_shm_sysv_limits *l);
/* Would a new segment of `size` bytes break a limit? 0, -EINVAL (size 0), -IPCP_E_SHMMAX,
 * -IPCP_E_SHMMNI or -IPCP_E_SHMALL. No I/O. */
int ipcp_shm_sysv_check(const struct ipcp_shm_sysv_limits *l, size_t size);
/* Creates a SysV segment of `size` bytes (zero-filled) with key (IPC_PRIVATE, or from ftok:
 * -EEXIST when a segment has that key) and attaches it. A refusal by a kernel limit is
 * -IPCP_E_SHMMAX / -IPCP_E_SHMALL / -IPCP_E_SHMMNI. The segment stays until ipcp_shm_unlink()
 * or ipcp_shm_close() of this struct, or a clean after a crash (it is in the registry). */
int ipcp_shm_create_sysv(struct ipcp_shm *m, key_t key, size_t size);
/* Attaches segment shmid (from the peer: untrusted) if it belongs to this user (uid and creator
 * uid, else -EPERM) and its size lies in [min_size, max_size] (-IPCP_E_LAYOUT). -EINVAL (or
 * -EIDRM) for an id that names no segment. */
int ipcp_shm_attach_sysv(struct ipcp_shm *m, int shmid, size_t min_size, size_t max_size);
/* Processes attached to the segment now (>= 1 while m is), -EINVAL for another backend,
 * -errno. */
int ipcp_shm_nattch(const struct ipcp_shm *m);
/* Removes the name (once: later calls return 0). Mappings stay valid. A SysV segment is marked
 * removed (IPC_RMID): no new attach by key, gone with the last detach. 0 or -errno. */
int ipcp_shm_unlink(struct ipcp_shm *m);
/* Unmaps (detaches), closes the fd, and unlinks the name (removes the segment) if this struct
 * created it and it is still linked to the same object. Safe on a zeroed struct and when called
 * twice. */
void ipcp_shm_close(struct ipcp_shm *m);

/* Removes objects left behind by crashed runs: the compatibility form of
 * ipcp_registry_clean() (registry.h), which decides by the registry of created objects rather
 * than by the pid in the name: an object is removed only when its creator's registry entry says
 * the creator is dead (same PID namespace, pid gone or reused), and only if it still is the
 * object that was registered. Objects of live creators, of other PID namespaces, objects without
 * a registry entry and foreign names are never touched. This covers every registered kind
 * (shm objects, queues, named and SysV semaphores, FIFOs and socket files), with or without
 * /dev/mqueue mounted. With dry_run nothing is removed.
 * cb (may be NULL) is called once per object of a dead creator that exists, with its name
 * (shm objects and queues as in the directory, without the leading '/'; semaphores as
 * "sem.<name>"; SysV ids and paths as registered), the creator's pid and removed = 1
 * (removed), 0 (dry run) or -errno (removal failed). Returns the number of such objects, or
 * -errno if the registry cannot be read. For the objects it leaves alone and why, use
 * ipcp_registry_clean(). */
int ipcp_shm_clean(int dry_run, void (*cb)(const char *name, long pid, int removed, void *arg),
                   void *arg);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

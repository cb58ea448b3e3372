/* registry.h - which process created which OS object, and the clean-up of the objects whose
 * creator is dead (`ipcproof clean`).
 *
 * Entries: every process that creates a named OS object through libipcproof (POSIX shm objects,
 * message queues and named semaphores, SysV semaphore sets, FIFOs and unix socket files) records
 * it in a registry entry of its own, the file
 *     <dir>/ipcp-reg.<pidns>.<pid>.<start>      dir: IPCP_REGISTRY_DIR unless changed
 * where pidns is the inode of the creator's PID namespace (/proc/self/ns/pid) and start its start
 * time (field 22 of /proc/<pid>/stat): together they name one process, also across pid reuse
 * and containers that share /dev/shm. The file is mode 0600 and holds a header line and one line
 * per object that still exists:
 *     ipcp-registry 1 pid=<pid> start=<start> pidns=<inode> uid=<uid>
 *     <kind> <ipcns> <dev>:<ino> <name>
 * kind is one of "shm", "mq", "sem" (POSIX names "/..."), "sysv-sem", "sysv-shm", "sysv-msg"
 * (decimal ids), "path" (an absolute path: FIFOs, socket files) or "stem" (a string of
 * [A-Za-z0-9_-]{8,64}: every object whose name contains it belongs to this process, for a
 * supervisor whose plugins name their objects after its run id). ipcns is the IPC namespace
 * inode at registration (queues and SysV objects live there), dev:ino the identity of the
 * object ("-" when it has none), so an object that was unlinked and re-created under the same
 * name by someone else is never mistaken for the registered one. The name is the rest of the
 * line.
 *
 * Writing: a line is appended (O_APPEND, one short write) when the object is created, and the
 * entry is rewritten without it (a new file renamed over the old one: a reader never sees half
 * an entry) when the process destroys the object; the entry file is removed with its last line.
 * At a normal exit the lines of objects that no longer exist are dropped the same way (the
 * caller of ipcp_xport_fifo_create() unlinks the FIFO itself). A forked child starts an entry of
 * its own for the objects it creates. The directory is opened once when the library is loaded
 * and kept open (close-on-exec), so a process that later mounts a private /dev/shm (the stress
 * sandbox) keeps its entry where `ipcproof clean` outside will find it. If the program closes
 * that descriptor, the directory is opened again by path, but only used if it still is the same
 * directory: a process that lost the descriptor after a private /dev/shm was mounted over the
 * shared one registers nothing (an entry there would be out of clean's reach and vanish with
 * the mount; a supervisor that sandboxes its plugins registers its run id as a stem before).
 * The registry is best effort: when an entry cannot be written, object creation still succeeds
 * (and the object is then reported as having no entry).
 *
 * Cleaning: ipcp_registry_clean() reads every entry and decides its owner's state:
 *   alive    same PID namespace as the caller and /proc/<pid>/stat shows the recorded start
 *            time (a zombie counts as alive): its objects are kept;
 *   dead     same PID namespace, and the pid is gone or has another start time (reused): its
 *            objects are removed, then the entry;
 *   unknown  another PID namespace (or /proc unreadable): nothing can be checked, nothing is
 *            touched, the objects are reported.
 * An object of a dead owner is removed only when it still is the registered one: same dev:ino,
 * owned by the uid that owns the entry file (an entry forged by another user can only name that
 * user's own objects), not listed by a live entry, and, for queues and SysV objects, in the
 * caller's IPC namespace. Afterwards /dev/shm (and /dev/mqueue when an mqueue file system is
 * mounted there) is scanned for library-named objects ("ipcp.*", "sem.ipcp.*") that no entry
 * lists: without an entry the creator's namespace is unknown, so they are reported, never
 * removed. Queues without an entry cannot be listed at all when /dev/mqueue is not mounted (the
 * summary says so). Last, the SysV objects of the caller's IPC namespace that no entry lists
 * (/proc/sysvipc, what ipcs shows; the caller's own, or every one for root) are reported, never
 * removed, when no process they record is alive (shm: the creator and the last to attach or
 * detach, and none attached; msg: the last sender and receiver; sem: the last to operate on any
 * of its semaphores): the objects a crashed program may have left. The others are only counted
 * (sum->sysv_in_use). */
#ifndef IPCPROOF_REGISTRY_H
#define IPCPROOF_REGISTRY_H

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* the API of a -fvisibility=hidden build */

#define IPCP_REGISTRY_DIR      "/dev/shm"
#define IPCP_REGISTRY_PREFIX   "ipcp-reg." /* entry file names; never an "ipcp." object name */
#define IPCP_REGISTRY_STEM_MIN 8
#define IPCP_REGISTRY_STEM_MAX 64

/* Records an object this process created (see the kinds above; a relative path is made
 * absolute). Adding a line that is already there is a no-op. 0, -EINVAL (bad kind or name), or
 * -errno when the entry could not be written (the object itself is not affected). */
int ipcp_registry_add(const char *kind, const char *name);
/* Drops a line of this process (the object was destroyed); removes the entry with its last
 * line. 0, -ENOENT if this process has no such line, -errno. */
int ipcp_registry_remove(const char *kind, const char *name);
/* The directory of the entries. ipcp_registry_set_dir() changes it for this process and the
 * children it forks afterwards (a test keeps its entries apart from the machine's); NULL
 * restores IPCP_REGISTRY_DIR. -EBUSY once this process has lines in an entry. */
int ipcp_registry_set_dir(const char *dir);
const char *ipcp_registry_dir(void);

enum ipcp_registry_status {
    IPCP_REG_REMOVED,      /* owner dead: removed */
    IPCP_REG_WOULD_REMOVE, /* owner dead: would be removed (dry run) */
    IPCP_REG_GONE,         /* owner dead, the object no longer exists: nothing to do */
    IPCP_REG_KEPT_ALIVE,   /* owner alive: kept */
    IPCP_REG_KEPT_OTHER,   /* owner dead, but the name now is another object (other inode or
                              owner, or listed by a live entry): kept */
    IPCP_REG_OTHER_PIDNS,  /* owner in another PID namespace: not checked, kept */
    IPCP_REG_OTHER_IPCNS,  /* owner dead, queue or SysV object of another IPC namespace: not
                              reachable from here, not checked */
    IPCP_REG_NO_ENTRY,     /* library-named object, or SysV object nobody alive uses, that no
                              readable entry lists: not checked */
    IPCP_REG_UNCHECKED,    /* the entry (also: an object named with the pid of an entry that
                              cannot be read) or the owner's /proc could not be read (err): kept */
    IPCP_REG_FAILED,       /* owner dead, removing failed (err); the entry is kept for a retry */
    IPCP_REG_NSTATUS
};

/* Why an owner counts as dead. */
enum ipcp_registry_why {
    IPCP_REG_WHY_NONE = 0,   /* the owner is not dead (or unknown) */
    IPCP_REG_WHY_PID_GONE,   /* no process has the pid any more: the run ended */
    IPCP_REG_WHY_PID_REUSED, /* the pid is another process now (another start time) */
};

/* One object (or, with kind "entry", one registry entry file) and what clean did with it. */
struct ipcp_registry_item {
    enum ipcp_registry_status status;
    const char *kind;  /* a line's kind ("shm", ..., "path", "stem"), or "entry" for an entry
                          file that could not be read or removed */
    const char *name;  /* as registered ("/ipcp....", an id, a path, a stem), or the entry's
                          file name; objects found by a stem: as the kind names them */
    long pid;          /* owner pid: from the entry, or for IPCP_REG_NO_ENTRY the pid in the
                          name (of an unknown PID namespace); 0 when unknown */
    int err;           /* errno for IPCP_REG_FAILED and IPCP_REG_UNCHECKED, else 0 */
    const char *entry; /* the entry's file name, NULL for IPCP_REG_NO_ENTRY */
    enum ipcp_registry_why why; /* for the objects of a dead owner: why it is dead */
    long uid;        /* owner uid: the entry's (the object's for IPCP_REG_NO_ENTRY and objects
                        found by a stem); -1 when unknown */
    long long age_s; /* seconds since the object was made or last changed (st_ctime, the SysV
                        ctime); -1 when unknown (gone, not looked at: SysV objects of a live
                        or foreign owner, unreadable entries) */
    /* SysV objects without an entry (IPCP_REG_NO_ENTRY, kind "sysv-*"): what pid is (NULL for
     * the other items) - "creator" (shm), "last sender" (msg), "last user" (sem), or "none"
     * when the object records no process (pid 0) - and the processes attached (shm; -1 for
     * the others). */
    const char *pid_is;
    long attached;
};

struct ipcp_registry_summary {
    unsigned count[IPCP_REG_NSTATUS]; /* items reported per status */
    unsigned entries;                 /* entry files found */
    unsigned dead, alive, foreign;    /* ... by owner state (foreign: other PID namespace) */
    unsigned unknown;                 /* ... whose owner's /proc could not be read */
    unsigned unreadable;              /* ... that could not be read or parsed */
    int mq_listed;   /* 1: /dev/mqueue was listed for queues without an entry; 0: not mounted */
    int sysv_listed; /* 1: /proc/sysvipc was read for SysV objects without an entry */
    unsigned sysv_in_use; /* ... of those, the caller's that a live process uses: not listed */
};

#define IPCP_REG_CLEAN_DRY_RUN         1u /* remove nothing; report IPCP_REG_WOULD_REMOVE */
#define IPCP_REG_CLEAN_REGISTERED_ONLY 2u /* skip the scan for objects without an entry */

/* Removes the objects of dead owners and reports every registered object and every
 * library-named object without an entry through cb (may be NULL), once each. sum (may be NULL)
 * receives the counts. Returns 0, or -errno when the registry directory cannot be read (-ENOENT:
 * no registry directory, nothing registered). */
int ipcp_registry_clean(unsigned flags, void (*cb)(const struct ipcp_registry_item *it, void *arg),
                        void *arg, struct ipcp_registry_summary *sum);
/* "removed", "would remove", "already gone", "kept: owner alive", ... */
const char *ipcp_registry_status_text(enum ipcp_registry_status s);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

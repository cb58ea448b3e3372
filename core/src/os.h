/* os.h - the library's one layer over the operating system (os.c): numbers from /proc, the named
 * objects every protocol creates under one naming rule, process-shared pthread objects, the fork
 * generation. Not installed. */
#ifndef IPCP_OS_H
#define IPCP_OS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "deadline.h"

/* The EINTR policy, the same in every module:
 * 1. A call that waits (poll, futex, mq_timed*, sem_clockwait, pthread_mutex_clocklock,
 *    condvar waits, nanosleep, msgsnd/msgrcv with IPC_NOWAIT between naps) runs in a loop bounded
 *    by the caller's struct ipcp_deadline (deadline.h). EINTR means "look again": the loop
 *    re-checks its condition and the deadline and waits again for what is left. EINTR is never
 *    success and never reaches the caller (the caller gets its result or -ETIMEDOUT).
 * 2. Reads and writes of whole files (/proc, the registry) do not wait for a peer: they retry
 *    EINTR at once (ipcp__os_read_full, ipcp__os_write_all, ipcp__os_read_file).
 * 3. The io_ops of fdchan/xport (ipcp_io_default) return -EINTR as they get it: the layer above
 *    applies rule 1, so that a fault injector can interrupt any call. */

/* Shared futexes (no FUTEX_PRIVATE_FLAG: the word lives in memory other processes map).
 * Sleeps while *word == seen, at most timeout_ms: 0 (woken, or *word had changed),
 * -ETIMEDOUT, -EINTR (rule 1: the caller re-checks), -errno. */
int ipcp__os_futex_wait(void *word, uint32_t seen, int timeout_ms);
/* Wakes up to n sleepers on word (INT_MAX: all). */
void ipcp__os_futex_wake(void *word, int n);
/* A pidfd of pid (close-on-exec, as every pidfd): the fd, -ESRCH (no such process), -ENOSYS
 * (kernel or C library without pidfd_open) or -errno. */
int ipcp__os_pidfd_open(pid_t pid);
/* Waits until fd is ready for events (poll), EINTR retried until the deadline (rule 1): the
 * revents (> 0), -ETIMEDOUT or -errno. */
int ipcp__os_poll_until(int fd, short events, const struct ipcp_deadline *dl);

/* Reads until len bytes, EOF or an error other than EINTR: the bytes read (< len at EOF) or
 * -errno. */
ssize_t ipcp__os_read_full(int fd, void *buf, size_t len);
/* Writes all len bytes: 0 or -errno (-EIO if write returns 0). */
int ipcp__os_write_all(int fd, const void *buf, size_t len);
/* At most cap - 1 bytes of the file at path, NUL-terminated: the length or -errno. */
ssize_t ipcp__os_read_file(const char *path, char *buf, size_t cap);
/* State (field 3) and start time (field 22, clock ticks after boot) from /proc/<pid>/stat
 * (pid 0: /proc/self/stat): 0, -errno (-ENOENT: no such process) or -EBADMSG (unparsable). */
int ipcp__os_proc_stat(uint32_t pid, char *state, uint64_t *start);

/* A positive decimal number from a /proc file (a limit such as /proc/sys/kernel/shmmax,
 * which may exceed LONG_MAX); dflt when the file is missing or holds no such number. */
uint64_t ipcp__proc_u64(const char *path, uint64_t dflt);

/* The inode of this process's namespace of one type ("pid", "ipc": /proc/self/ns/<which>), the
 * namespace's identity on this host; 0 when /proc cannot tell. */
uint64_t ipcp__os_ns_inode(const char *which);

/* Named OS objects for every protocol (mqlock.c, handoff.c, lock.c, mqchan.c, cvq.c).
 * Names are "/ipcp.<kind>.<creator pid>.<suffix>", suffix = the caller's stem or 16 hex
 * digits from getrandom(): shm.h's rule (ipcp_shm_name, ipcp_shm_name_stem). */
int ipcp__os_objname(char *buf, unsigned long cap, const char *kind, const char *stem);
/* shm_open(O_CREAT|O_EXCL, 0600) + ftruncate + mmap(MAP_SHARED); the name is unlinked again on
 * failure. */
int ipcp__os_shm_create(const char *name, unsigned long size, void **map);
/* mq_open(O_CREAT|O_EXCL|O_RDWR|O_CLOEXEC, 0600) after checking the limits: the mqd (>= 0), or
 * -IPCP_E_MQ_MAXMSG / -IPCP_E_MQ_MSGSIZE / -IPCP_E_MQ_QUEUES / -errno. */
int ipcp__os_mq_create(const char *name, long maxmsg, long msgsize);
/* mq_open(O_RDWR|O_CLOEXEC) of an existing queue whose attributes must be maxmsg/msgsize
 * (-IPCP_E_LAYOUT otherwise). */
int ipcp__os_mq_open(const char *name, long maxmsg, long msgsize);
/* Bumped in the child at every fork() (pthread_atfork): a handle remembers it to refuse use
 * after being inherited, without a getpid() syscall per call. */
uint32_t ipcp__os_forkgen(void);

/* pthread_mutex_init of a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST mutex (the robust
 * lock and the condvar queue); 0 or -errno. */
int ipcp__robust_mutex_init(pthread_mutex_t *m);

/* One System V IPC object as /proc/sysvipc lists it (what ipcs shows). */
enum { IPCP__SYSV_SHM, IPCP__SYSV_MSG, IPCP__SYSV_SEM };
struct ipcp__sysv_obj {
    int kind; /* IPCP__SYSV_* */
    int id;
    long long key;
    long pid[2];     /* shm: creator, last attach/detach; msg: last msgsnd, last msgrcv; sem: none
                        (0: none recorded) */
    long count;      /* shm: processes attached; sem: semaphores in the set; -1 otherwise */
    long uid, cuid;  /* owner, creator */
    long long ctime; /* created or last changed (seconds since the epoch) */
};
/* Calls fn for every object of one kind in /proc/sysvipc/{shm,msg,sem} (the caller's IPC
 * namespace), columns found by their names: 0, or -errno (-EBADMSG: a header without an id and
 * a uid column). */
int ipcp__os_sysv_list(int kind, void (*fn)(const struct ipcp__sysv_obj *o, void *arg), void *arg);

#endif

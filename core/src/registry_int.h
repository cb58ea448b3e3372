/* registry_int.h - what the two halves of the registry share: registry.c (kinds, names, lines,
 * this process's entry, the object probe and removal) and regclean.c (ipcp_registry_clean). Not
 * installed; its functions are hidden like every other internal of the library. */
#ifndef IPCP_REGISTRY_INT_H
#define IPCP_REGISTRY_INT_H

#include <sys/types.h>

#define SHM_DIR        "/dev/shm" /* where glibc keeps POSIX shm objects and semaphores */
#define HEADER_TAG     "ipcp-registry"
#define FORMAT_VERSION 1
#define TMP_SUFFIX     ".tmp"
#define ENTRY_NAME_MAX 96

enum kind { K_SHM, K_MQ, K_SEM, K_SYSV_SEM, K_SYSV_SHM, K_SYSV_MSG, K_PATH, K_STEM, K_COUNT };

extern const char *const ipcp__reg_kind_names[K_COUNT];

static inline int ipcp__reg_is_sysv(int k)
{
    return k == K_SYSV_SEM || k == K_SYSV_SHM || k == K_SYSV_MSG;
}

/* One registered object. ipcns/dev/ino are 0 when unknown. */
struct rline {
    int kind;
    unsigned long long ipcns;
    int has_ident;
    unsigned long long dev, ino;
    char *name;
};

/* Parses one object line (without its '\n') into l; l->name points into the line. */
int ipcp__reg_parse_line(char *s, struct rline *l);
/* "<pidns>.<pid>.<start>" after the prefix, optionally followed by ".tmp". */
int ipcp__reg_parse_entry_name(const char *file, unsigned long long *pidns, long *pid,
                               unsigned long long *start, int *tmp);

/* A descriptor of its own (close it) on the registry directory, or -errno. */
int ipcp__reg_dup_dir(void);

enum { P_SAME, P_GONE, P_OTHER, P_ERR };

/* The owner an object must belong to; NULL: any (this process pruning its own lines). */
struct owner {
    long pid;
    uid_t uid;
};

/* Is the object under l's name still the registered one? P_SAME (with *ctime, when it was made
 * or last changed, as the kernel keeps it: st_ctime, the SysV ctime), P_GONE, P_OTHER, or P_ERR
 * with *err (it could not be looked at). */
int ipcp__reg_probe(const struct rline *l, const struct owner *o, int *err, long long *ctime);
/* Removes the object (probe said P_SAME): 0 or -errno; -ENOENT means it went meanwhile. */
int ipcp__reg_remove_object(const struct rline *l, const struct owner *o);

#endif

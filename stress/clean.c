/* clean.c - `ipcproof clean [--dry-run]`: removes the OS objects whose creator is dead, as the
 * registry of created objects tells (<ipcproof/registry.h>), and says what it left alone and
 * why. See docs/clean.md.
 *
 * Exit status: 0 when everything that could be checked was handled (objects that could not be
 * checked are listed, they are no error); 2 for a usage error, an unreadable registry directory
 * or an object that could not be removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ipcproof/registry.h"

/* "45s", "12m03s", "5h07m", "3d02h"; "age ?" when unknown. */
static void format_age(char *buf, size_t cap, long long s)
{
    if (s < 0)
        snprintf(buf, cap, "age ?");
    else if (s < 60)
        snprintf(buf, cap, "age %llds", s);
    else if (s < 3600)
        snprintf(buf, cap, "age %lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "age %lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, cap, "age %lldd%02lldh", s / 86400, s % 86400 / 3600);
}

static const char *dead_why(const struct ipcp_registry_item *it)
{
    return it->why == IPCP_REG_WHY_PID_REUSED ? "was reused by another process (other start time)"
                                              : "is gone: its run ended";
}

/* Objects a dry run already listed: one registered by two processes (its creator and a peer
 * that opened it) is one object to remove, as the real run counts it. */
struct seen {
    char (*names)[160];
    size_t n, cap;
    unsigned dups;
};

static int seen_before(struct seen *sn, const struct ipcp_registry_item *it)
{
    char key[160];
    snprintf(key, sizeof(key), "%s %s", it->kind, it->name);
    for (size_t i = 0; i < sn->n; i++)
        if (strcmp(sn->names[i], key) == 0) return 1;
    if (sn->n == sn->cap) {
        size_t cap = sn->cap ? 2 * sn->cap : 64;
        void *p = realloc(sn->names, cap * sizeof(*sn->names));
        if (p == NULL) return 0; /* listed twice at worst */
        sn->names = p;
        sn->cap = cap;
    }
    memcpy(sn->names[sn->n++], key, sizeof(key));
    return 0;
}

/* One line per object: what was done, the object, its owner and age, and why. */
static void print_item(const struct ipcp_registry_item *it, void *arg)
{
    struct seen *sn = arg;
    const char *label;
    char why[192];
    long pid = it->pid;
    switch (it->status) {
    case IPCP_REG_REMOVED:
        label = "removed";
        snprintf(why, sizeof(why), "pid %ld %s", pid, dead_why(it));
        break;
    case IPCP_REG_WOULD_REMOVE:
        if (seen_before(sn, it)) {
            sn->dups++;
            return;
        }
        label = "would remove";
        snprintf(why, sizeof(why), "pid %ld %s", pid, dead_why(it));
        break;
    case IPCP_REG_GONE:
        return; /* nothing to do: counted in the summary */
    case IPCP_REG_KEPT_ALIVE:
        label = "kept";
        snprintf(why, sizeof(why), "pid %ld is alive", pid);
        break;
    case IPCP_REG_KEPT_OTHER:
        label = "kept";
        snprintf(why, sizeof(why), "not the registered object any more (pid %ld)", pid);
        break;
    case IPCP_REG_OTHER_PIDNS:
        label = "not checked";
        snprintf(why, sizeof(why), "pid %ld of another PID namespace", pid);
        break;
    case IPCP_REG_OTHER_IPCNS:
        label = "not checked";
        snprintf(why, sizeof(why), "pid %ld %s, but made it in another IPC namespace", pid,
                 dead_why(it));
        break;
    case IPCP_REG_NO_ENTRY:
        label = "not checked";
        if (it->pid_is == NULL) {
            snprintf(why, sizeof(why), "no registry entry; its name says pid %ld", pid);
            break;
        }
        /* a SysV object that no live process uses (ipcrm's option for its kind) */
        char how[48];
        const char *opt = strcmp(it->kind, "sysv-shm") == 0   ? "-m"
                          : strcmp(it->kind, "sysv-msg") == 0 ? "-q"
                                                              : "-s";
        snprintf(how, sizeof(how), "ipcrm %s %s", opt, it->name);
        if (strcmp(it->pid_is, "none") == 0)
            snprintf(why, sizeof(why), "no registry entry; no process recorded%s; %s",
                     it->attached == 0 ? ", none attached" : "", how);
        else
            snprintf(why, sizeof(why), "no registry entry; its %s, pid %ld, is gone%s; %s",
                     it->pid_is, pid, it->attached == 0 ? ", none attached" : "", how);
        break;
    case IPCP_REG_UNCHECKED:
        label = "not checked";
        if (strcmp(it->kind, "entry") == 0)
            snprintf(why, sizeof(why), "cannot read it: %s", strerror(it->err));
        else
            snprintf(why, sizeof(why), "cannot check pid %ld: %s", pid, strerror(it->err));
        break;
    default:
        label = "FAILED";
        snprintf(why, sizeof(why), "pid %ld %s; %s", pid, dead_why(it), strerror(it->err));
        break;
    }
    char owner[32], age[32];
    if (it->uid >= 0)
        snprintf(owner, sizeof(owner), "uid %ld", it->uid);
    else
        snprintf(owner, sizeof(owner), "uid ?");
    format_age(age, sizeof(age), it->age_s);
    printf("  %-12s %-8s %s  (%s; %s, %s)\n", label, it->kind, it->name, why, owner, age);
}

int st_clean_main(int argc, char **argv)
{
    int dry_run = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "-n") == 0)
            dry_run = 1;
        else
            st_cli_die("clean", "unexpected argument '%s' (the only option is --dry-run)", argv[i]);
    }
    printf("ipcproof clean: registry %s/%s*%s\n", ipcp_registry_dir(), IPCP_REGISTRY_PREFIX,
           dry_run ? " (dry run: nothing is removed)" : "");
    struct ipcp_registry_summary s;
    struct seen sn = {0};
    int rc = ipcp_registry_clean(dry_run ? IPCP_REG_CLEAN_DRY_RUN : 0, print_item, &sn, &s);
    free(sn.names);
    if (rc < 0) {
        fprintf(stderr, "ipcproof clean: cannot read the registry %s: %s\n", ipcp_registry_dir(),
                strerror(-rc));
        return 2;
    }
    printf("ipcproof clean: %u entr%s: %u of dead processes, %u alive, %u in another PID "
           "namespace, %u unreadable\n",
           s.entries, s.entries == 1 ? "y" : "ies", s.dead, s.alive, s.foreign,
           s.unreadable + s.unknown);
    const unsigned *n = s.count;
    printf("ipcproof clean: %u %s, %u already gone, %u kept (owner alive), %u kept (name reused), "
           "%u not checked, %u failed\n",
           dry_run ? n[IPCP_REG_WOULD_REMOVE] - sn.dups : n[IPCP_REG_REMOVED],
           dry_run ? "would be removed" : "removed", n[IPCP_REG_GONE], n[IPCP_REG_KEPT_ALIVE],
           n[IPCP_REG_KEPT_OTHER],
           n[IPCP_REG_OTHER_PIDNS] + n[IPCP_REG_OTHER_IPCNS] + n[IPCP_REG_NO_ENTRY] +
               n[IPCP_REG_UNCHECKED],
           n[IPCP_REG_FAILED]);
    if (s.foreign > 0)
        printf("note: objects of another PID namespace (a container sharing /dev/shm) are checked "
               "by `ipcproof clean` run inside it\n");
    if (n[IPCP_REG_OTHER_IPCNS] > 0)
        printf("note: queues and SysV objects made in another IPC namespace cannot be reached "
               "from here; their entries were dropped with their dead owners\n");
    if (n[IPCP_REG_NO_ENTRY] > 0)
        printf("note: objects without a registry entry are never removed (nothing says that "
               "ipcproof made them, nor, for names, in which PID namespace); remove them by hand "
               "once you know they are stale\n");
    if (!s.mq_listed)
        printf("note: /dev/mqueue is not mounted, so message queues without a registry entry "
               "cannot be listed (mount -t mqueue none /dev/mqueue)\n");
    if (!s.sysv_listed)
        printf("note: /proc/sysvipc could not be read, so SysV objects without a registry entry "
               "are not listed (see ipcs)\n");
    else if (s.sysv_in_use > 0)
        printf("note: %u SysV object%s of yours without a registry entry %s in use by live "
               "processes: not listed (ipcs shows %s)\n",
               s.sysv_in_use, s.sysv_in_use == 1 ? "" : "s", s.sysv_in_use == 1 ? "is" : "are",
               s.sysv_in_use == 1 ? "it" : "them");
    return n[IPCP_REG_FAILED] > 0 ? 2 : 0;
}

/* protos.c - the built-in protocol table (protos/protos.def) and the loading of plugins. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "exec.h"
#include "stress.h"

#define IPCP_PROTO_CHANNEL(symbol, name) extern const struct ipcp_channel_ops symbol;
#define IPCP_PROTO_LOCK(symbol, name)    extern const struct ipcp_lock_ops symbol;
#include "protos/protos.def"
#undef IPCP_PROTO_CHANNEL
#undef IPCP_PROTO_LOCK

struct builtin {
    const struct ipcp_channel_ops *chan;
    const struct ipcp_lock_ops *lock;
    const char *table_name; /* the name written in protos.def */
};

static const struct builtin builtins[] = {
#define IPCP_PROTO_CHANNEL(symbol, name) {&symbol, NULL, #name},
#define IPCP_PROTO_LOCK(symbol, name)    {NULL, &symbol, #name},
#include "protos/protos.def"
#undef IPCP_PROTO_CHANNEL
#undef IPCP_PROTO_LOCK
    {NULL, NULL, NULL} /* sentinel: the table may be empty */
};

size_t st_builtin_count(void)
{
    return sizeof(builtins) / sizeof(builtins[0]) - 1;
}

void st_builtin_get(size_t i, const struct ipcp_channel_ops **chan,
                    const struct ipcp_lock_ops **lock, const char **table_name)
{
    *chan = builtins[i].chan;
    *lock = builtins[i].lock;
    *table_name = builtins[i].table_name;
}

static const char *check_chan(const struct ipcp_channel_ops *o)
{
    if (o->abi_version != IPCP_PLUGIN_ABI_VERSION) return "abi_version";
    if (o->name == NULL || o->name[0] == '\0') return "name";
    if (!o->create || !o->open || !o->send || !o->recv || !o->close || !o->destroy)
        return "a NULL function pointer";
    return NULL;
}

static const char *check_lock(const struct ipcp_lock_ops *o)
{
    if (o->abi_version != IPCP_PLUGIN_ABI_VERSION) return "abi_version";
    if (o->name == NULL || o->name[0] == '\0') return "name";
    if (!o->create || !o->open || !o->lock || !o->unlock || !o->close || !o->destroy)
        return "a NULL function pointer";
    return NULL;
}

/* The instrumented copy of a built-in protocol (stress/sched/builtins.c). */
static int load_instrumented(const char *proto, struct st_proto *p, char *err, size_t errcap)
{
    const char *lib = st_protos_sched_lib();
    if (lib == NULL) {
        snprintf(err, errcap,
                 "--proto %s under the scheduler needs libipcproof-protos-sched.so "
                 "next to the ipcproof binary or in its libdir "
                 "(or IPCPROOF_PROTOS_SCHED_LIB=path)",
                 proto);
        return -1;
    }
    p->dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL) {
        snprintf(err, errcap, "cannot load %s: %s", lib, dlerror());
        return -1;
    }
    int (*find)(const char *, const struct ipcp_channel_ops **, const struct ipcp_lock_ops **) =
        NULL;
    *(void **)&find = dlsym(p->dl, "ipcproof_sched_builtin");
    if (find == NULL || find(proto, &p->chan, &p->lock) < 0) {
        snprintf(err, errcap, "unknown protocol '%s' (`ipcproof list` prints the built-in ones)",
                 proto);
        dlclose(p->dl);
        p->dl = NULL;
        return -1;
    }
    snprintf(p->label, sizeof(p->label), "%s", proto);
    return 0;
}

int st_proto_load(const char *proto, const char *plugin, int instrumented, struct st_proto *p,
                  char *err, size_t errcap)
{
    memset(p, 0, sizeof(*p));
    if (proto != NULL && strcmp(proto, ST_EXEC_PROTO) == 0 && !instrumented) {
        p->chan = st_exec_chan();
        p->lock = st_exec_lock();
        snprintf(p->label, sizeof(p->label), "exec");
        return 0;
    }
    if (proto != NULL && instrumented) return load_instrumented(proto, p, err, errcap);
    if (proto != NULL) {
        for (size_t i = 0; i < st_builtin_count(); i++) {
            const char *name = builtins[i].chan ? builtins[i].chan->name : builtins[i].lock->name;
            if (strcmp(name, proto) == 0) {
                p->chan = builtins[i].chan;
                p->lock = builtins[i].lock;
                snprintf(p->label, sizeof(p->label), "%s", name);
                return 0;
            }
        }
        snprintf(err, errcap, "unknown protocol '%s' (`ipcproof list` prints the built-in ones)",
                 proto);
        return -1;
    }
    if (plugin == NULL) {
        snprintf(err, errcap, "--proto NAME or --plugin FILE.so is required");
        return -1;
    }
    char path[4096];
    /* dlopen searches the library path for a name without a slash: take it as a file */
    snprintf(path, sizeof(path), "%s%s", strchr(plugin, '/') ? "" : "./", plugin);
    snprintf(p->label, sizeof(p->label), "%s", plugin);
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL) {
        snprintf(err, errcap, "cannot load plugin: %s", dlerror());
        return -1;
    }
    const struct ipcp_channel_ops *(*fc)(void) = NULL;
    const struct ipcp_lock_ops *(*fl)(void) = NULL;
    *(void **)&fc = dlsym(p->dl, "ipcp_plugin_channel");
    *(void **)&fl = dlsym(p->dl, "ipcp_plugin_lock");
    if (fc == NULL && fl == NULL) {
        snprintf(err, errcap, "%s exports neither ipcp_plugin_channel() nor ipcp_plugin_lock()",
                 plugin);
        goto fail;
    }
    p->chan = fc ? fc() : NULL;
    p->lock = fl ? fl() : NULL;
    if (p->chan == NULL && p->lock == NULL) {
        snprintf(err, errcap, "%s: ipcp_plugin_*() returned NULL", plugin);
        goto fail;
    }
    const char *bad;
    if (p->chan != NULL && (bad = check_chan(p->chan)) != NULL) {
        snprintf(err, errcap, "%s: channel ops: wrong %s (abi_version %u, this ipcproof speaks %u)",
                 plugin, bad, p->chan->abi_version, IPCP_PLUGIN_ABI_VERSION);
        goto fail;
    }
    if (p->lock != NULL && (bad = check_lock(p->lock)) != NULL) {
        snprintf(err, errcap, "%s: lock ops: wrong %s (abi_version %u, this ipcproof speaks %u)",
                 plugin, bad, p->lock->abi_version, IPCP_PLUGIN_ABI_VERSION);
        goto fail;
    }
    return 0;
fail:
    dlclose(p->dl);
    memset(p, 0, sizeof(*p));
    return -1;
}

void st_proto_unload(struct st_proto *p)
{
    if (p->dl != NULL) dlclose(p->dl);
    memset(p, 0, sizeof(*p));
}

/* builtins.c - libipcproof-protos-sched.so: the built-in protocols (stress/protos/, over a copy of
 * core/src/) compiled with the -fsanitize=thread instrumentation, for `--proto NAME --mode sched`
 * and crash points. The instrumentation's callbacks are the preloaded scheduler runtime's
 * (libipcproof-sched.so), exactly as for a user's TSan-built plugin, so every atomic operation
 * of the core library is a scheduling point. Everything but the one entry point is hidden: the
 * module's calls stay inside its instrumented copy. */
#include <stddef.h>
#include <string.h>

#include "ipcproof/plugin.h"

#define IPCP_PROTO_CHANNEL(symbol, name) extern const struct ipcp_channel_ops symbol;
#define IPCP_PROTO_LOCK(symbol, name)    extern const struct ipcp_lock_ops symbol;
#include "../protos/protos.def"
#undef IPCP_PROTO_CHANNEL
#undef IPCP_PROTO_LOCK

static const struct {
    const struct ipcp_channel_ops *chan;
    const struct ipcp_lock_ops *lock;
} table[] = {
#define IPCP_PROTO_CHANNEL(symbol, name) {&symbol, NULL},
#define IPCP_PROTO_LOCK(symbol, name)    {NULL, &symbol},
#include "../protos/protos.def"
#undef IPCP_PROTO_CHANNEL
#undef IPCP_PROTO_LOCK
};

__attribute__((visibility("default"))) int
ipcproof_sched_builtin(const char *name, const struct ipcp_channel_ops **chan,
                       const struct ipcp_lock_ops **lock)
{
    *chan = NULL;
    *lock = NULL;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const char *n = table[i].chan ? table[i].chan->name : table[i].lock->name;
        if (strcmp(n, name) == 0) {
            *chan = table[i].chan;
            *lock = table[i].lock;
            return 0;
        }
    }
    return -1;
}

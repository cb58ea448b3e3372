/* syntax_error.c - a plugin source that does not compile: `validate --plugin-src` must stop with
 * exit status 2 and the compiler's message, not report violations. */
#include <ipcproof/plugin.h>

const struct ipcp_lock_ops *ipcp_plugin_lock(void)
{
    return this is not C;
}

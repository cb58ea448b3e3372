/* badabi.c - a plugin built against another plugin ABI version: ipcproof must refuse to load it
 * (exit status 2) instead of calling through a table whose layout it does not know. */
#include <stddef.h>

#include <ipcproof/plugin.h>

static const struct ipcp_channel_ops ops = {
    .abi_version = IPCP_PLUGIN_ABI_VERSION + 1,
    .name = "harness-bad-abi",
};

const struct ipcp_channel_ops *ipcp_plugin_channel(void)
{
    return &ops;
}

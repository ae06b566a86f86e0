/* Test-only plugin: configures fine, fails in start(). The daemon must mark
 * it failed with this reason and keep serving the others. */
#include "agentd/plugin.h"

static int fs_start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    return agentd_err_set(err, "failstart: refusing to start (test plugin)");
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "failstart",
    .description = "test plugin whose start always fails",
    .start = fs_start,
};

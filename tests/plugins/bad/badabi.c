/* Test-only plugin built for a future ABI: the loader must refuse it, name
 * the file, and never call into it. */
#include "agentd/plugin.h"

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI + 998,
    .name = "badabi",
};

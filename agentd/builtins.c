/* The plugins built into the agentd binary. They are configured like any
 * other, and AGENTD_PLUGIN_ALWAYS ones even when their key is absent. */
#include "host.h"

extern const struct agentd_plugin aws_builtin_plugin;

const struct agentd_plugin *const builtin_plugins[] = {
    &aws_builtin_plugin,
    NULL,
};

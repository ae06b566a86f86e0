/* The built-in "aws" plugin: the top-level `aws:` key configures agentd's AWS
 * core (region, credentials source, retries). Filled in by the AWS core work. */
#include "agentd/plugin.h"

const struct agentd_plugin aws_builtin_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "aws",
    .description = "AWS core: region, credentials, endpoints, retries",
    .flags = AGENTD_PLUGIN_ALWAYS,
};

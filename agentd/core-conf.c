/* The `agentd:` section: the core's own options, declared as an option table
 * like any plugin's. Paths that systemd hands over in the environment
 * (STATE_DIRECTORY, RUNTIME_DIRECTORY) are the defaults when the file is
 * silent; an explicit setting wins. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static const char *const log_levels[] = {"error", "warning", "notice", "info", "debug", NULL};

static const struct agentd_option core_options[] = {
    {.name = "plugin_dir",
     .type = AGENTD_OPT_PATH,
     .offset = offsetof(struct core_conf, plugin_dir),
     .def = AGENTD_PLUGIN_DIR,
     .description = "directory of plugin .so files"},
    {.name = "state_dir",
     .type = AGENTD_OPT_PATH,
     .offset = offsetof(struct core_conf, state_dir),
     .description = "durable state (default $STATE_DIRECTORY or " AGENTD_DEFAULT_STATE_DIR ")"},
    {.name = "control_socket",
     .type = AGENTD_OPT_PATH,
     .offset = offsetof(struct core_conf, control_socket),
     .description =
         "agentctl's unix socket (default $RUNTIME_DIRECTORY/control.sock or " AGENTD_DEFAULT_SOCKET
         ")"},
    {.name = "admin_group",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct core_conf, admin_group),
     .description = "members of this group may use the control socket"},
    {.name = "log_level",
     .type = AGENTD_OPT_ENUM,
     .offset = offsetof(struct core_conf, log_level),
     .def = "info",
     .values = log_levels,
     .description = "least severe level logged"},
    {.name = "stop_timeout",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct core_conf, stop_timeout_ms),
     .def = "30s",
     .min = 100,
     .max = 3600000,
     .description = "how long each plugin may take to stop"},
    {.name = "metadata",
     .type = AGENTD_OPT_MAP,
     .offset = offsetof(struct core_conf, metadata),
     .description = "static metadata for templates ({region}, {tag:Name}, ...)"},
    {0},
};

const struct agentd_schema core_schema = {
    .name = "agentd",
    .size = sizeof(struct core_conf),
    .options = core_options,
};

int core_conf_log_level(const struct core_conf *cc)
{
    static const int map[] = {AGENTD_LOG_ERR, AGENTD_LOG_WARNING, AGENTD_LOG_NOTICE,
                              AGENTD_LOG_INFO, AGENTD_LOG_DEBUG};

    if (cc->log_level < 0 || cc->log_level >= (int)(sizeof(map) / sizeof(map[0])))
        return AGENTD_LOG_INFO;
    return map[cc->log_level];
}

/* systemd passes colon-separated lists when a unit names several dirs; the
 * first one is ours. */
static char *first_dir(const char *env, const char *suffix)
{
    const char *v = getenv(env);
    size_t len;
    char *r;

    if (!v || v[0] != '/')
        return NULL;
    len = strcspn(v, ":");
    if (asprintf(&r, "%.*s%s", (int)len, v, suffix) < 0)
        return NULL;
    return r;
}

int core_conf_finish(struct core_conf *cc)
{
    if (!cc->state_dir) {
        cc->state_dir = first_dir("STATE_DIRECTORY", "");
        if (!cc->state_dir && !(cc->state_dir = strdup(AGENTD_DEFAULT_STATE_DIR)))
            return -ENOMEM;
    }
    if (!cc->control_socket) {
        cc->control_socket = first_dir("RUNTIME_DIRECTORY", "/control.sock");
        if (!cc->control_socket && !(cc->control_socket = strdup(AGENTD_DEFAULT_SOCKET)))
            return -ENOMEM;
    }
    return 0;
}

/* A test option table shaped like the real plugins' (health, logs): shared by
 * the config unit tests and the fuzz target. */
#ifndef CONF_TEST_SCHEMA_H
#define CONF_TEST_SCHEMA_H

#include <stddef.h>
#include <string.h>

#include "agentd/plugin.h"

struct t_check {
    char *name;
    char *http;
    char *tcp;
    uint64_t interval;
    uint64_t timeout;
    bool critical;
    struct agentd_list expect; /* of int64_t */
};

struct t_rotate {
    uint64_t size;
    uint64_t age;
};

struct t_s3 {
    char *bucket;
    char *key;
    char *secret;
    struct t_rotate *rotate;
};

/* Lists of every scalar type, for dump round trips. */
struct t_misc {
    struct agentd_list modes;     /* of int (ENUM) */
    struct agentd_list flags;     /* of bool */
    struct agentd_list waits;     /* of uint64_t ms */
    struct agentd_list sizes;     /* of uint64_t bytes */
    struct agentd_list tags;      /* of struct agentd_map */
    struct agentd_list urls;      /* of char * URL */
    struct agentd_list templates; /* of char * with {names} */
    struct agentd_cidr net;
    char *path;
};

struct t_health {
    struct agentd_list listen; /* of char * host:port */
    struct agentd_list paths;  /* of char * path */
    struct agentd_list allow;  /* of struct agentd_cidr */
    struct agentd_list checks; /* of struct t_check, inline */
    int join_when;
    int64_t port;
    uint64_t drain;
    char *name;
    char *token;
    struct agentd_map labels;
    struct t_s3 *s3;
    struct t_rotate *limits;
    bool verbose;
    struct t_misc *misc;
};

static const char *const t_join_values[] = {"healthy", "started", "always", NULL};
static const char *const t_seq_vars[] = {"seq", NULL};

static int t_check_validate(void *obj, struct agentd_confctx *cc)
{
    struct t_check *c = obj;

    if (!c->http == !c->tcp) {
        agentd_conf_error(cc, NULL, "a check needs exactly one of http or tcp");
        return -22;
    }
    if (c->timeout >= c->interval) {
        agentd_conf_error(cc, "timeout", "must be shorter than the interval");
        return -22;
    }
    return 0;
}

static const struct agentd_option t_check_options[] = {
    {.name = "name",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct t_check, name),
     .flags = AGENTD_OPT_REQUIRED,
     .description = "check name"},
    {.name = "http",
     .type = AGENTD_OPT_URL,
     .offset = offsetof(struct t_check, http),
     .description = "URL to GET"},
    {.name = "tcp",
     .type = AGENTD_OPT_HOSTPORT,
     .offset = offsetof(struct t_check, tcp),
     .description = "address to connect to"},
    {.name = "interval",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct t_check, interval),
     .def = "10s",
     .min = 100,
     .max = 3600000,
     .description = "how often"},
    {.name = "timeout",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct t_check, timeout),
     .def = "2s",
     .description = "per attempt"},
    {.name = "critical",
     .type = AGENTD_OPT_BOOL,
     .offset = offsetof(struct t_check, critical),
     .def = "true",
     .description = "failing makes the instance unhealthy"},
    {.name = "expect",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_INT,
     .offset = offsetof(struct t_check, expect),
     .def = "[200]",
     .description = "statuses"},
    {0},
};

static const struct agentd_schema t_check_schema = {
    .name = "health check",
    .size = sizeof(struct t_check),
    .options = t_check_options,
    .validate = t_check_validate,
};

static const struct agentd_option t_rotate_options[] = {
    {.name = "size",
     .type = AGENTD_OPT_SIZE,
     .offset = offsetof(struct t_rotate, size),
     .def = "64MiB",
     .min = 1024,
     .max = 1LL << 40,
     .description = "rotate at"},
    {.name = "age",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct t_rotate, age),
     .def = "5m",
     .description = "rotate after"},
    {0},
};

static const struct agentd_schema t_rotate_schema = {
    .name = "rotation",
    .size = sizeof(struct t_rotate),
    .options = t_rotate_options,
};

static const struct agentd_option t_s3_options[] = {
    {.name = "bucket",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct t_s3, bucket),
     .flags = AGENTD_OPT_REQUIRED | AGENTD_OPT_TEMPLATE,
     .description = "bucket"},
    {.name = "key",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct t_s3, key),
     .flags = AGENTD_OPT_TEMPLATE,
     .template_vars = t_seq_vars,
     .def = "\"{instance_id}/{seq}\"",
     .description = "object key"},
    {.name = "secret",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct t_s3, secret),
     .flags = AGENTD_OPT_SECRET,
     .description = "a secret"},
    {.name = "rotate",
     .type = AGENTD_OPT_OBJECT,
     .offset = offsetof(struct t_s3, rotate),
     .sub = &t_rotate_schema,
     .def = "{}",
     .description = "rotation"},
    {0},
};

static const struct agentd_schema t_s3_schema = {
    .name = "s3 output",
    .size = sizeof(struct t_s3),
    .options = t_s3_options,
};

static const struct agentd_option t_misc_options[] = {
    {.name = "modes",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_ENUM,
     .values = t_join_values,
     .offset = offsetof(struct t_misc, modes),
     .description = "enums"},
    {.name = "flags",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_BOOL,
     .offset = offsetof(struct t_misc, flags),
     .description = "booleans"},
    {.name = "waits",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_DURATION,
     .offset = offsetof(struct t_misc, waits),
     .description = "durations"},
    {.name = "sizes",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_SIZE,
     .offset = offsetof(struct t_misc, sizes),
     .description = "sizes"},
    {.name = "tags",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_MAP,
     .offset = offsetof(struct t_misc, tags),
     .description = "maps"},
    {.name = "urls",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_URL,
     .flags = AGENTD_OPT_TEMPLATE,
     .offset = offsetof(struct t_misc, urls),
     .description = "URLs with templates"},
    {.name = "templates",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_PATH,
     .flags = AGENTD_OPT_TEMPLATE,
     .template_vars = t_seq_vars,
     .offset = offsetof(struct t_misc, templates),
     .description = "paths with templates"},
    {.name = "net",
     .type = AGENTD_OPT_CIDR,
     .offset = offsetof(struct t_misc, net),
     .def = "0.0.0.0/0",
     .description = "a network"},
    {.name = "path",
     .type = AGENTD_OPT_PATH,
     .offset = offsetof(struct t_misc, path),
     .def = "/var/lib/x",
     .description = "a path"},
    {0},
};

static const struct agentd_schema t_misc_schema = {
    .name = "misc",
    .size = sizeof(struct t_misc),
    .options = t_misc_options,
};

static const struct agentd_option t_health_options[] = {
    {.name = "listen",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_HOSTPORT,
     .offset = offsetof(struct t_health, listen),
     .def = "[\"0.0.0.0:8080\"]",
     .min = 1,
     .max = 8,
     .description = "addresses"},
    {.name = "paths",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_PATH,
     .offset = offsetof(struct t_health, paths),
     .def = "[/health]",
     .description = "paths"},
    {.name = "allow",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_CIDR,
     .offset = offsetof(struct t_health, allow),
     .description = "who may ask"},
    {.name = "checks",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_OBJECT,
     .offset = offsetof(struct t_health, checks),
     .sub = &t_check_schema,
     .description = "checks"},
    {.name = "join_when",
     .type = AGENTD_OPT_ENUM,
     .offset = offsetof(struct t_health, join_when),
     .values = t_join_values,
     .def = "healthy",
     .description = "when to join"},
    {.name = "port",
     .type = AGENTD_OPT_INT,
     .offset = offsetof(struct t_health, port),
     .def = "8000",
     .min = 1,
     .max = 65535,
     .description = "port"},
    {.name = "drain",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct t_health, drain),
     .def = "90s",
     .description = "drain timeout"},
    {.name = "name",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct t_health, name),
     .flags = AGENTD_OPT_TEMPLATE,
     .description = "a name"},
    {.name = "token",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct t_health, token),
     .flags = AGENTD_OPT_SECRET,
     .description = "bearer token"},
    {.name = "labels",
     .type = AGENTD_OPT_MAP,
     .offset = offsetof(struct t_health, labels),
     .flags = AGENTD_OPT_TEMPLATE,
     .description = "labels"},
    {.name = "s3",
     .type = AGENTD_OPT_OBJECT,
     .offset = offsetof(struct t_health, s3),
     .sub = &t_s3_schema,
     .description = "upload"},
    {.name = "limits",
     .type = AGENTD_OPT_OBJECT,
     .offset = offsetof(struct t_health, limits),
     .sub = &t_rotate_schema,
     .description = "limits"},
    {.name = "verbose",
     .type = AGENTD_OPT_BOOL,
     .offset = offsetof(struct t_health, verbose),
     .description = "chatty"},
    {.name = "misc",
     .type = AGENTD_OPT_OBJECT,
     .offset = offsetof(struct t_health, misc),
     .sub = &t_misc_schema,
     .description = "every list type"},
    {0},
};

static const struct agentd_schema t_health_schema = {
    .name = "health",
    .size = sizeof(struct t_health),
    .options = t_health_options,
};

#endif

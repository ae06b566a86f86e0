/* The health registry: every check of every plugin, and the draining flag.
 * The health plugin serves it over HTTP, `agentctl health` shows it and
 * targetgroup gates registration on it. Status changes are logged once and
 * published as health.changed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"

#define OUTPUT_MAX 1024

struct agentd_health_check {
    char *name;
    struct agentd_plugin_ctx *ctx;
    bool critical;
    bool has_result;
    enum agentd_health_status status;
    char output[OUTPUT_MAX + 1];
    uint64_t changed_ms, updated_ms, duration_ms;
    struct agentd_health_check *next;
};

static struct agentd_health_check *checks;
static bool draining;
static char *drain_reason;

uint64_t host_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *agentd_health_status_name(enum agentd_health_status status)
{
    switch (status) {
    case AGENTD_HEALTH_PASS:
        return "pass";
    case AGENTD_HEALTH_WARN:
        return "warn";
    default:
        return "fail";
    }
}

static struct agentd_health_check *find(const char *name)
{
    for (struct agentd_health_check *c = checks; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int agentd_health_register(struct agentd_plugin_ctx *ctx, const char *name, bool critical,
                           struct agentd_health_check **ret)
{
    struct agentd_health_check *c, **pp;

    if (!name || !*name || !ret)
        return -EINVAL;
    if (find(name))
        return -EEXIST;
    c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return -ENOMEM;
    }
    c->ctx = ctx ? ctx : &host.core_ctx;
    c->critical = critical;
    c->status = AGENTD_HEALTH_FAIL;
    snprintf(c->output, sizeof(c->output), "no result yet");
    c->changed_ms = c->updated_ms = host_wall_ms();
    for (pp = &checks; *pp; pp = &(*pp)->next)
        ;
    *pp = c;
    *ret = c;
    return 0;
}

enum agentd_health_status agentd_health_overall(struct agentd_plugin_ctx *ctx)
{
    enum agentd_health_status overall = AGENTD_HEALTH_PASS;

    for (struct agentd_health_check *c = checks; c; c = c->next) {
        if (c->status == AGENTD_HEALTH_FAIL && c->critical)
            return AGENTD_HEALTH_FAIL;
        if (c->status != AGENTD_HEALTH_PASS)
            overall = AGENTD_HEALTH_WARN;
    }
    return overall;
}

void agentd_health_set(struct agentd_health_check *c, enum agentd_health_status status,
                       const char *fmt, ...)
{
    enum agentd_health_status prev;
    bool changed;
    va_list ap;

    if (!c)
        return;
    if (status != AGENTD_HEALTH_PASS && status != AGENTD_HEALTH_WARN)
        status = AGENTD_HEALTH_FAIL;
    prev = c->status;
    changed = !c->has_result || prev != status;
    va_start(ap, fmt);
    vsnprintf(c->output, sizeof(c->output), fmt ? fmt : "", ap);
    va_end(ap);
    c->updated_ms = host_wall_ms();
    c->has_result = true;
    c->status = status;
    if (!changed)
        return;
    c->changed_ms = c->updated_ms;
    agentd_log(c->ctx, status == AGENTD_HEALTH_PASS ? AGENTD_LOG_INFO : AGENTD_LOG_WARNING,
               "check '%s' is %s (was %s): %s", c->name, agentd_health_status_name(status),
               agentd_health_status_name(prev), c->output);
    agentd_event_publish(c->ctx, "health.changed",
                         json_pack("{s:s,s:s,s:s,s:s,s:s}", "check", c->name, "status",
                                   agentd_health_status_name(status), "previous",
                                   agentd_health_status_name(prev), "output", c->output, "overall",
                                   agentd_health_status_name(agentd_health_overall(NULL))));
}

void agentd_health_set_duration(struct agentd_health_check *c, uint64_t ms)
{
    if (c)
        c->duration_ms = ms;
}

static void free_check(struct agentd_health_check *c)
{
    free(c->name);
    free(c);
}

void agentd_health_unregister(struct agentd_health_check *check)
{
    for (struct agentd_health_check **pp = &checks; *pp; pp = &(*pp)->next) {
        if (*pp == check) {
            *pp = check->next;
            free_check(check);
            return;
        }
    }
}

static void fill_info(const struct agentd_health_check *c, struct agentd_health_info *info)
{
    info->name = c->name;
    info->plugin = c->ctx->desc ? c->ctx->desc->name : "agentd";
    info->critical = c->critical;
    info->status = c->status;
    info->output = c->output;
    info->changed_ms = c->changed_ms;
    info->updated_ms = c->updated_ms;
    info->duration_ms = c->duration_ms;
}

void agentd_health_foreach(struct agentd_plugin_ctx *ctx,
                           void (*fn)(const struct agentd_health_info *info, void *ud), void *ud)
{
    struct agentd_health_info info;

    for (struct agentd_health_check *c = checks; c; c = c->next) {
        fill_info(c, &info);
        fn(&info, ud);
    }
}

int agentd_health_get(struct agentd_plugin_ctx *ctx, const char *name,
                      struct agentd_health_info *ret)
{
    struct agentd_health_check *c = name ? find(name) : NULL;

    if (!c)
        return -ENOENT;
    fill_info(c, ret);
    return 0;
}

void agentd_health_set_draining(struct agentd_plugin_ctx *ctx, bool on, const char *reason)
{
    if (on == draining)
        return;
    draining = on;
    free(drain_reason);
    drain_reason = (on && reason) ? strdup(reason) : NULL;
    agentd_log(ctx, AGENTD_LOG_NOTICE, "health: %s%s%s", on ? "draining" : "no longer draining",
               reason ? ": " : "", reason ? reason : "");
    agentd_event_publish(ctx, "health.draining",
                         json_pack("{s:b,s:s}", "draining", on, "reason", reason ? reason : ""));
}

bool agentd_health_draining(struct agentd_plugin_ctx *ctx)
{
    return draining;
}

static json_t *iso_time(uint64_t ms)
{
    char buf[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

json_t *health_json(void)
{
    json_t *arr = json_array();

    for (struct agentd_health_check *c = checks; c; c = c->next) {
        struct agentd_health_info i;
        fill_info(c, &i);
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:s,s:b,s:s,s:o,s:I}", "name", i.name, "plugin", i.plugin,
                           "status", agentd_health_status_name(i.status), "critical", i.critical,
                           "output", i.output, "since", iso_time(i.changed_ms), "duration_ms",
                           (json_int_t)i.duration_ms));
    }
    return json_pack("{s:s,s:b,s:s?,s:o}", "status",
                     agentd_health_status_name(agentd_health_overall(NULL)), "draining", draining,
                     "draining_reason", drain_reason, "checks", arr);
}

void health_drop_ctx(struct agentd_plugin_ctx *ctx)
{
    struct agentd_health_check **pp = &checks;

    while (*pp) {
        struct agentd_health_check *c = *pp;
        if (c->ctx == ctx) {
            *pp = c->next;
            free_check(c);
        } else {
            pp = &c->next;
        }
    }
}

void health_free(void)
{
    while (checks) {
        struct agentd_health_check *c = checks;
        checks = c->next;
        free_check(c);
    }
    draining = false;
    free(drain_reason);
    drain_reason = NULL;
}

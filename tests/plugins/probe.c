/* Test-only plugin that exercises the host services from the outside: its
 * control verbs publish events, set health, write state, bump metrics and
 * spawn children, so integration tests can drive them through agentctl. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentd/plugin.h"

struct probe_conf {
    char *message;
    uint64_t stop_delay_ms;
    bool can_reload;
    bool critical;
};

static const struct agentd_option probe_options[] = {
    {.name = "message",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct probe_conf, message),
     .def = "hello",
     .flags = AGENTD_OPT_TEMPLATE,
     .description = "text shown by the 'conf' verb; templates allowed"},
    {.name = "stop_delay",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct probe_conf, stop_delay_ms),
     .def = "0s",
     .description = "how long stop() takes"},
    {.name = "can_reload",
     .type = AGENTD_OPT_BOOL,
     .offset = offsetof(struct probe_conf, can_reload),
     .def = "true",
     .description = "whether reload() applies changes (else the host restarts it)"},
    {.name = "critical",
     .type = AGENTD_OPT_BOOL,
     .offset = offsetof(struct probe_conf, critical),
     .def = "true",
     .description = "whether the probe:main health check is critical"},
    {0},
};

static const struct agentd_schema probe_schema = {
    .name = "probe",
    .size = sizeof(struct probe_conf),
    .options = probe_options,
};

struct probe {
    const struct probe_conf *conf;
    struct agentd_health_check *check;
    struct agentd_metric *calls;
    uv_timer_t stop_timer;
    agentd_stop_done_fn done;
    unsigned starts, reloads, events;
    json_t *seen; /* names of events received */
    char *last_child;
};

static struct probe *P(struct agentd_plugin_ctx *ctx)
{
    return agentd_plugin_get_data(ctx);
}

static void on_event(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload,
                     void *ud)
{
    struct probe *p = P(ctx);

    p->events++;
    json_array_append_new(p->seen, json_string(name));
    if (strcmp(name, "agent.stopping") == 0)
        agentd_log(ctx, AGENTD_LOG_INFO, "heard agent.stopping (%s)",
                   json_string_value(json_object_get(payload, "reason")));
}

static int arg_count(const json_t *args, size_t n, json_t **ret, const char *usage)
{
    if (json_array_size(args) < n) {
        *ret = json_string(usage);
        return -EINVAL;
    }
    return 0;
}

static const char *arg(const json_t *args, size_t i)
{
    return json_string_value(json_array_get(args, i));
}

static int v_conf(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct probe *p = P(ctx);
    char *expanded = NULL, *missing = NULL;
    int r = agentd_template_expand(ctx, p->conf->message, NULL, &expanded, &missing);

    *ret = json_pack("{s:s,s:s?,s:s?,s:i,s:i,s:I}", "message", p->conf->message, "expanded",
                     expanded, "missing", missing, "starts", p->starts, "reloads", p->reloads,
                     "stop_delay_ms", (json_int_t)p->conf->stop_delay_ms);
    free(expanded);
    free(missing);
    (void)r;
    return 0;
}

static int v_health(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    static const char *const names[] = {"fail", "warn", "pass"};
    int r = arg_count(args, 1, ret, "usage: probe health pass|warn|fail [OUTPUT]");

    if (r < 0)
        return r;
    for (int i = 0; i < 3; i++) {
        if (strcmp(arg(args, 0), names[i]) == 0) {
            agentd_health_set(P(ctx)->check, (enum agentd_health_status)i, "%s",
                              json_array_size(args) > 1 ? arg(args, 1) : names[i]);
            *ret = json_string(agentd_health_status_name(agentd_health_overall(ctx)));
            return 0;
        }
    }
    *ret = json_string("status must be pass, warn or fail");
    return -EINVAL;
}

static int v_publish(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    int r = arg_count(args, 1, ret, "usage: probe publish EVENT");

    if (r < 0)
        return r;
    agentd_event_publish(ctx, arg(args, 0), json_pack("{s:s}", "from", "probe"));
    *ret = json_true();
    return 0;
}

static int v_events(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    *ret = json_copy(P(ctx)->seen);
    return 0;
}

static int v_state(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    int r = arg_count(args, 2, ret, "usage: probe state get|put|rm NAME [DATA]");
    void *data = NULL;
    size_t len = 0;

    if (r < 0)
        return r;
    if (strcmp(arg(args, 0), "put") == 0 && json_array_size(args) > 2) {
        r = agentd_state_write(ctx, arg(args, 1), arg(args, 2), strlen(arg(args, 2)));
        *ret = r < 0 ? json_string(strerror(-r)) : json_string(agentd_state_dir(ctx));
        return r;
    }
    if (strcmp(arg(args, 0), "get") == 0) {
        r = agentd_state_read(ctx, arg(args, 1), &data, &len);
        *ret = r < 0 ? json_string(strerror(-r)) : json_stringn(data, len);
        free(data);
        return r;
    }
    if (strcmp(arg(args, 0), "rm") == 0) {
        r = agentd_state_remove(ctx, arg(args, 1));
        *ret = r < 0 ? json_string(strerror(-r)) : json_true();
        return r;
    }
    *ret = json_string("usage: probe state get|put|rm NAME [DATA]");
    return -EINVAL;
}

static int v_count(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    agentd_metric_add(P(ctx)->calls, 1);
    *ret = json_true();
    return 0;
}

static void child_line(struct agentd_child *c, int stream, const char *line, size_t len, void *ud)
{
    agentd_log(ud, AGENTD_LOG_INFO, "child %s: %.*s", stream == 1 ? "stdout" : "stderr", (int)len,
               line);
}

static void child_exit(struct agentd_child *c, int64_t status, int sig, void *ud)
{
    agentd_log(ud, AGENTD_LOG_INFO, "child exited: status %lld signal %d", (long long)status, sig);
}

static int v_spawn(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    const char *argv[16];
    size_t n = json_array_size(args);
    struct agentd_child *c;
    int r;

    if (n == 0 || n > 15) {
        *ret = json_string("usage: probe spawn PROGRAM [ARGS...]");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        argv[i] = arg(args, i);
    argv[n] = NULL;
    struct agentd_child_opts o = {
        .argv = argv,
        .die_with_agentd = true,
        .on_line = child_line,
        .on_exit = child_exit,
        .ud = ctx,
    };
    r = agentd_child_spawn(ctx, &o, &c);
    if (r < 0) {
        *ret = json_string(uv_strerror(r));
        return r;
    }
    *ret = json_integer(agentd_child_pid(c));
    return 0;
}

static int probe_configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    struct probe *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    p->conf = conf;
    p->seen = json_array();
    agentd_plugin_set_data(ctx, p);
    if (p->conf->stop_delay_ms)
        agentd_plugin_set_stop_timeout(ctx, 0); /* keep agentd.stop_timeout */
    return 0;
}

static int probe_start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    struct probe *p = P(ctx);
    int r;

    p->starts++;
    r = agentd_health_register(ctx, "probe:main", p->conf->critical, &p->check);
    if (r < 0)
        return agentd_err_set(err, "cannot register health check: %s", strerror(-r));
    agentd_health_set(p->check, AGENTD_HEALTH_PASS, "probe started");
    p->calls =
        agentd_metric_counter(ctx, "agentd_probe_calls_total", "Calls of the count verb", NULL);
    agentd_event_subscribe(ctx, "agent.*", on_event, NULL);
    agentd_event_subscribe(ctx, "probe.*", on_event, NULL);
    agentd_event_subscribe(ctx, "health.*", on_event, NULL);
    agentd_event_subscribe(ctx, "targetgroup.*", on_event, NULL);
    agentd_control_register(ctx, "conf", "show the probe's config", v_conf, NULL);
    agentd_control_register(ctx, "health", "set probe:main", v_health, NULL);
    agentd_control_register(ctx, "publish", "publish an event", v_publish, NULL);
    agentd_control_register(ctx, "events", "events received", v_events, NULL);
    agentd_control_register(ctx, "state", "state store", v_state, NULL);
    agentd_control_register(ctx, "count", "bump a counter", v_count, NULL);
    agentd_control_register(ctx, "spawn", "spawn a child", v_spawn, NULL);
    agentd_plugin_report(ctx, false, "probing: %s", p->conf->message);
    return 0;
}

static void stop_timer_closed(uv_handle_t *h)
{
    struct agentd_plugin_ctx *ctx = h->data;
    struct probe *p = P(ctx);

    p->done(ctx);
}

static void stop_timer_cb(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, stop_timer_closed);
}

static void probe_stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    struct probe *p = P(ctx);

    agentd_log(ctx, AGENTD_LOG_INFO, "stopping (draining=%d)", agentd_health_draining(ctx));
    p->done = done;
    uv_timer_init(agentd_loop(ctx), &p->stop_timer);
    p->stop_timer.data = ctx;
    uv_timer_start(&p->stop_timer, stop_timer_cb, p->conf->stop_delay_ms, 0);
}

static int probe_reload(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    struct probe *p = P(ctx);

    if (!p->conf->can_reload)
        return -EOPNOTSUPP;
    p->conf = conf;
    p->reloads++;
    agentd_plugin_report(ctx, false, "probing: %s", p->conf->message);
    return 0;
}

static void probe_status(struct agentd_plugin_ctx *ctx, json_t *out)
{
    struct probe *p = P(ctx);

    json_object_set_new(out, "starts", json_integer(p->starts));
    json_object_set_new(out, "reloads", json_integer(p->reloads));
    json_object_set_new(out, "events", json_integer(p->events));
}

static void probe_destroy(struct agentd_plugin_ctx *ctx)
{
    struct probe *p = P(ctx);

    if (!p)
        return;
    json_decref(p->seen);
    free(p);
    agentd_plugin_set_data(ctx, NULL);
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "probe",
    .description = "test plugin exercising the host services",
    .schema = &probe_schema,
    .configure = probe_configure,
    .start = probe_start,
    .stop = probe_stop,
    .reload = probe_reload,
    .status = probe_status,
    .destroy = probe_destroy,
};

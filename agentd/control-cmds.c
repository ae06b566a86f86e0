/* What the control socket answers: the built-in commands (status, plugins,
 * health, metrics, reload, verbs) and the verbs plugins register with
 * agentd_control_register(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control-proto.h"
#include "host.h"

#define MAX_VERBS 512

struct verb {
    struct agentd_plugin_ctx *ctx;
    char *name;
    char *help;
    agentd_control_fn fn;
    void *ud;
    struct verb *next;
};

static struct verb *verbs;
static size_t nverbs;

int agentd_control_register(struct agentd_plugin_ctx *ctx, const char *verb, const char *help,
                            agentd_control_fn fn, void *ud)
{
    struct verb *v, **pp;

    if (!ctx || !ctx->desc || !verb || !*verb || !fn)
        return -EINVAL;
    for (v = verbs; v; v = v->next)
        if (v->ctx == ctx && strcmp(v->name, verb) == 0)
            return -EEXIST;
    if (nverbs >= MAX_VERBS || !(v = calloc(1, sizeof(*v))))
        return -ENOMEM;
    v->name = strdup(verb);
    v->help = strdup(help ? help : "");
    if (!v->name || !v->help) {
        free(v->name);
        free(v->help);
        free(v);
        return -ENOMEM;
    }
    v->ctx = ctx;
    v->fn = fn;
    v->ud = ud;
    for (pp = &verbs; *pp; pp = &(*pp)->next)
        ;
    *pp = v;
    nverbs++;
    return 0;
}

void control_drop_ctx(struct agentd_plugin_ctx *ctx)
{
    struct verb **pp = &verbs;

    while (*pp) {
        struct verb *v = *pp;
        if (v->ctx == ctx) {
            *pp = v->next;
            free(v->name);
            free(v->help);
            free(v);
            nverbs--;
        } else {
            pp = &v->next;
        }
    }
}

json_t *control_verbs_json(const struct agentd_plugin_ctx *ctx)
{
    json_t *arr = json_array();

    for (struct verb *v = verbs; v; v = v->next)
        if (!ctx || v->ctx == ctx)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "plugin", v->ctx->desc->name,
                                                 "verb", v->name, "help", v->help));
    return arr;
}

int control_call_verb(const char *plugin, const char *verb, const json_t *args, json_t **ret_result)
{
    struct agentd_plugin_ctx *ctx = plugin_ctx_find(plugin);

    *ret_result = NULL;
    if (!ctx)
        return -ENOENT;
    for (struct verb *v = verbs; v; v = v->next)
        if (v->ctx == ctx && strcmp(v->name, verb) == 0)
            return v->fn(ctx, args, ret_result, v->ud);
    return -EOPNOTSUPP;
}

static json_t *plugin_json(struct agentd_plugin_ctx *p, bool details)
{
    json_t *o =
        json_pack("{s:s,s:s,s:s?,s:s?,s:s}", "name", p->desc->name, "state", plugin_state_name(p),
                  "summary", p->summary, "error", p->error, "file", p->mod->file);

    if (details) {
        json_t *d = json_object();
        if (p->state == PLUGIN_RUNNING && p->desc->status)
            p->desc->status(p, d);
        json_object_set_new(o, "details", d);
    } else {
        json_object_set_new(o, "description",
                            json_string(p->desc->description ? p->desc->description : ""));
    }
    return o;
}

json_t *plugins_json(void)
{
    json_t *arr = json_array();

    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        json_array_append_new(arr, plugin_json(p, false));
    return arr;
}

json_t *status_json(void)
{
    json_t *arr = json_array(), *reload;
    char summary[256];

    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        json_array_append_new(arr, plugin_json(p, true));
    reload = json_pack("{s:b,s:O}", "ok", host.reload_ok, "errors", host.reload_errors);
    if (host.reload_time_ms)
        json_object_set_new(reload, "time", json_integer((json_int_t)(host.reload_time_ms / 1000)));
    else
        json_object_set_new(reload, "time", json_null());
    notify_summary(summary, sizeof(summary));
    return json_pack("{s:s,s:I,s:s,s:s,s:o,s:b,s:o}", "version", PACKAGE_VERSION, "uptime_s",
                     (json_int_t)((uv_now(host.loop) - host.start_ms) / 1000), "config",
                     host.config_abs ? host.config_abs : host.config_path, "summary", summary,
                     "reload", reload, "stopping", host.stopping, "plugins", arr);
}

static char *metrics_text(void)
{
    static struct agentd_metric *uptime;
    size_t len;

    if (!uptime)
        uptime = agentd_metric_gauge(NULL, "agentd_uptime_seconds", "Seconds since agentd started",
                                     NULL);
    agentd_metric_set(uptime, (double)(uv_now(host.loop) - host.start_ms) / 1000.0);
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next) {
        const char *labels[] = {"plugin", p->desc->name, NULL};
        struct agentd_metric *m = agentd_metric_gauge(
            NULL, "agentd_plugin_up", "1 if the plugin is running, 0 if not", labels);
        agentd_metric_set(m, p->state == PLUGIN_RUNNING ? 1 : 0);
    }
    return agentd_metrics_render(NULL, &len);
}

int control_dispatch(const struct proto_request *req, char **ret_reply)
{
    static struct agentd_metric *requests;
    json_t *result = NULL, *errors = NULL;
    char msg[300];
    int r;

    if (!requests)
        requests = agentd_metric_counter(NULL, "agentd_control_requests_total",
                                         "Requests answered on the control socket", NULL);
    agentd_metric_add(requests, 1);

    if (strcmp(req->cmd, "status") == 0) {
        *ret_reply = proto_reply_ok(status_json());
    } else if (strcmp(req->cmd, "plugins") == 0) {
        *ret_reply = proto_reply_ok(plugins_json());
    } else if (strcmp(req->cmd, "health") == 0) {
        *ret_reply = proto_reply_ok(health_json());
    } else if (strcmp(req->cmd, "metrics") == 0) {
        char *text = metrics_text();
        *ret_reply =
            text ? proto_reply_ok(json_string(text)) : proto_reply_error("metrics too large", NULL);
        free(text);
    } else if (strcmp(req->cmd, "verbs") == 0) {
        *ret_reply = proto_reply_ok(control_verbs_json(NULL));
    } else if (strcmp(req->cmd, "reload") == 0) {
        r = reload_run(&errors);
        if (r < 0)
            *ret_reply = proto_reply_error(r == -EBUSY ? "a reload or stop is in progress"
                                                       : "configuration invalid; keeping the "
                                                         "running configuration",
                                           errors);
        else
            *ret_reply = proto_reply_ok(status_json()); /* errors are in there too */
        if (r >= 0)
            json_decref(errors);
    } else if (strcmp(req->cmd, "plugin") == 0) {
        r = control_call_verb(req->plugin, req->verb, req->args, &result);
        if (r >= 0) {
            *ret_reply = proto_reply_ok(result);
            return 0;
        }
        if (r == -ENOENT && !result)
            snprintf(msg, sizeof(msg), "no plugin '%.64s' is running", req->plugin);
        else if (r == -EOPNOTSUPP && !result)
            snprintf(msg, sizeof(msg), "plugin '%.64s' has no verb '%.64s'", req->plugin,
                     req->verb);
        else if (json_is_string(result))
            snprintf(msg, sizeof(msg), "%s", json_string_value(result));
        else
            snprintf(msg, sizeof(msg), "%.64s %.64s: %s", req->plugin, req->verb, strerror(-r));
        json_decref(result);
        *ret_reply = proto_reply_error(msg, NULL);
    } else {
        snprintf(msg, sizeof(msg), "unknown command '%.64s'", req->cmd);
        *ret_reply = proto_reply_error(msg, NULL);
    }
    return 0;
}

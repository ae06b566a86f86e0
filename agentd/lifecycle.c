/* Plugin lifecycle: configure → start → (reload)* → stop → destroy. Missing
 * callbacks are no-ops. Stop is asynchronous and bounded: when a plugin does
 * not call done within its stop timeout the host gives up on it, logs that,
 * and never frees its handle (it may still own live libuv handles).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws-internal.h"
#include "host.h"

struct host host;

struct agentd_plugin_ctx *plugin_ctx_new(struct plugin_module *mod)
{
    struct agentd_plugin_ctx *ctx = calloc(1, sizeof(*ctx));

    if (!ctx)
        return NULL;
    ctx->mod = mod;
    ctx->desc = mod->desc;
    ctx->state = PLUGIN_NEW;
    ctx->stop_timeout_ms = host.cfg && host.cfg->core ? host.cfg->core->stop_timeout_ms : 30000;
    return ctx;
}

void plugin_ctx_link(struct agentd_plugin_ctx *ctx)
{
    struct agentd_plugin_ctx **pp;

    for (pp = &host.plugins; *pp; pp = &(*pp)->next)
        ;
    ctx->next = NULL;
    *pp = ctx;
}

void plugin_ctx_unlink(struct agentd_plugin_ctx *ctx)
{
    for (struct agentd_plugin_ctx **pp = &host.plugins; *pp; pp = &(*pp)->next) {
        if (*pp == ctx) {
            *pp = ctx->next;
            ctx->next = NULL;
            return;
        }
    }
}

struct agentd_plugin_ctx *plugin_ctx_find(const char *name)
{
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        if (strcmp(p->desc->name, name) == 0)
            return p;
    return NULL;
}

const char *plugin_state_name(const struct agentd_plugin_ctx *ctx)
{
    switch (ctx->state) {
    case PLUGIN_NEW:
        return "new";
    case PLUGIN_CONFIGURED:
        return "configured";
    case PLUGIN_RUNNING:
        return ctx->degraded ? "degraded" : "running";
    case PLUGIN_FAILED:
        return "failed";
    case PLUGIN_STOPPING:
        return "stopping";
    case PLUGIN_STOPPED:
        return "stopped";
    }
    return "unknown";
}

void plugin_set_error(struct agentd_plugin_ctx *ctx, const char *msg)
{
    free(ctx->error);
    ctx->error = msg ? strdup(msg) : NULL;
}

static void release_host_side(struct agentd_plugin_ctx *ctx)
{
    events_drop_ctx(ctx);
    control_drop_ctx(ctx);
    health_drop_ctx(ctx);
    aws_creds_forget_ctx(ctx); /* "removed when the plugin stops" (plugin.h) */
}

void plugin_destroy(struct agentd_plugin_ctx *ctx)
{
    if (ctx->desc->destroy && !ctx->destroyed && ctx->state != PLUGIN_NEW)
        ctx->desc->destroy(ctx);
    ctx->destroyed = true;
    ctx->data = NULL;
    release_host_side(ctx);
    if (ctx->conf) {
        config_free(ctx->desc->schema, ctx->desc->flags & AGENTD_PLUGIN_LIST_ROOT, ctx->conf);
        ctx->conf = NULL;
    }
}

static void fail(struct agentd_plugin_ctx *ctx, const char *what, int r, struct agentd_err *err)
{
    char msg[sizeof(err->msg) + 64];

    if (err->msg[0])
        snprintf(msg, sizeof(msg), "%s", err->msg);
    else
        snprintf(msg, sizeof(msg), "%s failed: %s", what, strerror(r < 0 ? -r : EINVAL));
    plugin_set_error(ctx, msg);
    agentd_log(ctx, AGENTD_LOG_ERR, "%s failed: %s", what, msg);
    if (ctx->desc->destroy)
        ctx->desc->destroy(ctx);
    ctx->destroyed = true;
    ctx->data = NULL;
    release_host_side(ctx);
    ctx->state = PLUGIN_FAILED;
    notify_status_update();
}

int plugin_configure(struct agentd_plugin_ctx *ctx, void *conf)
{
    struct agentd_err err = {{0}};
    int r = 0;

    if (ctx->conf && ctx->conf != conf)
        config_free(ctx->desc->schema, ctx->desc->flags & AGENTD_PLUGIN_LIST_ROOT, ctx->conf);
    ctx->conf = conf;
    plugin_set_error(ctx, NULL);
    ctx->degraded = false;
    free(ctx->summary);
    ctx->summary = NULL;
    ctx->stop_timeout_ms = host.cfg && host.cfg->core ? host.cfg->core->stop_timeout_ms : 30000;
    ctx->state = PLUGIN_NEW;
    ctx->destroyed = false;
    if (ctx->desc->configure)
        r = ctx->desc->configure(ctx, conf, &err);
    ctx->state = PLUGIN_CONFIGURED;
    if (r < 0) {
        fail(ctx, "configure", r, &err);
        return r;
    }
    return 0;
}

int plugin_start(struct agentd_plugin_ctx *ctx)
{
    struct agentd_err err = {{0}};
    int r = 0;

    if (ctx->state != PLUGIN_CONFIGURED)
        return -EINVAL;
    ctx->start_seq = ++host.next_seq;
    if (ctx->desc->start)
        r = ctx->desc->start(ctx, &err);
    if (r < 0) {
        fail(ctx, "start", r, &err);
        return r;
    }
    ctx->state = PLUGIN_RUNNING;
    agentd_log(ctx, AGENTD_LOG_DEBUG, "started");
    notify_status_update();
    return 0;
}

static void stop_finished(struct agentd_plugin_ctx *ctx)
{
    plugin_stopped_fn cb = ctx->stopped_cb;

    ctx->stopped_cb = NULL;
    ctx->state = PLUGIN_STOPPED;
    if (ctx->stop_timer_init)
        uv_timer_stop(&ctx->stop_timer);
    if (cb)
        cb(ctx, ctx->stopped_ud);
}

static void stop_done(struct agentd_plugin_ctx *ctx)
{
    if (ctx->state != PLUGIN_STOPPING)
        return; /* late: the timeout already gave up on it */
    agentd_log(ctx, AGENTD_LOG_DEBUG, "stopped");
    stop_finished(ctx);
}

static void stop_timeout_cb(uv_timer_t *t)
{
    struct agentd_plugin_ctx *ctx = t->data;

    if (ctx->state != PLUGIN_STOPPING)
        return;
    agentd_log(ctx, AGENTD_LOG_WARNING, "did not stop within %llu ms; giving up on it",
               (unsigned long long)ctx->stop_timeout_ms);
    ctx->stop_timed_out = true;
    stop_finished(ctx);
}

void plugin_stop(struct agentd_plugin_ctx *ctx, plugin_stopped_fn cb, void *ud)
{
    if (ctx->state != PLUGIN_RUNNING) {
        if (cb)
            cb(ctx, ud);
        return;
    }
    ctx->state = PLUGIN_STOPPING;
    ctx->stopped_cb = cb;
    ctx->stopped_ud = ud;
    if (!ctx->desc->stop) {
        stop_finished(ctx);
        return;
    }
    if (!ctx->stop_timer_init) {
        uv_timer_init(host.loop, &ctx->stop_timer);
        ctx->stop_timer.data = ctx;
        ctx->stop_timer_init = true;
    }
    uv_timer_start(&ctx->stop_timer, stop_timeout_cb, ctx->stop_timeout_ms, 0);
    ctx->desc->stop(ctx, stop_done);
}

static void ctx_closed(uv_handle_t *h)
{
    free(h->data);
}

void plugin_ctx_free(struct agentd_plugin_ctx *ctx)
{
    plugin_ctx_unlink(ctx);
    if (ctx->stop_timed_out)
        return; /* its plugin may still call us: leak it on purpose */
    free(ctx->summary);
    free(ctx->error);
    free(ctx->state_path);
    if (ctx->stop_timer_init)
        uv_close((uv_handle_t *)&ctx->stop_timer, ctx_closed);
    else
        free(ctx);
}

/* ---- the plugin's own handle (plugin.h) ---- */

void agentd_plugin_set_data(struct agentd_plugin_ctx *ctx, void *data)
{
    ctx->data = data;
}

void *agentd_plugin_get_data(struct agentd_plugin_ctx *ctx)
{
    return ctx->data;
}

const char *agentd_plugin_name(struct agentd_plugin_ctx *ctx)
{
    return ctx && ctx->desc ? ctx->desc->name : "agentd";
}

uv_loop_t *agentd_loop(struct agentd_plugin_ctx *ctx)
{
    return host.loop;
}

void agentd_plugin_report(struct agentd_plugin_ctx *ctx, bool degraded, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    if (!ctx || !ctx->desc)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (ctx->degraded != degraded)
        agentd_log(ctx, degraded ? AGENTD_LOG_WARNING : AGENTD_LOG_NOTICE, "%s: %s",
                   degraded ? "degraded" : "recovered", buf);
    ctx->degraded = degraded;
    if (!ctx->summary || strcmp(ctx->summary, buf) != 0) {
        free(ctx->summary);
        ctx->summary = strdup(buf);
    }
    notify_status_update();
}

void agentd_plugin_set_stop_timeout(struct agentd_plugin_ctx *ctx, uint64_t ms)
{
    if (ctx && ms > ctx->stop_timeout_ms)
        ctx->stop_timeout_ms = ms;
}

bool agentd_stopping(struct agentd_plugin_ctx *ctx)
{
    return host.stopping;
}

/* Reload (SIGHUP, `agentctl reload`): the new configuration is built and
 * validated completely before anything changes. An invalid one is refused
 * and recorded for `agentctl status`; a valid one is applied plugin by
 * plugin: reload() where the config changed (restart when a plugin cannot
 * reload), start for added plugins, stop for removed ones, and a new attempt
 * for plugins that had failed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static unsigned pending; /* restarts and removals still in flight */
static bool in_progress;

static void reload_finished(void)
{
    if (!in_progress || pending)
        return;
    in_progress = false;
    agentd_event_publish(NULL, "agent.reloaded", NULL);
    notify_ready();
    log_notice("reload done: %s", json_array_size(host.reload_errors) ? "with errors" : "ok");
}

static void record_error(const char *fmt, ...) AGENTD_PRINTF(1, 2);
static void record_error(const char *fmt, ...)
{
    char buf[700];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(host.reload_errors, json_string(buf));
    host.reload_ok = false;
}

static void removed_stopped(struct agentd_plugin_ctx *ctx, void *ud)
{
    plugin_destroy(ctx);
    plugin_ctx_free(ctx);
    pending--;
    notify_status_update();
    reload_finished();
    host_stop_continue();
}

static void restart_stopped(struct agentd_plugin_ctx *ctx, void *ud)
{
    void *conf = ud;

    plugin_destroy(ctx);
    if (host.stopping) {
        config_free(ctx->desc->schema, ctx->desc->flags & AGENTD_PLUGIN_LIST_ROOT, conf);
    } else if (plugin_configure(ctx, conf) == 0 && plugin_start(ctx) == 0) {
        agentd_log(ctx, AGENTD_LOG_NOTICE, "restarted with the new configuration");
    } else {
        record_error("%s: restart failed: %s", ctx->desc->name, ctx->error ? ctx->error : "");
    }
    pending--;
    reload_finished();
    host_stop_continue();
}

static bool conf_equal(const struct agentd_plugin *d, const void *a, const void *b)
{
    if (!d->schema)
        return true;
    if (!a || !b)
        return a == b;
    return config_equal(d->schema, d->flags & AGENTD_PLUGIN_LIST_ROOT, a, b);
}

static void apply_core(const struct core_conf *old, const struct core_conf *now)
{
    if (!host.debug)
        log_set_level(core_conf_log_level(now));
    meta_set_static(&now->metadata);
    if (old && strcmp(old->control_socket, now->control_socket) != 0)
        log_warning("agentd.control_socket changed: takes effect after a restart");
    if (old && strcmp(old->state_dir, now->state_dir) != 0)
        log_warning("agentd.state_dir changed: takes effect after a restart");
}

static void reload_plugin(struct agentd_plugin_ctx *ctx, struct host_config_entry *e)
{
    const struct agentd_plugin *d = ctx->desc;
    struct agentd_err err = {{0}};
    int r = -EOPNOTSUPP;

    if (ctx->state == PLUGIN_FAILED) {
        agentd_log(ctx, AGENTD_LOG_NOTICE, "was failed: trying again");
        if (plugin_configure(ctx, e->conf) == 0)
            plugin_start(ctx);
        e->conf = NULL;
        if (ctx->state == PLUGIN_FAILED)
            record_error("%s: %s", d->name, ctx->error ? ctx->error : "failed");
        return;
    }
    if (ctx->state != PLUGIN_RUNNING || conf_equal(d, ctx->conf, e->conf))
        return;
    if (d->reload)
        r = d->reload(ctx, e->conf, &err);
    if (r >= 0) {
        if (ctx->conf)
            config_free(d->schema, d->flags & AGENTD_PLUGIN_LIST_ROOT, ctx->conf);
        ctx->conf = e->conf;
        e->conf = NULL;
        agentd_log(ctx, AGENTD_LOG_NOTICE, "reloaded");
        return;
    }
    if (r != -EOPNOTSUPP) {
        agentd_log(ctx, AGENTD_LOG_ERR, "reload failed, keeping the old configuration: %s",
                   err.msg[0] ? err.msg : strerror(-r));
        record_error("%s: reload failed: %s", d->name, err.msg[0] ? err.msg : strerror(-r));
        return;
    }
    agentd_log(ctx, AGENTD_LOG_INFO, "configuration changed: restarting");
    pending++;
    void *conf = e->conf;
    e->conf = NULL;
    plugin_stop(ctx, restart_stopped, conf);
}

static void apply(struct host_config *cfg)
{
    struct host_config *old = host.cfg;
    bool *used = calloc(cfg->n ? cfg->n : 1, sizeof(bool));
    struct agentd_plugin_ctx *p, *next;

    if (!used) {
        /* Without it added plugins cannot be told apart: refuse cleanly. */
        log_error("reload: out of memory; keeping the running configuration");
        host_config_free(cfg);
        return;
    }
    host.cfg = cfg;
    apply_core(old ? old->core : NULL, cfg->core);
    in_progress = true;
    pending++; /* held until this function is done */

    for (p = host.plugins; p; p = next) {
        next = p->next;
        struct host_config_entry *e = host_config_find(cfg, p->desc->name);
        if (p->state == PLUGIN_STOPPING)
            continue;
        if (!e) {
            agentd_log(p, AGENTD_LOG_NOTICE, "removed from the configuration: stopping");
            pending++;
            if (p->state == PLUGIN_RUNNING)
                plugin_stop(p, removed_stopped, NULL);
            else
                removed_stopped(p, NULL);
            continue;
        }
        used[e - cfg->entries] = true;
        reload_plugin(p, e);
    }
    for (size_t i = 0; i < cfg->n; i++) {
        if (used[i])
            continue;
        p = plugin_ctx_new(cfg->entries[i].mod);
        if (!p)
            continue;
        plugin_ctx_link(p);
        agentd_log(p, AGENTD_LOG_NOTICE, "added to the configuration: starting");
        if (plugin_configure(p, cfg->entries[i].conf) == 0)
            plugin_start(p);
        cfg->entries[i].conf = NULL;
        if (p->state == PLUGIN_FAILED)
            record_error("%s: %s", p->desc->name, p->error ? p->error : "failed");
    }
    free(used);
    host_config_free(old);
    pending--;
    notify_status_update();
    reload_finished();
}

int reload_run(json_t **ret_errors)
{
    struct config_errors errs = {0};
    struct host_config *cfg = NULL;
    int r;

    if (ret_errors)
        *ret_errors = NULL;
    if (host.stopping || in_progress)
        return -EBUSY;
    notify_reloading();
    log_notice("reloading %s", host.config_path);
    r = host_config_build(host.config_path, &cfg, &errs);
    host.reload_time_ms = host_wall_ms();
    json_decref(host.reload_errors);
    if (r < 0) {
        host.reload_errors = config_errors_json(&errs);
        if (!host.reload_errors)
            host.reload_errors = json_array();
        if (json_array_size(host.reload_errors) == 0)
            json_array_append_new(host.reload_errors, json_string(strerror(-r)));
        host.reload_ok = false;
        size_t i;
        json_t *v;
        json_array_foreach(host.reload_errors, i, v) log_error("%s", json_string_value(v));
        log_error("reload refused: the configuration is invalid; keeping the running one");
        config_errors_clear(&errs);
        if (ret_errors)
            *ret_errors = json_deep_copy(host.reload_errors);
        notify_ready();
        return -EINVAL;
    }
    config_errors_clear(&errs);
    host.reload_errors = json_array();
    host.reload_ok = true;
    apply(cfg);
    if (ret_errors && json_array_size(host.reload_errors))
        *ret_errors = json_deep_copy(host.reload_errors);
    return 0;
}

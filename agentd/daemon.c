/* The daemon's life: start every configured plugin, serve, and on SIGTERM
 * or SIGINT run the stop phases (stopseq.c: announce, leave, flush, release,
 * complete; each plugin bounded by its stop timeout), then release
 * everything and return 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "http-client.h"

static uv_signal_t sig_term, sig_int, sig_hup;

void daemon_finish(void)
{
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        if (p->state != PLUGIN_STOPPING)
            plugin_destroy(p);
    log_notice("stopped");
    notify_watchdog_stop();
    control_close();
    child_close_all();
    stopseq_close();
    http_client_shutdown(); /* its libuv handles, once nothing is in flight */
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    events_close();
    uv_stop(host.loop);
}

void host_shutdown(const char *why)
{
    if (host.stopping) {
        log_notice("%s: already stopping", why);
        return;
    }
    host.stopping = true;
    stopseq_shutdown_begins();
    log_notice("stopping (%s); stop phase announce: health answers 503 draining", why);
    notify_stopping();
    agentd_event_publish(NULL, "agent.stopping", json_pack("{s:s}", "reason", why));
    agentd_health_set_draining(NULL, true, "agentd is stopping");
    /* Subscribers hear agent.stopping before anyone's stop() runs. */
    events_flush();
    host_stop_continue();
}

static void on_signal(uv_signal_t *s, int signum)
{
    if (signum == SIGHUP) {
        if (reload_run(NULL) == -EBUSY)
            log_warning("SIGHUP ignored: a reload or stop is in progress");
        return;
    }
    host_shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

int daemon_run(struct host_config *cfg)
{
    int r;

    host.cfg = cfg;
    if (!host.debug)
        log_set_level(core_conf_log_level(cfg->core));
    meta_set_static(&cfg->core->metadata);
    events_init(host.loop);

    r = control_listen(host.loop, cfg->core->control_socket, cfg->core->admin_group);
    if (r < 0) {
        log_error("cannot listen on control socket '%s': %s", cfg->core->control_socket,
                  uv_strerror(r));
        return 1;
    }
    uv_signal_init(host.loop, &sig_term);
    uv_signal_init(host.loop, &sig_int);
    uv_signal_init(host.loop, &sig_hup);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);
    notify_watchdog_start(host.loop);

    for (size_t i = 0; i < cfg->n; i++) {
        struct agentd_plugin_ctx *ctx = plugin_ctx_new(cfg->entries[i].mod);
        if (!ctx) {
            log_error("out of memory");
            return 1;
        }
        plugin_ctx_link(ctx);
        plugin_configure(ctx, cfg->entries[i].conf);
        cfg->entries[i].conf = NULL;
    }
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        if (p->state == PLUGIN_CONFIGURED)
            plugin_start(p);

    char summary[256];
    notify_summary(summary, sizeof(summary));
    log_notice("agentd %s ready: %s", PACKAGE_VERSION, summary);
    notify_ready();
    uv_run(host.loop, UV_RUN_DEFAULT);
    return 0;
}

void daemon_teardown(void)
{
    while (host.plugins) {
        struct agentd_plugin_ctx *p = host.plugins;
        if (p->state != PLUGIN_STOPPING)
            plugin_destroy(p);
        plugin_ctx_free(p);
    }
    /* After an early failure nothing has closed these yet (both idempotent). */
    control_close();
    events_close();
    /* Let close callbacks run; a plugin that never stopped may hold handles,
     * so do not wait for the loop to empty. */
    for (int i = 0; i < 8; i++)
        uv_run(host.loop, UV_RUN_NOWAIT);
    host_config_free(host.cfg);
    host.cfg = NULL;
    health_free();
    metrics_free();
    meta_free();
    json_decref(host.reload_errors);
    /* A plugin that never stopped may still own handles on the loop and code
     * in its module: then keep both (the process is exiting anyway). */
    if (uv_loop_close(host.loop) == 0) {
        plugin_modules_free();
        free(host.loop);
        host.loop = NULL;
    }
    free(host.config_path);
    free(host.config_abs);
}

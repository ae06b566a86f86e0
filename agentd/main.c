/* agentd: the daemon's entry point. Parses the command line, builds the
 * configuration, starts every configured plugin on one libuv loop, tells
 * systemd it is ready, and on SIGTERM stops the plugins in reverse start
 * order before exiting 0. Exit codes: 0 clean, 78 configuration error,
 * 1 anything else.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static uv_signal_t sig_term, sig_int, sig_hup;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: agentd [-c FILE] [--check-config] [--dump-config] [--list-plugins]\n"
            "              [--list-options PLUGIN] [--version] [--foreground] [--debug]\n"
            "\n"
            "  -c, --config FILE      configuration (default %s/agentd.yaml)\n"
            "      --check-config     validate the configuration and exit (0 or 78)\n"
            "      --dump-config      print the effective configuration and exit\n"
            "      --list-plugins     list the plugins found and exit\n"
            "      --list-options P   describe plugin P's options and exit\n"
            "      --foreground       run in the foreground (agentd always does)\n"
            "      --debug            log at debug level\n"
            "      --version          print the version and exit\n",
            AGENTD_CONF_DIR);
}

static void print_errors(const struct config_errors *errs)
{
    config_errors_print(errs, stderr);
}

/* ---- shutdown ---- */

static void finish(void)
{
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        if (p->state != PLUGIN_STOPPING)
            plugin_destroy(p);
    log_notice("stopped");
    notify_watchdog_stop();
    control_close();
    child_close_all();
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    events_close();
    uv_stop(host.loop);
}

static bool finished;

static void plugin_stopped(struct agentd_plugin_ctx *ctx, void *ud)
{
    plugin_destroy(ctx);
    notify_status_update();
    host_stop_continue();
}

/* One at a time, newest first, so that a plugin stops before the ones it
 * was started after (targetgroup drains while health still answers). */
void host_stop_continue(void)
{
    struct agentd_plugin_ctx *last = NULL;

    if (!host.stopping || finished)
        return;
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next) {
        /* A restart or removal from a reload is still stopping: wait for it. */
        if (p->state == PLUGIN_STOPPING)
            return;
        if (p->state == PLUGIN_RUNNING && (!last || p->start_seq > last->start_seq))
            last = p;
    }
    if (!last) {
        finished = true;
        finish();
        return;
    }
    agentd_log(last, AGENTD_LOG_DEBUG, "stopping");
    plugin_stop(last, plugin_stopped, NULL);
}

void host_shutdown(const char *why)
{
    if (host.stopping) {
        log_notice("%s: already stopping", why);
        return;
    }
    host.stopping = true;
    log_notice("stopping (%s)", why);
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

/* ---- modes that print and exit ---- */

static int list_plugins(void)
{
    for (struct plugin_module *m = host.modules; m; m = m->next)
        printf("%-14s %s (%s)\n", m->desc->name, m->desc->description ? m->desc->description : "",
               m->file);
    return 0;
}

static int list_options(const char *name)
{
    struct plugin_module *m;

    if (strcmp(name, "agentd") == 0) {
        config_describe(stdout, &core_schema, false);
        return 0;
    }
    m = plugin_module_find(name);
    if (!m) {
        fprintf(stderr, "agentd: no plugin '%s'\n", name);
        return 1;
    }
    if (!m->desc->schema)
        printf("%s takes no options\n", name);
    else
        config_describe(stdout, m->desc->schema, m->desc->flags & AGENTD_PLUGIN_LIST_ROOT);
    return 0;
}

static void dump_config(const struct host_config *cfg)
{
    config_dump(stdout, "agentd", &core_schema, false, cfg->core);
    for (size_t i = 0; i < cfg->n; i++) {
        const struct agentd_plugin *d = cfg->entries[i].mod->desc;
        if (d->schema)
            config_dump(stdout, d->name, d->schema, d->flags & AGENTD_PLUGIN_LIST_ROOT,
                        cfg->entries[i].conf);
        else
            printf("%s: {}\n", d->name);
    }
}

/* ---- the daemon ---- */

static int run(struct host_config *cfg)
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

static void teardown(void)
{
    while (host.plugins) {
        struct agentd_plugin_ctx *p = host.plugins;
        if (p->state != PLUGIN_STOPPING)
            plugin_destroy(p);
        plugin_ctx_free(p);
    }
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

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 256, OPT_DUMP, OPT_LIST, OPT_OPTS, OPT_VERSION, OPT_FG, OPT_DEBUG };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"dump-config", no_argument, NULL, OPT_DUMP},
        {"list-plugins", no_argument, NULL, OPT_LIST},
        {"list-options", required_argument, NULL, OPT_OPTS},
        {"version", no_argument, NULL, OPT_VERSION},
        {"foreground", no_argument, NULL, OPT_FG},
        {"debug", no_argument, NULL, OPT_DEBUG},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *config = AGENTD_CONF_DIR "/agentd.yaml", *list_opts = NULL;
    bool check = false, dump = false, list = false;
    struct config_errors errs = {0};
    struct host_config *cfg = NULL;
    int c, r, rc;

    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_DUMP:
            dump = true;
            break;
        case OPT_LIST:
            list = true;
            break;
        case OPT_OPTS:
            list_opts = optarg;
            break;
        case OPT_VERSION:
            printf("agentd %s (plugin ABI %d)\n", PACKAGE_VERSION, AGENTD_PLUGIN_ABI);
            return 0;
        case OPT_FG:
            break;
        case OPT_DEBUG:
            host.debug = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    log_init();
    if (host.debug)
        log_set_level(AGENTD_LOG_DEBUG);
    host.loop = malloc(sizeof(*host.loop));
    if (!host.loop || uv_loop_init(host.loop) < 0) {
        fprintf(stderr, "agentd: cannot create the event loop\n");
        return 1;
    }
    host.start_ms = uv_now(host.loop);
    host.config_path = strdup(config);
    host.config_abs = realpath(config, NULL);
    host.reload_ok = true;
    host.reload_errors = json_array();
    plugin_register_builtins();

    r = host_config_build(host.config_path, &cfg, &errs);
    if (list || list_opts) {
        if (r < 0)
            plugin_scan_dir(AGENTD_PLUGIN_DIR);
        rc = list ? list_plugins() : list_options(list_opts);
    } else if (r < 0) {
        print_errors(&errs);
        if (!check)
            fprintf(stderr, "agentd: configuration invalid; not starting\n");
        rc = AGENTD_EX_CONFIG;
    } else if (check) {
        printf("configuration OK\n");
        rc = 0;
    } else if (dump) {
        dump_config(cfg);
        rc = 0;
    } else {
        rc = run(cfg);
        cfg = NULL; /* now host.cfg */
    }
    config_errors_clear(&errs);
    if (cfg && cfg != host.cfg)
        host_config_free(cfg);
    teardown();
    return rc;
}

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
#include <sys/prctl.h>

#include "host.h"

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

    /* The role's secret key and session token live in this process's memory:
     * no core dump (the watchdog's SIGABRT included) and no ptrace by other
     * processes of our uid. Children (ssh, exec checks) get the default back
     * at execve. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

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
        rc = daemon_run(cfg);
        cfg = NULL; /* now host.cfg */
    }
    config_errors_clear(&errs);
    if (cfg && cfg != host.cfg)
        host_config_free(cfg);
    daemon_teardown();
    return rc;
}

/* The host's internal view: the one daemon instance, the plugin handle the
 * ABI keeps opaque, and the entry points the core modules offer each other.
 * Plugins never include this file.
 */
#ifndef AGENTD_HOST_H
#define AGENTD_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "agentd/plugin.h"
#include "conf.h"

#define AGENTD_DEFAULT_STATE_DIR "/var/lib/agentd"
#define AGENTD_DEFAULT_SOCKET    "/run/agentd/control.sock"
#define AGENTD_EX_CONFIG         78

/* The `agentd:` section of the config, filled from core_schema (core-conf.c). */
struct core_conf {
    char *plugin_dir;
    char *state_dir;
    char *control_socket;
    char *admin_group;
    int log_level; /* index into core_log_levels */
    uint64_t stop_timeout_ms;
    struct agentd_map metadata;
};

extern const struct agentd_schema core_schema;
/* Maps the log_level enum index to an agentd_log_level. */
int core_conf_log_level(const struct core_conf *cc);
/* Fills the defaults that depend on the environment (STATE_DIRECTORY,
 * RUNTIME_DIRECTORY) into a freshly applied core config. Returns 0 or -ENOMEM. */
int core_conf_finish(struct core_conf *cc);

/* A source of one plugin descriptor: a loaded .so or a built-in. */
struct plugin_module {
    const struct agentd_plugin *desc;
    void *dl;   /* dlopen handle; NULL for built-ins */
    char *file; /* path of the .so, or "built-in" */
    struct plugin_module *next;
};

enum plugin_state {
    PLUGIN_NEW,
    PLUGIN_CONFIGURED,
    PLUGIN_RUNNING,
    PLUGIN_FAILED,
    PLUGIN_STOPPING,
    PLUGIN_STOPPED,
};

typedef void (*plugin_stopped_fn)(struct agentd_plugin_ctx *ctx, void *ud);

struct agentd_plugin_ctx {
    const struct agentd_plugin *desc; /* NULL for the host's own handle */
    struct plugin_module *mod;
    void *data;
    void *conf; /* owned: freed with config_free */
    enum plugin_state state;
    bool degraded;
    bool destroyed;      /* destroy() ran since the last configure() */
    bool stop_timed_out; /* the plugin may still own live handles: never free it */
    char *summary;
    char *error;
    char *state_path;
    uint64_t stop_timeout_ms;
    uint64_t start_seq;
    uv_timer_t stop_timer;
    bool stop_timer_init;
    plugin_stopped_fn stopped_cb;
    void *stopped_ud;
    bool preparing;                 /* prepare() called, its done not yet (stopseq.c) */
    uint64_t prepare_gen;           /* which phase of the sequence it was called for */
    struct agentd_plugin_ctx *next; /* host.plugins, in start order */
};

/* The result of building a whole configuration (startup, reload, check). */
struct host_config_entry {
    struct plugin_module *mod;
    void *conf;
};

struct host_config {
    struct config_doc *doc;
    struct core_conf *core;
    size_t n;
    struct host_config_entry *entries; /* in start order */
};

struct host {
    uv_loop_t *loop;
    char *config_path;       /* as given: error messages name it so */
    char *config_abs;        /* absolute, for status */
    struct host_config *cfg; /* the running config: entries' conf moved to ctxs */
    struct plugin_module *modules;
    struct agentd_plugin_ctx *plugins;
    struct agentd_plugin_ctx core_ctx; /* "agentd": the host's own handle */
    uint64_t start_ms;                 /* uv_now at startup, for uptime */
    uint64_t next_seq;
    bool stopping;
    bool debug;              /* --debug: log level forced to debug */
    bool reload_ok;          /* result of the last reload */
    uint64_t reload_time_ms; /* wall clock; 0: never reloaded */
    json_t *reload_errors;   /* array of strings */
};

extern struct host host;

/* ---- log.c ---- */
void log_init(void);
void log_set_level(int level);
int log_get_level(void);
/* Parses "debug".."error"; returns the level or -EINVAL. */
int log_level_from_name(const char *name);
#define log_error(...)   agentd_log(NULL, AGENTD_LOG_ERR, __VA_ARGS__)
#define log_warning(...) agentd_log(NULL, AGENTD_LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  agentd_log(NULL, AGENTD_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    agentd_log(NULL, AGENTD_LOG_INFO, __VA_ARGS__)
#define log_debug(...)   agentd_log(NULL, AGENTD_LOG_DEBUG, __VA_ARGS__)

/* ---- notify.c: sd_notify, no-ops without NOTIFY_SOCKET ---- */
void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);
/* Sends STATUS= with the plugin summary when it changed since the last one. */
void notify_status_update(void);
/* The one-line summary, e.g. "3 plugins running, 1 failed". */
void notify_summary(char *buf, size_t size);
/* Starts WATCHDOG=1 pings at half of WATCHDOG_USEC when systemd asks. */
int notify_watchdog_start(uv_loop_t *loop);
void notify_watchdog_stop(void);

/* ---- plugin.c (loader) ---- */
extern const struct agentd_plugin *const builtin_plugins[];
/* Loads every *.so in dir (lexical order) not loaded yet. Refusals are logged
 * and skipped. Returns the number of new modules or -errno if dir is unreadable. */
int plugin_scan_dir(const char *dir);
/* Registers the built-in descriptors (builtins.c). */
void plugin_register_builtins(void);
struct plugin_module *plugin_module_find(const char *name);
void plugin_modules_free(void);
/* Checks one file for loading: ownership/mode (unless dev mode). Returns 0 or
 * -EPERM with *ret_why set to a static reason. */
int plugin_check_file(const char *path, const struct stat *st, bool dev, const char **ret_why);

/* ---- lifecycle.c ---- */
struct agentd_plugin_ctx *plugin_ctx_new(struct plugin_module *mod);
/* Appends to host.plugins. */
void plugin_ctx_link(struct agentd_plugin_ctx *ctx);
void plugin_ctx_unlink(struct agentd_plugin_ctx *ctx);
/* Takes ownership of conf. configure(); on failure marks failed and destroys. */
int plugin_configure(struct agentd_plugin_ctx *ctx, void *conf);
/* start(); on failure marks failed and destroys. */
int plugin_start(struct agentd_plugin_ctx *ctx);
/* Stops asynchronously, bounded by the stop timeout; cb runs once. */
void plugin_stop(struct agentd_plugin_ctx *ctx, plugin_stopped_fn cb, void *ud);
/* destroy() and release everything the host holds for the plugin (events,
 * verbs, health checks), then the conf. */
void plugin_destroy(struct agentd_plugin_ctx *ctx);
/* Frees the handle (after plugin_destroy); unlinks it first. */
void plugin_ctx_free(struct agentd_plugin_ctx *ctx);
const char *plugin_state_name(const struct agentd_plugin_ctx *ctx);
struct agentd_plugin_ctx *plugin_ctx_find(const char *name);
void plugin_set_error(struct agentd_plugin_ctx *ctx, const char *msg);

/* ---- hostconf.c ---- */
/* Loads path, applies the core section, scans the plugin directory and
 * applies every plugin's section. Errors go into errs; returns 0 or -EINVAL. */
int host_config_build(const char *path, struct host_config **ret, struct config_errors *errs);
void host_config_free(struct host_config *cfg);
struct host_config_entry *host_config_find(struct host_config *cfg, const char *name);

/* ---- events.c ---- */
void events_init(uv_loop_t *loop);
/* Delivers every queued event now (used before stopping). */
void events_flush(void);
void events_drop_ctx(struct agentd_plugin_ctx *ctx);
void events_close(void);

/* ---- metadata.c ---- */
/* Replaces the static map (agentd.metadata); publishes metadata.changed for
 * keys whose visible value changed. */
void meta_set_static(const struct agentd_map *map);
const char *meta_lookup(const char *name, void *ud);
void meta_free(void);

/* ---- healthreg.c ---- */
void health_drop_ctx(struct agentd_plugin_ctx *ctx);
json_t *health_json(void);
void health_free(void);

/* ---- metrics.c ---- */
void metrics_free(void);

/* ---- control*.c ---- */
int control_listen(uv_loop_t *loop, const char *path, const char *admin_group);
void control_close(void);
void control_drop_ctx(struct agentd_plugin_ctx *ctx);
/* Runs a registered plugin verb: returns 0/-errno and a result (owned). */
int control_call_verb(const char *plugin, const char *verb, const json_t *args,
                      json_t **ret_result);
json_t *control_verbs_json(const struct agentd_plugin_ctx *ctx);
json_t *status_json(void);
struct proto_request;
/* Answers one parsed request; *ret_reply is the reply line (caller frees). */
int control_dispatch(const struct proto_request *req, char **ret_reply);
json_t *plugins_json(void);

/* ---- reload.c ---- */
/* Builds the config at host.config_path and applies it. Returns 0, or
 * -EINVAL with *ret_errors (array of strings, owned) when it was refused. */
int reload_run(json_t **ret_errors);

/* ---- daemon.c ---- */
/* Runs the daemon on cfg (becomes host.cfg) until it has stopped; returns the
 * exit code. */
int daemon_run(struct host_config *cfg);
/* Frees what the daemon and the config hold (also after the print modes). */
void daemon_teardown(void);
void host_shutdown(const char *why);
/* Releases what the daemon holds and stops the loop, once every plugin stopped. */
void daemon_finish(void);

/* ---- stopseq.c: the stop phases (plugin.h, AGENTD_PLUGIN_STOP_*) ---- */
/* Runs the next step of the exiting sequence once nothing is stopping (no-op
 * unless shutting down). */
void host_stop_continue(void);
/* The phase a plugin stops in, from its descriptor's flags. */
enum agentd_stop_phase stopseq_role(const struct agentd_plugin *desc);
const char *stopseq_phase_name(enum agentd_stop_phase phase);
/* Called by host_shutdown before the first step: a sequence run without
 * exit ends (its requester hears -ECANCELED) and the exiting one begins. */
void stopseq_shutdown_begins(void);
void stopseq_close(void);

/* ---- state.c: the store, by directory (unit-testable) ---- */
int state_write_at(const char *dir, const char *name, const void *data, size_t len);
int state_read_at(const char *dir, const char *name, void **ret_data, size_t *ret_len);
int state_remove_at(const char *dir, const char *name);

/* ---- child.c ---- */
void child_close_all(void);

/* Wall clock in ms since the epoch. */
uint64_t host_wall_ms(void);

#endif

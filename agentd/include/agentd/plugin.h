/* agentd plugin ABI: the one header a plugin includes.
 *
 * A plugin is a shared object in the plugin directory that exports exactly one
 * symbol, `agentd_plugin`, a const struct agentd_plugin whose first member is
 * AGENTD_PLUGIN_ABI. Everything else in the plugin is static and built with
 * -fvisibility=hidden. The host calls the plugin only from its one libuv loop
 * thread, and a plugin calls the host only from that thread (work queued with
 * agentd_work_queue() runs elsewhere and must not call the host).
 *
 * Conventions: functions returning int return >= 0 on success and a negative
 * errno value on failure. Pointers returned as `const` are borrowed: valid until
 * the next return to the loop unless said otherwise. Output parameters are named
 * ret_* and are written only on success.
 */
#ifndef AGENTD_PLUGIN_H
#define AGENTD_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AGENTD_PLUGIN_ABI    1
#define AGENTD_PLUGIN_SYMBOL "agentd_plugin"
#define AGENTD_EXPORT        __attribute__((visibility("default")))
#define AGENTD_PRINTF(a, b)  __attribute__((format(printf, a, b)))

struct agentd_plugin_ctx; /* the host's handle for one plugin instance; opaque */

/* ------------------------------------------------------------------------ */
/* Errors handed back to the host from configure/start/reload.              */

struct agentd_err {
    char msg[512];
};

/* Formats a message into err (truncated to fit) and returns -EINVAL, so that
 * `return agentd_err_set(err, "...")` reads naturally. */
int agentd_err_set(struct agentd_err *err, const char *fmt, ...) AGENTD_PRINTF(2, 3);

/* ------------------------------------------------------------------------ */
/* Options: declared as tables, parsed and validated by the host.           */

enum agentd_opt_type {
    AGENTD_OPT_STRING,   /* char *                                           */
    AGENTD_OPT_INT,      /* int64_t, bounded by min/max when max > min       */
    AGENTD_OPT_BOOL,     /* bool                                             */
    AGENTD_OPT_DURATION, /* uint64_t milliseconds: "250ms", "5s", "2m", "1h", "1d" */
    AGENTD_OPT_SIZE,     /* uint64_t bytes: "512", "64KiB", "10MiB", "1GiB"  */
    AGENTD_OPT_ENUM,     /* int: index into `values`                         */
    AGENTD_OPT_CIDR,     /* struct agentd_cidr                               */
    AGENTD_OPT_HOSTPORT, /* char * "host:port", "[v6]:port"; validated       */
    AGENTD_OPT_URL,      /* char * "http(s)://..."; validated                */
    AGENTD_OPT_PATH,     /* char * absolute path                             */
    AGENTD_OPT_LIST,     /* struct agentd_list of `elem` (a scalar type above,
                          * or AGENTD_OPT_OBJECT with `sub`); a scalar given
                          * where a list is expected is a list of one        */
    AGENTD_OPT_MAP,      /* struct agentd_map: string keys to string values  */
    AGENTD_OPT_OBJECT,   /* void *: a struct of sub->size filled from a
                          * mapping with sub's options; NULL when absent     */
};

/* Option flags. */
#define AGENTD_OPT_REQUIRED 0x01u /* absence is an error */
#define AGENTD_OPT_SECRET   0x02u /* masked in --dump-config and status */
#define AGENTD_OPT_TEMPLATE                                                                        \
    0x04u /* string may hold {name} templates; names are                                           \
           * checked at load time (see agentd_template_expand) */
#define AGENTD_OPT_UNIQUE                                                                          \
    0x08u /* STRING in a LIST of OBJECT: no two items may                                          \
           * share a value (e.g. each item's name) */
#define AGENTD_OPT_ENDPOINT                                                                        \
    0x10u /* URL that receives signed requests: https://, or                                       \
           * http:// only to a loopback host (a test's emulator) */

struct agentd_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order; host bits cleared */
    unsigned prefix;
};

struct agentd_list {
    size_t n;
    void *items; /* array of n elements of the element's storage type */
};

struct agentd_map {
    size_t n;
    char **keys;
    char **values;
};

struct agentd_schema;
struct agentd_confctx;

struct agentd_option {
    const char *name; /* YAML key */
    enum agentd_opt_type type;
    size_t offset;                    /* offsetof() into the struct being filled */
    const char *def;                  /* default, as YAML text parsed like user input;
                                       * NULL: zero/NULL when absent */
    unsigned flags;                   /* AGENTD_OPT_* flags */
    int64_t min, max;                 /* INT value, DURATION ms, SIZE bytes, LIST length;
                                       * checked when max > min */
    enum agentd_opt_type elem;        /* element type for LIST */
    const char *const *values;        /* ENUM choices, NULL-terminated */
    const struct agentd_schema *sub;  /* OBJECT, or LIST of OBJECT */
    const char *const *template_vars; /* extra {names} this option allows, NULL-terminated */
    const char *description;          /* one line, for --list-options and the docs */
};

struct agentd_schema {
    const char *name;                    /* for docs: "health check" */
    size_t size;                         /* sizeof the struct the options fill */
    const struct agentd_option *options; /* terminated by an entry with name == NULL */
    /* Optional cross-field check, called after the options of one mapping are
     * filled. Report problems with agentd_conf_error(); return 0 or -EINVAL. */
    int (*validate)(void *obj, struct agentd_confctx *cc);
};

/* Reports a configuration error for the mapping being validated. `key` names
 * the offending option (its position and key path are used) or is NULL for the
 * mapping itself. Every error is collected; loading fails if there was any. */
void agentd_conf_error(struct agentd_confctx *cc, const char *key, const char *fmt, ...)
    AGENTD_PRINTF(3, 4);

/* Splits "host:port" or "[v6addr]:port" into newly allocated host and port
 * strings. Returns 0 or -EINVAL. Caller frees both. */
int agentd_hostport_split(const char *hp, char **ret_host, char **ret_port);

/* Whether the address (struct sockaddr_in or _in6) is inside the CIDR. */
bool agentd_cidr_contains(const struct agentd_cidr *cidr, const struct sockaddr *sa);

/* ------------------------------------------------------------------------ */
/* The descriptor.                                                          */

/* The plugin's config root is a mapping (the default) or a list of mappings. */
#define AGENTD_PLUGIN_LIST_ROOT 0x01u
/* Built into agentd and configured (with defaults) even when its key is absent. */
#define AGENTD_PLUGIN_ALWAYS 0x02u

/* Stop roles. When agentd stops, the host runs phases in this order, each
 * bounded and logged once:
 *   announce  the health endpoint answers 503 "draining"; agent.stopping is
 *             published. Every plugin is still running.
 *   leave     plugins flagged AGENTD_PLUGIN_STOP_LEAVE (targetgroup, a DNS
 *             plugin) are stopped, all at once: they take the instance out of
 *             traffic and wait for the drain.
 *   flush     plugins flagged AGENTD_PLUGIN_STOP_FLUSH (logs) are stopped, all
 *             at once: they ship everything written so far, then stop.
 *   release   every other plugin (no role flag: the default), one at a time,
 *             newest first.
 *   complete  plugins flagged AGENTD_PLUGIN_STOP_COMPLETE (an Auto Scaling
 *             plugin that completes lifecycle actions), then agentd exits.
 * So log pipelines keep reading and shipping while the instance drains, in
 * whatever order the config lists them. Each plugin's stop() is bounded by its
 * stop timeout (agentd_plugin_set_stop_timeout). A reload that leaves a
 * plugin's config unchanged runs no phase for it.
 *
 * ABI rule: role bits were added within ABI 1. A plugin built before them has
 * none and stops in release, as every plugin did; a host that predates them
 * ignores unknown flag bits and stops every plugin newest first. At most one
 * role bit may be set; a plugin with several is stopped in the earliest. New
 * roles get new bits, never a new meaning for an old one. */
#define AGENTD_PLUGIN_STOP_LEAVE    0x04u
#define AGENTD_PLUGIN_STOP_FLUSH    0x08u
#define AGENTD_PLUGIN_STOP_COMPLETE 0x10u

/* The phases, for agentd_stop_sequence_run() and the prepare() member. */
enum agentd_stop_phase {
    AGENTD_PHASE_ANNOUNCE = 1,
    AGENTD_PHASE_LEAVE = 2,
    AGENTD_PHASE_FLUSH = 3,
    AGENTD_PHASE_RELEASE = 4,
    AGENTD_PHASE_COMPLETE = 5,
};

typedef void (*agentd_stop_done_fn)(struct agentd_plugin_ctx *ctx);

struct agentd_plugin {
    unsigned abi;                       /* AGENTD_PLUGIN_ABI */
    const char *name;                   /* config key and name everywhere: "health" */
    const char *description;            /* one line */
    const struct agentd_schema *schema; /* NULL: the plugin takes no options */
    unsigned flags;                     /* AGENTD_PLUGIN_* */

    /* Takes the validated config. `conf` points to a struct of schema->size, or
     * for AGENTD_PLUGIN_LIST_ROOT to a struct agentd_list of such structs. The
     * host owns conf and keeps it alive until destroy() or until a later
     * reload() succeeds, so the plugin may keep pointers into it. */
    int (*configure)(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err);
    /* Starts timers, sockets, children. A failure marks the plugin failed with
     * err's message; the other plugins keep running. */
    int (*start)(struct agentd_plugin_ctx *ctx, struct agentd_err *err);
    /* Asynchronous stop: close every handle, then call done(ctx) exactly once
     * (possibly before returning). The host gives up after the stop timeout. */
    void (*stop)(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done);
    /* Applies a changed config while running. NULL, or -EOPNOTSUPP, makes the
     * host restart the plugin instead (stop, destroy, configure, start). */
    int (*reload)(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err);
    /* Adds the plugin's details to `out` (a JSON object) for `agentctl status`. */
    void (*status)(struct agentd_plugin_ctx *ctx, json_t *out);
    /* Frees what configure() allocated. Called after stop's done, or after a
     * failed configure/start. */
    void (*destroy)(struct agentd_plugin_ctx *ctx);

    /* Optional (added within ABI 1 in what was reserved[0]; NULL in older
     * plugins). Called by agentd_stop_sequence_run() for a plugin whose role
     * is `phase` (leave or flush) when the stop phases run WITHOUT agentd
     * exiting (an Auto Scaling termination hook): the plugin does the work of
     * that phase (leave its target groups and drain; ship everything written
     * so far and write its checkpoints), keeps running in that state (it
     * does not rejoin) and calls done(ctx) once, possibly before returning.
     * stop() may still follow, also while prepare is in progress. A plugin
     * with a role and no prepare() is stopped instead. */
    void (*prepare)(struct agentd_plugin_ctx *ctx, enum agentd_stop_phase phase,
                    agentd_stop_done_fn done);

    void *reserved[7]; /* zero: room for later members within ABI 1 */
};

/* ------------------------------------------------------------------------ */
/* The plugin's own handle.                                                 */

/* The plugin's private data pointer (NULL until set). */
void agentd_plugin_set_data(struct agentd_plugin_ctx *ctx, void *data);
void *agentd_plugin_get_data(struct agentd_plugin_ctx *ctx);
/* The plugin's name. */
const char *agentd_plugin_name(struct agentd_plugin_ctx *ctx);
/* The one loop everything runs on. */
uv_loop_t *agentd_loop(struct agentd_plugin_ctx *ctx);

/* A one-line summary shown by `agentctl status` and in systemd's STATUS=.
 * `degraded` marks the plugin as running but not fully working (e.g. IMDS
 * unreachable). The string is copied. */
void agentd_plugin_report(struct agentd_plugin_ctx *ctx, bool degraded, const char *fmt, ...)
    AGENTD_PRINTF(3, 4);

/* Raises this plugin's stop timeout (default: agentd.stop_timeout), e.g. to
 * cover a target group's drain. */
void agentd_plugin_set_stop_timeout(struct agentd_plugin_ctx *ctx, uint64_t ms);

/* Whether the daemon is shutting down (stop has begun for any plugin). */
bool agentd_stopping(struct agentd_plugin_ctx *ctx);

/* Called once when a sequence asked for with agentd_stop_sequence_run() has
 * run: status 0, or -ECANCELED when agentd began to stop (exit) first. */
typedef void (*agentd_sequence_done_fn)(struct agentd_plugin_ctx *ctx, int status, void *ud);

/* Runs the stop phases announce, leave and flush (see AGENTD_PLUGIN_STOP_*)
 * without exiting: health answers 503 "draining", leave plugins drain, flush
 * plugins ship what was written, each through prepare() (or stop() when they
 * have none). Then done(ctx, 0, ud) is called on the loop; agentd keeps
 * running until it is stopped, and its later stop runs the phases again
 * (quickly: the plugins have already left and flushed). Each phase is
 * bounded by the longest stop timeout of its plugins. Returns 0, -EALREADY
 * while a sequence runs, or -ECANCELED when agentd is already stopping. */
int agentd_stop_sequence_run(struct agentd_plugin_ctx *ctx, const char *reason,
                             agentd_sequence_done_fn done, void *ud);

/* ------------------------------------------------------------------------ */
/* Logging. Lines carry the plugin's name (PLUGIN= in the journal). Repeats of
 * one message are rate-limited by the host.                                */

enum agentd_log_level {
    AGENTD_LOG_ERR = 3,
    AGENTD_LOG_WARNING = 4,
    AGENTD_LOG_NOTICE = 5,
    AGENTD_LOG_INFO = 6,
    AGENTD_LOG_DEBUG = 7,
};

void agentd_log(struct agentd_plugin_ctx *ctx, enum agentd_log_level level, const char *fmt, ...)
    AGENTD_PRINTF(3, 4);
/* As agentd_log, with extra journal fields: a NULL-terminated array of
 * "NAME=value" strings (e.g. "TUNNEL=chartio"). */
void agentd_log_fields(struct agentd_plugin_ctx *ctx, enum agentd_log_level level,
                       const char *const *fields, const char *fmt, ...) AGENTD_PRINTF(4, 5);
void agentd_logv(struct agentd_plugin_ctx *ctx, enum agentd_log_level level,
                 const char *const *fields, const char *fmt, va_list ap) AGENTD_PRINTF(4, 0);

#define agentd_error(ctx, ...)   agentd_log((ctx), AGENTD_LOG_ERR, __VA_ARGS__)
#define agentd_warning(ctx, ...) agentd_log((ctx), AGENTD_LOG_WARNING, __VA_ARGS__)
#define agentd_notice(ctx, ...)  agentd_log((ctx), AGENTD_LOG_NOTICE, __VA_ARGS__)
#define agentd_info(ctx, ...)    agentd_log((ctx), AGENTD_LOG_INFO, __VA_ARGS__)
#define agentd_debug(ctx, ...)   agentd_log((ctx), AGENTD_LOG_DEBUG, __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* Event bus. Events are delivered asynchronously on the loop, in publish
 * order, to every subscriber whose pattern matches: an exact name, or a
 * prefix ending in ".*" ("instance.*"). Subscriptions end with the plugin.
 *
 * Names in use: agent.stopping {}, agent.reloaded {}, health.changed
 * {check, status, previous, output, overall}, health.draining {draining,
 * reason}, metadata.changed {keys:[...]}, instance.interruption {action,
 * time}, instance.rebalance {notice_time}, instance.maintenance {events:[...]},
 * instance.lifecycle {state}.                                              */

typedef void (*agentd_event_fn)(struct agentd_plugin_ctx *ctx, const char *name,
                                const json_t *payload, void *ud);

int agentd_event_subscribe(struct agentd_plugin_ctx *ctx, const char *pattern, agentd_event_fn fn,
                           void *ud);
/* Publishes an event; takes ownership of payload (NULL means {}). */
void agentd_event_publish(struct agentd_plugin_ctx *ctx, const char *name, json_t *payload);

/* ------------------------------------------------------------------------ */
/* Metadata and templates. Keys: instance_id, instance_type, ami_id, region,
 * az, local_ipv4, public_ipv4, hostname, mac, account_id, iam_role, and
 * tag:NAME. Values set by providers (imds) take precedence over the static
 * agentd.metadata map. Changes publish metadata.changed.                    */

int agentd_metadata_set(struct agentd_plugin_ctx *ctx, const char *key, const char *value);
/* Removes a provider value (a static value, if any, shows again). */
int agentd_metadata_unset(struct agentd_plugin_ctx *ctx, const char *key);
/* The current value or NULL. Borrowed until the next return to the loop. */
const char *agentd_metadata_get(struct agentd_plugin_ctx *ctx, const char *key);

/* Expands {name} templates in tmpl from metadata; `extra` is an optional
 * NULL-terminated array of name, value pairs that take precedence (e.g. "seq",
 * "42", NULL). "{{" and "}}" are literal braces. On success *ret is a new
 * string (caller frees). Returns -ENOENT when a value is not known yet, with
 * *ret_missing (if non-NULL) set to the missing name (caller frees). */
int agentd_template_expand(struct agentd_plugin_ctx *ctx, const char *tmpl,
                           const char *const *extra, char **ret, char **ret_missing);

/* ------------------------------------------------------------------------ */
/* Health registry. Every check of every plugin lives here; the health plugin
 * serves it over HTTP, `agentctl health` shows it, targetgroup gates on it.  */

enum agentd_health_status {
    AGENTD_HEALTH_FAIL = 0,
    AGENTD_HEALTH_WARN = 1,
    AGENTD_HEALTH_PASS = 2,
};

struct agentd_health_check; /* opaque */

/* Registers a named check (names are global; plugins prefix theirs with
 * "plugin:", e.g. "tunnel:chartio"). Its state starts as fail with output
 * "no result yet". A non-critical check's failure counts as warn. */
int agentd_health_register(struct agentd_plugin_ctx *ctx, const char *name, bool critical,
                           struct agentd_health_check **ret);
/* Sets a check's status and output (copied, truncated to 1 KiB). A change of
 * status is logged once and published as health.changed. */
void agentd_health_set(struct agentd_health_check *check, enum agentd_health_status status,
                       const char *fmt, ...) AGENTD_PRINTF(3, 4);
void agentd_health_unregister(struct agentd_health_check *check);

struct agentd_health_info {
    const char *name;
    const char *plugin;
    bool critical;
    enum agentd_health_status status; /* as set: FAIL stays FAIL for non-critical */
    const char *output;
    uint64_t changed_ms;  /* wall clock, ms since the epoch, of the last status change */
    uint64_t updated_ms;  /* wall clock of the last agentd_health_set */
    uint64_t duration_ms; /* time the check took, as reported with agentd_health_set_duration */
};

void agentd_health_set_duration(struct agentd_health_check *check, uint64_t ms);
/* Calls fn for every check in registration order. */
void agentd_health_foreach(struct agentd_plugin_ctx *ctx,
                           void (*fn)(const struct agentd_health_info *info, void *ud), void *ud);
/* Looks up one check by name; returns -ENOENT if none. */
int agentd_health_get(struct agentd_plugin_ctx *ctx, const char *name,
                      struct agentd_health_info *ret);
/* Overall status: fail if any critical check fails, warn if any check warns or
 * a non-critical one fails, else pass (pass with no checks). */
enum agentd_health_status agentd_health_overall(struct agentd_plugin_ctx *ctx);
/* Draining: while set, the health endpoint answers 503 "draining". The host
 * sets it itself when stopping. Publishes health.draining on change. */
void agentd_health_set_draining(struct agentd_plugin_ctx *ctx, bool draining, const char *reason);
bool agentd_health_draining(struct agentd_plugin_ctx *ctx);
const char *agentd_health_status_name(enum agentd_health_status status); /* "pass"... */

/* ------------------------------------------------------------------------ */
/* Control commands: `agentctl PLUGIN VERB [ARGS...]`.                       */

/* A handler gets the arguments as a JSON array of strings. It returns 0 and
 * sets *ret_result (any JSON value, ownership passes to the host), or returns a
 * negative errno and may set *ret_result to a JSON string explaining it. */
typedef int (*agentd_control_fn)(struct agentd_plugin_ctx *ctx, const json_t *args,
                                 json_t **ret_result, void *ud);

int agentd_control_register(struct agentd_plugin_ctx *ctx, const char *verb, const char *help,
                            agentd_control_fn fn, void *ud);

/* ------------------------------------------------------------------------ */
/* Metrics: counters and gauges with labels, rendered as Prometheus text.   */

struct agentd_metric; /* opaque; lives as long as the daemon */

/* Returns the metric of that name and label set, creating it. Name it
 * agentd_<plugin>_<what>[_total]. Labels: NULL-terminated name, value pairs. */
struct agentd_metric *agentd_metric_counter(struct agentd_plugin_ctx *ctx, const char *name,
                                            const char *help, const char *const *labels);
struct agentd_metric *agentd_metric_gauge(struct agentd_plugin_ctx *ctx, const char *name,
                                          const char *help, const char *const *labels);
void agentd_metric_add(struct agentd_metric *m, double v); /* counters and gauges */
void agentd_metric_set(struct agentd_metric *m, double v); /* gauges */
/* The whole registry in Prometheus text format 0.0.4; caller frees. */
char *agentd_metrics_render(struct agentd_plugin_ctx *ctx, size_t *ret_len);

/* ------------------------------------------------------------------------ */
/* State store: small durable records under STATE_DIRECTORY/<plugin>/.      */

/* Atomically replaces record `name` (write temp, fsync, rename, fsync dir).
 * Blocks the loop for the fsyncs: batch writes, do not call per line. */
int agentd_state_write(struct agentd_plugin_ctx *ctx, const char *name, const void *data,
                       size_t len);
/* Reads record `name` into a new buffer (NUL-terminated beyond len; caller
 * frees). -ENOENT if there is none. */
int agentd_state_read(struct agentd_plugin_ctx *ctx, const char *name, void **ret_data,
                      size_t *ret_len);
int agentd_state_remove(struct agentd_plugin_ctx *ctx, const char *name);
/* The plugin's own state directory (created mode 0700), for larger files. */
const char *agentd_state_dir(struct agentd_plugin_ctx *ctx);

/* ------------------------------------------------------------------------ */
/* Blocking work off the loop (uv_queue_work). `work` runs on a pool thread
 * and must not call the host; `done` runs on the loop with status 0, or
 * UV_ECANCELED if the work never ran.                                       */

int agentd_work_queue(struct agentd_plugin_ctx *ctx, void (*work)(void *ud),
                      void (*done)(void *ud, int status), void *ud);

/* ------------------------------------------------------------------------ */
/* Child processes, reaped by the host.                                      */

struct agentd_child; /* opaque */

struct agentd_child_opts {
    const char *const *argv; /* argv[0] is looked up in PATH */
    const char *const *env;  /* NULL-terminated "K=V"; NULL: a minimal clean
                              * environment (PATH, LANG=C.UTF-8) */
    const char *cwd;         /* NULL: / */
    bool new_process_group;  /* the child leads its own process group;
                              * agentd_child_kill signals the group */
    bool die_with_agentd;    /* SIGKILL if agentd dies (PR_SET_PDEATHSIG) */
    size_t max_line;         /* longer output lines are cut (default 4096) */
    /* Called for each line the child writes (without the newline). stream is
     * 1 for stdout, 2 for stderr. NULL: the output is discarded. */
    void (*on_line)(struct agentd_child *child, int stream, const char *line, size_t len, void *ud);
    /* Called once when the child has exited and its output is drained. */
    void (*on_exit)(struct agentd_child *child, int64_t exit_status, int term_signal, void *ud);
    void *ud;
};

int agentd_child_spawn(struct agentd_plugin_ctx *ctx, const struct agentd_child_opts *opts,
                       struct agentd_child **ret);
int agentd_child_kill(struct agentd_child *child, int signum);
pid_t agentd_child_pid(const struct agentd_child *child);
/* Forgets the child: no more callbacks. It is still reaped; kill it first if
 * it must not outlive the caller. The handle is freed after on_exit would have
 * run. */
void agentd_child_detach(struct agentd_child *child);

/* ------------------------------------------------------------------------ */
/* HTTP client: libcurl's multi interface driven by the loop.               */

struct agentd_http_request {
    const char *method; /* "GET", "PUT", "POST", "HEAD", "DELETE" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" */
    const void *body;           /* copied by the host */
    size_t body_len;
    uint64_t connect_timeout_ms; /* 0: 5 s */
    uint64_t timeout_ms;         /* total; 0: 30 s */
    size_t max_response;         /* larger bodies fail with -EFBIG; 0: 8 MiB */
    bool no_proxy;               /* never use a proxy (IMDS) */
};

struct agentd_http_response {
    int error;                 /* 0, or negative errno for transport failures
                                * (-ETIMEDOUT, -ECONNREFUSED, -ECONNRESET, ...) */
    const char *error_message; /* human text for error, else NULL */
    long status;               /* HTTP status, 0 on transport failure */
    const char *body;          /* NUL-terminated beyond body_len */
    size_t body_len;
    const char *const *headers; /* NULL-terminated "name: value", names lowercase */
    uint64_t elapsed_ms;
};

struct agentd_http_call; /* opaque handle of one request in flight */

/* Called once, on the loop; the response is valid only during the call. */
typedef void (*agentd_http_done_fn)(struct agentd_plugin_ctx *ctx,
                                    const struct agentd_http_response *res, void *ud);

int agentd_http_request(struct agentd_plugin_ctx *ctx, const struct agentd_http_request *req,
                        agentd_http_done_fn done, void *ud, struct agentd_http_call **ret);
/* Cancels a request in flight; its done callback is not called. */
void agentd_http_cancel(struct agentd_http_call *call);
/* Looks up a response header (case-insensitive name); NULL if absent. */
const char *agentd_http_header(const struct agentd_http_response *res, const char *name);

/* ------------------------------------------------------------------------ */
/* AWS requests: endpoint resolution, SigV4, credentials, standard retries.  */

enum agentd_aws_protocol {
    AGENTD_AWS_QUERY,    /* ELBv2: form body, XML responses and errors */
    AGENTD_AWS_JSON,     /* CloudWatch Logs: JSON 1.1 */
    AGENTD_AWS_REST_XML, /* S3 */
};

struct agentd_aws_request {
    const char *service;     /* signing name: "elasticloadbalancing", "logs", "s3" */
    const char *endpoint_id; /* for AWS_ENDPOINT_URL_<ID>: "ELASTIC_LOAD_BALANCING_V2",
                              * "CLOUDWATCH_LOGS", "S3" */
    const char *endpoint;    /* the plugin's `endpoint:` option, or NULL */
    const char *region;      /* NULL: agentd's region */
    enum agentd_aws_protocol protocol;
    const char *method;         /* "POST", "PUT", ... */
    const char *path;           /* "/" or "/bucket/key" (S3: path style on custom endpoints) */
    const char *query;          /* raw "a=b&c=d" (encoded), or NULL */
    const char *const *headers; /* NULL-terminated "Name: value"; the host adds Host,
                                 * X-Amz-Date, X-Amz-Security-Token, Authorization,
                                 * x-amz-content-sha256 (S3) */
    const void *body;
    size_t body_len;
    const char *target;    /* JSON 1.1: X-Amz-Target, e.g. "Logs_20140328.PutLogEvents" */
    bool unsigned_payload; /* S3: sign with UNSIGNED-PAYLOAD */
    unsigned max_attempts; /* 0: agentd's default (standard mode: 3) */
    uint64_t timeout_ms;   /* per attempt; 0: 30 s */
};

struct agentd_aws_response {
    int error;                 /* 0 on a 2xx answer; else negative errno
                                * (-EIO for an AWS error answer) */
    long status;               /* last HTTP status, 0 if no answer */
    const char *error_code;    /* AWS error code ("Throttling"), or NULL */
    const char *error_message; /* AWS's or the transport's message, or NULL */
    const char *body;
    size_t body_len;
    const char *const *headers; /* NULL-terminated "name: value", lowercase names */
    unsigned attempts;
};

struct agentd_aws_call;

typedef void (*agentd_aws_done_fn)(struct agentd_plugin_ctx *ctx,
                                   const struct agentd_aws_response *res, void *ud);

/* Sends a signed AWS request, retried in the standard mode; done is called
 * once with the final answer. `path` may be raw or already percent-encoded:
 * every byte but unreserved characters and '/' is encoded and existing %XX
 * escapes are kept; the query is decoded, re-encoded, sorted and sent exactly
 * as signed. Fails at once with -EDESTADDRREQ when no region is known and
 * -EPERM for plain http to a host that is not loopback. Having no
 * credentials arrives in done as -ENOKEY. An S3 POST/PUT answered 200 with
 * an <Error> body is reported as an error. */
int agentd_aws_request(struct agentd_plugin_ctx *ctx, const struct agentd_aws_request *req,
                       agentd_aws_done_fn done, void *ud, struct agentd_aws_call **ret);
/* Cancels a call in flight; done is not called. Inside done it does nothing. */
void agentd_aws_cancel(struct agentd_aws_call *call);
/* agentd's region (config, environment, or metadata "region"), or NULL. */
const char *agentd_aws_region(struct agentd_plugin_ctx *ctx);

/* Credentials providers, for plugins that supply credentials (imds). */
struct agentd_aws_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL if none */
    int64_t expiration;        /* unix seconds; 0: does not expire */
};

/* Called by a provider with the result: status 0 and creds (copied by the
 * host), or a negative errno and a message. */
typedef void (*agentd_creds_done_fn)(int status, const struct agentd_aws_credentials *creds,
                                     const char *message, void *host_ud);

struct agentd_creds_provider {
    const char *name; /* "imds" */
    /* Starts a fetch; must call done(…, host_ud) exactly once, later or now. */
    void (*fetch)(void *provider_ud, agentd_creds_done_fn done, void *host_ud);
    void *provider_ud;
};

/* Registers a provider (copied). It is removed when the plugin stops. */
int agentd_aws_register_creds_provider(struct agentd_plugin_ctx *ctx,
                                       const struct agentd_creds_provider *provider);

#ifdef __cplusplus
}
#endif

#endif

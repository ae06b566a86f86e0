/* tunnel plugin: internal declarations shared by its files.
 *
 * The pure parts (spec parsing, ssh argv, backoff, stderr classification)
 * never call the host, so the unit tests link them without agentd.
 */
#ifndef AGENTD_TUNNEL_H
#define AGENTD_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentd/plugin.h"

/* ------------------------------------------------------------------------ */
/* Configuration as filled by the host from the option tables.              */

struct tunnel_keepalive_conf {
    uint64_t interval_ms;
    int64_t count;
};

enum tunnel_hostkey_mode { TUNNEL_HOSTKEY_YES = 0, TUNNEL_HOSTKEY_ACCEPT_NEW = 1 };

struct tunnel_conf {
    char *name;
    char *destination;
    struct agentd_list remote_forwards; /* char * */
    struct agentd_list local_forwards;  /* char * */
    char *identity;
    char *known_hosts;
    int host_key_checking;                   /* enum tunnel_hostkey_mode */
    struct tunnel_keepalive_conf *keepalive; /* NULL: 10 s x 3 */
    uint64_t connect_timeout_ms;
    struct agentd_map ssh_options;
    bool critical;
    uint64_t backoff_max_ms;       /* cap of the fast (transient) schedule */
    uint64_t backoff_permanent_ms; /* delay after a permanent error */
    uint64_t backoff_reset_ms;     /* up this long: the schedule starts over */
};

extern const struct agentd_schema tunnel_schema;

#define TUNNEL_DEFAULT_KEEPALIVE_MS    10000u
#define TUNNEL_DEFAULT_KEEPALIVE_COUNT 3

/* ------------------------------------------------------------------------ */
/* Destination and forward specs (tunnel-spec.c).                           */

struct tunnel_dest {
    char *user;
    char *host; /* without brackets */
    unsigned port;
};

/* Parses "user@host[:port]" ("user@[v6]:port" for IPv6). Returns 0, or
 * -EINVAL with *ret_why set to a static explanation. */
int tunnel_dest_parse(const char *s, struct tunnel_dest *ret, const char **ret_why);
void tunnel_dest_clear(struct tunnel_dest *d);

struct tunnel_forward {
    char *bind;        /* listen address without brackets, NULL when not given */
    unsigned port;     /* listen port; 0 (remote only) lets the server pick */
    char *host;        /* connect host without brackets */
    unsigned hostport; /* connect port */
};

/* Parses "[bind:]port:host:hostport" as ssh -R/-L does (IPv6 addresses in
 * brackets). `remote` allows listen port 0. Returns 0 or -EINVAL with
 * *ret_why set to a static explanation. */
int tunnel_forward_parse(const char *spec, bool remote, struct tunnel_forward *ret,
                         const char **ret_why);
void tunnel_forward_clear(struct tunnel_forward *f);
/* The forward as ssh prints it after "remote forward success for: ",
 * i.e. "listen [BIND:]PORT, connect HOST:PORT". Returns the length or
 * -ENOBUFS. */
int tunnel_forward_remote_text(const struct tunnel_forward *f, char *buf, size_t size);

/* Whether an ssh_options key is on the allow-list; on success *ret_canon is
 * the canonical spelling. */
bool tunnel_ssh_option_allowed(const char *key, const char **ret_canon);
/* Whether a value is safe to hand to ssh -o (no control characters, quotes,
 * or leading '-'; non-empty). */
bool tunnel_ssh_value_ok(const char *value);
/* Whether a file path can be given to ssh as is (no whitespace, quotes,
 * backslashes or "${"). */
bool tunnel_path_ok(const char *path);
/* Whether a tunnel name is usable (1..64 of [A-Za-z0-9_.-]). */
bool tunnel_name_ok(const char *name);

/* ------------------------------------------------------------------------ */
/* The ssh command line (tunnel-argv.c).                                    */

struct tunnel_argv_in {
    const char *ssh; /* argv[0] */
    const struct tunnel_dest *dest;
    const struct tunnel_forward *remote;
    size_t nremote;
    const struct tunnel_forward *local;
    size_t nlocal;
    const char *identity;
    const char *known_hosts;
    bool accept_new;
    unsigned keepalive_s, keepalive_count, connect_timeout_s;
    const struct agentd_map *extra; /* allow-listed, validated options */
};

/* Builds a NULL-terminated argv (every string and the array newly
 * allocated; free with tunnel_argv_free). Returns 0 or -ENOMEM/-EINVAL. */
int tunnel_argv_build(const struct tunnel_argv_in *in, char ***ret);
void tunnel_argv_free(char **argv);

/* ------------------------------------------------------------------------ */
/* Backoff (tunnel-backoff.c).                                              */

struct tunnel_backoff {
    uint64_t initial_ms; /* ceiling of the first delay */
    uint64_t max_ms;     /* ceiling cap */
    uint64_t floor_ms;   /* no delay is shorter */
};

/* The delay before the next attempt after `failures` consecutive failures
 * (0 for the first retry): full jitter, uniform in [floor, min(max, initial *
 * 2^failures)], drawn from rnd. */
uint64_t tunnel_backoff_delay(const struct tunnel_backoff *b, unsigned failures, uint64_t rnd);
/* The delay after a permanent error: the slow cap minus up to 10 % jitter,
 * so that a fleet does not retry in lockstep. */
uint64_t tunnel_backoff_permanent(uint64_t cap_ms, uint64_t rnd);
/* xorshift64*: cheap, not for secrets. *state must be non-zero. */
uint64_t tunnel_rand(uint64_t *state);

/* ------------------------------------------------------------------------ */
/* ssh stderr classification (tunnel-classify.c).                           */

enum tunnel_line_kind {
    TUNNEL_LINE_OTHER,        /* nothing the state machine needs */
    TUNNEL_LINE_LOCAL_LISTEN, /* a local forward listens on `port` */
    TUNNEL_LINE_REMOTE_OK,    /* the server accepted a remote forward: arg */
    TUNNEL_LINE_REMOTE_FAIL,  /* the server refused a remote forward: arg */
    TUNNEL_LINE_ALLOCATED,    /* the server picked `port` for a port-0 forward: arg */
    TUNNEL_LINE_ERROR,        /* an error: err, prio */
};

enum tunnel_err {
    TUNNEL_ERR_NONE,
    TUNNEL_ERR_OTHER,    /* an unrecognised message; transient */
    TUNNEL_ERR_CONNECT,  /* refused, unreachable, resolve failures; transient */
    TUNNEL_ERR_TIMEOUT,  /* connect or keepalive timeout; transient */
    TUNNEL_ERR_CLOSED,   /* the connection closed or reset; transient */
    TUNNEL_ERR_FORWARD,  /* a forward could not be set up; transient */
    TUNNEL_ERR_AUTH,     /* authentication refused; permanent */
    TUNNEL_ERR_HOSTKEY,  /* host key unknown or changed; permanent */
    TUNNEL_ERR_IDENTITY, /* identity missing, unreadable, bad permissions; permanent */
};

struct tunnel_line {
    enum tunnel_line_kind kind;
    bool debug;          /* an ssh -v "debug1:" line */
    enum tunnel_err err; /* ERROR */
    int prio;            /* ERROR: a more specific error has a higher value */
    unsigned port;       /* LOCAL_LISTEN, ALLOCATED */
    const char *arg;     /* REMOTE_OK/REMOTE_FAIL: "listen ..., connect H:P";
                          * ALLOCATED: "H:P"; points into the line */
    size_t arg_len;
};

/* Classifies one stderr line of ssh -v (without the line end; a trailing
 * '\r' is ignored). Never fails. */
void tunnel_classify(const char *line, size_t len, struct tunnel_line *ret);
bool tunnel_err_permanent(enum tunnel_err e);
/* A short name for status output: "connect", "host-key", ... */
const char *tunnel_err_name(enum tunnel_err e);
/* A one-line human summary: "host key verification failed", ... */
const char *tunnel_err_summary(enum tunnel_err e);

/* ------------------------------------------------------------------------ */
/* Runtime: one state machine per tunnel (tunnel-fsm.c), driven by the
 * plugin (tunnel.c).                                                       */

enum tunnel_state {
    TUNNEL_IDLE,       /* configured, not started */
    TUNNEL_CONNECTING, /* ssh runs; not every forward is confirmed yet */
    TUNNEL_UP,         /* every forward confirmed */
    TUNNEL_DOWN,       /* the session is lost; waiting for ssh to exit */
    TUNNEL_BACKOFF,    /* waiting before the next attempt */
    TUNNEL_STOPPING,   /* agentd stops: ssh is being terminated */
    TUNNEL_STOPPED,
};

struct tunnel_plugin;

struct tunnel {
    struct tunnel_plugin *tp;
    const struct tunnel_conf *conf; /* re-pointed by a reload that keeps the tunnel */
    char *name;                     /* a copy: a retired tunnel outlives its conf */
    struct tunnel_dest dest;
    struct tunnel_forward *fwd; /* the remote forwards, then the local ones */
    size_t nremote, nfwd;
    bool *confirmed;     /* per forward, for the current attempt */
    unsigned *allocated; /* per forward: the port the server picked for port 0 */
    char **argv;
    char *field; /* "TUNNEL=name" */
    const char *fields[2];

    enum tunnel_state state;
    uint64_t state_mono_ms, state_wall_ms, up_mono_ms, next_mono_ms;
    uint64_t down_mono_ms; /* when the session was last lost; 0: never up and down */
    unsigned failures;     /* consecutive failed attempts: drives the backoff */
    uint64_t attempts, restarts;
    struct agentd_child *child;
    bool restart_now;      /* the exit was asked for by agentctl tunnel restart */
    uv_timer_t timer;      /* backoff, or the setup watchdog while connecting */
    uv_timer_t kill_timer; /* SIGKILL after the grace period */
    bool timers_live;
    struct agentd_health_check *check;
    struct agentd_metric *m_up, *m_attempts; /* agentd_tunnel_up, _attempts_total */
    size_t pending;                          /* after tunnel_stop: open timers and the live child */
    bool retired;                            /* removed by a reload: freed once closed */

    /* The most specific error of the current attempt. */
    enum tunnel_err cur_err;
    int cur_prio;
    char cur_msg[256];
    /* The last failure, shown in status until the next one. */
    enum tunnel_err last_err;
    char last_msg[320];
    uint64_t last_wall_ms;
    unsigned last_repeats;
};

struct tunnel_plugin {
    struct agentd_plugin_ctx *ctx;
    struct tunnel **t; /* each allocated on its own: a reload moves them */
    size_t n;
    uint64_t rng;
    bool stopping;
    size_t pending;  /* tunnels still closing during stop */
    size_t retiring; /* tunnels removed by a reload, still closing */
    agentd_stop_done_fn done;
};

/* In tunnel-setup.c: the effective keepalive (10 s x 3 when not set). */
unsigned tunnel_keepalive_s(const struct tunnel_conf *c);
unsigned tunnel_keepalive_count(const struct tunnel_conf *c);
/* Prepares t from its config (parsing, argv). No handles yet. */
int tunnel_init(struct tunnel *t, struct tunnel_plugin *tp, const struct tunnel_conf *conf,
                struct agentd_err *err);
void tunnel_clear(struct tunnel *t);
/* Initialises the timers, registers the health check, starts ssh. */
void tunnel_start(struct tunnel *t);
/* Terminates ssh (SIGTERM to its group, SIGKILL after a grace period) and
 * closes the handles; tunnel_plugin_closed() is called once all are gone
 * (possibly before this returns). */
void tunnel_stop(struct tunnel *t);
/* Whether two configs describe the same tunnel (a reload keeps it running). */
bool tunnel_conf_same(const struct tunnel_conf *a, const struct tunnel_conf *b);
/* agentctl tunnel restart: a fresh attempt now, with the backoff reset. */
int tunnel_restart(struct tunnel *t);
json_t *tunnel_status_json(const struct tunnel *t);
const char *tunnel_state_name(enum tunnel_state s);
/* In tunnel.c: a stopped tunnel has closed everything. */
void tunnel_plugin_closed(struct tunnel_plugin *tp, struct tunnel *t);
/* In tunnel.c: the plugin summary changed (a tunnel went up or down). */
void tunnel_plugin_changed(struct tunnel_plugin *tp);

/* tunnel-doctor.c: the "doctor" verb. */
int tunnel_doctor_verb(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud);

#endif

/* Internal interfaces of the health plugin. The request parser, router and
 * body renderer (request.c, route.c, body.c) and the HTTP server
 * (http-server.c) do not call the host, so unit tests and the fuzz target
 * link them alone; the checks and health.c use the host's ABI. */
#ifndef HEALTH_INT_H
#define HEALTH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#include "agentd/plugin.h"

/* ------------------------------------------------------------------------ */
/* request.c: one HTTP/1.x request at a time, with limits, nothing buffered
 * but the request target.                                                  */

#define REQUEST_URL_MAX 4096 /* hard cap of the configurable max_url */

struct request_limits {
    size_t max_url;          /* request target bytes, <= REQUEST_URL_MAX */
    size_t max_header_bytes; /* sum of header names and values */
    unsigned max_headers;    /* number of header fields */
};

enum request_event {
    REQUEST_MORE,  /* everything was consumed; the request is not complete */
    REQUEST_DONE,  /* a complete request is described by the struct */
    REQUEST_ERROR, /* malformed or over a limit: answer error_status and close */
};

struct request {
    http_parser parser;
    const struct request_limits *lim;
    bool started;          /* bytes of a request have been seen */
    bool prev_cr;          /* framing scan: the last framing byte was CR */
    bool line_start;       /* framing scan: at the start of a line */
    const char *scan_from; /* framing scan: first byte of this feed not yet scanned */
    bool line_done;        /* its request line is complete */
    bool headers_done;
    bool in_value;    /* the last header callback was a value */
    bool keep_alive;  /* valid after REQUEST_DONE */
    bool http10;      /* an HTTP/1.0 request */
    int error_status; /* 400, 414 or 431 after REQUEST_ERROR */
    unsigned method;  /* enum http_method, after REQUEST_DONE */
    unsigned nheaders;
    size_t header_bytes;
    size_t url_len;
    char url[REQUEST_URL_MAX + 1];
};

void request_init(struct request *r, const struct request_limits *lim);
/* Parses up to one request from data. Returns the bytes consumed and the event
 * in *ret_event; after REQUEST_DONE call request_next() before feeding the
 * rest. After REQUEST_ERROR the request is dead. */
size_t request_feed(struct request *r, const char *data, size_t len, enum request_event *ret_event);
/* Prepares for the next request on the same connection. */
void request_next(struct request *r);

/* ------------------------------------------------------------------------ */
/* route.c: method and path to an endpoint.                                 */

enum route_kind {
    ROUTE_HEALTH,      /* the main path or an alias */
    ROUTE_READYZ,      /* answers like the main path */
    ROUTE_LIVEZ,       /* the process and its loop are alive */
    ROUTE_METRICS,     /* Prometheus text */
    ROUTE_NOT_FOUND,   /* 404 */
    ROUTE_BAD_METHOD,  /* 405 */
    ROUTE_BAD_REQUEST, /* 400: an unusable request target */
};

struct route_result {
    enum route_kind kind;
    bool head;    /* HEAD: headers only */
    bool verbose; /* ?verbose, ?verbose=1/true/yes */
    /* The path (no query), borrowed from the url; for path_checks. */
    const char *path;
    size_t path_len;
};

/* Matches a method (enum http_method) and a request target against the main
 * paths (paths[0..npaths)) and the fixed endpoints. Always fills *ret. */
void route_match(const char *const *paths, size_t npaths, unsigned method, const char *url,
                 size_t url_len, struct route_result *ret);
/* Whether a configured path is usable: starts with '/', no query, no
 * fragment, printable ASCII, not one of the fixed endpoints. */
bool route_path_valid(const char *path, const char **ret_why);

/* ------------------------------------------------------------------------ */
/* body.c: JSON bodies and immutable, reference-counted responses.          */

/* A bounded string builder: appends past `max` set `overflow` and are dropped. */
struct sbuf {
    char *p;
    size_t len, cap, max;
    bool overflow, oom;
};

void sbuf_init(struct sbuf *b, size_t max);
void sbuf_free(struct sbuf *b);
void sbuf_add(struct sbuf *b, const char *s, size_t n);
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_addf(struct sbuf *b, const char *fmt, ...) AGENTD_PRINTF(2, 3);
/* A JSON string literal (quotes included) of at most `max` bytes of s,
 * invalid UTF-8 replaced by U+FFFD, an ellipsis appended when cut. */
void sbuf_json_str(struct sbuf *b, const char *s, size_t max);

#define BODY_OUTPUT_MAX 512 /* bytes of a check's output shown in a body */

struct body_state {
    enum agentd_health_status overall;
    bool draining;
    const char *draining_reason; /* or NULL */
    const struct agentd_health_info *checks;
    size_t n;
};

/* Renders the application/health+json body. verbose adds per check its
 * output, time of the last change, duration and criticality. Returns 0 or
 * -ENOMEM / -E2BIG (the caller's sbuf max). */
int body_render(struct sbuf *b, const struct body_state *st, bool verbose);
/* The HTTP status for a state: 200 for pass/warn, fail_status for fail and
 * while draining. */
int body_http_status(const struct body_state *st, int fail_status);
const char *body_status_name(enum agentd_health_status s);

/* An immutable response: data = head, then "\r\n" and the body. The server
 * writes head, an optional Connection header, then the rest (only "\r\n" for
 * HEAD). Shared between connections; freed when the last reference goes. */
struct response {
    unsigned refs;
    int status;
    size_t head_len; /* status line and headers, each ending in CRLF */
    size_t len;      /* head + "\r\n" + body */
    char data[];
};

/* Builds a response. date is an IMF-fixdate or NULL (no Date header);
 * extra_headers is "" or complete "Name: value\r\n" lines. Returns NULL on
 * allocation failure. */
struct response *response_new(int status, const char *content_type, const char *date,
                              const char *extra_headers, const char *body, size_t body_len);
struct response *response_ref(struct response *r);
void response_unref(struct response *r);
const char *response_reason(int status);
/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into buf[30]. */
void http_date(time_t t, char buf[static 30]);

/* ------------------------------------------------------------------------ */
/* http-server.c: the listener and its connections on the loop.             */

struct hsrv;

struct hsrv_conf {
    struct request_limits limits;
    unsigned max_connections;
    uint64_t idle_timeout_ms;    /* between requests on a kept-alive connection */
    uint64_t request_timeout_ms; /* from a request's first byte to its end */
    uint64_t line_timeout_ms;    /* accept (or first byte) to request line; 0: request_timeout */
    unsigned max_per_source;     /* concurrent connections from one address; 0: no cap */
    const struct agentd_cidr *allow;
    size_t nallow; /* 0: allow everyone */
    const struct agentd_cidr *detail_allow;
    size_t ndetail; /* 0: nobody gets details */
};

enum hsrv_stat {
    HSRV_STAT_ACCEPTED,
    HSRV_STAT_REJECTED, /* over max_connections or max_connections_per_source */
    HSRV_STAT_TIMEOUT,  /* closed for idleness or slowness */
    HSRV_STAT_BAD,      /* 400/414/431 */
    HSRV_STAT_MAX,
};

/* What the handler hands back: a referenced response (the server unrefs it),
 * whether only its head goes out, and whether to close after it. */
struct hsrv_reply {
    struct response *resp;
    bool head_only;
    bool close;
};

struct hsrv_handler {
    /* A complete request from an allowed (or, if !allowed, a denied) peer;
     * detail: the peer is also in detail_allow. */
    void (*request)(void *ud, const struct request *req, bool allowed, bool detail,
                    struct hsrv_reply *reply);
    /* A canned error response (400/414/431); NULL reply->resp just closes. */
    void (*error)(void *ud, int status, struct hsrv_reply *reply);
    void (*stat)(void *ud, enum hsrv_stat which); /* may be NULL */
    void *ud;
};

int hsrv_new(uv_loop_t *loop, const struct hsrv_conf *conf, const struct hsrv_handler *h,
             struct hsrv **ret);
/* Listens on "ip:port" or "[ipv6]:port" (numeric). IPv6 sockets are v6-only so
 * 0.0.0.0 and [::] can share a port. Returns 0 or -errno. */
int hsrv_listen(struct hsrv *s, const char *hostport);
/* The port of the n-th listener (for port 0), or -ENOENT. */
int hsrv_port(struct hsrv *s, size_t n);
unsigned hsrv_connections(const struct hsrv *s);
/* Applies new limits, timeouts and allow list to the listeners and to the
 * connections already open. conf->allow must outlive the server's use. */
void hsrv_update(struct hsrv *s, const struct hsrv_conf *conf);
/* Closes the listeners and every connection; done(ud) runs once every handle
 * is closed and the server is freed. */
void hsrv_close(struct hsrv *s, void (*done)(void *ud), void *ud);
/* Whether a sockaddr is inside one of the CIDRs (v4-mapped IPv6 matches IPv4). */
bool hsrv_addr_allowed(const struct agentd_cidr *allow, size_t n, const struct sockaddr *sa);

/* ------------------------------------------------------------------------ */
/* debounce.c: rise and fall thresholds, like an ALB's.                     */

struct debounce {
    enum agentd_health_status reported; /* starts as fail */
    int streak_dir;                     /* +1 results better than reported, -1 worse */
    unsigned streak;
};

/* Feeds one raw result. A status better than the reported one must be seen
 * `rise` times in a row, a worse one `fall` times (any mix of warn and fail
 * counts as worse than pass); the reported status then becomes the latest
 * result. In the grace period one better result is enough and worse results
 * do not count. Returns true when the reported status changed. */
bool debounce_step(struct debounce *d, enum agentd_health_status raw, unsigned rise, unsigned fall,
                   bool grace);

/* ------------------------------------------------------------------------ */
/* The plugin: configuration (health.c), serving (serve.c), checks.         */

struct health_check_conf {
    char *name;
    char *tcp;
    char *http;
    struct agentd_list exec; /* char * */
    char *file;
    char *systemd;
    uint64_t interval, timeout, grace, max_age;
    int64_t rise, fall;
    bool critical;
    struct agentd_list expect_status; /* char *: "200", "200-399", "2xx" */
    char *expect_body;
};

struct health_conf {
    struct agentd_list listen;       /* char * */
    struct agentd_list paths;        /* char * */
    struct agentd_list allow;        /* struct agentd_cidr */
    struct agentd_list detail_allow; /* struct agentd_cidr */
    struct agentd_list checks;       /* struct health_check_conf */
    int64_t fail_status;
    int64_t max_connections;
    int64_t max_connections_per_source;
    uint64_t idle_timeout, request_timeout, request_line_timeout;
    uint64_t max_header_size, max_url;
    int64_t max_headers;
    /* path -> "check, check": such a path reports only those checks. */
    struct agentd_map path_checks;
};

/* The i-th element of a list option. */
#define LIST_AT(list, type, i) (&((type *)(list).items)[i])

struct health;
struct hcheck;

struct check_type {
    const char *name;
    /* Prepares c->priv from the check's config; fills c->desc. */
    int (*init)(struct hcheck *c, struct agentd_err *err);
    /* Starts one run that ends with check_done() (now or later). */
    void (*run)(struct hcheck *c);
    /* Abandons the run in flight: check_done() must not follow. */
    void (*cancel)(struct hcheck *c);
    void (*free)(struct hcheck *c);
};

extern const struct check_type check_tcp, check_http, check_exec, check_file, check_systemd;

struct hcheck {
    struct health *h;
    const struct health_check_conf *cf;
    const struct check_type *type;
    void *priv;
    struct agentd_health_check *reg;
    struct agentd_metric *m_status, *m_duration;
    uv_timer_t interval_timer, timeout_timer;
    uint64_t run_start;  /* uv_now() when the run began */
    uint64_t started_at; /* uv_now() at plugin start, for the grace period */
    bool running, active;
    bool has_result; /* an output has been set in the registry */
    struct debounce db;
    char desc[320]; /* "tcp connect db:3306": the start of every output */
};

struct health {
    struct agentd_plugin_ctx *ctx;
    const struct health_conf *cf;
    struct hsrv *srv;
    struct hcheck **checks;
    size_t nchecks;
    unsigned pending; /* handles and requests whose close/finish we await */
    bool stopping, orphaned;
    agentd_stop_done_fn stop_done;
    /* serve.c */
    const char **paths;
    struct serve *serve;
    char *draining_reason; /* from the last health.draining event */
    /* check-systemd.c: one bus shared by the systemd checks */
    void *bus;
    /* allow.c: the allow-list used while `allow` is not set */
    struct agentd_cidr *auto_allow;
    size_t n_auto;
};

/* path-checks.c */
/* The index of path in cf->path_checks, or -1. */
int path_checks_find(const struct health_conf *cf, const char *path, size_t len);
/* Whether name is one of the checks listed in spec ("a, b c"). */
bool path_checks_has(const char *spec, const char *name);
/* Validates cf->path_checks (paths usable, lists not empty); reports with
 * agentd_conf_error. Returns 0 or -EINVAL. */
int path_checks_validate(const struct health_conf *cf, struct agentd_confctx *cc);

/* health.c: the server's settings from a config (and, without `allow`, the
 * automatic list). */
void health_server_conf(const struct health *h, const struct health_conf *cf,
                        struct hsrv_conf *ret);
/* allow.c: recomputes the automatic allow-list from metadata; true when it
 * changed. */
bool health_auto_allow(struct health *h);
/* reload.c */
int health_reload(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err);
bool check_conf_equal(const struct health_check_conf *a, const struct health_check_conf *b);

/* serve.c */
int serve_new(struct health *h);
void serve_free(struct health *h);
/* Drops the cached health bodies so the next request renders anew. */
void serve_invalidate(struct health *h);
extern const struct hsrv_handler serve_handler_template;

/* check.c */
int check_new(struct health *h, const struct health_check_conf *cf, struct hcheck **ret,
              struct agentd_err *err);
void check_start(struct hcheck *c);
/* Stops timers and any run in flight; frees once its handles are closed. */
void check_stop(struct hcheck *c);
void check_done(struct hcheck *c, enum agentd_health_status st, const char *fmt, ...)
    AGENTD_PRINTF(3, 4);
/* A pending close or callback of the plugin finished (see health->pending). */
void health_pending_done(struct health *h);
/* check-http.c: "200", "200-399" or "2xx" to a range. Returns 0 or -EINVAL. */
int http_status_range_parse(const char *s, int *ret_lo, int *ret_hi);
/* The URL as outputs show it: without user:password@, query and fragment. */
void http_redact_url(const char *url, char *buf, size_t len);
/* check-systemd.c: releases the shared bus (at stop). */
void systemd_bus_close(struct health *h);
/* "2s", "250ms", "1.5s" */
void fmt_ms(uint64_t ms, char *buf, size_t len);

#endif

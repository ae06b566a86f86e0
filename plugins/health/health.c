/* The health plugin: the HTTP endpoint that ALB/NLB/Route 53 health checks
 * and people ask, and the checks of what the instance depends on. This file
 * holds the descriptor, the option tables with their validation, and the
 * lifecycle; serving is in serve.c and http-server.c, checks in check*.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "health-int.h"

#define CHECK_OPT(n, t, field, dflt, fl, mn, mx, el, d)                                            \
    {                                                                                              \
        .name = n, .type = t, .offset = offsetof(struct health_check_conf, field), .def = dflt,    \
        .flags = fl, .min = mn, .max = mx, .elem = el, .description = d                            \
    }
#define ROOT_OPT(n, t, field, dflt, mn, mx, el, d)                                                 \
    {                                                                                              \
        .name = n, .type = t, .offset = offsetof(struct health_conf, field), .def = dflt,          \
        .min = mn, .max = mx, .elem = el, .description = d                                         \
    }

static const struct agentd_option check_options[] = {
    CHECK_OPT("name", AGENTD_OPT_STRING, name, NULL, AGENTD_OPT_REQUIRED | AGENTD_OPT_UNIQUE, 0, 0,
              0, "name of the check in bodies, logs and metrics ([A-Za-z0-9_.-])"),
    CHECK_OPT("tcp", AGENTD_OPT_HOSTPORT, tcp, NULL, 0, 0, 0, 0,
              "host:port that must accept a TCP connection"),
    CHECK_OPT("http", AGENTD_OPT_URL, http, NULL, 0, 0, 0, 0,
              "URL that must answer a GET with an expected status"),
    CHECK_OPT("exec", AGENTD_OPT_LIST, exec, NULL, 0, 0, 256, AGENTD_OPT_STRING,
              "argv to run (no shell): exit 0 pass, 1 warn, other fail"),
    CHECK_OPT("file", AGENTD_OPT_PATH, file, NULL, 0, 0, 0, 0, "absolute path that must exist"),
    CHECK_OPT("systemd", AGENTD_OPT_STRING, systemd, NULL, 0, 0, 0, 0,
              "systemd unit that must be active, e.g. docker.service"),
    CHECK_OPT("interval", AGENTD_OPT_DURATION, interval, "10s", 0, 100, 86400000, 0,
              "time between runs"),
    CHECK_OPT("timeout", AGENTD_OPT_DURATION, timeout, NULL, 0, 10, 3600000, 0,
              "a run taking longer fails (at most interval; default 2s or interval)"),
    CHECK_OPT("rise", AGENTD_OPT_INT, rise, "2", 0, 1, 100, 0,
              "consecutive passes before a failing check counts as healthy"),
    CHECK_OPT("fall", AGENTD_OPT_INT, fall, "2", 0, 1, 100, 0,
              "consecutive failures before a healthy check counts as failing"),
    CHECK_OPT("critical", AGENTD_OPT_BOOL, critical, "true", 0, 0, 0, 0,
              "false: a failure makes the overall status warn, not fail"),
    CHECK_OPT("grace", AGENTD_OPT_DURATION, grace, "0s", 0, 0, 86400000, 0,
              "after start: one pass is enough and failures do not count"),
    CHECK_OPT("expect_status", AGENTD_OPT_LIST, expect_status, NULL, 0, 0, 16, AGENTD_OPT_STRING,
              "http: accepted statuses: 200, 200-399, 2xx (default 200-399)"),
    CHECK_OPT("expect_body", AGENTD_OPT_STRING, expect_body, NULL, 0, 0, 0, 0,
              "http: the body must contain this text"),
    CHECK_OPT("max_age", AGENTD_OPT_DURATION, max_age, "0s", 0, 0, 0, 0,
              "file: must have been modified within this time (0: any age)"),
    {0},
};

static bool name_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static int check_validate(void *obj, struct agentd_confctx *cc)
{
    struct health_check_conf *c = obj;
    int ntypes = !!c->tcp + !!c->http + !!c->exec.n + !!c->file + !!c->systemd;
    int bad = 0;

    if (c->name && !name_ok(c->name)) {
        agentd_conf_error(cc, "name",
                          "'%s' is not a check name (1-64 of A-Z a-z 0-9 _ - .; ':' is for "
                          "plugins' checks)",
                          c->name);
        bad = 1;
    }
    if (ntypes == 0) {
        agentd_conf_error(cc, NULL, "a check needs one of tcp, http, exec, file, systemd");
        bad = 1;
    } else if (ntypes > 1) {
        agentd_conf_error(cc, c->tcp && c->http ? "http" : NULL,
                          "a check has exactly one of tcp, http, exec, file, systemd");
        bad = 1;
    }
    if (c->timeout == 0)
        c->timeout = c->interval < 2000 ? c->interval : 2000;
    if (c->timeout > c->interval) {
        agentd_conf_error(cc, "timeout", "must not be longer than interval");
        bad = 1;
    }
    if (!c->http && (c->expect_status.n || c->expect_body)) {
        agentd_conf_error(cc, c->expect_status.n ? "expect_status" : "expect_body",
                          "applies only to http checks");
        bad = 1;
    }
    if (!c->file && c->max_age) {
        agentd_conf_error(cc, "max_age", "applies only to file checks");
        bad = 1;
    }
    for (size_t i = 0; i < c->expect_status.n; i++) {
        const char *s = *LIST_AT(c->expect_status, char *, i);
        int lo, hi;

        if (http_status_range_parse(s, &lo, &hi) < 0) {
            agentd_conf_error(cc, "expect_status",
                              "'%s' is not a status, a range like 200-399, or 2xx", s);
            bad = 1;
        }
    }
    if (c->systemd && (!*c->systemd || strchr(c->systemd, '/'))) {
        agentd_conf_error(cc, "systemd", "'%s' is not a unit name", c->systemd);
        bad = 1;
    }
    return bad ? -EINVAL : 0;
}

static const struct agentd_schema check_schema = {
    .name = "health check",
    .size = sizeof(struct health_check_conf),
    .options = check_options,
    .validate = check_validate,
};

static const struct agentd_option root_options[] = {
    ROOT_OPT("listen", AGENTD_OPT_LIST, listen, "[\"0.0.0.0:8099\"]", 1, 8, AGENTD_OPT_STRING,
             "numeric ip:port or [ipv6]:port to serve on"),
    ROOT_OPT("paths", AGENTD_OPT_LIST, paths, "[/health]", 1, 32, AGENTD_OPT_STRING,
             "main path and aliases that answer the health body"),
    {.name = "path_checks",
     .type = AGENTD_OPT_MAP,
     .offset = offsetof(struct health_conf, path_checks),
     .description = "path -> the checks it reports (\"db, cache\"), e.g. a shallow /health "
                    "for the load balancer and a deep /health/deep; other paths report all"},
    ROOT_OPT("allow", AGENTD_OPT_LIST, allow, "[]", 0, 1024, AGENTD_OPT_CIDR,
             "source networks allowed to ask; others get 403 (unset: loopback and the VPC's "
             "CIDR blocks from IMDS, else the private ranges)"),
    ROOT_OPT("detail_allow", AGENTD_OPT_LIST, detail_allow, "[127.0.0.0/8, \"::1/128\"]", 0, 1024,
             AGENTD_OPT_CIDR,
             "sources that also get ?verbose check details and /metrics (others: the terse body, "
             "403)"),
    {.name = "checks",
     .type = AGENTD_OPT_LIST,
     .offset = offsetof(struct health_conf, checks),
     .elem = AGENTD_OPT_OBJECT,
     .sub = &check_schema,
     .min = 0,
     .max = 1000,
     .description = "checks of what this instance depends on"},
    ROOT_OPT("fail_status", AGENTD_OPT_INT, fail_status, "503", 400, 599, 0,
             "HTTP status when the overall status is fail or draining"),
    ROOT_OPT("max_connections", AGENTD_OPT_INT, max_connections, "256", 1, 65536, 0,
             "concurrent connections from allowed sources; more are closed at once"),
    ROOT_OPT("max_connections_per_source", AGENTD_OPT_INT, max_connections_per_source, "64", 1,
             65536, 0, "concurrent connections from one source address; more are closed at once"),
    ROOT_OPT("idle_timeout", AGENTD_OPT_DURATION, idle_timeout, "60s", 100, 3600000, 0,
             "a kept-alive connection idle this long is closed"),
    ROOT_OPT("request_timeout", AGENTD_OPT_DURATION, request_timeout, "10s", 100, 600000, 0,
             "a request must arrive whole within this time (slow clients are closed)"),
    ROOT_OPT("request_line_timeout", AGENTD_OPT_DURATION, request_line_timeout, "2s", 100, 600000,
             0, "a request line must arrive within this time of connecting or of its first byte"),
    ROOT_OPT("max_header_size", AGENTD_OPT_SIZE, max_header_size, "8KiB", 1024, 65536, 0,
             "total size of a request's header names and values (431 above)"),
    ROOT_OPT("max_headers", AGENTD_OPT_INT, max_headers, "64", 4, 1000, 0,
             "number of header fields in a request (431 above)"),
    ROOT_OPT("max_url", AGENTD_OPT_SIZE, max_url, "2KiB", 64, REQUEST_URL_MAX, 0,
             "length of the request target (414 above)"),
    {0},
};

static bool numeric_hostport(const char *hp)
{
    char *host = NULL, *port = NULL;
    unsigned char buf[16];
    bool ok = false;

    if (agentd_hostport_split(hp, &host, &port) == 0)
        ok = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
    free(host);
    free(port);
    return ok;
}

static int root_validate(void *obj, struct agentd_confctx *cc)
{
    struct health_conf *cf = obj;
    int bad = 0;

    for (size_t i = 0; i < cf->listen.n; i++) {
        const char *l = *LIST_AT(cf->listen, char *, i);

        if (!numeric_hostport(l)) {
            agentd_conf_error(cc, "listen", "'%s' is not a numeric ip:port or [ipv6]:port", l);
            bad = 1;
        }
    }
    for (size_t i = 0; i < cf->paths.n; i++) {
        const char *p = *LIST_AT(cf->paths, char *, i), *why = NULL;

        if (!route_path_valid(p, &why)) {
            agentd_conf_error(cc, "paths", "'%s' %s", p, why);
            bad = 1;
        }
    }
    if (path_checks_validate(cf, cc) < 0)
        bad = 1;
    return bad ? -EINVAL : 0;
}

static const struct agentd_schema root_schema = {
    .name = "health",
    .size = sizeof(struct health_conf),
    .options = root_options,
    .validate = root_validate,
};

/* ---------------------------------------------------------------------- */

static void free_health(struct health *h)
{
    for (size_t i = 0; i < h->nchecks; i++)
        if (h->checks[i])
            check_stop(h->checks[i]);
    free(h->checks);
    serve_free(h);
    free(h->paths);
    free(h->draining_reason);
    free(h->auto_allow);
    free(h);
}

void health_pending_done(struct health *h)
{
    if (--h->pending != 0)
        return;
    if (h->stopping && h->stop_done) {
        agentd_stop_done_fn done = h->stop_done;

        h->stop_done = NULL;
        done(h->ctx);
    } else if (h->orphaned) {
        free_health(h);
    }
}

static int health_configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    const struct health_conf *cf = conf;
    struct health *h = calloc(1, sizeof(*h));
    int r;

    if (!h)
        return -ENOMEM;
    h->ctx = ctx;
    h->cf = cf;
    h->paths = calloc(cf->paths.n + 1, sizeof(*h->paths));
    h->checks = calloc(cf->checks.n + 1, sizeof(*h->checks));
    if (!h->paths || !h->checks) {
        free_health(h);
        return -ENOMEM;
    }
    for (size_t i = 0; i < cf->paths.n; i++)
        h->paths[i] = *LIST_AT(cf->paths, char *, i);
    for (size_t i = 0; i < cf->checks.n; i++) {
        r = check_new(h, LIST_AT(cf->checks, struct health_check_conf, i), &h->checks[i], err);
        if (r < 0) {
            free_health(h);
            return r;
        }
        h->nchecks++;
    }
    agentd_plugin_set_data(ctx, h);
    return 0;
}

static void on_event(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload,
                     void *ud)
{
    struct health *h = ud;

    if (strcmp(name, "metadata.changed") == 0) {
        struct hsrv_conf sc;

        if (h->cf->allow.n == 0 && h->srv && health_auto_allow(h)) {
            health_server_conf(h, h->cf, &sc);
            hsrv_update(h->srv, &sc);
        }
        return;
    }
    if (strcmp(name, "health.draining") == 0) {
        const char *reason = json_string_value(json_object_get(payload, "reason"));

        free(h->draining_reason);
        h->draining_reason = reason ? strdup(reason) : NULL;
    }
    serve_invalidate(h);
}

void health_server_conf(const struct health *h, const struct health_conf *cf, struct hsrv_conf *ret)
{
    bool automatic = cf->allow.n == 0;

    *ret = (struct hsrv_conf){
        .limits = {.max_url = cf->max_url,
                   .max_header_bytes = cf->max_header_size,
                   .max_headers = (unsigned)cf->max_headers},
        .max_connections = (unsigned)cf->max_connections,
        .idle_timeout_ms = cf->idle_timeout,
        .request_timeout_ms = cf->request_timeout,
        .line_timeout_ms = cf->request_line_timeout,
        .max_per_source = (unsigned)cf->max_connections_per_source,
        .allow = automatic ? h->auto_allow : cf->allow.items,
        .nallow = automatic ? h->n_auto : cf->allow.n,
        .detail_allow = cf->detail_allow.items,
        .ndetail = cf->detail_allow.n,
    };
}

static void on_server_closed(void *ud)
{
    health_pending_done(ud);
}

static int health_start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    struct health *h = agentd_plugin_get_data(ctx);
    const struct health_conf *cf = h->cf;
    struct hsrv_conf sc;
    struct hsrv_handler handler = serve_handler_template;
    char ports[128] = "";
    size_t off = 0;
    int r;

    handler.ud = h;
    health_auto_allow(h);
    health_server_conf(h, cf, &sc);
    r = serve_new(h);
    if (r < 0)
        return agentd_err_set(err, "out of memory");
    r = hsrv_new(agentd_loop(ctx), &sc, &handler, &h->srv);
    if (r < 0)
        return agentd_err_set(err, "out of memory");
    h->pending++; /* the server, until its close callback */
    for (size_t i = 0; i < cf->listen.n; i++) {
        const char *l = *LIST_AT(cf->listen, char *, i);

        r = hsrv_listen(h->srv, l);
        if (r < 0)
            return agentd_err_set(err, "cannot listen on %s: %s", l, uv_strerror(r));
        /* Port 0 (tests) shows the port the kernel picked. */
        if (off < sizeof(ports))
            off += (size_t)snprintf(ports + off, sizeof(ports) - off, "%s%.*s:%d", i ? " " : "",
                                    (int)(strrchr(l, ':') - l), l, hsrv_port(h->srv, i));
    }
    agentd_event_subscribe(ctx, "health.changed", on_event, h);
    agentd_event_subscribe(ctx, "health.draining", on_event, h);
    agentd_event_subscribe(ctx, "metadata.changed", on_event, h);
    for (size_t i = 0; i < h->nchecks; i++)
        check_start(h->checks[i]);
    agentd_info(ctx, "serving on %s (%zu checks)", ports, h->nchecks);
    agentd_plugin_report(ctx, false, "listening on %s, %zu checks", ports, h->nchecks);
    return 0;
}

static void health_stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    struct health *h = agentd_plugin_get_data(ctx);

    if (!h) {
        done(ctx);
        return;
    }
    h->stopping = true;
    h->stop_done = done;
    h->pending++; /* held across the loop below so done runs once, at the end */
    for (size_t i = 0; i < h->nchecks; i++) {
        check_stop(h->checks[i]);
        h->checks[i] = NULL;
    }
    systemd_bus_close(h);
    if (h->srv) {
        hsrv_close(h->srv, on_server_closed, h);
        h->srv = NULL;
    }
    health_pending_done(h);
}

static void health_status(struct agentd_plugin_ctx *ctx, json_t *out)
{
    struct health *h = agentd_plugin_get_data(ctx);
    json_t *ports = json_array();

    if (!h)
        return;
    for (size_t i = 0; h->srv && i < h->cf->listen.n; i++)
        json_array_append_new(ports, json_integer(hsrv_port(h->srv, i)));
    json_object_set_new(out, "ports", ports);
    json_object_set_new(out, "connections", json_integer(h->srv ? hsrv_connections(h->srv) : 0));
    json_object_set_new(out, "checks", json_integer((json_int_t)h->nchecks));
}

static void health_destroy(struct agentd_plugin_ctx *ctx)
{
    struct health *h = agentd_plugin_get_data(ctx);

    if (!h)
        return;
    agentd_plugin_set_data(ctx, NULL);
    if (h->srv) {
        /* A failed start: close what it opened. */
        hsrv_close(h->srv, on_server_closed, h);
        h->srv = NULL;
    }
    if (h->pending) {
        /* Handles are still closing (a failed start, or a stop the host gave
         * up on): the last close callback frees. */
        h->orphaned = true;
        return;
    }
    free_health(h);
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "health",
    .description = "HTTP health endpoint for ALB/NLB/Route 53 health checks, and its checks",
    .schema = &root_schema,
    .configure = health_configure,
    .start = health_start,
    .stop = health_stop,
    .reload = health_reload,
    .status = health_status,
    .destroy = health_destroy,
};

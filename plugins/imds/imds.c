/* The imds plugin: instance identity, tags, role credentials and interruption
 * notices from the EC2 instance metadata service (IMDSv2).
 *
 * One uv timer drives everything: the notice poll (default every 5 s, four
 * GETs), the slow metadata refresh (default 10 min), and, while IMDS does not
 * answer, the refresh retried with capped backoff. An idle agentd therefore
 * wakes for this plugin once per poll interval and for the poll's own I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imds.h"

#define FIRST_BACKOFF_MS 1000

static const char *const mode_names[] = {"auto", "ipv4", "ipv6", NULL};

static int conf_validate(void *obj, struct agentd_confctx *cc)
{
    struct imds_conf *c = obj;
    if (c->endpoint && strncmp(c->endpoint, "http://", 7) != 0)
        agentd_conf_error(cc, "endpoint", "IMDS is plain http: \"%s\" must start with http://",
                          c->endpoint);
    else if (c->endpoint && !c->allow_remote_imds && !imds_endpoint_is_local(c->endpoint))
        agentd_conf_error(cc, "endpoint",
                          "\"%s\" is not link-local or loopback: role credentials would cross "
                          "the network in clear text (allow_remote_imds: true to insist)",
                          c->endpoint);
    if (c->token_ttl_ms % 1000)
        agentd_conf_error(cc, "token_ttl", "must be whole seconds (IMDS takes seconds)");
    if (c->poll_interval_ms && c->poll_interval_ms < 1000)
        agentd_conf_error(cc, "poll_interval", "must be 0 (off) or at least 1s");
    return 0;
}

#define OPT(n, t, f, d, mn, mx, desc)                                                              \
    {                                                                                              \
        .name = n, .type = t, .offset = offsetof(struct imds_conf, f), .def = d, .min = mn,        \
        .max = mx, .description = desc                                                             \
    }

static const struct agentd_option options[] = {
    {.name = "endpoint",
     .type = AGENTD_OPT_URL,
     .offset = offsetof(struct imds_conf, endpoint),
     .description = "IMDS base URL (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else by "
                    "endpoint_mode); setting it also overrides AWS_EC2_METADATA_DISABLED"},
    {.name = "allow_remote_imds",
     .type = AGENTD_OPT_BOOL,
     .offset = offsetof(struct imds_conf, allow_remote_imds),
     .def = "false",
     .description = "let endpoint name a host that is neither link-local nor loopback"},
    {.name = "endpoint_mode",
     .type = AGENTD_OPT_ENUM,
     .offset = offsetof(struct imds_conf, endpoint_mode),
     .def = "auto",
     .values = mode_names,
     .description = "ipv4 (169.254.169.254), ipv6 ([fd00:ec2::254]), or auto "
                    "(AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE, else ipv4)"},
    OPT("token_ttl", AGENTD_OPT_DURATION, token_ttl_ms, "6h", 1000, 21600000,
        "lifetime asked for the IMDSv2 session token (1s to 6h); it is reused until shortly "
        "before it ends"),
    OPT("v1_fallback", AGENTD_OPT_BOOL, v1_fallback, "false", 0, 0,
        "use IMDSv1 (no token) when the token PUT answers 403/404/405"),
    OPT("poll_interval", AGENTD_OPT_DURATION, poll_interval_ms, "5s", 0, 3600000,
        "how often spot, rebalance, maintenance and lifecycle notices are polled; 0: never"),
    OPT("refresh_interval", AGENTD_OPT_DURATION, refresh_interval_ms, "10m", 1000, 86400000,
        "how often identity, tags and role name are read again"),
    OPT("timeout", AGENTD_OPT_DURATION, timeout_ms, "2s", 100, 60000,
        "total time for one IMDS request"),
    OPT("connect_timeout", AGENTD_OPT_DURATION, connect_timeout_ms, "1s", 100, 60000,
        "time to connect to IMDS"),
    OPT("attempts", AGENTD_OPT_INT, attempts, "3", 1, 10,
        "attempts per metadata or credentials request (transport errors and 5xx)"),
    OPT("max_backoff", AGENTD_OPT_DURATION, max_backoff_ms, "1m", 1000, 3600000,
        "longest wait between tries while IMDS is unreachable"),
    OPT("tags", AGENTD_OPT_BOOL, tags, "true", 0, 0,
        "read instance tags (tags/instance/, when the instance allows it) as {tag:KEY}"),
    OPT("credentials", AGENTD_OPT_BOOL, credentials, "true", 0, 0,
        "offer the instance role's credentials to agentd's AWS core"),
    {.name = NULL},
};

static const struct agentd_schema schema = {
    .name = "imds",
    .size = sizeof(struct imds_conf),
    .options = options,
    .validate = conf_validate,
};

uint64_t imds_wallclock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

static uint64_t now_ms(struct imds *im)
{
    return uv_now(agentd_loop(im->ctx));
}

void imds_report(struct imds *im)
{
    if (im->m_reachable)
        agentd_metric_set(im->m_reachable, im->reachable ? 1 : 0);
    if (im->disabled) {
        agentd_plugin_report(im->ctx, false, "disabled by AWS_EC2_METADATA_DISABLED");
        return;
    }
    if (im->reachable) {
        const char *id = imds_meta_get(im, "instance_id");
        const char *az = imds_meta_get(im, "az");
        agentd_plugin_report(im->ctx, false, "%s in %s%s%s", id ? id : "instance",
                             az ? az : "unknown zone", im->v1 ? " (IMDSv1)" : "",
                             im->role ? "" : ", no IAM role");
        agentd_health_set(im->health, AGENTD_HEALTH_PASS, "IMDS at %s answers", im->base);
        return;
    }
    uint64_t now = now_ms(im);
    uint64_t in = im->next_refresh > now ? (im->next_refresh - now + 999) / 1000 : 0;
    agentd_plugin_report(im->ctx, true, "IMDS at %s unreachable (%s); retry in %llus", im->base,
                         im->last_error[0] ? im->last_error : "no answer yet",
                         (unsigned long long)in);
    agentd_health_set(im->health, AGENTD_HEALTH_WARN, "IMDS at %s unreachable: %s", im->base,
                      im->last_error[0] ? im->last_error : "no answer yet");
}

static void tick_cb(uv_timer_t *t)
{
    imds_schedule(t->data);
}

void imds_schedule(struct imds *im)
{
    if (im->stopping || im->disabled)
        return;
    uint64_t now = now_ms(im);
    uint64_t pi = im->conf->poll_interval_ms;

    if (!im->refreshing && now >= im->next_refresh) {
        im->refreshing = true;
        im->refresh_again = false;
        int r = imds_meta_refresh(im);
        if (r < 0)
            imds_refresh_done(im, r, "start");
    }
    if (im->reachable && !im->polling && pi && now >= im->next_poll) {
        im->polling = true;
        /* A fixed cadence: the next round is due one interval after this
         * one began, however long this one takes. */
        im->next_poll = now + pi;
        imds_notices_poll(im);
    }
    if (im->stopping)
        return;
    uint64_t due = UINT64_MAX;
    if (!im->refreshing)
        due = im->next_refresh;
    if (im->reachable && !im->polling && pi && im->next_poll < due)
        due = im->next_poll;
    if (due == UINT64_MAX)
        uv_timer_stop(im->tick);
    else
        uv_timer_start(im->tick, tick_cb, due > now ? due - now : 0, 0);
}

void imds_refresh_done(struct imds *im, int err, const char *what)
{
    im->refreshing = false;
    if (err == -ECANCELED || im->stopping)
        return;
    im->tried = true;
    uint64_t now = now_ms(im);
    if (err == 0) {
        if (!im->reachable) {
            if (im->fail_streak)
                agentd_notice(im->ctx, "IMDS at %s answers again", im->base);
            im->next_poll = now;
        }
        im->reachable = true;
        im->fail_streak = 0;
        im->last_refresh_ok_ms = imds_wallclock_ms();
        im->next_refresh = now + im->conf->refresh_interval_ms;
    } else {
        uint64_t d = imds_backoff_ms(im->fail_streak, FIRST_BACKOFF_MS, im->conf->max_backoff_ms,
                                     (uint32_t)random());
        if (d > im->conf->max_backoff_ms)
            d = im->conf->max_backoff_ms;
        if (im->fail_streak == 0)
            agentd_warning(im->ctx,
                           "IMDS at %s: metadata refresh failed at %s: %s; retrying with "
                           "backoff, static metadata stays in use",
                           im->base, what ? what : "?",
                           im->last_error[0] ? im->last_error : strerror(-err));
        else
            agentd_debug(im->ctx, "metadata refresh failed again at %s: %s", what ? what : "?",
                         im->last_error[0] ? im->last_error : strerror(-err));
        im->fail_streak++;
        /* A malformed answer means IMDS is there; anything else means it
         * is not, and polling waits until a refresh gets through. */
        if (err != -EPROTO)
            im->reachable = false;
        im->next_refresh = now + d;
    }
    if (im->refresh_again)
        im->next_refresh = now;
    imds_report(im);
    imds_schedule(im);
}

void imds_poll_done(struct imds *im, int err)
{
    im->polling = false;
    if (err == -ECANCELED || im->stopping)
        return;
    if (err < 0 && im->reachable) {
        agentd_warning(im->ctx, "IMDS at %s stopped answering (%s); polling paused, retrying",
                       im->base, im->last_error[0] ? im->last_error : strerror(-err));
        im->reachable = false;
        im->fail_streak = 1;
        im->next_refresh = now_ms(im) + FIRST_BACKOFF_MS;
        imds_report(im);
    }
    imds_schedule(im);
}

/* ---- descriptor ------------------------------------------------------- */

static int resolve(struct imds *im, const struct imds_conf *c, struct agentd_err *err)
{
    const char *bad = "?";
    char *base = NULL;
    /* The SDKs' switch: with it set, nothing touches IMDS. An explicit
     * `endpoint:` in agentd's config is a deliberate choice and wins. */
    im->disabled = !c->endpoint && imds_env_disabled(getenv("AWS_EC2_METADATA_DISABLED"));
    int r = imds_endpoint_resolve(c->endpoint, c->endpoint_mode, env_get, &base, &bad);
    if (r == -EINVAL)
        return agentd_err_set(err, "%s", bad);
    if (r < 0)
        return agentd_err_set(err, "cannot resolve the IMDS endpoint: %s", strerror(-r));
    free(im->base);
    im->base = base;
    return 0;
}

static void metrics_init(struct imds *im)
{
    static const char *const kinds[4] = {"spot", "rebalance", "maintenance", "lifecycle"};
    im->m_requests = agentd_metric_counter(im->ctx, "agentd_imds_requests_total",
                                           "IMDS GET requests sent", NULL);
    im->m_errors = agentd_metric_counter(im->ctx, "agentd_imds_request_errors_total",
                                         "IMDS requests that failed after their retries", NULL);
    im->m_tokens = agentd_metric_counter(im->ctx, "agentd_imds_token_requests_total",
                                         "IMDSv2 session token PUTs", NULL);
    im->m_reachable =
        agentd_metric_gauge(im->ctx, "agentd_imds_reachable", "1 while IMDS answers, else 0", NULL);
    for (int k = 0; k < 4; k++) {
        const char *labels[] = {"kind", kinds[k], NULL};
        im->m_notices[k] = agentd_metric_counter(im->ctx, "agentd_imds_notices_total",
                                                 "notices published, by kind", labels);
    }
}

static int imds_configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    struct imds *im = calloc(1, sizeof(*im));
    if (!im)
        return -ENOMEM;
    im->ctx = ctx;
    im->conf = conf;
    agentd_plugin_set_data(ctx, im);
    int r = resolve(im, conf, err);
    if (r < 0)
        return r;
    return imds_notices_init(im);
}

static int imds_start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    struct imds *im = agentd_plugin_get_data(ctx);
    int r;

    if ((r = imds_control_register(im)) < 0)
        return agentd_err_set(err, "cannot register control verbs: %s", strerror(-r));
    if (im->disabled) {
        agentd_notice(ctx, "IMDS disabled by AWS_EC2_METADATA_DISABLED; static metadata only");
        imds_report(im);
        return 0;
    }
    if ((r = agentd_health_register(ctx, "imds:reachable", false, &im->health)) < 0)
        return agentd_err_set(err, "cannot register the health check: %s", strerror(-r));
    if (im->conf->credentials && (r = imds_creds_register(im)) < 0)
        return agentd_err_set(err, "cannot register the credentials provider: %s", strerror(-r));
    metrics_init(im);
    im->tick = malloc(sizeof(*im->tick));
    if (!im->tick)
        return -ENOMEM;
    uv_timer_init(agentd_loop(ctx), im->tick);
    im->tick->data = im;
    agentd_info(ctx, "using IMDS at %s (poll every %llu ms)", im->base,
                (unsigned long long)im->conf->poll_interval_ms);
    agentd_plugin_report(ctx, false, "contacting IMDS at %s", im->base);
    im->next_refresh = now_ms(im);
    imds_schedule(im);
    return 0;
}

static void tick_closed(uv_handle_t *h)
{
    struct imds *im = h->data;
    agentd_stop_done_fn done = im->stop_done;
    free(h);
    im->tick = NULL;
    done(im->ctx);
}

static void imds_stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    struct imds *im = agentd_plugin_get_data(ctx);
    im->stopping = true;
    imds_client_cancel_all(im);
    if (im->health) {
        agentd_health_unregister(im->health);
        im->health = NULL;
    }
    if (!im->tick) {
        done(ctx);
        return;
    }
    uv_timer_stop(im->tick);
    im->stop_done = done;
    uv_close((uv_handle_t *)im->tick, tick_closed);
}

static int imds_reload(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    struct imds *im = agentd_plugin_get_data(ctx);
    const struct imds_conf *c = conf;
    const struct imds_conf *old = im->conf;
    bool was_disabled = im->disabled;
    /* Starting or stopping IMDS use altogether, or the credentials provider,
     * is a restart; anything else applies in place and keeps the notices
     * already published, so a reload does not announce them again. */
    if (c->credentials != old->credentials)
        return -EOPNOTSUPP;
    char *old_base = im->base ? strdup(im->base) : NULL;
    int r = resolve(im, c, err);
    if (r < 0 || im->disabled != was_disabled) {
        free(im->base);
        im->base = old_base;
        im->disabled = was_disabled;
        return r < 0 ? r : -EOPNOTSUPP;
    }
    if (!old_base || strcmp(old_base, im->base) != 0 || c->token_ttl_ms != old->token_ttl_ms ||
        c->v1_fallback != old->v1_fallback) {
        imds_client_drop_token(im);
        im->v1 = false;
    }
    free(old_base);
    im->conf = c;
    im->next_refresh = 0;
    if (im->reachable)
        im->next_poll = now_ms(im) + c->poll_interval_ms;
    imds_schedule(im);
    return 0;
}

static void imds_status(struct agentd_plugin_ctx *ctx, json_t *out)
{
    struct imds *im = agentd_plugin_get_data(ctx);
    json_t *s = imds_show_json(im);
    if (!s)
        return;
    /* The summary only: metadata and notices are `agentctl imds show`. */
    json_object_del(s, "metadata");
    json_object_update(out, s);
    json_decref(s);
}

static void imds_destroy(struct agentd_plugin_ctx *ctx)
{
    struct imds *im = agentd_plugin_get_data(ctx);
    if (!im)
        return;
    imds_client_drop_token(im);
    imds_meta_free(im);
    imds_notices_free(im);
    free(im->base);
    free(im);
    agentd_plugin_set_data(ctx, NULL);
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "imds",
    .description = "EC2 instance metadata (IMDSv2): identity, tags, role credentials, "
                   "interruption notices",
    .schema = &schema,
    .configure = imds_configure,
    .start = imds_start,
    .stop = imds_stop,
    .reload = imds_reload,
    .status = imds_status,
    .destroy = imds_destroy,
};

/* One target group's life: resolve, wait for health, register, watch,
 * deregister and drain. Every decision is made in tg_group_step(), which runs
 * whenever something changes (a reply, a timer, an event), so the state
 * machine lives in one place. At most one request per group is in flight. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tg.h"

#define DEFAULT_DEREG_DELAY_S 300
#define FIRST_POLL_MS         5000
#define DEREG_GRACE_MS        30000
#define DRAIN_MARGIN_MS       2000

static const char *const state_names[] = {
    [TG_WAITING] = "waiting-for-health", [TG_REGISTERING] = "registering",
    [TG_REGISTERED] = "registered",      [TG_DRAINING] = "draining",
    [TG_DEREGISTERED] = "deregistered",  [TG_ERROR] = "error",
};

const char *tg_state_name(enum tg_state s)
{
    return state_names[s];
}

uint64_t tg_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *name_of(const struct tg_group *g)
{
    return g->conf->name ? g->conf->name : g->conf->arn;
}

static void set_state(struct tg_group *g, enum tg_state s)
{
    if (g->state == s)
        return;
    g->state = s;
    g->since_ms = wall_ms();
    agentd_metric_set(g->m_registered, s == TG_REGISTERED ? 1 : 0);
    tg_changed(g->tg);
}

static void replace(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? strdup(v) : NULL;
}

static const char *target_id(const struct tg_group *g)
{
    struct agentd_plugin_ctx *ctx = g->tg->ctx;
    return agentd_metadata_get(ctx,
                               g->conf->target_type == TG_TYPE_IP ? "local_ipv4" : "instance_id");
}

static void arm(struct tg_group *g, uint64_t ms);
static void on_reply(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                     void *ud);

static int send_request(struct tg_group *g, const char *action, struct tg_form *f)
{
    static const char *const headers[] = {
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL};
    const struct tg_conf *c = g->tg->conf;
    if (f->failed) {
        tg_form_free(f);
        return -ENOMEM;
    }
    struct agentd_aws_request req = {
        .service = "elasticloadbalancing",
        .endpoint_id = "ELASTIC_LOAD_BALANCING_V2",
        .endpoint = c->endpoint,
        .region = c->region,
        .protocol = AGENTD_AWS_QUERY,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .body = f->buf,
        .body_len = f->len,
    };
    g->call_action = action;
    int r = agentd_aws_request(g->tg->ctx, &req, on_reply, g, &g->call);
    tg_form_free(f);
    if (r < 0) {
        g->call = NULL;
        agentd_error(g->tg->ctx, "group '%s': cannot send %s: %s", name_of(g), action,
                     strerror(-r));
        arm(g, 5000);
    }
    return r;
}

static void send_target_action(struct tg_group *g, const char *action)
{
    struct tg_form f;
    tg_form_init(&f, action);
    tg_form_add(&f, "TargetGroupArn", g->arn);
    tg_form_add_target(&f, target_id(g), g->conf->port,
                       g->conf->target_type == TG_TYPE_IP ? g->conf->availability_zone : NULL);
    send_request(g, action, &f);
}

static void send_simple(struct tg_group *g, const char *action, const char *key, const char *value)
{
    struct tg_form f;
    tg_form_init(&f, action);
    tg_form_add(&f, key, value);
    send_request(g, action, &f);
}

static void on_timer(uv_timer_t *t)
{
    struct tg_group *g = t->data;
    g->timer_due = true;
    tg_group_step(g);
}

static void arm(struct tg_group *g, uint64_t ms)
{
    g->timer_due = false;
    uv_timer_start(&g->timer, on_timer, ms, 0);
}

/* The drain deadline: the configured drain_timeout, else the group's
 * deregistration delay, and never past a spot interruption. */
static void set_drain_deadline(struct tg_group *g, uint64_t started_mono)
{
    const struct tg_conf *c = g->tg->conf;
    uint64_t ms = c->drain_timeout_ms;
    /* The load balancer finishes draining when the delay ends, and we learn
     * it on the next poll: allow one poll and a round trip beyond. */
    if (ms == 0)
        ms = (uint64_t)(g->dereg_delay_s >= 0 ? g->dereg_delay_s : DEFAULT_DEREG_DELAY_S) * 1000u +
             c->drain_poll_ms + DRAIN_MARGIN_MS;
    if (g->tg->interruption_at > 0) {
        int64_t left = g->tg->interruption_at * 1000 - (int64_t)wall_ms();
        if (left < 0)
            left = 0;
        if ((uint64_t)left < ms)
            ms = (uint64_t)left;
    }
    g->drain_deadline_ms = started_mono + ms;
}

void tg_group_init(struct tg *tg, struct tg_group *g, const struct tg_group_conf *conf)
{
    memset(g, 0, sizeof(*g));
    g->tg = tg;
    g->conf = conf;
    g->state = TG_WAITING;
    g->since_ms = wall_ms();
    g->dereg_delay_s = -1;
    uv_timer_init(agentd_loop(tg->ctx), &g->timer);
    g->timer.data = g;
    const char *labels[] = {"group", name_of(g), NULL};
    g->m_registered =
        agentd_metric_gauge(tg->ctx, "agentd_targetgroup_registered",
                            "1 while the instance is registered in the group", labels);
}

static bool drain_done_for_lack_of_target(struct tg_group *g)
{
    /* Nothing was or can be registered without an ARN or a target id. */
    if (!g->arn || !target_id(g)) {
        set_state(g, TG_DEREGISTERED);
        return true;
    }
    return false;
}

static void step_draining(struct tg_group *g, bool due)
{
    uint64_t now = tg_now_ms();
    if (g->state == TG_DEREGISTERED)
        return;
    if (g->drain_deadline_ms == 0) {
        if (drain_done_for_lack_of_target(g))
            return;
        g->drain_started_ms = now;
        set_drain_deadline(g, now);
        /* Until the deregistration is accepted the deadline has a grace: a
         * throttled DeregisterTargets is retried, never given up, while there
         * is time before the instance goes. The drain wait starts at the ack. */
        g->drain_deadline_ms += DEREG_GRACE_MS;
        if (g->tg->interruption_at > 0) {
            int64_t left = g->tg->interruption_at * 1000 - (int64_t)wall_ms();
            uint64_t cap = now + (uint64_t)(left > 0 ? left : 0);
            if (g->drain_deadline_ms > cap)
                g->drain_deadline_ms = cap;
        }
        g->failures = 0;
        g->timer_due = false;
        uv_timer_stop(&g->timer);
        set_state(g, TG_DRAINING);
        g->call_action = NULL;
        send_target_action(g, "DeregisterTargets");
        return;
    }
    if (now >= g->drain_deadline_ms) {
        agentd_warning(g->tg->ctx,
                       "group '%s': drain timeout reached before the load balancer released the "
                       "target (last state %s)",
                       name_of(g), g->elb_state ? g->elb_state : "unknown");
        set_state(g, TG_DEREGISTERED);
        return;
    }
    if (!due)
        return; /* a retry or poll timer is armed */
    if (g->last_error && g->failures > 0)
        send_target_action(g, "DeregisterTargets");
    else if (g->dereg_delay_s < 0 && !g->delay_asked && g->tg->conf->drain_timeout_ms == 0)
        send_simple(g, "DescribeTargetGroupAttributes", "TargetGroupArn", g->arn);
    else
        send_target_action(g, "DescribeTargetHealth");
}

void tg_group_step(struct tg_group *g)
{
    struct tg *tg = g->tg;
    if (g->call)
        return;
    bool due = g->timer_due;
    g->timer_due = false;

    if (!g->arn && g->conf->arn)
        g->arn = strdup(g->conf->arn);
    if (tg->draining) {
        step_draining(g, due);
        return;
    }
    if (!g->arn) {
        if (g->state == TG_ERROR && !due)
            return;
        send_simple(g, "DescribeTargetGroups", "Names.member.1", g->conf->name);
        return;
    }
    if (!target_id(g)) {
        replace(&g->last_error, g->conf->target_type == TG_TYPE_IP
                                    ? "waiting for metadata local_ipv4"
                                    : "waiting for metadata instance_id");
        set_state(g, TG_WAITING);
        return;
    }
    switch (g->state) {
    case TG_WAITING:
    case TG_DEREGISTERED:
        if (tg_health_ok(tg)) {
            set_state(g, TG_REGISTERING);
            send_target_action(g, "RegisterTargets");
        } else if (g->state != TG_WAITING) {
            set_state(g, TG_WAITING);
        }
        break;
    case TG_ERROR:
        if (!due)
            break;
        if (g->ever_registered) {
            send_target_action(g, "DescribeTargetHealth");
        } else if (tg_health_ok(tg)) {
            send_target_action(g, "RegisterTargets");
        } else {
            set_state(g, TG_WAITING);
        }
        break;
    case TG_REGISTERING:
        send_target_action(g, "RegisterTargets");
        break;
    case TG_REGISTERED:
        if (!g->delay_asked)
            send_simple(g, "DescribeTargetGroupAttributes", "TargetGroupArn", g->arn);
        else if (due)
            send_target_action(g, "DescribeTargetHealth");
        break;
    case TG_DRAINING: /* undrained: join again */
        set_state(g, TG_WAITING);
        tg_group_step(g);
        break;
    }
}

static bool permanent_error(const char *code)
{
    static const char *const codes[] = {
        "TargetGroupNotFound",
        "InvalidTarget",
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "ValidationError",
        "InvalidConfigurationRequest",
        "TooManyTargets",
        "TooManyRegistrationsForTargetId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "MissingAuthenticationToken",
        "ExpiredToken",
    };
    for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

static uint64_t backoff(struct tg_group *g, bool permanent)
{
    unsigned f = g->failures < 12 ? g->failures : 12;
    uint64_t base, cap;
    if (g->tg->draining) {
        base = 250, cap = 1000; /* never give a deregistration up while there is time */
    } else if (permanent) {
        base = 30000, cap = 300000;
    } else {
        base = 2000, cap = 60000;
    }
    uint64_t d = base << (f > 0 ? f - 1 : 0);
    if (d > cap)
        d = cap;
    /* Half fixed, half jitter: spread a fleet's retries without ever retrying hot. */
    return d / 2 + (uint64_t)rand() % (d / 2 + 1);
}

static void on_failure(struct tg_group *g, const char *action,
                       const struct agentd_aws_response *res)
{
    char msg[512];
    bool permanent = permanent_error(res->error_code);
    if (res->error_code)
        snprintf(msg, sizeof(msg), "%s failed: %s: %s", action, res->error_code,
                 res->error_message ? res->error_message : "");
    else
        snprintf(msg, sizeof(msg), "%s failed: %s", action,
                 res->error_message ? res->error_message : strerror(-res->error));
    bool repeat = g->last_error && strcmp(g->last_error, msg) == 0;
    if (!repeat)
        agentd_log(g->tg->ctx, permanent ? AGENTD_LOG_ERR : AGENTD_LOG_WARNING, "group '%s': %s",
                   name_of(g), msg);
    replace(&g->last_error, msg);
    agentd_metric_add(g->tg->m_requests_failed, 1);
    g->failures++;
    uint64_t d = backoff(g, permanent);
    if (g->tg->draining) {
        uint64_t now = tg_now_ms();
        if (g->drain_deadline_ms > now && g->drain_deadline_ms - now < d)
            d = g->drain_deadline_ms - now;
    } else {
        set_state(g, TG_ERROR);
    }
    arm(g, d);
}

static void on_health(struct tg_group *g, const struct tg_reply *r)
{
    tg_view_update(g, r->state, r->reason, r->description);
    replace(&g->elb_state, r->state);
    replace(&g->elb_reason, r->reason);
    replace(&g->elb_description, r->description);
    bool gone = !r->has_target || (r->state && strcmp(r->state, "unused") == 0);
    const struct tg_conf *c = g->tg->conf;
    if (g->tg->draining) {
        if (gone) {
            agentd_notice(g->tg->ctx, "group '%s': target %s drained and deregistered", name_of(g),
                          target_id(g) ? target_id(g) : "?");
            set_state(g, TG_DEREGISTERED);
            return;
        }
        uint64_t now = tg_now_ms(), d = c->drain_poll_ms;
        if (g->drain_deadline_ms > now && g->drain_deadline_ms - now < d)
            d = g->drain_deadline_ms - now;
        g->failures = 0;
        arm(g, d);
        return;
    }
    if (gone || (r->state && strcmp(r->state, "draining") == 0)) {
        agentd_warning(g->tg->ctx,
                       "group '%s': target %s is missing from the group (%s%s%s); registering "
                       "again",
                       name_of(g), target_id(g), r->state ? r->state : "not listed",
                       r->reason ? ": " : "", r->reason ? r->reason : "");
        set_state(g, TG_REGISTERING);
        send_target_action(g, "RegisterTargets");
        return;
    }
    set_state(g, TG_REGISTERED);
    arm(g, c->poll_interval_ms);
}

static void on_reply(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res, void *ud)
{
    struct tg_group *g = ud;
    const char *action = g->call_action;
    g->call = NULL;
    if (res->error) {
        on_failure(g, action, res);
        return;
    }
    struct tg_reply r;
    if (tg_reply_parse(res->body, res->body_len, &r) < 0) {
        struct agentd_aws_response bad = *res;
        bad.error = -EBADMSG;
        bad.error_code = NULL;
        bad.error_message = "malformed XML in the answer";
        on_failure(g, action, &bad);
        return;
    }
    agentd_metric_add(g->tg->m_requests_ok, 1);
    g->failures = 0;
    if (strcmp(action, "DescribeTargetGroups") == 0) {
        if (!r.arn) {
            struct agentd_aws_response bad = *res;
            bad.error = -ENOENT;
            bad.error_code = "TargetGroupNotFound";
            bad.error_message = "no target group of that name";
            on_failure(g, action, &bad);
        } else {
            agentd_info(ctx, "group '%s' is %s", name_of(g), r.arn);
            replace(&g->arn, r.arn);
            set_state(g, TG_WAITING);
            tg_group_step(g);
        }
    } else if (strcmp(action, "RegisterTargets") == 0) {
        agentd_notice(ctx, "group '%s': registered target %s port %lld", name_of(g), target_id(g),
                      (long long)g->conf->port);
        g->ever_registered = true;
        replace(&g->last_error, NULL);
        set_state(g, TG_REGISTERED);
        arm(g, g->tg->conf->poll_interval_ms < FIRST_POLL_MS ? g->tg->conf->poll_interval_ms
                                                             : FIRST_POLL_MS);
        tg_group_step(g);
    } else if (strcmp(action, "DeregisterTargets") == 0) {
        agentd_notice(ctx, "group '%s': deregistered target %s (%s); draining", name_of(g),
                      target_id(g), g->tg->drain_reason);
        replace(&g->last_error, NULL);
        g->drain_started_ms = tg_now_ms();
        set_drain_deadline(g, g->drain_started_ms);
        arm(g, 0);
    } else if (strcmp(action, "DescribeTargetGroupAttributes") == 0) {
        g->delay_asked = true;
        if (r.dereg_delay_s >= 0) {
            g->dereg_delay_s = r.dereg_delay_s;
            /* The stop must outlast the longest drain. */
            agentd_plugin_set_stop_timeout(ctx, (uint64_t)r.dereg_delay_s * 1000u + DEREG_GRACE_MS +
                                                    30000u);
            if (g->tg->draining && g->tg->conf->drain_timeout_ms == 0)
                set_drain_deadline(g, g->drain_started_ms);
        }
        if (g->tg->draining)
            arm(g, 0);
        else
            tg_group_step(g);
    } else if (strcmp(action, "DescribeTargetHealth") == 0) {
        on_health(g, &r);
    }
    tg_reply_free(&r);
}

void tg_group_close(struct tg_group *g, uv_close_cb cb)
{
    if (g->call) {
        agentd_aws_cancel(g->call);
        g->call = NULL;
    }
    g->timer.data = g->tg; /* the close callback counts handles on the plugin */
    uv_close((uv_handle_t *)&g->timer, cb);
}

void tg_group_free(struct tg_group *g)
{
    free(g->arn);
    free(g->elb_state);
    free(g->elb_reason);
    free(g->elb_description);
    free(g->last_error);
}

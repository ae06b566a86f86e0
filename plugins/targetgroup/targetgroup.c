/* targetgroup: puts the instance into its ELBv2 target groups once it is
 * healthy, and takes it out, drained, before it goes away (stop, spot
 * interruption, Auto Scaling termination, or an admin's drain). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tg.h"

static const char *const target_types[] = {"instance", "ip", NULL};
static const char *const join_modes[] = {"healthy", "start", NULL};

static int validate_group(void *obj, struct agentd_confctx *cc)
{
    struct tg_group_conf *g = obj;
    if (!g->name && !g->arn) {
        agentd_conf_error(cc, NULL, "a target group needs a name or an arn");
        return -EINVAL;
    }
    if (g->name && g->arn) {
        agentd_conf_error(cc, "arn", "give either name or arn, not both");
        return -EINVAL;
    }
    if (g->arn && strncmp(g->arn, "arn:", 4) != 0) {
        agentd_conf_error(cc, "arn", "'%s' is not an ARN (arn:aws:elasticloadbalancing:...)",
                          g->arn);
        return -EINVAL;
    }
    if (g->availability_zone && g->target_type != TG_TYPE_IP) {
        agentd_conf_error(cc, "availability_zone", "only targets of type ip take a zone");
        return -EINVAL;
    }
    return 0;
}

static const struct agentd_option group_options[] = {
    {.name = "name",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct tg_group_conf, name),
     .flags = AGENTD_OPT_TEMPLATE,
     .description = "target group name, resolved to its ARN once with DescribeTargetGroups"},
    {.name = "arn",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct tg_group_conf, arn),
     .flags = AGENTD_OPT_TEMPLATE,
     .description = "target group ARN (instead of name)"},
    {.name = "port",
     .type = AGENTD_OPT_INT,
     .offset = offsetof(struct tg_group_conf, port),
     .flags = AGENTD_OPT_REQUIRED,
     .min = 1,
     .max = 65535,
     .description = "port of the application behind the group, e.g. 8000"},
    {.name = "target_type",
     .type = AGENTD_OPT_ENUM,
     .def = "instance",
     .offset = offsetof(struct tg_group_conf, target_type),
     .values = target_types,
     .description = "instance (Id = instance id) or ip (Id = the instance's private IPv4)"},
    {.name = "availability_zone",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct tg_group_conf, availability_zone),
     .flags = AGENTD_OPT_TEMPLATE,
     .description = "for ip targets outside the VPC: the zone, or all"},
    {0},
};

static const struct agentd_schema group_schema = {
    .name = "target group",
    .size = sizeof(struct tg_group_conf),
    .options = group_options,
    .validate = validate_group,
};

static const struct agentd_option options[] = {
    {.name = "groups",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_OBJECT,
     .sub = &group_schema,
     .offset = offsetof(struct tg_conf, groups),
     .flags = AGENTD_OPT_REQUIRED,
     .min = 1,
     .max = 100,
     .description = "the target groups to join"},
    {.name = "join_when",
     .type = AGENTD_OPT_ENUM,
     .def = "healthy",
     .offset = offsetof(struct tg_conf, join_when),
     .values = join_modes,
     .description = "healthy: once the health checks pass; start: at once"},
    {.name = "checks",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_STRING,
     .offset = offsetof(struct tg_conf, checks),
     .description = "health checks that must pass to join (default: the overall status)"},
    {.name = "drain_timeout",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct tg_conf, drain_timeout_ms),
     .min = 0,
     .max = 3600000,
     .description = "longest wait for draining (default: the group's deregistration delay); "
                    "never past a spot interruption"},
    {.name = "poll_interval",
     .type = AGENTD_OPT_DURATION,
     .def = "60s",
     .offset = offsetof(struct tg_conf, poll_interval_ms),
     .min = 1000,
     .max = 3600000,
     .description = "how often to check that the instance is still in its groups"},
    {.name = "drain_poll_interval",
     .type = AGENTD_OPT_DURATION,
     .def = "2s",
     .offset = offsetof(struct tg_conf, drain_poll_ms),
     .min = 100,
     .max = 60000,
     .description = "how often to ask whether draining has finished"},
    {.name = "endpoint",
     .type = AGENTD_OPT_URL,
     .offset = offsetof(struct tg_conf, endpoint),
     .flags = AGENTD_OPT_ENDPOINT,
     .description = "ELBv2 endpoint URL (default: from the region)"},
    {.name = "region",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct tg_conf, region),
     .flags = AGENTD_OPT_TEMPLATE,
     .description = "region of the groups (default: agentd's)"},
    {.name = "health_check",
     .type = AGENTD_OPT_BOOL,
     .def = "false",
     .offset = offsetof(struct tg_conf, health_check),
     .description = "register a non-critical check targetgroup:registered"},
    {0},
};

static const struct agentd_schema schema = {
    .name = "targetgroup",
    .size = sizeof(struct tg_conf),
    .options = options,
};

static struct tg *get(struct agentd_plugin_ctx *ctx)
{
    return agentd_plugin_get_data(ctx);
}

bool tg_health_ok(struct tg *tg)
{
    if (tg->conf->join_when == TG_JOIN_START)
        return true;
    if (tg->conf->checks.n == 0)
        return agentd_health_overall(tg->ctx) != AGENTD_HEALTH_FAIL;
    char **names = tg->conf->checks.items;
    for (size_t i = 0; i < tg->conf->checks.n; i++) {
        struct agentd_health_info info;
        if (agentd_health_get(tg->ctx, names[i], &info) < 0 || info.status == AGENTD_HEALTH_FAIL)
            return false;
    }
    return true;
}

static void step_all(struct tg *tg)
{
    for (size_t i = 0; i < tg->n_groups; i++)
        tg_group_step(&tg->groups[i]);
}

static void on_closed(uv_handle_t *h)
{
    struct tg *tg = h->data;
    if (--tg->open_handles == 0 && tg->stop_done) {
        agentd_stop_done_fn done = tg->stop_done;
        tg->stop_done = NULL;
        done(tg->ctx);
    }
}

static void finish_stop(struct tg *tg)
{
    tg->open_handles = (unsigned)tg->n_groups + 1;
    for (size_t i = 0; i < tg->n_groups; i++)
        tg_group_close(&tg->groups[i], on_closed);
    uv_close((uv_handle_t *)&tg->kick, on_closed);
}

void tg_changed(struct tg *tg)
{
    size_t registered = 0, done = 0;
    for (size_t i = 0; i < tg->n_groups; i++) {
        registered += tg->groups[i].state == TG_REGISTERED;
        done += tg->groups[i].state == TG_DEREGISTERED;
    }
    if (tg->check)
        agentd_health_set(tg->check,
                          registered == tg->n_groups ? AGENTD_HEALTH_PASS : AGENTD_HEALTH_FAIL,
                          "registered in %zu of %zu target groups", registered, tg->n_groups);
    agentd_plugin_report(tg->ctx, false, "%s%zu/%zu registered", tg->draining ? "draining, " : "",
                         registered, tg->n_groups);
    if (tg->leave_done && done == tg->n_groups) {
        agentd_stop_done_fn left = tg->leave_done;
        tg->leave_done = NULL;
        left(tg->ctx);
    }
    if (tg->stopping && tg->stop_done && tg->open_handles == 0 && done == tg->n_groups)
        finish_stop(tg);
}

/* Starts draining every group: the health endpoint answers "draining" first,
 * so the load balancer and the deregistration agree. */
static void start_drain(struct tg *tg, const char *reason)
{
    if (tg->draining)
        return;
    agentd_warning(tg->ctx, "draining from %zu target group(s): %s", tg->n_groups, reason);
    tg->draining = true;
    snprintf(tg->drain_reason, sizeof(tg->drain_reason), "%s", reason);
    agentd_health_set_draining(tg->ctx, true, reason);
    for (size_t i = 0; i < tg->n_groups; i++) {
        struct tg_group *g = &tg->groups[i];
        if (g->call) {
            agentd_aws_cancel(g->call);
            g->call = NULL;
        }
        g->drain_deadline_ms = 0;
    }
    step_all(tg);
    tg_changed(tg);
}

/* Back to service after a drain that was not for good (an admin's, or an
 * Auto Scaling Standby or warm pool state): the groups are joined again as
 * at start, each once health allows. */
static void undrain(struct tg *tg, const char *why)
{
    if (!tg->draining)
        return;
    agentd_notice(tg->ctx, "returning to service (%s)", why);
    tg->draining = false;
    tg->lifecycle_drain = false;
    tg->interruption_at = 0;
    agentd_health_set_draining(tg->ctx, false, NULL);
    for (size_t i = 0; i < tg->n_groups; i++) {
        struct tg_group *g = &tg->groups[i];
        if (g->call) {
            agentd_aws_cancel(g->call);
            g->call = NULL;
        }
        uv_timer_stop(&g->timer);
        g->drain_deadline_ms = 0;
        g->state = TG_WAITING;
    }
    step_all(tg);
    tg_changed(tg);
}

/* Auto Scaling states: Terminated leaves for good; Standby, Detached and
 * the warm pool's Warmed:* leave until InService comes back. */
static void on_lifecycle(struct tg *tg, const char *state)
{
    char reason[160];
    if (strcmp(state, "InService") == 0) {
        if (tg->lifecycle_drain && !tg->stopping && !tg->left)
            undrain(tg, "Auto Scaling lifecycle state InService");
        return;
    }
    if (strcmp(state, "Terminated") == 0 || strcmp(state, "Standby") == 0 ||
        strcmp(state, "Detached") == 0 || strncmp(state, "Warmed:", 7) == 0) {
        bool was = tg->draining;
        snprintf(reason, sizeof(reason), "Auto Scaling lifecycle state %s", state);
        start_drain(tg, reason);
        /* Only a drain this state began may end with InService. */
        if (!was && strcmp(state, "Terminated") != 0)
            tg->lifecycle_drain = true;
        if (strcmp(state, "Terminated") == 0)
            tg->lifecycle_drain = false;
    }
}

static void on_event(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload,
                     void *ud)
{
    struct tg *tg = ud;
    char reason[160];
    if (strcmp(name, "instance.interruption") == 0) {
        const char *action = json_string_value(json_object_get(payload, "action"));
        const char *when = json_string_value(json_object_get(payload, "time"));
        int64_t t;
        if (when && tg_parse_time(when, &t) == 0)
            tg->interruption_at = t;
        snprintf(reason, sizeof(reason), "spot interruption: %s at %s", action ? action : "?",
                 when ? when : "?");
        start_drain(tg, reason);
    } else if (strcmp(name, "instance.lifecycle") == 0) {
        const char *state = json_string_value(json_object_get(payload, "state"));
        if (state)
            on_lifecycle(tg, state);
    } else if (!tg->draining) {
        step_all(tg); /* health.changed, metadata.changed */
    }
    (void)ctx;
}

static json_t *group_json(const struct tg_group *g)
{
    json_t *o = json_pack("{s:s?, s:s?, s:s, s:I, s:I, s:s?}", "name", g->conf->name, "arn", g->arn,
                          "state", tg_state_name(g->state), "since_ms", (json_int_t)g->since_ms,
                          "port", (json_int_t)g->conf->port, "last_error", g->last_error);
    if (!o)
        return NULL;
    if (g->elb_state)
        json_object_set_new(o, "target_health",
                            json_pack("{s:s, s:s?, s:s?}", "state", g->elb_state, "reason",
                                      g->elb_reason, "description", g->elb_description));
    if (g->dereg_delay_s >= 0)
        json_object_set_new(o, "deregistration_delay_s", json_integer(g->dereg_delay_s));
    return o;
}

static void status(struct agentd_plugin_ctx *ctx, json_t *out)
{
    struct tg *tg = get(ctx);
    if (!tg)
        return;
    json_t *groups = json_array();
    for (size_t i = 0; i < tg->n_groups; i++)
        json_array_append_new(groups, group_json(&tg->groups[i]));
    json_object_set_new(out, "draining", json_boolean(tg->draining));
    if (tg->draining)
        json_object_set_new(out, "drain_reason", json_string(tg->drain_reason));
    json_object_set_new(out, "groups", groups);
}

static int cmd_status(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    (void)args;
    (void)ud;
    json_t *o = json_object();
    status(ctx, o);
    *ret = o;
    return 0;
}

static int cmd_drain(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct tg *tg = ud;
    (void)args;
    start_drain(tg, "drain requested with agentctl");
    *ret = json_pack("{s:b, s:s}", "draining", 1, "reason", tg->drain_reason);
    (void)ctx;
    return 0;
}

static int cmd_undrain(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct tg *tg = ud;
    (void)args;
    if (tg->stopping) {
        *ret = json_string("agentd is stopping; the instance stays out of its groups");
        return -EBUSY;
    }
    if (tg->left) {
        *ret = json_string("the instance left its groups for good (a stop sequence ran)");
        return -EBUSY;
    }
    undrain(tg, "undrain requested with agentctl");
    *ret = json_pack("{s:b}", "draining", 0);
    return 0;
}

static int configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    const struct tg_conf *c = conf;
    struct tg *tg = calloc(1, sizeof(*tg));
    if (!tg)
        return agentd_err_set(err, "out of memory");
    tg->ctx = ctx;
    tg->conf = c;
    agentd_plugin_set_data(ctx, tg);
    /* The stop must outlast a drain; refined once deregistration delays are read. */
    agentd_plugin_set_stop_timeout(ctx,
                                   (c->drain_timeout_ms ? c->drain_timeout_ms : 300000) + 60000);
    return 0;
}

static void on_kick(uv_timer_t *t)
{
    step_all(t->data);
}

static int start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    struct tg *tg = get(ctx);
    const struct tg_conf *c = tg->conf;
    tg->groups = calloc(c->groups.n, sizeof(*tg->groups));
    if (!tg->groups)
        return agentd_err_set(err, "out of memory");
    tg->n_groups = c->groups.n;
    const struct tg_group_conf *gc = c->groups.items;
    for (size_t i = 0; i < c->groups.n; i++)
        tg_group_init(tg, &tg->groups[i], &gc[i]);
    tg->m_requests_ok =
        agentd_metric_counter(ctx, "agentd_targetgroup_requests_total", "ELBv2 requests by result",
                              (const char *const[]){"result", "ok", NULL});
    tg->m_requests_failed =
        agentd_metric_counter(ctx, "agentd_targetgroup_requests_total", "ELBv2 requests by result",
                              (const char *const[]){"result", "error", NULL});
    if (c->health_check) {
        int r = agentd_health_register(ctx, "targetgroup:registered", false, &tg->check);
        if (r < 0)
            return agentd_err_set(err, "cannot register the health check: %s", strerror(-r));
    }
    static const char *const events[] = {"instance.interruption", "instance.lifecycle",
                                         "health.changed", "metadata.changed"};
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        agentd_event_subscribe(ctx, events[i], on_event, tg);
    agentd_control_register(ctx, "status", "each group's state and the load balancer's view",
                            cmd_status, tg);
    agentd_control_register(ctx, "drain", "deregister from every group and drain", cmd_drain, tg);
    agentd_control_register(ctx, "undrain", "return to service after a drain", cmd_undrain, tg);
    agentd_control_register(ctx, "doctor", "[start]: the ELB endpoint, credentials and IAM",
                            tg_doctor_verb, tg);
    /* Decide once every plugin has started, so health checks are registered. */
    uv_timer_init(agentd_loop(ctx), &tg->kick);
    tg->kick.data = tg;
    uv_timer_start(&tg->kick, on_kick, 0, 0);
    tg_changed(tg);
    return 0;
}

static void stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    struct tg *tg = get(ctx);
    if (!tg || !tg->groups) {
        done(ctx);
        return;
    }
    tg_doctor_cancel();
    tg->stopping = true;
    tg->stop_done = done;
    tg->leave_done = NULL; /* the sequence that asked has given way to the stop */
    start_drain(tg, "agentd is stopping");
    tg_changed(tg);
}

/* The leave phase of a stop sequence without exit (an Auto Scaling
 * termination hook): drain for good, answer once every group is left. */
static void prepare(struct agentd_plugin_ctx *ctx, enum agentd_stop_phase phase,
                    agentd_stop_done_fn done)
{
    struct tg *tg = get(ctx);
    if (phase != AGENTD_PHASE_LEAVE || !tg || !tg->groups || tg->stopping) {
        done(ctx);
        return;
    }
    tg->left = true;
    tg->lifecycle_drain = false;
    tg->leave_done = done;
    start_drain(tg, "leaving before the instance goes away");
    tg_changed(tg);
}

static bool same_groups(const struct agentd_list *a, const struct agentd_list *b)
{
    if (a->n != b->n)
        return false;
    const struct tg_group_conf *x = a->items, *y = b->items;
    for (size_t i = 0; i < a->n; i++) {
        if (x[i].port != y[i].port || x[i].target_type != y[i].target_type ||
            (x[i].name == NULL) != (y[i].name == NULL) ||
            (x[i].arn == NULL) != (y[i].arn == NULL) ||
            (x[i].name && strcmp(x[i].name, y[i].name) != 0) ||
            (x[i].arn && strcmp(x[i].arn, y[i].arn) != 0) ||
            (x[i].availability_zone == NULL) != (y[i].availability_zone == NULL) ||
            (x[i].availability_zone && strcmp(x[i].availability_zone, y[i].availability_zone) != 0))
            return false;
    }
    return true;
}

/* A reload that keeps the same groups only swaps settings: restarting would
 * drain the instance out of its load balancer for a poll interval change. A
 * changed group list needs the restart (leave the old groups, join the new). */
static int reload(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    struct tg *tg = get(ctx);
    const struct tg_conf *c = conf;
    (void)err;
    if (!tg || !tg->groups || !same_groups(&tg->conf->groups, &c->groups) ||
        c->health_check != tg->conf->health_check)
        return -EOPNOTSUPP;
    tg->conf = c;
    const struct tg_group_conf *gc = c->groups.items;
    for (size_t i = 0; i < tg->n_groups; i++)
        tg->groups[i].conf = &gc[i];
    step_all(tg);
    return 0;
}

static void destroy(struct agentd_plugin_ctx *ctx)
{
    struct tg *tg = get(ctx);
    tg_doctor_free();
    if (!tg)
        return;
    for (size_t i = 0; i < tg->n_groups; i++)
        tg_group_free(&tg->groups[i]);
    free(tg->groups);
    free(tg);
    agentd_plugin_set_data(ctx, NULL);
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "targetgroup",
    .description = "join ELBv2 target groups when healthy; leave them drained",
    .schema = &schema,
    /* Stops in the leave phase, before log pipelines flush (plugin.h). */
    .flags = AGENTD_PLUGIN_STOP_LEAVE,
    .configure = configure,
    .start = start,
    .stop = stop,
    .prepare = prepare,
    .reload = reload,
    .status = status,
    .destroy = destroy,
};

/* route53: the instance's DNS records follow its life. Each configured record
 * is written (UPSERT) once the instance is healthy, confirmed INSYNC,
 * re-checked at a slow interval, and deleted, with exactly the values written,
 * before the instance leaves (stop, spot interruption, Auto Scaling). A record
 * someone else has changed is left alone. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "r53.h"

/* How long leaving may take before agentd's stop gives up on the plugin; the
 * deletions are retried until LEAVE_MS, then the stop completes. */
#define LEAVE_MS        30000
#define STOP_TIMEOUT_MS (LEAVE_MS + 15000)

static const char *const types[] = {"A", "AAAA", "CNAME", "TXT", NULL};
static const char *const whens[] = {"healthy", "start", NULL};
static const char *const on_stops[] = {"delete", "keep", NULL};

static bool zone_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 32)
        return false;
    for (; *id; id++)
        if (!((*id >= 'A' && *id <= 'Z') || (*id >= '0' && *id <= '9')))
            return false;
    return true;
}

static int validate_record(void *obj, struct agentd_confctx *cc)
{
    struct r53_record_conf *r = obj;
    if (!r->zone_id && !r->zone) {
        agentd_conf_error(cc, NULL, "a record needs a zone_id or a zone");
        return -EINVAL;
    }
    if (r->zone_id && r->zone) {
        agentd_conf_error(cc, "zone", "give either zone_id or zone, not both");
        return -EINVAL;
    }
    if (r->zone_id) {
        /* The API's own form "/hostedzone/Z..." is accepted and shortened. */
        if (strncmp(r->zone_id, "/hostedzone/", 12) == 0)
            memmove(r->zone_id, r->zone_id + 12, strlen(r->zone_id + 12) + 1);
        if (!zone_id_ok(r->zone_id)) {
            agentd_conf_error(cc, "zone_id",
                              "'%s' is not a hosted zone id (upper-case letters and digits, "
                              "e.g. Z0123456789ABCDEFGHIJ)",
                              r->zone_id);
            return -EINVAL;
        }
    }
    if (r->weight >= 0 && r->multivalue) {
        agentd_conf_error(cc, "multivalue", "a record is either weighted or multivalue, not both");
        return -EINVAL;
    }
    if (r->multivalue && r->type == R53_CNAME) {
        agentd_conf_error(cc, "multivalue", "Route 53 has no multivalue CNAME records");
        return -EINVAL;
    }
    if (r->set_identifier && r->weight < 0 && !r->multivalue) {
        agentd_conf_error(cc, "set_identifier",
                          "a set identifier needs a routing policy (weight or multivalue)");
        return -EINVAL;
    }
    return 0;
}

static const struct agentd_option record_options[] = {
    {.name = "zone_id",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct r53_record_conf, zone_id),
     .description = "hosted zone id, e.g. Z0123456789ABCDEFGHIJ"},
    {.name = "zone",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct r53_record_conf, zone),
     .flags = AGENTD_OPT_TEMPLATE,
     .description = "hosted zone name (instead of zone_id), resolved once with "
                    "ListHostedZonesByName"},
    {.name = "name",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct r53_record_conf, name),
     .flags = AGENTD_OPT_REQUIRED | AGENTD_OPT_TEMPLATE,
     .description = "record name, e.g. {tag:Stack}.media.example.com"},
    {.name = "type",
     .type = AGENTD_OPT_ENUM,
     .offset = offsetof(struct r53_record_conf, type),
     .flags = AGENTD_OPT_REQUIRED,
     .values = types,
     .description = "record type: A, AAAA, CNAME or TXT"},
    {.name = "value",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct r53_record_conf, value),
     .flags = AGENTD_OPT_REQUIRED | AGENTD_OPT_TEMPLATE,
     .description = "record value, e.g. {public_ipv4}; TXT values are quoted for you"},
    {.name = "ttl",
     .type = AGENTD_OPT_INT,
     .def = "60",
     .offset = offsetof(struct r53_record_conf, ttl),
     .min = 0,
     .max = 2147483647,
     .description = "TTL in seconds"},
    {.name = "set_identifier",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct r53_record_conf, set_identifier),
     .flags = AGENTD_OPT_TEMPLATE,
     .description = "weighted or multivalue records: the set identifier (default {instance_id})"},
    {.name = "weight",
     .type = AGENTD_OPT_INT,
     .def = "-1",
     .offset = offsetof(struct r53_record_conf, weight),
     .min = -1,
     .max = 255,
     .description = "weighted routing: 0-255 (-1, the default: not weighted)"},
    {.name = "multivalue",
     .type = AGENTD_OPT_BOOL,
     .def = "false",
     .offset = offsetof(struct r53_record_conf, multivalue),
     .description = "multivalue answer routing"},
    {.name = "when",
     .type = AGENTD_OPT_ENUM,
     .def = "healthy",
     .offset = offsetof(struct r53_record_conf, when),
     .values = whens,
     .description = "healthy: write once the health checks pass; start: at once"},
    {.name = "on_stop",
     .type = AGENTD_OPT_ENUM,
     .def = "delete",
     .offset = offsetof(struct r53_record_conf, on_stop),
     .values = on_stops,
     .description = "delete: remove the record when the instance leaves; keep: leave it"},
    {0},
};

static const struct agentd_schema record_schema = {
    .name = "record",
    .size = sizeof(struct r53_record_conf),
    .options = record_options,
    .validate = validate_record,
};

static const struct agentd_option options[] = {
    {.name = "records",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_OBJECT,
     .sub = &record_schema,
     .offset = offsetof(struct r53_conf, records),
     .flags = AGENTD_OPT_REQUIRED,
     .min = 1,
     .max = 50,
     .description = "the records to publish"},
    {.name = "checks",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_STRING,
     .offset = offsetof(struct r53_conf, checks),
     .description = "health checks that must pass for when: healthy (default: the overall "
                    "status)"},
    {.name = "recheck_interval",
     .type = AGENTD_OPT_DURATION,
     .def = "10m",
     .offset = offsetof(struct r53_conf, recheck_ms),
     .min = 1000,
     .max = 86400000,
     .description = "how often (+-20% jitter) to read a record back and restore it if it "
                    "vanished; Route 53 allows 5 requests/s per account"},
    {.name = "sync_timeout",
     .type = AGENTD_OPT_DURATION,
     .def = "5m",
     .offset = offsetof(struct r53_conf, sync_timeout_ms),
     .min = 1000,
     .max = 3600000,
     .description = "longest wait for a change to be INSYNC before it is logged and left"},
    {.name = "endpoint",
     .type = AGENTD_OPT_URL,
     .offset = offsetof(struct r53_conf, endpoint),
     .flags = AGENTD_OPT_ENDPOINT,
     .description = "Route 53 endpoint URL (default: route53.amazonaws.com)"},
    {.name = "health_check",
     .type = AGENTD_OPT_BOOL,
     .def = "false",
     .offset = offsetof(struct r53_conf, health_check),
     .description = "register a non-critical check route53:records"},
    {0},
};

static const struct agentd_schema schema = {
    .name = "route53",
    .size = sizeof(struct r53_conf),
    .options = options,
};

static struct r53 *get(struct agentd_plugin_ctx *ctx)
{
    return agentd_plugin_get_data(ctx);
}

bool r53_health_ok(struct r53 *p, const struct r53_record_conf *rc)
{
    if (rc->when == R53_WHEN_START)
        return true;
    if (p->conf->checks.n == 0)
        return agentd_health_overall(p->ctx) != AGENTD_HEALTH_FAIL;
    char **names = p->conf->checks.items;
    for (size_t i = 0; i < p->conf->checks.n; i++) {
        struct agentd_health_info info;
        if (agentd_health_get(p->ctx, names[i], &info) < 0 || info.status == AGENTD_HEALTH_FAIL)
            return false;
    }
    return true;
}

static void step_all(struct r53 *p)
{
    for (size_t i = 0; i < p->n_records; i++)
        r53_record_step(&p->records[i]);
}

static void on_closed(uv_handle_t *h)
{
    struct r53 *p = h->data;
    if (--p->open_handles == 0 && p->stop_done) {
        agentd_stop_done_fn done = p->stop_done;
        p->stop_done = NULL;
        done(p->ctx);
    }
}

static void finish_stop(struct r53 *p)
{
    p->open_handles = (unsigned)p->n_records + 1;
    for (size_t i = 0; i < p->n_records; i++)
        r53_record_close(&p->records[i], on_closed);
    uv_close((uv_handle_t *)&p->kick, on_closed);
}

void r53_changed(struct r53 *p)
{
    size_t active = 0, removed = 0, errors = 0;
    for (size_t i = 0; i < p->n_records; i++) {
        enum r53_state s = p->records[i].state;
        active += s == R53_ACTIVE || s == R53_SYNCING;
        removed += s == R53_REMOVED;
        errors += s == R53_ERROR;
    }
    if (p->check)
        agentd_health_set(p->check,
                          active == p->n_records ? AGENTD_HEALTH_PASS : AGENTD_HEALTH_FAIL,
                          "%zu of %zu records published", active, p->n_records);
    agentd_plugin_report(p->ctx, errors > 0, "%s%zu/%zu published%s", p->leaving ? "leaving, " : "",
                         active, p->n_records, errors ? ", errors" : "");
    if (p->stopping && p->stop_done && p->open_handles == 0 && removed == p->n_records)
        finish_stop(p);
}

/* Takes every record out of DNS (or leaves it, per on_stop). */
static void leave_all(struct r53 *p, const char *reason)
{
    if (p->leaving)
        return;
    agentd_warning(p->ctx, "leaving DNS (%zu record(s)): %s", p->n_records, reason);
    p->leaving = true;
    snprintf(p->leave_reason, sizeof(p->leave_reason), "%s", reason);
    p->leave_deadline_ms = r53_now_ms() + LEAVE_MS;
    for (size_t i = 0; i < p->n_records; i++)
        r53_record_leave(&p->records[i]);
    r53_changed(p);
}

static void rejoin_all(struct r53 *p, const char *reason)
{
    if (!p->leaving || p->stopping)
        return;
    agentd_notice(p->ctx, "publishing the records again: %s", reason);
    p->leaving = false;
    p->leave_deadline_ms = 0;
    for (size_t i = 0; i < p->n_records; i++)
        r53_record_rejoin(&p->records[i]);
    r53_changed(p);
}

static void on_event(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload,
                     void *ud)
{
    struct r53 *p = ud;
    char reason[160];
    (void)ctx;
    if (strcmp(name, "instance.interruption") == 0) {
        const char *action = json_string_value(json_object_get(payload, "action"));
        const char *when = json_string_value(json_object_get(payload, "time"));
        snprintf(reason, sizeof(reason), "spot interruption: %s at %s", action ? action : "?",
                 when ? when : "?");
        leave_all(p, reason);
    } else if (strcmp(name, "instance.lifecycle") == 0) {
        const char *state = json_string_value(json_object_get(payload, "state"));
        if (!state)
            return;
        if (strcmp(state, "Terminated") == 0 || strcmp(state, "Standby") == 0 ||
            strncmp(state, "Warmed:", 7) == 0) {
            snprintf(reason, sizeof(reason), "Auto Scaling lifecycle state %s", state);
            leave_all(p, reason);
        } else if (strcmp(state, "InService") == 0 &&
                   strncmp(p->leave_reason, "Auto Scaling", 12) == 0) {
            rejoin_all(p, "Auto Scaling lifecycle state InService");
        }
    } else if (!p->leaving) {
        step_all(p); /* health.changed, metadata.changed */
    }
}

static json_t *rrset_json(const struct r53_rrset *s)
{
    json_t *o = json_pack("{s:s?, s:s?, s:s?, s:I}", "name", s->name, "type", s->type, "value",
                          s->value, "ttl", (json_int_t)s->ttl);
    if (o && s->set_id)
        json_object_set_new(o, "set_identifier", json_string(s->set_id));
    if (o && s->weight >= 0)
        json_object_set_new(o, "weight", json_integer(s->weight));
    if (o && s->multivalue)
        json_object_set_new(o, "multivalue", json_true());
    return o;
}

static json_t *record_json(const struct r53_record *rec)
{
    const struct r53_record_conf *c = rec->conf;
    json_t *o =
        json_pack("{s:s, s:s?, s:s, s:I, s:s?, s:s?}", "name",
                  rec->want.name ? rec->want.name : c->name, "zone_id", rec->zone_id, "state",
                  r53_state_name(rec->state), "since_ms", (json_int_t)rec->since_ms,
                  "change_status", rec->change_status, "last_error", rec->last_error);
    if (!o)
        return NULL;
    json_object_set_new(o, "type", json_string(types[c->type]));
    if (c->zone)
        json_object_set_new(o, "zone", json_string(c->zone));
    if (rec->change_id)
        json_object_set_new(o, "change_id", json_string(rec->change_id));
    if (rec->written.name)
        json_object_set_new(o, "written", rrset_json(&rec->written));
    if (rec->synced_ms)
        json_object_set_new(o, "insync_ms", json_integer((json_int_t)rec->synced_ms));
    if (rec->last_check_ms)
        json_object_set_new(o, "checked_ms", json_integer((json_int_t)rec->last_check_ms));
    if (rec->leave_result)
        json_object_set_new(o, "leave_result", json_string(rec->leave_result));
    json_object_set_new(o, "on_stop", json_string(on_stops[c->on_stop]));
    return o;
}

static void status(struct agentd_plugin_ctx *ctx, json_t *out)
{
    struct r53 *p = get(ctx);
    if (!p)
        return;
    json_t *recs = json_array();
    for (size_t i = 0; i < p->n_records; i++)
        json_array_append_new(recs, record_json(&p->records[i]));
    json_object_set_new(out, "leaving", json_boolean(p->leaving));
    if (p->leaving)
        json_object_set_new(out, "leave_reason", json_string(p->leave_reason));
    json_object_set_new(out, "recheck_interval_ms", json_integer((json_int_t)p->conf->recheck_ms));
    json_object_set_new(out, "records", recs);
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

static int configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    struct r53 *p = calloc(1, sizeof(*p));
    if (!p)
        return agentd_err_set(err, "out of memory");
    p->ctx = ctx;
    p->conf = conf;
    agentd_plugin_set_data(ctx, p);
    agentd_plugin_set_stop_timeout(ctx, STOP_TIMEOUT_MS);
    return 0;
}

static void on_kick(uv_timer_t *t)
{
    step_all(t->data);
}

static int start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    struct r53 *p = get(ctx);
    const struct r53_conf *c = p->conf;
    p->records = calloc(c->records.n, sizeof(*p->records));
    if (!p->records)
        return agentd_err_set(err, "out of memory");
    p->n_records = c->records.n;
    const struct r53_record_conf *rc = c->records.items;
    for (size_t i = 0; i < c->records.n; i++)
        r53_record_init(p, &p->records[i], &rc[i], i);
    static const char *const help = "Route 53 requests by result";
    p->m_requests_ok = agentd_metric_counter(ctx, "agentd_route53_requests_total", help,
                                             (const char *const[]){"result", "ok", NULL});
    p->m_requests_failed = agentd_metric_counter(ctx, "agentd_route53_requests_total", help,
                                                 (const char *const[]){"result", "error", NULL});
    p->m_changes = agentd_metric_counter(ctx, "agentd_route53_changes_total",
                                         "ChangeResourceRecordSets accepted", NULL);
    if (c->health_check) {
        int r = agentd_health_register(ctx, "route53:records", false, &p->check);
        if (r < 0)
            return agentd_err_set(err, "cannot register the health check: %s", strerror(-r));
    }
    static const char *const events[] = {"instance.interruption", "instance.lifecycle",
                                         "health.changed", "metadata.changed"};
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        agentd_event_subscribe(ctx, events[i], on_event, p);
    agentd_control_register(ctx, "status", "each record's state, what was written, and when",
                            cmd_status, p);
    if (c->recheck_ms < 300000)
        agentd_warning(ctx,
                       "recheck_interval is %llu s: Route 53 allows 5 requests/s per account, "
                       "shared by every instance; keep it at 5m or more on a fleet",
                       (unsigned long long)(c->recheck_ms / 1000));
    /* Decide once every plugin has started, so health checks are registered. */
    uv_timer_init(agentd_loop(ctx), &p->kick);
    p->kick.data = p;
    uv_timer_start(&p->kick, on_kick, 0, 0);
    r53_changed(p);
    return 0;
}

/* Stop = leave: every record is checked and deleted (per on_stop), then done.
 * All of it is the "leave" part of agentd's stop; when the core's phased stop
 * sequence lands, declaring that phase is the one flag in the descriptor
 * below, and this function stays as it is. */
static void stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    struct r53 *p = get(ctx);
    if (!p || !p->records) {
        done(ctx);
        return;
    }
    p->stopping = true;
    p->stop_done = done;
    if (p->leaving) {
        /* Already leaving (spot notice): keep the earlier deadline, but never
         * end before the deletions had their chance. */
        uint64_t min = r53_now_ms() + 5000;
        if (p->leave_deadline_ms < min)
            p->leave_deadline_ms = min;
    }
    leave_all(p, "agentd is stopping");
    r53_changed(p);
}

static bool same_records(const struct agentd_list *a, const struct agentd_list *b)
{
#define SEQ(x, y) ((x) == NULL ? (y) == NULL : ((y) != NULL && strcmp((x), (y)) == 0))
    if (a->n != b->n)
        return false;
    const struct r53_record_conf *x = a->items, *y = b->items;
    for (size_t i = 0; i < a->n; i++)
        if (!SEQ(x[i].zone_id, y[i].zone_id) || !SEQ(x[i].zone, y[i].zone) ||
            !SEQ(x[i].name, y[i].name) || x[i].type != y[i].type ||
            !SEQ(x[i].set_identifier, y[i].set_identifier))
            return false;
    return true;
#undef SEQ
}

/* The same record keys only swap settings (a new value or TTL is UPSERTed in
 * place); other changes restart the plugin, which deletes the old records. */
static int reload(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    struct r53 *p = get(ctx);
    const struct r53_conf *c = conf;
    (void)err;
    if (!p || !p->records || p->leaving || !same_records(&p->conf->records, &c->records) ||
        c->health_check != p->conf->health_check)
        return -EOPNOTSUPP;
    p->conf = c;
    const struct r53_record_conf *rc = c->records.items;
    for (size_t i = 0; i < p->n_records; i++)
        p->records[i].conf = &rc[i];
    step_all(p);
    return 0;
}

static void destroy(struct agentd_plugin_ctx *ctx)
{
    struct r53 *p = get(ctx);
    if (!p)
        return;
    for (size_t i = 0; i < p->n_records; i++)
        r53_record_free(&p->records[i]);
    free(p->records);
    free(p);
    agentd_plugin_set_data(ctx, NULL);
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "route53",
    .description = "publish the instance's DNS records when healthy; delete them when it leaves",
    .schema = &schema,
    /* The stop sequence's "leave" phase flag goes here at merge (issue 11). */
    .flags = 0,
    .configure = configure,
    .start = start,
    .stop = stop,
    .reload = reload,
    .status = status,
    .destroy = destroy,
};

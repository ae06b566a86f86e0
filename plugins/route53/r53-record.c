/* One record's life: resolve the zone, wait for health, UPSERT, wait for
 * INSYNC, re-check now and then, and on leaving read it back and DELETE it
 * with exactly the values written. Every decision is made in
 * r53_record_step(), which runs whenever something changes (a reply, a timer,
 * an event). At most one request per record is in flight. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "r53.h"

#define API           "/2013-04-01"
#define SYNC_FIRST_MS 2000
#define SYNC_MAX_MS   15000

static const char *const state_names[] = {
    [R53_WAITING] = "waiting",
    [R53_WRITING] = "writing",
    [R53_SYNCING] = "syncing",
    [R53_ACTIVE] = "active",
    [R53_CONFLICT] = "changed-elsewhere",
    [R53_LEAVING] = "leaving",
    [R53_REMOVED] = "removed",
    [R53_ERROR] = "error",
};

static const char *const type_names[] = {"A", "AAAA", "CNAME", "TXT"};

const char *r53_state_name(enum r53_state s)
{
    return state_names[s];
}

uint64_t r53_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

uint64_t r53_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *label(const struct r53_record *rec)
{
    return rec->want.name ? rec->want.name : rec->conf->name;
}

static void replace(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? strdup(v) : NULL;
}

static void set_state(struct r53_record *rec, enum r53_state s)
{
    if (rec->state == s)
        return;
    rec->state = s;
    rec->since_ms = r53_wall_ms();
    agentd_metric_set(rec->m_active, s == R53_ACTIVE || s == R53_SYNCING ? 1 : 0);
    r53_changed(rec->p);
}

static void on_timer(uv_timer_t *t)
{
    struct r53_record *rec = t->data;
    rec->timer_due = true;
    r53_record_step(rec);
}

static void arm(struct r53_record *rec, uint64_t ms)
{
    rec->timer_due = false;
    uv_timer_start(&rec->timer, on_timer, ms, 0);
}

static void on_reply(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                     void *ud);

static void send_request(struct r53_record *rec, const char *op, const char *method,
                         const char *path, const char *query, char *body, size_t body_len)
{
    static const char *const xml_headers[] = {"Content-Type: application/xml", NULL};
    struct agentd_aws_request req = {
        .service = "route53",
        .endpoint_id = "ROUTE_53",
        .endpoint = rec->p->conf->endpoint,
        /* A global service: always signed for us-east-1. */
        .region = "us-east-1",
        .protocol = AGENTD_AWS_REST_XML,
        .method = method,
        .path = path,
        .query = query,
        .headers = body ? xml_headers : NULL,
        .body = body,
        .body_len = body_len,
        /* While leaving, a hung attempt must not eat the whole stop timeout. */
        .timeout_ms = rec->p->leaving ? 5000 : 0,
    };
    rec->call_op = op;
    int r = agentd_aws_request(rec->p->ctx, &req, on_reply, rec, &rec->call);
    free(body);
    if (r < 0) {
        rec->call = NULL;
        struct agentd_aws_response bad = {.error = r, .error_message = strerror(-r)};
        /* Reported like any failure, so the backoff applies. */
        rec->call_op = op;
        on_reply(rec->p->ctx, &bad, rec);
    }
}

static void send_change(struct r53_record *rec, const char *action, const struct r53_rrset *s)
{
    char path[128], comment[160];
    size_t len;
    const char *iid = agentd_metadata_get(rec->p->ctx, "instance_id");
    snprintf(comment, sizeof(comment), "agentd on %s", iid ? iid : "this instance");
    char *body = r53_change_xml(action, s, comment, &len);
    snprintf(path, sizeof(path), API "/hostedzone/%s/rrset/", rec->zone_id);
    if (!body) {
        struct agentd_aws_response bad = {.error = -ENOMEM, .error_message = "out of memory"};
        rec->call_op = action;
        on_reply(rec->p->ctx, &bad, rec);
        return;
    }
    send_request(rec, strcmp(action, "DELETE") == 0 ? "DELETE" : "UPSERT", "POST", path, NULL, body,
                 len);
}

static char *url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Reads the set with s's key: the listing starts at (name, type, identifier),
 * so the first set returned is ours if it exists. */
static void send_list(struct r53_record *rec, const struct r53_rrset *s)
{
    char path[128], query[1024];
    snprintf(path, sizeof(path), API "/hostedzone/%s/rrset", rec->zone_id);
    char *name = url_encode(s->name), *id = s->set_id ? url_encode(s->set_id) : NULL;
    if (!name || (s->set_id && !id)) {
        free(name);
        free(id);
        struct agentd_aws_response bad = {.error = -ENOMEM, .error_message = "out of memory"};
        rec->call_op = "LIST";
        on_reply(rec->p->ctx, &bad, rec);
        return;
    }
    snprintf(query, sizeof(query), "name=%s&type=%s%s%s&maxitems=1", name, s->type,
             id ? "&identifier=" : "", id ? id : "");
    free(name);
    free(id);
    send_request(rec, "LIST", "GET", path, query, NULL, 0);
}

static void send_get_change(struct r53_record *rec)
{
    char path[160];
    snprintf(path, sizeof(path), API "/change/%s", rec->change_id);
    send_request(rec, "GETCHANGE", "GET", path, NULL, NULL, 0);
}

static void send_resolve(struct r53_record *rec)
{
    char query[600];
    char *zone = NULL, *enc = NULL, *missing = NULL;
    int r = agentd_template_expand(rec->p->ctx, rec->conf->zone, NULL, &zone, &missing);
    if (r < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "waiting for metadata %s", missing ? missing : "?");
        replace(&rec->last_error, msg);
        free(missing);
        set_state(rec, R53_WAITING);
        return;
    }
    enc = url_encode(zone);
    free(zone);
    if (!enc)
        return;
    snprintf(query, sizeof(query), "dnsname=%s&maxitems=2", enc);
    free(enc);
    send_request(rec, "ZONE", "GET", API "/hostedzonesbyname", query, NULL, 0);
}

/* Fills rec->want from the templates. Returns 0, or -ENOENT (with
 * last_error saying which metadata is missing) or -ENOMEM. */
static int compute_want(struct r53_record *rec)
{
    const struct r53_record_conf *c = rec->conf;
    struct agentd_plugin_ctx *ctx = rec->p->ctx;
    struct r53_rrset s = {.weight = c->weight, .multivalue = c->multivalue, .ttl = c->ttl};
    char *name = NULL, *value = NULL, *set_id = NULL, *missing = NULL;
    int r = agentd_template_expand(ctx, c->name, NULL, &name, &missing);
    if (r >= 0)
        r = agentd_template_expand(ctx, c->value, NULL, &value, &missing);
    if (r >= 0 && (c->weight >= 0 || c->multivalue))
        r = agentd_template_expand(ctx, c->set_identifier ? c->set_identifier : "{instance_id}",
                                   NULL, &set_id, &missing);
    if (r < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "waiting for metadata %s", missing ? missing : "?");
        replace(&rec->last_error, msg);
        free(missing);
        free(name);
        free(value);
        free(set_id);
        return r;
    }
    s.name = r53_name_normalize(name);
    s.type = strdup(type_names[c->type]);
    s.value = c->type == R53_TXT ? r53_txt_quote(value) : strdup(value);
    s.set_id = set_id;
    s.n_values = 1;
    free(name);
    free(value);
    if (!s.name || !s.type || !s.value) {
        r53_rrset_free(&s);
        return -ENOMEM;
    }
    r53_rrset_free(&rec->want);
    rec->want = s;
    return 0;
}

static void upsert(struct r53_record *rec)
{
    /* Remembered before the answer: a change may be applied even if its
     * answer is lost, and leaving must then find and delete it. */
    r53_rrset_free(&rec->before);
    rec->before = rec->written;
    if (r53_rrset_copy(&rec->want, &rec->written) < 0) {
        rec->written = rec->before;
        memset(&rec->before, 0, sizeof(rec->before));
        return;
    }
    set_state(rec, R53_WRITING);
    send_change(rec, "UPSERT", &rec->want);
}

void r53_record_init(struct r53 *p, struct r53_record *rec, const struct r53_record_conf *conf,
                     size_t index)
{
    memset(rec, 0, sizeof(*rec));
    rec->p = p;
    rec->conf = conf;
    rec->index = index;
    rec->state = R53_WAITING;
    rec->since_ms = r53_wall_ms();
    rec->want.weight = rec->written.weight = rec->before.weight = -1;
    rec->want.ttl = rec->written.ttl = rec->before.ttl = -1;
    if (conf->zone_id)
        rec->zone_id = strdup(conf->zone_id);
    uv_timer_init(agentd_loop(p->ctx), &rec->timer);
    rec->timer.data = rec;
    char idx[24];
    snprintf(idx, sizeof(idx), "%zu", index);
    rec->m_active = agentd_metric_gauge(p->ctx, "agentd_route53_record_active",
                                        "1 while the record is published by this instance",
                                        (const char *const[]){"record", idx, NULL});
}

static void removed(struct r53_record *rec, const char *result)
{
    replace(&rec->leave_result, result);
    uv_timer_stop(&rec->timer);
    set_state(rec, R53_REMOVED);
}

static void step_leaving(struct r53_record *rec, bool due)
{
    struct r53 *p = rec->p;
    if (rec->state == R53_REMOVED)
        return;
    if (rec->state != R53_LEAVING) {
        if (!rec->written.name || !rec->zone_id) {
            removed(rec, "nothing written");
            return;
        }
        if (rec->conf->on_stop == R53_STOP_KEEP) {
            agentd_notice(p->ctx, "record %s %s kept (on_stop: keep)", rec->written.name,
                          rec->written.type);
            removed(rec, "kept");
            return;
        }
        rec->failures = 0;
        set_state(rec, R53_LEAVING);
        send_list(rec, &rec->written);
        return;
    }
    if (p->leave_deadline_ms && r53_now_ms() >= p->leave_deadline_ms) {
        agentd_error(p->ctx, "record %s %s: could not delete it before the leave deadline (%s)",
                     rec->written.name, rec->written.type,
                     rec->last_error ? rec->last_error : "no answer");
        removed(rec, "not deleted: deadline passed");
        return;
    }
    if (due)
        send_list(rec, &rec->written);
}

void r53_record_step(struct r53_record *rec)
{
    struct r53 *p = rec->p;
    if (rec->call)
        return;
    bool due = rec->timer_due;
    rec->timer_due = false;
    if (p->leaving) {
        step_leaving(rec, due);
        return;
    }
    if (!rec->zone_id) {
        if (rec->state == R53_ERROR && !due)
            return;
        send_resolve(rec);
        return;
    }
    if (compute_want(rec) < 0) {
        if (rec->state == R53_WAITING || rec->state == R53_ERROR)
            set_state(rec, R53_WAITING);
        return;
    }
    switch (rec->state) {
    case R53_WAITING:
    case R53_REMOVED:
        if (r53_health_ok(p, rec->conf))
            upsert(rec);
        else
            set_state(rec, R53_WAITING);
        break;
    case R53_ERROR:
        if (!due)
            break;
        if (rec->change_id && rec->change_status && strcmp(rec->change_status, "PENDING") == 0)
            send_get_change(rec);
        else if (rec->written.name && r53_rrset_equal(&rec->written, &rec->want) && rec->synced_ms)
            send_list(rec, &rec->want);
        else if (r53_health_ok(p, rec->conf) || rec->written.name)
            upsert(rec);
        else
            set_state(rec, R53_WAITING);
        break;
    case R53_WRITING:
        upsert(rec);
        break;
    case R53_SYNCING:
        if (due)
            send_get_change(rec);
        break;
    case R53_ACTIVE:
    case R53_CONFLICT:
        if (rec->state == R53_ACTIVE && !r53_rrset_equal(&rec->written, &rec->want)) {
            agentd_notice(p->ctx, "record %s %s: value now %s (was %s); updating", rec->want.name,
                          rec->want.type, rec->want.value,
                          rec->written.value ? rec->written.value : "-");
            uv_timer_stop(&rec->timer);
            upsert(rec);
        } else if (due) {
            send_list(rec, &rec->written);
        }
        break;
    case R53_LEAVING: /* rejoined */
        set_state(rec, R53_WAITING);
        r53_record_step(rec);
        break;
    }
}

void r53_record_leave(struct r53_record *rec)
{
    if (rec->call) {
        agentd_aws_cancel(rec->call);
        rec->call = NULL;
    }
    uv_timer_stop(&rec->timer);
    rec->timer_due = false;
    r53_record_step(rec);
}

void r53_record_rejoin(struct r53_record *rec)
{
    if (rec->call) {
        agentd_aws_cancel(rec->call);
        rec->call = NULL;
    }
    uv_timer_stop(&rec->timer);
    replace(&rec->leave_result, NULL);
    rec->state = R53_WAITING;
    r53_record_step(rec);
}

static bool permanent_error(const struct agentd_aws_response *res)
{
    static const char *const codes[] = {
        "NoSuchHostedZone",
        "NoSuchChange",
        "InvalidChangeBatch",
        "InvalidInput",
        "InvalidArgument",
        "InvalidDomainName",
        "AccessDenied",
        "AccessDeniedException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "OptOutRequired",
    };
    if (res->error == -ENOKEY || res->error == -EDESTADDRREQ || res->error == -EPERM)
        return true;
    for (size_t i = 0; res->error_code && i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(res->error_code, codes[i]) == 0)
            return true;
    return false;
}

static void on_failure(struct r53_record *rec, const char *op,
                       const struct agentd_aws_response *res, const char *code, const char *message)
{
    struct r53 *p = rec->p;
    char msg[512];
    struct agentd_aws_response r2 = *res;
    r2.error_code = code;
    bool permanent = permanent_error(&r2);
    if (code)
        snprintf(msg, sizeof(msg), "%s failed: %s: %s", op, code, message ? message : "");
    else
        snprintf(msg, sizeof(msg), "%s failed: %s", op,
                 message ? message : strerror(res->error < 0 ? -res->error : EIO));
    bool repeat = rec->last_error && strcmp(rec->last_error, msg) == 0;
    rec->failures++;
    uint64_t d = r53_backoff_ms(rec->failures, permanent, p->leaving);
    bool give_up = p->leaving && permanent;
    const char *zone = rec->zone_id ? rec->zone_id : rec->conf->zone;
    if (give_up)
        agentd_error(p->ctx, "record %s (zone %s): %s; not retrying while leaving", label(rec),
                     zone, msg);
    else if (!repeat)
        agentd_log(p->ctx, permanent ? AGENTD_LOG_ERR : AGENTD_LOG_WARNING,
                   "record %s (zone %s): %s; retrying in %llu ms", label(rec), zone, msg,
                   (unsigned long long)d);
    replace(&rec->last_error, msg);
    agentd_metric_add(p->m_requests_failed, 1);
    if (give_up) {
        /* A retry will not fix it (no such zone, access denied): say so once
         * and let the instance go; the record, if any, stays. */
        removed(rec, "not deleted: error");
        return;
    }
    if (p->leaving) {
        uint64_t now = r53_now_ms();
        if (p->leave_deadline_ms > now && p->leave_deadline_ms - now < d)
            d = p->leave_deadline_ms - now;
    } else {
        set_state(rec, R53_ERROR);
    }
    arm(rec, d);
}

static void on_zone(struct r53_record *rec, const struct r53_reply *r)
{
    char *want = NULL;
    if (agentd_template_expand(rec->p->ctx, rec->conf->zone, NULL, &want, NULL) < 0)
        return;
    char *norm = r53_name_normalize(want);
    free(want);
    if (!norm)
        return;
    bool first = r->zone_names[0] && strcmp(r->zone_names[0], norm) == 0;
    bool second = r->zone_names[1] && strcmp(r->zone_names[1], norm) == 0;
    struct agentd_aws_response none = {.error = -ENOENT};
    if (!first) {
        char m[300];
        snprintf(m, sizeof(m), "no hosted zone named '%s'", norm);
        on_failure(rec, "ListHostedZonesByName", &none, "NoSuchHostedZone", m);
    } else if (second) {
        char m[300];
        snprintf(m, sizeof(m),
                 "more than one hosted zone is named '%s' (public and private?); "
                 "give zone_id",
                 norm);
        on_failure(rec, "ListHostedZonesByName", &none, "InvalidInput", m);
    } else {
        agentd_info(rec->p->ctx, "zone '%s' is %s", norm, r->zone_ids[0]);
        replace(&rec->zone_id, r->zone_ids[0]);
        replace(&rec->last_error, NULL);
        rec->failures = 0;
        set_state(rec, R53_WAITING);
        r53_record_step(rec);
    }
    free(norm);
}

static void on_listed_leaving(struct r53_record *rec, const struct r53_reply *r)
{
    struct r53 *p = rec->p;
    const struct r53_rrset *w = &rec->written;
    if (r->rrset.name && rec->before.name && !r53_rrset_equal(&r->rrset, w) &&
        r53_rrset_equal(&r->rrset, &rec->before)) {
        /* An update of ours was cut short: the zone still holds the value we
         * wrote before it, which is ours to delete. */
        r53_rrset_free(&rec->written);
        rec->written = rec->before;
        memset(&rec->before, 0, sizeof(rec->before));
        rec->before.weight = rec->before.ttl = -1;
    }
    if (!r->rrset.name || !r53_rrset_same_key(&r->rrset, w)) {
        agentd_notice(p->ctx, "record %s %s is already gone", w->name, w->type);
        removed(rec, "already gone");
    } else if (!r53_rrset_equal(&r->rrset, w)) {
        agentd_warning(p->ctx,
                       "record %s %s was changed by someone else (now %s, ttl %lld; we wrote %s, "
                       "ttl %lld); leaving it alone",
                       w->name, w->type, r->rrset.value ? r->rrset.value : "-",
                       (long long)r->rrset.ttl, w->value, (long long)w->ttl);
        removed(rec, "changed by someone else; left alone");
    } else {
        send_change(rec, "DELETE", w);
    }
}

static void on_listed(struct r53_record *rec, const struct r53_reply *r)
{
    struct r53 *p = rec->p;
    const struct r53_rrset *w = &rec->written;
    rec->last_check_ms = r53_wall_ms();
    if (!r->rrset.name || !r53_rrset_same_key(&r->rrset, w)) {
        agentd_warning(p->ctx, "record %s %s vanished from zone %s; writing it again", w->name,
                       w->type, rec->zone_id);
        upsert(rec);
        return;
    }
    if (!r53_rrset_equal(&r->rrset, w)) {
        if (rec->state != R53_CONFLICT)
            agentd_warning(p->ctx,
                           "record %s %s was changed by someone else (now %s); leaving it alone",
                           w->name, w->type, r->rrset.value ? r->rrset.value : "-");
        set_state(rec, R53_CONFLICT);
    } else {
        if (rec->state == R53_CONFLICT)
            agentd_notice(p->ctx, "record %s %s holds our value again", w->name, w->type);
        set_state(rec, R53_ACTIVE);
    }
    arm(rec, r53_jitter_ms(p->conf->recheck_ms));
}

static void on_change(struct r53_record *rec, const struct r53_reply *r, bool fresh)
{
    struct r53 *p = rec->p;
    uint64_t now = r53_now_ms();
    if (fresh) {
        r53_rrset_free(&rec->before); /* the UPSERT replaced it */
        replace(&rec->change_id, r->change_id);
        rec->sync_started_ms = now;
        rec->sync_polls = 0;
        agentd_metric_add(p->m_changes, 1);
        agentd_notice(p->ctx, "record %s %s %s (ttl %lld) written to zone %s: change %s %s",
                      rec->written.name, rec->written.type, rec->written.value,
                      (long long)rec->written.ttl, rec->zone_id, r->change_id ? r->change_id : "?",
                      r->change_status ? r->change_status : "?");
    }
    replace(&rec->change_status, r->change_status);
    if (r->change_status && strcmp(r->change_status, "INSYNC") == 0) {
        rec->synced_ms = r53_wall_ms();
        agentd_info(p->ctx, "record %s %s: change %s is INSYNC after %.1f s", rec->written.name,
                    rec->written.type, rec->change_id ? rec->change_id : "?",
                    (double)(now - rec->sync_started_ms) / 1000.0);
        set_state(rec, R53_ACTIVE);
        arm(rec, r53_jitter_ms(p->conf->recheck_ms));
        return;
    }
    if (now - rec->sync_started_ms >= p->conf->sync_timeout_ms || !rec->change_id) {
        agentd_warning(p->ctx,
                       "record %s %s: change %s still %s after %llu s; not waiting any longer",
                       rec->written.name, rec->written.type, rec->change_id ? rec->change_id : "?",
                       r->change_status ? r->change_status : "unknown",
                       (unsigned long long)((now - rec->sync_started_ms) / 1000));
        set_state(rec, R53_ACTIVE);
        arm(rec, r53_jitter_ms(p->conf->recheck_ms));
        return;
    }
    set_state(rec, R53_SYNCING);
    /* 2 s, then growing to 15 s: most changes are in sync within a minute. */
    uint64_t d = SYNC_FIRST_MS << (rec->sync_polls < 3 ? rec->sync_polls : 3);
    if (d > SYNC_MAX_MS)
        d = SYNC_MAX_MS;
    rec->sync_polls++;
    arm(rec, d / 2 + r53_jitter_ms(d / 2));
}

static void on_reply(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res, void *ud)
{
    struct r53_record *rec = ud;
    const char *op = rec->call_op;
    struct r53 *p = rec->p;
    struct r53_reply r;
    (void)ctx;
    rec->call = NULL;
    bool parsed = res->body && res->body_len && r53_reply_parse(res->body, res->body_len, &r) == 0;
    if (!parsed)
        r53_reply_parse("<x/>", 4, &r);
    static const char *const names[] = {"UPSERT", "DELETE", "LIST", "GETCHANGE", "ZONE"};
    static const char *const apis[] = {"ChangeResourceRecordSets UPSERT",
                                       "ChangeResourceRecordSets DELETE", "ListResourceRecordSets",
                                       "GetChange", "ListHostedZonesByName"};
    const char *api = op;
    for (size_t i = 0; i < 5; i++)
        if (strcmp(op, names[i]) == 0)
            api = apis[i];

    if (res->error) {
        /* Route 53 answered a refused batch with <InvalidChangeBatch>, which
         * has no <Code>, until 2024 (now a standard error): accept both. */
        const char *code = res->error_code;
        const char *message = res->error_message;
        if (!code && r.invalid_change_batch) {
            code = "InvalidChangeBatch";
            message = r.error_message;
        }
        if (strcmp(op, "UPSERT") == 0 && res->status >= 400 && res->status < 500) {
            /* Refused (4xx, throttling included): nothing was applied, so
             * what we wrote before is what leaving must look for. */
            r53_rrset_free(&rec->written);
            rec->written = rec->before;
            memset(&rec->before, 0, sizeof(rec->before));
            rec->before.weight = rec->before.ttl = -1;
        }
        if (strcmp(op, "DELETE") == 0 && code && strcmp(code, "InvalidChangeBatch") == 0) {
            /* Changed or deleted between our read and our delete: not ours. */
            agentd_warning(p->ctx,
                           "record %s %s: Route 53 refused the delete (%s); leaving it alone",
                           rec->written.name, rec->written.type, message ? message : "");
            removed(rec, "changed by someone else; left alone");
        } else {
            on_failure(rec, api, res, code, message);
        }
        r53_reply_free(&r);
        return;
    }
    if (!parsed) {
        struct agentd_aws_response bad = *res;
        bad.error = -EBADMSG;
        on_failure(rec, api, &bad, NULL, "malformed XML in the answer");
        r53_reply_free(&r);
        return;
    }
    agentd_metric_add(p->m_requests_ok, 1);
    rec->failures = 0;
    replace(&rec->last_error, NULL);
    if (strcmp(op, "ZONE") == 0) {
        on_zone(rec, &r);
    } else if (strcmp(op, "UPSERT") == 0) {
        on_change(rec, &r, true);
    } else if (strcmp(op, "GETCHANGE") == 0) {
        on_change(rec, &r, false);
    } else if (strcmp(op, "LIST") == 0) {
        if (p->leaving)
            on_listed_leaving(rec, &r);
        else
            on_listed(rec, &r);
    } else if (strcmp(op, "DELETE") == 0) {
        agentd_notice(p->ctx, "record %s %s %s deleted from zone %s (%s): change %s",
                      rec->written.name, rec->written.type, rec->written.value, rec->zone_id,
                      p->leave_reason, r.change_id ? r.change_id : "?");
        replace(&rec->change_id, r.change_id);
        replace(&rec->change_status, r.change_status);
        agentd_metric_add(p->m_changes, 1);
        removed(rec, "deleted");
    }
    r53_reply_free(&r);
}

void r53_record_close(struct r53_record *rec, uv_close_cb cb)
{
    if (rec->call) {
        agentd_aws_cancel(rec->call);
        rec->call = NULL;
    }
    rec->timer.data = rec->p; /* the close callback counts handles on the plugin */
    uv_close((uv_handle_t *)&rec->timer, cb);
}

void r53_record_free(struct r53_record *rec)
{
    free(rec->zone_id);
    r53_rrset_free(&rec->want);
    r53_rrset_free(&rec->written);
    r53_rrset_free(&rec->before);
    free(rec->change_id);
    free(rec->change_status);
    free(rec->last_error);
    free(rec->leave_result);
}

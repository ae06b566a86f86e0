/* The CloudWatch Logs sink: PutLogEvents batches from the head of the
 * pipeline's queue, one request in flight per stream; the group and stream
 * are created when missing and the retention set when configured. Nothing is
 * acknowledged before the service has answered 200 for it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cwbatch.h"
#include "logs.h"

#define EXPAND_RETRY_MS 1000
#define BACKOFF_MIN_MS  500
#define BACKOFF_MAX_MS  10000

enum phase { PH_EXPAND, PH_SETUP, PH_READY };
enum op { OP_NONE, OP_PUT, OP_GROUP, OP_STREAM, OP_RETENTION };

struct cw {
    struct pipeline *p;
    const struct logs_cw_conf *c;
    char *group, *stream;
    enum phase phase;
    enum op op;
    bool retention_done;
    struct agentd_aws_call *call;
    size_t n_inflight;
    size_t split_cap; /* after an invalid batch: send at most this many; 0: no cap */
    uv_timer_t timer;
    bool timer_armed_backoff;
    uint64_t backoff;
    bool stopped, timer_closed;
    struct cw_limits lim;
    struct ev **vec;
    char *body; /* the request body, reused from batch to batch */
    size_t body_cap;
    char last_error[256];
    uint64_t last_ok_ms;
};

static void send_put(struct cw *cw);
static void setup_step(struct cw *cw);

static bool code_is(const struct agentd_aws_response *res, const char *code)
{
    if (!res->error_code)
        return false;
    /* Tolerate the "prefix#Code" form of the __type field. */
    const char *hash = strrchr(res->error_code, '#');
    return strcmp(hash ? hash + 1 : res->error_code, code) == 0;
}

static int request(struct cw *cw, enum op op, const char *target, const char *body, size_t len,
                   agentd_aws_done_fn done)
{
    static const char *const headers[] = {"Content-Type: application/x-amz-json-1.1", NULL};
    struct agentd_aws_request req = {
        .service = "logs",
        .endpoint_id = "CLOUDWATCH_LOGS",
        .endpoint = cw->c->endpoint,
        .region = cw->c->region,
        .protocol = AGENTD_AWS_JSON,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .body = body,
        .body_len = len,
        .target = target,
        .timeout_ms = 30000,
    };
    int r = agentd_aws_request(cw->p->ctx, &req, done, cw, &cw->call);
    if (r < 0)
        return r;
    cw->op = op;
    logs_busy(cw->p->lg);
    return 0;
}

static void on_timer(uv_timer_t *h);

static void arm(struct cw *cw, uint64_t ms)
{
    if (cw->stopped)
        return;
    uv_timer_start(&cw->timer, on_timer, ms, 0);
}

static void fail(struct cw *cw, const struct agentd_aws_response *res, const char *what)
{
    snprintf(cw->last_error, sizeof(cw->last_error), "%s: %s%s%s", what,
             res->error_code ? res->error_code : "", res->error_code ? ": " : "",
             res->error_message ? res->error_message : "error");
    agentd_warning(cw->p->ctx, "pipeline '%s': %s (retrying)", cw->p->conf->name, cw->last_error);
    cw->p->c.retries++;
    agentd_metric_add(cw->p->m_retries, 1);
    cw->backoff = cw->backoff ? cw->backoff * 2 : BACKOFF_MIN_MS;
    if (cw->backoff > BACKOFF_MAX_MS)
        cw->backoff = BACKOFF_MAX_MS;
    /* Full jitter on the upper half keeps streams from retrying in step. */
    uint64_t wait = cw->backoff / 2 + (uint64_t)rand() % (cw->backoff / 2 + 1);
    cw->timer_armed_backoff = true;
    arm(cw, wait);
}

static bool take_call(struct cw *cw)
{
    cw->call = NULL;
    cw->op = OP_NONE;
    logs_unbusy(cw->p->lg);
    return !cw->stopped;
}

/* ---- group, stream and retention ---- */

static void on_setup_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                          void *ud)
{
    struct cw *cw = ud;
    enum op op = cw->op;
    if (!take_call(cw))
        return;
    bool ok = res->error == 0 || code_is(res, "ResourceAlreadyExistsException");
    if (!ok && code_is(res, "ResourceNotFoundException") && op != OP_GROUP) {
        /* The group is missing too: create it, then come back. */
        agentd_info(ctx, "pipeline '%s': creating log group '%s'", cw->p->conf->name, cw->group);
        json_t *j = json_pack("{s:s}", "logGroupName", cw->group);
        char *b = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        int r =
            b ? request(cw, OP_GROUP, "Logs_20140328.CreateLogGroup", b, strlen(b), on_setup_done)
              : -ENOMEM;
        free(b);
        if (r < 0)
            fail(cw, &(struct agentd_aws_response){.error_message = strerror(-r)},
                 "CreateLogGroup");
        return;
    }
    if (!ok) {
        const char *what = op == OP_GROUP    ? "CreateLogGroup"
                           : op == OP_STREAM ? "CreateLogStream"
                                             : "PutRetentionPolicy";
        fail(cw, res, what);
        return;
    }
    cw->backoff = 0;
    if (op == OP_RETENTION)
        cw->retention_done = true;
    if (op == OP_GROUP) {
        cw->retention_done = cw->c->retention == 0;
        setup_step(cw);
        return;
    }
    if (op == OP_STREAM) {
        cw->phase = PH_READY;
        send_put(cw);
        return;
    }
    /* Retention set at start: ready for the first put. */
    cw->phase = PH_READY;
    cw->p->sink_ops->kick(cw);
}

/* The next setup request: retention first when due, else the stream. */
static void setup_step(struct cw *cw)
{
    json_t *j;
    enum op op;
    const char *target;
    if (!cw->retention_done && cw->c->retention) {
        j = json_pack("{s:s,s:I}", "logGroupName", cw->group, "retentionInDays",
                      (json_int_t)(cw->c->retention / 86400000));
        op = OP_RETENTION;
        target = "Logs_20140328.PutRetentionPolicy";
    } else {
        j = json_pack("{s:s,s:s}", "logGroupName", cw->group, "logStreamName", cw->stream);
        op = OP_STREAM;
        target = "Logs_20140328.CreateLogStream";
        agentd_info(cw->p->ctx, "pipeline '%s': creating log stream '%s' in '%s'",
                    cw->p->conf->name, cw->stream, cw->group);
    }
    char *b = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    int r = b ? request(cw, op, target, b, strlen(b), on_setup_done) : -ENOMEM;
    free(b);
    if (r < 0)
        fail(cw, &(struct agentd_aws_response){.error_message = strerror(-r)}, target);
}

/* ---- PutLogEvents ---- */

static void on_put_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                        void *ud)
{
    struct cw *cw = ud;
    size_t n = cw->n_inflight;
    cw->n_inflight = 0;
    if (!take_call(cw))
        return;
    struct pipeline *p = cw->p;
    if (res->attempts > 1) {
        p->c.retries += res->attempts - 1;
        agentd_metric_add(p->m_retries, res->attempts - 1);
    }
    if (res->error == 0 || code_is(res, "DataAlreadyAcceptedException")) {
        size_t nw = 0, od = 0, ex = 0;
        if (res->error == 0)
            cwb_rejected(res->body, res->body_len, n, &nw, &od, &ex);
        size_t rej = nw + (od > ex ? od : ex);
        if (rej > n)
            rej = n;
        if (rej) {
            agentd_warning(ctx,
                           "pipeline '%s': CloudWatch rejected %zu of %zu events (too new %zu, "
                           "too old %zu, expired %zu)",
                           p->conf->name, rej, n, nw, od, ex);
            p->c.rejected += rej;
            agentd_metric_add(p->m_rejected, (double)rej);
        }
        p->c.shipped += n - rej;
        p->c.batches++;
        agentd_metric_add(p->m_shipped, (double)(n - rej));
        agentd_metric_add(p->m_batches, 1);
        cw->backoff = 0;
        cw->split_cap = 0;
        cw->last_error[0] = '\0';
        cw->last_ok_ms = logs_wall_ms();
        pipeline_ack(p, n);
        pipeline_wake(p);
        return;
    }
    if (code_is(res, "ResourceNotFoundException")) {
        cw->phase = PH_SETUP;
        setup_step(cw);
        return;
    }
    if (code_is(res, "InvalidParameterException") || code_is(res, "SerializationException") ||
        res->status == 413) {
        /* A batch the service refuses as a whole: halve it until the event
         * at fault is alone, then drop that one event, loudly. */
        if (n > 1) {
            cw->split_cap = n / 2;
            send_put(cw);
            return;
        }
        agentd_error(ctx, "pipeline '%s': CloudWatch refused an event (%s: %s): dropped",
                     p->conf->name, res->error_code, res->error_message ? res->error_message : "");
        pipeline_drop_head(p, 1, "invalid");
        cw->split_cap = 0;
        pipeline_wake(p);
        return;
    }
    fail(cw, res, "PutLogEvents");
}

static void send_put(struct cw *cw)
{
    struct pipeline *p = cw->p;
    size_t avail = p->q_n;
    if (cw->split_cap && avail > cw->split_cap)
        avail = cw->split_cap;
    size_t bytes;
    size_t n = cwb_select(p->head, avail, &cw->lim, &bytes);
    if (n == 0)
        return;
    struct ev *e = p->head;
    for (size_t i = 0; i < n; i++, e = e->next)
        cw->vec[i] = e;
    cwb_sort(cw->vec, n);
    size_t len;
    int r = cwb_encode(cw->group, cw->stream, cw->vec, n, &cw->body, &cw->body_cap, &len);
    if (r == 0)
        r = request(cw, OP_PUT, "Logs_20140328.PutLogEvents", cw->body, len, on_put_done);
    if (r < 0) {
        fail(cw, &(struct agentd_aws_response){.error_message = strerror(-r)}, "PutLogEvents");
        return;
    }
    cw->n_inflight = n;
}

/* ---- scheduling ---- */

static int expand(struct cw *cw)
{
    char *g = NULL, *s = NULL, *missing = NULL;
    int r = agentd_template_expand(cw->p->ctx, cw->c->group, NULL, &g, &missing);
    if (r == 0)
        r = agentd_template_expand(cw->p->ctx, cw->c->stream, NULL, &s, &missing);
    if (r < 0) {
        snprintf(cw->last_error, sizeof(cw->last_error), "waiting for metadata '%s'",
                 missing ? missing : "?");
        free(missing);
        free(g);
        return r;
    }
    cw->group = g;
    cw->stream = s;
    return 0;
}

static void cw_kick(void *sink)
{
    struct cw *cw = sink;
    struct pipeline *p = cw->p;
    if (cw->stopped || cw->call || cw->phase != PH_READY || cw->timer_armed_backoff)
        return;
    if (p->q_n == 0)
        return;
    uint64_t now = uv_now(agentd_loop(p->ctx));
    uint64_t due = p->queued_since + cw->c->flush_interval;
    bool full_batch = p->q_n >= CW_MAX_BATCH_EVENTS || p->q_bytes >= CW_MAX_BATCH_BYTES;
    if (p->stopping || p->flushing || full_batch || pipeline_full(p) || now >= due) {
        uv_timer_stop(&cw->timer);
        send_put(cw);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&cw->timer))
        arm(cw, due - now);
}

static void on_timer(uv_timer_t *h)
{
    struct cw *cw = h->data;
    cw->timer_armed_backoff = false;
    if (cw->stopped || cw->call)
        return;
    if (cw->phase == PH_EXPAND) {
        if (expand(cw) < 0) {
            arm(cw, EXPAND_RETRY_MS);
            return;
        }
        cw->phase = PH_SETUP;
    }
    if (cw->phase == PH_SETUP) {
        if (cw->retention_done || !cw->c->retention) {
            cw->phase = PH_READY;
        } else {
            setup_step(cw);
            return;
        }
    }
    cw_kick(cw);
}

static int cw_start(void *sink)
{
    struct cw *cw = sink;
    uv_timer_init(agentd_loop(cw->p->ctx), &cw->timer);
    cw->timer.data = cw;
    logs_busy(cw->p->lg);
    arm(cw, 0);
    return 0;
}

static void cw_stop(void *sink)
{
    struct cw *cw = sink;
    if (cw->stopped)
        return;
    cw->stopped = true;
    if (cw->call) {
        agentd_aws_cancel(cw->call);
        cw->call = NULL;
        cw->n_inflight = 0;
        logs_unbusy(cw->p->lg);
    }
    if (!cw->timer_closed) {
        cw->timer_closed = true;
        uv_timer_stop(&cw->timer);
        cw->timer.data = cw->p;
        uv_close((uv_handle_t *)&cw->timer, logs_close_cb);
    }
}

static bool cw_idle(void *sink)
{
    struct cw *cw = sink;
    return cw->stopped && !cw->call;
}

static void cw_status(void *sink, json_t *out)
{
    struct cw *cw = sink;
    static const char *const phases[] = {"waiting for metadata", "creating", "ready"};
    json_object_set_new(out, "group", cw->group ? json_string(cw->group) : json_null());
    json_object_set_new(out, "stream", cw->stream ? json_string(cw->stream) : json_null());
    json_object_set_new(out, "state", json_string(phases[cw->phase]));
    json_object_set_new(out, "in_flight_events", json_integer((json_int_t)cw->n_inflight));
    if (cw->last_error[0])
        json_object_set_new(out, "last_error", json_string(cw->last_error));
    if (cw->last_ok_ms)
        json_object_set_new(out, "last_success_ms", json_integer((json_int_t)cw->last_ok_ms));
}

static bool cw_accept(void *sink, const char *msg, size_t len, int64_t ts, const char **reason)
{
    struct cw *cw = sink;
    if (len == 0) {
        *reason = "empty"; /* CloudWatch requires at least one character */
        return false;
    }
    if (cw->p->conf->timestamp_format && ts < (int64_t)logs_wall_ms() - CW_MAX_AGE_MS) {
        *reason = "too_old";
        return false;
    }
    return true;
}

static void cw_free(void *sink)
{
    struct cw *cw = sink;
    free(cw->group);
    free(cw->stream);
    free(cw->vec);
    free(cw->body);
    free(cw);
}

int cw_sink_create(struct pipeline *p, void **ret)
{
    struct cw *cw = calloc(1, sizeof(*cw));
    if (!cw)
        return -ENOMEM;
    cw->vec = calloc(CW_MAX_BATCH_EVENTS, sizeof(*cw->vec));
    if (!cw->vec) {
        free(cw);
        return -ENOMEM;
    }
    cw->p = p;
    cw->c = p->conf->cloudwatch;
    cwb_default_limits(&cw->lim);
    cw->retention_done = cw->c->retention == 0;
    *ret = cw;
    return 0;
}

const struct sink_ops cw_sink_ops = {
    .type = "cloudwatch",
    .start = cw_start,
    .kick = cw_kick,
    .stop = cw_stop,
    .idle = cw_idle,
    .status = cw_status,
    .free = cw_free,
    .accept = cw_accept,
};

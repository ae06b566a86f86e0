/* agentd_aws_request: resolve the endpoint, get credentials, sign, send with
 * the HTTP client, parse AWS errors, retry the SDKs' standard way.
 *
 * Every attempt is signed afresh (new X-Amz-Date, maybe new credentials).
 * Callbacks are always asynchronous: the first attempt starts from a 0 ms
 * timer, so a caller never sees done() before agentd_aws_request returns. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws-internal.h"
#include "aws-sigv4.h"

#define MAX_HEADERS 64

struct agentd_aws_call {
    struct agentd_plugin_ctx *ctx;
    agentd_aws_done_fn done;
    void *ud;
    char *service, *method, *path, *query, *target, *region;
    char *headers[MAX_HEADERS + 1];
    size_t nheaders;
    char *body;
    size_t body_len;
    enum agentd_aws_protocol protocol;
    bool unsigned_payload;
    unsigned max_attempts, attempts;
    uint64_t timeout_ms;
    struct aws_endpoint ep;
    struct aws_retry_quota *quota;
    int retry_cost;
    bool refreshed_expired;
    bool skew_retried;
    struct agentd_http_call *http;
    struct aws_creds_wait *wait;
    uv_timer_t *timer;
    bool in_done; /* done() is running: a cancel now is a no-op */
    /* the last failure, for the final answer */
    int last_error;
    char *last_message;
};

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

static void call_free(struct agentd_aws_call *c)
{
    if (c->timer) {
        uv_timer_stop(c->timer);
        uv_close((uv_handle_t *)c->timer, timer_closed);
    }
    free(c->service);
    free(c->method);
    free(c->path);
    free(c->query);
    free(c->target);
    free(c->region);
    for (size_t i = 0; i < c->nheaders; i++)
        free(c->headers[i]);
    free(c->body);
    free(c->last_message);
    aws_endpoint_free(&c->ep);
    free(c);
}

static bool has_header(struct agentd_aws_call *c, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < c->nheaders; i++)
        if (strncasecmp(c->headers[i], name, n) == 0 && c->headers[i][n] == ':')
            return true;
    return false;
}

/* Counts outcomes per service: agentd_aws_requests_total{service,outcome}
 * (success, aws_error, transport, credentials) and retries. */
static void count(struct agentd_aws_call *c, const char *outcome)
{
    const char *labels[] = {"service", c->service, "outcome", outcome, NULL};

    agentd_metric_add(agentd_metric_counter(c->ctx, "agentd_aws_requests_total",
                                            "AWS requests by service and outcome", labels),
                      1);
}

static void count_retry(struct agentd_aws_call *c)
{
    const char *labels[] = {"service", c->service, NULL};

    agentd_metric_add(agentd_metric_counter(c->ctx, "agentd_aws_retries_total",
                                            "AWS request retries by service", labels),
                      1);
}

/* Ends the call with a failure that has no HTTP answer. */
static void fail(struct agentd_aws_call *c, int error, const char *message)
{
    struct agentd_aws_response res = {0};
    static const char *const no_headers[] = {NULL};

    res.error = error;
    res.error_message = message;
    res.body = "";
    res.headers = no_headers;
    res.attempts = c->attempts;
    count(c, error == -ENOKEY ? "credentials" : "transport");
    c->in_done = true;
    c->done(c->ctx, &res, c->ud);
    call_free(c);
}

static void start_attempt(uv_timer_t *t);

static void schedule(struct agentd_aws_call *c, uint64_t delay_ms)
{
    uv_timer_start(c->timer, start_attempt, delay_ms, 0);
}

static bool expired_token(const char *code)
{
    return code &&
           (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "ExpiredTokenException") == 0 ||
            strcmp(code, "InvalidClientTokenId") == 0);
}

/* Seconds to add to our clock when signing: AWS's time minus ours, learnt
 * from the Date header of an answer that refused the signature's time (the
 * SDKs' clock skew correction). A wrong clock at boot then costs one failed
 * attempt, not every request until NTP catches up. */
static int64_t clock_skew;

static bool skew_error(const struct aws_error *e)
{
    if (strcmp(e->code, "RequestTimeTooSkewed") == 0 || strcmp(e->code, "RequestExpired") == 0 ||
        strcmp(e->code, "RequestInTheFuture") == 0)
        return true;
    return (strcmp(e->code, "InvalidSignatureException") == 0 ||
            strcmp(e->code, "SignatureDoesNotMatch") == 0 || strcmp(e->code, "AuthFailure") == 0) &&
           (strstr(e->message, "Signature expired") ||
            strstr(e->message, "Signature not yet current"));
}

/* Returns true if the answer's Date taught us a new skew. */
static bool learn_skew(struct agentd_aws_call *c, const struct agentd_http_response *hres)
{
    const char *d = agentd_http_header(hres, "date");
    struct tm tm = {0};
    int64_t skew;

    if (!d || !strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm))
        return false;
    skew = (int64_t)timegm(&tm) - (int64_t)time(NULL);
    if (skew - clock_skew < 60 && clock_skew - skew < 60)
        return false;
    clock_skew = skew;
    agentd_warning(c->ctx, "the system clock is %lld s %s AWS's (per %s); signing with AWS's time",
                   (long long)(skew < 0 ? -skew : skew), skew < 0 ? "ahead of" : "behind",
                   c->ep.host);
    return true;
}

static double rand01(void)
{
    return (double)arc4random() / (double)UINT32_MAX;
}

static void on_http(struct agentd_plugin_ctx *ctx, const struct agentd_http_response *hres,
                    void *ud)
{
    struct agentd_aws_call *c = ud;
    struct agentd_aws_response res = {0};
    struct aws_error err = {.code = {0}};
    bool aws_error = false, ok;
    int r;

    c->http = NULL;
    ok = hres->error == 0 && hres->status >= 200 && hres->status < 300;
    if (ok && c->protocol == AGENTD_AWS_REST_XML &&
        (strcmp(c->method, "POST") == 0 || strcmp(c->method, "PUT") == 0) &&
        aws_error_xml_is_error(hres->body, hres->body_len)) {
        /* S3's 200 with an error document (CompleteMultipartUpload). */
        ok = false;
    }
    if (!ok && hres->error == 0) {
        if (c->protocol == AGENTD_AWS_JSON)
            r = aws_error_parse_json(hres->body, hres->body_len,
                                     agentd_http_header(hres, "x-amzn-errortype"), &err);
        else
            r = aws_error_parse_xml(hres->body, hres->body_len, &err);
        aws_error = r == 0;
        if (!aws_error) {
            /* HEAD answers and proxies' pages carry no AWS error body. */
            snprintf(err.message, sizeof(err.message), "HTTP %ld", hres->status);
        } else if (!err.message[0])
            snprintf(err.message, sizeof(err.message), "HTTP %ld", hres->status);
    }
    if (ok) {
        aws_retry_quota_release(c->quota, c->retry_cost);
        res.status = hres->status;
        res.body = hres->body;
        res.body_len = hres->body_len;
        res.headers = hres->headers;
        res.attempts = c->attempts;
        count(c, "success");
        c->in_done = true;
        c->done(c->ctx, &res, c->ud);
        call_free(c);
        return;
    }

    bool new_skew = aws_error && skew_error(&err) && learn_skew(c, hres);

    if (c->attempts < c->max_attempts && !agentd_stopping(c->ctx)) {
        bool retry = false;
        uint64_t delay = 0;

        if (new_skew && !c->skew_retried) {
            /* Signed at the wrong time: once more, at AWS's time. */
            c->skew_retried = true;
            retry = true;
        } else if (aws_error && expired_token(err.code) && !c->refreshed_expired) {
            /* The server says our credentials expired: drop them and try
             * once more with fresh ones, without backoff. */
            c->refreshed_expired = true;
            aws_creds_invalidate();
            retry = true;
        } else if (aws_retry_retryable(hres->error, hres->status, aws_error ? err.code : NULL)) {
            int cost = aws_retry_quota_acquire(c->quota, hres->error == -ETIMEDOUT);
            if (cost >= 0) {
                c->retry_cost += cost;
                delay = aws_retry_backoff_ms(c->attempts - 1, rand01());
                retry = true;
            } else
                agentd_debug(c->ctx, "%s: retry quota for %s exhausted, not retrying", c->service,
                             c->ep.host);
        }
        if (retry) {
            agentd_debug(c->ctx, "%s %s: attempt %u failed (%s%s%s), retrying in %llu ms",
                         c->service, c->target ? c->target : c->method, c->attempts,
                         hres->error ? hres->error_message : err.message, aws_error ? " " : "",
                         aws_error ? err.code : "", (unsigned long long)delay);
            count_retry(c);
            schedule(c, delay);
            return;
        }
    }
    res.status = hres->error ? 0 : hres->status;
    res.error = hres->error ? hres->error : -EIO;
    res.error_code = aws_error ? err.code : NULL;
    res.error_message = hres->error ? hres->error_message : err.message;
    res.body = hres->body;
    res.body_len = hres->body_len;
    res.headers = hres->headers;
    res.attempts = c->attempts;
    count(c, hres->error ? "transport" : "aws_error");
    c->in_done = true;
    c->done(c->ctx, &res, c->ud);
    call_free(c);
}

static int push(const char **v, size_t *n, size_t cap, const char *s)
{
    if (*n + 1 >= cap)
        return -E2BIG;
    v[(*n)++] = s;
    v[*n] = NULL;
    return 0;
}

static void send_signed(struct agentd_aws_call *c, const struct aws_creds *creds)
{
    const char *sign_hdrs[MAX_HEADERS + 8], *http_hdrs[MAX_HEADERS + 16];
    size_t ns = 0, nh = 0;
    char *host = NULL, *ctype = NULL, *target = NULL, *date = NULL, *auth = NULL, *token = NULL,
         *sha = NULL, *wire = NULL, *path = NULL, *url = NULL;
    struct agentd_aws_credentials cr = {creds->access_key_id, creds->secret_access_key,
                                        creds->session_token, creds->expiration};
    struct sigv4_request sreq = {0};
    struct sigv4_result sres = {0};
    struct agentd_http_request hreq = {0};
    const char *ct = NULL;
    int r = -ENOMEM;

    sign_hdrs[0] = NULL;
    for (size_t i = 0; i < c->nheaders; i++)
        push(sign_hdrs, &ns, MAX_HEADERS + 8, c->headers[i]);
    if (asprintf(&host, "Host: %s", c->ep.host) < 0)
        goto out;
    push(sign_hdrs, &ns, MAX_HEADERS + 8, host);
    if (c->protocol == AGENTD_AWS_QUERY)
        ct = "application/x-www-form-urlencoded; charset=utf-8";
    else if (c->protocol == AGENTD_AWS_JSON)
        ct = "application/x-amz-json-1.1";
    if (ct && !has_header(c, "Content-Type")) {
        if (asprintf(&ctype, "Content-Type: %s", ct) < 0)
            goto out;
        push(sign_hdrs, &ns, MAX_HEADERS + 8, ctype);
    }
    if (c->target) {
        if (asprintf(&target, "X-Amz-Target: %s", c->target) < 0)
            goto out;
        push(sign_hdrs, &ns, MAX_HEADERS + 8, target);
    }
    wire = sigv4_wire_path(c->path);
    if (!wire || asprintf(&path, "%s%s", c->ep.path, wire) < 0)
        goto out;

    sreq.method = c->method;
    sreq.path = path;
    sreq.query = c->query;
    sreq.headers = sign_hdrs;
    sreq.body = c->body;
    sreq.body_len = c->body_len;
    sreq.s3_path = c->protocol == AGENTD_AWS_REST_XML;
    sreq.content_sha256 = c->protocol == AGENTD_AWS_REST_XML;
    sreq.payload_hash = c->unsigned_payload ? SIGV4_UNSIGNED_PAYLOAD : NULL;
    sreq.service = c->service;
    sreq.region = c->region;
    sreq.now = (int64_t)time(NULL) + clock_skew;
    r = sigv4_sign(&sreq, &cr, &sres);
    if (r < 0)
        goto out;

    r = -ENOMEM;
    if (asprintf(&date, "X-Amz-Date: %s", sres.amz_date) < 0 ||
        asprintf(&auth, "Authorization: %s", sres.authorization) < 0)
        goto out;
    if (creds->session_token &&
        asprintf(&token, "X-Amz-Security-Token: %s", creds->session_token) < 0)
        goto out;
    if (sreq.content_sha256 && asprintf(&sha, "x-amz-content-sha256: %s", sres.payload_hash) < 0)
        goto out;
    http_hdrs[0] = NULL;
    for (size_t i = 0; i < ns; i++)
        push(http_hdrs, &nh, MAX_HEADERS + 16, sign_hdrs[i]);
    push(http_hdrs, &nh, MAX_HEADERS + 16, date);
    if (token)
        push(http_hdrs, &nh, MAX_HEADERS + 16, token);
    if (sha)
        push(http_hdrs, &nh, MAX_HEADERS + 16, sha);
    push(http_hdrs, &nh, MAX_HEADERS + 16, auth);

    /* The origin is the base URL without its path. */
    if (asprintf(&url, "%.*s%s%s%s", (int)(strlen(c->ep.base) - strlen(c->ep.path)), c->ep.base,
                 path, sres.canonical_query[0] ? "?" : "", sres.canonical_query) < 0)
        goto out;
    hreq.method = c->method;
    hreq.url = url;
    hreq.headers = http_hdrs;
    hreq.body = c->body;
    hreq.body_len = c->body_len;
    hreq.timeout_ms = c->timeout_ms;
    r = agentd_http_request(c->ctx, &hreq, on_http, c, &c->http);
out:
    sigv4_result_free(&sres);
    free(host);
    free(ctype);
    free(target);
    free(date);
    free(auth);
    if (token)
        explicit_bzero(token, strlen(token));
    free(token);
    free(sha);
    free(wire);
    free(path);
    free(url);
    if (r < 0)
        fail(c, r, "cannot sign or send the request");
}

static void on_creds(int status, const struct aws_creds *creds, const char *message, void *ud)
{
    struct agentd_aws_call *c = ud;

    c->wait = NULL;
    if (status < 0) {
        fail(c, status, message ? message : "no AWS credentials");
        return;
    }
    send_signed(c, creds);
}

static void start_attempt(uv_timer_t *t)
{
    struct agentd_aws_call *c = t->data;
    int r;

    c->attempts++;
    r = aws_creds_get(c->ctx, on_creds, c, &c->wait);
    if (r < 0)
        fail(c, r, "cannot get AWS credentials");
}

static char *dup_opt(const char *s, bool *oom)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

int agentd_aws_request(struct agentd_plugin_ctx *ctx, const struct agentd_aws_request *req,
                       agentd_aws_done_fn done, void *ud, struct agentd_aws_call **ret)
{
    struct agentd_aws_call *c;
    const char *region;
    bool oom = false;
    int r;

    if (!req || !done || !req->service || !req->method || !req->path || req->path[0] != '/' ||
        (req->body_len && !req->body))
        return -EINVAL;
    region = req->region ? req->region : agentd_aws_region(ctx);
    if (!region)
        return -EDESTADDRREQ;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->ctx = ctx;
    c->done = done;
    c->ud = ud;
    c->protocol = req->protocol;
    c->unsigned_payload = req->unsigned_payload;
    c->max_attempts = req->max_attempts ? req->max_attempts : aws_default_max_attempts();
    c->timeout_ms = req->timeout_ms;
    c->service = dup_opt(req->service, &oom);
    c->method = dup_opt(req->method, &oom);
    c->path = dup_opt(req->path, &oom);
    c->query = dup_opt(req->query, &oom);
    c->target = dup_opt(req->target, &oom);
    c->region = dup_opt(region, &oom);
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        if (i == MAX_HEADERS) {
            call_free(c);
            return -E2BIG;
        }
        c->headers[c->nheaders++] = dup_opt(req->headers[i], &oom);
    }
    if (req->body_len) {
        c->body = malloc(req->body_len);
        if (c->body)
            memcpy(c->body, req->body, req->body_len);
        else
            oom = true;
        c->body_len = req->body_len;
    }
    c->timer = calloc(1, sizeof(*c->timer));
    if (oom || !c->timer) {
        free(c->timer);
        c->timer = NULL;
        call_free(c);
        return -ENOMEM;
    }
    r = aws_endpoint_resolve(req->service, req->endpoint_id, req->endpoint, region, &c->ep);
    if (r < 0) {
        free(c->timer);
        c->timer = NULL;
        call_free(c);
        return r;
    }
    c->quota = aws_retry_quota_for(c->ep.host);
    uv_timer_init(agentd_loop(ctx), c->timer);
    c->timer->data = c;
    schedule(c, 0);
    if (ret)
        *ret = c;
    return 0;
}

void agentd_aws_cancel(struct agentd_aws_call *call)
{
    if (!call || call->in_done)
        return;
    if (call->http)
        agentd_http_cancel(call->http);
    if (call->wait)
        aws_creds_cancel(call->wait);
    call_free(call);
}

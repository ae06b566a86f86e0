/* IMDSv2 requests. One session token is shared by every request and reused
 * until shortly before its TTL ends; requests that need a token wait for the
 * single token PUT in flight. A 401 means the token expired or IMDS restarted:
 * the token is dropped and the request retried once with a new one. Transport
 * errors and 5xx are retried with a short capped backoff (IMDS is local, so
 * anything slower than a second or two is not going to answer). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imds.h"

#define MAX_RESPONSE  (256 * 1024)
#define RETRY_BASE_MS 100
#define RETRY_CAP_MS  1000

struct imds_req {
    struct imds *im;
    struct imds_req *next, **pprev;
    char *path;
    unsigned attempts, attempt;
    bool retried_401;
    bool waiting_token;
    bool in_batch;
    uint64_t token_gen;
    imds_get_fn cb;
    void *ud;
    struct agentd_http_call *call;
    uv_timer_t *timer;
};

static void req_dispatch(struct imds_req *req);
static void token_start(struct imds *im);

static void timer_free(uv_handle_t *h)
{
    free(h);
}

static void req_unlink(struct imds_req *req)
{
    if (req->pprev) {
        *req->pprev = req->next;
        if (req->next)
            req->next->pprev = req->pprev;
        req->pprev = NULL;
        req->next = NULL;
    }
}

/* Ends a request: unlinks it first so that the callback may start others. */
static void req_finish(struct imds_req *req, int err, long status, const char *body, size_t len)
{
    struct imds *im = req->im;
    req_unlink(req);
    if (req->timer) {
        uv_timer_stop(req->timer);
        uv_close((uv_handle_t *)req->timer, timer_free);
    }
    if (err < 0 && err != -ENOENT && err != -ECANCELED) {
        im->n_errors++;
        if (im->m_errors)
            agentd_metric_add(im->m_errors, 1);
    }
    imds_get_fn cb = req->cb;
    void *ud = req->ud;
    free(req->path);
    free(req);
    cb(im, err, status, body, len, ud);
}

static void set_error(struct imds *im, const char *what, const char *fmt, ...) AGENTD_PRINTF(3, 4);
static void set_error(struct imds *im, const char *what, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(im->last_error, sizeof(im->last_error), "%s: ", what);
    if (n < 0 || (size_t)n >= sizeof(im->last_error))
        return;
    va_start(ap, fmt);
    vsnprintf(im->last_error + n, sizeof(im->last_error) - (size_t)n, fmt, ap);
    va_end(ap);
}

static void retry_timer_cb(uv_timer_t *t)
{
    req_dispatch(t->data);
}

/* A failed attempt: try again after a backoff while attempts remain. */
static void req_retry(struct imds_req *req, int err)
{
    struct imds *im = req->im;
    if (im->stopping || ++req->attempt >= req->attempts) {
        req_finish(req, err, 0, NULL, 0);
        return;
    }
    if (!req->timer) {
        req->timer = malloc(sizeof(*req->timer));
        if (!req->timer) {
            req_finish(req, err, 0, NULL, 0);
            return;
        }
        uv_timer_init(agentd_loop(im->ctx), req->timer);
        req->timer->data = req;
    }
    uint64_t d = imds_backoff_ms(req->attempt - 1, RETRY_BASE_MS, RETRY_CAP_MS, (uint32_t)random());
    uv_timer_start(req->timer, retry_timer_cb, d, 0);
}

static void get_done(struct agentd_plugin_ctx *ctx, const struct agentd_http_response *res,
                     void *ud)
{
    struct imds_req *req = ud;
    struct imds *im = req->im;
    req->call = NULL;

    if (res->error < 0) {
        set_error(im, req->path, "%s",
                  res->error_message ? res->error_message : strerror(-res->error));
        req_retry(req, res->error);
        return;
    }
    switch (res->status) {
    case 200:
        req_finish(req, 0, 200, res->body, res->body_len);
        return;
    case 404:
        req_finish(req, -ENOENT, 404, NULL, 0);
        return;
    case 401:
        if (!im->v1 && !req->retried_401) {
            req->retried_401 = true;
            /* Only the token this request used is stale; another request
             * may already have fetched a fresh one. */
            if (req->token_gen == im->token_gen)
                imds_client_drop_token(im);
            req_dispatch(req);
            return;
        }
        set_error(im, req->path, "HTTP 401 with a fresh token");
        req_finish(req, -EACCES, 401, NULL, 0);
        return;
    case 403:
        set_error(im, req->path, "HTTP 403 (IMDS disabled or not allowed)");
        req_finish(req, -EACCES, 403, NULL, 0);
        return;
    default:
        set_error(im, req->path, "HTTP %ld", res->status);
        if (res->status >= 500 || res->status == 429)
            req_retry(req, -EIO);
        else
            req_finish(req, -EPROTO, res->status, NULL, 0);
    }
}

static void req_send(struct imds_req *req)
{
    struct imds *im = req->im;
    char url[1024], hdr[1200];
    const char *headers[2] = {NULL, NULL};

    int n = snprintf(url, sizeof(url), "%s/latest/%s", im->base, req->path);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        req_finish(req, -ENAMETOOLONG, 0, NULL, 0);
        return;
    }
    if (!im->v1) {
        n = snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", im->token);
        if (n < 0 || (size_t)n >= sizeof(hdr)) {
            req_finish(req, -EOVERFLOW, 0, NULL, 0);
            return;
        }
        headers[0] = hdr;
        req->token_gen = im->token_gen;
    }
    const struct agentd_http_request hr = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .connect_timeout_ms = im->conf->connect_timeout_ms,
        .timeout_ms = im->conf->timeout_ms,
        .max_response = MAX_RESPONSE,
        .no_proxy = true,
    };
    im->n_requests++;
    if (im->m_requests)
        agentd_metric_add(im->m_requests, 1);
    int r = agentd_http_request(im->ctx, &hr, get_done, req, &req->call);
    explicit_bzero(hdr, sizeof(hdr));
    if (r < 0) {
        req->call = NULL;
        set_error(im, req->path, "cannot start request: %s", strerror(-r));
        req_retry(req, r);
    }
}

static void req_dispatch(struct imds_req *req)
{
    struct imds *im = req->im;
    if (im->v1 || (im->token && uv_now(agentd_loop(im->ctx)) < im->token_expires)) {
        req_send(req);
        return;
    }
    req->waiting_token = true;
    token_start(im);
}

/* Applies a token outcome to every request that was waiting when it ended;
 * callbacks may queue new requests, which wait for the next token. */
static void token_settle(struct imds *im, int err)
{
    for (struct imds_req *r = im->reqs; r; r = r->next)
        if (r->waiting_token)
            r->in_batch = true;
    for (;;) {
        struct imds_req *r = im->reqs;
        while (r && !r->in_batch)
            r = r->next;
        if (!r)
            break;
        r->in_batch = false;
        r->waiting_token = false;
        if (err < 0)
            req_retry(r, err);
        else
            req_dispatch(r);
    }
}

static void token_done(struct agentd_plugin_ctx *ctx, const struct agentd_http_response *res,
                       void *ud)
{
    struct imds *im = ud;
    int err;
    im->token_call = NULL;
    im->token_pending = false;

    if (res->error < 0) {
        set_error(im, "PUT /latest/api/token", "%s",
                  res->error_message ? res->error_message : strerror(-res->error));
        err = res->error;
    } else if (res->status == 200) {
        char *tok = NULL;
        err = imds_parse_value(res->body, res->body_len, &tok);
        if (err < 0) {
            set_error(im, "PUT /latest/api/token", "unusable token in the answer");
            err = -EPROTO;
        } else {
            imds_client_drop_token(im);
            im->token = tok;
            im->token_gen++;
            /* Renew a little early: a token that expires between our check
             * and IMDS's costs a 401 round trip. */
            uint64_t ttl = im->conf->token_ttl_ms;
            uint64_t margin = ttl / 4 < 60000 ? ttl / 4 : 60000;
            im->token_expires = uv_now(agentd_loop(im->ctx)) + ttl - margin;
        }
    } else if ((res->status == 403 || res->status == 404 || res->status == 405) &&
               im->conf->v1_fallback) {
        /* botocore falls back on exactly these; we only do when asked to. */
        if (!im->v1)
            agentd_warning(im->ctx, "token PUT answered HTTP %ld: falling back to IMDSv1",
                           res->status);
        im->v1 = true;
        err = 0;
    } else {
        set_error(im, "PUT /latest/api/token", "HTTP %ld%s", res->status,
                  res->status == 403 ? " (IMDS disabled, or the PUT was refused)" : "");
        err = res->status == 403 ? -EACCES : -EPROTO;
    }
    token_settle(im, err);
}

static void token_start(struct imds *im)
{
    char url[1024], ttl[96];
    if (im->token_pending)
        return;
    snprintf(url, sizeof(url), "%s/latest/api/token", im->base);
    snprintf(ttl, sizeof(ttl), "X-aws-ec2-metadata-token-ttl-seconds: %llu",
             (unsigned long long)(im->conf->token_ttl_ms / 1000));
    const char *headers[] = {ttl, NULL};
    const struct agentd_http_request hr = {
        .method = "PUT",
        .url = url,
        .headers = headers,
        .connect_timeout_ms = im->conf->connect_timeout_ms,
        .timeout_ms = im->conf->timeout_ms,
        .max_response = 4096,
        .no_proxy = true,
    };
    im->token_pending = true;
    im->n_token_puts++;
    if (im->m_tokens)
        agentd_metric_add(im->m_tokens, 1);
    int r = agentd_http_request(im->ctx, &hr, token_done, im, &im->token_call);
    if (r < 0) {
        im->token_pending = false;
        im->token_call = NULL;
        set_error(im, "PUT /latest/api/token", "cannot start request: %s", strerror(-r));
        token_settle(im, r);
    }
}

void imds_client_drop_token(struct imds *im)
{
    if (im->token) {
        explicit_bzero(im->token, strlen(im->token));
        free(im->token);
        im->token = NULL;
    }
    im->token_expires = 0;
}

int imds_get(struct imds *im, const char *path, unsigned attempts, imds_get_fn cb, void *ud)
{
    if (im->stopping)
        return -ECANCELED;
    struct imds_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->path = strdup(path);
    if (!req->path) {
        free(req);
        return -ENOMEM;
    }
    req->im = im;
    req->attempts = attempts ? attempts : 1;
    req->cb = cb;
    req->ud = ud;
    /* Appended, so that requests waiting for a token go out in the order
     * they were asked for (the list is a handful long). */
    struct imds_req **pp = &im->reqs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = req;
    req->pprev = pp;
    req_dispatch(req);
    return 0;
}

void imds_client_cancel_all(struct imds *im)
{
    if (im->token_call) {
        agentd_http_cancel(im->token_call);
        im->token_call = NULL;
        im->token_pending = false;
    }
    while (im->reqs) {
        struct imds_req *req = im->reqs;
        if (req->call) {
            agentd_http_cancel(req->call);
            req->call = NULL;
        }
        req_finish(req, -ECANCELED, 0, NULL, 0);
    }
    imds_client_drop_token(im);
}

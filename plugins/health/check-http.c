/* http: a GET through the host's libcurl client. Passes when the status is
 * in expect_status (default 200-399) and, if expect_body is set, the body
 * contains it. Outputs show the URL without credentials or query. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health-int.h"

#define HTTP_MAX_RANGES 16

struct range {
    int lo, hi;
};

struct http_priv {
    struct agentd_http_call *call;
    struct range ranges[HTTP_MAX_RANGES];
    size_t nranges;
    char expect[128]; /* expect_status as text, for outputs */
};

/* Parses "200", "200-399" or "2xx". Returns 0 or -EINVAL. */
int http_status_range_parse(const char *s, int *ret_lo, int *ret_hi)
{
    int lo = 0, hi = 0;
    size_t n = strlen(s);

    if (n == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
        (s[2] == 'x' || s[2] == 'X')) {
        lo = (s[0] - '0') * 100;
        hi = lo + 99;
    } else {
        const char *p = s;

        for (int part = 0; part < 2; part++) {
            int v = 0, digits = 0;

            while (*p >= '0' && *p <= '9' && digits < 4) {
                v = v * 10 + (*p - '0');
                p++;
                digits++;
            }
            if (digits != 3)
                return -EINVAL;
            if (part == 0)
                lo = hi = v;
            else
                hi = v;
            if (*p == '-' && part == 0) {
                p++;
                continue;
            }
            break;
        }
        if (*p)
            return -EINVAL;
    }
    if (lo < 100 || hi > 599 || lo > hi)
        return -EINVAL;
    *ret_lo = lo;
    *ret_hi = hi;
    return 0;
}

static bool status_ok(const struct http_priv *p, long st)
{
    for (size_t i = 0; i < p->nranges; i++)
        if (st >= p->ranges[i].lo && st <= p->ranges[i].hi)
            return true;
    return false;
}

static void on_response(struct agentd_plugin_ctx *ctx, const struct agentd_http_response *res,
                        void *ud)
{
    struct hcheck *c = ud;
    struct http_priv *p = c->priv;
    const char *want = c->cf->expect_body;

    p->call = NULL;
    if (res->error) {
        check_done(c, AGENTD_HEALTH_FAIL, "%s: %s", c->desc,
                   res->error_message ? res->error_message : strerror(-res->error));
    } else if (!status_ok(p, res->status)) {
        check_done(c, AGENTD_HEALTH_FAIL, "%s: status %ld, expected %s", c->desc, res->status,
                   p->expect);
    } else if (want && *want && !memmem(res->body, res->body_len, want, strlen(want))) {
        check_done(c, AGENTD_HEALTH_FAIL, "%s: status %ld but the body does not contain '%s'",
                   c->desc, res->status, want);
    } else {
        check_done(c, AGENTD_HEALTH_PASS, "%s: status %ld", c->desc, res->status);
    }
}

static void http_run(struct hcheck *c)
{
    struct http_priv *p = c->priv;
    struct agentd_http_request req = {
        .method = "GET",
        .url = c->cf->http,
        .connect_timeout_ms = c->cf->timeout,
        /* Our own timer decides; the client's is a backstop. */
        .timeout_ms = c->cf->timeout + 1000,
        .max_response = 1024 * 1024,
    };
    int r = agentd_http_request(c->h->ctx, &req, on_response, c, &p->call);

    if (r < 0) {
        p->call = NULL;
        check_done(c, AGENTD_HEALTH_FAIL, "%s: %s", c->desc, strerror(-r));
    }
}

static void http_cancel(struct hcheck *c)
{
    struct http_priv *p = c->priv;

    if (p->call) {
        agentd_http_cancel(p->call);
        p->call = NULL;
    }
}

/* The URL as shown in outputs: no user:password@, no query, no fragment. */
void http_redact_url(const char *url, char *buf, size_t len)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    const char *path = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(path - host));
    const char *end = path + strcspn(path, "?#");

    snprintf(buf, len, "%.*s%.*s%s", (int)(host - url), url, (int)(end - (at ? at + 1 : host)),
             at ? at + 1 : host, *end ? "?…" : "");
}

static int http_init(struct hcheck *c, struct agentd_err *err)
{
    struct http_priv *p = calloc(1, sizeof(*p));
    const struct agentd_list *l = &c->cf->expect_status;
    char url[256];
    size_t off = 0;

    if (!p)
        return -ENOMEM;
    if (l->n == 0) {
        p->ranges[0] = (struct range){200, 399};
        p->nranges = 1;
        snprintf(p->expect, sizeof(p->expect), "200-399");
    }
    for (size_t i = 0; i < l->n && i < HTTP_MAX_RANGES; i++) {
        const char *s = *LIST_AT(*l, char *, i);

        if (http_status_range_parse(s, &p->ranges[i].lo, &p->ranges[i].hi) < 0) {
            free(p);
            return agentd_err_set(err, "check '%s': expect_status '%s' is not a status",
                                  c->cf->name, s);
        }
        p->nranges++;
        if (off < sizeof(p->expect))
            off +=
                (size_t)snprintf(p->expect + off, sizeof(p->expect) - off, "%s%s", i ? "," : "", s);
    }
    c->priv = p;
    http_redact_url(c->cf->http, url, sizeof(url));
    snprintf(c->desc, sizeof(c->desc), "http GET %s", url);
    return 0;
}

static void http_free(struct hcheck *c)
{
    if (c->priv)
        http_cancel(c);
    free(c->priv);
}

const struct check_type check_http = {
    .name = "http",
    .init = http_init,
    .run = http_run,
    .cancel = http_cancel,
    .free = http_free,
};

/* Answers requests from cached, pre-rendered responses. A request never
 * waits on a check and never renders JSON: the health bodies are rendered
 * at most once per second (the Date header's resolution) or when a check's
 * status changes, and every connection shares the same immutable bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "health-int.h"

#define HEALTH_CT  "application/health+json"
#define METRICS_CT "text/plain; version=0.0.4; charset=utf-8"
#define BODY_MAX   (1024 * 1024)

enum slot {
    SLOT_TERSE,
    SLOT_VERBOSE,
    SLOT_LIVEZ,
    SLOT_400,
    SLOT_403,
    SLOT_404,
    SLOT_405,
    SLOT_414,
    SLOT_431,
    SLOT_500,
    SLOT_MAX,
};

enum code_idx { C200, C400, C403, C404, C405, C414, C431, C500, CFAIL, CMAX };

/* A path of path_checks: its own terse and verbose bodies. */
struct pslot {
    struct response *r[2];
    time_t sec[2];
    uint64_t gen[2];
};

struct serve {
    struct pslot *pslot; /* one per path_checks entry */
    size_t npslot;
    struct response *slot[SLOT_MAX];
    time_t slot_sec[SLOT_MAX];
    uint64_t slot_gen[SLOT_MAX];
    uint64_t gen;
    time_t date_sec;
    char date[30];
    struct agentd_metric *m_code[CMAX];
    struct agentd_metric *m_denied, *m_stat[HSRV_STAT_MAX];
};

struct collect {
    struct agentd_health_info *v;
    size_t n, cap;
    bool oom;
    const char *only; /* path_checks spec, or NULL for every check */
};

static void collect_one(const struct agentd_health_info *info, void *ud)
{
    struct collect *c = ud;

    if (c->only && !path_checks_has(c->only, info->name))
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct agentd_health_info *v = realloc(c->v, cap * sizeof(*v));

        if (!v) {
            c->oom = true;
            return;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = *info;
}

/* A path's own overall status, by the registry's rule; a listed check that
 * is not registered (a typo, or a plugin not started) counts as failing. */
static enum agentd_health_status subset_overall(struct collect *col)
{
    enum agentd_health_status overall = AGENTD_HEALTH_PASS;
    const char *p = col->only;

    while (*p) {
        size_t n;
        while (*p == ',' || *p == ' ')
            p++;
        for (n = 0; p[n] && p[n] != ',' && p[n] != ' '; n++)
            ;
        if (!n)
            break;
        bool found = false;
        for (size_t i = 0; i < col->n; i++)
            if (strlen(col->v[i].name) == n && memcmp(col->v[i].name, p, n) == 0)
                found = true;
        if (!found)
            return AGENTD_HEALTH_FAIL;
        p += n;
    }
    for (size_t i = 0; i < col->n; i++) {
        if (col->v[i].status == AGENTD_HEALTH_FAIL && col->v[i].critical)
            return AGENTD_HEALTH_FAIL;
        if (col->v[i].status != AGENTD_HEALTH_PASS)
            overall = AGENTD_HEALTH_WARN;
    }
    return overall;
}

static struct response *render_health(struct health *h, bool verbose, const char *date,
                                      const char *only)
{
    struct collect col = {.only = only};
    struct body_state st = {0};
    struct response *r = NULL;
    struct sbuf b;

    /* The registry's strings are borrowed until we return to the loop, which
     * is after the body is rendered. */
    agentd_health_foreach(h->ctx, collect_one, &col);
    st.overall = only ? subset_overall(&col) : agentd_health_overall(h->ctx);
    st.draining = agentd_health_draining(h->ctx);
    st.draining_reason = h->draining_reason;
    st.checks = col.v;
    st.n = col.n;
    sbuf_init(&b, BODY_MAX);
    if (!col.oom && body_render(&b, &st, verbose) == 0)
        r = response_new(body_http_status(&st, (int)h->cf->fail_status), HEALTH_CT, date, "", b.p,
                         b.len);
    sbuf_free(&b);
    free(col.v);
    return r;
}

static struct response *render_slot(struct health *h, enum slot s, const char *date)
{
    static const struct {
        int status;
        const char *msg;
    } err[] = {
        [SLOT_400] = {400, "bad request\n"},
        [SLOT_403] = {403, "forbidden\n"},
        [SLOT_404] = {404, "not found\n"},
        [SLOT_405] = {405, "method not allowed\n"},
        [SLOT_414] = {414, "request target too long\n"},
        [SLOT_431] = {431, "request headers too large\n"},
        [SLOT_500] = {500, "internal error\n"},
    };
    static const char livez[] = "{\"status\":\"pass\"}\n";

    switch (s) {
    case SLOT_TERSE:
        return render_health(h, false, date, NULL);
    case SLOT_VERBOSE:
        return render_health(h, true, date, NULL);
    case SLOT_LIVEZ:
        return response_new(200, HEALTH_CT, date, "", livez, sizeof(livez) - 1);
    default:
        return response_new(err[s].status, "text/plain; charset=utf-8", date,
                            s == SLOT_405 ? "Allow: GET, HEAD\r\n" : "", err[s].msg,
                            strlen(err[s].msg));
    }
}

static time_t refresh_date(struct serve *sv)
{
    time_t now = time(NULL);

    if (now != sv->date_sec) {
        sv->date_sec = now;
        http_date(now, sv->date);
    }
    return now;
}

/* The slot's response, referenced for the caller; NULL only when memory is
 * out (the connection is then closed). Health bodies are re-rendered when a
 * check reported since (gen) or the second changed (the Date header). */
static struct response *get_slot(struct health *h, enum slot s)
{
    struct serve *sv = h->serve;
    time_t now = refresh_date(sv);
    struct response *r;

    if (sv->slot[s] && sv->slot_sec[s] == now && (s > SLOT_VERBOSE || sv->slot_gen[s] == sv->gen))
        return response_ref(sv->slot[s]);
    r = render_slot(h, s, sv->date);
    if (!r)
        return NULL;
    response_unref(sv->slot[s]);
    sv->slot[s] = r;
    sv->slot_sec[s] = now;
    sv->slot_gen[s] = sv->gen;
    return response_ref(r);
}

/* A path_checks path's body, cached like the main one. */
static struct response *get_path_slot(struct health *h, size_t idx, bool verbose)
{
    struct serve *sv = h->serve;
    size_t n = h->cf->path_checks.n;
    time_t now = refresh_date(sv);
    struct response *r;

    if (sv->npslot != n) { /* a reload changed the map */
        for (size_t i = 0; i < sv->npslot; i++) {
            response_unref(sv->pslot[i].r[0]);
            response_unref(sv->pslot[i].r[1]);
        }
        free(sv->pslot);
        sv->npslot = 0;
        sv->pslot = calloc(n, sizeof(*sv->pslot));
        if (!sv->pslot)
            return NULL;
        sv->npslot = n;
    }
    struct pslot *ps = &sv->pslot[idx];
    if (ps->r[verbose] && ps->sec[verbose] == now && ps->gen[verbose] == sv->gen)
        return response_ref(ps->r[verbose]);
    r = render_health(h, verbose, sv->date, h->cf->path_checks.values[idx]);
    if (!r)
        return NULL;
    response_unref(ps->r[verbose]);
    ps->r[verbose] = r;
    ps->sec[verbose] = now;
    ps->gen[verbose] = sv->gen;
    return response_ref(r);
}

static void count_code(struct health *h, int status)
{
    struct serve *sv = h->serve;
    enum code_idx i;

    switch (status) {
    case 200:
        i = C200;
        break;
    case 400:
        i = C400;
        break;
    case 403:
        i = C403;
        break;
    case 404:
        i = C404;
        break;
    case 405:
        i = C405;
        break;
    case 414:
        i = C414;
        break;
    case 431:
        i = C431;
        break;
    case 500:
        i = C500;
        break;
    default:
        i = CFAIL;
        break;
    }
    agentd_metric_add(sv->m_code[i], 1);
}

static void on_request(void *ud, const struct request *req, bool allowed, bool detail,
                       struct hsrv_reply *reply)
{
    struct health *h = ud;
    struct route_result rt;
    enum slot s;

    route_match(h->paths, h->cf->paths.n, req->method, req->url, req->url_len, &rt);
    reply->head_only = rt.head;
    if (!allowed) {
        agentd_metric_add(h->serve->m_denied, 1);
        reply->resp = get_slot(h, SLOT_403);
        reply->close = true;
        goto out;
    }
    if (rt.path && (rt.kind == ROUTE_HEALTH || rt.kind == ROUTE_NOT_FOUND)) {
        int idx = path_checks_find(h->cf, rt.path, rt.path_len);
        if (idx >= 0) {
            reply->resp = get_path_slot(h, (size_t)idx, rt.verbose);
            goto out;
        }
    }
    switch (rt.kind) {
    case ROUTE_HEALTH:
    case ROUTE_READYZ:
        /* Check outputs (what an exec check printed, hosts, paths) only to
         * detail_allow; the load balancer needs the status alone. */
        s = rt.verbose && detail ? SLOT_VERBOSE : SLOT_TERSE;
        break;
    case ROUTE_LIVEZ:
        s = SLOT_LIVEZ;
        break;
    case ROUTE_METRICS: {
        size_t len = 0;
        char *text;

        if (!detail) {
            agentd_metric_add(h->serve->m_denied, 1);
            s = SLOT_403;
            reply->close = true;
            break;
        }
        text = agentd_metrics_render(h->ctx, &len);

        if (!text) {
            s = SLOT_500;
            break;
        }
        refresh_date(h->serve);
        reply->resp = response_new(200, METRICS_CT, h->serve->date, "", text, len);
        free(text);
        if (!reply->resp)
            reply->close = true;
        goto out;
    }
    case ROUTE_NOT_FOUND:
        s = SLOT_404;
        break;
    case ROUTE_BAD_METHOD:
        /* Whatever body a POST carries is not worth reading: answer, close. */
        s = SLOT_405;
        reply->close = true;
        reply->head_only = false;
        break;
    default:
        s = SLOT_400;
        reply->close = true;
        break;
    }
    reply->resp = get_slot(h, s);
out:
    if (reply->resp)
        count_code(h, reply->resp->status);
    else
        reply->close = true;
}

static void on_error(void *ud, int status, struct hsrv_reply *reply)
{
    struct health *h = ud;
    enum slot s = status == 414 ? SLOT_414 : status == 431 ? SLOT_431 : SLOT_400;

    reply->resp = get_slot(h, s);
    reply->close = true;
    if (reply->resp)
        count_code(h, status);
}

static void on_stat(void *ud, enum hsrv_stat which)
{
    struct health *h = ud;

    agentd_metric_add(h->serve->m_stat[which], 1);
}

const struct hsrv_handler serve_handler_template = {
    .request = on_request,
    .error = on_error,
    .stat = on_stat,
};

int serve_new(struct health *h)
{
    const char *codes[CMAX] = {"200", "400", "403", "404", "405", "414", "431", "500", NULL};
    char fail_code[16];
    static const char *const stat_names[HSRV_STAT_MAX] = {
        "agentd_health_connections_total", "agentd_health_connections_rejected_total",
        "agentd_health_timeouts_total", "agentd_health_bad_requests_total"};
    static const char *const stat_help[HSRV_STAT_MAX] = {
        "Connections accepted by the health endpoint",
        "Connections closed at once because max_connections was reached",
        "Connections closed because a client was idle or too slow",
        "Malformed or oversized requests (400, 414, 431)"};
    struct serve *sv = calloc(1, sizeof(*sv));

    if (!sv)
        return -ENOMEM;
    /* fail_status may equal another code: the host then hands back the same
     * counter for both. */
    snprintf(fail_code, sizeof(fail_code), "%d", (int)h->cf->fail_status);
    codes[CFAIL] = fail_code;
    for (int i = 0; i < CMAX; i++) {
        const char *labels[] = {"code", codes[i], NULL};

        sv->m_code[i] =
            agentd_metric_counter(h->ctx, "agentd_health_http_requests_total",
                                  "Requests answered by the health endpoint, by status", labels);
    }
    sv->m_denied = agentd_metric_counter(h->ctx, "agentd_health_denied_total",
                                         "Requests refused (403) for a source outside allow", NULL);
    for (int i = 0; i < HSRV_STAT_MAX; i++)
        sv->m_stat[i] = agentd_metric_counter(h->ctx, stat_names[i], stat_help[i], NULL);
    h->serve = sv;
    return 0;
}

void serve_free(struct health *h)
{
    if (!h->serve)
        return;
    for (int i = 0; i < SLOT_MAX; i++)
        response_unref(h->serve->slot[i]);
    for (size_t i = 0; i < h->serve->npslot; i++) {
        response_unref(h->serve->pslot[i].r[0]);
        response_unref(h->serve->pslot[i].r[1]);
    }
    free(h->serve->pslot);
    free(h->serve);
    h->serve = NULL;
}

void serve_invalidate(struct health *h)
{
    if (h->serve)
        h->serve->gen++;
}

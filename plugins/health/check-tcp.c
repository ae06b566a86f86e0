/* tcp: resolve with libuv's getaddrinfo, then connect to each address in
 * turn until one accepts. A run's handles live in an attempt that outlives
 * an abandoned (timed out or stopped) run until libuv is done with them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health-int.h"

struct attempt {
    struct hcheck *c; /* NULL once abandoned */
    struct health *h;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t conn;
    struct addrinfo *ai, *next;
    bool gai_pending, tcp_open;
    int last_err;
};

struct tcp_priv {
    char *host, *port;
    struct attempt *cur;
};

static void attempt_maybe_free(struct attempt *a)
{
    struct health *h = a->h;

    if (a->gai_pending || a->tcp_open)
        return;
    if (a->ai)
        uv_freeaddrinfo(a->ai);
    if (a->c)
        ((struct tcp_priv *)a->c->priv)->cur = NULL;
    free(a);
    health_pending_done(h);
}

static void connect_next(struct attempt *a);

static void on_tcp_closed(uv_handle_t *handle)
{
    struct attempt *a = handle->data;

    a->tcp_open = false;
    if (a->c && a->next) {
        connect_next(a);
        return;
    }
    if (a->c && a->last_err) {
        struct hcheck *c = a->c;

        ((struct tcp_priv *)c->priv)->cur = NULL;
        a->c = NULL;
        check_done(c, AGENTD_HEALTH_FAIL, "%s: %s", c->desc, uv_strerror(a->last_err));
    }
    attempt_maybe_free(a);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct attempt *a = req->data;

    if (a->c && status == 0) {
        struct hcheck *c = a->c;

        ((struct tcp_priv *)c->priv)->cur = NULL;
        a->c = NULL;
        a->next = NULL;
        check_done(c, AGENTD_HEALTH_PASS, "%s: connected", c->desc);
    } else if (status < 0) {
        a->last_err = status;
    }
    if (!uv_is_closing((uv_handle_t *)&a->tcp))
        uv_close((uv_handle_t *)&a->tcp, on_tcp_closed);
}

static void connect_next(struct attempt *a)
{
    struct addrinfo *ai = a->next;
    int r;

    a->next = ai->ai_next;
    uv_tcp_init(agentd_loop(a->h->ctx), &a->tcp);
    a->tcp.data = a;
    a->tcp_open = true;
    a->conn.data = a;
    r = uv_tcp_connect(&a->conn, &a->tcp, ai->ai_addr, on_connect);
    if (r < 0) {
        a->last_err = r;
        uv_close((uv_handle_t *)&a->tcp, on_tcp_closed);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct attempt *a = req->data;

    a->gai_pending = false;
    a->ai = res;
    if (a->c && status < 0) {
        struct hcheck *c = a->c;
        struct tcp_priv *p = c->priv;

        p->cur = NULL;
        a->c = NULL;
        check_done(c, AGENTD_HEALTH_FAIL, "tcp resolve %s: %s", p->host, uv_strerror(status));
    } else if (a->c && res) {
        a->next = res;
        connect_next(a);
        return;
    }
    attempt_maybe_free(a);
}

static void tcp_run(struct hcheck *c)
{
    struct tcp_priv *p = c->priv;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
    struct attempt *a = calloc(1, sizeof(*a));
    int r;

    if (!a) {
        check_done(c, AGENTD_HEALTH_FAIL, "%s: out of memory", c->desc);
        return;
    }
    a->c = c;
    a->h = c->h;
    a->gai.data = a;
    c->h->pending++;
    p->cur = a;
    a->gai_pending = true;
    r = uv_getaddrinfo(agentd_loop(c->h->ctx), &a->gai, on_resolved, p->host, p->port, &hints);
    if (r < 0) {
        a->gai_pending = false;
        p->cur = NULL;
        a->c = NULL;
        attempt_maybe_free(a);
        check_done(c, AGENTD_HEALTH_FAIL, "tcp resolve %s: %s", p->host, uv_strerror(r));
    }
}

static void tcp_cancel(struct hcheck *c)
{
    struct tcp_priv *p = c->priv;
    struct attempt *a = p->cur;

    if (!a)
        return;
    p->cur = NULL;
    a->c = NULL;
    a->next = NULL;
    if (a->gai_pending)
        uv_cancel((uv_req_t *)&a->gai);
    if (a->tcp_open && !uv_is_closing((uv_handle_t *)&a->tcp))
        uv_close((uv_handle_t *)&a->tcp, on_tcp_closed);
}

static int tcp_init(struct hcheck *c, struct agentd_err *err)
{
    struct tcp_priv *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    if (agentd_hostport_split(c->cf->tcp, &p->host, &p->port) < 0) {
        free(p);
        return agentd_err_set(err, "check '%s': tcp '%s' is not host:port", c->cf->name,
                              c->cf->tcp);
    }
    c->priv = p;
    snprintf(c->desc, sizeof(c->desc), "tcp connect %s", c->cf->tcp);
    return 0;
}

static void tcp_free(struct hcheck *c)
{
    struct tcp_priv *p = c->priv;

    if (!p)
        return;
    if (p->cur)
        p->cur->c = NULL;
    free(p->host);
    free(p->port);
    free(p);
}

const struct check_type check_tcp = {
    .name = "tcp",
    .init = tcp_init,
    .run = tcp_run,
    .cancel = tcp_cancel,
    .free = tcp_free,
};

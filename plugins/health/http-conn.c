/* The HTTP server's connections. Each has one fixed read buffer and at most
 * one response in flight: while a response is being written the connection
 * stops reading, so a pipelining client that does not read its answers
 * stalls itself instead of growing our memory. One coarse timer per server
 * (conn_sweep) enforces every deadline (request, idle, write, linger), so
 * the request path never touches the timer heap. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http-server-int.h"

static void conn_on_close(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct hsrv *s = c->srv;

    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->allowed_slot)
        s->nallowed--;
    if (c->refused_slot)
        s->nrefused--;
    response_unref(c->wresp);
    free(c);
    if (s->nconns == 0 && s->sweep_on && !s->closing) {
        uv_timer_stop(&s->sweep);
        s->sweep_on = false;
    }
    hsrv_handle_closed(s);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, conn_on_close);
}

static void conn_process(struct conn *c);
static void conn_read_start(struct conn *c);

/* After the last response: send FIN, then read and drop what the client still
 * sends for a moment, so our answer (a 431, say) is not destroyed by the RST a
 * close with unread data would cause. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;

    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    c->deadline = uv_now(c->srv->loop) + LINGER_MS;
    conn_read_start(c);
}

static void conn_finish(struct conn *c)
{
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    response_unref(c->wresp);
    c->wresp = NULL;
    c->write_pending = false;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after) {
        conn_finish(c);
        return;
    }
    c->deadline = uv_now(c->srv->loop) + c->srv->conf.idle_timeout_ms;
    conn_process(c);
}

static void conn_send(struct conn *c, struct hsrv_reply *reply)
{
    struct response *r = reply->resp;
    uv_buf_t bufs[3];
    unsigned nb = 0;
    size_t total = 0;
    int n;

    if (reply->close || !c->req.keep_alive)
        c->close_after = true;
    if (!r) {
        conn_finish(c);
        return;
    }
    if (!c->close_after && !c->req.http10) {
        /* The common case (HTTP/1.1 keep-alive) needs no Connection header:
         * the response is one contiguous buffer and goes out with write(). */
        bufs[nb++] = uv_buf_init(r->data, (unsigned)(reply->head_only ? r->head_len + 2 : r->len));
    } else {
        bufs[nb++] = uv_buf_init(r->data, (unsigned)r->head_len);
        if (c->close_after)
            bufs[nb++] = uv_buf_init((char *)"Connection: close\r\n", 19);
        else
            bufs[nb++] = uv_buf_init((char *)"Connection: keep-alive\r\n", 24);
        bufs[nb++] = uv_buf_init(r->data + r->head_len,
                                 reply->head_only ? 2 : (unsigned)(r->len - r->head_len));
    }
    for (unsigned i = 0; i < nb; i++)
        total += bufs[i].len;

    n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
    if (n == (int)total) {
        response_unref(r);
        if (c->close_after)
            conn_finish(c);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        response_unref(r);
        conn_close(c);
        return;
    }
    /* Partly written: queue the rest and stop reading until it is out. */
    if (n > 0) {
        size_t skip = (size_t)n;
        unsigned i = 0;

        while (skip >= bufs[i].len) {
            skip -= bufs[i].len;
            i++;
        }
        bufs[i].base += skip;
        bufs[i].len -= skip;
        memmove(bufs, bufs + i, (nb - i) * sizeof(bufs[0]));
        nb -= i;
    }
    c->wresp = r;
    c->wreq.data = c;
    c->write_pending = true;
    c->deadline = uv_now(c->srv->loop) + c->srv->conf.idle_timeout_ms;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, nb, on_write) < 0) {
        c->write_pending = false;
        c->wresp = NULL;
        response_unref(r);
        conn_close(c);
    }
}

/* The request-line deadline; 0 in the conf means the request timeout. */
static uint64_t line_ms(const struct hsrv_conf *cf)
{
    return cf->line_timeout_ms && cf->line_timeout_ms < cf->request_timeout_ms
               ? cf->line_timeout_ms
               : cf->request_timeout_ms;
}

/* A request's clock: its line must arrive within line_timeout of its first
 * byte and the whole of it within request_timeout. A refused peer keeps the
 * short deadline it got at accept. */
static void request_deadline(struct conn *c, bool was_started, bool was_line)
{
    const struct hsrv_conf *cf = &c->srv->conf;

    if (c->refused_slot)
        return;
    if (!was_started && c->req.started) {
        c->started = uv_now(c->srv->loop);
        c->deadline = c->started + line_ms(cf);
    }
    if (!was_line && c->req.line_done)
        c->deadline = c->started + cf->request_timeout_ms;
}

static void conn_process(struct conn *c)
{
    struct hsrv *s = c->srv;

    while (!c->write_pending && !c->close_after && !c->closing && c->rpos < c->rlen) {
        enum request_event ev;
        bool was_started = c->req.started, was_line = c->req.line_done;
        size_t n = request_feed(&c->req, c->buf + c->rpos, c->rlen - c->rpos, &ev);

        c->rpos += n;
        request_deadline(c, was_started, was_line);
        if (ev == REQUEST_DONE) {
            struct hsrv_reply reply = {0};

            s->h.request(s->h.ud, &c->req, c->allowed, c->detail, &reply);
            conn_send(c, &reply);
            request_next(&c->req);
            if (!c->write_pending)
                c->deadline = uv_now(s->loop) + s->conf.idle_timeout_ms;
        } else if (ev == REQUEST_ERROR) {
            struct hsrv_reply reply = {0};

            hsrv_count(s, HSRV_STAT_BAD);
            s->h.error(s->h.ud, c->req.error_status, &reply);
            reply.close = true;
            c->rpos = c->rlen;
            conn_send(c, &reply);
        }
    }
    if (c->closing)
        return;
    if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    } else if (c->rpos > 0) {
        memmove(c->buf, c->buf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->write_pending || c->close_after) {
        if (c->reading && !c->lingering) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
    } else {
        conn_read_start(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;

    if (c->lingering)
        *buf = uv_buf_init(c->buf, CONN_BUF);
    else
        *buf = uv_buf_init(c->buf + c->rlen, (unsigned)(CONN_BUF - c->rlen));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;

    if (c->closing)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->lingering) {
        c->discarded += (size_t)nread;
        if (c->discarded > LINGER_MAX_BYTES)
            conn_close(c);
        return;
    }
    c->rlen += (size_t)nread;
    conn_process(c);
}

static void conn_read_start(struct conn *c)
{
    if (c->reading || c->closing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

/* ---------------------------------------------------------------------- */

void conn_sweep(uv_timer_t *t)
{
    struct hsrv *s = t->data;
    uint64_t now = uv_now(s->loop);

    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closing && now >= c->deadline) {
            if (!c->lingering)
                hsrv_count(s, HSRV_STAT_TIMEOUT);
            conn_close(c);
        }
    }
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

/* Whether the new connection may take a slot. The decision is made here, at
 * accept, from the peer's address alone: a source outside `allow` never
 * takes one of max_connections, and no single source may take more than
 * max_per_source of them, so neither can starve the load balancer. */
static bool admit(struct hsrv *s, struct conn *c)
{
    unsigned same = 0;

    if (!c->allowed) {
        if (s->nrefused >= REFUSED_MAX)
            return false;
        c->refused_slot = true;
        s->nrefused++;
        return true;
    }
    if (s->nallowed >= s->conf.max_connections)
        return false;
    if (c->has_peer && s->conf.max_per_source) {
        for (struct conn *o = s->conns; o; o = o->next)
            if (o != c && o->allowed_slot && !o->closing && same_addr(&o->peer, &c->peer))
                same++;
        if (same >= s->conf.max_per_source)
            return false;
    }
    c->allowed_slot = true;
    s->nallowed++;
    return true;
}

int conn_accept(struct hsrv *s, uv_stream_t *server)
{
    int sslen = sizeof(struct sockaddr_storage);
    struct conn *c;

    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    s->open_handles++;
    s->nconns++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    request_init(&c->req, &s->conf.limits);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return 0;
    }
    hsrv_count(s, HSRV_STAT_ACCEPTED);
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &sslen) == 0) {
        c->has_peer = true;
        c->allowed = hsrv_addr_allowed(s->conf.allow, s->conf.nallow, (struct sockaddr *)&c->peer);
        c->detail = s->conf.ndetail > 0 && hsrv_addr_allowed(s->conf.detail_allow, s->conf.ndetail,
                                                             (struct sockaddr *)&c->peer);
    }
    if (!admit(s, c)) {
        hsrv_count(s, HSRV_STAT_REJECTED);
        conn_close(c);
        return 0;
    }
    /* A fresh connection must send its request line soon: a peer that
     * connects and says nothing holds a slot only briefly. */
    c->deadline = uv_now(s->loop) + (c->refused_slot ? REFUSED_MS : line_ms(&s->conf));
    if (!s->sweep_on) {
        uv_timer_start(&s->sweep, conn_sweep, SWEEP_MS, SWEEP_MS);
        s->sweep_on = true;
    }
    conn_read_start(c);
    return 0;
}

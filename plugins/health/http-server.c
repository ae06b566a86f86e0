/* The HTTP server: libuv listeners and connections. Each connection has one
 * fixed read buffer and at most one response in flight: while a response is
 * being written the connection stops reading, so a pipelining client that
 * does not read its answers stalls itself instead of growing our memory.
 * One coarse timer per server enforces every deadline (request, idle, write,
 * linger) so the request path never touches the timer heap. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "health-int.h"

#define CONN_BUF         4096
#define MAX_LISTENERS    8
#define LINGER_MS        2000
#define LINGER_MAX_BYTES (1024 * 1024)
#define SWEEP_MS         500

struct listener {
    uv_tcp_t tcp;
    struct hsrv *srv;
};

struct conn {
    uv_tcp_t tcp;
    struct hsrv *srv;
    struct conn *prev, *next;
    uint64_t deadline; /* uv_now() ms after which the sweep closes it */
    bool allowed, reading, write_pending, close_after, lingering, closing;
    struct response *wresp; /* held while wreq is in flight */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    size_t rpos, rlen, discarded;
    struct request req;
    char buf[CONN_BUF];
};

struct hsrv {
    uv_loop_t *loop;
    struct hsrv_conf conf;
    struct hsrv_handler h;
    struct listener *listeners[MAX_LISTENERS];
    size_t nlisteners;
    struct conn *conns;
    unsigned nconns;
    unsigned open_handles; /* listeners + conns + sweep timer, for close */
    uv_timer_t sweep;
    bool sweep_on, closing;
    void (*done)(void *ud);
    void *done_ud;
};

static void count_stat(struct hsrv *s, enum hsrv_stat w)
{
    if (s->h.stat)
        s->h.stat(s->h.ud, w);
}

static void handle_closed(struct hsrv *s)
{
    if (--s->open_handles == 0 && s->closing) {
        void (*done)(void *) = s->done;
        void *ud = s->done_ud;

        free(s);
        if (done)
            done(ud);
    }
}

bool hsrv_addr_allowed(const struct agentd_cidr *allow, size_t n, const struct sockaddr *sa)
{
    const uint8_t *addr;
    int family;

    if (n == 0)
        return true;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            addr = a6->s6_addr + 12;
        } else {
            family = AF_INET6;
            addr = a6->s6_addr;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const struct agentd_cidr *c = &allow[i];
        unsigned bits = c->prefix, full = bits / 8, rest = bits % 8;

        if (c->family != family || bits > (family == AF_INET ? 32u : 128u))
            continue;
        if (memcmp(addr, c->addr, full) != 0)
            continue;
        if (rest && ((addr[full] ^ c->addr[full]) & (uint8_t)(0xff << (8 - rest))))
            continue;
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------------- */

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
    response_unref(c->wresp);
    free(c);
    if (s->nconns == 0 && s->sweep_on && !s->closing) {
        uv_timer_stop(&s->sweep);
        s->sweep_on = false;
    }
    handle_closed(s);
}

static void conn_close(struct conn *c)
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
    bufs[nb++] = uv_buf_init(r->data, (unsigned)r->head_len);
    if (c->close_after)
        bufs[nb++] = uv_buf_init((char *)"Connection: close\r\n", 19);
    else if (c->req.http10)
        bufs[nb++] = uv_buf_init((char *)"Connection: keep-alive\r\n", 24);
    bufs[nb++] =
        uv_buf_init(r->data + r->head_len, reply->head_only ? 2 : (unsigned)(r->len - r->head_len));
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

static void conn_process(struct conn *c)
{
    struct hsrv *s = c->srv;

    while (!c->write_pending && !c->close_after && !c->closing && c->rpos < c->rlen) {
        enum request_event ev;
        bool was_started = c->req.started;
        size_t n = request_feed(&c->req, c->buf + c->rpos, c->rlen - c->rpos, &ev);

        c->rpos += n;
        if (!was_started && c->req.started)
            c->deadline = uv_now(s->loop) + s->conf.request_timeout_ms;
        if (ev == REQUEST_DONE) {
            struct hsrv_reply reply = {0};

            s->h.request(s->h.ud, &c->req, c->allowed, &reply);
            conn_send(c, &reply);
            request_next(&c->req);
            if (!c->write_pending)
                c->deadline = uv_now(s->loop) + s->conf.idle_timeout_ms;
        } else if (ev == REQUEST_ERROR) {
            struct hsrv_reply reply = {0};

            count_stat(s, HSRV_STAT_BAD);
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

static void on_sweep(uv_timer_t *t)
{
    struct hsrv *s = t->data;
    uint64_t now = uv_now(s->loop);

    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closing && now >= c->deadline) {
            if (!c->lingering)
                count_stat(s, HSRV_STAT_TIMEOUT);
            conn_close(c);
        }
    }
}

static void on_rejected_close(uv_handle_t *h)
{
    struct hsrv *s = h->data;

    free(h);
    handle_closed(s);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    struct hsrv *s = l->srv;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct conn *c;

    if (status < 0 || s->closing)
        return;
    if (s->nconns >= s->conf.max_connections) {
        /* Accept and close at once: the backlog must not fill with clients
         * we will never serve, and the close tells them so. */
        uv_tcp_t *t = malloc(sizeof(*t));

        if (!t)
            return;
        uv_tcp_init(s->loop, t);
        t->data = s;
        s->open_handles++;
        uv_accept(server, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, on_rejected_close);
        count_stat(s, HSRV_STAT_REJECTED);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
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
        return;
    }
    count_stat(s, HSRV_STAT_ACCEPTED);
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0)
        c->allowed = hsrv_addr_allowed(s->conf.allow, s->conf.nallow, (struct sockaddr *)&ss);
    /* A fresh connection must send its request within the request timeout. */
    c->deadline = uv_now(s->loop) + s->conf.request_timeout_ms;
    if (!s->sweep_on) {
        uv_timer_start(&s->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        s->sweep_on = true;
    }
    conn_read_start(c);
}

int hsrv_new(uv_loop_t *loop, const struct hsrv_conf *conf, const struct hsrv_handler *h,
             struct hsrv **ret)
{
    struct hsrv *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->conf = *conf;
    if (s->conf.limits.max_url > REQUEST_URL_MAX)
        s->conf.limits.max_url = REQUEST_URL_MAX;
    s->h = *h;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    s->open_handles = 1;
    *ret = s;
    return 0;
}

static void on_listener_close(uv_handle_t *h)
{
    struct listener *l = h->data;
    struct hsrv *s = l->srv;

    free(l);
    handle_closed(s);
}

int hsrv_listen(struct hsrv *s, const char *hostport)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
    char host[64];
    const char *colon, *h = hostport;
    size_t hlen;
    unsigned flags = 0;
    long port;
    char *end;
    struct listener *l;
    int r;

    if (s->nlisteners >= MAX_LISTENERS)
        return -E2BIG;
    colon = strrchr(hostport, ':');
    if (!colon)
        return -EINVAL;
    hlen = (size_t)(colon - hostport);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
        return -EINVAL;
    if (uv_ip4_addr(host, (int)port, &addr.in) == 0) {
        /* nothing */
    } else if (uv_ip6_addr(host, (int)port, &addr.in6) == 0) {
        flags = UV_TCP_IPV6ONLY;
    } else {
        return -EINVAL;
    }
    l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->srv = s;
    uv_tcp_init(s->loop, &l->tcp);
    l->tcp.data = l;
    s->open_handles++;
    r = uv_tcp_bind(&l->tcp, &addr.sa, flags);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    if (r < 0) {
        uv_close((uv_handle_t *)&l->tcp, on_listener_close);
        return r;
    }
    s->listeners[s->nlisteners++] = l;
    return 0;
}

int hsrv_port(struct hsrv *s, size_t n)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (n >= s->nlisteners ||
        uv_tcp_getsockname(&s->listeners[n]->tcp, (struct sockaddr *)&ss, &len) < 0)
        return -ENOENT;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

unsigned hsrv_connections(const struct hsrv *s)
{
    return s->nconns;
}

static void on_sweep_close(uv_handle_t *h)
{
    handle_closed(h->data);
}

void hsrv_close(struct hsrv *s, void (*done)(void *ud), void *ud)
{
    s->closing = true;
    s->done = done;
    s->done_ud = ud;
    for (size_t i = 0; i < s->nlisteners; i++)
        uv_close((uv_handle_t *)&s->listeners[i]->tcp, on_listener_close);
    s->nlisteners = 0;
    for (struct conn *c = s->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&s->sweep, on_sweep_close);
}

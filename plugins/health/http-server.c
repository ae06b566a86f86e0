/* The HTTP server's listeners: bind, accept (or turn away past
 * max_connections), the allow list, and closing everything. The
 * connections themselves are in http-conn.c. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "http-server-int.h"

void hsrv_count(struct hsrv *s, enum hsrv_stat w)
{
    if (s->h.stat)
        s->h.stat(s->h.ud, w);
}

void hsrv_handle_closed(struct hsrv *s)
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

static void on_rejected_close(uv_handle_t *h)
{
    struct hsrv *s = h->data;

    free(h);
    hsrv_handle_closed(s);
}

/* Accepts and closes at once: the backlog must not fill with clients we will
 * never serve, and libuv stops watching a listener whose pending connection
 * is not accepted. */
static void reject(struct hsrv *s, uv_stream_t *server)
{
    uv_tcp_t *t = malloc(sizeof(*t));

    if (!t)
        return;
    uv_tcp_init(s->loop, t);
    t->data = s;
    s->open_handles++;
    uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_rejected_close);
    hsrv_count(s, HSRV_STAT_REJECTED);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    struct hsrv *s = l->srv;

    if (status < 0 || s->closing)
        return;
    /* No count of all connections here: those turned away a moment ago are
     * still closing (their close callbacks run on the next turn of the
     * loop), and counting them let a churning crowd of refused peers make
     * the load balancer's next connection look like one too many. admit()
     * caps what is held, by kind. */
    if (conn_accept(s, server) < 0)
        reject(s, server);
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
    hsrv_handle_closed(s);
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

void hsrv_update(struct hsrv *s, const struct hsrv_conf *conf)
{
    /* Connections point at s->conf.limits, so they see the new limits too. */
    s->conf = *conf;
    if (s->conf.limits.max_url > REQUEST_URL_MAX)
        s->conf.limits.max_url = REQUEST_URL_MAX;
}

unsigned hsrv_connections(const struct hsrv *s)
{
    return s->nconns;
}

static void on_sweep_close(uv_handle_t *h)
{
    hsrv_handle_closed(h->data);
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

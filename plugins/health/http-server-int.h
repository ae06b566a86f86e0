/* Internals shared by the HTTP server's listener side (http-server.c) and
 * its connection side (http-conn.c). */
#ifndef HTTP_SERVER_INT_H
#define HTTP_SERVER_INT_H

#include "health-int.h"

#define CONN_BUF         4096
#define MAX_LISTENERS    8
#define LINGER_MS        2000
#define LINGER_MAX_BYTES (1024 * 1024)
#define SWEEP_MS         500
/* Sources outside `allow` get their 403 only if they ask at once: at most
 * this many of their connections are held at a time, each for at most
 * REFUSED_MS, and they never count against max_connections. */
#define REFUSED_MAX 16
#define REFUSED_MS  1000

struct listener {
    uv_tcp_t tcp;
    struct hsrv *srv;
};

struct conn {
    uv_tcp_t tcp;
    struct hsrv *srv;
    struct conn *prev, *next;
    uint64_t deadline; /* uv_now() ms after which the sweep closes it */
    uint64_t started;  /* uv_now() ms of the current request's first byte */
    struct sockaddr_storage peer;
    bool has_peer;
    bool allowed, detail, refused_slot, allowed_slot, reading, write_pending, close_after,
        lingering, closing;
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
    unsigned nallowed, nrefused; /* conns holding an allowed or a refused slot */
    unsigned open_handles;       /* listeners + conns + sweep timer, for close */
    uv_timer_t sweep;
    bool sweep_on, closing;
    void (*done)(void *ud);
    void *done_ud;
};

/* http-server.c */
void hsrv_count(struct hsrv *s, enum hsrv_stat w);
/* One of the server's handles finished closing. */
void hsrv_handle_closed(struct hsrv *s);

/* http-conn.c */
/* Accepts a pending connection from server into a new conn and starts
 * reading. -ENOMEM leaves it pending for the caller to reject. */
int conn_accept(struct hsrv *s, uv_stream_t *server);
/* Closes connections past their deadline (the server's sweep timer). */
void conn_sweep(uv_timer_t *t);
void conn_close(struct conn *c);

#endif

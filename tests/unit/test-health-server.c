/* Unit tests of the health plugin's HTTP server (plugins/health/http-server.c)
 * over real loopback sockets: the server runs on this thread's loop, a
 * client thread talks to it with blocking sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/health/health-int.h"

struct fixture {
    uv_loop_t loop;
    uv_async_t done_async;
    struct hsrv *srv;
    int port;
    unsigned requests, denied, bad;
    void (*client)(struct fixture *f);
    int client_failed;
    char client_msg[256];
};

static void handle_request(void *ud, const struct request *req, bool allowed, bool detail,
                           struct hsrv_reply *reply)
{
    struct fixture *f = ud;

    f->requests++;
    if (!allowed) {
        f->denied++;
        reply->resp = response_new(403, "text/plain", NULL, "", "no\n", 3);
        reply->close = true;
        return;
    }
    /* The body echoes the target so pipelined answers can be matched. */
    reply->resp = response_new(200, "text/plain", NULL, "", req->url, req->url_len);
    reply->head_only = req->method == HTTP_HEAD;
}

static void handle_error(void *ud, int status, struct hsrv_reply *reply)
{
    struct fixture *f = ud;

    f->bad++;
    reply->resp = response_new(status, "text/plain", NULL, "", "bad\n", 4);
}

static int connect_to(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 10};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

/* Reads one response: returns its status, copies its body (by
 * Content-Length) into body; -1 on EOF or error. */
static int read_response(int fd, char *body, size_t body_cap)
{
    static char buf[65536];
    static size_t have;
    static int buf_fd = -1;
    char *end;
    int status;
    size_t clen = 0, hlen;
    const char *cl;

    if (buf_fd != fd) {
        buf_fd = fd;
        have = 0;
    }
    for (;;) {
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end)
            break;
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    hlen = (size_t)(end - buf) + 4;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return -1;
    cl = strcasestr(buf, "Content-Length: ");
    if (cl && cl < end)
        clen = strtoul(cl + 16, NULL, 10);
    if (strncmp(body, "HEAD", 4) == 0)
        clen = 0; /* the caller asked for a HEAD answer: no body follows */
    while (have < hlen + clen) {
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    if (body_cap) {
        size_t k = clen < body_cap - 1 ? clen : body_cap - 1;
        memcpy(body, buf + hlen, k);
        body[k] = '\0';
    }
    memmove(buf, buf + hlen + clen, have - hlen - clen);
    have -= hlen + clen;
    return status;
}

/* Whether the server closed: recv returns 0 (or a reset) within the timeout. */
static bool closed_by_server(int fd)
{
    char b[4096];

    for (;;) {
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond) && !f->client_failed) {                                                        \
            f->client_failed = __LINE__;                                                           \
            snprintf(f->client_msg, sizeof(f->client_msg), "%s", #cond);                           \
        }                                                                                          \
    } while (0)

static void *client_main(void *arg)
{
    struct fixture *f = arg;

    f->client(f);
    uv_async_send(&f->done_async);
    return NULL;
}

static void on_done(uv_async_t *a)
{
    struct fixture *f = a->data;

    hsrv_close(f->srv, NULL, NULL);
    uv_close((uv_handle_t *)&f->done_async, NULL);
}

static void run(void (*client)(struct fixture *), const struct hsrv_conf *conf, struct fixture *f)
{
    struct hsrv_handler h = {.request = handle_request, .error = handle_error, .ud = f};
    pthread_t t;

    memset(f, 0, sizeof(*f));
    f->client = client;
    uv_loop_init(&f->loop);
    uv_async_init(&f->loop, &f->done_async, on_done);
    f->done_async.data = f;
    assert_int_equal(hsrv_new(&f->loop, conf, &h, &f->srv), 0);
    assert_int_equal(hsrv_listen(f->srv, "127.0.0.1:0"), 0);
    f->port = hsrv_port(f->srv, 0);
    assert_true(f->port > 0);
    pthread_create(&t, NULL, client_main, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    if (f->client_failed)
        fail_msg("client check failed at line %d: %s", f->client_failed, f->client_msg);
}

static struct hsrv_conf base_conf(void)
{
    struct hsrv_conf c = {
        .limits = {.max_url = 2048, .max_header_bytes = 8192, .max_headers = 64},
        .max_connections = 16,
        .idle_timeout_ms = 5000,
        .request_timeout_ms = 5000,
    };
    return c;
}

static void client_keepalive(struct fixture *f)
{
    int fd = connect_to(f->port);
    char body[256];

    CHECK(fd >= 0);
    for (int i = 0; i < 1000; i++) {
        char req[128];
        int n = snprintf(req, sizeof(req), "GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        char want[32];

        send_all(fd, req, (size_t)n);
        body[0] = '\0';
        CHECK(read_response(fd, body, sizeof(body)) == 200);
        snprintf(want, sizeof(want), "/r%d", i);
        CHECK(strcmp(body, want) == 0);
    }
    close(fd);
}

static void test_keepalive(void **state)
{
    struct hsrv_conf c = base_conf();
    struct fixture f;

    run(client_keepalive, &c, &f);
    assert_int_equal(f.requests, 1000);
}

static void client_pipelined(struct fixture *f)
{
    int fd = connect_to(f->port);
    static char reqs[200 * 64];
    size_t off = 0;
    char body[256];

    for (int i = 0; i < 200; i++)
        off += (size_t)snprintf(reqs + off, sizeof(reqs) - off, "%s /p%d HTTP/1.1\r\n\r\n",
                                i % 2 ? "HEAD" : "GET", i);
    send_all(fd, reqs, off);
    for (int i = 0; i < 200; i++) {
        char want[32];

        snprintf(body, sizeof(body), "%s", i % 2 ? "HEAD" : "");
        CHECK(read_response(fd, body, sizeof(body)) == 200);
        snprintf(want, sizeof(want), "/p%d", i);
        if (i % 2 == 0)
            CHECK(strcmp(body, want) == 0);
    }
    /* Connection: close on the last one ends the connection. */
    send_all(fd, "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n", 41);
    body[0] = '\0';
    CHECK(read_response(fd, body, sizeof(body)) == 200);
    CHECK(closed_by_server(fd));
    close(fd);
}

static void test_pipelined(void **state)
{
    struct hsrv_conf c = base_conf();
    struct fixture f;

    run(client_pipelined, &c, &f);
    assert_int_equal(f.requests, 201);
}

static void client_bad(struct fixture *f)
{
    char body[64] = "";
    int fd = connect_to(f->port);
    static char big[100 * 1024 + 64];
    size_t n;

    send_all(fd, "GARBAGE GARBAGE\r\n\r\n", 19);
    CHECK(read_response(fd, body, sizeof(body)) == 400);
    CHECK(closed_by_server(fd));
    close(fd);

    /* A 100 KiB header: 431, and the lingering close keeps the answer
     * readable although the client is still sending. */
    fd = connect_to(f->port);
    n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'a', 100 * 1024);
    n += 100 * 1024;
    memcpy(big + n, "\r\n\r\n", 4);
    n += 4;
    send_all(fd, big, n);
    CHECK(read_response(fd, body, sizeof(body)) == 431);
    CHECK(closed_by_server(fd));
    close(fd);

    /* A long target: 414. */
    fd = connect_to(f->port);
    n = (size_t)snprintf(big, sizeof(big), "GET /");
    memset(big + n, 'u', 3000);
    n += 3000;
    n += (size_t)snprintf(big + n, sizeof(big) - n, " HTTP/1.1\r\n\r\n");
    send_all(fd, big, n);
    CHECK(read_response(fd, body, sizeof(body)) == 414);
    CHECK(closed_by_server(fd));
    close(fd);

    /* The server still serves. */
    fd = connect_to(f->port);
    send_all(fd, "GET /ok HTTP/1.1\r\n\r\n", 20);
    CHECK(read_response(fd, body, sizeof(body)) == 200);
    close(fd);
}

static void test_bad_requests(void **state)
{
    struct hsrv_conf c = base_conf();
    struct fixture f;

    run(client_bad, &c, &f);
    assert_int_equal(f.bad, 3);
    assert_int_equal(f.requests, 1);
}

static void client_slow(struct fixture *f)
{
    struct timespec t0, t1;
    int fd = connect_to(f->port);
    double secs;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    send_all(fd, "GET / HTTP/1.1\r\nX-Slow: ", 24);
    /* Dribble a byte every 100ms: the request timeout, not the gap between
     * bytes, decides. */
    for (int i = 0; i < 30; i++) {
        if (send(fd, "a", 1, MSG_NOSIGNAL) <= 0)
            break;
        usleep(100 * 1000);
    }
    CHECK(closed_by_server(fd));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(secs < 2.5);
    close(fd);

    /* An idle connection that never sends is closed too. */
    fd = connect_to(f->port);
    CHECK(closed_by_server(fd));
    close(fd);
}

static void test_slowloris(void **state)
{
    struct hsrv_conf c = base_conf();
    struct fixture f;

    c.request_timeout_ms = 400;
    run(client_slow, &c, &f);
    assert_int_equal(f.requests, 0);
}

static void client_maxconn(struct fixture *f)
{
    int a = connect_to(f->port), b = connect_to(f->port), c;
    char body[64] = "";

    /* Both are served, so both are accepted before the third arrives. */
    send_all(a, "GET /a HTTP/1.1\r\n\r\n", 19);
    CHECK(read_response(a, body, sizeof(body)) == 200);
    send_all(b, "GET /b HTTP/1.1\r\n\r\n", 19);
    CHECK(read_response(b, body, sizeof(body)) == 200);
    c = connect_to(f->port);
    CHECK(closed_by_server(c));
    close(c);
    close(a);
    close(b);
}

static void test_max_connections(void **state)
{
    struct hsrv_conf c = base_conf();
    struct fixture f;

    c.max_connections = 2;
    run(client_maxconn, &c, &f);
    assert_int_equal(f.requests, 2);
}

static void client_denied(struct fixture *f)
{
    int fd = connect_to(f->port);
    char body[64] = "";

    send_all(fd, "GET /health HTTP/1.1\r\n\r\n", 24);
    CHECK(read_response(fd, body, sizeof(body)) == 403);
    CHECK(closed_by_server(fd));
    close(fd);
}

static void test_denied(void **state)
{
    struct hsrv_conf c = base_conf();
    struct agentd_cidr only10 = {.family = AF_INET, .addr = {10}, .prefix = 8};
    struct fixture f;

    c.allow = &only10;
    c.nallow = 1;
    run(client_denied, &c, &f);
    assert_int_equal(f.denied, 1);
}

static void test_addr_allowed(void **state)
{
    struct agentd_cidr allow[2] = {
        {.family = AF_INET, .addr = {172, 16}, .prefix = 12},
        {.family = AF_INET6, .addr = {0xfd}, .prefix = 8},
    };
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

    inet_pton(AF_INET, "172.31.255.1", &in.sin_addr);
    assert_true(hsrv_addr_allowed(allow, 2, (struct sockaddr *)&in));
    inet_pton(AF_INET, "172.32.0.1", &in.sin_addr);
    assert_false(hsrv_addr_allowed(allow, 2, (struct sockaddr *)&in));
    inet_pton(AF_INET6, "::ffff:172.20.1.1", &in6.sin6_addr);
    assert_true(hsrv_addr_allowed(allow, 2, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "fd00::1", &in6.sin6_addr);
    assert_true(hsrv_addr_allowed(allow, 2, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
    assert_false(hsrv_addr_allowed(allow, 2, (struct sockaddr *)&in6));
    assert_true(hsrv_addr_allowed(allow, 0, (struct sockaddr *)&in6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive),       cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_bad_requests),    cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_max_connections), cmocka_unit_test(test_denied),
        cmocka_unit_test(test_addr_allowed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

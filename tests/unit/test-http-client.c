/* The HTTP client against a tiny HTTP/1.1 server on the same loop: bodies and
 * headers both ways, connection reuse, bounded responses, timeouts, refused
 * connects, cancel, proxies from the environment and no_proxy. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agentd/plugin.h"
#include "aws-fake-host.h"
#include "http-client.h"

enum mode { M_OK, M_SILENT, M_BIG, M_ECHO };

struct conn {
    uv_tcp_t tcp;
    char buf[65536];
    size_t len;
};

static struct {
    uv_tcp_t tcp;
    int port;
    int accepts;
    int requests;
    enum mode mode;
    char last[8192]; /* last request's head */
} srv;

static uv_loop_t loop;

static void conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct conn *c = h->data;

    b->base = c->buf + c->len;
    b->len = sizeof(c->buf) - c->len - 1;
}

static void write_done(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static void send_text(struct conn *c, const char *head, const char *body, size_t body_len)
{
    size_t hl = strlen(head);
    char *out = malloc(hl + body_len);
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t b;

    memcpy(out, head, hl);
    memcpy(out + hl, body, body_len);
    b = uv_buf_init(out, (unsigned)(hl + body_len));
    w->data = out;
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, write_done);
}

static void respond(struct conn *c, size_t head_len, size_t total)
{
    char head[256];
    static char big[100000];

    srv.requests++;
    memcpy(srv.last, c->buf, head_len < sizeof(srv.last) - 1 ? head_len : sizeof(srv.last) - 1);
    srv.last[head_len < sizeof(srv.last) - 1 ? head_len : sizeof(srv.last) - 1] = '\0';
    switch (srv.mode) {
    case M_SILENT:
        return;
    case M_OK:
        send_text(c,
                  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test:  Some Value \r\n"
                  "Content-Type: text/plain\r\n\r\n",
                  "hello", 5);
        break;
    case M_BIG:
        memset(big, 'x', sizeof(big));
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", sizeof(big));
        send_text(c, head, big, sizeof(big));
        break;
    case M_ECHO:
        snprintf(head, sizeof(head), "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\n\r\n",
                 total - head_len);
        send_text(c, head, c->buf + head_len, total - head_len);
        break;
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    char *end, *cl;
    size_t head_len, total;

    if (n < 0) {
        uv_close((uv_handle_t *)s, conn_closed);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return;
    head_len = (size_t)(end - c->buf) + 4;
    cl = strcasestr(c->buf, "\r\nContent-Length:");
    total = head_len + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
    if (c->len < total)
        return;
    respond(c, head_len, total);
    memmove(c->buf, c->buf + total, c->len - total);
    c->len -= total;
}

static void on_conn(uv_stream_t *s, int status)
{
    struct conn *c = calloc(1, sizeof(*c));

    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(s, (uv_stream_t *)&c->tcp), 0);
    srv.accepts++;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

struct result {
    bool done;
    int error;
    long status;
    char body[256];
    size_t body_len;
    char xtest[64];
    char ctype[64];
};

static void on_done(struct agentd_plugin_ctx *ctx, const struct agentd_http_response *res, void *ud)
{
    struct result *r = ud;
    const char *h;

    r->done = true;
    r->error = res->error;
    r->status = res->status;
    r->body_len = res->body_len;
    assert_int_equal(res->body[res->body_len], '\0');
    snprintf(r->body, sizeof(r->body), "%s", res->body);
    h = agentd_http_header(res, "x-TEST");
    snprintf(r->xtest, sizeof(r->xtest), "%s", h ? h : "(none)");
    h = agentd_http_header(res, "content-type");
    snprintf(r->ctype, sizeof(r->ctype), "%s", h ? h : "(none)");
    for (size_t i = 0; res->headers[i]; i++)
        for (const char *p = res->headers[i]; *p && *p != ':'; p++)
            assert_false(*p >= 'A' && *p <= 'Z');
}

static void on_tick(uv_timer_t *t)
{
    uv_stop(&loop);
}

/* Runs the loop until r is done (checked every 5 ms), at most 20 s. */
static void run_until(struct result *r)
{
    uv_timer_t tick;

    uv_timer_init(&loop, &tick);
    uv_update_time(&loop);
    uint64_t deadline = uv_now(&loop) + 20000;
    uv_timer_start(&tick, on_tick, 5, 5);
    while (!r->done && uv_now(&loop) < deadline)
        uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(r->done);
}

static char url[128];

static int setup(void **state)
{
    struct sockaddr_in a;
    int len = sizeof(a);

    assert_int_equal(uv_loop_init(&loop), 0);
    fake_host_loop = &loop;
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    uv_tcp_init(&loop, &srv.tcp);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&srv.tcp, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv.tcp, 16, on_conn), 0);
    uv_tcp_getsockname(&srv.tcp, (struct sockaddr *)&a, &len);
    srv.port = ntohs(a.sin_port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/path?q=1", srv.port);
    return 0;
}

static void close_all(uv_handle_t *h, void *ud)
{
    if (!uv_is_closing(h))
        uv_close(h, h->data && h != (uv_handle_t *)&srv.tcp ? conn_closed : NULL);
}

static int teardown(void **state)
{
    assert_int_equal(http_client_active(), 0);
    http_client_shutdown();
    uv_walk(&loop, close_all, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

static void test_get_and_reuse(void **state)
{
    struct result r1 = {0}, r2 = {0};
    struct agentd_http_request req = {.method = "GET", .url = url};

    srv.mode = M_OK;
    srv.accepts = 0;
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r1, NULL), 0);
    run_until(&r1);
    assert_int_equal(r1.error, 0);
    assert_int_equal(r1.status, 200);
    assert_string_equal(r1.body, "hello");
    assert_string_equal(r1.xtest, "Some Value");
    assert_string_equal(r1.ctype, "text/plain");
    assert_non_null(strstr(srv.last, "GET /path?q=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(srv.last, "\r\nUser-Agent: agentd/" PACKAGE_VERSION "\r\n"));
    /* The second request reuses the first connection. */
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r2, NULL), 0);
    run_until(&r2);
    assert_int_equal(r2.status, 200);
    assert_int_equal(srv.accepts, 1);
}

static void test_put_body_and_headers(void **state)
{
    const char *hdrs[] = {"X-Aws-Ec2-Metadata-Token-Ttl-Seconds: 21600", NULL};
    struct result r = {0}, e = {0};
    struct agentd_http_request req = {
        .method = "PUT", .url = url, .headers = hdrs, .body = "payload", .body_len = 7};

    srv.mode = M_ECHO;
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r, NULL), 0);
    run_until(&r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "payload");
    assert_non_null(strstr(srv.last, "PUT /path?q=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(srv.last, "X-Aws-Ec2-Metadata-Token-Ttl-Seconds: 21600\r\n"));
    /* No invented form Content-Type, no Expect. */
    assert_null(strcasestr(srv.last, "content-type"));
    assert_null(strcasestr(srv.last, "expect:"));
    /* An empty PUT still says Content-Length: 0 (IMDS token requests). */
    req.body = NULL;
    req.body_len = 0;
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &e, NULL), 0);
    run_until(&e);
    assert_int_equal(e.status, 201);
    assert_non_null(strcasestr(srv.last, "Content-Length: 0\r\n"));
}

static void test_bad_input(void **state)
{
    const char *inj[] = {"X-A: 1\r\nX-Injected: 2", NULL};
    struct agentd_http_request req = {.method = "GET", .url = url, .headers = inj};
    struct result r = {0};

    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r, NULL), -EINVAL);
    req.headers = NULL;
    req.method = "GE T";
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r, NULL), -EINVAL);
    req.method = "GET";
    req.url = "ftp://127.0.0.1/x";
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r, NULL), 0);
    run_until(&r);
    assert_int_equal(r.error, -EINVAL);
    assert_int_equal(r.status, 0);
}

static void test_too_big(void **state)
{
    struct agentd_http_request req = {.method = "GET", .url = url, .max_response = 1000};
    struct result r = {0};

    srv.mode = M_BIG;
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r, NULL), 0);
    run_until(&r);
    assert_int_equal(r.error, -EFBIG);
    assert_int_equal(r.status, 0);
}

static void test_timeout(void **state)
{
    struct agentd_http_request req = {.method = "GET", .url = url, .timeout_ms = 300};
    struct result r = {0};
    uint64_t t0;

    srv.mode = M_SILENT;
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r, NULL), 0);
    run_until(&r);
    uv_update_time(&loop);
    assert_int_equal(r.error, -ETIMEDOUT);
    assert_true(uv_now(&loop) - t0 >= 290);
    assert_true(uv_now(&loop) - t0 < 5000);
}

static void test_refused(void **state)
{
    uv_tcp_t t;
    struct sockaddr_in a;
    int len = sizeof(a);
    char u[64];
    struct agentd_http_request req = {.method = "GET", .url = u};
    struct result r = {0};

    /* A port that was just free: nothing listens there. */
    uv_tcp_init(&loop, &t);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&t, (struct sockaddr *)&a, 0);
    uv_tcp_getsockname(&t, (struct sockaddr *)&a, &len);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r, NULL), 0);
    run_until(&r);
    assert_int_equal(r.error, -ECONNREFUSED);
}

static void test_cancel(void **state)
{
    struct agentd_http_request req = {.method = "GET", .url = url};
    struct agentd_http_call *call = NULL;
    struct result r = {0};
    int before = srv.requests;

    srv.mode = M_SILENT;
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r, &call), 0);
    for (int i = 0; i < 1000 && srv.requests == before; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(http_client_active(), 1);
    agentd_http_cancel(call);
    assert_int_equal(http_client_active(), 0);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_false(r.done);
}

static struct agentd_http_call *self_call;
static bool self_done;

static void on_done_cancel_self(struct agentd_plugin_ctx *ctx,
                                const struct agentd_http_response *res, void *ud)
{
    /* Cancelling the call whose answer is being delivered is harmless. */
    agentd_http_cancel(self_call);
    self_done = true;
    ((struct result *)ud)->done = true;
}

static void test_cancel_in_done(void **state)
{
    struct agentd_http_request req = {.method = "GET", .url = url};
    struct result r = {0};

    srv.mode = M_OK;
    assert_int_equal(agentd_http_request(NULL, &req, on_done_cancel_self, &r, &self_call), 0);
    run_until(&r);
    assert_true(self_done);
    assert_int_equal(http_client_active(), 0);
}

static void test_proxy(void **state)
{
    char proxy[64], direct[64];
    struct agentd_http_request req = {.method = "GET", .url = "http://192.0.2.1:9/via-proxy"};
    struct result r = {0}, d = {0};

    /* Through the environment's proxy: our server sees an absolute URI. */
    srv.mode = M_OK;
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", srv.port);
    setenv("http_proxy", proxy, 1);
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &r, NULL), 0);
    run_until(&r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(srv.last, "GET http://192.0.2.1:9/via-proxy HTTP/1.1\r\n"));
    /* no_proxy: a dead proxy in the environment does not matter. */
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    snprintf(direct, sizeof(direct), "http://127.0.0.1:%d/direct", srv.port);
    req.url = direct;
    req.no_proxy = true;
    assert_int_equal(agentd_http_request(NULL, &req, on_done, &d, NULL), 0);
    run_until(&d);
    assert_int_equal(d.status, 200);
    assert_non_null(strstr(srv.last, "GET /direct HTTP/1.1\r\n"));
    unsetenv("http_proxy");
}

static void test_errno_map(void **state)
{
    assert_int_equal(http_client_errno(CURLE_OK, 0), 0);
    assert_int_equal(http_client_errno(CURLE_OPERATION_TIMEDOUT, 0), -ETIMEDOUT);
    assert_int_equal(http_client_errno(CURLE_COULDNT_CONNECT, ENETUNREACH), -ENETUNREACH);
    assert_int_equal(http_client_errno(CURLE_COULDNT_CONNECT, 0), -ECONNREFUSED);
    assert_int_equal(http_client_errno(CURLE_COULDNT_RESOLVE_HOST, 0), -EHOSTUNREACH);
    assert_int_equal(http_client_errno(CURLE_PEER_FAILED_VERIFICATION, 0), -EKEYREJECTED);
    assert_int_equal(http_client_errno(CURLE_GOT_NOTHING, 0), -ECONNRESET);
    assert_int_equal(http_client_errno(CURLE_FILESIZE_EXCEEDED, 0), -EFBIG);
    assert_int_equal(http_client_errno(CURLE_FTP_WEIRD_PASS_REPLY, 0), -EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_reuse), cmocka_unit_test(test_put_body_and_headers),
        cmocka_unit_test(test_bad_input),     cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_timeout),       cmocka_unit_test(test_refused),
        cmocka_unit_test(test_cancel),        cmocka_unit_test(test_cancel_in_done),
        cmocka_unit_test(test_proxy),         cmocka_unit_test(test_errno_map),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

/* Unit tests of the imds plugin's IMDSv2 client against a mock host: the
 * HTTP client is a table the test answers by hand, so token sharing, 401
 * renewal, v1 fallback, retries and cancellation are checked exactly. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/imds/imds.h"

/* ---- mock host ---------------------------------------------------------- */

struct agentd_http_call {
    int id;
};

struct sent {
    char method[8];
    char url[256];
    char header[256]; /* the first header, or "" */
    agentd_http_done_fn done;
    void *ud;
    bool answered, cancelled;
    struct agentd_http_call call;
};

static struct sent sent[64];
static int n_sent;
static uv_loop_t loop;

uv_loop_t *agentd_loop(struct agentd_plugin_ctx *ctx)
{
    return &loop;
}

int agentd_http_request(struct agentd_plugin_ctx *ctx, const struct agentd_http_request *req,
                        agentd_http_done_fn done, void *ud, struct agentd_http_call **ret)
{
    assert_true(n_sent < 64);
    assert_true(req->no_proxy); /* IMDS never goes through a proxy */
    struct sent *s = &sent[n_sent];
    memset(s, 0, sizeof(*s));
    snprintf(s->method, sizeof(s->method), "%s", req->method);
    snprintf(s->url, sizeof(s->url), "%s", req->url);
    if (req->headers && req->headers[0])
        snprintf(s->header, sizeof(s->header), "%s", req->headers[0]);
    s->done = done;
    s->ud = ud;
    s->call.id = n_sent++;
    *ret = &s->call;
    return 0;
}

void agentd_http_cancel(struct agentd_http_call *call)
{
    sent[call->id].cancelled = true;
}

void agentd_metric_add(struct agentd_metric *m, double v)
{
}

void agentd_log(struct agentd_plugin_ctx *ctx, enum agentd_log_level level, const char *fmt, ...)
{
}

/* Answers request i with a status and body, or a transport error. */
static void answer(int i, long status, const char *body, int error)
{
    struct sent *s = &sent[i];
    assert_false(s->answered);
    assert_false(s->cancelled);
    s->answered = true;
    const struct agentd_http_response res = {
        .error = error,
        .error_message = error ? "mock transport error" : NULL,
        .status = status,
        .body = body ? body : "",
        .body_len = body ? strlen(body) : 0,
    };
    s->done(NULL, &res, s->ud);
}

/* Runs the loop until request n has been sent (a retry timer fired). */
static void run_until_sent(int n)
{
    for (int i = 0; i < 100 && n_sent < n; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(n_sent, n);
}

/* ---- fixture ------------------------------------------------------------ */

static struct imds_conf conf;
static struct imds im;

struct result {
    int calls, err;
    long status;
    char body[128];
};

static void on_get(struct imds *i, int err, long status, const char *body, size_t len, void *ud)
{
    struct result *r = ud;
    r->calls++;
    r->err = err;
    r->status = status;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)len, body ? body : "");
}

static int setup(void **state)
{
    uv_loop_init(&loop);
    memset(sent, 0, sizeof(sent));
    n_sent = 0;
    conf = (struct imds_conf){
        .token_ttl_ms = 21600000, .timeout_ms = 2000, .connect_timeout_ms = 1000, .attempts = 3};
    memset(&im, 0, sizeof(im));
    im.conf = &conf;
    im.base = strdup("http://169.254.169.254");
    return 0;
}

static int teardown(void **state)
{
    imds_client_cancel_all(&im);
    uv_run(&loop, UV_RUN_DEFAULT); /* closes retry timers */
    assert_int_equal(uv_loop_close(&loop), 0);
    free(im.base);
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_one_token_shared(void **state)
{
    struct result a = {0}, b = {0}, c = {0};
    assert_int_equal(imds_get(&im, "meta-data/instance-id", 1, on_get, &a), 0);
    assert_int_equal(imds_get(&im, "meta-data/mac", 1, on_get, &b), 0);
    assert_int_equal(n_sent, 1); /* both wait for one PUT */
    assert_string_equal(sent[0].method, "PUT");
    assert_string_equal(sent[0].url, "http://169.254.169.254/latest/api/token");
    assert_string_equal(sent[0].header, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
    answer(0, 200, "TOKEN1", 0);
    assert_int_equal(n_sent, 3);
    for (int i = 1; i < 3; i++) {
        assert_string_equal(sent[i].method, "GET");
        assert_string_equal(sent[i].header, "X-aws-ec2-metadata-token: TOKEN1");
    }
    /* In the order asked for. */
    assert_string_equal(sent[1].url, "http://169.254.169.254/latest/meta-data/instance-id");
    assert_string_equal(sent[2].url, "http://169.254.169.254/latest/meta-data/mac");
    answer(2, 200, "0e:00", 0);
    answer(1, 200, "i-1", 0);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.body, "i-1");
    assert_string_equal(b.body, "0e:00");
    /* The token is reused. */
    assert_int_equal(imds_get(&im, "meta-data/ami-id", 1, on_get, &c), 0);
    assert_int_equal(n_sent, 4);
    assert_string_equal(sent[3].method, "GET");
    answer(3, 404, NULL, 0);
    assert_int_equal(c.err, -ENOENT);
    assert_int_equal(im.n_token_puts, 1);
}

static void test_401_renews_once(void **state)
{
    struct result a = {0};
    imds_get(&im, "meta-data/instance-id", 1, on_get, &a);
    answer(0, 200, "T1", 0);
    answer(1, 401, NULL, 0); /* expired: new token, same request again */
    assert_int_equal(a.calls, 0);
    assert_string_equal(sent[2].method, "PUT");
    answer(2, 200, "T2", 0);
    assert_string_equal(sent[3].header, "X-aws-ec2-metadata-token: T2");
    answer(3, 401, NULL, 0); /* a fresh token refused: give up */
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, -EACCES);
    assert_int_equal(n_sent, 4);
}

static void test_stale_401_keeps_new_token(void **state)
{
    struct result a = {0}, b = {0};
    imds_get(&im, "meta-data/a", 1, on_get, &a);
    imds_get(&im, "meta-data/b", 1, on_get, &b);
    answer(0, 200, "T1", 0);
    answer(1, 401, NULL, 0); /* drops T1, gets T2 */
    answer(3, 200, "T2", 0);
    assert_string_equal(sent[4].header, "X-aws-ec2-metadata-token: T2");
    /* b's 401 was for T1: T2 stays, b is resent at once without a PUT. */
    answer(2, 401, NULL, 0);
    assert_int_equal(n_sent, 6);
    assert_string_equal(sent[5].method, "GET");
    assert_string_equal(sent[5].header, "X-aws-ec2-metadata-token: T2");
    answer(4, 200, "A", 0);
    answer(5, 200, "B", 0);
    assert_string_equal(a.body, "A");
    assert_string_equal(b.body, "B");
    assert_int_equal(im.n_token_puts, 2);
}

static void test_no_v1_unless_configured(void **state)
{
    struct result a = {0};
    imds_get(&im, "meta-data/instance-id", 1, on_get, &a);
    answer(0, 405, NULL, 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, -EPROTO);
    assert_int_equal(n_sent, 1);
    assert_false(im.v1);

    conf.v1_fallback = true;
    struct result b = {0};
    imds_get(&im, "meta-data/instance-id", 1, on_get, &b);
    answer(1, 403, NULL, 0);
    assert_true(im.v1);
    assert_string_equal(sent[2].method, "GET");
    assert_string_equal(sent[2].header, ""); /* no token */
    answer(2, 200, "i-1", 0);
    assert_int_equal(b.err, 0);
}

static void test_token_put_403_is_eacces(void **state)
{
    struct result a = {0};
    imds_get(&im, "meta-data/instance-id", 1, on_get, &a);
    answer(0, 403, NULL, 0);
    assert_int_equal(a.err, -EACCES);
    assert_non_null(strstr(im.last_error, "403"));
}

static void test_transport_errors_retried_with_backoff(void **state)
{
    struct result a = {0};
    imds_get(&im, "meta-data/instance-id", 2, on_get, &a);
    answer(0, 200, "T1", 0);
    answer(1, 0, NULL, -ECONNRESET);
    assert_int_equal(a.calls, 0);
    assert_int_equal(n_sent, 2); /* waits for the backoff timer */
    uint64_t t0 = uv_hrtime();
    run_until_sent(3);
    assert_true(uv_hrtime() - t0 >= 90 * 1000000ull); /* 100 ms first backoff */
    answer(2, 0, NULL, -ETIMEDOUT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, -ETIMEDOUT);

    /* 5xx is retried too, then succeeds. */
    struct result b = {0};
    imds_get(&im, "meta-data/x", 3, on_get, &b);
    answer(3, 503, NULL, 0);
    run_until_sent(5);
    answer(4, 200, "ok", 0);
    assert_int_equal(b.err, 0);
    /* Other 4xx are not retried. */
    struct result c = {0};
    imds_get(&im, "meta-data/y", 3, on_get, &c);
    answer(5, 400, NULL, 0);
    assert_int_equal(c.err, -EPROTO);
    assert_int_equal(n_sent, 6);
}

static void test_cancel_all(void **state)
{
    struct result a = {0}, b = {0};
    imds_get(&im, "meta-data/a", 1, on_get, &a);
    answer(0, 200, "T1", 0);
    imds_get(&im, "meta-data/b", 3, on_get, &b);
    answer(2, 0, NULL, -ECONNREFUSED); /* b waits on its backoff timer */
    im.stopping = true;
    imds_client_cancel_all(&im);
    assert_true(sent[1].cancelled);
    assert_int_equal(a.err, -ECANCELED);
    assert_int_equal(b.err, -ECANCELED);
    assert_int_equal(a.calls + b.calls, 2);
    assert_null(im.token);
    struct result c = {0};
    assert_int_equal(imds_get(&im, "meta-data/c", 1, on_get, &c), -ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_token_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_renews_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_401_keeps_new_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_v1_unless_configured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_put_403_is_eacces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_errors_retried_with_backoff, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_all, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

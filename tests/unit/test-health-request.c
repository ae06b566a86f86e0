/* Unit tests of the health plugin's request parser (plugins/health/request.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/health/health-int.h"

static const struct request_limits lim = {.max_url = 64, .max_header_bytes = 256, .max_headers = 8};

/* Feeds the whole input `chunk` bytes at a time; stops at the first event
 * other than REQUEST_MORE. Returns the bytes consumed. */
static size_t feed(struct request *r, const char *in, size_t chunk, enum request_event *ev)
{
    size_t len = strlen(in), off = 0;

    *ev = REQUEST_MORE;
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk;
        size_t used = request_feed(r, in + off, n, ev);

        off += used;
        if (*ev != REQUEST_MORE)
            break;
        assert_int_equal(used, n);
    }
    return off;
}

struct ok_case {
    const char *in;
    unsigned method;
    const char *url;
    bool keep_alive;
    bool http10;
};

static const struct ok_case ok_cases[] = {
    {"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_GET, "/health", true, false},
    {"HEAD /livez HTTP/1.1\r\n\r\n", HTTP_HEAD, "/livez", true, false},
    {"GET /health?verbose HTTP/1.1\r\nConnection: close\r\n\r\n", HTTP_GET, "/health?verbose",
     false, false},
    {"GET / HTTP/1.0\r\n\r\n", HTTP_GET, "/", false, true},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", HTTP_GET, "/", true, true},
    {"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", HTTP_POST, "/x", true, false},
    {"GET /u HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", HTTP_GET, "/u", false,
     false},
    {"GET http://h/health HTTP/1.1\r\n\r\n", HTTP_GET, "http://h/health", true, false},
};

static void test_ok_all_chunkings(void **state)
{
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const struct ok_case *c = &ok_cases[i];

        for (size_t chunk = 1; chunk <= strlen(c->in); chunk++) {
            struct request r;
            enum request_event ev;
            size_t used;

            request_init(&r, &lim);
            used = feed(&r, c->in, chunk, &ev);
            assert_int_equal(ev, REQUEST_DONE);
            assert_int_equal(used, strlen(c->in));
            assert_int_equal(r.method, c->method);
            assert_string_equal(r.url, c->url);
            assert_int_equal(r.keep_alive, c->keep_alive);
            assert_int_equal(r.http10, c->http10);
        }
    }
}

static void test_pipelined(void **state)
{
    const char *in = "GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
    const char *want[] = {"/a", "/b", "/c"};
    struct request r;
    size_t off = 0, len = strlen(in);

    request_init(&r, &lim);
    for (int i = 0; i < 3; i++) {
        enum request_event ev;

        off += request_feed(&r, in + off, len - off, &ev);
        assert_int_equal(ev, REQUEST_DONE);
        assert_string_equal(r.url, want[i]);
        request_next(&r);
    }
    assert_int_equal(off, len);
}

struct err_case {
    const char *in;
    int status;
};

static const struct err_case err_cases[] = {
    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400}, /* a TLS ClientHello */
    {"GARBAGE\r\n\r\n", 400},
    {"GET /health HTTP/1.1\r\nBad Header\r\n\r\n", 400},
    {"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
     "HTTP/1.1\r\n\r\n",
     414},
    {"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\nf: 1\r\ng: 1\r\nh: 1\r\ni: "
     "1\r\n\r\n",
     431},
    {"GET / HTTP/1.1\r\nX: "
     "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
     "v"
     "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
     "v"
     "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n"
     "\r\n",
     431},
};

static void test_errors_all_chunkings(void **state)
{
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const struct err_case *c = &err_cases[i];

        for (size_t chunk = 1; chunk <= strlen(c->in); chunk++) {
            struct request r;
            enum request_event ev;

            request_init(&r, &lim);
            feed(&r, c->in, chunk, &ev);
            assert_int_equal(ev, REQUEST_ERROR);
            assert_int_equal(r.error_status, c->status);
            /* A dead request stays dead. */
            assert_int_equal(request_feed(&r, "GET / HTTP/1.1\r\n\r\n", 18, &ev), 0);
            assert_int_equal(ev, REQUEST_ERROR);
        }
    }
}

static void test_limits_reset_per_request(void **state)
{
    /* Seven headers per request, many requests: the count must not carry over. */
    const char *one =
        "GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\nf: 1\r\ng: 1\r\n\r\n";
    struct request r;

    request_init(&r, &lim);
    for (int i = 0; i < 100; i++) {
        enum request_event ev;

        assert_int_equal(request_feed(&r, one, strlen(one), &ev), strlen(one));
        assert_int_equal(ev, REQUEST_DONE);
        request_next(&r);
    }
}

static void test_started(void **state)
{
    struct request r;
    enum request_event ev;

    request_init(&r, &lim);
    assert_false(r.started);
    assert_int_equal(request_feed(&r, "GE", 2, &ev), 2);
    assert_int_equal(ev, REQUEST_MORE);
    assert_true(r.started);
    assert_false(r.headers_done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_all_chunkings),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_errors_all_chunkings),
        cmocka_unit_test(test_limits_reset_per_request),
        cmocka_unit_test(test_started),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

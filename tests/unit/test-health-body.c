/* Unit tests of the health plugin's bodies and responses (plugins/health/body.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../plugins/health/health-int.h"

static const struct agentd_health_info checks[] = {
    {.name = "mariadb",
     .plugin = "health",
     .critical = true,
     .status = AGENTD_HEALTH_PASS,
     .output = "tcp connect db:3306 ok",
     .changed_ms = 1700000000123ull,
     .updated_ms = 1700000001000ull,
     .duration_ms = 3},
    {.name = "redis",
     .plugin = "health",
     .critical = false,
     .status = AGENTD_HEALTH_FAIL,
     .output = "tcp connect cache:6379 timed out after 2s",
     .changed_ms = 0,
     .updated_ms = 0,
     .duration_ms = 2000},
    {.name = "tunnel:chartio",
     .plugin = "tunnel",
     .critical = true,
     .status = AGENTD_HEALTH_WARN,
     .output = "quote\" back\\ nl\n ctl\x01 bad\xff utf8 \xc3\xa9",
     .changed_ms = 5,
     .updated_ms = 5,
     .duration_ms = 0},
};

static json_t *render(const struct body_state *st, bool verbose)
{
    struct sbuf b;
    json_error_t err;
    json_t *j;

    sbuf_init(&b, 65536);
    assert_int_equal(body_render(&b, st, verbose), 0);
    assert_true(b.len > 0 && b.p[b.len - 1] == '\n');
    j = json_loadb(b.p, b.len, 0, &err);
    if (!j)
        fail_msg("invalid JSON (%s): %s", err.text, b.p);
    sbuf_free(&b);
    return j;
}

static void test_terse(void **state)
{
    struct body_state st = {.overall = AGENTD_HEALTH_WARN, .checks = checks, .n = 3};
    json_t *j = render(&st, false);
    json_t *c;

    assert_string_equal(json_string_value(json_object_get(j, "status")), "warn");
    c = json_object_get(j, "checks");
    assert_int_equal(json_object_size(c), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(c, "redis"), 0), "status")),
                        "fail");
    /* Terse bodies carry no outputs. */
    assert_null(json_object_get(json_array_get(json_object_get(c, "mariadb"), 0), "output"));
    json_decref(j);
    assert_int_equal(body_http_status(&st, 503), 200);
    st.overall = AGENTD_HEALTH_FAIL;
    assert_int_equal(body_http_status(&st, 503), 503);
    assert_int_equal(body_http_status(&st, 500), 500);
    st.overall = AGENTD_HEALTH_PASS;
    assert_int_equal(body_http_status(&st, 503), 200);
}

static void test_verbose(void **state)
{
    struct body_state st = {.overall = AGENTD_HEALTH_WARN, .checks = checks, .n = 3};
    json_t *j = render(&st, true);
    json_t *m = json_array_get(json_object_get(json_object_get(j, "checks"), "mariadb"), 0);
    json_t *t = json_array_get(json_object_get(json_object_get(j, "checks"), "tunnel:chartio"), 0);

    assert_string_equal(json_string_value(json_object_get(m, "output")), "tcp connect db:3306 ok");
    assert_string_equal(json_string_value(json_object_get(m, "time")), "2023-11-14T22:13:20.123Z");
    assert_int_equal(json_integer_value(json_object_get(m, "observedValue")), 3);
    assert_string_equal(json_string_value(json_object_get(m, "observedUnit")), "ms");
    assert_true(json_is_true(json_object_get(m, "critical")));
    assert_string_equal(json_string_value(json_object_get(t, "componentType")), "tunnel");
    assert_string_equal(json_string_value(json_object_get(t, "output")),
                        "quote\" back\\ nl\n ctl\x01 bad\xef\xbf\xbd utf8 \xc3\xa9");
    json_decref(j);
}

static void test_draining(void **state)
{
    struct body_state st = {.overall = AGENTD_HEALTH_PASS,
                            .draining = true,
                            .draining_reason = "spot interruption",
                            .checks = checks,
                            .n = 1};
    json_t *j = render(&st, false);

    assert_string_equal(json_string_value(json_object_get(j, "status")), "draining");
    assert_string_equal(json_string_value(json_object_get(j, "output")), "spot interruption");
    assert_int_equal(body_http_status(&st, 503), 503);
    json_decref(j);
}

static void test_truncation(void **state)
{
    char big[4000];
    struct sbuf b;
    json_t *j;
    json_error_t err;
    const char *s;

    /* Multi-byte characters across the cut must not be split. */
    for (size_t i = 0; i + 2 < sizeof(big); i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[sizeof(big) - 2] = '\0';
    sbuf_init(&b, 65536);
    sbuf_json_str(&b, big, 101);
    j = json_loadb(b.p, b.len, JSON_DECODE_ANY, &err);
    assert_non_null(j);
    s = json_string_value(j);
    assert_int_equal(strlen(s), 100 + 3);
    assert_memory_equal(s + 100, "\xe2\x80\xa6", 3);
    json_decref(j);
    sbuf_free(&b);
}

static void test_sbuf_max(void **state)
{
    struct sbuf b;
    struct body_state st = {.overall = AGENTD_HEALTH_PASS, .checks = checks, .n = 3};

    sbuf_init(&b, 40);
    assert_int_equal(body_render(&b, &st, true), -E2BIG);
    assert_true(b.len <= 40);
    sbuf_free(&b);
}

static void test_response(void **state)
{
    char date[30];
    struct response *r;
    const char *want_head = "HTTP/1.1 503 Service Unavailable\r\nServer: agentd\r\n"
                            "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                            "Content-Type: application/health+json\r\nContent-Length: 5\r\n"
                            "Cache-Control: no-store\r\nX-A: b\r\n";

    http_date(784111777, date);
    assert_string_equal(date, "Sun, 06 Nov 1994 08:49:37 GMT");
    r = response_new(503, "application/health+json", date, "X-A: b\r\n", "hello", 5);
    assert_non_null(r);
    assert_int_equal(r->head_len, strlen(want_head));
    assert_memory_equal(r->data, want_head, r->head_len);
    assert_string_equal(r->data + r->head_len, "\r\nhello");
    assert_int_equal(r->len, r->head_len + 7);
    assert_ptr_equal(response_ref(r), r);
    response_unref(r);
    response_unref(r);
    response_unref(NULL);
    assert_string_equal(response_reason(431), "Request Header Fields Too Large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terse),    cmocka_unit_test(test_verbose),
        cmocka_unit_test(test_draining), cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_sbuf_max), cmocka_unit_test(test_response),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

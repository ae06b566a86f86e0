/* Unit tests of the health plugin's check helpers: expect_status parsing,
 * URL redaction, duration formatting, and the reload's notion of an
 * unchanged check. Linked with the whole plugin and the core library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/health/health-int.h"

static void test_status_ranges(void **state)
{
    static const struct {
        const char *in;
        int lo, hi; /* 0: invalid */
    } cases[] = {
        {"200", 200, 200},     {"200-399", 200, 399}, {"2xx", 200, 299}, {"5XX", 500, 599},
        {"100-599", 100, 599}, {"204-204", 204, 204}, {"6xx", 0, 0},     {"300-200", 0, 0},
        {"20", 0, 0},          {"2000", 0, 0},        {"200-", 0, 0},    {"-200", 0, 0},
        {"200-3999", 0, 0},    {"abc", 0, 0},         {"", 0, 0},        {"099", 0, 0},
        {"200 ", 0, 0},        {"600", 0, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int lo = -1, hi = -1;
        int r = http_status_range_parse(cases[i].in, &lo, &hi);

        if (cases[i].lo == 0) {
            if (r != -EINVAL || lo != -1 || hi != -1)
                fail_msg("'%s' should be invalid (r %d lo %d hi %d)", cases[i].in, r, lo, hi);
        } else if (r != 0 || lo != cases[i].lo || hi != cases[i].hi) {
            fail_msg("'%s': r %d lo %d hi %d", cases[i].in, r, lo, hi);
        }
    }
}

static void test_redact(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"http://127.0.0.1:8000/x", "http://127.0.0.1:8000/x"},
        {"http://u:p@h/x?token=1", "http://h/x?…"},
        {"https://user@h:1/a/b#frag", "https://h:1/a/b?…"},
        {"http://h", "http://h"},
        {"http://h?q", "http://h?…"},
        {"http://h/p@x", "http://h/p@x"},
    };
    char buf[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_redact_url(cases[i].in, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].out);
    }
}

static void test_fmt_ms(void **state)
{
    static const struct {
        uint64_t ms;
        const char *out;
    } cases[] = {
        {0, "0s"},        {250, "250ms"}, {1000, "1s"},   {1500, "1.5s"},  {2000, "2s"},
        {119000, "119s"}, {120000, "2m"}, {300000, "5m"}, {7200000, "2h"}, {5400000, "90m"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fmt_ms(cases[i].ms, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].out);
    }
}

static void test_conf_equal(void **state)
{
    char *argv_a[] = {"sh", "-c", "true"};
    char *argv_b[] = {"sh", "-c", "false"};
    char *st_a[] = {"200"};
    struct health_check_conf a = {.name = "x",
                                  .exec = {3, argv_a},
                                  .interval = 1000,
                                  .timeout = 500,
                                  .rise = 2,
                                  .fall = 2,
                                  .critical = true};
    struct health_check_conf b = a;

    assert_true(check_conf_equal(&a, &b));
    b.exec.items = argv_b;
    assert_false(check_conf_equal(&a, &b));
    b = a;
    b.critical = false;
    assert_false(check_conf_equal(&a, &b));
    b = a;
    b.expect_status = (struct agentd_list){1, st_a};
    assert_false(check_conf_equal(&a, &b));
    b = a;
    b.name = "y";
    assert_false(check_conf_equal(&a, &b));
    b = a;
    b.interval = 2000;
    assert_false(check_conf_equal(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_ranges),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_fmt_ms),
        cmocka_unit_test(test_conf_equal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

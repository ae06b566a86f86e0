/* Unit tests of the imds plugin's helpers: endpoint choice, escaping, times,
 * backoff. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/imds/imds.h"

static const char *env_endpoint, *env_mode;

static const char *fake_env(const char *name)
{
    if (strcmp(name, "AWS_EC2_METADATA_SERVICE_ENDPOINT") == 0)
        return env_endpoint;
    if (strcmp(name, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") == 0)
        return env_mode;
    return NULL;
}

static void expect_endpoint(const char *opt, int mode, const char *ee, const char *em,
                            const char *want)
{
    char *got = NULL;
    const char *bad = NULL;
    env_endpoint = ee;
    env_mode = em;
    int r = imds_endpoint_resolve(opt, mode, fake_env, &got, &bad);
    if (!want) {
        assert_int_equal(r, -EINVAL);
        assert_non_null(bad);
        assert_null(got);
        return;
    }
    assert_int_equal(r, 0);
    assert_string_equal(got, want);
    free(got);
}

static void test_endpoint(void **state)
{
    expect_endpoint(NULL, IMDS_MODE_AUTO, NULL, NULL, "http://169.254.169.254");
    expect_endpoint(NULL, IMDS_MODE_IPV6, NULL, NULL, "http://[fd00:ec2::254]");
    expect_endpoint(NULL, IMDS_MODE_IPV4, NULL, "IPv6", "http://169.254.169.254");
    expect_endpoint(NULL, IMDS_MODE_AUTO, NULL, "IPv6", "http://[fd00:ec2::254]");
    expect_endpoint(NULL, IMDS_MODE_AUTO, NULL, "ipv4", "http://169.254.169.254");
    expect_endpoint(NULL, IMDS_MODE_AUTO, NULL, "IPv5", NULL);
    expect_endpoint(NULL, IMDS_MODE_AUTO, "http://127.0.0.1:8080/", NULL, "http://127.0.0.1:8080");
    expect_endpoint(NULL, IMDS_MODE_IPV6, "http://127.0.0.1:8080", NULL, "http://127.0.0.1:8080");
    expect_endpoint("http://[::1]:9//", IMDS_MODE_AUTO, "http://127.0.0.1:8080", NULL,
                    "http://[::1]:9");
    expect_endpoint("https://169.254.169.254", IMDS_MODE_AUTO, NULL, NULL, NULL);
    expect_endpoint(NULL, IMDS_MODE_AUTO, "ftp://x", NULL, NULL);
    expect_endpoint(NULL, IMDS_MODE_AUTO, "", NULL, "http://169.254.169.254");
}

static void test_disabled(void **state)
{
    assert_true(imds_env_disabled("true"));
    assert_true(imds_env_disabled("TRUE"));
    assert_false(imds_env_disabled("false"));
    assert_false(imds_env_disabled("1"));
    assert_false(imds_env_disabled(""));
    assert_false(imds_env_disabled(NULL));
}

static void test_escape(void **state)
{
    static const char *const cases[][2] = {
        {"Name", "Name"},
        {"aws:cloudformation:stack-name", "aws:cloudformation:stack-name"},
        {"k/v?#%", "k%2Fv%3F%23%25"},
        {"a b", "a%20b"},
        {"x.y_z~-", "x.y_z~-"},
        {"é", "%C3%A9"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        assert_int_equal(imds_path_escape(cases[i][0], &out), 0);
        assert_string_equal(out, cases[i][1]);
        free(out);
    }
}

static void test_time(void **state)
{
    static const struct {
        const char *s;
        int64_t t; /* -1: invalid */
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2017-09-18T08:22:00Z", 1505722920},
        {"2017-09-18T08:22:00.5Z", 1505722920},
        {"2017-09-18T08:22:00+00:00", 1505722920},
        {"2024-02-29T23:59:59Z", 1709251199},
        {"2017-09-18T08:22:00", -1},
        {"2017-09-18T08:22:00+01:00", -1},
        {"2017-13-18T08:22:00Z", -1},
        {"2017-09-18 08:22Z", -1},
        {"2017-09-18T08:22:00.Z", -1},
        {"", -1},
        {"tomorrow at noon!!!!", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = 42;
        int r = imds_parse_time(cases[i].s, &t);
        if (cases[i].t < 0) {
            if (r != -EINVAL || t != 42)
                fail_msg("'%s' should be invalid", cases[i].s);
        } else if (r != 0 || t != cases[i].t) {
            fail_msg("'%s': r=%d t=%lld", cases[i].s, r, (long long)t);
        }
    }
    int64_t t;
    assert_int_equal(imds_parse_time(NULL, &t), -EINVAL);
}

static void test_backoff(void **state)
{
    /* Without jitter: doubling from the base, capped. */
    assert_int_equal(imds_backoff_ms(0, 1000, 60000, 0), 1000);
    assert_int_equal(imds_backoff_ms(1, 1000, 60000, 0), 2000);
    assert_int_equal(imds_backoff_ms(5, 1000, 60000, 0), 32000);
    assert_int_equal(imds_backoff_ms(6, 1000, 60000, 0), 60000);
    assert_int_equal(imds_backoff_ms(200, 1000, 60000, 0), 60000);
    /* Jitter adds less than half. */
    for (unsigned n = 0; n < 10; n++) {
        uint64_t lo = imds_backoff_ms(n, 100, 1000, 0);
        uint64_t hi = imds_backoff_ms(n, 100, 1000, UINT32_MAX);
        assert_true(hi >= lo);
        assert_true(hi < lo + lo / 2 + 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint), cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_escape),   cmocka_unit_test(test_time),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Scalar parsers of the config loader: every type, good and bad input. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "conf-internal.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_duration(void **state)
{
    static const struct {
        const char *in;
        int r;
        uint64_t ms;
    } cases[] = {
        {"250ms", 0, 250},
        {"5s", 0, 5000},
        {"2m", 0, 120000},
        {"1h", 0, 3600000},
        {"1d", 0, 86400000},
        {"1m30s", 0, 90000},
        {"1h2m3s4ms", 0, 3723004},
        {"0s", 0, 0},
        {"0ms", 0, 0},
        {"90s", 0, 90000},
        {"30d", 0, 2592000000ULL},
        {"5", -EINVAL, 0},
        {"0", -EINVAL, 0},
        {"5x", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"s", -EINVAL, 0},
        {"-5s", -EINVAL, 0},
        {"5 s", -EINVAL, 0},
        {"5S", -EINVAL, 0},
        {"1.5s", -EINVAL, 0},
        {"5sec", -EINVAL, 0},
        {"5mss", -EINVAL, 0},
        {"1m30", -EINVAL, 0},
        {"99999999999999999999s", -EINVAL, 0},
        {"999999999999999999d", -EINVAL, 0},
    };

    for (size_t i = 0; i < N(cases); i++) {
        uint64_t ms = 777;
        int r = config_parse_duration(cases[i].in, &ms);

        if (r != cases[i].r)
            fail_msg("duration '%s': got %d want %d", cases[i].in, r, cases[i].r);
        assert_int_equal(ms, cases[i].r == 0 ? cases[i].ms : 777);
    }
}

static void test_size(void **state)
{
    static const struct {
        const char *in;
        int r;
        uint64_t b;
    } cases[] = {
        {"512", 0, 512},
        {"0", 0, 0},
        {"512B", 0, 512},
        {"64KiB", 0, 65536},
        {"10MiB", 0, 10485760},
        {"1GiB", 0, 1073741824},
        {"2TiB", 0, 2199023255552ULL},
        {"1KB", 0, 1000},
        {"1kB", 0, 1000},
        {"3MB", 0, 3000000},
        {"1GB", 0, 1000000000},
        {"1TB", 0, 1000000000000ULL},
        {"", -EINVAL, 0},
        {"KiB", -EINVAL, 0},
        {"10XB", -EINVAL, 0},
        {"10 MiB", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"1.5MiB", -EINVAL, 0},
        {"10mib", -EINVAL, 0},
        {"18446744073709551616", -EINVAL, 0},
        {"17179869184GiB", -EINVAL, 0},
    };

    for (size_t i = 0; i < N(cases); i++) {
        uint64_t b = 777;
        int r = config_parse_size(cases[i].in, &b);

        if (r != cases[i].r)
            fail_msg("size '%s': got %d want %d", cases[i].in, r, cases[i].r);
        assert_int_equal(b, cases[i].r == 0 ? cases[i].b : 777);
    }
}

static void test_bool(void **state)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};
    static const char *const bad[] = {"", "1", "0", "y", "n", "tRUE", "yess", "enabled", " true"};
    bool b;

    for (size_t i = 0; i < N(yes); i++) {
        b = false;
        assert_int_equal(config_parse_bool(yes[i], &b), 0);
        assert_true(b);
        b = true;
        assert_int_equal(config_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    for (size_t i = 0; i < N(bad); i++) {
        if (config_parse_bool(bad[i], &b) != -EINVAL)
            fail_msg("bool '%s' accepted", bad[i]);
    }
}

static void test_int(void **state)
{
    static const struct {
        const char *in;
        int r;
        int64_t v;
    } cases[] = {
        {"0", 0, 0},
        {"42", 0, 42},
        {"-42", 0, -42},
        {"+7", 0, 7},
        {"007", 0, 7},
        {"9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"9223372036854775808", -EINVAL, 0},
        {"-9223372036854775809", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"-", -EINVAL, 0},
        {"12a", -EINVAL, 0},
        {"0x10", -EINVAL, 0},
        {" 1", -EINVAL, 0},
        {"1.0", -EINVAL, 0},
    };

    for (size_t i = 0; i < N(cases); i++) {
        int64_t v = 777;
        int r = config_parse_int(cases[i].in, &v);

        if (r != cases[i].r)
            fail_msg("int '%s': got %d want %d", cases[i].in, r, cases[i].r);
        assert_true(v == (cases[i].r == 0 ? cases[i].v : 777));
    }
}

static void test_cidr(void **state)
{
    static const struct {
        const char *in;
        int r;
        const char *norm;
    } cases[] = {
        {"10.0.0.0/16", 0, "10.0.0.0/16"},
        {"10.0.1.5/16", 0, "10.0.0.0/16"},
        {"192.0.2.7", 0, "192.0.2.7/32"},
        {"0.0.0.0/0", 0, "0.0.0.0/0"},
        {"::1", 0, "::1/128"},
        {"fd00::/8", 0, "fd00::/8"},
        {"2001:db8::1/33", 0, "2001:db8::/33"},
        {"2001:db8:ffff::/33", 0, "2001:db8:8000::/33"},
        {"10.0.0.0/33", -EINVAL, NULL},
        {"::/129", -EINVAL, NULL},
        {"10.0.0/8", -EINVAL, NULL},
        {"10.0.0.0/", -EINVAL, NULL},
        {"10.0.0.0/-1", -EINVAL, NULL},
        {"10.0.0.0/8x", -EINVAL, NULL},
        {"/8", -EINVAL, NULL},
        {"example.com/8", -EINVAL, NULL},
        {"", -EINVAL, NULL},
        {"10.0.0.0/0008", -EINVAL, NULL},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct agentd_cidr c;
        char buf[64];
        int r = config_parse_cidr(cases[i].in, &c);

        if (r != cases[i].r)
            fail_msg("cidr '%s': got %d want %d", cases[i].in, r, cases[i].r);
        if (r == 0) {
            conf_format_cidr(&c, buf, sizeof(buf));
            assert_string_equal(buf, cases[i].norm);
        }
    }
}

static struct sockaddr_storage sa4(const char *a)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;

    s->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, a, &s->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage sa6(const char *a)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

    s->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, a, &s->sin6_addr), 1);
    return ss;
}

static void test_cidr_contains(void **state)
{
    static const struct {
        const char *cidr, *addr;
        bool in;
    } cases[] = {
        {"10.0.0.0/16", "10.0.255.1", true},
        {"10.0.0.0/16", "10.1.0.1", false},
        {"10.0.0.0/17", "10.0.127.255", true},
        {"10.0.0.0/17", "10.0.128.0", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"192.0.2.7", "192.0.2.7", true},
        {"192.0.2.7", "192.0.2.8", false},
        {"10.0.0.0/8", "::ffff:10.1.2.3", true},
        {"10.0.0.0/8", "::ffff:11.1.2.3", false},
        {"10.0.0.0/8", "::1", false},
        {"fd00::/8", "fd12::1", true},
        {"fd00::/8", "fe80::1", false},
        {"::1", "::1", true},
        {"::ffff:0:0/96", "10.0.0.1", true},
        {"fd00::/8", "10.0.0.1", false},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct agentd_cidr c;
        struct sockaddr_storage ss =
            strchr(cases[i].addr, ':') ? sa6(cases[i].addr) : sa4(cases[i].addr);

        assert_int_equal(config_parse_cidr(cases[i].cidr, &c), 0);
        if (agentd_cidr_contains(&c, (struct sockaddr *)&ss) != cases[i].in)
            fail_msg("%s in %s: want %d", cases[i].addr, cases[i].cidr, cases[i].in);
    }
    assert_false(agentd_cidr_contains(NULL, NULL));
}

static void test_hostport(void **state)
{
    static const struct {
        const char *in;
        const char *host, *port; /* NULL host: invalid */
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1", "8080"},
        {"0.0.0.0:0", "0.0.0.0", "0"},
        {"db.example.com:5432", "db.example.com", "5432"},
        {"reflector.cscny3pe5mxx.eu-central-1.rds.amazonaws.com:3306",
         "reflector.cscny3pe5mxx.eu-central-1.rds.amazonaws.com", "3306"},
        {"[::1]:8080", "::1", "8080"},
        {"[fe80::1]:65535", "fe80::1", "65535"},
        {"localhost:65536", NULL, NULL},
        {"localhost", NULL, NULL},
        {"localhost:", NULL, NULL},
        {":80", NULL, NULL},
        {"::1:80", NULL, NULL},
        {"[::1]80", NULL, NULL},
        {"[::1]:", NULL, NULL},
        {"[zz]:80", NULL, NULL},
        {"host name:80", NULL, NULL},
        {"host:8o", NULL, NULL},
        {"host:-1", NULL, NULL},
        {"host:000080", NULL, NULL},
        {"", NULL, NULL},
    };

    for (size_t i = 0; i < N(cases); i++) {
        char *h = NULL, *p = NULL;
        int r = agentd_hostport_split(cases[i].in, &h, &p);

        if (!cases[i].host) {
            if (r != -EINVAL)
                fail_msg("hostport '%s' accepted", cases[i].in);
            assert_int_equal(config_check_hostport(cases[i].in), -EINVAL);
            assert_null(h);
            continue;
        }
        if (r != 0)
            fail_msg("hostport '%s' rejected", cases[i].in);
        assert_string_equal(h, cases[i].host);
        assert_string_equal(p, cases[i].port);
        assert_int_equal(config_check_hostport(cases[i].in), 0);
        free(h);
        free(p);
    }
}

static void test_url(void **state)
{
    static const char *const good[] = {
        "http://127.0.0.1:8000/my-devices/health.json",
        "https://example.com",
        "HTTPS://Example.COM/a?b=c#d",
        "http://[::1]:8080/x",
        "http://user:pw@host:1/",
        "http://host?x",
    };
    static const char *const bad[] = {
        "ftp://example.com/", "http:/x",       "http://",
        "http:///path",       "http://ho st/", "http://host:port/",
        "http://host:99999/", "http://[::1/",  "example.com",
        "http://host/a b",    "http://host:/",
    };

    for (size_t i = 0; i < N(good); i++) {
        if (config_check_url(good[i]) != 0)
            fail_msg("url '%s' rejected", good[i]);
    }
    for (size_t i = 0; i < N(bad); i++) {
        if (config_check_url(bad[i]) != -EINVAL)
            fail_msg("url '%s' accepted", bad[i]);
    }
}

static void test_suggest(void **state)
{
    static const char *const words[] = {"listen",   "paths",   "allow",     "checks",
                                        "interval", "timeout", "join_when", "az"};
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"lisen", "listen"},
        {"listne", "listen"},
        {"Listen", "listen"},
        {"intreval", "interval"},
        {"intervals", "interval"},
        {"timout", "timeout"},
        {"joinwhen", "join_when"},
        {"chekcs", "checks"},
        {"ax", "az"},
        {"foo", NULL},
        {"xyzzy", NULL},
        {"listening", NULL},
        {"a", NULL},
        {"", NULL},
    };

    for (size_t i = 0; i < N(cases); i++) {
        const char *got = config_suggest(cases[i].in, words, N(words));

        if (cases[i].want ? !got || strcmp(got, cases[i].want) : got != NULL)
            fail_msg("suggest '%s': got '%s'", cases[i].in, got ? got : "(null)");
    }
}

static void test_format_roundtrip(void **state)
{
    static const uint64_t ms[] = {0, 1, 250, 1000, 90000, 3600000, 86400000, 90061001, 1ULL << 50};
    static const uint64_t bytes[] = {0,     1,        512,        1000, 1024,
                                     65536, 10485760, 1ULL << 40, 1536, UINT64_MAX};
    char buf[64];

    for (size_t i = 0; i < N(ms); i++) {
        uint64_t back = 1;

        conf_format_duration(ms[i], buf, sizeof(buf));
        assert_int_equal(config_parse_duration(buf, &back), 0);
        assert_true(back == ms[i]);
    }
    conf_format_duration(90000, buf, sizeof(buf));
    assert_string_equal(buf, "1m30s");
    for (size_t i = 0; i < N(bytes); i++) {
        uint64_t back = 1;

        conf_format_size(bytes[i], buf, sizeof(buf));
        assert_int_equal(config_parse_size(buf, &back), 0);
        assert_true(back == bytes[i]);
    }
    conf_format_size(65536, buf, sizeof(buf));
    assert_string_equal(buf, "64KiB");
}

static void test_err_set(void **state)
{
    struct agentd_err err;
    char big[600];

    assert_int_equal(agentd_err_set(&err, "bad %s %d", "thing", 7), -EINVAL);
    assert_string_equal(err.msg, "bad thing 7");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(agentd_err_set(&err, "%s", big), -EINVAL);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration), cmocka_unit_test(test_size),
        cmocka_unit_test(test_bool),     cmocka_unit_test(test_int),
        cmocka_unit_test(test_cidr),     cmocka_unit_test(test_cidr_contains),
        cmocka_unit_test(test_hostport), cmocka_unit_test(test_url),
        cmocka_unit_test(test_suggest),  cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_err_set),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

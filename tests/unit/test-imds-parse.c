/* Unit tests of the imds plugin's parsers of IMDS answers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/imds/imds.h"

#define S(x) x, strlen(x)

static const char creds_ok[] =
    "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-11-22T08:00:00Z\",\n"
    "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIATESTAAAAAAAAAAAA\",\n"
    "  \"SecretAccessKey\" : \"c2VjcmV0\",\n  \"Token\" : \"IQoJtoken==\",\n"
    "  \"Expiration\" : \"2026-11-22T14:00:00Z\"\n}";

static void test_creds_ok(void **state)
{
    struct imds_creds c = {0};
    assert_int_equal(imds_parse_creds(S(creds_ok), &c), 0);
    assert_string_equal(c.access_key_id, "ASIATESTAAAAAAAAAAAA");
    assert_string_equal(c.secret_access_key, "c2VjcmV0");
    assert_string_equal(c.token, "IQoJtoken==");
    assert_string_equal(c.expiration, "2026-11-22T14:00:00Z");
    assert_int_equal(c.expires_at, 1795356000);
    imds_creds_clear(&c);
    assert_null(c.access_key_id);
    assert_null(c.secret_access_key);
}

static void test_creds_bad(void **state)
{
    static const struct {
        const char *body;
        int err;
    } cases[] = {
        {"", -EBADMSG},
        {"not json", -EBADMSG},
        {"[]", -EBADMSG},
        {"{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"x\"}", -EPROTO},
        {"{\"Code\":1}", -EPROTO},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\",\"Token\":\"C\"}", -EINVAL},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\",\"Token\":\"C\",\"Expiration\":"
         "\"soon\"}",
         -EINVAL},
        {"{\"AccessKeyId\":\"\",\"SecretAccessKey\":\"B\",\"Token\":\"C\","
         "\"Expiration\":\"2026-11-22T14:00:00Z\"}",
         -EINVAL},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":5,\"Token\":\"C\","
         "\"Expiration\":\"2026-11-22T14:00:00Z\"}",
         -EINVAL},
        {"{\"AccessKeyId\":\"A\\nB\",\"SecretAccessKey\":\"B\",\"Token\":\"C\","
         "\"Expiration\":\"2026-11-22T14:00:00Z\"}",
         -EINVAL},
        {"{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\"}", -EBADMSG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct imds_creds c = {0};
        int r = imds_parse_creds(S(cases[i].body), &c);
        if (r != cases[i].err)
            fail_msg("case %zu (%s): %d, expected %d", i, cases[i].body, r, cases[i].err);
        assert_null(c.access_key_id);
    }
}

static void test_creds_without_code(void **state)
{
    /* Some IMDS-compatible endpoints (ECS, emulators) leave out Code. */
    struct imds_creds c = {0};
    assert_int_equal(
        imds_parse_creds(S("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\","
                           "\"Token\":\"C\",\"Expiration\":\"2026-01-01T00:00:00.123Z\"}"),
                         &c),
        0);
    assert_int_equal(c.expires_at, 1767225600);
    imds_creds_clear(&c);
}

static void test_spot(void **state)
{
    char *a = NULL, *t = NULL;
    assert_int_equal(
        imds_parse_spot(S("{\"action\": \"terminate\", \"time\": \"2017-09-18T08:22:00Z\"}"), &a,
                        &t),
        0);
    assert_string_equal(a, "terminate");
    assert_string_equal(t, "2017-09-18T08:22:00Z");
    free(a);
    free(t);
    a = t = NULL;
    assert_int_equal(
        imds_parse_spot(S("{\"action\":\"hibernate\",\"time\":\"2017-09-18T08:22:00Z\","
                          "\"extra\":1}"),
                        &a, &t),
        0);
    assert_string_equal(a, "hibernate");
    free(a);
    free(t);
    a = t = NULL;
    assert_int_equal(imds_parse_spot(S("{\"action\":\"stop\"}"), &a, &t), -EINVAL);
    assert_int_equal(
        imds_parse_spot(S("{\"action\":\"st op\",\"time\":\"2017-09-18T08:22:00Z\"}"), &a, &t),
        -EINVAL);
    assert_int_equal(imds_parse_spot(S("{\"action\":\"stop\",\"time\":\"tomorrow\"}"), &a, &t),
                     -EINVAL);
    assert_int_equal(imds_parse_spot(S("<html>"), &a, &t), -EBADMSG);
    assert_null(a);
    assert_null(t);
}

static void test_rebalance(void **state)
{
    char *t = NULL;
    assert_int_equal(imds_parse_rebalance(S("{\"noticeTime\": \"2020-10-27T08:22:00Z\"}"), &t), 0);
    assert_string_equal(t, "2020-10-27T08:22:00Z");
    free(t);
    t = NULL;
    assert_int_equal(imds_parse_rebalance(S("{\"noticeTime\": 12}"), &t), -EINVAL);
    assert_int_equal(imds_parse_rebalance(S("{}"), &t), -EINVAL);
    assert_null(t);
}

static void test_maintenance(void **state)
{
    json_t *ev = NULL;
    const char *body = "[ {\n \"NotBefore\" : \"21 Jan 2019 09:00:43 GMT\",\n \"Code\" : "
                       "\"system-reboot\",\n \"Description\" : \"scheduled reboot\",\n "
                       "\"EventId\" : \"instance-event-0d59937288b749b32\",\n \"NotAfter\" : "
                       "\"21 Jan 2019 09:17:23 GMT\",\n \"State\" : \"active\"\n } ]";
    assert_int_equal(imds_parse_maintenance(S(body), &ev), 0);
    assert_int_equal(json_array_size(ev), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "Code")),
                        "system-reboot");
    json_decref(ev);
    assert_int_equal(imds_parse_maintenance(S("[]"), &ev), 0);
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
    assert_int_equal(imds_parse_maintenance(S(" \n"), &ev), 0);
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
    ev = NULL;
    assert_int_equal(imds_parse_maintenance(S("{}"), &ev), -EINVAL);
    assert_int_equal(imds_parse_maintenance(S("[1]"), &ev), -EINVAL);
    assert_int_equal(imds_parse_maintenance(S("[{"), &ev), -EBADMSG);
    assert_null(ev);
}

static void test_lifecycle(void **state)
{
    static const char *const ok[] = {"InService",         "Standby",          "Detached",
                                     "Terminated",        "Warmed:Stopped",   "Warmed:Running",
                                     "Warmed:Hibernated", "Warmed:Terminated"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char *s = NULL;
        assert_int_equal(imds_parse_lifecycle(ok[i], strlen(ok[i]), &s), 0);
        assert_string_equal(s, ok[i]);
        free(s);
    }
    char *s = NULL;
    assert_int_equal(imds_parse_lifecycle(S("InService\n"), &s), 0);
    assert_string_equal(s, "InService");
    free(s);
    s = NULL;
    assert_int_equal(imds_parse_lifecycle(S(""), &s), -EINVAL);
    assert_int_equal(imds_parse_lifecycle(S("In Service"), &s), -EINVAL);
    assert_int_equal(imds_parse_lifecycle(S("{\"state\":1}"), &s), -EINVAL);
    assert_null(s);
}

static void test_identity(void **state)
{
    struct imds_identity id = {0};
    const char *doc = "{\"accountId\":\"123456789012\",\"architecture\":\"x86_64\","
                      "\"availabilityZone\":\"eu-west-1b\",\"billingProducts\":null,"
                      "\"imageId\":\"ami-1\",\"instanceId\":\"i-1\",\"instanceType\":\"m5.large\","
                      "\"pendingTime\":\"2026-01-01T00:00:00Z\",\"privateIp\":\"10.0.0.1\","
                      "\"region\":\"eu-west-1\",\"version\":\"2017-09-30\"}";
    assert_int_equal(imds_parse_identity(S(doc), &id), 0);
    assert_string_equal(id.account_id, "123456789012");
    assert_string_equal(id.region, "eu-west-1");
    assert_string_equal(id.az, "eu-west-1b");
    assert_string_equal(id.instance_id, "i-1");
    assert_string_equal(id.instance_type, "m5.large");
    assert_string_equal(id.image_id, "ami-1");
    assert_string_equal(id.private_ip, "10.0.0.1");
    imds_identity_clear(&id);
    assert_int_equal(imds_parse_identity(S("{\"accountId\":\"12a\",\"instanceId\":\"i-1\"}"), &id),
                     -EINVAL);
    assert_int_equal(imds_parse_identity(S("{\"instanceId\":\"i-1\"}"), &id), -EINVAL);
    assert_int_equal(imds_parse_identity(S("{\"accountId\":\"1\",\"instanceId\":\"i-1\"}"), &id),
                     0);
    assert_null(id.region);
    imds_identity_clear(&id);
}

static void test_value(void **state)
{
    char *v = NULL;
    assert_int_equal(imds_parse_value(S("i-0123\n"), &v), 0);
    assert_string_equal(v, "i-0123");
    free(v);
    v = NULL;
    assert_int_equal(imds_parse_value(S("  "), &v), -EINVAL);
    assert_int_equal(imds_parse_value(S("a\nb"), &v), -EINVAL);
    assert_int_equal(imds_parse_value("a\0b", 3, &v), -EINVAL);
    char big[IMDS_MAX_VALUE + 2];
    memset(big, 'x', sizeof(big));
    assert_int_equal(imds_parse_value(big, sizeof(big), &v), -EINVAL);
    assert_null(v);
}

static void test_listing(void **state)
{
    char **v = NULL;
    assert_int_equal(imds_parse_listing(S("Name\naws:cloudformation:stack-name\n\nenv \n"), 8, &v),
                     0);
    assert_string_equal(v[0], "Name");
    assert_string_equal(v[1], "aws:cloudformation:stack-name");
    assert_string_equal(v[2], "env");
    assert_null(v[3]);
    imds_strv_free(v);
    v = NULL;
    assert_int_equal(imds_parse_listing(S(""), 8, &v), 0);
    assert_null(v[0]);
    imds_strv_free(v);
    v = NULL;
    assert_int_equal(imds_parse_listing(S("a\nb\nc"), 2, &v), -E2BIG);
    assert_int_equal(imds_parse_listing(S("a\n\x01"), 2, &v), -EINVAL);
    assert_null(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_creds_ok),
        cmocka_unit_test(test_creds_bad),
        cmocka_unit_test(test_creds_without_code),
        cmocka_unit_test(test_spot),
        cmocka_unit_test(test_rebalance),
        cmocka_unit_test(test_maintenance),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_listing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

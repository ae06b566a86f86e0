/* targetgroup: Query form bodies, ELBv2 XML answers, ISO 8601 times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tg.h"

static void test_form_encoding(void **state)
{
    (void)state;
    struct tg_form f;
    tg_form_init(&f, "RegisterTargets");
    tg_form_add(&f, "TargetGroupArn",
                "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/web/0a1b");
    tg_form_add_target(&f, "i-0123456789abcdef0", 8000, NULL);
    assert_false(f.failed);
    assert_string_equal(f.buf, "Action=RegisterTargets&Version=2015-12-01&TargetGroupArn=arn%3Aaws%"
                               "3Aelasticloadbalancing%3Aeu-central-1%3A123456789012%3Atargetgroup%"
                               "2Fweb%2F0a1b&Targets.member.1.Id=i-0123456789abcdef0&Targets."
                               "member.1.Port=8000");
    tg_form_free(&f);

    tg_form_init(&f, "RegisterTargets");
    tg_form_add_target(&f, "10.0.1.5", 80, "all");
    assert_string_equal(f.buf,
                        "Action=RegisterTargets&Version=2015-12-01&Targets.member.1.Id=10.0."
                        "1.5&Targets.member.1.Port=80&Targets.member.1.AvailabilityZone=all");
    tg_form_free(&f);

    /* Reserved and non-ASCII bytes are percent-encoded, unreserved kept. */
    tg_form_init(&f, "X");
    tg_form_add(&f, "Names.member.1", "a b&c=d~e_f.g-h/\xc3\xa9");
    assert_string_equal(
        f.buf, "Action=X&Version=2015-12-01&Names.member.1=a%20b%26c%3Dd~e_f.g-h%2F%C3%A9");
    tg_form_free(&f);
}

static void test_form_bounded(void **state)
{
    (void)state;
    struct tg_form f;
    char big[4096];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tg_form_init(&f, "X");
    for (int i = 0; i < 8; i++)
        tg_form_add(&f, "k", big);
    assert_true(f.failed); /* past the cap: refused, never grown without end */
    tg_form_free(&f);
}

static const char health_xml[] =
    "<DescribeTargetHealthResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/"
    "2015-12-01/\"><DescribeTargetHealthResult><TargetHealthDescriptions><member><Target><Id>i-"
    "0abc</Id><Port>8000</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth>"
    "<State>draining</State><Reason>Target.DeregistrationInProgress</Reason><Description>Target "
    "deregistration is in progress</Description></TargetHealth></member><member><Target><Id>i-"
    "0def</Id></Target><TargetHealth><State>healthy</State></TargetHealth></member>"
    "</TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>1"
    "</RequestId></ResponseMetadata></DescribeTargetHealthResponse>";

static void test_parse_health(void **state)
{
    (void)state;
    struct tg_reply r;
    assert_int_equal(tg_reply_parse(health_xml, strlen(health_xml), &r), 0);
    assert_true(r.has_target);
    assert_string_equal(r.state, "draining"); /* the first member, not the last */
    assert_string_equal(r.reason, "Target.DeregistrationInProgress");
    assert_string_equal(r.description, "Target deregistration is in progress");
    assert_null(r.arn);
    assert_int_equal(r.dereg_delay_s, -1);
    tg_reply_free(&r);

    const char *empty = "<DescribeTargetHealthResponse><DescribeTargetHealthResult>"
                        "<TargetHealthDescriptions/></DescribeTargetHealthResult>"
                        "</DescribeTargetHealthResponse>";
    assert_int_equal(tg_reply_parse(empty, strlen(empty), &r), 0);
    assert_false(r.has_target);
    assert_null(r.state);
    tg_reply_free(&r);
}

static void test_parse_groups_and_attributes(void **state)
{
    (void)state;
    struct tg_reply r;
    const char *groups =
        "<DescribeTargetGroupsResponse><DescribeTargetGroupsResult><TargetGroups><member>"
        "<TargetGroupArn>arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1</"
        "TargetGroupArn>"
        "<TargetGroupName>web</TargetGroupName><Port>80</Port></member></TargetGroups>"
        "</DescribeTargetGroupsResult></DescribeTargetGroupsResponse>";
    assert_int_equal(tg_reply_parse(groups, strlen(groups), &r), 0);
    assert_string_equal(r.arn, "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1");
    tg_reply_free(&r);

    const char *attrs =
        "<DescribeTargetGroupAttributesResponse><DescribeTargetGroupAttributesResult><Attributes>"
        "<member><Key>stickiness.enabled</Key><Value>false</Value></member>"
        "<member><Key>deregistration_delay.timeout_seconds</Key><Value>45</Value></member>"
        "</Attributes></DescribeTargetGroupAttributesResult>"
        "</DescribeTargetGroupAttributesResponse>";
    assert_int_equal(tg_reply_parse(attrs, strlen(attrs), &r), 0);
    assert_int_equal(r.dereg_delay_s, 45);
    tg_reply_free(&r);

    const char *bad_delay =
        "<R><Attributes><member><Key>deregistration_delay.timeout_seconds</Key><Value>x5</Value>"
        "</member></Attributes></R>";
    assert_int_equal(tg_reply_parse(bad_delay, strlen(bad_delay), &r), 0);
    assert_int_equal(r.dereg_delay_s, -1);
    tg_reply_free(&r);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    struct tg_reply r;
    static const char *const bad[] = {
        "",
        "<a>",
        "<a></b>",
        "not xml at all",
        "<a><b>text</a>",
        "<DescribeTargetHealthResponse><TargetHealth><State>x</State>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(tg_reply_parse(bad[i], strlen(bad[i]), &r), -EBADMSG);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(tg_parse_time("2017-09-18T08:22:00Z", &t), 0);
    assert_int_equal(t, 1505722920);
    assert_int_equal(tg_parse_time("2017-09-18T08:22:00.123Z", &t), 0);
    assert_int_equal(t, 1505722920);
    assert_int_equal(tg_parse_time("2017-09-18T08:22:00+00:00", &t), 0);
    assert_int_equal(tg_parse_time("2017-09-18 08:22:00", &t), -EINVAL);
    assert_int_equal(tg_parse_time("2017-09-18T08:22:00", &t), -EINVAL);
    assert_int_equal(tg_parse_time("yesterday", &t), -EINVAL);
    assert_int_equal(tg_parse_time(NULL, &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_encoding),   cmocka_unit_test(test_form_bounded),
        cmocka_unit_test(test_parse_health),    cmocka_unit_test(test_parse_groups_and_attributes),
        cmocka_unit_test(test_parse_malformed), cmocka_unit_test(test_parse_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* AWS error bodies into code and message: Query (ELBv2) and S3 XML, JSON 1.1
 * (CloudWatch Logs), S3's 200-with-error, and malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "aws-internal.h"

#define S(x) x, strlen(x)

static void test_query_xml(void **state)
{
    struct aws_error e;
    const char *body = "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"http://elasticloadbalancing"
                       ".amazonaws.com/doc/2015-12-01/\"><Error><Type>Sender</Type>"
                       "<Code>TargetGroupNotFound</Code><Message>One or more target groups not "
                       "found &amp; more</Message></Error><RequestId>abc</RequestId>"
                       "</ErrorResponse>";

    assert_int_equal(aws_error_parse_xml(S(body), &e), 0);
    assert_string_equal(e.code, "TargetGroupNotFound");
    assert_string_equal(e.message, "One or more target groups not found & more");
    assert_false(aws_error_xml_is_error(S(body)));
}

static void test_s3_xml(void **state)
{
    struct aws_error e;
    const char *body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                       "<Message>Please reduce your request rate.</Message><RequestId>1</RequestId>"
                       "</Error>";
    const char *ok = "<CompleteMultipartUploadResult><Location>x</Location><Bucket>b</Bucket>"
                     "<Key>Error</Key></CompleteMultipartUploadResult>";

    assert_int_equal(aws_error_parse_xml(S(body), &e), 0);
    assert_string_equal(e.code, "SlowDown");
    assert_string_equal(e.message, "Please reduce your request rate.");
    /* CompleteMultipartUpload: 200 with an error document. */
    assert_true(aws_error_xml_is_error(S(body)));
    assert_false(aws_error_xml_is_error(S(ok)));
    assert_int_equal(aws_error_parse_xml(S(ok), &e), -ENOENT);
}

static void test_xml_bad(void **state)
{
    struct aws_error e;
    char big[2000];

    assert_int_equal(aws_error_parse_xml(S("<Error><Code>x</Error>"), &e), -EBADMSG);
    assert_int_equal(aws_error_parse_xml(S("not xml"), &e), -EBADMSG);
    assert_int_equal(aws_error_parse_xml("", 0, &e), -EBADMSG);
    assert_int_equal(aws_error_parse_xml(S("<A><Code>NotInError</Code></A>"), &e), -ENOENT);
    /* An over-long code is cut, not overflowed. */
    memset(big, 'C', sizeof(big));
    memcpy(big, "<Error><Code>", 13);
    memcpy(big + sizeof(big) - 15, "</Code></Error>", 15);
    assert_int_equal(aws_error_parse_xml(big, sizeof(big), &e), 0);
    assert_int_equal(strlen(e.code), sizeof(e.code) - 1);
}

static void test_json(void **state)
{
    struct aws_error e;

    assert_int_equal(
        aws_error_parse_json(S("{\"__type\":\"com.amazonaws.logs#ResourceNotFoundException\","
                               "\"message\":\"The specified log group does not exist.\"}"),
                             NULL, &e),
        0);
    assert_string_equal(e.code, "ResourceNotFoundException");
    assert_string_equal(e.message, "The specified log group does not exist.");
    assert_int_equal(
        aws_error_parse_json(S("{\"__type\":\"ThrottlingException\",\"Message\":\"Rate "
                               "exceeded\"}"),
                             NULL, &e),
        0);
    assert_string_equal(e.code, "ThrottlingException");
    assert_string_equal(e.message, "Rate exceeded");
    /* The x-amzn-ErrorType header wins and loses its suffix. */
    assert_int_equal(aws_error_parse_json(S("{\"__type\":\"A#B\"}"),
                                          "InvalidParameterException:http://internal.amazon.com/",
                                          &e),
                     0);
    assert_string_equal(e.code, "InvalidParameterException");
    assert_int_equal(aws_error_parse_json(S("<html>"), "ServiceUnavailableException", &e), 0);
    assert_string_equal(e.code, "ServiceUnavailableException");
}

static void test_json_bad(void **state)
{
    struct aws_error e;

    assert_int_equal(aws_error_parse_json(S("{\"message\":\"no code\"}"), NULL, &e), -ENOENT);
    assert_int_equal(aws_error_parse_json(S("[1,2]"), NULL, &e), -ENOENT);
    assert_int_equal(aws_error_parse_json(S("{bad"), NULL, &e), -EBADMSG);
    assert_int_equal(aws_error_parse_json(S("{\"__type\":5}"), NULL, &e), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_xml), cmocka_unit_test(test_s3_xml),
        cmocka_unit_test(test_xml_bad),   cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

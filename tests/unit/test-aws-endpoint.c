/* Region sources and endpoint resolution: partitions, AWS_ENDPOINT_URL and
 * AWS_ENDPOINT_URL_<ID>, per-request overrides, loopback-only http. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "aws-fake-host.h"
#include "aws-internal.h"

static int setup(void **state)
{
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS");
    unsetenv("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    aws_region_set_config(NULL);
    aws_region_set_profile(NULL);
    return 0;
}

static void expect(const char *service, const char *id, const char *override, const char *region,
                   const char *base, const char *host, const char *path)
{
    struct aws_endpoint e;

    assert_int_equal(aws_endpoint_resolve(service, id, override, region, &e), 0);
    assert_string_equal(e.base, base);
    assert_string_equal(e.host, host);
    assert_string_equal(e.path, path);
    aws_endpoint_free(&e);
}

static void test_partitions(void **state)
{
    expect("logs", NULL, NULL, "us-east-1", "https://logs.us-east-1.amazonaws.com",
           "logs.us-east-1.amazonaws.com", "");
    expect("elasticloadbalancing", NULL, NULL, "cn-north-1",
           "https://elasticloadbalancing.cn-north-1.amazonaws.com.cn",
           "elasticloadbalancing.cn-north-1.amazonaws.com.cn", "");
    expect("s3", NULL, NULL, "us-gov-west-1", "https://s3.us-gov-west-1.amazonaws.com",
           "s3.us-gov-west-1.amazonaws.com", "");
    expect("route53", NULL, NULL, "eu-west-1", "https://route53.amazonaws.com",
           "route53.amazonaws.com", "");
    expect("route53", NULL, NULL, "cn-northwest-1", "https://route53.amazonaws.com.cn",
           "route53.amazonaws.com.cn", "");
    assert_string_equal(aws_partition_name("us-gov-east-1"), "aws-us-gov");
    assert_string_equal(aws_partition_name("cn-north-1"), "aws-cn");
    assert_string_equal(aws_partition_name("eu-central-1"), "aws");
}

static void test_overrides(void **state)
{
    struct aws_endpoint e;

    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566", 1);
    expect("logs", "CLOUDWATCH_LOGS", NULL, "us-east-1", "http://127.0.0.1:4566", "127.0.0.1:4566",
           "");
    setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://localhost:9000/base/", 1);
    expect("logs", "CLOUDWATCH_LOGS", NULL, "us-east-1", "http://localhost:9000/base",
           "localhost:9000", "/base");
    /* Service ids may be given with spaces or dashes. */
    expect("logs", "cloudwatch logs", NULL, NULL, "http://localhost:9000/base", "localhost:9000",
           "/base");
    /* The plugin's endpoint option beats both; default ports are dropped. */
    expect("logs", "CLOUDWATCH_LOGS", "https://logs.example.com:443/", "us-east-1",
           "https://logs.example.com", "logs.example.com", "");
    expect("logs", "CLOUDWATCH_LOGS", "http://[::1]:8080", NULL, "http://[::1]:8080", "[::1]:8080",
           "");
    /* Another service falls back to AWS_ENDPOINT_URL. */
    expect("elasticloadbalancing", "ELASTIC_LOAD_BALANCING_V2", NULL, NULL, "http://127.0.0.1:4566",
           "127.0.0.1:4566", "");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS");
    /* No region and no override: nowhere to go. */
    assert_int_equal(aws_endpoint_resolve("logs", "CLOUDWATCH_LOGS", NULL, NULL, &e),
                     -EDESTADDRREQ);
    assert_int_equal(aws_endpoint_resolve("logs", NULL, NULL, "us-east-1; rm", &e), -EDESTADDRREQ);
}

static void test_plain_http_loopback_only(void **state)
{
    struct aws_endpoint e;

    assert_int_equal(aws_endpoint_resolve("logs", NULL, "http://10.0.0.5:80", NULL, &e), -EPERM);
    assert_int_equal(aws_endpoint_resolve("logs", NULL, "http://logs.example.com", NULL, &e),
                     -EPERM);
    setenv("AWS_ENDPOINT_URL", "http://192.168.1.1:4566", 1);
    assert_int_equal(aws_endpoint_resolve("logs", NULL, NULL, "us-east-1", &e), -EPERM);
    unsetenv("AWS_ENDPOINT_URL");
    assert_int_equal(aws_endpoint_resolve("logs", NULL, "ftp://127.0.0.1/", NULL, &e), -EINVAL);
    assert_int_equal(aws_endpoint_resolve("logs", NULL, "not a url", NULL, &e), -EINVAL);
    assert_true(aws_host_is_loopback("127.1.2.3"));
    assert_true(aws_host_is_loopback("[::1]"));
    assert_true(aws_host_is_loopback("LOCALHOST"));
    assert_true(aws_host_is_loopback("::ffff:127.0.0.1"));
    assert_false(aws_host_is_loopback("128.0.0.1"));
    assert_false(aws_host_is_loopback("localhost.example.com"));
    assert_false(aws_host_is_loopback("[::2]"));
}

static void test_region_order(void **state)
{
    assert_null(agentd_aws_region(NULL));
    fake_host_metadata("region", "ap-south-1");
    assert_string_equal(agentd_aws_region(NULL), "ap-south-1");
    assert_string_equal(aws_region_source(NULL), "metadata");
    aws_region_set_profile("eu-north-1");
    assert_string_equal(agentd_aws_region(NULL), "eu-north-1");
    assert_string_equal(aws_region_source(NULL), "profile");
    setenv("AWS_DEFAULT_REGION", "eu-west-2", 1);
    assert_string_equal(agentd_aws_region(NULL), "eu-west-2");
    setenv("AWS_REGION", "eu-west-3", 1);
    assert_string_equal(agentd_aws_region(NULL), "eu-west-3");
    assert_string_equal(aws_region_source(NULL), "environment");
    aws_region_set_config("us-west-2");
    assert_string_equal(agentd_aws_region(NULL), "us-west-2");
    assert_string_equal(aws_region_source(NULL), "config");
    /* A value that cannot be a region is ignored. */
    aws_region_set_config("../../etc");
    assert_string_equal(agentd_aws_region(NULL), "eu-west-3");
    fake_host_metadata("region", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_partitions, setup),
        cmocka_unit_test_setup(test_overrides, setup),
        cmocka_unit_test_setup(test_plain_http_loopback_only, setup),
        cmocka_unit_test_setup(test_region_order, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

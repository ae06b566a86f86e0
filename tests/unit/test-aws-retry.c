/* The standard retry mode: backoff schedule, what is retried, the quota. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "aws-internal.h"

static void test_backoff(void **state)
{
    /* min(rand * 2^retry s, 20 s), full jitter. */
    assert_int_equal(aws_retry_backoff_ms(0, 1.0), 1000);
    assert_int_equal(aws_retry_backoff_ms(1, 1.0), 2000);
    assert_int_equal(aws_retry_backoff_ms(2, 0.5), 2000);
    assert_int_equal(aws_retry_backoff_ms(4, 1.0), 16000);
    assert_int_equal(aws_retry_backoff_ms(5, 1.0), 20000);
    assert_int_equal(aws_retry_backoff_ms(200, 1.0), 20000);
    assert_int_equal(aws_retry_backoff_ms(200, 0.25), 20000);
    assert_int_equal(aws_retry_backoff_ms(6, 0.5), 20000);
    assert_int_equal(aws_retry_backoff_ms(5, 0.5), 16000);
    assert_int_equal(aws_retry_backoff_ms(6, 0.25), 16000);
    assert_int_equal(aws_retry_backoff_ms(3, 0.0), 0);
    assert_int_equal(aws_retry_backoff_ms(3, -1.0), 0);
    assert_int_equal(aws_retry_backoff_ms(0, 7.0), 1000);
}

static void test_retryable(void **state)
{
    assert_true(aws_retry_retryable(-ETIMEDOUT, 0, NULL));
    assert_true(aws_retry_retryable(-ECONNREFUSED, 0, NULL));
    assert_true(aws_retry_retryable(-ECONNRESET, 0, NULL));
    assert_false(aws_retry_retryable(-EFBIG, 0, NULL));
    assert_false(aws_retry_retryable(-EKEYREJECTED, 0, NULL));
    assert_false(aws_retry_retryable(-EINVAL, 0, NULL));
    for (long s = 500; s <= 504; s++)
        assert_true(aws_retry_retryable(0, s, NULL) == (s != 501));
    assert_true(aws_retry_retryable(0, 429, NULL));
    assert_true(aws_retry_retryable(0, 400, "Throttling"));
    assert_true(aws_retry_retryable(0, 400, "ThrottlingException"));
    assert_true(aws_retry_retryable(0, 400, "RequestLimitExceeded"));
    assert_true(aws_retry_retryable(0, 503, "SlowDown"));
    assert_true(aws_retry_retryable(0, 400, "TooManyRequestsException"));
    assert_true(aws_retry_retryable(0, 400, "RequestTimeout"));
    assert_false(aws_retry_retryable(0, 400, "TargetGroupNotFound"));
    assert_false(aws_retry_retryable(0, 400, "InvalidParameterException"));
    assert_false(aws_retry_retryable(0, 403, "AccessDenied"));
    assert_false(aws_retry_retryable(0, 404, NULL));
    assert_true(aws_retry_is_throttle("Throttling"));
    assert_false(aws_retry_is_throttle(NULL));
}

static void test_quota(void **state)
{
    struct aws_retry_quota q;
    int retries = 0, cost;

    aws_retry_quota_init(&q);
    assert_int_equal(q.tokens, 500);
    /* A dead endpoint: 100 retries drain it, then none. */
    while ((cost = aws_retry_quota_acquire(&q, false)) > 0)
        retries++;
    assert_int_equal(retries, 100);
    assert_int_equal(cost, -ENOSPC);
    /* A success after retries gives their cost back; a first-try success
     * adds one token. */
    aws_retry_quota_release(&q, 5);
    assert_int_equal(q.tokens, 5);
    aws_retry_quota_release(&q, 0);
    assert_int_equal(q.tokens, 6);
    assert_int_equal(aws_retry_quota_acquire(&q, true), -ENOSPC);
    assert_int_equal(aws_retry_quota_acquire(&q, false), 5);
    /* Timeouts cost 10; the quota never exceeds its maximum. */
    aws_retry_quota_init(&q);
    assert_int_equal(aws_retry_quota_acquire(&q, true), 10);
    assert_int_equal(q.tokens, 490);
    for (int i = 0; i < 50; i++)
        aws_retry_quota_release(&q, 0);
    assert_int_equal(q.tokens, 500);
}

static void test_quota_per_endpoint(void **state)
{
    struct aws_retry_quota *a = aws_retry_quota_for("a.example"),
                           *b = aws_retry_quota_for("b.example");

    assert_ptr_not_equal(a, b);
    assert_ptr_equal(a, aws_retry_quota_for("a.example"));
    while (aws_retry_quota_acquire(a, false) > 0)
        ;
    assert_int_equal(b->tokens, 500);
}

static void test_default_attempts(void **state)
{
    assert_int_equal(aws_default_max_attempts(), 3);
    aws_set_default_max_attempts(5);
    assert_int_equal(aws_default_max_attempts(), 5);
    aws_set_default_max_attempts(0);
    assert_int_equal(aws_default_max_attempts(), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_quota_per_endpoint),
        cmocka_unit_test(test_default_attempts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* route53 plugin: retry delays grow, are capped, carry jitter, and never
 * retry a permanent error faster than tens of seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "r53.h"

struct range {
    uint64_t lo, hi;
    size_t distinct;
};

static struct range sample(unsigned failures, bool permanent, bool leaving)
{
    struct range r = {UINT64_MAX, 0, 0};
    uint64_t seen[200];
    for (size_t i = 0; i < 200; i++) {
        uint64_t d = r53_backoff_ms(failures, permanent, leaving);
        seen[i] = d;
        if (d < r.lo)
            r.lo = d;
        if (d > r.hi)
            r.hi = d;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = seen[j] == d;
        r.distinct += !dup;
    }
    return r;
}

static void test_permanent_is_slow_and_capped(void **state)
{
    (void)state;
    struct range r = sample(1, true, false);
    assert_true(r.lo >= 15000 && r.hi <= 30000);
    assert_true(r.distinct > 100); /* jittered, not a fixed schedule */
    r = sample(2, true, false);
    assert_true(r.lo >= 30000 && r.hi <= 60000);
    r = sample(50, true, false);
    assert_true(r.lo >= 300000 && r.hi <= 600000);
}

static void test_transient_grows_from_seconds(void **state)
{
    (void)state;
    struct range r = sample(1, false, false);
    assert_true(r.lo >= 1000 && r.hi <= 2000);
    assert_true(r.distinct > 100);
    r = sample(4, false, false);
    assert_true(r.lo >= 8000 && r.hi <= 16000);
    r = sample(30, false, false);
    assert_true(r.lo >= 30000 && r.hi <= 60000);
}

static void test_leaving_retries_within_a_second(void **state)
{
    (void)state;
    struct range r = sample(1, false, true);
    assert_true(r.lo >= 125 && r.hi <= 250);
    r = sample(9, true, true);
    assert_true(r.lo >= 500 && r.hi <= 1000);
}

static void test_recheck_jitter(void **state)
{
    (void)state;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t d = r53_jitter_ms(600000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo >= 480000 && hi <= 720000);
    assert_true(hi - lo > 100000); /* spread over most of the +-20% */
}

int main(void)
{
    srand(12345);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permanent_is_slow_and_capped),
        cmocka_unit_test(test_transient_grows_from_seconds),
        cmocka_unit_test(test_leaving_retries_within_a_second),
        cmocka_unit_test(test_recheck_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests: the tunnel retry schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../plugins/tunnel/tunnel.h"

static const struct tunnel_backoff policy = {.initial_ms = 1000, .max_ms = 4000, .floor_ms = 250};

/* The ceiling doubles from 1 s to the cap; the draw spans [floor, ceiling]. */
static void test_bounds(void **state)
{
    static const uint64_t ceilings[] = {1000, 2000, 4000, 4000, 4000};
    (void)state;

    for (unsigned n = 0; n < 5; n++) {
        assert_int_equal(tunnel_backoff_delay(&policy, n, 0), 250);
        assert_int_equal(tunnel_backoff_delay(&policy, n, ceilings[n] - 250), ceilings[n]);
        assert_int_equal(tunnel_backoff_delay(&policy, n, ceilings[n] - 249), 250);
    }
    /* Huge failure counts neither overflow nor exceed the cap. */
    assert_int_equal(tunnel_backoff_delay(&policy, 200, UINT64_MAX % 3751),
                     250 + UINT64_MAX % 3751);
    assert_true(tunnel_backoff_delay(&policy, UINT32_MAX, UINT64_MAX) <= 4000);
    const struct tunnel_backoff big = {.initial_ms = 1000, .max_ms = UINT64_MAX / 2 + 7};
    assert_true(tunnel_backoff_delay(&big, 1000, UINT64_MAX - 1) <= big.max_ms);
}

/* A floor at or above the ceiling means no jitter, never below the floor. */
static void test_floor(void **state)
{
    const struct tunnel_backoff p = {.initial_ms = 1000, .max_ms = 1000, .floor_ms = 1500};
    (void)state;
    assert_int_equal(tunnel_backoff_delay(&p, 0, 12345), 1000);
}

/* The promise behind the defaults: during an outage in which every attempt
 * fails instantly, attempts average at most about one per second, and no gap
 * is longer than the cap (so a returning server is found within it). */
static void test_rate(void **state)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL, elapsed = 0, max_gap = 0;
    unsigned attempts = 0;
    (void)state;

    for (unsigned n = 0; elapsed < 3600 * 1000; n++) {
        uint64_t d = tunnel_backoff_delay(&policy, n, tunnel_rand(&seed));
        elapsed += d;
        attempts++;
        if (d > max_gap)
            max_gap = d;
    }
    print_message("attempts in 1 h: %u, longest gap %llu ms\n", attempts,
                  (unsigned long long)max_gap);
    assert_true(attempts < 3600);
    assert_true(attempts > 3600 / 4);
    assert_true(max_gap <= 4000);

    /* Right after a drop the ceiling is still small: on average over many
     * outages, still no more than one attempt per second in the first 5 s,
     * and about one per 2 s over the first minute. */
    for (uint64_t window = 5000; window <= 60000; window += 55000) {
        uint64_t total = 0;
        for (unsigned trial = 0; trial < 2000; trial++) {
            elapsed = 0;
            for (unsigned n = 0; elapsed < window; n++) {
                elapsed += tunnel_backoff_delay(&policy, n, tunnel_rand(&seed));
                total++;
            }
        }
        print_message("window %llu ms: %.2f attempts on average\n", (unsigned long long)window,
                      total / 2000.0);
        /* 5 s: at most 1/s; a minute: at most 0.6/s (about 0.5 expected). */
        assert_true(total / 2000.0 <= (window == 5000 ? 5.0 : 36.0));
    }
}

static void test_permanent(void **state)
{
    uint64_t seed = 42;
    (void)state;
    for (int i = 0; i < 1000; i++) {
        uint64_t d = tunnel_backoff_permanent(300000, tunnel_rand(&seed));
        assert_true(d <= 300000 && d >= 270000);
    }
    assert_int_equal(tunnel_backoff_permanent(5, 3), 5);
}

static void test_rand(void **state)
{
    uint64_t s = 1, a = tunnel_rand(&s), b = tunnel_rand(&s);
    (void)state;
    assert_int_not_equal(a, b);
    assert_int_not_equal(s, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds),    cmocka_unit_test(test_floor), cmocka_unit_test(test_rate),
        cmocka_unit_test(test_permanent), cmocka_unit_test(test_rand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of rise/fall (plugins/health/debounce.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/health/health-int.h"

#define P AGENTD_HEALTH_PASS
#define W AGENTD_HEALTH_WARN
#define F AGENTD_HEALTH_FAIL

struct dcase {
    const char *name;
    unsigned rise, fall;
    int grace_runs; /* the first grace_runs results are in the grace period */
    enum agentd_health_status in[12];
    const char *want; /* reported status after each result: p/w/f */
};

static const struct dcase cases[] = {
    {"initial fail, rise 2", 2, 2, 0, {P, P, P}, "fpp"},
    {"rise 1", 1, 2, 0, {P}, "p"},
    {"interrupted rise", 3, 2, 0, {P, P, F, P, P, P}, "fffffp"},
    {"fall 2", 1, 2, 0, {P, F, P, F, F}, "ppppf"},
    {"fall 3", 1, 3, 0, {P, F, F, F}, "pppf"},
    {"warn and fail both count down", 1, 2, 0, {P, W, F}, "ppf"},
    {"fail to warn is a rise", 2, 2, 0, {W, W, P, P}, "fwwp"},
    {"warn to fail is a fall", 1, 2, 0, {W, F, F}, "wwf"},
    {"grace: one pass is enough", 3, 2, 2, {F, P, P}, "fpp"},
    {"grace: failures do not count", 1, 2, 3, {P, F, F, F, F}, "ppppf"},
    {"first failure result keeps fail", 2, 2, 0, {F, F, P, P}, "fffp"},
};

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct dcase *c = &cases[i];
        struct debounce d = {.reported = F};

        for (size_t k = 0; k < strlen(c->want); k++) {
            enum agentd_health_status before = d.reported;
            bool changed = debounce_step(&d, c->in[k], c->rise, c->fall, (int)k < c->grace_runs);
            char got = d.reported == P ? 'p' : d.reported == W ? 'w' : 'f';

            if (got != c->want[k])
                fail_msg("%s: result %zu: reported %c, want %c", c->name, k, got, c->want[k]);
            assert_int_equal(changed, before != d.reported);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};

    return cmocka_run_group_tests(tests, NULL, NULL);
}

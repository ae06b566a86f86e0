/* Templates: load-time checks of {names} and expansion. */
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

static void test_check(void **state)
{
    static const char *const extra[] = {"seq", "pipeline", NULL};
    static const struct {
        const char *tmpl;
        int r;
        const char *bad, *hint;
    } cases[] = {
        {"", 0, NULL, NULL},
        {"plain", 0, NULL, NULL},
        {"{instance_id}", 0, NULL, NULL},
        {"{instance_type}{ami_id}{region}{az}{local_ipv4}{public_ipv4}", 0, NULL, NULL},
        {"{hostname}-{mac}-{account_id}-{iam_role}", 0, NULL, NULL},
        {"ELASTICRTC-{tag:aws:cloudformation:stack-name}", 0, NULL, NULL},
        {"{tag:Name}", 0, NULL, NULL},
        {"log/%Y/%m/%d/%H%M%S-{seq}.log.gz", 0, NULL, NULL},
        {"{{not a template}}", 0, NULL, NULL},
        {"a {{ b }} c", 0, NULL, NULL},
        {"{{{region}}}", 0, NULL, NULL},
        {"{pipeline}", 0, NULL, NULL},
        {"{instnce_id}", -ENOENT, "instnce_id", "instance_id"},
        {"x-{regoin}", -ENOENT, "regoin", "region"},
        {"{zone}", -ENOENT, "zone", NULL},
        {"{tag:}", -ENOENT, "tag:", "tag:NAME"},
        {"{tags:Name}", -ENOENT, "tags:Name", NULL},
        {"{tag_Name}", -ENOENT, "tag_Name", "tag:NAME"},
        {"{sqe}", -ENOENT, "sqe", "seq"},
        {"{Region}", -ENOENT, "Region", "region"},
        {"{}", -EINVAL, "an empty template {}", NULL},
        {"{region", -EINVAL, "a '{' without its '}' (write '{{' for a literal brace)", NULL},
        {"{a{region}}", -EINVAL, "a '{' without its '}' (write '{{' for a literal brace)", NULL},
        {"region}", -EINVAL, "a lone '}' (write '}}' for a literal brace)", NULL},
    };

    for (size_t i = 0; i < N(cases); i++) {
        char *bad = NULL, *hint = NULL;
        int r = template_check_hint(cases[i].tmpl, extra, &bad, &hint);

        if (r != cases[i].r)
            fail_msg("'%s': got %d want %d", cases[i].tmpl, r, cases[i].r);
        if (r != 0) {
            assert_string_equal(bad, cases[i].bad);
            if (cases[i].hint)
                assert_string_equal(hint, cases[i].hint);
            else
                assert_null(hint);
        }
        free(bad);
        free(hint);
        /* The public form folds both kinds into -EINVAL. */
        bad = NULL;
        r = template_check(cases[i].tmpl, extra, &bad);
        assert_int_equal(r, cases[i].r ? -EINVAL : 0);
        if (r)
            assert_string_equal(bad, cases[i].bad);
        free(bad);
    }
}

static const char *lookup(const char *name, void *ud)
{
    static const char *const kv[] = {"instance_id", "i-0abc", "region", "eu-central-1", "tag:Name",
                                     "web {1}",     "seq",    "42",     "empty",        ""};

    (void)ud;
    for (size_t i = 0; i < N(kv); i += 2) {
        if (!strcmp(name, kv[i]))
            return kv[i + 1];
    }
    return NULL;
}

static void test_expand(void **state)
{
    static const struct {
        const char *tmpl;
        int r;
        const char *out; /* or the missing name */
    } cases[] = {
        {"", 0, ""},
        {"plain", 0, "plain"},
        {"{instance_id}", 0, "i-0abc"},
        {"{region}-{tag:Name}", 0, "eu-central-1-web {1}"},
        {"log/%Y/%m/{seq}.gz", 0, "log/%Y/%m/42.gz"},
        {"{{x}} {{{region}}}", 0, "{x} {eu-central-1}"},
        {"a{empty}b", 0, "ab"},
        {"{az}", -ENOENT, "az"},
        {"ok {region} then {tag:Owner}", -ENOENT, "tag:Owner"},
        {"{region", -EINVAL, NULL},
        {"}", -EINVAL, NULL},
    };

    for (size_t i = 0; i < N(cases); i++) {
        char *out = NULL, *missing = NULL;
        int r = template_expand(cases[i].tmpl, lookup, NULL, &out, &missing);

        if (r != cases[i].r)
            fail_msg("'%s': got %d want %d", cases[i].tmpl, r, cases[i].r);
        if (r == 0)
            assert_string_equal(out, cases[i].out);
        else
            assert_null(out);
        if (r == -ENOENT)
            assert_string_equal(missing, cases[i].out);
        else
            assert_null(missing);
        free(out);
        free(missing);
    }
}

static const char *long_value(const char *name, void *ud)
{
    return ud;
}

static void test_expand_bounded(void **state)
{
    char *big = malloc(40000), *out = NULL;

    memset(big, 'x', 39999);
    big[39999] = '\0';
    assert_int_equal(template_expand("{a}{a}", long_value, big, &out, NULL), -E2BIG);
    assert_null(out);
    assert_int_equal(template_expand("{a}", long_value, big, &out, NULL), 0);
    assert_int_equal(strlen(out), 39999);
    free(out);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_expand_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

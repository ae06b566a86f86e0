/* Unit tests of the health plugin's router (plugins/health/route.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/health/health-int.h"

static const char *const paths[] = {"/health", "/my-devices/health.json"};

struct rcase {
    unsigned method;
    const char *url;
    enum route_kind kind;
    bool head, verbose;
};

static const struct rcase cases[] = {
    {HTTP_GET, "/health", ROUTE_HEALTH, false, false},
    {HTTP_HEAD, "/health", ROUTE_HEALTH, true, false},
    {HTTP_GET, "/my-devices/health.json", ROUTE_HEALTH, false, false},
    {HTTP_GET, "/health?verbose", ROUTE_HEALTH, false, true},
    {HTTP_GET, "/health?verbose=1", ROUTE_HEALTH, false, true},
    {HTTP_GET, "/health?a=b&verbose=true", ROUTE_HEALTH, false, true},
    {HTTP_GET, "/health?verbose=0", ROUTE_HEALTH, false, false},
    {HTTP_GET, "/health?verbosex", ROUTE_HEALTH, false, false},
    {HTTP_GET, "/health?xverbose", ROUTE_HEALTH, false, false},
    {HTTP_GET, "/health#frag", ROUTE_HEALTH, false, false},
    {HTTP_GET, "/health/", ROUTE_NOT_FOUND, false, false},
    {HTTP_GET, "/Health", ROUTE_NOT_FOUND, false, false},
    {HTTP_GET, "/healthz", ROUTE_NOT_FOUND, false, false},
    {HTTP_GET, "/", ROUTE_NOT_FOUND, false, false},
    {HTTP_GET, "/livez", ROUTE_LIVEZ, false, false},
    {HTTP_GET, "/readyz?verbose", ROUTE_READYZ, false, true},
    {HTTP_HEAD, "/metrics", ROUTE_METRICS, true, false},
    {HTTP_GET, "http://example/health", ROUTE_HEALTH, false, false},
    {HTTP_GET, "http://example", ROUTE_NOT_FOUND, false, false},
    {HTTP_GET, "*", ROUTE_NOT_FOUND, false, false},
    {HTTP_GET, "http://[::1", ROUTE_BAD_REQUEST, false, false},
    {HTTP_GET, "", ROUTE_BAD_REQUEST, false, false},
    {HTTP_POST, "/health", ROUTE_BAD_METHOD, false, false},
    {HTTP_DELETE, "/health", ROUTE_BAD_METHOD, false, false},
    {HTTP_OPTIONS, "*", ROUTE_BAD_METHOD, false, false},
};

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct rcase *c = &cases[i];
        struct route_result r;

        route_match(paths, 2, c->method, c->url, strlen(c->url), &r);
        if (r.kind != c->kind || r.head != c->head || r.verbose != c->verbose)
            fail_msg("case %zu %s: kind %d head %d verbose %d", i, c->url, r.kind, r.head,
                     r.verbose);
    }
}

static void test_path_valid(void **state)
{
    const char *why = NULL;

    assert_true(route_path_valid("/health", &why));
    assert_true(route_path_valid("/my-devices/health.json", &why));
    assert_false(route_path_valid("health", &why));
    assert_non_null(why);
    assert_false(route_path_valid("/a?b", &why));
    assert_false(route_path_valid("/a b", &why));
    assert_false(route_path_valid("/livez", &why));
    assert_false(route_path_valid("/metrics", &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_path_valid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

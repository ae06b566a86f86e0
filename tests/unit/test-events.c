/* Event bus: asynchronous delivery in publish order, prefix patterns,
 * subscriptions dropped with their plugin, even during a delivery. */
#include <string.h>

#include "core-test.h"

static char seen[16][64];
static size_t nseen;

static void record(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload, void *ud)
{
    const char *tag = ud;

    assert_true(json_is_object(payload));
    assert_true(nseen < 16);
    snprintf(seen[nseen++], sizeof(seen[0]), "%s:%s", tag, name);
}

static int setup(void **state)
{
    host.loop = malloc(sizeof(uv_loop_t));
    uv_loop_init(host.loop);
    events_init(host.loop);
    nseen = 0;
    return 0;
}

static int teardown(void **state)
{
    events_close();
    uv_run(host.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(host.loop), 0);
    free(host.loop);
    host.loop = NULL;
    return 0;
}

static void test_delivered_async_in_order(void **state)
{
    struct agentd_plugin_ctx a = {0};

    assert_int_equal(agentd_event_subscribe(&a, "x.*", record, "a"), 0);
    agentd_event_publish(NULL, "x.one", NULL);
    agentd_event_publish(NULL, "y.two", json_object());
    agentd_event_publish(NULL, "x.three", json_pack("{s:i}", "n", 3));
    assert_int_equal(nseen, 0); /* not during publish */
    uv_run(host.loop, UV_RUN_NOWAIT);
    assert_int_equal(nseen, 2);
    assert_string_equal(seen[0], "a:x.one");
    assert_string_equal(seen[1], "a:x.three");
    events_drop_ctx(&a);
}

static void test_exact_and_prefix_patterns(void **state)
{
    struct agentd_plugin_ctx a = {0}, b = {0};

    agentd_event_subscribe(&a, "health.changed", record, "a");
    agentd_event_subscribe(&b, "health.*", record, "b");
    agentd_event_publish(NULL, "health.changed", NULL);
    agentd_event_publish(NULL, "health.draining", NULL);
    agentd_event_publish(NULL, "healthy", NULL); /* "health.*" must not match */
    events_flush();
    assert_int_equal(nseen, 3);
    assert_string_equal(seen[0], "a:health.changed");
    assert_string_equal(seen[1], "b:health.changed");
    assert_string_equal(seen[2], "b:health.draining");
    events_drop_ctx(&a);
    events_drop_ctx(&b);
}

static struct agentd_plugin_ctx victim;

static void dropper(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload,
                    void *ud)
{
    record(ctx, name, payload, ud);
    /* A plugin failing (and being dropped) while events are delivered. */
    events_drop_ctx(&victim);
    agentd_event_publish(NULL, "late", NULL);
}

static void test_drop_during_delivery(void **state)
{
    struct agentd_plugin_ctx a = {0};

    agentd_event_subscribe(&a, "e", dropper, "a");
    agentd_event_subscribe(&victim, "e", record, "v");
    agentd_event_subscribe(&a, "late", record, "a");
    agentd_event_publish(NULL, "e", NULL);
    events_flush();
    assert_int_equal(nseen, 2);
    assert_string_equal(seen[0], "a:e");
    assert_string_equal(seen[1], "a:late"); /* published during delivery, delivered after */
    events_drop_ctx(&a);
}

static void test_bad_arguments(void **state)
{
    struct agentd_plugin_ctx a = {0};

    assert_int_equal(agentd_event_subscribe(&a, "", record, NULL), -EINVAL);
    assert_int_equal(agentd_event_subscribe(&a, "x", NULL, NULL), -EINVAL);
    agentd_event_publish(NULL, NULL, json_object()); /* payload freed, nothing queued */
    events_flush();
    assert_int_equal(nseen, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivered_async_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exact_and_prefix_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_during_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

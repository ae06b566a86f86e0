/* Health registry: overall status rules, change events, draining. */
#include <string.h>

#include "core-test.h"

static json_t *events;

static void record(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload, void *ud)
{
    json_t *e = json_deep_copy(payload);

    json_object_set_new(e, "event", json_string(name));
    json_array_append_new(events, e);
}

static struct plugin_module mod;
static struct agentd_plugin desc = {.abi = AGENTD_PLUGIN_ABI, .name = "p"};
static struct agentd_plugin_ctx ctx = {.desc = &desc, .mod = &mod};

static int setup(void **state)
{
    host.loop = malloc(sizeof(uv_loop_t));
    uv_loop_init(host.loop);
    events_init(host.loop);
    events = json_array();
    agentd_event_subscribe(NULL, "health.*", record, NULL);
    log_set_level(AGENTD_LOG_ERR);
    return 0;
}

static int teardown(void **state)
{
    health_free();
    events_close();
    json_decref(events);
    uv_run(host.loop, UV_RUN_NOWAIT);
    uv_loop_close(host.loop);
    free(host.loop);
    return 0;
}

static void test_overall_rules(void **state)
{
    struct agentd_health_check *crit, *opt, *dup;
    struct agentd_health_info info;

    assert_int_equal(agentd_health_overall(NULL), AGENTD_HEALTH_PASS); /* no checks */
    assert_int_equal(agentd_health_register(&ctx, "p:db", true, &crit), 0);
    assert_int_equal(agentd_health_register(&ctx, "p:db", true, &dup), -EEXIST);
    assert_int_equal(agentd_health_register(&ctx, "p:cache", false, &opt), 0);

    assert_int_equal(agentd_health_get(NULL, "p:db", &info), 0);
    assert_int_equal(info.status, AGENTD_HEALTH_FAIL);
    assert_string_equal(info.output, "no result yet");
    assert_string_equal(info.plugin, "p");
    assert_int_equal(agentd_health_overall(NULL), AGENTD_HEALTH_FAIL);

    agentd_health_set(crit, AGENTD_HEALTH_PASS, "ok %d", 1);
    /* A failing non-critical check only warns. */
    assert_int_equal(agentd_health_overall(NULL), AGENTD_HEALTH_WARN);
    agentd_health_set(opt, AGENTD_HEALTH_PASS, "ok");
    assert_int_equal(agentd_health_overall(NULL), AGENTD_HEALTH_PASS);
    agentd_health_set(opt, AGENTD_HEALTH_WARN, "slow");
    assert_int_equal(agentd_health_overall(NULL), AGENTD_HEALTH_WARN);
    agentd_health_set(crit, AGENTD_HEALTH_FAIL, "refused");
    assert_int_equal(agentd_health_overall(NULL), AGENTD_HEALTH_FAIL);

    assert_int_equal(agentd_health_get(NULL, "p:db", &info), 0);
    assert_string_equal(info.output, "refused");
    assert_int_equal(agentd_health_get(NULL, "nope", &info), -ENOENT);
    agentd_health_unregister(crit);
    assert_int_equal(agentd_health_overall(NULL), AGENTD_HEALTH_WARN);
}

static void test_change_events_once(void **state)
{
    struct agentd_health_check *c;
    json_t *e;

    agentd_health_register(&ctx, "p:x", true, &c);
    agentd_health_set(c, AGENTD_HEALTH_PASS, "up");
    agentd_health_set(c, AGENTD_HEALTH_PASS, "still up"); /* no change: no event */
    agentd_health_set(c, AGENTD_HEALTH_FAIL, "down");
    events_flush();
    assert_int_equal(json_array_size(events), 2);
    e = json_array_get(events, 1);
    assert_string_equal(json_string_value(json_object_get(e, "event")), "health.changed");
    assert_string_equal(json_string_value(json_object_get(e, "check")), "p:x");
    assert_string_equal(json_string_value(json_object_get(e, "status")), "fail");
    assert_string_equal(json_string_value(json_object_get(e, "previous")), "pass");
    assert_string_equal(json_string_value(json_object_get(e, "output")), "down");
    assert_string_equal(json_string_value(json_object_get(e, "overall")), "fail");
}

static void test_output_truncated(void **state)
{
    struct agentd_health_check *c;
    struct agentd_health_info info;
    char big[3000];

    memset(big, 'o', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    agentd_health_register(&ctx, "p:big", true, &c);
    agentd_health_set(c, AGENTD_HEALTH_PASS, "%s", big);
    agentd_health_get(NULL, "p:big", &info);
    assert_int_equal(strlen(info.output), 1024);
}

static void test_draining_and_drop(void **state)
{
    struct agentd_health_check *c;
    json_t *j;

    assert_false(agentd_health_draining(NULL));
    agentd_health_set_draining(NULL, true, "stopping");
    agentd_health_set_draining(NULL, true, "again"); /* no change: no event */
    assert_true(agentd_health_draining(NULL));
    events_flush();
    assert_int_equal(json_array_size(events), 1);
    assert_true(json_is_true(json_object_get(json_array_get(events, 0), "draining")));

    agentd_health_register(&ctx, "p:y", true, &c);
    j = health_json();
    assert_true(json_is_true(json_object_get(j, "draining")));
    assert_int_equal(json_array_size(json_object_get(j, "checks")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "checks"), 0), "plugin")),
                        "p");
    json_decref(j);
    health_drop_ctx(&ctx); /* a plugin going away takes its checks along */
    j = health_json();
    assert_int_equal(json_array_size(json_object_get(j, "checks")), 0);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_overall_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_events_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_draining_and_drop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

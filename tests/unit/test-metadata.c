/* Metadata: providers override the static map; templates expand from both,
 * with per-call extras first. */
#include <stdlib.h>
#include <string.h>

#include "core-test.h"

static int changes;

static void on_change(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload,
                      void *ud)
{
    changes += (int)json_array_size(json_object_get(payload, "keys"));
}

static int setup(void **state)
{
    host.loop = malloc(sizeof(uv_loop_t));
    uv_loop_init(host.loop);
    events_init(host.loop);
    agentd_event_subscribe(NULL, "metadata.changed", on_change, NULL);
    changes = 0;
    return 0;
}

static int teardown(void **state)
{
    meta_free();
    events_close();
    uv_run(host.loop, UV_RUN_NOWAIT);
    uv_loop_close(host.loop);
    free(host.loop);
    return 0;
}

static void test_precedence(void **state)
{
    char *keys[] = {"region", "tag:Name"}, *values[] = {"eu-west-1", "web"};
    struct agentd_map map = {2, keys, values};

    meta_set_static(&map);
    events_flush();
    assert_int_equal(changes, 2);
    assert_string_equal(agentd_metadata_get(NULL, "region"), "eu-west-1");
    assert_int_equal(agentd_metadata_set(NULL, "region", "us-east-1"), 0);
    assert_string_equal(agentd_metadata_get(NULL, "region"), "us-east-1");
    assert_int_equal(agentd_metadata_set(NULL, "region", "us-east-1"), 0); /* same: no event */
    events_flush();
    assert_int_equal(changes, 3);
    assert_int_equal(agentd_metadata_unset(NULL, "region"), 0);
    assert_string_equal(agentd_metadata_get(NULL, "region"), "eu-west-1"); /* static shows again */
    assert_int_equal(agentd_metadata_unset(NULL, "region"), -ENOENT);
    assert_null(agentd_metadata_get(NULL, "instance_id"));
    assert_int_equal(agentd_metadata_set(NULL, "", "x"), -EINVAL);
}

static void test_template_expand(void **state)
{
    char *keys[] = {"instance_id"}, *values[] = {"i-0abc"};
    struct agentd_map map = {1, keys, values};
    const char *extra[] = {"seq", "42", "instance_id", "override", NULL};
    char *out = NULL, *missing = NULL;

    meta_set_static(&map);
    assert_int_equal(agentd_template_expand(NULL, "host-{instance_id}", NULL, &out, NULL), 0);
    assert_string_equal(out, "host-i-0abc");
    free(out);
    assert_int_equal(agentd_template_expand(NULL, "{instance_id}/{seq}", extra, &out, NULL), 0);
    assert_string_equal(out, "override/42");
    free(out);
    out = NULL;
    assert_int_equal(agentd_template_expand(NULL, "{region}", NULL, &out, &missing), -ENOENT);
    assert_null(out);
    assert_string_equal(missing, "region");
    free(missing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_template_expand, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Plugin lifecycle and loader checks: failures in configure/start mark the
 * plugin failed and destroy it once; stop is bounded by the stop timeout;
 * missing callbacks are no-ops; plugin files are checked before dlopen. */
#include <string.h>

#include "core-test.h"

static int configured, started, destroyed, stopped_cbs;
static agentd_stop_done_fn saved_done;

static int ok_configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    configured++;
    return 0;
}

static int bad_configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    configured++;
    return agentd_err_set(err, "listen: address in use");
}

static int bad_start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    started++;
    return -ECONNREFUSED; /* no message: the host makes one */
}

static int ok_start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    started++;
    return 0;
}

static void never_stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    saved_done = done;
}

static void destroy(struct agentd_plugin_ctx *ctx)
{
    destroyed++;
}

static void on_stopped(struct agentd_plugin_ctx *ctx, void *ud)
{
    stopped_cbs++;
}

static struct plugin_module mod;

static struct agentd_plugin_ctx *make(const struct agentd_plugin *d)
{
    mod.desc = d;
    mod.file = "test";
    struct agentd_plugin_ctx *ctx = plugin_ctx_new(&mod);
    plugin_ctx_link(ctx);
    return ctx;
}

static int setup(void **state)
{
    host.loop = malloc(sizeof(uv_loop_t));
    uv_loop_init(host.loop);
    events_init(host.loop);
    configured = started = destroyed = stopped_cbs = 0;
    saved_done = NULL;
    log_set_level(AGENTD_LOG_ERR - 1); /* quiet */
    return 0;
}

static int teardown(void **state)
{
    while (host.plugins)
        plugin_ctx_free(host.plugins);
    events_close();
    uv_run(host.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(host.loop), 0);
    free(host.loop);
    return 0;
}

static void test_configure_failure(void **state)
{
    static const struct agentd_plugin d = {
        .abi = 1, .name = "x", .configure = bad_configure, .destroy = destroy};
    struct agentd_plugin_ctx *ctx = make(&d);

    assert_int_equal(plugin_configure(ctx, NULL), -EINVAL);
    assert_int_equal(ctx->state, PLUGIN_FAILED);
    assert_string_equal(ctx->error, "listen: address in use");
    assert_int_equal(destroyed, 1);
    assert_int_equal(plugin_start(ctx), -EINVAL); /* never started */
    plugin_destroy(ctx);
    assert_int_equal(destroyed, 1); /* destroy() runs once */
    assert_string_equal(plugin_state_name(ctx), "failed");
}

static void test_start_failure_message(void **state)
{
    static const struct agentd_plugin d = {
        .abi = 1, .name = "x", .configure = ok_configure, .start = bad_start, .destroy = destroy};
    struct agentd_plugin_ctx *ctx = make(&d);

    assert_int_equal(plugin_configure(ctx, NULL), 0);
    assert_int_equal(plugin_start(ctx), -ECONNREFUSED);
    assert_int_equal(ctx->state, PLUGIN_FAILED);
    assert_string_equal(ctx->error, "start failed: Connection refused");
    assert_int_equal(destroyed, 1);
}

static void test_null_callbacks_are_noops(void **state)
{
    static const struct agentd_plugin d = {.abi = 1, .name = "bare"};
    struct agentd_plugin_ctx *ctx = make(&d);

    assert_int_equal(plugin_configure(ctx, NULL), 0);
    assert_int_equal(plugin_start(ctx), 0);
    assert_string_equal(plugin_state_name(ctx), "running");
    agentd_plugin_report(ctx, true, "imds unreachable");
    assert_string_equal(plugin_state_name(ctx), "degraded");
    assert_string_equal(ctx->summary, "imds unreachable");
    plugin_stop(ctx, on_stopped, NULL);
    assert_int_equal(stopped_cbs, 1); /* at once: no stop() */
    assert_int_equal(ctx->state, PLUGIN_STOPPED);
    plugin_destroy(ctx);
}

static void test_stop_timeout(void **state)
{
    static const struct agentd_plugin d = {.abi = 1,
                                           .name = "slow",
                                           .configure = ok_configure,
                                           .start = ok_start,
                                           .stop = never_stop,
                                           .destroy = destroy};
    struct agentd_plugin_ctx *ctx = make(&d);

    plugin_configure(ctx, NULL);
    ctx->stop_timeout_ms = 20;
    agentd_plugin_set_stop_timeout(ctx, 10); /* can only raise it */
    assert_int_equal(ctx->stop_timeout_ms, 20);
    plugin_start(ctx);
    plugin_stop(ctx, on_stopped, NULL);
    assert_int_equal(ctx->state, PLUGIN_STOPPING);
    assert_int_equal(stopped_cbs, 0);
    uv_run(host.loop, UV_RUN_ONCE);
    assert_int_equal(stopped_cbs, 1);
    assert_true(ctx->stop_timed_out);
    saved_done(ctx); /* late done: ignored */
    assert_int_equal(stopped_cbs, 1);
    /* The host never frees a plugin that may still run: take it back here. */
    plugin_ctx_unlink(ctx);
    ctx->stop_timed_out = false;
    plugin_ctx_free(ctx);
}

static void test_file_checks(void **state)
{
    struct stat st = {.st_mode = S_IFREG | 0644, .st_uid = 0};
    const char *why = NULL;

    assert_int_equal(plugin_check_file("p.so", &st, false, &why), 0);
    st.st_mode = S_IFREG | 0664;
    assert_int_equal(plugin_check_file("p.so", &st, false, &why), -EPERM);
    assert_string_equal(why, "writable by group or others");
    st.st_mode = S_IFREG | 0646;
    assert_int_equal(plugin_check_file("p.so", &st, false, &why), -EPERM);
    st.st_mode = S_IFREG | 0644;
    st.st_uid = 1000;
    assert_int_equal(plugin_check_file("p.so", &st, false, &why), -EPERM);
    assert_string_equal(why, "not owned by root");
    assert_int_equal(plugin_check_file("p.so", &st, true, &why), 0); /* dev mode */
    st.st_mode = S_IFDIR | 0755;
    assert_int_equal(plugin_check_file("p.so", &st, true, &why), -EPERM);
    assert_string_equal(why, "not a regular file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_configure_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failure_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_callbacks_are_noops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_checks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

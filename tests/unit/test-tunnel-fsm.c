/* Unit tests: one tunnel's state machine against a mock host. The mock
 * records spawned children instead of running ssh; the tests feed ssh's
 * stderr lines and exits and check states, errors, backoff and kills. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/tunnel/tunnel.h"

/* ---- the mock host ---- */

struct agentd_child {
    struct agentd_child_opts opts;
    int pid;
};

static uv_loop_t loop;
static struct agentd_child *last_child;
static int spawns, last_signal, releases, health_status = -1, changes;
static char health_out[256];

uv_loop_t *agentd_loop(struct agentd_plugin_ctx *ctx)
{
    (void)ctx;
    return &loop;
}

void agentd_log_fields(struct agentd_plugin_ctx *ctx, enum agentd_log_level level,
                       const char *const *fields, const char *fmt, ...)
{
    (void)ctx;
    (void)level;
    assert_string_equal(fields[0], "TUNNEL=web");
    (void)fmt;
}

int agentd_err_set(struct agentd_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int agentd_health_register(struct agentd_plugin_ctx *ctx, const char *name, bool critical,
                           struct agentd_health_check **ret)
{
    (void)ctx;
    assert_string_equal(name, "tunnel:web");
    assert_false(critical);
    *ret = (struct agentd_health_check *)&health_status;
    return 0;
}

void agentd_health_set(struct agentd_health_check *check, enum agentd_health_status status,
                       const char *fmt, ...)
{
    va_list ap;
    (void)check;
    health_status = (int)status;
    va_start(ap, fmt);
    vsnprintf(health_out, sizeof(health_out), fmt, ap);
    va_end(ap);
}

void agentd_health_unregister(struct agentd_health_check *check)
{
    (void)check;
    health_status = -2;
}

int agentd_child_spawn(struct agentd_plugin_ctx *ctx, const struct agentd_child_opts *opts,
                       struct agentd_child **ret)
{
    (void)ctx;
    assert_true(opts->new_process_group);
    assert_true(opts->die_with_agentd);
    assert_null(opts->env);
    free(last_child);
    last_child = calloc(1, sizeof(*last_child));
    last_child->opts = *opts;
    last_child->pid = 1000 + ++spawns;
    last_signal = 0;
    *ret = last_child;
    return 0;
}

int agentd_child_kill(struct agentd_child *child, int signum)
{
    (void)child;
    last_signal = signum;
    return 0;
}

pid_t agentd_child_pid(const struct agentd_child *child)
{
    return child->pid;
}

static double metric_up = -1, metric_attempts;

struct agentd_metric *agentd_metric_gauge(struct agentd_plugin_ctx *ctx, const char *name,
                                          const char *help, const char *const *labels)
{
    (void)ctx;
    (void)help;
    assert_string_equal(name, "agentd_tunnel_up");
    assert_string_equal(labels[0], "tunnel");
    assert_string_equal(labels[1], "web");
    return (struct agentd_metric *)&metric_up;
}

struct agentd_metric *agentd_metric_counter(struct agentd_plugin_ctx *ctx, const char *name,
                                            const char *help, const char *const *labels)
{
    (void)ctx;
    (void)help;
    (void)labels;
    assert_string_equal(name, "agentd_tunnel_attempts_total");
    return (struct agentd_metric *)&metric_attempts;
}

void agentd_metric_set(struct agentd_metric *m, double v)
{
    *(double *)m = v;
}

void agentd_metric_add(struct agentd_metric *m, double v)
{
    *(double *)m += v;
}

void tunnel_plugin_closed(struct tunnel_plugin *tp, struct tunnel *tun)
{
    (void)tp;
    (void)tun;
    releases++;
}

void tunnel_plugin_changed(struct tunnel_plugin *tp)
{
    (void)tp;
    changes++;
}

/* ---- helpers ---- */

static char *remote_specs[] = {"127.0.0.1:15240:127.0.0.1:3306"};
static char *local_specs[] = {"127.0.0.1:8080:db:5432"};

static struct tunnel_conf conf = {
    .name = "web",
    .destination = "tunnel@example.com:2222",
    .remote_forwards = {1, remote_specs},
    .local_forwards = {1, local_specs},
    .identity = "/k/id",
    .known_hosts = "/k/kh",
    .connect_timeout_ms = 10000,
    .backoff_max_ms = 4000,
    .backoff_permanent_ms = 300000,
    .backoff_reset_ms = 30000,
};

static struct tunnel_plugin tp;
static struct tunnel t;

static void line(const char *s)
{
    last_child->opts.on_line(last_child, 2, s, strlen(s), last_child->opts.ud);
}

static void child_exit(int64_t status, int sig)
{
    last_child->opts.on_exit(last_child, status, sig, last_child->opts.ud);
}

static void bring_up(void)
{
    line("debug1: Local forwarding listening on 127.0.0.1 port 8080.\r");
    assert_int_equal(t.state, TUNNEL_CONNECTING);
    line("debug1: remote forward success for: listen 127.0.0.1:15240, connect 127.0.0.1:3306\r");
    assert_int_equal(t.state, TUNNEL_UP);
}

static int setup(void **state)
{
    struct agentd_err err = {{0}};
    (void)state;
    uv_loop_init(&loop);
    tp.rng = 12345;
    spawns = releases = changes = 0;
    metric_attempts = 0;
    health_status = -1;
    assert_int_equal(tunnel_init(&t, &tp, &conf, &err), 0);
    tunnel_start(&t);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (t.timers_live) {
        tp.stopping = true;
        tunnel_stop(&t);
        if (t.child)
            child_exit(0, 15);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    tunnel_clear(&t);
    tp.stopping = false;
    free(last_child);
    last_child = NULL;
    return 0;
}

/* ---- tests ---- */

static void test_up_only_when_all_confirmed(void **state)
{
    (void)state;
    assert_int_equal(spawns, 1);
    assert_int_equal(t.state, TUNNEL_CONNECTING);
    /* The setup watchdog: connect_timeout + keepalive 10 s x 3 + 10 s. */
    assert_true(uv_timer_get_due_in(&t.timer) <= 50000);
    assert_true(uv_timer_get_due_in(&t.timer) >= 49000);
    /* A debug line about requesting the forward is not a confirmation. */
    line("debug1: Remote connections from 127.0.0.1:15240 forwarded to local address "
         "127.0.0.1:3306");
    line("Authenticated to example.com ([1.2.3.4]:2222) using \"publickey\".");
    assert_int_equal(t.state, TUNNEL_CONNECTING);
    assert_int_not_equal(health_status, AGENTD_HEALTH_PASS);
    bring_up();
    assert_int_equal(health_status, AGENTD_HEALTH_PASS);
    assert_true(metric_up == 1.0);
    assert_true(metric_attempts == 1.0);
    /* Up: the watchdog is off. */
    assert_int_equal(uv_is_active((uv_handle_t *)&t.timer), 0);
    json_t *st = tunnel_status_json(&t);
    assert_string_equal(json_string_value(json_object_get(st, "state")), "up");
    assert_int_equal(json_integer_value(json_object_get(st, "pid")), 1001);
    assert_true(json_is_null(json_object_get(st, "last_error")));
    json_t *fw = json_object_get(st, "forwards");
    assert_int_equal(json_array_size(fw), 2);
    assert_true(json_is_true(json_object_get(json_array_get(fw, 0), "confirmed")));
    json_decref(st);
}

static void test_transient_failure_retries_fast(void **state)
{
    (void)state;
    bring_up();
    line("Connection to example.com closed by remote host.");
    child_exit(255, 0);
    assert_int_equal(t.state, TUNNEL_BACKOFF);
    assert_int_equal(t.last_err, TUNNEL_ERR_CLOSED);
    assert_non_null(strstr(t.last_msg, "connection lost: Connection to example.com closed"));
    assert_int_equal(health_status, AGENTD_HEALTH_FAIL);
    /* The first retry comes within 1 s. */
    assert_true(uv_timer_get_due_in(&t.timer) <= 1000);
    uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(spawns, 2);
    assert_int_equal(t.state, TUNNEL_CONNECTING);
    assert_int_equal(t.restarts, 1);
    assert_true(metric_up == 0.0);
    assert_true(metric_attempts == 2.0);
    /* Refused again: the next ceiling is 2 s. */
    line("ssh: connect to host example.com port 2222: Connection refused");
    child_exit(255, 0);
    assert_int_equal(t.last_err, TUNNEL_ERR_CONNECT);
    assert_true(uv_timer_get_due_in(&t.timer) <= 2000);
    assert_true(uv_timer_get_due_in(&t.timer) >= 200);
}

static void test_permanent_error_waits_slow_cap(void **state)
{
    (void)state;
    line("Permissions 0644 for '/k/id' are too open.");
    line("Load key \"/k/id\": bad permissions");
    line("tunnel@example.com: Permission denied (publickey).");
    child_exit(255, 0);
    assert_int_equal(t.state, TUNNEL_BACKOFF);
    assert_int_equal(t.last_err, TUNNEL_ERR_IDENTITY);
    assert_non_null(strstr(t.last_msg, "identity file unusable: Permissions 0644"));
    assert_true(uv_timer_get_due_in(&t.timer) >= 270000);
    json_t *st = tunnel_status_json(&t);
    assert_string_equal(json_string_value(json_object_get(st, "error_class")), "identity");
    assert_true(json_is_true(json_object_get(st, "error_permanent")));
    assert_true(json_integer_value(json_object_get(st, "next_attempt_in_ms")) >= 270000);
    json_decref(st);
    /* agentctl tunnel restart: now, not in 5 minutes. */
    assert_int_equal(tunnel_restart(&t), 0);
    assert_int_equal(spawns, 2);
    assert_int_equal(t.state, TUNNEL_CONNECTING);
    assert_int_equal(t.failures, 0);
}

static void test_restart_while_up(void **state)
{
    (void)state;
    bring_up();
    assert_int_equal(tunnel_restart(&t), 0);
    assert_int_equal(last_signal, SIGTERM);
    assert_int_equal(t.state, TUNNEL_DOWN);
    child_exit(0, SIGTERM);
    /* Straight to a new attempt, no backoff. */
    assert_int_equal(spawns, 2);
    assert_int_equal(t.state, TUNNEL_CONNECTING);
    assert_non_null(strstr(t.last_msg, "restarted by agentctl"));
}

static void test_forward_failure_is_transient(void **state)
{
    (void)state;
    line("debug1: remote forward failure for: listen 127.0.0.1:15240, connect 127.0.0.1:3306");
    line("Error: remote port forwarding failed for listen port 15240");
    child_exit(255, 0);
    assert_int_equal(t.last_err, TUNNEL_ERR_FORWARD);
    assert_false(tunnel_err_permanent(t.last_err));
    assert_true(uv_timer_get_due_in(&t.timer) <= 1000);
}

static void test_backoff_resets_after_stable_period(void **state)
{
    (void)state;
    conf.backoff_max_ms = 1000; /* keep the wait below short */
    t.failures = 7;
    bring_up();
    /* Up for less than backoff_reset: the schedule continues at the cap. */
    child_exit(255, 0);
    assert_int_equal(t.failures, 8);
    uv_run(&loop, UV_RUN_ONCE);
    bring_up();
    t.up_mono_ms -= 31000; /* as if it had been up for 31 s */
    child_exit(255, 0);
    assert_int_equal(t.failures, 1);
    assert_true(uv_timer_get_due_in(&t.timer) <= 1000);
    conf.backoff_max_ms = 4000;
}

static void test_stop_terminates_child(void **state)
{
    (void)state;
    bring_up();
    tp.stopping = true;
    tunnel_stop(&t);
    assert_int_equal(last_signal, SIGTERM);
    assert_int_equal(t.state, TUNNEL_STOPPING);
    assert_int_equal(health_status, -2);
    child_exit(0, SIGTERM);
    assert_int_equal(t.state, TUNNEL_STOPPED);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Both timers closed and the child gone: handed back once. */
    assert_int_equal(releases, 1);
    assert_int_equal(tunnel_restart(&t), -EBUSY);
}

static void test_unexpected_exit_without_message(void **state)
{
    (void)state;
    child_exit(0, SIGKILL);
    assert_int_equal(t.last_err, TUNNEL_ERR_OTHER);
    assert_non_null(strstr(t.last_msg, "ssh killed by signal 9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_up_only_when_all_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_failure_retries_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_error_waits_slow_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_while_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_failure_is_transient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_resets_after_stable_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_terminates_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unexpected_exit_without_message, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

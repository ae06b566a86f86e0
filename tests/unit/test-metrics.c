/* Metrics: Prometheus 0.0.4 text, escaping, series identity, bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core-test.h"

static char *render(void)
{
    size_t len;
    char *s = agentd_metrics_render(NULL, &len);

    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    return s;
}

static int teardown(void **state)
{
    metrics_free();
    return 0;
}

static void test_counter_and_gauge(void **state)
{
    const char *l1[] = {"sink", "s3", NULL}, *l2[] = {"sink", "cw", NULL};
    struct agentd_metric *a = agentd_metric_counter(NULL, "agentd_logs_lines_total", "Lines", l1);
    struct agentd_metric *b = agentd_metric_counter(NULL, "agentd_logs_lines_total", "Lines", l2);
    struct agentd_metric *g = agentd_metric_gauge(NULL, "agentd_queue_bytes", "Bytes", NULL);
    char *s;

    assert_non_null(a);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(a, agentd_metric_counter(NULL, "agentd_logs_lines_total", "Lines", l1));
    agentd_metric_add(a, 3);
    agentd_metric_add(a, -1); /* counters never go down */
    agentd_metric_add(b, 0.5);
    agentd_metric_set(a, 100); /* set is for gauges */
    agentd_metric_set(g, 4096);
    agentd_metric_add(g, -96);
    s = render();
    assert_string_equal(s, "# HELP agentd_logs_lines_total Lines\n"
                           "# TYPE agentd_logs_lines_total counter\n"
                           "agentd_logs_lines_total{sink=\"s3\"} 3\n"
                           "agentd_logs_lines_total{sink=\"cw\"} 0.5\n"
                           "# HELP agentd_queue_bytes Bytes\n"
                           "# TYPE agentd_queue_bytes gauge\n"
                           "agentd_queue_bytes 4000\n");
    free(s);
}

static void test_escaping(void **state)
{
    const char *l[] = {"path", "C:\\logs\\\"a\"\nb", NULL};
    struct agentd_metric *m = agentd_metric_gauge(NULL, "x", "help with \\ and\nnewline", l);
    char *s;

    agentd_metric_set(m, 1);
    s = render();
    assert_string_equal(s, "# HELP x help with \\\\ and\\nnewline\n"
                           "# TYPE x gauge\n"
                           "x{path=\"C:\\\\logs\\\\\\\"a\\\"\\nb\"} 1\n");
    free(s);
}

static void test_special_values(void **state)
{
    struct agentd_metric *a = agentd_metric_gauge(NULL, "a", "", NULL);
    struct agentd_metric *b = agentd_metric_gauge(NULL, "b", "", NULL);
    struct agentd_metric *c = agentd_metric_gauge(NULL, "c", "", NULL);
    char *s;

    agentd_metric_set(a, NAN);
    agentd_metric_set(b, -INFINITY);
    agentd_metric_set(c, 0.25);
    s = render();
    assert_non_null(strstr(s, "\na NaN\n"));
    assert_non_null(strstr(s, "\nb -Inf\n"));
    assert_non_null(strstr(s, "\nc 0.25\n"));
    free(s);
}

static void test_rejects(void **state)
{
    const char *badlabel[] = {"1x", "v", NULL}, *odd[] = {"k", NULL};

    assert_null(agentd_metric_counter(NULL, "", "", NULL));
    assert_null(agentd_metric_counter(NULL, "9lives", "", NULL));
    assert_null(agentd_metric_counter(NULL, "has space", "", NULL));
    assert_null(agentd_metric_counter(NULL, "ok", "", badlabel));
    assert_null(agentd_metric_counter(NULL, "ok", "", odd));
    assert_non_null(agentd_metric_counter(NULL, "same", "", NULL));
    assert_null(agentd_metric_gauge(NULL, "same", "", NULL)); /* type clash */
    agentd_metric_add(NULL, 1);                               /* NULL-safe */
    agentd_metric_set(NULL, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counter_and_gauge, teardown),
        cmocka_unit_test_teardown(test_escaping, teardown),
        cmocka_unit_test_teardown(test_special_values, teardown),
        cmocka_unit_test_teardown(test_rejects, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Logging: level filter, prefixes with the plugin name, and the rate limit
 * that turns a flood of one message into ten lines and a summary. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core-test.h"

static int saved_stderr = -1;
static char path[] = "/tmp/agentd-test-log-XXXXXX";

static void capture(void)
{
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static char *release(void)
{
    static char buf[65536];
    int fd;
    ssize_t n;

    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    fd = open(path, O_RDONLY);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unlink(path);
    memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static struct agentd_plugin desc = {.abi = AGENTD_PLUGIN_ABI, .name = "tunnel"};
static struct agentd_plugin_ctx ctx = {.desc = &desc};

static void test_levels_and_prefix(void **state)
{
    char *out;

    unsetenv("JOURNAL_STREAM");
    log_init();
    log_set_level(AGENTD_LOG_INFO);
    capture();
    agentd_log(&ctx, AGENTD_LOG_ERR, "connect to '%s' failed", "host");
    agentd_log(&ctx, AGENTD_LOG_DEBUG, "not shown");
    log_notice("core line %d", 7);
    out = release();
    assert_string_equal(out, "error: tunnel: connect to 'host' failed\nnotice: core line 7\n");
    assert_int_equal(log_level_from_name("warning"), AGENTD_LOG_WARNING);
    assert_int_equal(log_level_from_name("loud"), -EINVAL);
}

static void test_rate_limit(void **state)
{
    char *out;

    log_set_level(AGENTD_LOG_DEBUG);
    capture();
    for (int i = 0; i < 25; i++)
        agentd_log(&ctx, AGENTD_LOG_WARNING, "retry %d", i);
    agentd_log(&ctx, AGENTD_LOG_WARNING, "another message");
    out = release();
    assert_int_equal(count(out, "retry "), 10);
    assert_non_null(strstr(out, "retry 9\n"));
    assert_null(strstr(out, "retry 10\n"));
    assert_int_equal(count(out, "another message"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_and_prefix),
        cmocka_unit_test(test_rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

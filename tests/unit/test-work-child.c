/* The work queue and child processes: work runs off the loop and reports
 * back on it; a child's output arrives line by line (long lines cut at
 * max_line) and always before its exit status. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core-test.h"

static int setup(void **state)
{
    host.loop = malloc(sizeof(uv_loop_t));
    uv_loop_init(host.loop);
    return 0;
}

static int teardown(void **state)
{
    uv_run(host.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(host.loop), 0);
    free(host.loop);
    return 0;
}

struct job {
    int input, output, status, done_calls;
};

static void square(void *ud)
{
    struct job *j = ud;

    j->output = j->input * j->input;
}

static void job_done(void *ud, int status)
{
    struct job *j = ud;

    j->status = status;
    j->done_calls++;
}

static void test_work_queue(void **state)
{
    struct job j = {.input = 7, .status = -1};

    assert_int_equal(agentd_work_queue(NULL, square, job_done, &j), 0);
    assert_int_equal(j.done_calls, 0);
    uv_run(host.loop, UV_RUN_DEFAULT);
    assert_int_equal(j.done_calls, 1);
    assert_int_equal(j.status, 0);
    assert_int_equal(j.output, 49);
    assert_int_equal(agentd_work_queue(NULL, NULL, job_done, &j), -EINVAL);
}

struct run {
    char out[16][64];
    int stream[16];
    size_t nlines;
    int exits;
    size_t lines_at_exit;
    int64_t status;
    int sig;
};

static void on_line(struct agentd_child *c, int stream, const char *line, size_t len, void *ud)
{
    struct run *r = ud;

    assert_int_equal(strlen(line), len);
    if (r->nlines < 16) {
        snprintf(r->out[r->nlines], sizeof(r->out[0]), "%s", line);
        r->stream[r->nlines] = stream;
    }
    r->nlines++;
}

static void on_exit_cb(struct agentd_child *c, int64_t status, int sig, void *ud)
{
    struct run *r = ud;

    r->exits++;
    r->lines_at_exit = r->nlines;
    r->status = status;
    r->sig = sig;
}

static void test_child_lines_and_exit(void **state)
{
    const char *argv[] = {"sh", "-c",
                          "printf 'one\\n0123456789abcdef\\nlast-no-newline'; echo err >&2; exit 3",
                          NULL};
    struct run r = {0};
    struct agentd_child_opts o = {
        .argv = argv, .max_line = 8, .on_line = on_line, .on_exit = on_exit_cb, .ud = &r};
    struct agentd_child *c;

    assert_int_equal(agentd_child_spawn(NULL, &o, &c), 0);
    assert_true(agentd_child_pid(c) > 0);
    uv_run(host.loop, UV_RUN_DEFAULT);
    assert_int_equal(r.exits, 1);
    assert_int_equal(r.status, 3);
    assert_int_equal(r.sig, 0);
    assert_int_equal(r.lines_at_exit, r.nlines); /* every line before the exit */
    assert_int_equal(r.nlines, 4);
    size_t err_at = r.stream[0] == 2 ? 0 : (r.stream[1] == 2 ? 1 : (r.stream[2] == 2 ? 2 : 3));
    assert_string_equal(r.out[err_at], "err");
    const char *want[] = {"one", "01234567", "last-no-"};
    for (size_t i = 0, k = 0; i < 4; i++) {
        if (i == err_at)
            continue;
        assert_int_equal(r.stream[i], 1);
        assert_string_equal(r.out[i], want[k++]);
    }
}

static void test_child_kill_and_missing_program(void **state)
{
    const char *argv[] = {"sleep", "30", NULL};
    const char *nope[] = {"/nonexistent/program", NULL};
    struct run r = {0};
    struct agentd_child_opts o = {.argv = argv, .on_exit = on_exit_cb, .ud = &r};
    struct agentd_child *c;

    assert_int_equal(agentd_child_spawn(NULL, &o, &c), 0);
    assert_int_equal(agentd_child_kill(c, SIGTERM), 0);
    uv_run(host.loop, UV_RUN_DEFAULT);
    assert_int_equal(r.exits, 1);
    assert_int_equal(r.sig, SIGTERM);

    o.argv = nope;
    assert_int_equal(agentd_child_spawn(NULL, &o, &c), UV_ENOENT);
    o.argv = NULL;
    assert_int_equal(agentd_child_spawn(NULL, &o, &c), -EINVAL);
}

static void test_child_detach(void **state)
{
    const char *argv[] = {"sh", "-c", "echo hidden", NULL};
    struct run r = {0};
    struct agentd_child_opts o = {
        .argv = argv, .on_line = on_line, .on_exit = on_exit_cb, .ud = &r};
    struct agentd_child *c;

    assert_int_equal(agentd_child_spawn(NULL, &o, &c), 0);
    agentd_child_detach(c);
    uv_run(host.loop, UV_RUN_DEFAULT); /* still reaped and freed */
    assert_int_equal(r.nlines, 0);
    assert_int_equal(r.exits, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_work_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_lines_and_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_kill_and_missing_program, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_detach, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

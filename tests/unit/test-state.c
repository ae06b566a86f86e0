/* State store: atomic replace leaves either the old or the new record and no
 * temporary files; names cannot escape the plugin's directory. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core-test.h"

static char dir[] = "/tmp/agentd-test-state-XXXXXX";

static int setup(void **state)
{
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];

    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || de->d_name[1] == '.'))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

static size_t count_entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_write_read_replace(void **state)
{
    void *data;
    size_t len;
    struct stat st;
    char p[512];

    assert_int_equal(state_write_at(dir, "cursor", "one", 3), 0);
    assert_int_equal(state_read_at(dir, "cursor", &data, &len), 0);
    assert_int_equal(len, 3);
    assert_string_equal(data, "one"); /* NUL-terminated beyond len */
    free(data);

    assert_int_equal(state_write_at(dir, "cursor", "second value", 12), 0);
    assert_int_equal(state_read_at(dir, "cursor", &data, &len), 0);
    assert_int_equal(len, 12);
    assert_memory_equal(data, "second value", 12);
    free(data);

    /* Only the record: no temporary file is left behind. */
    assert_int_equal(count_entries(), 1);
    snprintf(p, sizeof(p), "%s/cursor", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_empty_and_missing(void **state)
{
    void *data = NULL;
    size_t len = 99;

    assert_int_equal(state_read_at(dir, "nothing", &data, &len), -ENOENT);
    assert_null(data);
    assert_int_equal(state_write_at(dir, "empty", "", 0), 0);
    assert_int_equal(state_read_at(dir, "empty", &data, &len), 0);
    assert_int_equal(len, 0);
    free(data);
    assert_int_equal(state_remove_at(dir, "empty"), 0);
    assert_int_equal(state_remove_at(dir, "empty"), -ENOENT);
}

static void test_names_confined(void **state)
{
    static const char *const bad[] = {"", ".hidden", "../escape", "a/b", "..", "x y", NULL};
    void *data;
    size_t len;

    for (size_t i = 0; bad[i]; i++) {
        assert_int_equal(state_write_at(dir, bad[i], "x", 1), -EINVAL);
        assert_int_equal(state_read_at(dir, bad[i], &data, &len), -EINVAL);
        assert_int_equal(state_remove_at(dir, bad[i]), -EINVAL);
    }
    assert_int_equal(state_write_at(dir, "ok-name_1.json", "x", 1), 0);
}

static void test_missing_dir_fails_cleanly(void **state)
{
    assert_true(state_write_at("/nonexistent/agentd", "x", "y", 1) < 0);
}

static void test_large_record(void **state)
{
    size_t n = 1 << 20;
    char *big = malloc(n);
    void *data;
    size_t len;

    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(state_write_at(dir, "big", big, n), 0);
    assert_int_equal(state_read_at(dir, "big", &data, &len), 0);
    assert_int_equal(len, n);
    assert_memory_equal(data, big, n);
    free(data);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read_replace), cmocka_unit_test(test_empty_and_missing),
        cmocka_unit_test(test_names_confined),     cmocka_unit_test(test_missing_dir_fails_cleanly),
        cmocka_unit_test(test_large_record),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* Unit tests of file patterns with "**" (plugins/logs/glob.c). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/logs/glob.h"

static void test_match(void **state)
{
    static const struct {
        const char *pat, *path;
        bool want;
    } cases[] = {
        {"/var/log/*.log", "/var/log/app.log", true},
        {"/var/log/*.log", "/var/log/app.log.1", false},
        {"/var/log/*.log", "/var/log/sub/app.log", false},
        {"/var/log/*.log", "/var/log/.hidden.log", false},
        {"/var/log/app?.log", "/var/log/app1.log", true},
        {"/var/log/app[0-9].log", "/var/log/appx.log", false},
        {"/var/log/**/*.log", "/var/log/app.log", true},
        {"/var/log/**/*.log", "/var/log/a/b/c/app.log", true},
        {"/var/log/**", "/var/log/a/b", true},
        {"/var/**/x/*.log", "/var/a/x/y.log", true},
        {"/var/**/x/*.log", "/var/a/y/y.log", false},
        {"/a/b.log", "/a/b.log", true},
        {"/a//b.log", "/a/b.log", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(glob_match(cases[i].pat, cases[i].path), cases[i].want);
}

static void test_base(void **state)
{
    char buf[64];
    assert_int_equal(glob_base_dir("/var/log/*.log", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/var/log");
    assert_int_equal(glob_base_dir("/var/log/app.log", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/var/log");
    assert_int_equal(glob_base_dir("/var/**/x.log", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/var");
    assert_int_equal(glob_base_dir("/*.log", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/");
    assert_int_equal(glob_base_dir("/very/long/path/*", buf, 4), -ENAMETOOLONG);
}

struct found {
    size_t n, nlinks;
    char path[16][PATH_MAX];
    char link[16][PATH_MAX];
};

static int add(const char *path, bool is_link, void *ud)
{
    struct found *f = ud;
    if (is_link) {
        assert_true(f->nlinks < 16);
        snprintf(f->link[f->nlinks++], PATH_MAX, "%s", path);
        return 0;
    }
    assert_true(f->n < 16);
    snprintf(f->path[f->n++], PATH_MAX, "%s", path);
    return 0;
}

static bool has(const struct found *f, const char *root, const char *rel)
{
    char want[PATH_MAX];
    snprintf(want, sizeof(want), "%s/%s", root, rel);
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->path[i], want) == 0)
            return true;
    return false;
}

static void touch(const char *root, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
}

static void test_walk(void **state)
{
    char root[] = "/tmp/test-logs-glob-XXXXXX";
    assert_non_null(mkdtemp(root));
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/a", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/a/b", root);
    mkdir(p, 0700);
    touch(root, "top.log");
    touch(root, "top.txt");
    touch(root, "a/mid.log");
    touch(root, "a/b/deep.log");

    struct found f = {0};
    char pat[PATH_MAX];
    snprintf(pat, sizeof(pat), "%s/**/*.log", root);
    assert_int_equal(glob_walk(pat, false, add, &f), 0);
    assert_int_equal(f.n, 3);
    assert_true(has(&f, root, "top.log"));
    assert_true(has(&f, root, "a/mid.log"));
    assert_true(has(&f, root, "a/b/deep.log"));

    memset(&f, 0, sizeof(f));
    snprintf(pat, sizeof(pat), "%s/*/*.log", root);
    assert_int_equal(glob_walk(pat, false, add, &f), 0);
    assert_int_equal(f.n, 1);
    assert_true(has(&f, root, "a/mid.log"));

    memset(&f, 0, sizeof(f));
    snprintf(pat, sizeof(pat), "%s/top.txt", root);
    assert_int_equal(glob_walk(pat, false, add, &f), 0);
    assert_int_equal(f.n, 1);

    memset(&f, 0, sizeof(f));
    snprintf(pat, sizeof(pat), "%s/nothere/*.log", root);
    assert_int_equal(glob_walk(pat, false, add, &f), 0);
    assert_int_equal(f.n, 0);
    assert_int_equal(glob_walk("relative/*.log", false, add, &f), -EINVAL);

    const char *rm[] = {"a/b/deep.log", "a/mid.log", "top.log", "top.txt", "a/b", "a", ""};
    for (size_t i = 0; i < sizeof(rm) / sizeof(rm[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, rm[i]);
        remove(p);
    }
}

/* Links planted where a pattern walks are reported, never taken, unless
 * follow is set: a file link, a directory link met by '*', one met by '**'
 * (leading to the parent), and a named directory below magic. */
static void test_walk_links(void **state)
{
    char root[] = "/tmp/agentd-glob-links-XXXXXX", p[PATH_MAX], q[PATH_MAX], pat[PATH_MAX];
    assert_non_null(mkdtemp(root));
    snprintf(p, sizeof(p), "%s/logs", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/logs/app", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/secret", root);
    mkdir(p, 0700);
    touch(root, "secret/shadow.log");
    touch(root, "logs/app/real.log");
    snprintf(q, sizeof(q), "%s/secret/shadow.log", root);
    snprintf(p, sizeof(p), "%s/logs/app/planted.log", root);
    assert_int_equal(symlink(q, p), 0);
    snprintf(q, sizeof(q), "%s/secret", root);
    snprintf(p, sizeof(p), "%s/logs/dirlink", root);
    assert_int_equal(symlink(q, p), 0);

    struct found f = {0};
    snprintf(pat, sizeof(pat), "%s/logs/**/*.log", root);
    assert_int_equal(glob_walk(pat, false, add, &f), 0);
    assert_int_equal(f.n, 1);
    assert_true(has(&f, root, "logs/app/real.log"));
    assert_int_equal(f.nlinks, 2); /* planted.log and dirlink */

    memset(&f, 0, sizeof(f));
    snprintf(pat, sizeof(pat), "%s/logs/*/*.log", root);
    assert_int_equal(glob_walk(pat, false, add, &f), 0);
    assert_int_equal(f.n, 1);
    assert_true(has(&f, root, "logs/app/real.log"));

    memset(&f, 0, sizeof(f));
    snprintf(pat, sizeof(pat), "%s/*/dirlink/*.log", root);
    assert_int_equal(glob_walk(pat, false, add, &f), 0);
    assert_int_equal(f.n, 0);

    /* The fixed prefix is the admin's: a link there is resolved. */
    memset(&f, 0, sizeof(f));
    snprintf(pat, sizeof(pat), "%s/logs/dirlink/*.log", root);
    assert_int_equal(glob_walk(pat, false, add, &f), 0);
    assert_int_equal(f.n, 1);

    memset(&f, 0, sizeof(f));
    snprintf(pat, sizeof(pat), "%s/logs/**/*.log", root);
    assert_int_equal(glob_walk(pat, true, add, &f), 0);
    assert_int_equal(f.n, 3);
    assert_int_equal(f.nlinks, 0);

    const char *rm[] = {"logs/app/planted.log",
                        "logs/dirlink",
                        "logs/app/real.log",
                        "secret/shadow.log",
                        "logs/app",
                        "logs",
                        "secret",
                        ""};
    for (size_t i = 0; i < sizeof(rm) / sizeof(rm[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, rm[i]);
        remove(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_base),
        cmocka_unit_test(test_walk),
        cmocka_unit_test(test_walk_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* YAML loading: node positions, syntax errors, duplicate keys, aliases,
 * conf.d merging and its conflicts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* All errors, one per line, as config_errors_print writes them. */
static char *errors_text(const struct config_errors *errs)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    config_errors_print(errs, f);
    fclose(f);
    return buf;
}

static void expect_errors(const char *name, const char *text, const char *want)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    int r = config_load_string(name, text, &doc, &errs);
    char *got = errors_text(&errs);

    if (strcmp(got, want) != 0)
        fail_msg("for:\n%s\ngot:\n%swant:\n%s", text, got, want);
    if (want[0])
        assert_int_equal(r, -EINVAL);
    else
        assert_int_equal(r, 0);
    free(got);
    config_doc_free(doc);
    config_errors_clear(&errs);
}

static void test_positions(void **state)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    const struct config_node *h, *l, *c;

    assert_int_equal(config_load_string("agentd.yaml",
                                        "# comment\n"
                                        "health:\n"
                                        "  listen: [\"0.0.0.0:8080\", b]\n"
                                        "  checks:\n"
                                        "    - name: app\n"
                                        "      interval: 5s\n"
                                        "  empty:\n"
                                        "  tilde: ~\n"
                                        "  quoted: 'null'\n"
                                        "  tagged: !!str 123\n",
                                        &doc, &errs),
                     0);
    assert_int_equal(errs.n, 0);
    assert_string_equal(doc->main_file, "agentd.yaml");
    h = config_doc_get(doc, "health");
    assert_non_null(h);
    assert_int_equal(h->kind, CONFIG_MAPPING);
    assert_int_equal(h->line, 3);
    assert_int_equal(h->col, 3);
    assert_string_equal(h->file, "agentd.yaml");
    assert_int_equal(h->n, 6);
    assert_string_equal(h->keys[0]->value, "listen");
    assert_int_equal(h->keys[0]->line, 3);
    assert_int_equal(h->keys[0]->col, 3);
    l = h->items[0];
    assert_int_equal(l->kind, CONFIG_SEQUENCE);
    assert_int_equal(l->n, 2);
    assert_int_equal(l->items[0]->col, 12);
    assert_true(l->items[0]->quoted);
    assert_string_equal(l->items[1]->value, "b");
    assert_false(l->items[1]->quoted);
    assert_int_equal(l->items[1]->col, 28);
    c = h->items[1]->items[0];
    assert_int_equal(c->kind, CONFIG_MAPPING);
    assert_int_equal(c->line, 5);
    assert_int_equal(c->col, 7);
    assert_int_equal(c->items[1]->line, 6);
    assert_int_equal(c->items[1]->col, 17);
    assert_string_equal(c->items[1]->value, "5s");
    assert_int_equal(h->items[2]->kind, CONFIG_NULL);
    assert_int_equal(h->items[3]->kind, CONFIG_NULL);
    assert_int_equal(h->items[4]->kind, CONFIG_SCALAR);
    assert_string_equal(h->items[4]->value, "null");
    assert_true(h->items[5]->quoted);
    assert_null(config_doc_get(doc, "nothing"));
    config_doc_free(doc);
}

static void test_bad_yaml(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"a: b\n  c: d\n", "t.yaml:2:4: YAML syntax error: mapping values are not allowed in "
                           "this context (check the indentation, and quote values that "
                           "contain ': ')\n"},
        {"a: [1, 2\nb: 3\n",
         "t.yaml:2:2: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
         "sequence at line 1)\n"},
        {"a: \"unterminated\n",
         "t.yaml:2:1: YAML syntax error: found unexpected end of stream (while scanning a "
         "quoted scalar at line 1)\n"},
        {"a:\n\t- b\n", "t.yaml:2:1: YAML syntax error: a tab character (YAML indents with "
                        "spaces only)\n"},
        {"health:\n  listen: a\n  paths: b\n  listen: c\n",
         "t.yaml:4:3: health.listen: duplicate key (first defined at line 2)\n"},
        {"a: 1\na: 2\na: 3\n", "t.yaml:2:1: a: duplicate key (first defined at line 1)\n"
                               "t.yaml:3:1: a: duplicate key (first defined at line 1)\n"},
        {"x:\n  - {k: 1, k: 2}\n", "t.yaml:2:12: x[0].k: duplicate key (first defined at line "
                                   "2)\n"},
        {"url: http://a: b\n", "t.yaml:1:14: YAML syntax error: mapping values are not allowed "
                               "in this context (check the indentation, and quote values that "
                               "contain ': ')\n"},
        {"a:\n  b: 1\n\tc: 2\n", "t.yaml:3:1: YAML syntax error: a tab character (YAML indents "
                                 "with spaces only)\n"},
        {"a: \"x\\0y\"\n", "t.yaml:1:4: NUL characters are not allowed in values\n"},
        {"x: *nope\n", "t.yaml:1:4: x: unknown alias *nope (anchors must come first)\n"},
        {"a: &x [1, *x]\n", "t.yaml:1:11: a[1]: unknown alias *x (anchors must come first)\n"},
        {"d: &d {a: 1}\nm: {<<: 5, b: 2}\nn: {<<: [*d, 3]}\n",
         "t.yaml:2:5: m: the merge key << needs a mapping or a list of mappings\n"
         "t.yaml:3:5: n: the merge key << needs a mapping or a list of mappings\n"},
        {"d: &d {a: 1}\nm: {<<: *d, b: 2, b: 3}\n",
         "t.yaml:2:19: m.b: duplicate key (first defined at line 2)\n"},
        {"a: 1\n---\nb: 2\n",
         "t.yaml:2:1: more than one YAML document (---) in a file is not supported\n"},
        {"? [a, b]\n: c\n", "t.yaml:1:3: keys must be plain strings, not a sequence\n"},
        {"{a: 1}: c\n", "t.yaml:1:1: keys must be plain strings, not a mapping\n"},
    };

    for (size_t i = 0; i < N(cases); i++)
        expect_errors("t.yaml", cases[i].text, cases[i].want);
}

static void test_ok_yaml(void **state)
{
    static const char *const texts[] = {
        "",
        "# nothing\n",
        "---\n",
        "a: 1\n...\n",
        "anchor: &x 5\n",
        "\xef\xbb\xbf"
        "a: 1\n",
        "a: {b: [1, {c: d}]}\n",
        "a: |\n  multi\n  line\n",
    };

    for (size_t i = 0; i < N(texts); i++)
        expect_errors("t.yaml", texts[i], "");
}

static char *dump_node(const struct config_node *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    if (n->kind == CONFIG_SCALAR || n->kind == CONFIG_NULL) {
        fprintf(f, "%s@%u:%u", n->value, n->line, n->col);
    } else {
        fputc(n->kind == CONFIG_MAPPING ? '{' : '[', f);
        for (size_t i = 0; i < n->n; i++) {
            char *c = dump_node(n->items[i]);

            if (n->keys)
                fprintf(f, "%s%s=%s", i ? " " : "", n->keys[i]->value, c);
            else
                fprintf(f, "%s%s", i ? " " : "", c);
            free(c);
        }
        fputc(n->kind == CONFIG_MAPPING ? '}' : ']', f);
    }
    fclose(f);
    return buf;
}

/* Aliases are copies of their anchor's node; "<<" merges mappings. */
static void test_aliases(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"base: &b {a: 1}\nother: *b\n", "{base={a=1@1:14} other={a=1@1:14}}"},
        {"s: &s x\nt: [*s, *s]\n", "{s=x@1:4 t=[x@1:4 x@1:4]}"},
        {"a: &x 1\nb: &x 2\nc: *x\n", "{a=1@1:4 b=2@2:4 c=2@2:4}"},
        {"d: &d {interval: 5s, timeout: 1s}\n"
         "c: [{<<: *d, name: a, timeout: 2s}]\n",
         "{d={interval=5s@1:18 timeout=1s@1:31} c=[{name=a@2:20 timeout=2s@2:32 "
         "interval=5s@1:18}]}"},
        {"a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nm:\n  <<: [*a, *b]\n  z: 3\n",
         "{a={x=1@1:11 y=1@1:17} b={y=2@2:11 z=2@2:17} m={z=3@5:6 x=1@1:11 y=1@1:17}}"},
        {"m: {\"<<\": 1}\n", "{m={<<=1@1:11}}"},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct config_errors errs = {0};
        struct config_doc *doc = NULL;
        char *got;

        if (config_load_string("t.yaml", cases[i].text, &doc, &errs) != 0) {
            config_errors_print(&errs, stderr);
            fail_msg("case %zu did not load", i);
        }
        got = dump_node(doc->root);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: got %s", i, got);
        free(got);
        config_doc_free(doc);
    }
}

/* A "billion laughs" document stops at the alias budget. */
static void test_alias_bomb(void **state)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    char text[2048];
    size_t len = 0;

    len += (size_t)snprintf(text + len, sizeof(text) - len, "a0: &a0 [x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len,
                                "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i,
                                i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    assert_int_equal(config_load_string("bomb.yaml", text, &doc, &errs), -EINVAL);
    assert_null(doc);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.v[0].message, "more than 20000 nodes"));
    config_errors_clear(&errs);

    /* Deep anchors cannot be aliased deeper than the nesting limit. */
    len = 0;
    len += (size_t)snprintf(text + len, sizeof(text) - len, "a: &d ");
    for (int i = 0; i < 40; i++)
        text[len++] = '[';
    for (int i = 0; i < 40; i++)
        text[len++] = ']';
    len += (size_t)snprintf(text + len, sizeof(text) - len,
                            "\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[*d]]]]"
                            "]]]]]]]]]]]]]]]]]]]]]]]]\n");
    assert_int_equal(config_load_string("deep.yaml", text, &doc, &errs), -EINVAL);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.v[0].message, "alias *d nests deeper than 64 levels"));
    config_errors_clear(&errs);
}

static void test_deep_nesting(void **state)
{
    char text[400];
    size_t n = 0;

    for (int i = 0; i < 100; i++)
        text[n++] = '[';
    text[n] = '\0';
    {
        struct config_errors errs = {0};
        struct config_doc *doc = NULL;

        assert_int_equal(config_load_string("d.yaml", text, &doc, &errs), -EINVAL);
        assert_int_equal(errs.n, 1);
        assert_non_null(strstr(errs.v[0].message, "nesting deeper than"));
        config_errors_clear(&errs);
    }
}

static void test_merge(void **state)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    const struct config_node *logs, *h;

    assert_int_equal(config_load(CONF_TEST_DATA "/merge/agentd.yaml", NULL, &doc, &errs), 0);
    assert_int_equal(errs.n, 0);
    assert_int_equal(doc->root->n, 3);
    assert_string_equal(doc->root->keys[0]->value, "agentd");
    assert_string_equal(doc->root->keys[1]->value, "logs");
    assert_string_equal(doc->root->keys[2]->value, "health");
    logs = config_doc_get(doc, "logs");
    assert_int_equal(logs->n, 3);
    assert_string_equal(logs->items[0]->items[0]->value, "main-log");
    assert_string_equal(logs->items[1]->items[0]->value, "second");
    assert_string_equal(logs->items[1]->file, CONF_TEST_DATA "/merge/conf.d/20-logs.yaml");
    assert_int_equal(logs->items[2]->line, 3);
    h = config_doc_get(doc, "health");
    assert_string_equal(h->file, CONF_TEST_DATA "/merge/conf.d/10-health.yaml");
    assert_null(config_doc_get(doc, "tunnel")); /* hidden files are skipped */
    assert_null(config_doc_get(doc, "ignored"));
    config_doc_free(doc);

    /* An explicit conf.d that does not exist is no error. */
    assert_int_equal(
        config_load(CONF_TEST_DATA "/merge/agentd.yaml", "/nonexistent/conf.d", &doc, &errs), 0);
    assert_int_equal(config_doc_get(doc, "logs")->n, 1);
    config_doc_free(doc);
    assert_int_equal(errs.n, 0);
}

static void test_merge_conflicts(void **state)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    char *got;

    assert_int_equal(config_load(CONF_TEST_DATA "/conflict/agentd.yaml", NULL, &doc, &errs),
                     -EINVAL);
    assert_null(doc);
    got = errors_text(&errs);
    assert_string_equal(
        got, CONF_TEST_DATA
        "/conflict/conf.d/a.yaml:1:1: health: already defined at " CONF_TEST_DATA
        "/conflict/agentd.yaml:3:1 (only lists can be split across files)\n" CONF_TEST_DATA
        "/conflict/conf.d/b.yaml:1:1: agentd: already defined at " CONF_TEST_DATA
        "/conflict/agentd.yaml:1:1 (only lists can be split across files)\n" CONF_TEST_DATA
        "/conflict/conf.d/c.yaml:4:1: YAML syntax error: did not find expected "
        "',' or ']' (while parsing a flow sequence at line 3)\n");
    free(got);
    config_errors_clear(&errs);
}

/* A main file with errors still gets its conf.d checked: one run, all errors. */
static void test_errors_in_every_file(void **state)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    char *got;

    assert_int_equal(config_load(CONF_TEST_DATA "/twobad/agentd.yaml", NULL, &doc, &errs), -EINVAL);
    assert_null(doc);
    got = errors_text(&errs);
    assert_string_equal(got, CONF_TEST_DATA "/twobad/agentd.yaml:3:1: YAML syntax error: did not "
                                            "find expected ',' or ']' (while parsing a flow "
                                            "sequence at line 2)\n" CONF_TEST_DATA
                                            "/twobad/conf.d/logs.yaml:3:5: logs[0].name: "
                                            "duplicate key (first defined at line 2)\n");
    free(got);
    config_errors_clear(&errs);
}

static void test_empty_files(void **state)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;

    assert_int_equal(config_load(CONF_TEST_DATA "/empty/agentd.yaml", NULL, &doc, &errs), 0);
    assert_int_equal(doc->root->kind, CONFIG_MAPPING);
    assert_int_equal(doc->root->n, 0);
    config_doc_free(doc);
    assert_int_equal(errs.n, 0);
}

static void test_io_errors(void **state)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    char *got;

    assert_int_equal(config_load("/nonexistent/agentd.yaml", NULL, &doc, &errs), -ENOENT);
    assert_int_equal(config_load(CONF_TEST_DATA, NULL, &doc, &errs), -EINVAL);
    got = errors_text(&errs);
    assert_string_equal(
        got, "/nonexistent/agentd.yaml: cannot open: No such file or directory\n" CONF_TEST_DATA
             ": not a regular file\n");
    free(got);
    config_errors_clear(&errs);
}

static void test_root_not_mapping(void **state)
{
    char path[] = "/tmp/test-conf-load-XXXXXX";
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    char *want = NULL, *got;
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    fputs("- a\n- b\n", f);
    fclose(f);
    assert_int_equal(config_load(path, "/nonexistent", &doc, &errs), -EINVAL);
    got = errors_text(&errs);
    assert_true(asprintf(&want,
                         "%s:1:1: the top level must be a mapping of sections (agentd:, health:, "
                         "...)\n",
                         path) > 0);
    assert_string_equal(got, want);
    unlink(path);
    free(want);
    free(got);
    config_errors_clear(&errs);
}

/* The users' example configs load, with their sections in file order. */
static void test_examples(void **state)
{
    static const struct {
        const char *file, *keys;
    } cases[] = {
        {"dashboard-tunnel.yaml", "tunnel"},
        {"media-cluster-node.yaml", "logs"},
        {"reflector-behind-alb.yaml", "health targetgroup logs"},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct config_errors errs = {0};
        struct config_doc *doc = NULL;
        char path[512], keys[256] = "";

        snprintf(path, sizeof(path), "%s/examples/%s", CONF_TEST_DATA, cases[i].file);
        assert_int_equal(config_load(path, "/nonexistent", &doc, &errs), 0);
        assert_int_equal(errs.n, 0);
        for (size_t k = 0; k < doc->root->n; k++) {
            snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%s%s", k ? " " : "",
                     doc->root->keys[k]->value);
        }
        assert_string_equal(keys, cases[i].keys);
        config_doc_free(doc);
    }
}

/* Positions name files as the caller gave them: a relative main file has a
 * relative conf.d. */
static void test_relative_paths(void **state)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    char cwd[4096];
    char *got;

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(CONF_TEST_DATA "/conflict"), 0);
    assert_int_equal(config_load("agentd.yaml", NULL, &doc, &errs), -EINVAL);
    assert_int_equal(chdir(cwd), 0);
    got = errors_text(&errs);
    assert_string_equal(got, "conf.d/a.yaml:1:1: health: already defined at agentd.yaml:3:1 (only "
                             "lists can be split across files)\n"
                             "conf.d/b.yaml:1:1: agentd: already defined at agentd.yaml:1:1 (only "
                             "lists can be split across files)\n"
                             "conf.d/c.yaml:4:1: YAML syntax error: did not find expected ',' or "
                             "']' (while parsing a flow sequence at line 3)\n");
    free(got);
    config_errors_clear(&errs);
}

static void test_errors_json(void **state)
{
    struct config_errors errs = {0};
    json_t *j;

    config_errors_add(&errs, "a.yaml", 3, 5, "health.listen", "bad %s", "thing");
    config_errors_add(&errs, "a.yaml", 0, 0, NULL, "whole file");
    config_errors_add(&errs, "", 0, 0, "aws.region", "missing");
    j = config_errors_json(&errs);
    assert_int_equal(json_array_size(j), 3);
    assert_string_equal(json_string_value(json_array_get(j, 0)),
                        "a.yaml:3:5: health.listen: bad thing");
    assert_string_equal(json_string_value(json_array_get(j, 1)), "a.yaml: whole file");
    assert_string_equal(json_string_value(json_array_get(j, 2)), "aws.region: missing");
    json_decref(j);
    config_errors_clear(&errs);
    assert_int_equal(errs.n, 0);
    assert_null(errs.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_bad_yaml),
        cmocka_unit_test(test_ok_yaml),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_conflicts),
        cmocka_unit_test(test_empty_files),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_root_not_mapping),
        cmocka_unit_test(test_errors_json),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_errors_in_every_file),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_relative_paths),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of the line splitter, UTF-8 repair, multiline grouping and
 * timestamp parsing (plugins/logs/lines.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/logs/lines.h"

struct got {
    size_t n;
    char line[64][256];
    size_t len[64];
    uint64_t end[64];
    unsigned flags[64];
};

static void collect(void *ud, const char *line, size_t len, uint64_t end_off, unsigned flags)
{
    struct got *g = ud;
    assert_true(g->n < 64);
    assert_true(len < 256);
    memcpy(g->line[g->n], line, len);
    g->line[g->n][len] = '\0';
    g->len[g->n] = len;
    g->end[g->n] = end_off;
    g->flags[g->n] = flags;
    g->n++;
}

static void test_split_basic(void **state)
{
    struct lines l;
    struct got g = {0};
    assert_int_equal(lines_init(&l, 64, 100), 0);
    lines_feed(&l, "a\nbb\ncc", 7, collect, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.line[0], "a");
    assert_int_equal(g.end[0], 102);
    assert_string_equal(g.line[1], "bb");
    assert_int_equal(g.end[1], 105);
    /* The partial line waits for its newline, across feeds. */
    lines_feed(&l, "c\n\n", 3, collect, &g);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.line[2], "ccc");
    assert_int_equal(g.end[2], 109);
    assert_int_equal(g.len[3], 0);
    assert_int_equal(g.end[3], 110);
    lines_feed(&l, "tail", 4, collect, &g);
    assert_int_equal(g.n, 4);
    lines_finish(&l, collect, &g);
    assert_int_equal(g.n, 5);
    assert_string_equal(g.line[4], "tail");
    assert_int_equal(g.end[4], 114);
    lines_free(&l);
}

static void test_split_long(void **state)
{
    struct lines l;
    struct got g = {0};
    assert_int_equal(lines_init(&l, 8, 0), 0);
    /* Exactly max_line is one line; one more byte makes a split. */
    lines_feed(&l, "12345678\n", 9, collect, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.flags[0], 0);
    lines_feed(&l, "abcdefgh", 8, collect, &g);
    assert_int_equal(g.n, 1);
    lines_feed(&l, "\n", 1, collect, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.line[1], "abcdefgh");
    lines_feed(&l, "ABCDEFGHIJKLMNOPQRS\nx\n", 22, collect, &g);
    assert_int_equal(g.n, 6);
    assert_string_equal(g.line[2], "ABCDEFGH");
    assert_int_equal(g.flags[2], LINES_SPLIT);
    assert_int_equal(g.end[2], 18 + 8);
    assert_string_equal(g.line[3], "IJKLMNOP");
    assert_int_equal(g.flags[3], LINES_SPLIT);
    assert_string_equal(g.line[4], "QRS");
    assert_int_equal(g.flags[4], 0);
    assert_int_equal(g.end[4], 18 + 20);
    assert_string_equal(g.line[5], "x");
    lines_free(&l);
}

static void test_split_utf8_boundary(void **state)
{
    struct lines l;
    struct got g = {0};
    assert_int_equal(lines_init(&l, 8, 0), 0);
    /* "abcdefg" then a 2-byte character straddling the cut: the piece stops
     * before it so both pieces stay valid. */
    lines_feed(&l, "abcdefg\xc3\xa9z\n", 11, collect, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.line[0], "abcdefg");
    assert_int_equal(g.end[0], 7);
    assert_string_equal(g.line[1], "\xc3\xa9z");
    assert_true(utf8_valid(g.line[0], g.len[0]));
    assert_true(utf8_valid(g.line[1], g.len[1]));
    lines_free(&l);
}

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        bool ok;
        const char *fixed;
    } cases[] = {
        {"plain ascii", true, "plain ascii"},
        {"caf\xc3\xa9", true, "caf\xc3\xa9"},
        {"\xe2\x82\xac euro", true, "\xe2\x82\xac euro"},
        {"\xf0\x9f\x98\x80", true, "\xf0\x9f\x98\x80"},
        {"bad \xff byte", false, "bad \xef\xbf\xbd byte"},
        {"overlong \xc0\xaf", false, "overlong \xef\xbf\xbd\xef\xbf\xbd"},
        {"surrogate \xed\xa0\x80", false, "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"cut \xe2\x82", false, "cut \xef\xbf\xbd\xef\xbf\xbd"},
        {"big \xf4\x90\x80\x80", false, "big \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].s);
        assert_int_equal(utf8_valid(cases[i].s, n), cases[i].ok);
        char out[256];
        size_t k = utf8_repair(cases[i].s, n, out);
        out[k] = '\0';
        assert_string_equal(out, cases[i].fixed);
        assert_true(utf8_valid(out, k));
    }
    assert_int_equal(utf8_cut("ab\xc3", 3), 2);
    assert_int_equal(utf8_cut("ab\xc3\xa9", 4), 4);
    assert_int_equal(utf8_cut("a\xe2\x82", 3), 1);
    assert_int_equal(utf8_cut("abc", 3), 3);
}

static void test_multiline(void **state)
{
    struct mline m;
    struct got g = {0};
    assert_int_equal(mline_init(&m, "^[0-9]{4}-", 64), 0);
    mline_feed(&m, "2024-01-01 start", 16, 10, 0, 0, collect, &g);
    mline_feed(&m, "  at foo", 8, 20, 0, 0, collect, &g);
    mline_feed(&m, "  at bar", 8, 30, 0, 0, collect, &g);
    assert_int_equal(g.n, 0);
    mline_feed(&m, "2024-01-02 next", 15, 40, 0, 100, collect, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.line[0], "2024-01-01 start\n  at foo\n  at bar");
    assert_int_equal(g.end[0], 30);
    assert_false(mline_due(&m, 500, 1000));
    assert_true(mline_due(&m, 1100, 1000));
    mline_flush(&m, collect, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.line[1], "2024-01-02 next");
    assert_int_equal(g.end[1], 40);
    /* A record that would pass the maximum goes out, and the line starts anew. */
    char big[60];
    memset(big, 'x', sizeof(big));
    mline_feed(&m, "2024-01-03 a", 12, 50, 0, 0, collect, &g);
    mline_feed(&m, big, sizeof(big), 110, 0, 0, collect, &g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.line[2], "2024-01-03 a");
    mline_free(&m);
    assert_int_equal(mline_init(&m, "(unclosed", 64), -EINVAL);
}

static void test_time(void **state)
{
    int64_t ms;
    int64_t now = 1700000000000LL; /* 2023-11-14 */
    assert_int_equal(
        lines_parse_time("%Y-%m-%d %H:%M:%S", "2024-01-02 03:04:05.678 x", 25, now, &ms), 0);
    assert_int_equal(ms, 1704164645678LL);
    assert_int_equal(
        lines_parse_time("%Y-%m-%dT%H:%M:%S%z", "2024-01-02T05:04:05+0200", 24, now, &ms), 0);
    assert_int_equal(ms, 1704164645000LL);
    /* No year: the current one. */
    assert_int_equal(lines_parse_time("%b %d %H:%M:%S", "Jan 02 03:04:05 host", 20, now, &ms), 0);
    assert_int_equal(ms, 1672628645000LL);
    assert_int_equal(lines_parse_time("%Y-%m-%d", "garbage", 7, now, &ms), -EINVAL);
}

/* The 16-byte-at-a-time check against a byte-wise reference: every special
 * byte at every position of strings of every length up to 70. */
static void test_text_plain(void **state)
{
    static const unsigned char specials[] = {'"', '\\', 0, 0x1f, 0x80, 0xc3, 0xff, '\n'};
    /* The neighbours of every special byte are plain. */
    static const char plain[] = " !#[]~\x7f"
                                "azAZ09";
    char s[80] = {0};
    for (size_t n = 0; n <= 70; n++) {
        for (size_t i = 0; i < n; i++)
            s[i] = plain[i % (sizeof(plain) - 1)];
        assert_true(text_plain(s, n));
        assert_true(utf8_valid(s, n));
        for (size_t at = 0; at < n; at++)
            for (size_t k = 0; k < sizeof(specials); k++) {
                char keep = s[at];
                s[at] = (char)specials[k];
                assert_false(text_plain(s, n));
                s[at] = keep;
            }
    }
    assert_true(text_plain(" ~\x7f", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_basic),         cmocka_unit_test(test_split_long),
        cmocka_unit_test(test_split_utf8_boundary), cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_multiline),           cmocka_unit_test(test_time),
        cmocka_unit_test(test_text_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of PutLogEvents batching (plugins/logs/cwbatch.c): every limit
 * exactly at and one past its edge, ordering, and the JSON body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../plugins/logs/cwbatch.h"

static struct ev *mk(int64_t ts, size_t len, char fill)
{
    struct ev *e = calloc(1, sizeof(*e) + len);
    assert_non_null(e);
    e->ts = ts;
    e->len = (uint32_t)len;
    memset(e->msg, fill, len);
    return e;
}

/* A list of n events of len bytes each, timestamps base + i * step. */
static struct ev *chain(size_t n, size_t len, int64_t base, int64_t step)
{
    struct ev *head = NULL, **tail = &head;
    for (size_t i = 0; i < n; i++) {
        *tail = mk(base + (int64_t)i * step, len, 'x');
        tail = &(*tail)->next;
    }
    return head;
}

static void drop(struct ev *e)
{
    while (e) {
        struct ev *n = e->next;
        free(e);
        e = n;
    }
}

static void test_count_limit(void **state)
{
    struct cw_limits lim;
    cwb_default_limits(&lim);
    struct ev *h = chain(10001, 1, 0, 0);
    size_t bytes;
    assert_int_equal(cwb_select(h, 20000, &lim, &bytes), 10000);
    assert_int_equal(bytes, 10000 * 27);
    assert_int_equal(cwb_select(h, 5, &lim, &bytes), 5);
    assert_int_equal(cwb_select(h, 0, &lim, &bytes), 0);
    drop(h);
}

static void test_byte_limit(void **state)
{
    struct cw_limits lim;
    cwb_default_limits(&lim);
    /* 1024 events of 998 bytes: each costs 1024, together exactly 1 MiB. */
    struct ev *h = chain(1025, 998, 0, 0);
    size_t bytes;
    assert_int_equal(cwb_select(h, 5000, &lim, &bytes), 1024);
    assert_int_equal(bytes, 1048576);
    drop(h);
    /* One byte more per event: 1023 fit. */
    h = chain(1025, 999, 0, 0);
    assert_int_equal(cwb_select(h, 5000, &lim, &bytes), 1023);
    drop(h);
    /* The largest single event fits alone. */
    h = mk(0, CW_MAX_EVENT_BYTES, 'y');
    h->next = mk(0, 1, 'z');
    assert_int_equal(cwb_select(h, 5000, &lim, &bytes), 1);
    assert_int_equal(bytes, 1048576);
    drop(h);
}

static void test_span_limit(void **state)
{
    struct cw_limits lim;
    cwb_default_limits(&lim);
    size_t bytes;
    struct ev *h = mk(1000, 1, 'a');
    h->next = mk(1000 + CW_MAX_SPAN_MS - 1, 1, 'b');
    h->next->next = mk(1000 + CW_MAX_SPAN_MS, 1, 'c');
    assert_int_equal(cwb_select(h, 10, &lim, &bytes), 2);
    drop(h);
    /* Out of order: the span is newest minus oldest whatever the order. */
    h = mk(1000 + CW_MAX_SPAN_MS / 2, 1, 'a');
    h->next = mk(1000 + CW_MAX_SPAN_MS, 1, 'b');
    h->next->next = mk(999, 1, 'c');
    assert_int_equal(cwb_select(h, 10, &lim, &bytes), 2);
    drop(h);
}

static void test_sort_stable(void **state)
{
    struct ev *e[6];
    int64_t ts[6] = {5, 3, 5, 1, 3, 9};
    for (int i = 0; i < 6; i++)
        e[i] = mk(ts[i], 1, (char)('a' + i));
    struct ev *v[6];
    memcpy(v, e, sizeof(v));
    cwb_sort(v, 6);
    const char want[] = "dbeacf";
    for (int i = 0; i < 6; i++)
        assert_int_equal(v[i]->msg[0], want[i]);
    for (int i = 0; i < 6; i++)
        free(e[i]);
}

static void test_encode(void **state)
{
    struct ev *e[2];
    e[0] = mk(1700000000123LL, 0, 0);
    e[1] = mk(1700000000124LL, 0, 0);
    struct ev *a = realloc(e[0], sizeof(struct ev) + 16);
    memcpy(a->msg, "q\"b\\n\n\t\x01\xc3\xa9", 10);
    a->len = 10;
    e[0] = a;
    char *body = NULL;
    size_t cap = 0, len;
    assert_int_equal(cwb_encode("grp", "st/1", e, 2, &body, &cap, &len), 0);
    json_error_t err;
    json_t *j = json_loadb(body, len, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "logGroupName")), "grp");
    assert_string_equal(json_string_value(json_object_get(j, "logStreamName")), "st/1");
    json_t *evs = json_object_get(j, "logEvents");
    assert_int_equal(json_array_size(evs), 2);
    json_t *m0 = json_object_get(json_array_get(evs, 0), "message");
    assert_int_equal(json_string_length(m0), 10);
    assert_memory_equal(json_string_value(m0), "q\"b\\n\n\t\x01\xc3\xa9", 10);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(evs, 0), "timestamp")),
                     1700000000123LL);
    json_decref(j);
    free(body);
    free(e[0]);
    free(e[1]);
}

/* The word-at-a-time escaper against jansson's parser on random strings
 * with every special byte at every alignment. */
static void test_escape_random(void **state)
{
    static const char specials[] = {'"', '\\', '\n', '\t', '\r', '\b', '\f', 1, 0x1f, 0};
    unsigned seed = 7;
    for (int round = 0; round < 2000; round++) {
        char in[64];
        size_t n = (size_t)(rand_r(&seed) % 40);
        for (size_t i = 0; i < n; i++) {
            int r = rand_r(&seed) % 10;
            in[i] = r < 2 ? specials[rand_r(&seed) % sizeof(specials)]
                          : (char)(0x20 + rand_r(&seed) % 0x5f);
        }
        char out[64 * 6 + 2];
        size_t k = json_escape(in, n, out);
        assert_int_equal(k, json_escaped_len(in, n));
        json_error_t err;
        json_t *j = json_loadb(out, k, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        assert_non_null(j);
        assert_int_equal(json_string_length(j), n);
        assert_memory_equal(json_string_value(j), in, n);
        json_decref(j);
    }
}

static void test_rejected(void **state)
{
    size_t nw, od, ex;
    const char *b = "{\"rejectedLogEventsInfo\":{\"tooNewLogEventStartIndex\":8,"
                    "\"tooOldLogEventEndIndex\":2,\"expiredLogEventEndIndex\":0}}";
    cwb_rejected(b, strlen(b), 10, &nw, &od, &ex);
    assert_int_equal(nw, 2);
    assert_int_equal(od, 3);
    assert_int_equal(ex, 1);
    cwb_rejected("{}", 2, 10, &nw, &od, &ex);
    assert_int_equal(nw + od + ex, 0);
    cwb_rejected("not json", 8, 10, &nw, &od, &ex);
    assert_int_equal(nw + od + ex, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_limit),   cmocka_unit_test(test_byte_limit),
        cmocka_unit_test(test_span_limit),    cmocka_unit_test(test_sort_stable),
        cmocka_unit_test(test_encode),        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_escape_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

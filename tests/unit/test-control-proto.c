/* Control protocol: framing across reads, the 64 KiB cap, and parsing that
 * rejects malformed requests with a message instead of failing. */
#include <stdlib.h>
#include <string.h>

#include "control-proto.h"
#include "core-test.h"

static char lines[8][256];
static size_t nlines;

static int collect(char *line, size_t len, void *ud)
{
    assert_int_equal(strlen(line), len);
    if (nlines < 8)
        snprintf(lines[nlines], sizeof(lines[0]), "%s", line);
    nlines++;
    return 0;
}

static void test_framing_split_and_joined(void **state)
{
    struct proto_framer *f = calloc(1, sizeof(*f));

    nlines = 0;
    assert_int_equal(proto_feed(f, "{\"a\"", 4, collect, NULL), 0);
    assert_int_equal(nlines, 0);
    const char *mid = ":1}\n{\"b\":2}\r\n{\"c\"";
    assert_int_equal(proto_feed(f, mid, strlen(mid), collect, NULL), 0);
    assert_int_equal(nlines, 2);
    assert_string_equal(lines[0], "{\"a\":1}");
    assert_string_equal(lines[1], "{\"b\":2}"); /* CR stripped */
    assert_int_equal(proto_feed(f, ":3}\n", 4, collect, NULL), 0);
    assert_int_equal(nlines, 3);
    assert_string_equal(lines[2], "{\"c\":3}");
    free(f);
}

static void test_framing_limit(void **state)
{
    struct proto_framer *f = calloc(1, sizeof(*f));
    size_t max = CONTROL_MAX_REQUEST - 1; /* longest line: its newline makes 64 KiB */
    char *big = malloc(CONTROL_MAX_REQUEST + 2);

    memset(big, 'x', CONTROL_MAX_REQUEST + 1);
    big[max] = '\n';
    nlines = 0;
    assert_int_equal(proto_feed(f, big, max + 1, collect, NULL), 0);
    assert_int_equal(nlines, 1);

    /* One byte more is refused, even when it arrives in pieces. */
    memset(big, 'x', CONTROL_MAX_REQUEST + 1);
    assert_int_equal(proto_feed(f, big, 1000, collect, NULL), 0);
    assert_int_equal(proto_feed(f, big, CONTROL_MAX_REQUEST - 1000, collect, NULL), -EMSGSIZE);
    assert_int_equal(nlines, 1);
    free(big);
    free(f);
}

static int stop_at_first(char *line, size_t len, void *ud)
{
    (*(int *)ud)++;
    return -ECANCELED;
}

static void test_framing_callback_stops(void **state)
{
    struct proto_framer f = {0};
    int calls = 0;

    assert_int_equal(proto_feed(&f, "a\nb\n", 4, stop_at_first, &calls), -ECANCELED);
    assert_int_equal(calls, 1);
}

static void expect_bad(const char *line, const char *msg_part)
{
    struct proto_request req;
    json_t *root = NULL;
    char msg[256] = "";

    assert_int_equal(proto_parse_request(line, strlen(line), &root, &req, msg, sizeof(msg)),
                     -EINVAL);
    assert_null(root);
    if (!strstr(msg, msg_part))
        fail_msg("'%s': message '%s' lacks '%s'", line, msg, msg_part);
}

static void test_parse_rejects(void **state)
{
    expect_bad("{not json", "malformed request");
    expect_bad("[1,2]", "not a JSON object");
    expect_bad("{\"cmd\":\"status\"}", "protocol version");
    expect_bad("{\"v\":2,\"cmd\":\"status\"}", "protocol version");
    expect_bad("{\"v\":1}", "\"cmd\"");
    expect_bad("{\"v\":1,\"cmd\":\"\"}", "\"cmd\"");
    expect_bad("{\"v\":1,\"cmd\":\"x\",\"args\":\"a\"}", "args");
    expect_bad("{\"v\":1,\"cmd\":\"x\",\"args\":[1]}", "args");
    expect_bad("{\"v\":1,\"cmd\":\"plugin\",\"plugin\":\"p\"}", "verb");
    expect_bad("{\"v\":1,\"v\":1,\"cmd\":\"status\"}", "malformed");
}

static void test_parse_accepts(void **state)
{
    const char *l1 = "{\"v\":1,\"cmd\":\"status\"}";
    const char *l2 = "{\"v\":1,\"cmd\":\"plugin\",\"plugin\":\"tunnel\",\"verb\":\"restart\","
                     "\"args\":[\"chartio\"]}";
    struct proto_request req;
    json_t *root;
    char msg[128];

    assert_int_equal(proto_parse_request(l1, strlen(l1), &root, &req, msg, sizeof(msg)), 0);
    assert_string_equal(req.cmd, "status");
    assert_null(req.plugin);
    assert_true(json_is_array(req.args));
    assert_int_equal(json_array_size(req.args), 0);
    json_decref(root);

    assert_int_equal(proto_parse_request(l2, strlen(l2), &root, &req, msg, sizeof(msg)), 0);
    assert_string_equal(req.cmd, "plugin");
    assert_string_equal(req.plugin, "tunnel");
    assert_string_equal(req.verb, "restart");
    assert_string_equal(json_string_value(json_array_get(req.args, 0)), "chartio");
    json_decref(root);
}

static void test_replies(void **state)
{
    char *ok = proto_reply_ok(json_pack("{s:i}", "n", 1));
    char *err = proto_reply_error("bad \"thing\"\n", json_pack("[s]", "e1"));
    json_t *j;

    assert_string_equal(ok, "{\"v\":1,\"ok\":true,\"result\":{\"n\":1}}\n");
    /* One line, whatever the message holds. */
    assert_non_null(strchr(err, '\n'));
    assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
    j = json_loads(err, 0, NULL);
    assert_false(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(json_string_value(json_object_get(j, "error")), "bad \"thing\"\n");
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 1);
    json_decref(j);
    free(ok);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_split_and_joined),
        cmocka_unit_test(test_framing_limit),
        cmocka_unit_test(test_framing_callback_stops),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

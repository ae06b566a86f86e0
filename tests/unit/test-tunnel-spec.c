/* Unit tests: tunnel destination and forward spec parsing, and the string
 * checks that keep config values from becoming ssh options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/tunnel/tunnel.h"

struct fwd_case {
    const char *spec;
    bool remote;
    int ret;
    const char *bind, *host;
    unsigned port, hostport;
    const char *text; /* tunnel_forward_remote_text */
};

static const struct fwd_case fwd_cases[] = {
    {"15240:127.0.0.1:3306", true, 0, NULL, "127.0.0.1", 15240, 3306,
     "listen 15240, connect 127.0.0.1:3306"},
    {"127.0.0.1:15240:db.internal:3306", true, 0, "127.0.0.1", "db.internal", 15240, 3306,
     "listen 127.0.0.1:15240, connect db.internal:3306"},
    {"0:localhost:80", true, 0, NULL, "localhost", 0, 80, "listen 0, connect localhost:80"},
    {"0:localhost:80", false, -EINVAL},
    {"*:8080:127.0.0.1:80", true, 0, "*", "127.0.0.1", 8080, 80,
     "listen *:8080, connect 127.0.0.1:80"},
    {"[::1]:8080:[fe80::1]:80", true, 0, "::1", "fe80::1", 8080, 80,
     "listen ::1:8080, connect fe80::1:80"},
    {"8080:[::1]:22", false, 0, NULL, "::1", 8080, 22, "listen 8080, connect ::1:22"},
    {"8080:127.0.0.1", true, -EINVAL},
    {"a:b:c:d:e", true, -EINVAL},
    {"65536:h:1", true, -EINVAL},
    {"1:h:0", true, -EINVAL},
    {"1:h:65535", true, 0, NULL, "h", 1, 65535, "listen 1, connect h:65535"},
    {"x1:h:2", true, -EINVAL},
    {"1:-oProxyCommand=x:2", true, -EINVAL},
    {"-o:1:h:2", true, -EINVAL},
    {"1:h h:2", true, -EINVAL},
    {"[::1:1:h:2", true, -EINVAL},
    {"[zz::1]:1:h:2", true, -EINVAL},
    {"", true, -EINVAL},
    {"1::2", true, -EINVAL},
};

static void test_forwards(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fwd_cases) / sizeof(fwd_cases[0]); i++) {
        const struct fwd_case *c = &fwd_cases[i];
        struct tunnel_forward f = {0};
        const char *why = NULL;
        char text[128];
        int r = tunnel_forward_parse(c->spec, c->remote, &f, &why);
        print_message("forward '%s' remote=%d\n", c->spec, c->remote);
        assert_int_equal(r, c->ret);
        if (r < 0) {
            assert_non_null(why);
            continue;
        }
        if (c->bind)
            assert_string_equal(f.bind, c->bind);
        else
            assert_null(f.bind);
        assert_string_equal(f.host, c->host);
        assert_int_equal(f.port, c->port);
        assert_int_equal(f.hostport, c->hostport);
        assert_true(tunnel_forward_remote_text(&f, text, sizeof(text)) > 0);
        assert_string_equal(text, c->text);
        assert_int_equal(tunnel_forward_remote_text(&f, text, 8), -ENOBUFS);
        tunnel_forward_clear(&f);
    }
}

struct dest_case {
    const char *s;
    int ret;
    const char *user, *host;
    unsigned port;
};

static const struct dest_case dest_cases[] = {
    {"tunnel15240@connect.chartio.com", 0, "tunnel15240", "connect.chartio.com", 22},
    {"root@127.0.0.1:2222", 0, "root", "127.0.0.1", 2222},
    {"u@[::1]:2222", 0, "u", "::1", 2222},
    {"u@[::1]", 0, "u", "::1", 22},
    {"u.x-y_z@h", 0, "u.x-y_z", "h", 22},
    {"host.example.com", -EINVAL},
    {"@h", -EINVAL},
    {"u@", -EINVAL},
    {"u@h:", -EINVAL},
    {"u@h:0", -EINVAL},
    {"u@h:70000", -EINVAL},
    {"u@-oProxyCommand=x", -EINVAL},
    {"-l@h", -EINVAL},
    {"u v@h", -EINVAL},
    {"u@h:22x", -EINVAL},
    {"u@[::1", -EINVAL},
    {"u@[::1]x", -EINVAL},
    {"u@::1", -EINVAL},
};

static void test_destinations(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(dest_cases) / sizeof(dest_cases[0]); i++) {
        const struct dest_case *c = &dest_cases[i];
        struct tunnel_dest d = {0};
        const char *why = NULL;
        int r = tunnel_dest_parse(c->s, &d, &why);
        print_message("destination '%s'\n", c->s);
        assert_int_equal(r, c->ret);
        if (r < 0) {
            assert_non_null(why);
            continue;
        }
        assert_string_equal(d.user, c->user);
        assert_string_equal(d.host, c->host);
        assert_int_equal(d.port, c->port);
        tunnel_dest_clear(&d);
    }
}

static void test_checks(void **state)
{
    const char *canon = NULL;
    (void)state;

    assert_true(tunnel_name_ok("chartio"));
    assert_true(tunnel_name_ok("db-1.eu_west"));
    assert_false(tunnel_name_ok(""));
    assert_false(tunnel_name_ok(NULL));
    assert_false(tunnel_name_ok("a b"));
    assert_false(tunnel_name_ok("a/b"));
    assert_false(
        tunnel_name_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));

    assert_true(tunnel_ssh_option_allowed("ciphers", &canon));
    assert_string_equal(canon, "Ciphers");
    assert_true(tunnel_ssh_option_allowed("KexAlgorithms", NULL));
    assert_false(tunnel_ssh_option_allowed("ProxyCommand", NULL));
    assert_false(tunnel_ssh_option_allowed("StrictHostKeyChecking", NULL));
    assert_false(tunnel_ssh_option_allowed("UserKnownHostsFile", NULL));
    assert_false(tunnel_ssh_option_allowed("LocalCommand", NULL));
    assert_false(tunnel_ssh_option_allowed("ProxyJump", NULL));

    assert_true(tunnel_ssh_value_ok("aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"));
    assert_false(tunnel_ssh_value_ok(""));
    assert_false(tunnel_ssh_value_ok("-x"));
    assert_false(tunnel_ssh_value_ok("a b"));
    assert_false(tunnel_ssh_value_ok("a\nProxyCommand=x"));
    assert_false(tunnel_ssh_value_ok("\"x\""));

    assert_true(tunnel_path_ok("/etc/agentd/keys/chartio"));
    assert_true(tunnel_path_ok("/k/100%"));
    assert_false(tunnel_path_ok("relative"));
    assert_false(tunnel_path_ok("/a b"));
    assert_false(tunnel_path_ok("/a/${HOME}"));
    assert_false(tunnel_path_ok("/a\"b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwards),
        cmocka_unit_test(test_destinations),
        cmocka_unit_test(test_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests: the ssh command line of a tunnel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/tunnel/tunnel.h"

/* Index of the first "-o" whose value is `opt`, or -1. */
static int find_opt(char **argv, const char *opt)
{
    for (int i = 0; argv[i]; i++)
        if (strcmp(argv[i], "-o") == 0 && argv[i + 1] && strcmp(argv[i + 1], opt) == 0)
            return i;
    return -1;
}

static int find_arg(char **argv, const char *a)
{
    for (int i = 0; argv[i]; i++)
        if (strcmp(argv[i], a) == 0)
            return i;
    return -1;
}

static int argc_of(char **argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

static void test_basic(void **state)
{
    struct tunnel_dest dest = {.user = "tunnel15240", .host = "connect.chartio.com", .port = 22};
    struct tunnel_forward remote[2] = {
        {.port = 15240, .host = "127.0.0.1", .hostport = 3306},
        {.bind = "::1", .port = 0, .host = "fe80::2", .hostport = 80},
    };
    struct tunnel_forward local[1] = {
        {.bind = "127.0.0.1", .port = 8080, .host = "db", .hostport = 5432}};
    struct tunnel_argv_in in = {
        .ssh = "ssh",
        .dest = &dest,
        .remote = remote,
        .nremote = 2,
        .local = local,
        .nlocal = 1,
        .identity = "/etc/agentd/keys/chartio",
        .known_hosts = "/etc/agentd/keys/100%.kh",
        .keepalive_s = 10,
        .keepalive_count = 3,
        .connect_timeout_s = 7,
    };
    char **argv = NULL;
    int n;
    (void)state;

    assert_int_equal(tunnel_argv_build(&in, &argv), 0);
    n = argc_of(argv);
    assert_string_equal(argv[0], "ssh");
    assert_true(find_arg(argv, "-v") > 0);
    assert_true(find_arg(argv, "-N") > 0);
    assert_int_equal(find_arg(argv, "-F") + 1, find_arg(argv, "none"));
    static const char *const fixed[] = {
        "BatchMode=yes",
        "ExitOnForwardFailure=yes",
        "ServerAliveInterval=10",
        "ServerAliveCountMax=3",
        "ConnectTimeout=7",
        "IdentitiesOnly=yes",
        "IdentityFile=/etc/agentd/keys/chartio",
        "UserKnownHostsFile=/etc/agentd/keys/100%%.kh",
        "GlobalKnownHostsFile=/dev/null",
        "StrictHostKeyChecking=yes",
        "UpdateHostKeys=no",
        "ControlMaster=no",
        "PermitLocalCommand=no",
        "ConnectionAttempts=1",
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        print_message("option %s\n", fixed[i]);
        assert_true(find_opt(argv, fixed[i]) > 0);
    }
    assert_int_equal(find_opt(argv, "StrictHostKeyChecking=accept-new"), -1);
    int r1 = find_arg(argv, "15240:127.0.0.1:3306");
    int r2 = find_arg(argv, "[::1]:0:[fe80::2]:80");
    int l1 = find_arg(argv, "127.0.0.1:8080:db:5432");
    assert_true(r1 > 0 && r2 > 0 && l1 > 0);
    assert_string_equal(argv[r1 - 1], "-R");
    assert_string_equal(argv[r2 - 1], "-R");
    assert_string_equal(argv[l1 - 1], "-L");
    /* The destination ends the command line, the host after "--". */
    assert_string_equal(argv[n - 6], "-l");
    assert_string_equal(argv[n - 5], "tunnel15240");
    assert_string_equal(argv[n - 4], "-p");
    assert_string_equal(argv[n - 3], "22");
    assert_string_equal(argv[n - 2], "--");
    assert_string_equal(argv[n - 1], "connect.chartio.com");
    assert_null(argv[n]);
    tunnel_argv_free(argv);
}

static void test_extra_and_accept_new(void **state)
{
    struct tunnel_dest dest = {.user = "u", .host = "::1", .port = 2222};
    struct tunnel_forward remote = {.port = 1, .host = "h", .hostport = 2};
    char *keys[] = {"ciphers", "CertificateFile"};
    char *values[] = {"aes256-gcm@openssh.com", "/k/cert%u.pub"};
    struct agentd_map extra = {.n = 2, .keys = keys, .values = values};
    struct tunnel_argv_in in = {
        .ssh = "/usr/bin/ssh",
        .dest = &dest,
        .remote = &remote,
        .nremote = 1,
        .identity = "/k/id",
        .known_hosts = "/k/kh",
        .accept_new = true,
        .keepalive_s = 1,
        .keepalive_count = 2,
        .connect_timeout_s = 5,
        .extra = &extra,
    };
    char **argv = NULL;
    (void)state;

    assert_int_equal(tunnel_argv_build(&in, &argv), 0);
    assert_true(find_opt(argv, "StrictHostKeyChecking=accept-new") > 0);
    assert_int_equal(find_opt(argv, "StrictHostKeyChecking=yes"), -1);
    /* Extras use the canonical spelling and come after the fixed options,
     * so ssh (first value wins) can never let them override those. */
    int c = find_opt(argv, "Ciphers=aes256-gcm@openssh.com");
    assert_true(c > find_opt(argv, "StrictHostKeyChecking=accept-new"));
    assert_true(c > find_opt(argv, "BatchMode=yes"));
    assert_true(find_opt(argv, "CertificateFile=/k/cert%%u.pub") > 0);
    assert_int_equal(find_arg(argv, "1:h:2") - 1, find_arg(argv, "-R"));
    int n = argc_of(argv);
    assert_string_equal(argv[n - 1], "::1");
    assert_string_equal(argv[n - 3], "2222");
    tunnel_argv_free(argv);

    /* A value that slipped past validation is refused, not passed on. */
    char *bad_keys[] = {"ProxyCommand"};
    char *bad_values[] = {"nc %h %p"};
    struct agentd_map bad = {.n = 1, .keys = bad_keys, .values = bad_values};
    in.extra = &bad;
    argv = NULL;
    assert_int_equal(tunnel_argv_build(&in, &argv), -EINVAL);
    assert_null(argv);
    in.extra = NULL;
    in.identity = NULL;
    assert_int_equal(tunnel_argv_build(&in, &argv), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_extra_and_accept_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests: classification of ssh's stderr lines, using lines captured
 * from OpenSSH 9.2p1 (ssh -v) in each situation the state machine handles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/tunnel/tunnel.h"

struct line_case {
    const char *line;
    enum tunnel_line_kind kind;
    bool debug;
    enum tunnel_err err;
    unsigned port;
    const char *arg;
};

static const struct line_case cases[] = {
    /* progress */
    {"debug1: Local forwarding listening on 127.0.0.1 port 49416.\r", TUNNEL_LINE_LOCAL_LISTEN,
     true, TUNNEL_ERR_NONE, 49416},
    {"debug1: Local forwarding listening on ::1 port 45003.", TUNNEL_LINE_LOCAL_LISTEN, true,
     TUNNEL_ERR_NONE, 45003},
    {"debug1: remote forward success for: listen 127.0.0.1:49409, connect 127.0.0.1:22\r",
     TUNNEL_LINE_REMOTE_OK, true, TUNNEL_ERR_NONE, 0,
     "listen 127.0.0.1:49409, connect 127.0.0.1:22"},
    {"debug1: remote forward success for: listen 0, connect 127.0.0.1:80", TUNNEL_LINE_REMOTE_OK,
     true, TUNNEL_ERR_NONE, 0, "listen 0, connect 127.0.0.1:80"},
    {"debug1: remote forward failure for: listen 45001, connect 127.0.0.1:80",
     TUNNEL_LINE_REMOTE_FAIL, true, TUNNEL_ERR_FORWARD, 0, "listen 45001, connect 127.0.0.1:80"},
    {"Allocated port 43499 for remote forward to 127.0.0.1:80\r", TUNNEL_LINE_ALLOCATED, false,
     TUNNEL_ERR_NONE, 43499, "127.0.0.1:80"},
    /* debug chatter that must not count */
    {"debug1: Local connections to 127.0.0.1:49416 forwarded to remote address 127.0.0.1:22",
     TUNNEL_LINE_OTHER, true},
    {"debug1: Remote connections from 127.0.0.1:49409 forwarded to local address 127.0.0.1:22",
     TUNNEL_LINE_OTHER, true},
    {"debug1: forwarding_success: all expected forwarding replies received", TUNNEL_LINE_OTHER,
     true},
    {"debug1: Local forwarding listening on 127.0.0.1 port x.", TUNNEL_LINE_OTHER, true},
    {"debug1: identity file /tmp/sshx/id type 3", TUNNEL_LINE_OTHER, true},
    {"debug1:", TUNNEL_LINE_OTHER, true},
    /* benign */
    {"OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026\r", TUNNEL_LINE_OTHER},
    {"Authenticated to 127.0.0.1 ([127.0.0.1]:36043) using \"publickey\".", TUNNEL_LINE_OTHER},
    {"Transferred: sent 3572, received 3204 bytes, in 2.8 seconds", TUNNEL_LINE_OTHER},
    {"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@", TUNNEL_LINE_OTHER},
    {"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @", TUNNEL_LINE_OTHER},
    {"", TUNNEL_LINE_OTHER},
    /* transient */
    {"ssh: connect to host 127.0.0.1 port 1: Connection refused\r", TUNNEL_LINE_ERROR, false,
     TUNNEL_ERR_CONNECT},
    {"ssh: connect to host 10.1.1.1 port 22: Connection timed out", TUNNEL_LINE_ERROR, false,
     TUNNEL_ERR_TIMEOUT},
    {"Connection timed out during banner exchange", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_TIMEOUT},
    {"Timeout, server 127.0.0.1 not responding.", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_TIMEOUT},
    {"Connection to 127.0.0.1 closed by remote host.", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_CLOSED},
    {"kex_exchange_identification: read: Connection reset by peer", TUNNEL_LINE_ERROR, false,
     TUNNEL_ERR_CONNECT},
    {"Connection reset by 127.0.0.1 port 22", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_CLOSED},
    {"client_loop: send disconnect: Broken pipe", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_CLOSED},
    {"ssh: Could not resolve hostname nowhere.invalid: Name or service not known",
     TUNNEL_LINE_ERROR, false, TUNNEL_ERR_CONNECT},
    {"Error: remote port forwarding failed for listen port 45001", TUNNEL_LINE_ERROR, false,
     TUNNEL_ERR_FORWARD},
    {"bind [127.0.0.1]:45001: Address already in use", TUNNEL_LINE_ERROR, false,
     TUNNEL_ERR_FORWARD},
    {"Could not request local forwarding.", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_FORWARD},
    {"something new that ssh says", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_OTHER},
    /* permanent */
    {"Permissions 0644 for '/k/id' are too open.", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_IDENTITY},
    {"Load key \"/k/id\": bad permissions", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_IDENTITY},
    {"Warning: Identity file /nonexist not accessible: No such file or directory.",
     TUNNEL_LINE_ERROR, false, TUNNEL_ERR_IDENTITY},
    {"Host key for [127.0.0.1]:36043 has changed and you have requested strict checking.",
     TUNNEL_LINE_ERROR, false, TUNNEL_ERR_HOSTKEY},
    {"No ED25519 host key is known for [127.0.0.1]:36043 and you have requested strict checking.",
     TUNNEL_LINE_ERROR, false, TUNNEL_ERR_HOSTKEY},
    {"Host key verification failed.\r", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_HOSTKEY},
    {"root@127.0.0.1: Permission denied (publickey).", TUNNEL_LINE_ERROR, false, TUNNEL_ERR_AUTH},
};

static void test_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct line_case *c = &cases[i];
        struct tunnel_line l;
        print_message("line '%s'\n", c->line);
        tunnel_classify(c->line, strlen(c->line), &l);
        assert_int_equal(l.kind, c->kind);
        assert_int_equal(l.debug, c->debug);
        assert_int_equal(l.err, c->err);
        if (c->port)
            assert_int_equal(l.port, c->port);
        if (c->arg) {
            assert_int_equal(l.arg_len, strlen(c->arg));
            assert_memory_equal(l.arg, c->arg, l.arg_len);
        }
        if (c->kind == TUNNEL_LINE_ERROR)
            assert_true(l.prio > 0);
    }
}

/* What one failed attempt prints, in order, and which error must win. */
struct attempt_case {
    const char *lines[8];
    enum tunnel_err want;
};

static const struct attempt_case attempts[] = {
    {{"@         WARNING: UNPROTECTED PRIVATE KEY FILE!          @",
      "Permissions 0644 for 'id644' are too open.",
      "It is required that your private key files are NOT accessible by others.",
      "This private key will be ignored.", "Load key \"id644\": bad permissions",
      "root@127.0.0.1: Permission denied (publickey)."},
     TUNNEL_ERR_IDENTITY},
    {{"Warning: Identity file /nonexist not accessible: No such file or directory.",
      "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026",
      "root@127.0.0.1: Permission denied (publickey)."},
     TUNNEL_ERR_IDENTITY},
    {{"IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
      "Host key for [127.0.0.1]:36043 has changed and you have requested strict checking.",
      "Host key verification failed."},
     TUNNEL_ERR_HOSTKEY},
    {{"Authenticated to 127.0.0.1 ([127.0.0.1]:36043) using \"publickey\".",
      "debug1: remote forward failure for: listen 45001, connect 127.0.0.1:80",
      "Error: remote port forwarding failed for listen port 45001"},
     TUNNEL_ERR_FORWARD},
    {{"Authenticated to 127.0.0.1 ([127.0.0.1]:36043) using \"publickey\".",
      "Connection to 127.0.0.1 closed by remote host.",
      "Transferred: sent 3448, received 3160 bytes, in 1.3 seconds"},
     TUNNEL_ERR_CLOSED},
};

static void test_attempts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
        enum tunnel_err best = TUNNEL_ERR_NONE;
        int prio = 0;
        for (size_t j = 0; attempts[i].lines[j]; j++) {
            struct tunnel_line l;
            tunnel_classify(attempts[i].lines[j], strlen(attempts[i].lines[j]), &l);
            if (l.err != TUNNEL_ERR_NONE && l.prio > prio) {
                best = l.err;
                prio = l.prio;
            }
        }
        assert_int_equal(best, attempts[i].want);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_true(tunnel_err_permanent(TUNNEL_ERR_HOSTKEY));
    assert_true(tunnel_err_permanent(TUNNEL_ERR_IDENTITY));
    assert_true(tunnel_err_permanent(TUNNEL_ERR_AUTH));
    assert_false(tunnel_err_permanent(TUNNEL_ERR_FORWARD));
    assert_false(tunnel_err_permanent(TUNNEL_ERR_CONNECT));
    assert_false(tunnel_err_permanent(TUNNEL_ERR_OTHER));
    assert_string_equal(tunnel_err_name(TUNNEL_ERR_HOSTKEY), "host-key");
    assert_string_equal(tunnel_err_summary(TUNNEL_ERR_FORWARD), "forward refused");
    for (int e = TUNNEL_ERR_NONE; e <= TUNNEL_ERR_IDENTITY; e++) {
        assert_non_null(tunnel_err_name((enum tunnel_err)e));
        assert_non_null(tunnel_err_summary((enum tunnel_err)e));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_attempts),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

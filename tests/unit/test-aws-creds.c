/* Credentials: the shared-file parser (profiles, comments, whitespace, CRLF),
 * the environment, and the chain's cache: SDK order, one refresh however
 * many wait, the advisory and mandatory windows, keeping unexpired
 * credentials when a refresh fails (with one warning), and expiry. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws-fake-host.h"
#include "aws-internal.h"

#define S(x) x, strlen(x)

static const char creds_file[] = "# comment\r\n"
                                 "; another\r\n"
                                 "[default]\r\n"
                                 "aws_access_key_id = AKIDDEFAULT\r\n"
                                 "aws_secret_access_key=secret/default+x\r\n"
                                 "\r\n"
                                 "[  prod  ]\n"
                                 "  aws_access_key_id   =   AKIDPROD   \n"
                                 "AWS_Secret_Access_Key: prodsecret\n"
                                 "aws_session_token = tok=en==\n"
                                 "s3 =\n"
                                 "    aws_access_key_id = NESTED\n"
                                 "region = eu-west-1 # not a comment\n"
                                 "[profile prod]\n"
                                 "aws_access_key_id = WRONGFILESTYLE\n";

static void test_parse_credentials_file(void **state)
{
    struct aws_profile p = {0};

    assert_int_equal(aws_profile_parse(S(creds_file), false, "default", &p), 1);
    assert_string_equal(p.access_key_id, "AKIDDEFAULT");
    assert_string_equal(p.secret_access_key, "secret/default+x");
    assert_null(p.session_token);
    aws_profile_clear(&p);

    assert_int_equal(aws_profile_parse(S(creds_file), false, "prod", &p), 1);
    /* An indented first line is a nested value in configparser terms, so
     * it does not count; ':' separates too; no inline comments. */
    assert_null(p.access_key_id);
    assert_string_equal(p.secret_access_key, "prodsecret");
    assert_string_equal(p.session_token, "tok=en==");
    assert_string_equal(p.region, "eu-west-1 # not a comment");
    aws_profile_clear(&p);

    assert_int_equal(aws_profile_parse(S(creds_file), false, "missing", &p), 0);
    assert_null(p.access_key_id);
    assert_int_equal(aws_profile_parse(S("[default\nx=y\n"), false, "default", &p), -EINVAL);
    assert_int_equal(aws_profile_parse("a\0b", 3, false, "default", &p), -EINVAL);
    aws_profile_clear(&p);
}

static void test_parse_config_file(void **state)
{
    const char *cfg = "[default]\nregion=us-east-2\n"
                      "[profile dev]\nregion = ap-southeast-2\naws_access_key_id=AKIDDEV\n"
                      "aws_secret_access_key=devsecret\n"
                      "[dev]\nregion = wrong\n"
                      "[profile  spaced ]\nregion=ca-central-1\n";
    struct aws_profile p = {0};

    assert_int_equal(aws_profile_parse(S(cfg), true, "default", &p), 1);
    assert_string_equal(p.region, "us-east-2");
    aws_profile_clear(&p);
    assert_int_equal(aws_profile_parse(S(cfg), true, "dev", &p), 1);
    assert_string_equal(p.region, "ap-southeast-2");
    assert_string_equal(p.access_key_id, "AKIDDEV");
    aws_profile_clear(&p);
    assert_int_equal(aws_profile_parse(S(cfg), true, "spaced", &p), 1);
    assert_string_equal(p.region, "ca-central-1");
    aws_profile_clear(&p);
    /* Values already set (from the credentials file) are kept. */
    p.region = strdup("from-credentials");
    assert_int_equal(aws_profile_parse(S(cfg), true, "dev", &p), 1);
    assert_string_equal(p.region, "from-credentials");
    aws_profile_clear(&p);
}

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_load_files(void **state)
{
    char cp[128], fp[128];
    struct aws_profile p = {0};

    snprintf(cp, sizeof(cp), "%s/credentials", tmpdir);
    snprintf(fp, sizeof(fp), "%s/config", tmpdir);
    write_file("credentials", "[ops]\naws_access_key_id=AKIDOPS\naws_secret_access_key=opss\n");
    write_file("config", "[profile ops]\nregion=sa-east-1\naws_access_key_id=IGNORED\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cp, 1);
    setenv("AWS_CONFIG_FILE", fp, 1);
    setenv("AWS_PROFILE", "ops", 1);
    assert_string_equal(aws_profile_name(NULL), "ops");
    assert_string_equal(aws_profile_name("x"), "x");
    assert_int_equal(aws_profile_load(NULL, NULL, NULL, &p), 0);
    assert_string_equal(p.access_key_id, "AKIDOPS");
    assert_string_equal(p.secret_access_key, "opss");
    assert_string_equal(p.region, "sa-east-1");
    aws_profile_clear(&p);
    /* Missing files are not errors: the profile just has nothing. */
    assert_int_equal(aws_profile_load("/nonexistent/c", "/nonexistent/f", "ops", &p), 0);
    assert_null(p.access_key_id);
    unsetenv("AWS_PROFILE");
}

static void test_env(void **state)
{
    struct aws_creds c = {0};

    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_SECURITY_TOKEN");
    assert_int_equal(aws_creds_env_load(&c), -ENOENT);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    assert_int_equal(aws_creds_env_load(&c), -ENOENT);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    assert_int_equal(aws_creds_env_load(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDENV");
    assert_string_equal(c.secret_access_key, "envsecret");
    assert_null(c.session_token);
    assert_string_equal(c.source, "environment");
    aws_creds_clear(&c);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    assert_int_equal(aws_creds_env_load(&c), 0);
    assert_string_equal(c.session_token, "envtoken");
    aws_creds_clear(&c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
}

/* ---- the chain, with a fake provider and a fake clock ------------------ */

static int64_t clock_now = 1700000000;

static int64_t fake_clock(void)
{
    return clock_now;
}

static struct {
    int fetches;
    agentd_creds_done_fn done;
    void *host_ud;
    int64_t expiration;
    char akid[32];
} prov;

static void prov_fetch(void *ud, agentd_creds_done_fn done, void *host_ud)
{
    prov.fetches++;
    prov.done = done;
    prov.host_ud = host_ud;
}

/* Answers the pending fetch. */
static void prov_answer(int status, int64_t expiration)
{
    struct agentd_aws_credentials c = {.access_key_id = prov.akid,
                                       .secret_access_key = "imdssecret",
                                       .session_token = "imdstoken",
                                       .expiration = expiration};
    agentd_creds_done_fn done = prov.done;

    assert_non_null(done);
    prov.done = NULL;
    done(status, status == 0 ? &c : NULL, status == 0 ? NULL : "IMDS unreachable", prov.host_ud);
}

struct got {
    int calls;
    int status;
    char akid[32];
};

static void on_creds(int status, const struct aws_creds *c, const char *msg, void *ud)
{
    struct got *g = ud;

    g->calls++;
    g->status = status;
    snprintf(g->akid, sizeof(g->akid), "%s", status == 0 ? c->access_key_id : "");
}

/* Runs until the queued file reads are done (nothing else is active). */
static void run_loop(void)
{
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}

static struct agentd_plugin_ctx *const imds_ctx = (struct agentd_plugin_ctx *)0x1;

static int chain_setup(void **state)
{
    struct aws_creds_settings s = {.source = AWS_CREDS_AUTO,
                                   .credentials_file = "/nonexistent/credentials",
                                   .config_file = "/nonexistent/config"};
    struct agentd_creds_provider p = {.name = "imds", .fetch = prov_fetch};

    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    aws_creds_set_clock(fake_clock);
    aws_creds_configure(NULL, &s);
    aws_creds_invalidate();
    memset(&prov, 0, sizeof(prov));
    snprintf(prov.akid, sizeof(prov.akid), "ASIAONE");
    assert_int_equal(agentd_aws_register_creds_provider(imds_ctx, &p), 0);
    fake_host_nlog = 0;
    return 0;
}

static int chain_teardown(void **state)
{
    aws_creds_forget_ctx(imds_ctx);
    return 0;
}

/* Starts a get that must wait for the provider: the profile step runs on
 * the work queue first. */
static void get_waiting(struct got *g)
{
    struct aws_creds_wait *w = NULL;

    assert_int_equal(aws_creds_get(NULL, on_creds, g, &w), 0);
    assert_non_null(w);
}

static void test_chain_single_refresh(void **state)
{
    struct got g[5] = {{0}};

    for (int i = 0; i < 5; i++)
        get_waiting(&g[i]);
    run_loop();
    /* Five waiters, one fetch. */
    assert_int_equal(prov.fetches, 1);
    prov_answer(0, clock_now + 6 * 3600);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].status, 0);
        assert_string_equal(g[i].akid, "ASIAONE");
    }
    assert_true(fake_host_logged("using AWS credentials from imds"));
    json_t *st = aws_creds_status();
    assert_string_equal(json_string_value(json_object_get(st, "source")), "imds");
    assert_string_equal(json_string_value(json_object_get(st, "access_key_id")),
                        "****************AONE");
    assert_int_equal(json_integer_value(json_object_get(st, "expires_in_s")), 6 * 3600);
    char *dump = json_dumps(st, 0);
    assert_null(strstr(dump, "imdssecret"));
    assert_null(strstr(dump, "imdstoken"));
    free(dump);
    json_decref(st);
}

static void test_chain_windows(void **state)
{
    struct got a = {0}, b = {0}, c = {0}, d = {0};
    int64_t exp = clock_now + 6 * 3600;

    get_waiting(&a);
    run_loop();
    prov_answer(0, exp);
    /* Fresh: served at once, no fetch. */
    assert_int_equal(aws_creds_get(NULL, on_creds, &b, NULL), 1);
    assert_int_equal(prov.fetches, 1);
    /* Advisory window (15 min): served at once, one background refresh. */
    clock_now = exp - 14 * 60;
    assert_int_equal(aws_creds_get(NULL, on_creds, &c, NULL), 1);
    assert_string_equal(c.akid, "ASIAONE");
    run_loop();
    assert_int_equal(prov.fetches, 2);
    snprintf(prov.akid, sizeof(prov.akid), "ASIATWO");
    prov_answer(0, exp + 6 * 3600);
    assert_int_equal(aws_creds_get(NULL, on_creds, &d, NULL), 1);
    assert_string_equal(d.akid, "ASIATWO");
    /* Mandatory window (10 min): requests wait for the refresh. */
    clock_now = exp + 6 * 3600 - 9 * 60;
    struct got e = {0};
    get_waiting(&e);
    run_loop();
    assert_int_equal(prov.fetches, 3);
    assert_int_equal(e.calls, 0);
    snprintf(prov.akid, sizeof(prov.akid), "ASIATHREE");
    prov_answer(0, clock_now + 3600);
    assert_string_equal(e.akid, "ASIATHREE");
}

static void test_chain_refresh_fails(void **state)
{
    struct got a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
    int64_t exp = clock_now + 3600;

    get_waiting(&a);
    run_loop();
    prov_answer(0, exp);
    /* In the mandatory window the refresh fails: the unexpired credentials
     * are still served, and a warning says when they expire, once. */
    clock_now = exp - 5 * 60;
    get_waiting(&b);
    run_loop();
    prov_answer(-EHOSTUNREACH, 0);
    assert_int_equal(b.status, 0);
    assert_string_equal(b.akid, "ASIAONE");
    assert_true(fake_host_logged("expire at"));
    assert_true(fake_host_logged("cannot be refreshed: ") &&
                fake_host_logged("imds: IMDS unreachable"));
    size_t warnings = fake_host_nlog;
    /* Backing off: served from the cache without a new fetch. */
    assert_int_equal(aws_creds_get(NULL, on_creds, &c, NULL), 1);
    assert_string_equal(c.akid, "ASIAONE");
    assert_int_equal(prov.fetches, 2);
    /* The next failure does not warn again. */
    clock_now += 120;
    get_waiting(&d);
    run_loop();
    prov_answer(-EHOSTUNREACH, 0);
    assert_int_equal(d.status, 0);
    assert_int_equal(fake_host_nlog, warnings);
    /* Expired and still failing: an error. */
    clock_now = exp + 1;
    get_waiting(&e);
    run_loop();
    prov_answer(-EHOSTUNREACH, 0);
    assert_int_equal(e.status, -ENOKEY);
    assert_true(fake_host_logged("expired and cannot be refreshed"));
}

static void test_chain_env_first(void **state)
{
    struct got a = {0};

    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    assert_int_equal(aws_creds_get(NULL, on_creds, &a, NULL), 1);
    assert_string_equal(a.akid, "AKIDENV");
    assert_int_equal(prov.fetches, 0);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

static void test_chain_profile_before_provider(void **state)
{
    char cp[128];
    struct aws_creds_settings s = {.source = AWS_CREDS_AUTO,
                                   .credentials_file = cp,
                                   .config_file = "/nonexistent/config",
                                   .profile = "ops"};
    struct got a = {0};

    snprintf(cp, sizeof(cp), "%s/credentials", tmpdir);
    write_file("credentials", "[ops]\naws_access_key_id=AKIDOPS\naws_secret_access_key=opss\n");
    aws_creds_configure(NULL, &s);
    get_waiting(&a);
    run_loop();
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.akid, "AKIDOPS");
    assert_int_equal(prov.fetches, 0);
    assert_true(fake_host_logged("using AWS credentials from profile ops"));
}

static void test_chain_pinned_env_fails(void **state)
{
    struct aws_creds_settings s = {.source = AWS_CREDS_ENV};
    struct got a = {0};

    aws_creds_configure(NULL, &s);
    assert_int_equal(aws_creds_get(NULL, on_creds, &a, NULL), 1);
    assert_int_equal(a.status, -ENOKEY);
    assert_int_equal(prov.fetches, 0);
    assert_true(fake_host_logged("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set"));
}

static void test_chain_expired_from_provider(void **state)
{
    struct got a = {0};

    get_waiting(&a);
    run_loop();
    prov_answer(0, clock_now - 1);
    assert_int_equal(a.status, -ENOKEY);
    assert_true(fake_host_logged("already expired"));
}

static void test_chain_cancel_and_forget(void **state)
{
    struct got a = {0}, b = {0};
    struct aws_creds_wait *w = NULL;

    assert_int_equal(aws_creds_get(NULL, on_creds, &a, &w), 0);
    get_waiting(&b);
    aws_creds_cancel(w);
    run_loop();
    assert_int_equal(prov.fetches, 1);
    /* The provider's plugin stops mid-fetch: the refresh does not hang. */
    agentd_creds_done_fn stale = prov.done;
    void *stale_ud = prov.host_ud;
    aws_creds_forget_ctx(imds_ctx);
    run_loop();
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, -ENOKEY);
    /* A late answer of the abandoned fetch is ignored safely. */
    stale(-ECANCELED, NULL, "stopped", stale_ud);
    assert_int_equal(b.calls, 1);
}

static int prov2_fetches;

static void prov2_fetch(void *ud, agentd_creds_done_fn done, void *host_ud)
{
    struct agentd_aws_credentials c = {.access_key_id = "ASIANEW", .secret_access_key = "s2"};

    prov2_fetches++;
    done(0, &c, NULL, host_ud);
}

static void test_chain_restarted_and_dead_providers(void **state)
{
    struct agentd_creds_provider p2 = {.name = "imds", .fetch = prov2_fetch};
    struct got a = {0}, b = {0};

    /* A fetch is pending when the plugin restarts and registers again:
     * the new provider replaces the old and the refresh starts over. */
    get_waiting(&a);
    run_loop();
    assert_int_equal(prov.fetches, 1);
    assert_int_equal(agentd_aws_register_creds_provider(imds_ctx, &p2), 0);
    run_loop();
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.akid, "ASIANEW");
    json_t *st = aws_creds_status();
    assert_int_equal(json_array_size(json_object_get(st, "providers")), 1);
    json_decref(st);
    /* A provider whose plugin is not running is never called. */
    aws_creds_invalidate();
    fake_host_dead_ctx = imds_ctx;
    fake_host_dead_ctx_set = true;
    get_waiting(&b);
    run_loop();
    fake_host_dead_ctx_set = false;
    assert_int_equal(prov2_fetches, 1);
    assert_int_equal(b.status, -ENOKEY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_credentials_file),
        cmocka_unit_test(test_parse_config_file),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_env),
        cmocka_unit_test_setup_teardown(test_chain_single_refresh, chain_setup, chain_teardown),
        cmocka_unit_test_setup_teardown(test_chain_windows, chain_setup, chain_teardown),
        cmocka_unit_test_setup_teardown(test_chain_refresh_fails, chain_setup, chain_teardown),
        cmocka_unit_test_setup_teardown(test_chain_env_first, chain_setup, chain_teardown),
        cmocka_unit_test_setup_teardown(test_chain_profile_before_provider, chain_setup,
                                        chain_teardown),
        cmocka_unit_test_setup_teardown(test_chain_pinned_env_fails, chain_setup, chain_teardown),
        cmocka_unit_test_setup_teardown(test_chain_expired_from_provider, chain_setup,
                                        chain_teardown),
        cmocka_unit_test_setup_teardown(test_chain_cancel_and_forget, chain_setup, chain_teardown),
        cmocka_unit_test_setup_teardown(test_chain_restarted_and_dead_providers, chain_setup,
                                        chain_teardown),
    };
    int r;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-aws-creds.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    r = cmocka_run_group_tests(tests, NULL, NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/credentials", tmpdir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/config", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return r;
}

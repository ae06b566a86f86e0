/* The signer against AWS's published SigV4 test suite (tests/data/sigv4, from
 * aws-c-auth; header-signing cases) plus the details the suite does not
 * cover: S3's path rule and payload header, the session token, the key cache
 * and the wire form of paths. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aws-sigv4.h"

#define SUITE AGENTD_SRCDIR "/tests/data/sigv4/v4"

static char *slurp(const char *dir, const char *name, size_t *ret_len)
{
    char path[512];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    if (ret_len)
        *ret_len = (size_t)n;
    return buf;
}

/* A parsed request.txt: "METHOD TARGET HTTP/1.1", headers (continuation
 * lines joined with "\n" so the signer must fold them), blank line, body. */
struct suite_req {
    char *method, *path, *query;
    char *headers[32];
    size_t nheaders;
    const char *body;
    size_t body_len;
};

static void parse_request(char *text, size_t len, struct suite_req *r)
{
    char *eol = strchr(text, '\n'), *sp, *http, *q, *p;

    memset(r, 0, sizeof(*r));
    assert_non_null(eol);
    *eol = '\0';
    sp = strchr(text, ' ');
    http = strstr(text, " HTTP/1.1");
    assert_non_null(sp);
    assert_non_null(http);
    *sp = '\0';
    *http = '\0';
    r->method = text;
    r->path = sp + 1;
    q = strchr(r->path, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    }
    p = eol + 1;
    while (p < text + len && *p != '\n') {
        char *e = strchr(p, '\n');
        if (e)
            *e = '\0';
        if ((*p == ' ' || *p == '\t') && r->nheaders > 0) {
            char *prev = r->headers[r->nheaders - 1];
            size_t pl = strlen(prev), nl = strlen(p);
            char *j = malloc(pl + 1 + nl + 1);
            assert_non_null(j);
            memcpy(j, prev, pl);
            j[pl] = '\n';
            memcpy(j + pl + 1, p, nl + 1);
            free(prev);
            r->headers[r->nheaders - 1] = j;
        } else {
            assert_true(r->nheaders < 31);
            r->headers[r->nheaders++] = strdup(p);
        }
        if (!e) {
            p = text + len;
            break;
        }
        p = e + 1;
    }
    if (p < text + len && *p == '\n') {
        r->body = p + 1;
        r->body_len = (size_t)(text + len - (p + 1));
    }
}

static int64_t parse_time(const char *s)
{
    struct tm tm = {0};

    assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return (int64_t)timegm(&tm);
}

/* Runs one case; returns 1 if canonical request, string to sign and
 * Authorization all match, else prints the difference and returns 0. */
static int run_case(const char *name)
{
    char dir[512], *reqtxt, *ctxtxt, *want_cr, *want_sts, *want_signed, *auth_line;
    struct suite_req r;
    json_t *ctxj, *credj;
    json_error_t jerr;
    struct agentd_aws_credentials creds = {0};
    struct sigv4_request sreq = {0};
    struct sigv4_result res;
    char *wire = NULL;
    size_t len;
    int ok;

    snprintf(dir, sizeof(dir), "%s/%s", SUITE, name);
    reqtxt = slurp(dir, "request.txt", &len);
    ctxtxt = slurp(dir, "context.json", NULL);
    want_cr = slurp(dir, "header-canonical-request.txt", NULL);
    want_sts = slurp(dir, "header-string-to-sign.txt", NULL);
    want_signed = slurp(dir, "header-signed-request.txt", NULL);
    if (!reqtxt || !ctxtxt || !want_cr || !want_sts || !want_signed) {
        fprintf(stderr, "%s: missing files\n", name);
        return 0;
    }
    parse_request(reqtxt, len, &r);
    ctxj = json_loads(ctxtxt, 0, &jerr);
    assert_non_null(ctxj);
    credj = json_object_get(ctxj, "credentials");
    creds.access_key_id = json_string_value(json_object_get(credj, "access_key_id"));
    creds.secret_access_key = json_string_value(json_object_get(credj, "secret_access_key"));
    /* omit_session_token: the token is added after signing, so it is not
     * part of the signature at all. */
    if (!json_is_true(json_object_get(ctxj, "omit_session_token")))
        creds.session_token = json_string_value(json_object_get(credj, "token"));

    sreq.method = r.method;
    sreq.query = r.query;
    sreq.headers = (const char *const *)r.headers;
    sreq.body = r.body;
    sreq.body_len = r.body_len;
    sreq.content_sha256 = json_is_true(json_object_get(ctxj, "sign_body"));
    sreq.service = json_string_value(json_object_get(ctxj, "service"));
    sreq.region = json_string_value(json_object_get(ctxj, "region"));
    sreq.now = parse_time(json_string_value(json_object_get(ctxj, "timestamp")));
    if (json_is_false(json_object_get(ctxj, "normalize"))) {
        /* The S3 rule signs the path exactly as it goes on the wire. */
        sreq.s3_path = true;
        wire = sigv4_wire_path(r.path);
        sreq.path = wire;
    } else {
        /* The suite's paths are decoded; a double-encoding service encodes
         * what it received once more, which is exactly one encoding of the
         * decoded path. */
        sreq.path = r.path;
    }
    assert_int_equal(sigv4_sign(&sreq, &creds, &res), 0);

    auth_line = strstr(want_signed, "Authorization:");
    assert_non_null(auth_line);
    auth_line += strlen("Authorization:");
    auth_line[strcspn(auth_line, "\r\n")] = '\0';

    ok = strcmp(res.canonical_request, want_cr) == 0 && strcmp(res.string_to_sign, want_sts) == 0 &&
         strcmp(res.authorization, auth_line) == 0;
    if (!ok)
        fprintf(stderr, "FAIL %s\n--- want\n%s\n--- got\n%s\n--- auth want %s\n--- got  %s\n", name,
                want_cr, res.canonical_request, auth_line, res.authorization);
    sigv4_result_free(&res);
    for (size_t i = 0; i < r.nheaders; i++)
        free(r.headers[i]);
    free(wire);
    json_decref(ctxj);
    free(reqtxt);
    free(ctxtxt);
    free(want_cr);
    free(want_sts);
    free(want_signed);
    return ok;
}

static void test_suite(void **state)
{
    DIR *d = opendir(SUITE);
    struct dirent *de;
    int total = 0, passed = 0;

    assert_non_null(d);
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        total++;
        passed += run_case(de->d_name);
    }
    closedir(d);
    printf("sigv4 suite: %d/%d header-signing cases passed\n", passed, total);
    assert_true(total >= 38);
    assert_int_equal(passed, total);
}

static const struct agentd_aws_credentials ex_creds = {
    .access_key_id = "AKIDEXAMPLE",
    .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

static void test_s3_rule(void **state)
{
    const char *hdrs[] = {"Host: bucket.s3.amazonaws.com", "Range: bytes=0-9", NULL};
    struct sigv4_request req = {
        .method = "GET",
        .path = "/a%20b/..//c%2Fd",
        .headers = hdrs,
        .s3_path = true,
        .content_sha256 = true,
        .service = "s3",
        .region = "us-east-1",
        .now = 1440938160,
    };
    struct sigv4_result res;

    assert_int_equal(sigv4_sign(&req, &ex_creds, &res), 0);
    /* S3: the path is signed as sent, neither normalised nor re-encoded, and
     * the payload hash is a signed header. */
    assert_non_null(strstr(res.canonical_request, "GET\n/a%20b/..//c%2Fd\n\n"));
    assert_non_null(strstr(res.canonical_request,
                           "x-amz-content-sha256:"
                           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"));
    assert_non_null(
        strstr(res.authorization, "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"));
    sigv4_result_free(&res);

    req.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
    assert_int_equal(sigv4_sign(&req, &ex_creds, &res), 0);
    assert_string_equal(res.payload_hash, "UNSIGNED-PAYLOAD");
    assert_non_null(strstr(res.canonical_request, "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"));
    assert_non_null(strstr(res.canonical_request, "\nUNSIGNED-PAYLOAD"));
    sigv4_result_free(&res);

    /* Other services normalise and encode the wire path once more. */
    req.s3_path = false;
    req.content_sha256 = false;
    req.payload_hash = NULL;
    assert_int_equal(sigv4_sign(&req, &ex_creds, &res), 0);
    assert_non_null(strstr(res.canonical_request, "GET\n/c%252Fd\n\n"));
    assert_null(strstr(res.canonical_request, "x-amz-content-sha256"));
    sigv4_result_free(&res);
}

static void test_query_and_headers(void **state)
{
    const char *hdrs[] = {"Host: h",
                          "X-B:  b   c ",
                          "x-a: 2",
                          "X-A:\t1",
                          "User-Agent: agentd",
                          "X-Amz-Date: 19990101T000000Z",
                          "Authorization: x",
                          NULL};
    struct agentd_aws_credentials c = ex_creds;
    struct sigv4_request req = {
        .method = "POST",
        .path = "/",
        .query = "b=2&a=&c&a=1&%41=x+y&&k=%zz&u=%E1%88%b4",
        .headers = hdrs,
        .service = "svc",
        .region = "eu-west-1",
        .now = 0,
    };
    struct sigv4_result res;

    c.session_token = "TOKEN";
    assert_int_equal(sigv4_sign(&req, &c, &res), 0);
    /* Sorted by encoded key then value; empty values; invalid escapes and
     * '+' are literal; hex upper-cased. */
    assert_string_equal(res.canonical_query, "A=x%2By&a=&a=1&b=2&c=&k=%25zz&u=%E1%88%B4");
    assert_string_equal(res.amz_date, "19700101T000000Z");
    assert_non_null(strstr(res.canonical_request, "\nhost:h\nx-a:2,1\nx-amz-date:19700101T000000Z\n"
                                                  "x-amz-security-token:TOKEN\nx-b:b c\n\n"));
    assert_non_null(strstr(res.authorization,
                           "Credential=AKIDEXAMPLE/19700101/eu-west-1/svc/aws4_request, "
                           "SignedHeaders=host;x-a;x-amz-date;x-amz-security-token;x-b, "
                           "Signature="));
    sigv4_result_free(&res);
}

static void test_errors(void **state)
{
    const char *nohost[] = {"X-A: 1", NULL};
    const char *bad[] = {"Host: h", "no colon", NULL};
    struct sigv4_request req = {
        .method = "GET", .path = "/", .headers = nohost, .service = "s", .region = "r"};
    struct sigv4_result res;

    assert_int_equal(sigv4_sign(&req, &ex_creds, &res), -EINVAL);
    req.headers = bad;
    assert_int_equal(sigv4_sign(&req, &ex_creds, &res), -EINVAL);
}

static void test_key_cache(void **state)
{
    const char *hdrs[] = {"Host: h", NULL};
    struct sigv4_request req = {
        .method = "GET", .path = "/", .headers = hdrs, .service = "s", .region = "r", .now = 100};
    struct agentd_aws_credentials other = ex_creds;
    struct sigv4_result a, b, c;

    /* A cached key must give the same signature; another secret with the
     * same key id must not hit the cache. */
    sigv4_cache_clear();
    assert_int_equal(sigv4_sign(&req, &ex_creds, &a), 0);
    assert_int_equal(sigv4_sign(&req, &ex_creds, &b), 0);
    assert_string_equal(a.authorization, b.authorization);
    other.secret_access_key = "another-secret";
    assert_int_equal(sigv4_sign(&req, &other, &c), 0);
    assert_string_not_equal(a.authorization, c.authorization);
    sigv4_result_free(&a);
    sigv4_result_free(&b);
    sigv4_result_free(&c);
    /* Many regions: eviction keeps working. */
    for (int i = 0; i < 40; i++) {
        char region[16];
        snprintf(region, sizeof(region), "r%d", i % 12);
        req.region = region;
        assert_int_equal(sigv4_sign(&req, &ex_creds, &a), 0);
        sigv4_result_free(&a);
    }
}

static void test_wire_path(void **state)
{
    char *w = sigv4_wire_path("/a b/%41%zz/ሴ/!*'();:@&=+$,?#[]~");

    assert_string_equal(w, "/a%20b/%41%25zz/%E1%88%B4/%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%3F%"
                           "23%5B%5D~");
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite),
        cmocka_unit_test(test_s3_rule),
        cmocka_unit_test(test_query_and_headers),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_key_cache),
        cmocka_unit_test(test_wire_path),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

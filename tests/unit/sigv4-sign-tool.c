/* Signs requests read from stdin with agentd's signer, for the differential
 * test against botocore (tests/integration/test_aws_sigv4_diff.py).
 *
 * Input, one JSON object per line: {method, path (raw: encoded for the wire
 * here), query, headers: [[name, value]...], body_hex, service, region,
 * s3, unsigned, akid, secret, token, now}. Output, one line each:
 * {wire_path, canonical_query, canonical_request, authorization, amz_date,
 * payload_hash} or {error}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aws-sigv4.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static json_t *sign_one(json_t *in)
{
    const char *hex = json_string_value(json_object_get(in, "body_hex"));
    json_t *hs = json_object_get(in, "headers"), *out;
    size_t nh = json_array_size(hs), blen = hex ? strlen(hex) / 2 : 0;
    char **lines = calloc(nh + 1, sizeof(*lines));
    unsigned char *body = malloc(blen + 1);
    struct agentd_aws_credentials creds = {0};
    struct sigv4_request req = {0};
    struct sigv4_result res;
    char *wire;
    int r;

    for (size_t i = 0; i < blen; i++)
        body[i] = (unsigned char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    for (size_t i = 0; i < nh; i++) {
        json_t *h = json_array_get(hs, i);
        if (asprintf(&lines[i], "%s:%s", json_string_value(json_array_get(h, 0)),
                     json_string_value(json_array_get(h, 1))) < 0)
            abort();
    }
    wire = sigv4_wire_path(json_string_value(json_object_get(in, "path")));
    req.method = json_string_value(json_object_get(in, "method"));
    req.path = wire;
    req.query = json_string_value(json_object_get(in, "query"));
    req.headers = (const char *const *)lines;
    req.body = body;
    req.body_len = blen;
    req.s3_path = json_is_true(json_object_get(in, "s3"));
    req.content_sha256 = req.s3_path;
    req.payload_hash =
        json_is_true(json_object_get(in, "unsigned")) ? SIGV4_UNSIGNED_PAYLOAD : NULL;
    req.service = json_string_value(json_object_get(in, "service"));
    req.region = json_string_value(json_object_get(in, "region"));
    req.now = json_integer_value(json_object_get(in, "now"));
    creds.access_key_id = json_string_value(json_object_get(in, "akid"));
    creds.secret_access_key = json_string_value(json_object_get(in, "secret"));
    creds.session_token = json_string_value(json_object_get(in, "token"));
    r = sigv4_sign(&req, &creds, &res);
    if (r < 0)
        out = json_pack("{s:i}", "error", r);
    else {
        out = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "wire_path", wire, "canonical_query",
                        res.canonical_query, "canonical_request", res.canonical_request,
                        "authorization", res.authorization, "amz_date", res.amz_date,
                        "payload_hash", res.payload_hash);
        sigv4_result_free(&res);
    }
    for (size_t i = 0; i < nh; i++)
        free(lines[i]);
    free(lines);
    free(body);
    free(wire);
    return out;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_error_t err;
        json_t *in = json_loadb(line, (size_t)n, 0, &err), *out;
        char *s;

        if (!in) {
            fprintf(stderr, "bad input: %s\n", err.text);
            return 2;
        }
        out = sign_one(in);
        s = json_dumps(out, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(out);
        json_decref(in);
    }
    free(line);
    return 0;
}

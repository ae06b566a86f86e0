/* SigV4 request signing (agentd/aws-sigv4.c): internal API used by
 * agentd_aws_request and, with a fixed clock, by the tests. */
#ifndef AGENTD_AWS_SIGV4_H
#define AGENTD_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentd/plugin.h"

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

struct sigv4_request {
    const char *method;
    /* The path as sent on the wire: percent-encoded (see sigv4_wire_path). */
    const char *path;
    /* The query string as given ("a=b&c"), or NULL. Each key and value is
     * decoded and re-encoded canonically; send result.canonical_query. */
    const char *query;
    /* "Name: value" lines, NULL-terminated; must include Host. Authorization,
     * X-Amz-Date, X-Amz-Security-Token (and x-amz-content-sha256 with content_sha256)
     * are replaced; User-Agent, Expect and X-Amzn-Trace-Id are not signed. */
    const char *const *headers;
    const void *body;
    size_t body_len;
    /* NULL: the hex SHA-256 of body; or e.g. SIGV4_UNSIGNED_PAYLOAD. */
    const char *payload_hash;
    /* S3's rule: the path is neither normalised nor encoded again. */
    bool s3_path;
    /* The payload hash is sent and signed as x-amz-content-sha256 (S3). */
    bool content_sha256;
    const char *service;
    const char *region;
    int64_t now; /* unix seconds */
};

struct sigv4_result {
    char amz_date[17];     /* X-Amz-Date: "20150830T123600Z" */
    char payload_hash[65]; /* the payload hash (x-amz-content-sha256) */
    char *canonical_query; /* what to send after '?' ("" if none) */
    char *canonical_request;
    char *string_to_sign;
    char *authorization; /* the Authorization header's value */
};

/* Signs req with creds. Returns 0 and fills *ret (free with
 * sigv4_result_free), -EINVAL for a malformed request (no Host, bad header
 * line), -ENOMEM. Signing keys are cached per day, region, service and key. */
int sigv4_sign(const struct sigv4_request *req, const struct agentd_aws_credentials *creds,
               struct sigv4_result *ret);
void sigv4_result_free(struct sigv4_result *r);

/* The path as it must go on the wire: bytes other than unreserved
 * characters, '/' and valid %XX escapes are percent-encoded. New string
 * (caller frees) or NULL on allocation failure. */
char *sigv4_wire_path(const char *path);

/* Percent-encodes n bytes of s the SigV4 way (unreserved characters kept,
 * '/' kept when keep_slash) into a new string; NULL on allocation failure. */
char *sigv4_uri_encode(const char *s, size_t n, bool keep_slash);

/* Drops every cached signing key (zeroed). */
void sigv4_cache_clear(void);

/* ---- internals shared by aws-sigv4.c and aws-sigv4-canon.c ---- */

/* A growable string; allocation failure is sticky and checked once. */
struct sigv4_buf {
    char *p;
    size_t len, cap;
    bool oom;
};

void sigv4_buf_put(struct sigv4_buf *b, const char *s, size_t n);
void sigv4_buf_puts(struct sigv4_buf *b, const char *s);
void sigv4_buf_putc(struct sigv4_buf *b, char c);
/* The string (caller frees), or NULL if any append failed. */
char *sigv4_buf_take(struct sigv4_buf *b);

/* Appends the canonical URI of a wire path for double-encoding services:
 * dot segments and empty segments removed, then every segment encoded. */
void sigv4_put_normalized_path(struct sigv4_buf *b, const char *path);
/* The canonical query: pairs decoded, re-encoded, sorted. NULL on ENOMEM. */
char *sigv4_canonical_query(const char *query);

struct sigv4_hdr {
    char *name;  /* lowercase */
    char *value; /* trimmed, whitespace runs folded to one space */
    size_t idx;
};

/* The headers to sign, sorted by name then order of appearance, with
 * X-Amz-Date, the session token and x-amz-content-sha256 added. */
int sigv4_collect_headers(const struct sigv4_request *req,
                          const struct agentd_aws_credentials *creds, const char *amz_date,
                          const char *payload_hash, struct sigv4_hdr **ret, size_t *ret_n);
void sigv4_headers_free(struct sigv4_hdr *hs, size_t n);

#endif

/* Internal interfaces between the AWS core's files (agentd/aws-*.c). Plugins
 * see none of this: they use agentd_aws_* from plugin.h. Helper code here does
 * not log; aws-creds.c, aws-request.c and aws-plugin.c log for it. */
#ifndef AGENTD_AWS_INTERNAL_H
#define AGENTD_AWS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentd/plugin.h"

/* ---- errors (aws-error.c) ------------------------------------------------ */

struct aws_error {
    char code[128];
    char message[512];
};

/* Query/S3 XML: <ErrorResponse><Error><Code>..</Code><Message>..</Message>
 * or <Error><Code>..</Code>... Returns 0 with the code found, -ENOENT if the
 * document holds no error code, -EBADMSG if it is not well-formed XML. */
int aws_error_parse_xml(const char *body, size_t len, struct aws_error *ret);
/* JSON 1.1: {"__type":"prefix#Code","message":".."}; a non-NULL
 * x-amzn-ErrorType header value ("Code:http://...") takes precedence for the
 * code. Returns 0, -ENOENT (no code), -EBADMSG (not JSON). */
int aws_error_parse_json(const char *body, size_t len, const char *errortype_header,
                         struct aws_error *ret);
/* Whether an XML body's root element is <Error>: S3 answers some operations
 * (CompleteMultipartUpload, CopyObject) with 200 and an error document. */
bool aws_error_xml_is_error(const char *body, size_t len);

/* ---- retries (aws-retry.c): the SDKs' standard mode ---------------------- */

#define AWS_RETRY_QUOTA_MAX      500
#define AWS_RETRY_COST           5
#define AWS_RETRY_TIMEOUT_COST   10
#define AWS_RETRY_MAX_BACKOFF    20000 /* ms */
#define AWS_DEFAULT_MAX_ATTEMPTS 3

struct aws_retry_quota {
    int tokens;
};

void aws_retry_quota_init(struct aws_retry_quota *q);
/* Takes the cost of one retry (10 after a timeout, else 5). Returns the cost
 * taken, or -ENOSPC when the quota is exhausted: do not retry. */
int aws_retry_quota_acquire(struct aws_retry_quota *q, bool timeout);
/* After a success: returns `cost` (what the request's retries took), or 1
 * for a first-try success, to the quota, capped at the maximum. */
void aws_retry_quota_release(struct aws_retry_quota *q, int cost);
/* Delay before retry number `retry` (0 for the first retry): full jitter,
 * min(rand01 * 2^retry s, 20 s). */
uint64_t aws_retry_backoff_ms(unsigned retry, double rand01);
bool aws_retry_is_throttle(const char *code);
/* Whether an attempt's outcome is worth retrying: transport errors, 500,
 * 502, 503, 504, 429, throttling and transient codes. */
bool aws_retry_retryable(int transport_error, long status, const char *code);
/* The quota for an endpoint (host name), created on first use. */
struct aws_retry_quota *aws_retry_quota_for(const char *endpoint);
/* Attempts per request when the request does not say (aws.max_attempts). */
void aws_set_default_max_attempts(unsigned n);
unsigned aws_default_max_attempts(void);

/* ---- endpoints and region (aws-endpoint.c) ------------------------------ */

struct aws_endpoint {
    char *base; /* "https://logs.us-east-1.amazonaws.com" or the override,
                 * without a trailing slash; may carry a base path */
    char *host; /* the Host header: host[:port], the port only if not default */
    char *path; /* the base path ("" or "/prefix") */
    bool loopback;
};

/* Resolves where a request goes: `override` (the plugin's endpoint: option),
 * else AWS_ENDPOINT_URL_<endpoint_id>, else AWS_ENDPOINT_URL, else
 * https://SERVICE.REGION.DNS-SUFFIX for the region's partition. Plain http is
 * refused (-EPERM) unless the host is a loopback address. -EINVAL for a URL
 * that does not parse, -EDESTADDRREQ without region or override. */
int aws_endpoint_resolve(const char *service, const char *endpoint_id, const char *override,
                         const char *region, struct aws_endpoint *ret);
void aws_endpoint_free(struct aws_endpoint *e);
/* "amazonaws.com", "amazonaws.com.cn" for the region's partition. */
const char *aws_partition_dns_suffix(const char *region);
const char *aws_partition_name(const char *region);
/* Whether a URL's host is loopback (127/8, ::1, localhost). */
bool aws_host_is_loopback(const char *host);

/* Region from the aws plugin's config (NULL to clear). */
void aws_region_set_config(const char *region);
/* Region from the shared config file's profile (NULL to clear). */
void aws_region_set_profile(const char *region);
/* Where the current region came from: "config", "environment", "profile",
 * "metadata", or NULL. */
const char *aws_region_source(struct agentd_plugin_ctx *ctx);

/* ---- credentials -------------------------------------------------------- */

/* Credentials owned by the core: strings allocated, zeroed before free. */
struct aws_creds {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;
    int64_t expiration;
    char source[32];
};

void aws_creds_clear(struct aws_creds *c);
int aws_creds_copy(struct aws_creds *dst, const struct agentd_aws_credentials *src,
                   const char *source);

/* aws-creds-env.c: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN. -ENOENT if the two keys are not both set. */
int aws_creds_env_load(struct aws_creds *ret);

/* aws-creds-profile.c: one profile's values from the shared files. */
struct aws_profile {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;
    char *region;
};

/* Parses INI text. config_file: section names are "profile NAME" (and
 * "default"); else plain "NAME". Fills the keys found for `profile` (keys
 * already set in ret are kept: the credentials file is parsed first and wins).
 * Returns 1 if the profile's section exists, 0 if not, -EINVAL for text that
 * is not INI (binary, unterminated section). */
int aws_profile_parse(const char *text, size_t len, bool config_file, const char *profile,
                      struct aws_profile *ret);
/* Reads both files (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
 * AWS_CONFIG_FILE or ~/.aws/config; explicit paths win when non-NULL) for
 * profile (NULL: AWS_PROFILE, else "default"). Blocking: call from a work
 * thread. Returns 0 (absent files and keys leave fields NULL), or -errno for
 * a file that cannot be read or parsed. */
int aws_profile_load(const char *creds_path, const char *config_path, const char *profile,
                     struct aws_profile *ret);
void aws_profile_clear(struct aws_profile *p);
/* The profile name in effect ("default" unless AWS_PROFILE or config). */
const char *aws_profile_name(const char *configured);

/* aws-creds.c: the provider chain and the cache. */
enum aws_creds_source { AWS_CREDS_AUTO, AWS_CREDS_ENV, AWS_CREDS_PROFILE, AWS_CREDS_IMDS };

struct aws_creds_settings {
    enum aws_creds_source source;
    const char *profile;          /* NULL: AWS_PROFILE / default */
    const char *credentials_file; /* NULL: environment / ~/.aws/credentials */
    const char *config_file;      /* NULL: environment / ~/.aws/config */
};

/* Applies the aws plugin's settings and drops cached credentials if they
 * changed. ctx is the aws plugin's (for logs and the work queue). */
void aws_creds_configure(struct agentd_plugin_ctx *ctx, const struct aws_creds_settings *s);

typedef void (*aws_creds_fn)(int status, const struct aws_creds *creds, const char *message,
                             void *ud);
struct aws_creds_wait;

/* Gets usable credentials: calls fn now (returns 1) when cached ones are
 * fresh enough, else queues fn (returns 0, *ret_wait set) until the one
 * refresh in progress ends. Negative errno on failure to start. */
int aws_creds_get(struct agentd_plugin_ctx *ctx, aws_creds_fn fn, void *ud,
                  struct aws_creds_wait **ret_wait);
void aws_creds_cancel(struct aws_creds_wait *w);
/* Forgets cached credentials so the next get refreshes (e.g. ExpiredToken). */
void aws_creds_invalidate(void);
/* Drops the providers a plugin registered (the host calls this when a plugin
 * stops; aws-plugin.c also calls it for every stop it sees). */
void aws_creds_forget_ctx(struct agentd_plugin_ctx *ctx);
/* Status without secrets: {source, access_key_id (masked), expiration,
 * expires_in_s, refreshing, last_error}. */
json_t *aws_creds_status(void);
/* Closes the fetch watchdog and wipes cached credentials (teardown). */
void aws_creds_shutdown(void);
/* Whether a plugin is running (its registered provider may be called).
 * aws-plugin.c answers from the host's plugin list. */
bool aws_ctx_running(struct agentd_plugin_ctx *ctx);
/* Whether valid credentials are cached (without refreshing). */
bool aws_creds_valid(void);
/* aws-plugin.c: refreshes the aws plugin's one-line summary (region,
 * credentials source and expiry) after the credentials changed. */
void aws_plugin_summary(void);
/* Test hook: the clock (unix seconds) the cache uses; NULL restores time(). */
void aws_creds_set_clock(int64_t (*now)(void));

#endif

/* The imds plugin's internal interfaces, shared by its files:
 *   imds.c          descriptor, options, scheduling, reports
 *   imds-control.c  `agentctl imds show|refresh` and the status details
 *   imds-client.c   IMDSv2 requests: session token, 401 handling, retries
 *   imds-meta.c     instance metadata and tags → agentd metadata keys
 *   imds-notices.c  spot/rebalance/maintenance/lifecycle polling → events
 *   imds-creds.c    the IMDS role credentials provider
 *   imds-parse.c    pure parsers of IMDS answers (unit tested)
 *   imds-util.c     endpoint resolution, path escaping, time parsing (unit tested)
 */
#ifndef AGENTD_IMDS_H
#define AGENTD_IMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentd/plugin.h"

/* ---- options ---------------------------------------------------------- */

enum imds_endpoint_mode { IMDS_MODE_AUTO = 0, IMDS_MODE_IPV4, IMDS_MODE_IPV6 };

struct imds_conf {
    char *endpoint;
    int endpoint_mode;
    uint64_t token_ttl_ms;
    bool v1_fallback;
    uint64_t poll_interval_ms;
    uint64_t refresh_interval_ms;
    uint64_t timeout_ms;
    uint64_t connect_timeout_ms;
    int64_t attempts;
    uint64_t max_backoff_ms;
    bool tags;
    bool credentials;
    bool allow_remote_imds;
};

/* ---- pure helpers (imds-util.c) --------------------------------------- */

#define IMDS_ENDPOINT_V4 "http://169.254.169.254"
#define IMDS_ENDPOINT_V6 "http://[fd00:ec2::254]"

/* Picks the endpoint base URL (no trailing slash) the way the SDKs do: the
 * `endpoint` option, else AWS_EC2_METADATA_SERVICE_ENDPOINT, else the
 * endpoint of the mode (the option, else AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE
 * "IPv4"/"IPv6", else IPv4). getenv_fn lets tests supply the environment.
 * Returns 0 and a new string, or -EINVAL (with *ret_bad naming what is wrong,
 * static storage). */
int imds_endpoint_resolve(const char *option, int mode, const char *(*getenv_fn)(const char *name),
                          char **ret, const char **ret_bad);
/* Whether an http:// endpoint's host is link-local (169.254.0.0/16,
 * fe80::/10), IMDS's IPv6 address (fd00:ec2::254) or loopback: the only
 * places role credentials may be fetched from in clear text. */
bool imds_endpoint_is_local(const char *url);
/* Whether AWS_EC2_METADATA_DISABLED says IMDS is off ("true", any case). */
bool imds_env_disabled(const char *value);
/* Percent-encodes one path segment (RFC 3986 pchar characters stay). Returns 0
 * and a new string, or -ENOMEM. */
int imds_path_escape(const char *seg, char **ret);
/* Parses "YYYY-MM-DDThh:mm:ss[.fff]Z" (or +00:00) into unix seconds. 0 or -EINVAL. */
int imds_parse_time(const char *s, int64_t *ret);
/* Backoff for attempt n (0-based): base·2^n capped at cap, plus jitter in
 * [0, result/2) from `rnd` (0..UINT32_MAX). */
uint64_t imds_backoff_ms(unsigned n, uint64_t base, uint64_t cap, uint32_t rnd);

/* ---- parsers (imds-parse.c); none of them log ------------------------- */

struct imds_creds {
    char *access_key_id;
    char *secret_access_key;
    char *token;
    char *expiration; /* as IMDS wrote it */
    int64_t expires_at;
};

/* Role credentials JSON. -EBADMSG: not JSON; -EPROTO: Code is not Success;
 * -EINVAL: a field missing or malformed. */
int imds_parse_creds(const char *body, size_t len, struct imds_creds *ret);
/* Zeroes the secrets and frees every field. */
void imds_creds_clear(struct imds_creds *c);

/* spot/instance-action: {"action":"terminate","time":"...Z"}. */
int imds_parse_spot(const char *body, size_t len, char **ret_action, char **ret_time);
/* events/recommendations/rebalance: {"noticeTime":"...Z"}. */
int imds_parse_rebalance(const char *body, size_t len, char **ret_notice_time);
/* events/maintenance/scheduled: a JSON array of event objects; returns it as
 * a new reference (possibly empty). */
int imds_parse_maintenance(const char *body, size_t len, json_t **ret_events);
/* autoscaling/target-lifecycle-state: a word such as InService or Warmed:Stopped. */
int imds_parse_lifecycle(const char *body, size_t len, char **ret_state);

struct imds_identity {
    char *account_id;
    char *region;
    char *az;
    char *instance_id;
    char *instance_type;
    char *image_id;
    char *private_ip;
};

int imds_parse_identity(const char *body, size_t len, struct imds_identity *ret);
void imds_identity_clear(struct imds_identity *id);

/* A plain value: one line, trimmed, printable, at most IMDS_MAX_VALUE bytes. */
#define IMDS_MAX_VALUE 1024
int imds_parse_value(const char *body, size_t len, char **ret);
/* A newline-separated listing; entries are trimmed, empty lines skipped, at
 * most max entries. *ret is a NULL-terminated array (free with imds_strv_free). */
int imds_parse_listing(const char *body, size_t len, size_t max, char ***ret);
void imds_strv_free(char **v);

/* ---- runtime --------------------------------------------------------- */

struct imds;
struct imds_req;

/* The result of one GET: err 0 and status 200 with the body; -ENOENT for 404;
 * -EACCES for 403; -ECANCELED when the plugin stops; another negative errno
 * for transport failures (status 0) or unexpected statuses. */
typedef void (*imds_get_fn)(struct imds *im, int err, long status, const char *body, size_t len,
                            void *ud);

/* Fetches /latest/<path> (path without a leading slash) with the session
 * token, getting one first when needed, renewing it once on 401, retrying
 * transport errors and 5xx up to `attempts` times with backoff. */
int imds_get(struct imds *im, const char *path, unsigned attempts, imds_get_fn cb, void *ud);
/* Cancels every request; each callback runs with -ECANCELED. */
void imds_client_cancel_all(struct imds *im);
/* Forgets the session token (next request gets a new one). */
void imds_client_drop_token(struct imds *im);

struct imds_notice_state;

struct imds {
    struct agentd_plugin_ctx *ctx;
    const struct imds_conf *conf;
    char *base; /* endpoint base URL, no trailing slash */
    bool disabled;
    bool stopping;
    agentd_stop_done_fn stop_done;

    /* client */
    char *token;
    uint64_t token_expires; /* uv_now() ms */
    uint64_t token_gen;     /* bumped per new token, so a 401 drops only a stale one */
    bool token_pending;
    struct agentd_http_call *token_call;
    bool v1; /* fallback to IMDSv1 in effect */
    struct imds_req *reqs;
    uint64_t n_requests, n_token_puts, n_errors;
    char last_error[256];

    /* scheduling: one timer drives polls, refreshes and retries */
    uv_timer_t *tick;
    bool reachable;
    bool tried; /* a first refresh has ended, one way or the other */
    bool refreshing, polling;
    bool refresh_again; /* asked for while one runs */
    uint64_t next_refresh, next_poll;
    unsigned fail_streak;
    uint64_t last_refresh_ok_ms; /* wall clock */

    /* metadata */
    struct agentd_map meta; /* current provider values, keys as in plugin.h */
    bool tags_enabled;
    char *role;

    /* notices */
    struct imds_notice_state *notices;

    /* credentials */
    int64_t creds_expires_at;
    char creds_akid_tail[8];
    uint64_t creds_fetches;

    struct agentd_health_check *health;

    /* metrics (NULL when IMDS is disabled) */
    struct agentd_metric *m_requests, *m_errors, *m_tokens, *m_reachable;
    struct agentd_metric *m_notices[4]; /* spot, rebalance, maintenance, lifecycle */
};

/* imds.c */
void imds_report(struct imds *im);
void imds_refresh_done(struct imds *im, int err, const char *what);
void imds_poll_done(struct imds *im, int err);
void imds_schedule(struct imds *im);
/* A "now" in wall-clock ms (for status). */
uint64_t imds_wallclock_ms(void);

/* imds-control.c */
json_t *imds_show_json(struct imds *im);
int imds_control_register(struct imds *im);

/* imds-meta.c */
int imds_meta_refresh(struct imds *im);
const char *imds_meta_get(const struct imds *im, const char *key);
void imds_meta_free(struct imds *im);
json_t *imds_meta_json(const struct imds *im);

/* imds-notices.c */
int imds_notices_init(struct imds *im);
int imds_notices_poll(struct imds *im);
json_t *imds_notices_json(const struct imds *im);
void imds_notices_free(struct imds *im);

/* imds-creds.c */
int imds_creds_register(struct imds *im);

#endif

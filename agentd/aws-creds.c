/* The credentials cache.
 *
 * Credentials with an Expiration are refreshed ahead of it as the SDKs do:
 * within 15 minutes (advisory) a refresh starts in the background while
 * requests keep the current ones; within 10 minutes (mandatory) requests
 * wait for the refresh. Only one refresh runs at a time however many
 * requests wait. When a refresh fails, unexpired credentials stay in use and
 * a warning says once when they will expire; failed refreshes back off so a
 * down IMDS is not hammered. The sources are tried by aws-creds-chain.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "aws-creds-state.h"

#define ADVISORY_S  (15 * 60)
#define MANDATORY_S (10 * 60)

struct creds_state creds_state;

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

int64_t creds_now(void)
{
    return creds_state.now ? creds_state.now() : wall_now();
}

void aws_creds_set_clock(int64_t (*now)(void))
{
    creds_state.now = now;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void aws_creds_clear(struct aws_creds *c)
{
    free_secret(c->access_key_id);
    free_secret(c->secret_access_key);
    free_secret(c->session_token);
    memset(c, 0, sizeof(*c));
}

int aws_creds_copy(struct aws_creds *dst, const struct agentd_aws_credentials *src,
                   const char *source)
{
    struct aws_creds c = {0};

    if (!src || !src->access_key_id || !*src->access_key_id || !src->secret_access_key ||
        !*src->secret_access_key)
        return -EINVAL;
    c.access_key_id = strdup(src->access_key_id);
    c.secret_access_key = strdup(src->secret_access_key);
    c.session_token = src->session_token && *src->session_token ? strdup(src->session_token) : NULL;
    c.expiration = src->expiration;
    snprintf(c.source, sizeof(c.source), "%s", source ? source : "");
    if (!c.access_key_id || !c.secret_access_key ||
        (src->session_token && *src->session_token && !c.session_token)) {
        aws_creds_clear(&c);
        return -ENOMEM;
    }
    *dst = c;
    return 0;
}

static void format_time(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, n, "%lld", (long long)t);
}

static void replace_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v && *v ? strdup(v) : NULL;
}

static bool streq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

void aws_creds_configure(struct agentd_plugin_ctx *ctx, const struct aws_creds_settings *s)
{
    bool changed = creds_state.source != s->source || !streq(creds_state.profile, s->profile) ||
                   !streq(creds_state.credentials_file, s->credentials_file) ||
                   !streq(creds_state.config_file, s->config_file);

    creds_state.ctx = ctx;
    creds_state.source = s->source;
    replace_str(&creds_state.profile, s->profile);
    replace_str(&creds_state.credentials_file, s->credentials_file);
    replace_str(&creds_state.config_file, s->config_file);
    if (changed)
        aws_creds_invalidate();
}

void aws_creds_invalidate(void)
{
    aws_creds_clear(&creds_state.cur);
    creds_state.have = false;
    creds_state.fails = 0;
    creds_state.next_attempt = 0;
}

static void deliver(int status, const char *message)
{
    struct aws_creds_wait *w;

    while ((w = creds_state.waiters)) {
        creds_state.waiters = w->next;
        w->fn(status, status >= 0 ? &creds_state.cur : NULL, message, w->ud);
        free(w);
    }
}

void creds_refresh_done(int status, const char *message)
{
    int64_t now = creds_now();
    char when[32];

    creds_state.refreshing = false;
    if (status >= 0) {
        if (strcmp(creds_state.last_source, creds_state.cur.source) != 0) {
            if (creds_state.cur.expiration) {
                format_time(creds_state.cur.expiration, when, sizeof(when));
                agentd_info(creds_state.ctx, "using AWS credentials from %s (expire %s)",
                            creds_state.cur.source, when);
            } else
                agentd_info(creds_state.ctx, "using AWS credentials from %s",
                            creds_state.cur.source);
            snprintf(creds_state.last_source, sizeof(creds_state.last_source), "%s",
                     creds_state.cur.source);
        } else
            agentd_debug(creds_state.ctx, "AWS credentials from %s refreshed",
                         creds_state.cur.source);
        creds_state.fails = 0;
        creds_state.next_attempt = 0;
        creds_state.warned_expiring = false;
        creds_state.last_error[0] = '\0';
        aws_plugin_summary();
        deliver(0, NULL);
        return;
    }
    snprintf(creds_state.last_error, sizeof(creds_state.last_error), "%s",
             message ? message : "unknown error");
    creds_state.fails++;
    creds_state.next_attempt = now + (creds_state.fails < 6 ? (1 << creds_state.fails) : 60);
    if (creds_state.have && (!creds_state.cur.expiration || now < creds_state.cur.expiration)) {
        if (!creds_state.warned_expiring) {
            format_time(creds_state.cur.expiration, when, sizeof(when));
            agentd_warning(creds_state.ctx,
                           "AWS credentials from %s expire at %s (in %lld s) and cannot be "
                           "refreshed: %s",
                           creds_state.cur.source, when,
                           (long long)(creds_state.cur.expiration - now), creds_state.last_error);
            creds_state.warned_expiring = true;
        }
        aws_plugin_summary();
        deliver(0, NULL);
        return;
    }
    if (creds_state.have) {
        agentd_error(creds_state.ctx, "AWS credentials from %s expired and cannot be refreshed: %s",
                     creds_state.cur.source, creds_state.last_error);
        aws_creds_clear(&creds_state.cur);
        creds_state.have = false;
    } else
        agentd_warning(creds_state.ctx, "no AWS credentials: %s", creds_state.last_error);
    aws_plugin_summary();
    deliver(-ENOKEY, creds_state.last_error);
}

void creds_set_current(struct aws_creds *c)
{
    aws_creds_clear(&creds_state.cur);
    creds_state.cur = *c;
    creds_state.obtained = creds_now();
    creds_state.have = true;
}

/* The SDKs' windows, scaled down for credentials that live less than an
 * hour (test roles, short sessions) so they are not refreshed on every
 * request: at most half (advisory) and a third (mandatory) of the lifetime
 * they had when fetched. */
static int64_t window(int64_t sdk_s, int64_t divisor)
{
    int64_t life = creds_state.cur.expiration - creds_state.obtained;

    return life / divisor < sdk_s ? life / divisor : sdk_s;
}

int aws_creds_get(struct agentd_plugin_ctx *ctx, aws_creds_fn fn, void *ud,
                  struct aws_creds_wait **ret_wait)
{
    int64_t now = creds_now();
    bool valid, fresh, mandatory;
    struct aws_creds_wait *w, **tail;

    if (!creds_state.ctx)
        creds_state.ctx = ctx;
    valid = creds_state.have && (!creds_state.cur.expiration || now < creds_state.cur.expiration);
    fresh = valid && (!creds_state.cur.expiration ||
                      now < creds_state.cur.expiration - window(ADVISORY_S, 2));
    mandatory = !valid || (creds_state.cur.expiration &&
                           now >= creds_state.cur.expiration - window(MANDATORY_S, 3));

    if (fresh) {
        fn(0, &creds_state.cur, NULL, ud);
        return 1;
    }
    if (creds_state.refreshing || now >= creds_state.next_attempt) {
        if (!creds_state.refreshing) {
            creds_refresh_start();
            /* The chain may have finished synchronously (environment). */
            if (!creds_state.refreshing) {
                if (creds_state.have)
                    fn(0, &creds_state.cur, NULL, ud);
                else
                    fn(-ENOKEY, NULL, creds_state.last_error, ud);
                return 1;
            }
        }
        if (valid && !mandatory) {
            fn(0, &creds_state.cur, NULL, ud);
            return 1;
        }
        w = calloc(1, sizeof(*w));
        if (!w)
            return -ENOMEM;
        w->fn = fn;
        w->ud = ud;
        for (tail = &creds_state.waiters; *tail; tail = &(*tail)->next)
            ;
        *tail = w;
        if (ret_wait)
            *ret_wait = w;
        return 0;
    }
    /* A refresh failed recently: use what is still valid, else fail fast. */
    if (valid)
        fn(0, &creds_state.cur, NULL, ud);
    else
        fn(-ENOKEY, NULL, creds_state.last_error[0] ? creds_state.last_error : "no credentials",
           ud);
    return 1;
}

void aws_creds_cancel(struct aws_creds_wait *w)
{
    for (struct aws_creds_wait **p = &creds_state.waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            free(w);
            return;
        }
}

bool aws_creds_valid(void)
{
    return creds_state.have &&
           (!creds_state.cur.expiration || creds_now() < creds_state.cur.expiration);
}

json_t *aws_creds_status(void)
{
    json_t *o = json_object();
    int64_t now = creds_now();
    char when[32], masked[32];

    if (!o)
        return NULL;
    json_object_set_new(o, "source",
                        creds_state.have ? json_string(creds_state.cur.source) : json_null());
    if (creds_state.have) {
        size_t n = strlen(creds_state.cur.access_key_id);
        /* Like `aws configure list`: only the last four characters. */
        snprintf(masked, sizeof(masked), "****************%s",
                 n > 4 ? creds_state.cur.access_key_id + n - 4 : "");
        json_object_set_new(o, "access_key_id", json_string(masked));
        if (creds_state.cur.expiration) {
            format_time(creds_state.cur.expiration, when, sizeof(when));
            json_object_set_new(o, "expiration", json_string(when));
            json_object_set_new(o, "expires_in_s", json_integer(creds_state.cur.expiration - now));
        } else
            json_object_set_new(o, "expiration", json_null());
    }
    json_object_set_new(o, "refreshing", json_boolean(creds_state.refreshing));
    json_object_set_new(o, "last_error",
                        creds_state.last_error[0] ? json_string(creds_state.last_error)
                                                  : json_null());
    json_t *prov = json_array();
    for (size_t i = 0; i < creds_state.nproviders; i++)
        json_array_append_new(prov, json_string(creds_state.providers[i].name));
    json_object_set_new(o, "providers", prov);
    return o;
}

/* The credentials chain and cache.
 *
 * Sources are tried in the SDKs' order (environment, shared files, then the
 * providers plugins register, such as imds), or only the one the `aws:
 * credentials:` option pins. Credentials with an Expiration are refreshed
 * ahead of it as the SDKs do: within 15 minutes (advisory) a refresh starts
 * in the background while requests keep the current ones; within 10 minutes
 * (mandatory) requests wait for the refresh. Only one refresh runs at a
 * time however many requests wait. When a refresh fails, unexpired
 * credentials stay in use and a warning says once when they will expire;
 * failed refreshes back off so a down IMDS is not hammered. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "aws-internal.h"

#define ADVISORY_S    (15 * 60)
#define MANDATORY_S   (10 * 60)
#define MAX_PROVIDERS 8

struct provider {
    struct agentd_plugin_ctx *owner;
    char name[32];
    void (*fetch)(void *provider_ud, agentd_creds_done_fn done, void *host_ud);
    void *ud;
};

struct aws_creds_wait {
    struct aws_creds_wait *next;
    aws_creds_fn fn;
    void *ud;
};

/* One step of a refresh in flight; the generation tells stale answers (a
 * refresh abandoned because its provider went away) from current ones. */
struct attempt {
    unsigned gen;
    size_t step;
    struct aws_profile profile;
    int status;
};

static struct {
    struct agentd_plugin_ctx *ctx;
    enum aws_creds_source source;
    char *profile, *credentials_file, *config_file;
    struct aws_creds cur;
    int64_t obtained; /* when cur was fetched */
    bool have;
    bool refreshing;
    unsigned gen;
    struct aws_creds_wait *waiters;
    struct provider providers[MAX_PROVIDERS];
    size_t nproviders;
    char reasons[512]; /* why sources failed, for the error message */
    char last_error[512];
    char last_source[32];
    bool warned_expiring;
    unsigned fails;
    int64_t next_attempt;
    int64_t (*now)(void);
} st;

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static int64_t now_s(void)
{
    return st.now ? st.now() : wall_now();
}

void aws_creds_set_clock(int64_t (*now)(void))
{
    st.now = now;
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
    bool changed = st.source != s->source || !streq(st.profile, s->profile) ||
                   !streq(st.credentials_file, s->credentials_file) ||
                   !streq(st.config_file, s->config_file);

    st.ctx = ctx;
    st.source = s->source;
    replace_str(&st.profile, s->profile);
    replace_str(&st.credentials_file, s->credentials_file);
    replace_str(&st.config_file, s->config_file);
    if (changed)
        aws_creds_invalidate();
}

void aws_creds_invalidate(void)
{
    aws_creds_clear(&st.cur);
    st.have = false;
    st.fails = 0;
    st.next_attempt = 0;
}

static void deliver(int status, const char *message)
{
    struct aws_creds_wait *w;

    while ((w = st.waiters)) {
        st.waiters = w->next;
        w->fn(status, status >= 0 ? &st.cur : NULL, message, w->ud);
        free(w);
    }
}

static void refresh_done(int status, const char *message)
{
    int64_t now = now_s();
    char when[32];

    st.refreshing = false;
    if (status >= 0) {
        if (strcmp(st.last_source, st.cur.source) != 0) {
            if (st.cur.expiration) {
                format_time(st.cur.expiration, when, sizeof(when));
                agentd_info(st.ctx, "using AWS credentials from %s (expire %s)", st.cur.source,
                            when);
            } else
                agentd_info(st.ctx, "using AWS credentials from %s", st.cur.source);
            snprintf(st.last_source, sizeof(st.last_source), "%s", st.cur.source);
        } else
            agentd_debug(st.ctx, "AWS credentials from %s refreshed", st.cur.source);
        st.fails = 0;
        st.next_attempt = 0;
        st.warned_expiring = false;
        st.last_error[0] = '\0';
        deliver(0, NULL);
        return;
    }
    snprintf(st.last_error, sizeof(st.last_error), "%s", message ? message : "unknown error");
    st.fails++;
    st.next_attempt = now + (st.fails < 6 ? (1 << st.fails) : 60);
    if (st.have && (!st.cur.expiration || now < st.cur.expiration)) {
        if (!st.warned_expiring) {
            format_time(st.cur.expiration, when, sizeof(when));
            agentd_warning(st.ctx,
                           "AWS credentials from %s expire at %s (in %lld s) and cannot be "
                           "refreshed: %s",
                           st.cur.source, when, (long long)(st.cur.expiration - now),
                           st.last_error);
            st.warned_expiring = true;
        }
        deliver(0, NULL);
        return;
    }
    if (st.have) {
        agentd_error(st.ctx, "AWS credentials from %s expired and cannot be refreshed: %s",
                     st.cur.source, st.last_error);
        aws_creds_clear(&st.cur);
        st.have = false;
    } else
        agentd_warning(st.ctx, "no AWS credentials: %s", st.last_error);
    deliver(-ENOKEY, st.last_error);
}

static void add_reason(const char *fmt, ...) AGENTD_PRINTF(1, 2);

static void add_reason(const char *fmt, ...)
{
    size_t n = strlen(st.reasons);
    va_list ap;

    if (n + 3 >= sizeof(st.reasons))
        return;
    if (n) {
        memcpy(st.reasons + n, "; ", 3);
        n += 2;
    }
    va_start(ap, fmt);
    vsnprintf(st.reasons + n, sizeof(st.reasons) - n, fmt, ap);
    va_end(ap);
}

static void chain_step(size_t step);

static void set_current(struct aws_creds *c)
{
    aws_creds_clear(&st.cur);
    st.cur = *c;
    st.obtained = now_s();
    st.have = true;
}

/* The SDKs' windows, scaled down for credentials that live less than an
 * hour (test roles, short sessions) so they are not refreshed on every
 * request: at most half (advisory) and a third (mandatory) of the lifetime
 * they had when fetched. */
static int64_t window(int64_t sdk_s, int64_t divisor)
{
    int64_t life = st.cur.expiration - st.obtained;

    return life / divisor < sdk_s ? life / divisor : sdk_s;
}

static void profile_work(void *ud)
{
    struct attempt *a = ud;

    a->status = aws_profile_load(st.credentials_file, st.config_file, st.profile, &a->profile);
}

static void profile_done(void *ud, int status)
{
    struct attempt *a = ud;
    struct agentd_aws_credentials c = {0};
    struct aws_creds got = {0};
    char src[48];
    size_t step = a->step;

    if (a->gen != st.gen || !st.refreshing) {
        aws_profile_clear(&a->profile);
        free(a);
        return;
    }
    if (status == 0 && a->status == 0 && a->profile.access_key_id && a->profile.secret_access_key) {
        c.access_key_id = a->profile.access_key_id;
        c.secret_access_key = a->profile.secret_access_key;
        c.session_token = a->profile.session_token;
        snprintf(src, sizeof(src), "profile %s", aws_profile_name(st.profile));
        if (aws_creds_copy(&got, &c, src) == 0) {
            aws_profile_clear(&a->profile);
            free(a);
            set_current(&got);
            refresh_done(0, NULL);
            return;
        }
    }
    if (a->status < 0 && a->status != -ENOENT)
        add_reason("profile '%s': %s", aws_profile_name(st.profile), strerror(-a->status));
    else
        add_reason("profile '%s' has no keys in the shared files", aws_profile_name(st.profile));
    aws_profile_clear(&a->profile);
    free(a);
    chain_step(step + 1);
}

static void provider_done(int status, const struct agentd_aws_credentials *creds,
                          const char *message, void *host_ud)
{
    struct attempt *a = host_ud;
    struct aws_creds got = {0};
    size_t step = a->step;
    unsigned gen = a->gen;
    const char *name;

    free(a);
    if (gen != st.gen || !st.refreshing)
        return; /* an abandoned refresh: its provider went away */
    name = st.providers[step - 2].name;
    if (status >= 0 && creds && creds->expiration && creds->expiration <= now_s()) {
        add_reason("%s: %s", name, "returned credentials that have already expired");
        chain_step(step + 1);
        return;
    }
    if (status >= 0 && aws_creds_copy(&got, creds, name) == 0) {
        set_current(&got);
        refresh_done(0, NULL);
        return;
    }
    add_reason("%s: %s", name, status >= 0 ? "invalid credentials" : message ? message : "failed");
    chain_step(step + 1);
}

/* Steps: 0 environment, 1 shared files, 2.. registered providers. */
static void chain_step(size_t step)
{
    struct aws_creds got = {0};
    struct attempt *a;
    int r;

    if (step == 0) {
        if (st.source == AWS_CREDS_AUTO || st.source == AWS_CREDS_ENV) {
            r = aws_creds_env_load(&got);
            if (r == 0) {
                set_current(&got);
                refresh_done(0, NULL);
                return;
            }
            add_reason("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set");
        }
        step = 1;
    }
    if (step == 1) {
        if (st.source == AWS_CREDS_AUTO || st.source == AWS_CREDS_PROFILE) {
            a = calloc(1, sizeof(*a));
            if (a) {
                a->gen = st.gen;
                a->step = 1;
                r = agentd_work_queue(st.ctx, profile_work, profile_done, a);
                if (r >= 0)
                    return;
                free(a);
            }
            add_reason("profile '%s': cannot queue the file read", aws_profile_name(st.profile));
        }
        step = 2;
    }
    for (; step - 2 < st.nproviders; step++) {
        struct provider *p = &st.providers[step - 2];
        if (st.source == AWS_CREDS_ENV || st.source == AWS_CREDS_PROFILE)
            break;
        if (st.source == AWS_CREDS_IMDS && strcmp(p->name, "imds") != 0)
            continue;
        if (agentd_stopping(p->owner))
            continue;
        a = calloc(1, sizeof(*a));
        if (!a)
            break;
        a->gen = st.gen;
        a->step = step;
        p->fetch(p->ud, provider_done, a);
        return;
    }
    if (st.source == AWS_CREDS_IMDS && st.nproviders == 0)
        add_reason("no imds provider (is the imds plugin configured?)");
    refresh_done(-ENOKEY, st.reasons[0] ? st.reasons : "no credentials source configured");
}

static void refresh_start(void)
{
    st.refreshing = true;
    st.gen++;
    st.reasons[0] = '\0';
    chain_step(0);
}

int aws_creds_get(struct agentd_plugin_ctx *ctx, aws_creds_fn fn, void *ud,
                  struct aws_creds_wait **ret_wait)
{
    int64_t now = now_s();
    bool valid, fresh, mandatory;
    struct aws_creds_wait *w, **tail;

    if (!st.ctx)
        st.ctx = ctx;
    valid = st.have && (!st.cur.expiration || now < st.cur.expiration);
    fresh = valid && (!st.cur.expiration || now < st.cur.expiration - window(ADVISORY_S, 2));
    mandatory = !valid || (st.cur.expiration && now >= st.cur.expiration - window(MANDATORY_S, 3));

    if (fresh) {
        fn(0, &st.cur, NULL, ud);
        return 1;
    }
    if (st.refreshing || now >= st.next_attempt) {
        if (!st.refreshing) {
            refresh_start();
            /* The chain may have finished synchronously (environment). */
            if (!st.refreshing) {
                if (st.have)
                    fn(0, &st.cur, NULL, ud);
                else
                    fn(-ENOKEY, NULL, st.last_error, ud);
                return 1;
            }
        }
        if (valid && !mandatory) {
            fn(0, &st.cur, NULL, ud);
            return 1;
        }
        w = calloc(1, sizeof(*w));
        if (!w)
            return -ENOMEM;
        w->fn = fn;
        w->ud = ud;
        for (tail = &st.waiters; *tail; tail = &(*tail)->next)
            ;
        *tail = w;
        if (ret_wait)
            *ret_wait = w;
        return 0;
    }
    /* A refresh failed recently: use what is still valid, else fail fast. */
    if (valid)
        fn(0, &st.cur, NULL, ud);
    else
        fn(-ENOKEY, NULL, st.last_error[0] ? st.last_error : "no credentials", ud);
    return 1;
}

void aws_creds_cancel(struct aws_creds_wait *w)
{
    for (struct aws_creds_wait **p = &st.waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            free(w);
            return;
        }
}

int agentd_aws_register_creds_provider(struct agentd_plugin_ctx *ctx,
                                       const struct agentd_creds_provider *provider)
{
    struct provider *p;

    if (!provider || !provider->fetch || !provider->name || !*provider->name)
        return -EINVAL;
    if (st.nproviders == MAX_PROVIDERS)
        return -ENOSPC;
    p = &st.providers[st.nproviders++];
    p->owner = ctx;
    snprintf(p->name, sizeof(p->name), "%s", provider->name);
    p->fetch = provider->fetch;
    p->ud = provider->provider_ud;
    /* A new source may succeed where the chain failed: retry at once. */
    st.next_attempt = 0;
    return 0;
}

void aws_creds_forget_ctx(struct agentd_plugin_ctx *ctx)
{
    size_t j = 0;
    bool removed = false;

    for (size_t i = 0; i < st.nproviders; i++) {
        if (st.providers[i].owner == ctx) {
            removed = true;
            continue;
        }
        st.providers[j++] = st.providers[i];
    }
    st.nproviders = j;
    if (removed && st.refreshing) {
        /* Its fetch may never answer: abandon this refresh, start over. */
        st.refreshing = false;
        refresh_start();
    }
}

json_t *aws_creds_status(void)
{
    json_t *o = json_object();
    int64_t now = now_s();
    char when[32], masked[32];

    if (!o)
        return NULL;
    json_object_set_new(o, "source", st.have ? json_string(st.cur.source) : json_null());
    if (st.have) {
        size_t n = strlen(st.cur.access_key_id);
        /* Like `aws configure list`: only the last four characters. */
        snprintf(masked, sizeof(masked), "****************%s",
                 n > 4 ? st.cur.access_key_id + n - 4 : "");
        json_object_set_new(o, "access_key_id", json_string(masked));
        if (st.cur.expiration) {
            format_time(st.cur.expiration, when, sizeof(when));
            json_object_set_new(o, "expiration", json_string(when));
            json_object_set_new(o, "expires_in_s", json_integer(st.cur.expiration - now));
        } else
            json_object_set_new(o, "expiration", json_null());
    }
    json_object_set_new(o, "refreshing", json_boolean(st.refreshing));
    json_object_set_new(o, "last_error",
                        st.last_error[0] ? json_string(st.last_error) : json_null());
    json_t *prov = json_array();
    for (size_t i = 0; i < st.nproviders; i++)
        json_array_append_new(prov, json_string(st.providers[i].name));
    json_object_set_new(o, "providers", prov);
    return o;
}

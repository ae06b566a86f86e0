/* The credentials chain: sources tried in the SDKs' order (environment,
 * shared files, then the providers plugins register, such as imds), or only
 * the one the `aws: credentials:` option pins. The shared files are read on
 * the work queue; providers answer through a callback whose generation
 * number tells a current refresh from an abandoned one. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws-creds-state.h"

/* A provider that has not answered by then is treated as failed, so one
 * stuck fetch cannot hold every AWS request forever. */
#define FETCH_TIMEOUT_MS 60000

/* One step of a refresh in flight. */
struct attempt {
    unsigned gen;
    size_t step;
    struct aws_profile profile;
    int status;
};

static void add_reason(const char *fmt, ...) AGENTD_PRINTF(1, 2);

static void add_reason(const char *fmt, ...)
{
    size_t n = strlen(creds_state.reasons);
    va_list ap;

    if (n + 3 >= sizeof(creds_state.reasons))
        return;
    if (n) {
        memcpy(creds_state.reasons + n, "; ", 3);
        n += 2;
    }
    va_start(ap, fmt);
    vsnprintf(creds_state.reasons + n, sizeof(creds_state.reasons) - n, fmt, ap);
    va_end(ap);
}

static void chain_step(size_t step);

static void watchdog_stop(void)
{
    if (creds_state.watchdog)
        uv_timer_stop(creds_state.watchdog);
}

static void on_watchdog(uv_timer_t *t)
{
    size_t step = creds_state.watched_step;

    if (!creds_state.refreshing || step < 2 || step - 2 >= creds_state.nproviders)
        return;
    add_reason("%s: no answer in %d s", creds_state.providers[step - 2].name,
               FETCH_TIMEOUT_MS / 1000);
    creds_state.gen++; /* its late answer, if any, is ignored */
    chain_step(step + 1);
}

static void watchdog_start(size_t step)
{
    if (!creds_state.watchdog) {
        creds_state.watchdog = calloc(1, sizeof(*creds_state.watchdog));
        if (!creds_state.watchdog)
            return;
        uv_timer_init(agentd_loop(creds_state.ctx), creds_state.watchdog);
        /* It guards work in flight; it must not keep the loop alive. */
        uv_unref((uv_handle_t *)creds_state.watchdog);
    }
    creds_state.watched_step = step;
    uv_timer_start(creds_state.watchdog, on_watchdog, FETCH_TIMEOUT_MS, 0);
}

static void watchdog_closed(uv_handle_t *h)
{
    free(h);
}

void aws_creds_shutdown(void)
{
    if (creds_state.watchdog) {
        uv_timer_stop(creds_state.watchdog);
        uv_close((uv_handle_t *)creds_state.watchdog, watchdog_closed);
        creds_state.watchdog = NULL;
    }
    aws_creds_invalidate();
}

static void profile_work(void *ud)
{
    struct attempt *a = ud;

    a->status = aws_profile_load(creds_state.credentials_file, creds_state.config_file,
                                 creds_state.profile, &a->profile);
}

static void profile_done(void *ud, int status)
{
    struct attempt *a = ud;
    struct agentd_aws_credentials c = {0};
    struct aws_creds got = {0};
    char src[48];
    size_t step = a->step;

    if (a->gen != creds_state.gen || !creds_state.refreshing) {
        aws_profile_clear(&a->profile);
        free(a);
        return;
    }
    if (status == 0 && a->status == 0 && a->profile.access_key_id && a->profile.secret_access_key) {
        c.access_key_id = a->profile.access_key_id;
        c.secret_access_key = a->profile.secret_access_key;
        c.session_token = a->profile.session_token;
        snprintf(src, sizeof(src), "profile %s", aws_profile_name(creds_state.profile));
        if (aws_creds_copy(&got, &c, src) == 0) {
            aws_profile_clear(&a->profile);
            free(a);
            creds_set_current(&got);
            creds_refresh_done(0, NULL);
            return;
        }
    }
    if (a->status < 0 && a->status != -ENOENT)
        add_reason("profile '%s': %s", aws_profile_name(creds_state.profile), strerror(-a->status));
    else
        add_reason("profile '%s' has no keys in the shared files",
                   aws_profile_name(creds_state.profile));
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
    if (gen != creds_state.gen || !creds_state.refreshing)
        return; /* an abandoned refresh: its provider went away */
    watchdog_stop();
    name = creds_state.providers[step - 2].name;
    if (status >= 0 && creds && creds->expiration && creds->expiration <= creds_now()) {
        add_reason("%s: %s", name, "returned credentials that have already expired");
        chain_step(step + 1);
        return;
    }
    if (status >= 0 && aws_creds_copy(&got, creds, name) == 0) {
        creds_set_current(&got);
        creds_refresh_done(0, NULL);
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
        if (creds_state.source == AWS_CREDS_AUTO || creds_state.source == AWS_CREDS_ENV) {
            r = aws_creds_env_load(&got);
            if (r == 0) {
                creds_set_current(&got);
                creds_refresh_done(0, NULL);
                return;
            }
            add_reason("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set");
        }
        step = 1;
    }
    if (step == 1) {
        if (creds_state.source == AWS_CREDS_AUTO || creds_state.source == AWS_CREDS_PROFILE) {
            a = calloc(1, sizeof(*a));
            if (a) {
                a->gen = creds_state.gen;
                a->step = 1;
                r = agentd_work_queue(creds_state.ctx, profile_work, profile_done, a);
                if (r >= 0)
                    return;
                free(a);
            }
            add_reason("profile '%s': cannot queue the file read",
                       aws_profile_name(creds_state.profile));
        }
        step = 2;
    }
    for (; step - 2 < creds_state.nproviders; step++) {
        struct creds_provider *p = &creds_state.providers[step - 2];
        if (creds_state.source == AWS_CREDS_ENV || creds_state.source == AWS_CREDS_PROFILE)
            break;
        if (creds_state.source == AWS_CREDS_IMDS && strcmp(p->name, "imds") != 0)
            continue;
        if (agentd_stopping(p->owner) || !aws_ctx_running(p->owner))
            continue;
        a = calloc(1, sizeof(*a));
        if (!a)
            break;
        a->gen = creds_state.gen;
        a->step = step;
        watchdog_start(step);
        p->fetch(p->ud, provider_done, a);
        return;
    }
    if (creds_state.source == AWS_CREDS_IMDS && creds_state.nproviders == 0)
        add_reason("no imds provider (is the imds plugin configured?)");
    creds_refresh_done(-ENOKEY, creds_state.reasons[0] ? creds_state.reasons
                                                       : "no credentials source configured");
}

void creds_refresh_start(void)
{
    creds_state.refreshing = true;
    creds_state.gen++;
    creds_state.reasons[0] = '\0';
    chain_step(0);
}

int agentd_aws_register_creds_provider(struct agentd_plugin_ctx *ctx,
                                       const struct agentd_creds_provider *provider)
{
    struct creds_provider *p;

    if (!provider || !provider->fetch || !provider->name || !*provider->name)
        return -EINVAL;
    /* A restarted plugin registers again: its new provider replaces the
     * old one, whose state is gone. */
    for (size_t i = 0; i < creds_state.nproviders; i++)
        if (creds_state.providers[i].owner == ctx &&
            strcmp(creds_state.providers[i].name, provider->name) == 0) {
            creds_state.providers[i].fetch = provider->fetch;
            creds_state.providers[i].ud = provider->provider_ud;
            creds_state.next_attempt = 0;
            if (creds_state.refreshing && creds_state.watched_step == i + 2) {
                /* The old instance's fetch will not answer: start over. */
                watchdog_stop();
                creds_refresh_start();
            }
            return 0;
        }
    if (creds_state.nproviders == MAX_PROVIDERS)
        return -ENOSPC;
    p = &creds_state.providers[creds_state.nproviders++];
    p->owner = ctx;
    snprintf(p->name, sizeof(p->name), "%s", provider->name);
    p->fetch = provider->fetch;
    p->ud = provider->provider_ud;
    /* A new source may succeed where the chain failed: retry at once. */
    creds_state.next_attempt = 0;
    return 0;
}

void aws_creds_forget_ctx(struct agentd_plugin_ctx *ctx)
{
    size_t j = 0;
    bool removed = false;

    for (size_t i = 0; i < creds_state.nproviders; i++) {
        if (creds_state.providers[i].owner == ctx) {
            removed = true;
            continue;
        }
        creds_state.providers[j++] = creds_state.providers[i];
    }
    creds_state.nproviders = j;
    if (removed && creds_state.refreshing) {
        /* Its fetch may never answer: abandon this refresh, start over. */
        creds_state.refreshing = false;
        creds_refresh_start();
    }
}

/* The imds plugin's control verbs and its status: `agentctl imds show` and
 * `agentctl imds refresh`. Nothing secret is shown: the access key id is
 * masked, the session token never leaves the client. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "imds.h"

json_t *imds_show_json(struct imds *im)
{
    const char *state = im->disabled    ? "disabled"
                        : im->reachable ? "ok"
                        : im->tried     ? "unreachable"
                                        : "starting";
    json_t *o = json_pack("{s:s, s:s, s:b}", "endpoint", im->base ? im->base : "", "state", state,
                          "tags_enabled", im->tags_enabled);
    if (!o)
        return NULL;
    json_object_set_new(o, "metadata", imds_meta_json(im));
    json_object_set_new(o, "notices", imds_notices_json(im));
    if (im->conf->credentials && !im->disabled) {
        json_t *c =
            json_pack("{s:s?, s:I}", "role", im->role, "fetches", (json_int_t)im->creds_fetches);
        if (c && im->creds_expires_at) {
            char akid[32];
            snprintf(akid, sizeof(akid), "****************%s", im->creds_akid_tail);
            json_object_set_new(c, "access_key_id", json_string(akid));
            char iso[32];
            time_t t = (time_t)im->creds_expires_at;
            struct tm tm;
            if (gmtime_r(&t, &tm) && strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm))
                json_object_set_new(c, "expiration", json_string(iso));
            json_object_set_new(
                c, "expires_in_s",
                json_integer(im->creds_expires_at - (json_int_t)(imds_wallclock_ms() / 1000)));
        }
        json_object_set_new(o, "credentials", c);
    }
    uint64_t now = uv_now(agentd_loop(im->ctx));
    json_object_set_new(o, "token",
                        json_pack("{s:s, s:I}", "version", im->v1 ? "v1" : "v2", "expires_in_s",
                                  (json_int_t)(im->token && im->token_expires > now
                                                   ? (im->token_expires - now) / 1000
                                                   : 0)));
    json_object_set_new(o, "requests", json_integer((json_int_t)im->n_requests));
    json_object_set_new(o, "token_puts", json_integer((json_int_t)im->n_token_puts));
    json_object_set_new(o, "errors", json_integer((json_int_t)im->n_errors));
    if (im->last_error[0])
        json_object_set_new(o, "last_error", json_string(im->last_error));
    if (im->last_refresh_ok_ms)
        json_object_set_new(o, "last_refresh_ms", json_integer((json_int_t)im->last_refresh_ok_ms));
    return o;
}

static int ctl_show(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    *ret = imds_show_json(ud);
    return *ret ? 0 : -ENOMEM;
}

static int ctl_refresh(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct imds *im = ud;
    if (im->disabled) {
        *ret = json_string("IMDS is disabled by AWS_EC2_METADATA_DISABLED");
        return -EOPNOTSUPP;
    }
    bool running = im->refreshing;
    if (running)
        im->refresh_again = true;
    else
        im->next_refresh = 0;
    /* A refresh is also the probe after a failure: asking for one cuts the
     * backoff short. */
    imds_schedule(im);
    *ret = json_pack("{s:s}", "refresh", running ? "queued" : "started");
    return 0;
}

int imds_control_register(struct imds *im)
{
    int r;
    if ((r = agentd_control_register(
             im->ctx, "show", "instance metadata, notices, credentials state", ctl_show, im)) < 0 ||
        (r = agentd_control_register(im->ctx, "status", "same as show", ctl_show, im)) < 0 ||
        (r = agentd_control_register(
             im->ctx, "refresh", "read instance metadata and tags again now", ctl_refresh, im)) < 0)
        return r;
    return 0;
}

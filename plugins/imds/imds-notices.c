/* Notice polling: each round is exactly four GETs, one after another on the
 * kept-alive connection, with no retries of its own (the next round is the
 * retry). A notice is published once: the last published value of each kind
 * is remembered, and only a different one is published again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imds.h"

enum kind { SPOT, REBALANCE, MAINTENANCE, LIFECYCLE, N_KINDS };

static const char *const paths[N_KINDS] = {
    [SPOT] = "meta-data/spot/instance-action",
    [REBALANCE] = "meta-data/events/recommendations/rebalance",
    [MAINTENANCE] = "meta-data/events/maintenance/scheduled",
    [LIFECYCLE] = "meta-data/autoscaling/target-lifecycle-state",
};

struct imds_notice_state {
    /* what IMDS shows now (NULL: nothing) */
    char *spot_action, *spot_time;
    char *rebalance;
    json_t *maintenance;
    char *lifecycle;
    /* what was published last, as a comparable string */
    char *published[N_KINDS];
    uint64_t published_ms[N_KINDS];
    uint64_t n_published;
    /* the round in flight */
    enum kind step;
    unsigned transport_failures;
    int last_err;
};

static void poll_next(struct imds *im);

static void set_str(char **p, const char *v)
{
    free(*p);
    *p = v ? strdup(v) : NULL;
}

/* Publishes when `key` differs from the last published one of this kind. */
static bool is_new(struct imds *im, enum kind k, const char *key)
{
    struct imds_notice_state *ns = im->notices;
    if (ns->published[k] && strcmp(ns->published[k], key) == 0)
        return false;
    set_str(&ns->published[k], key);
    ns->published_ms[k] = imds_wallclock_ms();
    ns->n_published++;
    if (im->m_notices[k])
        agentd_metric_add(im->m_notices[k], 1);
    return true;
}

static void on_spot(struct imds *im, const char *body, size_t len)
{
    struct imds_notice_state *ns = im->notices;
    char *action = NULL, *t = NULL, key[160];
    if (imds_parse_spot(body, len, &action, &t) < 0) {
        agentd_debug(im->ctx, "ignoring a malformed spot/instance-action answer");
        return;
    }
    free(ns->spot_action);
    free(ns->spot_time);
    ns->spot_action = action;
    ns->spot_time = t;
    snprintf(key, sizeof(key), "%s %s", action, t);
    if (!is_new(im, SPOT, key))
        return;
    agentd_warning(im->ctx, "spot interruption notice: action '%s' at %s", action, t);
    json_t *p = json_pack("{s:s, s:s}", "action", action, "time", t);
    agentd_event_publish(im->ctx, "instance.interruption", p);
}

static void on_rebalance(struct imds *im, const char *body, size_t len)
{
    struct imds_notice_state *ns = im->notices;
    char *t = NULL;
    if (imds_parse_rebalance(body, len, &t) < 0) {
        agentd_debug(im->ctx, "ignoring a malformed rebalance recommendation");
        return;
    }
    free(ns->rebalance);
    ns->rebalance = t;
    if (!is_new(im, REBALANCE, t))
        return;
    agentd_warning(im->ctx, "rebalance recommendation: notice time %s", t);
    agentd_event_publish(im->ctx, "instance.rebalance", json_pack("{s:s}", "notice_time", t));
}

static void on_maintenance(struct imds *im, const char *body, size_t len)
{
    struct imds_notice_state *ns = im->notices;
    json_t *ev = NULL;
    if (imds_parse_maintenance(body, len, &ev) < 0) {
        agentd_debug(im->ctx, "ignoring a malformed maintenance/scheduled answer");
        return;
    }
    json_decref(ns->maintenance);
    ns->maintenance = ev;
    if (json_array_size(ev) == 0)
        return;
    char *key = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
    if (!key)
        return;
    bool fresh = is_new(im, MAINTENANCE, key);
    free(key);
    if (!fresh)
        return;
    json_t *first = json_array_get(ev, 0);
    agentd_warning(im->ctx, "scheduled maintenance: %zu event(s), first '%s' not before %s",
                   json_array_size(ev), json_string_value(json_object_get(first, "Code")) ?: "?",
                   json_string_value(json_object_get(first, "NotBefore")) ?: "?");
    agentd_event_publish(im->ctx, "instance.maintenance", json_pack("{s:O}", "events", ev));
}

static void on_lifecycle(struct imds *im, const char *body, size_t len)
{
    struct imds_notice_state *ns = im->notices;
    char *st = NULL;
    if (imds_parse_lifecycle(body, len, &st) < 0) {
        agentd_debug(im->ctx, "ignoring a malformed target-lifecycle-state answer");
        return;
    }
    free(ns->lifecycle);
    ns->lifecycle = st;
    if (!is_new(im, LIFECYCLE, st))
        return;
    /* Every state is published; only InService (where an instance spends
     * its life, and what it reads at every start) is not a warning. */
    agentd_log(im->ctx, strcmp(st, "InService") == 0 ? AGENTD_LOG_NOTICE : AGENTD_LOG_WARNING,
               "auto scaling target lifecycle state: %s", st);
    agentd_event_publish(im->ctx, "instance.lifecycle", json_pack("{s:s}", "state", st));
}

static void poll_done_cb(struct imds *im, int err, long status, const char *body, size_t len,
                         void *ud)
{
    struct imds_notice_state *ns = im->notices;
    if (err == -ECANCELED || im->stopping) {
        imds_poll_done(im, -ECANCELED);
        return;
    }
    if (err == 0) {
        switch (ns->step) {
        case SPOT:
            on_spot(im, body, len);
            break;
        case REBALANCE:
            on_rebalance(im, body, len);
            break;
        case MAINTENANCE:
            on_maintenance(im, body, len);
            break;
        case LIFECYCLE:
            on_lifecycle(im, body, len);
            break;
        default:
            break;
        }
    } else if (err == -ENOENT) {
        /* 404: nothing now. A withdrawn spot notice stops showing; the
         * published memory stays so it is not announced twice. */
        if (ns->step == SPOT) {
            set_str(&ns->spot_action, NULL);
            set_str(&ns->spot_time, NULL);
        } else if (ns->step == REBALANCE) {
            set_str(&ns->rebalance, NULL);
        }
    } else {
        ns->last_err = err;
        if (status == 0)
            ns->transport_failures++;
    }
    ns->step++;
    poll_next(im);
}

static void poll_next(struct imds *im)
{
    struct imds_notice_state *ns = im->notices;
    if (ns->step >= N_KINDS) {
        /* Only a round where nothing answered says IMDS is gone. */
        imds_poll_done(im, ns->transport_failures == N_KINDS ? ns->last_err : 0);
        return;
    }
    int r = imds_get(im, paths[ns->step], 1, poll_done_cb, NULL);
    if (r < 0)
        imds_poll_done(im, r);
}

int imds_notices_poll(struct imds *im)
{
    struct imds_notice_state *ns = im->notices;
    ns->step = SPOT;
    ns->transport_failures = 0;
    ns->last_err = 0;
    poll_next(im);
    return 0;
}

int imds_notices_init(struct imds *im)
{
    im->notices = calloc(1, sizeof(*im->notices));
    return im->notices ? 0 : -ENOMEM;
}

void imds_notices_free(struct imds *im)
{
    struct imds_notice_state *ns = im->notices;
    if (!ns)
        return;
    free(ns->spot_action);
    free(ns->spot_time);
    free(ns->rebalance);
    json_decref(ns->maintenance);
    free(ns->lifecycle);
    for (int k = 0; k < N_KINDS; k++)
        free(ns->published[k]);
    free(ns);
    im->notices = NULL;
}

json_t *imds_notices_json(const struct imds *im)
{
    const struct imds_notice_state *ns = im->notices;
    json_t *o = json_object();
    if (!o || !ns)
        return o;
    json_object_set_new(
        o, "spot",
        ns->spot_action ? json_pack("{s:s, s:s}", "action", ns->spot_action, "time", ns->spot_time)
                        : json_null());
    json_object_set_new(o, "rebalance",
                        ns->rebalance ? json_pack("{s:s}", "notice_time", ns->rebalance)
                                      : json_null());
    json_object_set_new(o, "maintenance",
                        ns->maintenance ? json_copy(ns->maintenance) : json_array());
    json_object_set_new(o, "lifecycle", ns->lifecycle ? json_string(ns->lifecycle) : json_null());
    json_object_set_new(o, "published", json_integer((json_int_t)ns->n_published));
    return o;
}

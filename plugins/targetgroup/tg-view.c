/* The load balancer's view of this target: every change of its TargetHealth
 * (state, reason, description) is logged once and published as the event
 * "targetgroup.target_health", so an ALB that takes the instance out of
 * service leaves a line in the journal saying why. */
#include <stdlib.h>
#include <string.h>

#include "tg.h"

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Serving or on its way there is news; anything else is a warning. */
static bool good(const char *state)
{
    return state && (strcmp(state, "healthy") == 0 || strcmp(state, "initial") == 0);
}

void tg_view_update(struct tg_group *g, const char *state, const char *reason,
                    const char *description)
{
    const char *name = g->conf->name ? g->conf->name : g->conf->arn;

    if (same(state, g->elb_state) && same(reason, g->elb_reason) &&
        same(description, g->elb_description))
        return;
    /* A group that no longer lists us (state NULL) after a deregistration
     * is not a change worth a warning; anything the load balancer says is. */
    if (!state && !g->elb_state)
        return;
    agentd_log(g->tg->ctx,
               good(state) || !state || strcmp(state, "unused") == 0 ||
                       strcmp(state, "draining") == 0
                   ? AGENTD_LOG_NOTICE
                   : AGENTD_LOG_WARNING,
               "group '%s': the load balancer sees this target %s (was %s)%s%s%s%s", name,
               state ? state : "not registered", g->elb_state ? g->elb_state : "unknown",
               reason ? ": " : "", reason ? reason : "", description ? ": " : "",
               description ? description : "");
    agentd_event_publish(g->tg->ctx, "targetgroup.target_health",
                         json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?}", "group", name, "arn",
                                   g->arn, "state", state, "reason", reason, "description",
                                   description, "previous", g->elb_state));
}

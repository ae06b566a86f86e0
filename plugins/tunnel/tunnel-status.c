/* tunnel plugin: a tunnel's state as JSON, for agentctl tunnel status and
 * agentctl status.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "tunnel.h"

const char *tunnel_state_name(enum tunnel_state s)
{
    switch (s) {
    case TUNNEL_IDLE:
        return "idle";
    case TUNNEL_CONNECTING:
        return "connecting";
    case TUNNEL_UP:
        return "up";
    case TUNNEL_DOWN:
        return "down";
    case TUNNEL_BACKOFF:
        return "backoff";
    case TUNNEL_STOPPING:
        return "stopping";
    case TUNNEL_STOPPED:
        return "stopped";
    }
    return "unknown";
}

static void iso_time(uint64_t ms, char *buf, size_t size)
{
    time_t s = (time_t)(ms / 1000u);
    struct tm tm;

    if (!gmtime_r(&s, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%" PRIu64, ms);
}

json_t *tunnel_status_json(const struct tunnel *t)
{
    json_t *o = json_object(), *fw = json_array();
    char since[40];
    uint64_t now = t->state == TUNNEL_IDLE ? 0 : uv_now(agentd_loop(t->tp->ctx));

    if (!o || !fw) {
        json_decref(o);
        json_decref(fw);
        return NULL;
    }
    iso_time(t->state_wall_ms, since, sizeof(since));
    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "destination", json_string(t->conf->destination));
    json_object_set_new(o, "state", json_string(tunnel_state_name(t->state)));
    json_object_set_new(o, "since", json_string(since));
    json_object_set_new(o, "seconds_in_state",
                        json_integer(now ? (json_int_t)((now - t->state_mono_ms) / 1000u) : 0));
    json_object_set_new(o, "restarts", json_integer((json_int_t)t->restarts));
    json_object_set_new(o, "attempts", json_integer((json_int_t)t->attempts));
    json_object_set_new(o, "pid",
                        t->child ? json_integer(agentd_child_pid(t->child)) : json_null());
    if (t->state == TUNNEL_BACKOFF)
        json_object_set_new(
            o, "next_attempt_in_ms",
            json_integer((json_int_t)(t->next_mono_ms > now ? t->next_mono_ms - now : 0)));
    if (t->last_err != TUNNEL_ERR_NONE) {
        char at[40];
        iso_time(t->last_wall_ms, at, sizeof(at));
        json_object_set_new(o, "last_error", json_string(t->last_msg));
        json_object_set_new(o, "error_class", json_string(tunnel_err_name(t->last_err)));
        json_object_set_new(o, "error_permanent", json_boolean(tunnel_err_permanent(t->last_err)));
        json_object_set_new(o, "error_at", json_string(at));
    } else {
        json_object_set_new(o, "last_error", json_null());
    }
    for (size_t i = 0; i < t->nfwd; i++) {
        bool remote = i < t->nremote;
        const char *spec = remote ? ((char *const *)t->conf->remote_forwards.items)[i]
                                  : ((char *const *)t->conf->local_forwards.items)[i - t->nremote];
        json_t *f = json_object();
        if (!f)
            continue;
        json_object_set_new(f, "type", json_string(remote ? "remote" : "local"));
        json_object_set_new(f, "spec", json_string(spec));
        json_object_set_new(f, "confirmed",
                            json_boolean(t->confirmed[i] &&
                                         (t->state == TUNNEL_UP || t->state == TUNNEL_CONNECTING)));
        if (t->allocated[i])
            json_object_set_new(f, "allocated_port", json_integer(t->allocated[i]));
        json_array_append_new(fw, f);
    }
    json_object_set_new(o, "forwards", fw);
    return o;
}

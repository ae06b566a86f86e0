/* The event bus: publish/subscribe by name with a JSON payload. Delivery is
 * asynchronous (a zero timer armed only while events are queued, so an idle
 * bus costs no wakeups) and in publish order. Subscriptions removed during a
 * delivery are only marked, and swept once no delivery is running.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define MAX_QUEUED 4096

struct sub {
    struct agentd_plugin_ctx *ctx;
    char *pattern;
    agentd_event_fn fn;
    void *ud;
    bool dead;
    struct sub *next;
};

struct event {
    char *name;
    json_t *payload;
    struct event *next;
};

static struct sub *subs;
static struct event *q_head, *q_tail;
static size_t q_len;
static uv_timer_t kick;
static bool kick_init;
static unsigned delivering;

static bool pattern_match(const char *pattern, const char *name)
{
    size_t pl = strlen(pattern);

    if (pl >= 2 && strcmp(pattern + pl - 2, ".*") == 0)
        return strncmp(pattern, name, pl - 1) == 0;
    if (strcmp(pattern, "*") == 0)
        return true;
    return strcmp(pattern, name) == 0;
}

static void sweep(void)
{
    struct sub **pp = &subs;

    if (delivering)
        return;
    while (*pp) {
        struct sub *s = *pp;
        if (s->dead) {
            *pp = s->next;
            free(s->pattern);
            free(s);
        } else {
            pp = &s->next;
        }
    }
}

void events_flush(void)
{
    delivering++;
    while (q_head) {
        struct event *e = q_head;
        q_head = e->next;
        if (!q_head)
            q_tail = NULL;
        q_len--;
        for (struct sub *s = subs; s; s = s->next)
            if (!s->dead && pattern_match(s->pattern, e->name))
                s->fn(s->ctx, e->name, e->payload, s->ud);
        free(e->name);
        json_decref(e->payload);
        free(e);
    }
    delivering--;
    sweep();
}

static void kick_cb(uv_timer_t *t)
{
    events_flush();
}

void events_init(uv_loop_t *loop)
{
    uv_timer_init(loop, &kick);
    kick_init = true;
}

int agentd_event_subscribe(struct agentd_plugin_ctx *ctx, const char *pattern, agentd_event_fn fn,
                           void *ud)
{
    struct sub *s, **pp;

    if (!pattern || !*pattern || !fn)
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s || !(s->pattern = strdup(pattern))) {
        free(s);
        return -ENOMEM;
    }
    s->ctx = ctx ? ctx : &host.core_ctx;
    s->fn = fn;
    s->ud = ud;
    /* Append, so that subscribers are called in subscription order. */
    for (pp = &subs; *pp; pp = &(*pp)->next)
        ;
    *pp = s;
    return 0;
}

void agentd_event_publish(struct agentd_plugin_ctx *ctx, const char *name, json_t *payload)
{
    struct event *e;

    if (!payload)
        payload = json_object();
    if (!name || q_len >= MAX_QUEUED || !(e = calloc(1, sizeof(*e)))) {
        if (name)
            log_warning("event %s dropped: queue full", name);
        json_decref(payload);
        return;
    }
    e->name = strdup(name);
    if (!e->name) {
        json_decref(payload);
        free(e);
        return;
    }
    e->payload = payload;
    if (q_tail)
        q_tail->next = e;
    else
        q_head = e;
    q_tail = e;
    q_len++;
    if (kick_init && !uv_is_active((uv_handle_t *)&kick))
        uv_timer_start(&kick, kick_cb, 0, 0);
}

void events_drop_ctx(struct agentd_plugin_ctx *ctx)
{
    for (struct sub *s = subs; s; s = s->next)
        if (s->ctx == ctx)
            s->dead = true;
    sweep();
}

void events_close(void)
{
    for (struct sub *s = subs; s; s = s->next)
        s->dead = true;
    sweep();
    while (q_head) {
        struct event *e = q_head;
        q_head = e->next;
        free(e->name);
        json_decref(e->payload);
        free(e);
    }
    q_tail = NULL;
    q_len = 0;
    if (kick_init) {
        kick_init = false;
        uv_close((uv_handle_t *)&kick, NULL);
    }
}

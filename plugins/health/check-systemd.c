/* systemd: a unit's ActiveState through sd-bus, asynchronously. One system
 * bus connection is shared by all systemd checks and driven by the loop: a
 * uv_poll on the bus fd and a uv_timer for sd-bus's own timeouts. The unit is
 * addressed by its object path, which makes systemd load it on demand. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "health-int.h"

struct sysbus {
    sd_bus *bus;
    uv_poll_t poll;
    uv_timer_t timer;
    struct health *h;
    unsigned open_handles;
};

struct systemd_priv {
    sd_bus_slot *slot;
    char *path;
};

static void bus_arm(struct sysbus *b);

static void bus_process(struct sysbus *b)
{
    int r;

    do {
        r = sd_bus_process(b->bus, NULL);
    } while (r > 0);
    bus_arm(b);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    bus_process(handle->data);
}

static void on_bus_timer(uv_timer_t *t)
{
    bus_process(t->data);
}

static void bus_arm(struct sysbus *b)
{
    int ev = sd_bus_get_events(b->bus);
    uint64_t until = 0;
    int uvev = 0;

    if (ev < 0)
        return;
    if (ev & POLLIN)
        uvev |= UV_READABLE;
    if (ev & POLLOUT)
        uvev |= UV_WRITABLE;
    uv_poll_start(&b->poll, uvev, on_poll);
    if (sd_bus_get_timeout(b->bus, &until) >= 0 && until != UINT64_MAX) {
        struct timespec ts;
        uint64_t now;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        uv_timer_start(&b->timer, on_bus_timer, until > now ? (until - now + 999) / 1000 : 0, 0);
    } else {
        uv_timer_stop(&b->timer);
    }
}

static int bus_get(struct health *h, struct sysbus **ret)
{
    struct sysbus *b = h->bus;
    int r;

    if (b) {
        *ret = b;
        return 0;
    }
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    r = sd_bus_open_system(&b->bus);
    if (r < 0) {
        free(b);
        return r;
    }
    b->h = h;
    r = uv_poll_init(agentd_loop(h->ctx), &b->poll, sd_bus_get_fd(b->bus));
    if (r < 0) {
        sd_bus_unref(b->bus);
        free(b);
        return r;
    }
    uv_timer_init(agentd_loop(h->ctx), &b->timer);
    b->poll.data = b;
    b->timer.data = b;
    h->bus = b;
    *ret = b;
    return 0;
}

static void on_bus_handle_closed(uv_handle_t *handle)
{
    struct sysbus *b = handle->data;
    struct health *h = b->h;

    if (--b->open_handles == 0) {
        /* The fd outlives the poll handle: close the bus only now. */
        sd_bus_flush_close_unref(b->bus);
        free(b);
    }
    health_pending_done(h);
}

void systemd_bus_close(struct health *h)
{
    struct sysbus *b = h->bus;

    if (!b)
        return;
    h->bus = NULL;
    b->open_handles = 2;
    h->pending += 2;
    uv_close((uv_handle_t *)&b->poll, on_bus_handle_closed);
    uv_close((uv_handle_t *)&b->timer, on_bus_handle_closed);
}

static int on_reply(sd_bus_message *m, void *ud, sd_bus_error *ret_error)
{
    struct hcheck *c = ud;
    struct systemd_priv *p = c->priv;
    const sd_bus_error *e = sd_bus_message_get_error(m);
    const char *state = NULL;
    int r;

    p->slot = sd_bus_slot_unref(p->slot);
    if (e) {
        check_done(c, AGENTD_HEALTH_FAIL, "%s: %s", c->desc, e->message ? e->message : e->name);
        return 0;
    }
    r = sd_bus_message_read(m, "v", "s", &state);
    if (r < 0 || !state) {
        check_done(c, AGENTD_HEALTH_FAIL, "%s: unreadable reply: %s", c->desc, strerror(-r));
        return 0;
    }
    check_done(c,
               strcmp(state, "active") == 0 || strcmp(state, "reloading") == 0 ? AGENTD_HEALTH_PASS
                                                                               : AGENTD_HEALTH_FAIL,
               "%s: %s", c->desc, state);
    return 0;
}

static void systemd_run(struct hcheck *c)
{
    struct systemd_priv *p = c->priv;
    struct sysbus *b;
    int r = bus_get(c->h, &b);

    if (r < 0) {
        check_done(c, AGENTD_HEALTH_FAIL, "%s: cannot connect to the system bus: %s", c->desc,
                   strerror(-r));
        return;
    }
    r = sd_bus_call_method_async(b->bus, &p->slot, "org.freedesktop.systemd1", p->path,
                                 "org.freedesktop.DBus.Properties", "Get", on_reply, c, "ss",
                                 "org.freedesktop.systemd1.Unit", "ActiveState");
    if (r < 0) {
        check_done(c, AGENTD_HEALTH_FAIL, "%s: %s", c->desc, strerror(-r));
        return;
    }
    bus_arm(b);
}

static void systemd_cancel(struct hcheck *c)
{
    struct systemd_priv *p = c->priv;

    /* Dropping the slot cancels the call: on_reply will not run. */
    p->slot = sd_bus_slot_unref(p->slot);
}

static int systemd_init(struct hcheck *c, struct agentd_err *err)
{
    struct systemd_priv *p = calloc(1, sizeof(*p));
    int r;

    if (!p)
        return -ENOMEM;
    r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", c->cf->systemd, &p->path);
    if (r < 0) {
        free(p);
        return agentd_err_set(err, "check '%s': bad unit name '%s'", c->cf->name, c->cf->systemd);
    }
    c->priv = p;
    snprintf(c->desc, sizeof(c->desc), "systemd %s", c->cf->systemd);
    return 0;
}

static void systemd_free(struct hcheck *c)
{
    struct systemd_priv *p = c->priv;

    if (!p)
        return;
    sd_bus_slot_unref(p->slot);
    free(p->path);
    free(p);
}

const struct check_type check_systemd = {
    .name = "systemd",
    .init = systemd_init,
    .run = systemd_run,
    .cancel = systemd_cancel,
    .free = systemd_free,
};

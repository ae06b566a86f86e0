/* The life of a check: a repeating interval timer starts a run, a timeout
 * timer abandons it, and every result goes through rise/fall before it
 * reaches the host's registry. Runs never overlap. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health-int.h"

#define OUTPUT_MAX 4096

void fmt_ms(uint64_t ms, char *buf, size_t len)
{
    if (ms >= 7200000 && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms >= 120000 && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else if (ms < 1000)
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    else
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
}

static void finish(struct hcheck *c, enum agentd_health_status st, const char *out)
{
    struct health *h = c->h;
    uint64_t now = uv_now(agentd_loop(h->ctx));
    uint64_t dur = now - c->run_start;
    bool grace = now - c->started_at < c->cf->grace;

    c->running = false;
    uv_timer_stop(&c->timeout_timer);
    debounce_step(&c->db, st, (unsigned)c->cf->rise, (unsigned)c->cf->fall, grace);
    agentd_health_set_duration(c->reg, dur);
    if (!c->has_result && st > c->db.reported && c->db.streak > 0) {
        /* A first pass that rise does not trust yet: keep "no result yet"
         * rather than have the registry log that a check which just passed
         * "is fail". */
    } else if (c->db.reported != st && c->db.streak > 0) {
        /* Not yet trusted: say how far it is from flipping. */
        unsigned need = c->db.streak_dir > 0 ? (unsigned)c->cf->rise : (unsigned)c->cf->fall;

        agentd_health_set(c->reg, c->db.reported, "%s (%u of %u to %s)", out, c->db.streak, need,
                          body_status_name(st));
        c->has_result = true;
    } else if (c->db.reported != st) {
        agentd_health_set(c->reg, c->db.reported, "%s (not counted in the grace period)", out);
        c->has_result = true;
    } else {
        agentd_health_set(c->reg, c->db.reported, "%s", out);
        c->has_result = true;
    }
    agentd_metric_set(c->m_status, (double)c->db.reported);
    agentd_metric_set(c->m_duration, (double)dur / 1000.0);
    /* The registry logs a change with its output and publishes
     * health.changed. Bodies show outputs too, so any result re-renders
     * them (once, on the next request). */
    serve_invalidate(h);
}

void check_done(struct hcheck *c, enum agentd_health_status st, const char *fmt, ...)
{
    char out[OUTPUT_MAX];
    va_list ap;

    if (!c->running)
        return;
    va_start(ap, fmt);
    vsnprintf(out, sizeof(out), fmt, ap);
    va_end(ap);
    finish(c, st, out);
}

static void on_timeout(uv_timer_t *t)
{
    struct hcheck *c = t->data;
    char tmo[32], out[OUTPUT_MAX];

    if (!c->running)
        return;
    c->type->cancel(c);
    fmt_ms(c->cf->timeout, tmo, sizeof(tmo));
    snprintf(out, sizeof(out), "%s timed out after %s", c->desc, tmo);
    finish(c, AGENTD_HEALTH_FAIL, out);
}

static void on_interval(uv_timer_t *t)
{
    struct hcheck *c = t->data;

    if (c->running || !c->active)
        return;
    c->running = true;
    c->run_start = uv_now(agentd_loop(c->h->ctx));
    uv_timer_start(&c->timeout_timer, on_timeout, c->cf->timeout, 0);
    c->type->run(c);
}

int check_new(struct health *h, const struct health_check_conf *cf, struct hcheck **ret,
              struct agentd_err *err)
{
    struct hcheck *c = calloc(1, sizeof(*c));
    int r;

    if (!c)
        return -ENOMEM;
    c->h = h;
    c->cf = cf;
    if (cf->tcp)
        c->type = &check_tcp;
    else if (cf->http)
        c->type = &check_http;
    else if (cf->exec.n)
        c->type = &check_exec;
    else if (cf->file)
        c->type = &check_file;
    else
        c->type = &check_systemd;
    c->db.reported = AGENTD_HEALTH_FAIL;
    r = c->type->init(c, err);
    if (r < 0) {
        free(c);
        return r;
    }
    *ret = c;
    return 0;
}

void check_start(struct hcheck *c)
{
    struct health *h = c->h;
    uv_loop_t *loop = agentd_loop(h->ctx);
    const char *labels[] = {"check", c->cf->name, NULL};
    int r;

    r = agentd_health_register(h->ctx, c->cf->name, c->cf->critical, &c->reg);
    if (r < 0) {
        agentd_error(h->ctx, "check '%s': cannot register: %s", c->cf->name, strerror(-r));
        return;
    }
    c->m_status =
        agentd_metric_gauge(h->ctx, "agentd_health_check_status",
                            "Reported status of a health check: 2 pass, 1 warn, 0 fail", labels);
    c->m_duration = agentd_metric_gauge(h->ctx, "agentd_health_check_duration_seconds",
                                        "How long the last run of a health check took", labels);
    agentd_metric_set(c->m_status, 0);
    uv_timer_init(loop, &c->interval_timer);
    uv_timer_init(loop, &c->timeout_timer);
    c->interval_timer.data = c;
    c->timeout_timer.data = c;
    c->active = true;
    c->started_at = uv_now(loop);
    /* The first run starts at once: the state before it is fail. */
    uv_timer_start(&c->interval_timer, on_interval, 0, c->cf->interval);
}

static void on_timer_closed(uv_handle_t *handle)
{
    struct hcheck *c = handle->data;
    struct health *h = c->h;

    /* Both timers share this callback; the second one frees. */
    if (c->active) {
        c->active = false;
        return;
    }
    c->type->free(c);
    free(c);
    health_pending_done(h);
}

void check_stop(struct hcheck *c)
{
    struct health *h = c->h;

    if (c->running) {
        c->type->cancel(c);
        c->running = false;
    }
    if (c->reg) {
        agentd_health_unregister(c->reg);
        c->reg = NULL;
    }
    if (!c->active) {
        /* Never started: nothing on the loop. */
        c->type->free(c);
        free(c);
        return;
    }
    h->pending++;
    uv_close((uv_handle_t *)&c->interval_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->timeout_timer, on_timer_closed);
}

/* The stop sequence: announce, leave, flush, release, complete (plugin.h).
 * A plugin's role is a flag bit of its descriptor; within a phase every
 * plugin of that role stops at once, except in release, where plugins stop
 * one at a time, newest first, as they always did. Each phase is logged once,
 * when it ends, with its plugins and how long it took. The same machine runs
 * announce, leave and flush without exiting when a plugin asks for it
 * (agentd_stop_sequence_run): then plugins are told through prepare().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static const char *const phase_names[] = {
    [AGENTD_PHASE_ANNOUNCE] = "announce", [AGENTD_PHASE_LEAVE] = "leave",
    [AGENTD_PHASE_FLUSH] = "flush",       [AGENTD_PHASE_RELEASE] = "release",
    [AGENTD_PHASE_COMPLETE] = "complete",
};

const char *stopseq_phase_name(enum agentd_stop_phase phase)
{
    return phase >= AGENTD_PHASE_ANNOUNCE && phase <= AGENTD_PHASE_COMPLETE ? phase_names[phase]
                                                                            : "?";
}

enum agentd_stop_phase stopseq_role(const struct agentd_plugin *desc)
{
    if (desc->flags & AGENTD_PLUGIN_STOP_LEAVE)
        return AGENTD_PHASE_LEAVE;
    if (desc->flags & AGENTD_PLUGIN_STOP_FLUSH)
        return AGENTD_PHASE_FLUSH;
    if (desc->flags & AGENTD_PLUGIN_STOP_COMPLETE)
        return AGENTD_PHASE_COMPLETE;
    return AGENTD_PHASE_RELEASE;
}

/* ---- the exiting sequence ---- */

static struct {
    enum agentd_stop_phase phase;
    bool started;  /* the current phase's stops have been issued */
    bool starting; /* issuing them: completions wait for the loop below */
    bool finished;
    uint64_t phase_start_ms;
    char names[256]; /* the current phase's plugins, for its log line */
} ex;

static void add_name(char *buf, size_t size, const char *name)
{
    size_t l = strlen(buf);
    if (l + 1 < size)
        snprintf(buf + l, size - l, "%s%s", l ? ", " : "", name);
}

static void phase_log(enum agentd_stop_phase phase, const char *names, uint64_t start_ms)
{
    log_notice("stop phase %s done in %llu ms (%s)", stopseq_phase_name(phase),
               (unsigned long long)(uv_now(host.loop) - start_ms), names[0] ? names : "no plugin");
}

static void next_phase(void)
{
    if (ex.phase != AGENTD_PHASE_ANNOUNCE)
        phase_log(ex.phase, ex.names, ex.phase_start_ms);
    ex.phase++;
    ex.started = false;
    ex.names[0] = 0;
    ex.phase_start_ms = uv_now(host.loop);
}

static void stopped_cb(struct agentd_plugin_ctx *ctx, void *ud)
{
    (void)ud;
    plugin_destroy(ctx);
    notify_status_update();
    host_stop_continue();
}

void host_stop_continue(void)
{
    if (!host.stopping || ex.finished || ex.starting)
        return;
    /* A stop in flight (this phase's, or a reload's restart or removal)
     * ends the phase only once it is over. */
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        if (p->state == PLUGIN_STOPPING)
            return;
    for (;;) {
        if (ex.phase > AGENTD_PHASE_COMPLETE) {
            ex.finished = true;
            daemon_finish();
            return;
        }
        if (ex.phase == AGENTD_PHASE_ANNOUNCE) {
            next_phase();
            continue;
        }
        if (ex.phase == AGENTD_PHASE_RELEASE) {
            struct agentd_plugin_ctx *last = NULL;
            for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
                if (p->state == PLUGIN_RUNNING && stopseq_role(p->desc) == AGENTD_PHASE_RELEASE &&
                    (!last || p->start_seq > last->start_seq))
                    last = p;
            if (last) {
                add_name(ex.names, sizeof(ex.names), last->desc->name);
                agentd_log(last, AGENTD_LOG_DEBUG, "stopping");
                ex.starting = true;
                plugin_stop(last, stopped_cb, NULL);
                ex.starting = false;
                if (last->state == PLUGIN_STOPPING)
                    return;
                continue;
            }
            next_phase();
            continue;
        }
        if (ex.started) {
            next_phase();
            continue;
        }
        ex.started = true;
        ex.starting = true;
        bool waiting = false;
        for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next) {
            if (p->state != PLUGIN_RUNNING || stopseq_role(p->desc) != ex.phase)
                continue;
            add_name(ex.names, sizeof(ex.names), p->desc->name);
            agentd_log(p, AGENTD_LOG_DEBUG, "stopping (phase %s)", stopseq_phase_name(ex.phase));
            plugin_stop(p, stopped_cb, NULL);
        }
        ex.starting = false;
        for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
            waiting |= p->state == PLUGIN_STOPPING;
        if (waiting)
            return;
    }
}

/* ---- the sequence without exit ---- */

static struct {
    bool running;
    enum agentd_stop_phase phase;
    unsigned pending;
    uint64_t gen; /* prepare() answers of an earlier phase are ignored */
    uint64_t phase_start_ms;
    char names[256];
    struct agentd_plugin_ctx *requester;
    agentd_sequence_done_fn done;
    void *ud;
    uv_timer_t timer;
    bool timer_init;
} nx;

static void nx_advance(void);

static void nx_finish(int status)
{
    agentd_sequence_done_fn done = nx.done;
    struct agentd_plugin_ctx *who = nx.requester;
    void *ud = nx.ud;

    nx.running = false;
    nx.done = NULL;
    nx.gen++;
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        p->preparing = false;
    if (nx.timer_init)
        uv_timer_stop(&nx.timer);
    if (done)
        done(who, status, ud);
}

static void nx_one_done(struct agentd_plugin_ctx *ctx)
{
    if (!nx.running || !ctx->preparing || ctx->prepare_gen != nx.gen)
        return; /* late, after the phase's bound, or a second call */
    ctx->preparing = false;
    if (--nx.pending == 0)
        nx_advance();
}

static void nx_stopped(struct agentd_plugin_ctx *ctx, void *ud)
{
    (void)ud;
    plugin_destroy(ctx);
    notify_status_update();
    nx_one_done(ctx);
    host_stop_continue(); /* agentd may have begun to stop meanwhile */
}

static void nx_timeout(uv_timer_t *t)
{
    (void)t;
    if (!nx.running || nx.pending == 0)
        return;
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        if (p->preparing && p->prepare_gen == nx.gen)
            agentd_log(p, AGENTD_LOG_WARNING, "phase %s not done within %llu ms; going on",
                       stopseq_phase_name(nx.phase),
                       (unsigned long long)(uv_now(host.loop) - nx.phase_start_ms));
    nx.pending = 0;
    nx_advance();
}

/* Ends the current phase (logging it) and starts the next, until flush. */
static void nx_advance(void)
{
    for (;;) {
        if (nx.phase != AGENTD_PHASE_ANNOUNCE)
            phase_log(nx.phase, nx.names, nx.phase_start_ms);
        nx.gen++;
        if (nx.phase == AGENTD_PHASE_FLUSH) {
            nx_finish(0);
            return;
        }
        nx.phase++;
        nx.names[0] = 0;
        nx.phase_start_ms = uv_now(host.loop);
        uint64_t bound = 0;
        /* Count first, then call: an answer given before prepare() returns
         * must not end the phase while others are still to be called. */
        nx.pending = 1;
        for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next) {
            if (p->state != PLUGIN_RUNNING || stopseq_role(p->desc) != nx.phase)
                continue;
            add_name(nx.names, sizeof(nx.names), p->desc->name);
            p->preparing = true;
            p->prepare_gen = nx.gen;
            nx.pending++;
            if (p->stop_timeout_ms > bound)
                bound = p->stop_timeout_ms;
        }
        if (bound)
            uv_timer_start(&nx.timer, nx_timeout, bound, 0);
        uint64_t gen = nx.gen;
        for (struct agentd_plugin_ctx *p = host.plugins; p && nx.gen == gen; p = p->next) {
            if (!p->preparing || p->prepare_gen != gen || p->state != PLUGIN_RUNNING)
                continue;
            if (p->desc->prepare)
                p->desc->prepare(p, nx.phase, nx_one_done);
            else
                plugin_stop(p, nx_stopped, NULL); /* it leaves anyway: stop it */
        }
        if (nx.gen != gen || !nx.running)
            return; /* the sequence moved on (or ended) from inside a call */
        if (--nx.pending > 0)
            return;
        uv_timer_stop(&nx.timer);
    }
}

int agentd_stop_sequence_run(struct agentd_plugin_ctx *ctx, const char *reason,
                             agentd_sequence_done_fn done, void *ud)
{
    if (host.stopping)
        return -ECANCELED;
    if (nx.running)
        return -EALREADY;
    if (!nx.timer_init) {
        uv_timer_init(host.loop, &nx.timer);
        nx.timer_init = true;
    }
    nx.running = true;
    nx.requester = ctx;
    nx.done = done;
    nx.ud = ud;
    nx.phase = AGENTD_PHASE_ANNOUNCE;
    nx.phase_start_ms = uv_now(host.loop);
    agentd_log(ctx, AGENTD_LOG_NOTICE,
               "stop phase announce: health answers 503 draining (%s; agentd keeps running)",
               reason ? reason : "requested");
    agentd_health_set_draining(NULL, true, reason ? reason : "leaving");
    nx_advance();
    return 0;
}

void stopseq_shutdown_begins(void)
{
    ex.phase = AGENTD_PHASE_ANNOUNCE;
    if (nx.running) {
        log_notice("the running stop sequence gives way to agentd's own stop");
        nx_finish(-ECANCELED);
    }
}

void stopseq_close(void)
{
    if (nx.timer_init) {
        nx.timer_init = false;
        uv_close((uv_handle_t *)&nx.timer, NULL);
    }
}

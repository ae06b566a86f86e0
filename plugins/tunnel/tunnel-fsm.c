/* tunnel plugin: one tunnel's state machine.
 *
 *   connecting --every forward confirmed--> up
 *   connecting/up --ssh exits--> down --> backoff --timer--> connecting
 *
 * ssh runs in its own process group with die_with_agentd, so neither a
 * stop nor agentd's own death leaves an ssh behind. A tunnel is up only when
 * ssh has reported every forward established (remote: the server's reply,
 * local: the listening socket); ExitOnForwardFailure makes a refused
 * forward end the attempt.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tunnel.h"

#define KILL_GRACE_MS   2000u /* SIGTERM, then SIGKILL after this */
#define BACKOFF_FLOOR   250u
#define BACKOFF_INITIAL 1000u
#define SETUP_SLACK_MS  10000u

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct agentd_plugin_ctx *ctx_of(const struct tunnel *t)
{
    return t->tp->ctx;
}

static uint64_t now_ms(const struct tunnel *t)
{
    return uv_now(agentd_loop(ctx_of(t)));
}

#define tlog(t, level, fmt, ...)                                                                   \
    agentd_log_fields(ctx_of(t), (level), (t)->fields, "'%s': " fmt, (t)->name, ##__VA_ARGS__)

static void set_state(struct tunnel *t, enum tunnel_state s)
{
    if (t->state == s)
        return;
    t->state = s;
    if (t->m_up)
        agentd_metric_set(t->m_up, s == TUNNEL_UP ? 1 : 0);
    t->state_mono_ms = now_ms(t);
    t->state_wall_ms = wall_ms();
    tunnel_plugin_changed(t->tp);
}

static void on_kill_timer(uv_timer_t *h)
{
    struct tunnel *t = h->data;

    if (t->child) {
        tlog(t, AGENTD_LOG_WARNING, "ssh did not exit within %u ms of SIGTERM; killing it",
             KILL_GRACE_MS);
        agentd_child_kill(t->child, SIGKILL);
    }
}

/* SIGTERM to ssh's process group, SIGKILL after the grace period. */
static void kill_child(struct tunnel *t)
{
    if (!t->child)
        return;
    agentd_child_kill(t->child, SIGTERM);
    uv_timer_start(&t->kill_timer, on_kill_timer, KILL_GRACE_MS, 0);
}

/* One of the tunnel's timers or its child is gone after tunnel_stop();
 * the last one hands the tunnel back to the plugin. */
static void release(struct tunnel *t)
{
    if (--t->pending == 0)
        tunnel_plugin_closed(t->tp, t);
}

static void on_close(uv_handle_t *h)
{
    release(h->data);
}

static void note_error(struct tunnel *t, enum tunnel_err e, int prio, const char *msg, size_t len)
{
    if (e == TUNNEL_ERR_NONE || prio <= t->cur_prio)
        return;
    t->cur_err = e;
    t->cur_prio = prio;
    if (len >= sizeof(t->cur_msg))
        len = sizeof(t->cur_msg) - 1;
    memcpy(t->cur_msg, msg, len);
    t->cur_msg[len] = '\0';
}

static bool all_confirmed(const struct tunnel *t)
{
    for (size_t i = 0; i < t->nfwd; i++)
        if (!t->confirmed[i])
            return false;
    return true;
}

static void went_up(struct tunnel *t)
{
    uv_timer_stop(&t->timer);
    t->up_mono_ms = now_ms(t);
    t->cur_err = TUNNEL_ERR_NONE;
    t->cur_prio = 0;
    t->cur_msg[0] = '\0';
    set_state(t, TUNNEL_UP);
    if (t->down_mono_ms)
        tlog(t, AGENTD_LOG_NOTICE,
             "up again: %zu forward%s established to %s@%s:%u after %" PRIu64 ".%01" PRIu64
             " s down (attempt %" PRIu64 ")",
             t->nfwd, t->nfwd == 1 ? "" : "s", t->dest.user, t->dest.host, t->dest.port,
             (t->up_mono_ms - t->down_mono_ms) / 1000u,
             (t->up_mono_ms - t->down_mono_ms) % 1000u / 100u, t->attempts);
    else
        tlog(t, AGENTD_LOG_NOTICE,
             "up: %zu forward%s established to %s@%s:%u (attempt %" PRIu64 ")", t->nfwd,
             t->nfwd == 1 ? "" : "s", t->dest.user, t->dest.host, t->dest.port, t->attempts);
    if (t->check)
        agentd_health_set(t->check, AGENTD_HEALTH_PASS, "up: %zu forward%s to %s", t->nfwd,
                          t->nfwd == 1 ? "" : "s", t->dest.host);
}

/* A remote forward's reply: match it by its text, else (another ssh version
 * printing it differently) take the first unconfirmed one, as ssh sends the
 * requests and the server answers them in order. */
static void confirm_remote(struct tunnel *t, const char *arg, size_t len)
{
    char text[600];

    for (size_t i = 0; i < t->nremote; i++) {
        int n = tunnel_forward_remote_text(&t->fwd[i], text, sizeof(text));
        if (!t->confirmed[i] && n >= 0 && (size_t)n == len && memcmp(text, arg, len) == 0) {
            t->confirmed[i] = true;
            return;
        }
    }
    for (size_t i = 0; i < t->nremote; i++)
        if (!t->confirmed[i]) {
            t->confirmed[i] = true;
            return;
        }
}

/* "Allocated port N for remote forward to H:P": the port-0 forward to H:P. */
static void note_allocated(struct tunnel *t, unsigned port, const char *arg, size_t len)
{
    char text[300];

    for (size_t i = 0; i < t->nremote; i++) {
        const struct tunnel_forward *f = &t->fwd[i];
        int n = snprintf(text, sizeof(text), "%s:%u", f->host, f->hostport);
        if (f->port == 0 && !t->allocated[i] && n > 0 && (size_t)n == len &&
            memcmp(text, arg, len) == 0) {
            t->allocated[i] = port;
            tlog(t, AGENTD_LOG_INFO, "the server listens on port %u for %s", port, text);
            return;
        }
    }
}

static void on_line(struct agentd_child *child, int stream, const char *line, size_t len, void *ud)
{
    struct tunnel *t = ud;
    struct tunnel_line l;

    (void)child;
    (void)stream;
    while (len > 0 && line[len - 1] == '\r')
        len--;
    tunnel_classify(line, len, &l);
    /* Errors and progress at info, banners and -v chatter at debug. Two
     * formats: the host rate-limits per format string, and the chatter must
     * not use up the budget of the lines that matter. */
    if (l.debug || l.kind == TUNNEL_LINE_OTHER)
        tlog(t, AGENTD_LOG_DEBUG, "ssh -v: %.*s", (int)len, line);
    else
        tlog(t, AGENTD_LOG_INFO, "ssh: %.*s", (int)len, line);
    switch (l.kind) {
    case TUNNEL_LINE_LOCAL_LISTEN:
        for (size_t i = t->nremote; i < t->nfwd; i++)
            if (t->fwd[i].port == l.port)
                t->confirmed[i] = true;
        break;
    case TUNNEL_LINE_REMOTE_OK:
        confirm_remote(t, l.arg, l.arg_len);
        break;
    case TUNNEL_LINE_ALLOCATED:
        note_allocated(t, l.port, l.arg, l.arg_len);
        break;
    case TUNNEL_LINE_REMOTE_FAIL:
    case TUNNEL_LINE_ERROR:
        note_error(t, l.err, l.prio, line, len);
        break;
    case TUNNEL_LINE_OTHER:
        break;
    }
    if (t->state == TUNNEL_CONNECTING && all_confirmed(t))
        went_up(t);
}

static void connect_now(struct tunnel *t);

/* How long an attempt may take to confirm every forward: connecting, the
 * key exchange and authentication, and the server's forward replies. */
static uint64_t setup_limit_ms(const struct tunnel *t)
{
    return t->conf->connect_timeout_ms +
           (uint64_t)tunnel_keepalive_s(t->conf) * 1000u * tunnel_keepalive_count(t->conf) +
           SETUP_SLACK_MS;
}

static void on_timer(uv_timer_t *h)
{
    struct tunnel *t = h->data;

    if (t->state == TUNNEL_BACKOFF) {
        connect_now(t);
    } else if (t->state == TUNNEL_CONNECTING && t->child) {
        /* ssh is alive but has not confirmed every forward: a server that
         * accepted the TCP connection and then went silent, for example. */
        char msg[128];
        int n = snprintf(msg, sizeof(msg), "forwards not confirmed within %" PRIu64 " s",
                         setup_limit_ms(t) / 1000u);
        note_error(t, TUNNEL_ERR_TIMEOUT, 100, msg, n > 0 ? (size_t)n : 0);
        set_state(t, TUNNEL_DOWN);
        kill_child(t);
    }
}

static void schedule(struct tunnel *t, bool permanent)
{
    uint64_t delay;

    if (permanent) {
        delay = tunnel_backoff_permanent(t->conf->backoff_permanent_ms, tunnel_rand(&t->tp->rng));
    } else {
        const struct tunnel_backoff b = {
            .initial_ms = BACKOFF_INITIAL,
            .max_ms = t->conf->backoff_max_ms,
            .floor_ms = BACKOFF_FLOOR,
        };
        delay = tunnel_backoff_delay(&b, t->failures, tunnel_rand(&t->tp->rng));
    }
    t->failures++;
    t->next_mono_ms = now_ms(t) + delay;
    set_state(t, TUNNEL_BACKOFF);
    uv_timer_start(&t->timer, on_timer, delay, 0);
}

static void on_exit_cb(struct agentd_child *child, int64_t exit_status, int term_signal, void *ud)
{
    struct tunnel *t = ud;
    bool was_up = t->state == TUNNEL_UP, permanent;
    enum tunnel_err e = t->cur_err;
    char msg[sizeof(t->cur_msg)];
    enum agentd_log_level level;

    (void)child;
    t->child = NULL;
    uv_timer_stop(&t->kill_timer);
    if (t->state == TUNNEL_STOPPING) {
        tlog(t, AGENTD_LOG_INFO, "ssh ended (%s %d)", term_signal ? "signal" : "status",
             term_signal ? term_signal : (int)exit_status);
        set_state(t, TUNNEL_STOPPED);
        uv_close((uv_handle_t *)&t->kill_timer, on_close);
        t->timers_live = false;
        release(t); /* the child */
        return;
    }
    if (e == TUNNEL_ERR_NONE) {
        e = TUNNEL_ERR_OTHER;
        if (t->restart_now)
            snprintf(msg, sizeof(msg), "restarted by agentctl");
        else if (term_signal)
            snprintf(msg, sizeof(msg), "ssh killed by signal %d", term_signal);
        else
            snprintf(msg, sizeof(msg), "ssh exited with status %" PRId64, exit_status);
    } else {
        memcpy(msg, t->cur_msg, sizeof(msg));
    }
    permanent = tunnel_err_permanent(e);
    if (was_up) {
        t->down_mono_ms = now_ms(t);
        if (t->down_mono_ms - t->up_mono_ms >= t->conf->backoff_reset_ms)
            t->failures = 0;
    }
    if (e == t->last_err && strstr(t->last_msg, msg) && !was_up)
        t->last_repeats++;
    else
        t->last_repeats = 0;
    t->last_err = e;
    snprintf(t->last_msg, sizeof(t->last_msg), "%s: %s", tunnel_err_summary(e), msg);
    t->last_wall_ms = wall_ms();
    t->cur_err = TUNNEL_ERR_NONE;
    t->cur_prio = 0;
    set_state(t, TUNNEL_DOWN);
    if (t->check)
        agentd_health_set(t->check, AGENTD_HEALTH_FAIL, "%s%s", t->last_msg,
                          permanent ? " (permanent)" : "");

    if (t->restart_now) {
        t->restart_now = false;
        t->failures = 0;
        tlog(t, AGENTD_LOG_NOTICE, "restarting on request");
        connect_now(t);
        return;
    }
    schedule(t, permanent);
    /* One line per failure, but the same transient failure over and over
     * during an outage is info, not a warning each time. */
    level = permanent                          ? AGENTD_LOG_ERR
            : (was_up || t->last_repeats == 0) ? AGENTD_LOG_WARNING
                                               : AGENTD_LOG_INFO;
    tlog(t, level, "%s: %s; %s in %" PRIu64 " ms%s", was_up ? "down" : "attempt failed",
         t->last_msg, permanent ? "permanent error, retrying" : "retrying",
         t->next_mono_ms - now_ms(t), permanent ? " (or on agentctl tunnel restart)" : "");
}

static void connect_now(struct tunnel *t)
{
    struct agentd_child_opts opts = {
        .argv = (const char *const *)t->argv,
        .env = NULL, /* a clean environment: no SSH_AUTH_SOCK, no proxy variables */
        .new_process_group = true,
        .die_with_agentd = true,
        .max_line = 2048,
        .on_line = on_line,
        .on_exit = on_exit_cb,
        .ud = t,
    };
    int r;

    memset(t->confirmed, 0, t->nfwd * sizeof(*t->confirmed));
    memset(t->allocated, 0, t->nfwd * sizeof(*t->allocated));
    t->cur_err = TUNNEL_ERR_NONE;
    t->cur_prio = 0;
    t->cur_msg[0] = '\0';
    if (t->attempts++ > 0)
        t->restarts++;
    if (t->m_attempts)
        agentd_metric_add(t->m_attempts, 1);
    r = agentd_child_spawn(ctx_of(t), &opts, &t->child);
    if (r < 0) {
        t->child = NULL;
        t->last_err = TUNNEL_ERR_OTHER;
        snprintf(t->last_msg, sizeof(t->last_msg), "cannot start ssh: %s", strerror(-r));
        t->last_wall_ms = wall_ms();
        tlog(t, AGENTD_LOG_ERR, "%s", t->last_msg);
        if (t->check)
            agentd_health_set(t->check, AGENTD_HEALTH_FAIL, "%s", t->last_msg);
        schedule(t, false);
        return;
    }
    tlog(t, AGENTD_LOG_DEBUG, "ssh started, pid %d", (int)agentd_child_pid(t->child));
    set_state(t, TUNNEL_CONNECTING);
    uv_timer_start(&t->timer, on_timer, setup_limit_ms(t), 0);
}

void tunnel_start(struct tunnel *t)
{
    char name[128];
    int r;

    uv_timer_init(agentd_loop(ctx_of(t)), &t->timer);
    uv_timer_init(agentd_loop(ctx_of(t)), &t->kill_timer);
    t->timer.data = t;
    t->kill_timer.data = t;
    t->timers_live = true;
    const char *labels[] = {"tunnel", t->name, NULL};
    t->m_up = agentd_metric_gauge(ctx_of(t), "agentd_tunnel_up",
                                  "1 while every forward of the tunnel is established", labels);
    t->m_attempts = agentd_metric_counter(ctx_of(t), "agentd_tunnel_attempts_total",
                                          "ssh connection attempts of the tunnel", labels);
    snprintf(name, sizeof(name), "tunnel:%s", t->name);
    r = agentd_health_register(ctx_of(t), name, t->conf->critical, &t->check);
    if (r < 0) {
        t->check = NULL;
        tlog(t, AGENTD_LOG_WARNING, "cannot register health check '%s': %s", name, strerror(-r));
    }
    connect_now(t);
}

int tunnel_restart(struct tunnel *t)
{
    switch (t->state) {
    case TUNNEL_CONNECTING:
    case TUNNEL_UP:
    case TUNNEL_DOWN:
        if (!t->child)
            return -EAGAIN;
        t->restart_now = true;
        uv_timer_stop(&t->timer);
        set_state(t, TUNNEL_DOWN);
        kill_child(t);
        return 0;
    case TUNNEL_BACKOFF:
        uv_timer_stop(&t->timer);
        t->failures = 0;
        tlog(t, AGENTD_LOG_NOTICE, "restarting on request");
        connect_now(t);
        return 0;
    case TUNNEL_IDLE:
    case TUNNEL_STOPPING:
    case TUNNEL_STOPPED:
        break;
    }
    return -EBUSY;
}

void tunnel_stop(struct tunnel *t)
{
    if (!t->timers_live) {
        set_state(t, TUNNEL_STOPPED);
        tunnel_plugin_closed(t->tp, t);
        return;
    }
    if (t->check) {
        agentd_health_unregister(t->check);
        t->check = NULL;
    }
    /* Each timer counts until its close callback, a live child until its
     * exit, which then closes the kill timer. */
    t->pending = 2;
    uv_close((uv_handle_t *)&t->timer, on_close);
    set_state(t, TUNNEL_STOPPING);
    if (t->child) {
        t->pending++;
        t->restart_now = false;
        kill_child(t);
        return;
    }
    uv_close((uv_handle_t *)&t->kill_timer, on_close);
    t->timers_live = false;
    set_state(t, TUNNEL_STOPPED);
}

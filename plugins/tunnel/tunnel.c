/* tunnel plugin: keeps reverse (and local) SSH tunnels up, the job of
 * `autossh -M 0 -N -R ...`, restoring them within seconds of the server's
 * return and showing their state (agentctl tunnel status, health checks
 * "tunnel:NAME"). See plugins/tunnel/README.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "tunnel.h"

static struct tunnel_plugin *tp_of(struct agentd_plugin_ctx *ctx)
{
    return agentd_plugin_get_data(ctx);
}

static void tunnels_free(struct tunnel **t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        if (t[i]) {
            tunnel_clear(t[i]);
            free(t[i]);
        }
    free(t);
}

/* Names are per tunnel in the schema; uniqueness spans the list (and the
 * conf.d files), so it is checked here. */
static int check_names(const struct tunnel_conf *confs, size_t n, struct agentd_err *err)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(confs[i].name, confs[j].name) == 0)
                return agentd_err_set(err, "tunnel[%zu]: name '%s' is already used by tunnel[%zu]",
                                      i, confs[i].name, j);
    return 0;
}

/* A new tunnel for confs[i], or NULL with err set. */
static struct tunnel *tunnel_new(struct tunnel_plugin *tp, const struct tunnel_conf *conf,
                                 struct agentd_err *err)
{
    struct tunnel *t = calloc(1, sizeof(*t));
    int r;

    if (!t) {
        agentd_err_set(err, "out of memory");
        return NULL;
    }
    r = tunnel_init(t, tp, conf, err);
    if (r < 0) {
        if (r == -ENOMEM)
            agentd_err_set(err, "out of memory");
        tunnel_clear(t);
        free(t);
        return NULL;
    }
    return t;
}

static int tunnel_configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    const struct agentd_list *list = conf;
    const struct tunnel_conf *confs = list ? list->items : NULL;
    size_t n = list ? list->n : 0;
    struct tunnel_plugin *tp = calloc(1, sizeof(*tp));
    int r;

    if (!tp)
        return -ENOMEM;
    tp->ctx = ctx;
    r = check_names(confs, n, err);
    if (r == 0 && n && !(tp->t = calloc(n, sizeof(*tp->t))))
        r = -ENOMEM;
    for (size_t i = 0; i < n && r == 0; i++) {
        tp->n = i + 1;
        if (!(tp->t[i] = tunnel_new(tp, &confs[i], err)))
            r = -EINVAL;
    }
    if (r < 0) {
        tunnels_free(tp->t, tp->n);
        free(tp);
        return r;
    }
    if (getrandom(&tp->rng, sizeof(tp->rng), GRND_NONBLOCK) != sizeof(tp->rng))
        tp->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)tp;
    if (tp->rng == 0)
        tp->rng = 0x9e3779b97f4a7c15ULL;
    agentd_plugin_set_data(ctx, tp);
    return 0;
}

static struct tunnel *find(struct tunnel_plugin *tp, const char *name)
{
    for (size_t i = 0; i < tp->n; i++)
        if (strcmp(tp->t[i]->name, name) == 0)
            return tp->t[i];
    return NULL;
}

static json_t *status_array(struct tunnel_plugin *tp)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < tp->n; i++) {
        json_t *o = tunnel_status_json(tp->t[i]);
        if (o)
            json_array_append_new(a, o);
    }
    return a;
}

static int ctl_status(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret_result,
                      void *ud)
{
    struct tunnel_plugin *tp = tp_of(ctx);
    json_t *a;

    (void)ud;
    if (json_array_size(args) > 1) {
        *ret_result = json_string("usage: agentctl tunnel status [NAME]");
        return -EINVAL;
    }
    if (json_array_size(args) == 1) {
        const char *name = json_string_value(json_array_get(args, 0));
        struct tunnel *t = name ? find(tp, name) : NULL;
        if (!t) {
            *ret_result = json_sprintf("no tunnel named '%s'", name ? name : "");
            return -ENOENT;
        }
        a = json_array();
        if (a)
            json_array_append_new(a, tunnel_status_json(t));
    } else {
        a = status_array(tp);
    }
    if (!a)
        return -ENOMEM;
    *ret_result = json_pack("{s:o}", "tunnels", a);
    return *ret_result ? 0 : -ENOMEM;
}

static int ctl_restart(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret_result,
                       void *ud)
{
    struct tunnel_plugin *tp = tp_of(ctx);
    const char *name = json_string_value(json_array_get(args, 0));
    struct tunnel *t;
    int r;

    (void)ud;
    if (json_array_size(args) != 1 || !name) {
        *ret_result = json_string("usage: agentctl tunnel restart NAME");
        return -EINVAL;
    }
    if (!(t = find(tp, name))) {
        *ret_result = json_sprintf("no tunnel named '%s'", name);
        return -ENOENT;
    }
    r = tunnel_restart(t);
    if (r < 0) {
        *ret_result = json_sprintf("tunnel '%s' is %s", name, tunnel_state_name(t->state));
        return r;
    }
    *ret_result = json_pack("{s:s,s:s}", "restarted", name, "state", tunnel_state_name(t->state));
    return *ret_result ? 0 : -ENOMEM;
}

void tunnel_plugin_changed(struct tunnel_plugin *tp)
{
    size_t up = 0, first = 0;

    if (tp->stopping)
        return;
    for (size_t i = 0; i < tp->n; i++) {
        up += tp->t[i]->state == TUNNEL_UP;
        /* A tunnel still on its first attempt is starting, not failing:
         * agentd should not call itself degraded at every start. */
        first += tp->t[i]->state == TUNNEL_CONNECTING && tp->t[i]->attempts == 1;
    }
    if (first)
        agentd_plugin_report(tp->ctx, up + first < tp->n, "%zu of %zu tunnel%s up, %zu connecting",
                             up, tp->n, tp->n == 1 ? "" : "s", first);
    else
        agentd_plugin_report(tp->ctx, up < tp->n, "%zu of %zu tunnel%s up", up, tp->n,
                             tp->n == 1 ? "" : "s");
}

static int tunnel_start_cb(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    struct tunnel_plugin *tp = tp_of(ctx);
    int r;

    r = agentd_control_register(ctx, "status", "[NAME]: state, since, restarts, last error",
                                ctl_status, NULL);
    if (r >= 0)
        r = agentd_control_register(ctx, "restart", "NAME: reconnect now, backoff reset",
                                    ctl_restart, NULL);
    if (r >= 0)
        r = agentd_control_register(ctx, "doctor", "[start]: identity file mode, known_hosts",
                                    tunnel_doctor_verb, NULL);
    if (r < 0)
        return agentd_err_set(err, "cannot register control commands: %s", strerror(-r));
    for (size_t i = 0; i < tp->n; i++)
        tunnel_start(tp->t[i]);
    tunnel_plugin_changed(tp);
    return 0;
}

static void stop_progress(struct tunnel_plugin *tp)
{
    if (tp->pending > 0)
        tp->pending--;
    if (tp->stopping && tp->pending == 0 && tp->done) {
        agentd_stop_done_fn done = tp->done;
        tp->done = NULL;
        done(tp->ctx);
    }
}

void tunnel_plugin_closed(struct tunnel_plugin *tp, struct tunnel *t)
{
    if (t->retired) {
        tunnel_clear(t);
        free(t);
        tp->retiring--;
        if (!tp->stopping)
            return;
    }
    stop_progress(tp);
}

static void tunnel_stop_cb(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    struct tunnel_plugin *tp = tp_of(ctx);

    tp->stopping = true;
    tp->done = done;
    /* One count per tunnel, including those a reload is still stopping
     * (they use tp), plus one held until every tunnel has been asked to
     * stop, so that done() cannot run in the middle of the loop. */
    tp->pending = tp->n + tp->retiring + 1;
    for (size_t i = 0; i < tp->n; i++)
        tunnel_stop(tp->t[i]);
    stop_progress(tp);
}

/* Keeps every tunnel whose config is unchanged running (its session is not
 * touched), stops the removed and changed ones, and starts the new ones. */
static int tunnel_reload(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    struct tunnel_plugin *tp = tp_of(ctx);
    const struct agentd_list *list = conf;
    const struct tunnel_conf *confs = list ? list->items : NULL;
    size_t n = list ? list->n : 0, kept = 0;
    struct tunnel **now = NULL, **old = tp->t;
    size_t nold = tp->n;
    int r;

    r = check_names(confs, n, err);
    if (r < 0)
        return r;
    if (n && !(now = calloc(n, sizeof(*now))))
        return -ENOMEM;
    /* Everything that can fail happens before the running set changes. */
    for (size_t i = 0; i < n; i++) {
        struct tunnel *same = NULL;
        for (size_t j = 0; j < nold && !same; j++)
            if (old[j] && tunnel_conf_same(old[j]->conf, &confs[i]))
                same = old[j];
        if (same)
            continue;
        if (!(now[i] = tunnel_new(tp, &confs[i], err))) {
            tunnels_free(now, n);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (now[i])
            continue;
        for (size_t j = 0; j < nold; j++)
            if (old[j] && tunnel_conf_same(old[j]->conf, &confs[i])) {
                now[i] = old[j];
                now[i]->conf = &confs[i];
                old[j] = NULL;
                kept++;
                break;
            }
    }
    tp->t = now;
    tp->n = n;
    for (size_t j = 0; j < nold; j++)
        if (old[j]) {
            agentd_info(ctx, "'%s': removed or changed: stopping it", old[j]->name);
            old[j]->retired = true;
            tp->retiring++;
            tunnel_stop(old[j]);
        }
    free(old);
    for (size_t i = 0; i < n; i++)
        if (now[i]->state == TUNNEL_IDLE)
            tunnel_start(now[i]);
    agentd_info(ctx, "reloaded: %zu tunnel%s kept running, %zu started", kept, kept == 1 ? "" : "s",
                n - kept);
    tunnel_plugin_changed(tp);
    return 0;
}

static void tunnel_status_cb(struct agentd_plugin_ctx *ctx, json_t *out)
{
    struct tunnel_plugin *tp = tp_of(ctx);
    json_t *a = tp ? status_array(tp) : NULL;

    if (a)
        json_object_set_new(out, "tunnels", a);
}

static void tunnel_destroy(struct agentd_plugin_ctx *ctx)
{
    struct tunnel_plugin *tp = tp_of(ctx);

    if (tp) {
        tunnels_free(tp->t, tp->n);
        free(tp);
    }
    agentd_plugin_set_data(ctx, NULL);
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "tunnel",
    .description = "reverse and local SSH tunnels kept up, with status and health checks",
    .schema = &tunnel_schema,
    .flags = AGENTD_PLUGIN_LIST_ROOT,
    .configure = tunnel_configure,
    .start = tunnel_start_cb,
    .stop = tunnel_stop_cb,
    .reload = tunnel_reload,
    .status = tunnel_status_cb,
    .destroy = tunnel_destroy,
};

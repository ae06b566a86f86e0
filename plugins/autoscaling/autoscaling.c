/* autoscaling: completes the instance's Auto Scaling lifecycle hooks.
 *
 * Terminate: when IMDS says target-lifecycle-state is Terminated, the host
 * runs the stop phases announce, leave and flush without exiting
 * (agentd_stop_sequence_run), RecordLifecycleActionHeartbeat keeps the hook
 * alive at half its heartbeat timeout meanwhile, and CompleteLifecycleAction
 * CONTINUE follows: the instance is drained out of its target groups and
 * every log line is shipped before Auto Scaling terminates it. Launch: once
 * health passes, CONTINUE; if it does not within launch_timeout, ABANDON (or
 * leave it to the hook's default result). Auto Scaling Query API 2011-01-01,
 * SigV4 service "autoscaling".
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <agentd/plugin.h>

enum { TIMEOUT_ABANDON, TIMEOUT_DEFAULT };

struct as_conf {
    char *group;
    char *terminate_hook;
    char *launch_hook;
    uint64_t heartbeat_timeout_ms;
    uint64_t launch_timeout_ms;
    int launch_timeout_result;
    char *endpoint;
    char *region;
};

static const char *const timeout_results[] = {"abandon", "default", NULL};

#define O(f) offsetof(struct as_conf, f)
static const struct agentd_option options[] = {
    {.name = "group",
     .type = AGENTD_OPT_STRING,
     .offset = O(group),
     .description = "Auto Scaling group name (default: the instance tag "
                    "aws:autoscaling:groupName, through imds tags)"},
    {.name = "terminate_hook",
     .type = AGENTD_OPT_STRING,
     .offset = O(terminate_hook),
     .description = "lifecycle hook (autoscaling:EC2_INSTANCE_TERMINATING) to complete after "
                    "draining and flushing"},
    {.name = "launch_hook",
     .type = AGENTD_OPT_STRING,
     .offset = O(launch_hook),
     .description = "lifecycle hook (autoscaling:EC2_INSTANCE_LAUNCHING) to complete once "
                    "health passes"},
    {.name = "heartbeat_timeout",
     .type = AGENTD_OPT_DURATION,
     .offset = O(heartbeat_timeout_ms),
     .def = "1h",
     .min = 2000,
     .max = 7200000,
     .description = "the hooks' heartbeat timeout; heartbeats are sent at half of it"},
    {.name = "launch_timeout",
     .type = AGENTD_OPT_DURATION,
     .offset = O(launch_timeout_ms),
     .def = "10m",
     .min = 1000,
     .max = 172800000,
     .description = "how long health may take to pass before the launch is given up"},
    {.name = "launch_timeout_result",
     .type = AGENTD_OPT_ENUM,
     .offset = O(launch_timeout_result),
     .def = "abandon",
     .values = timeout_results,
     .description = "on launch timeout: complete with ABANDON, or leave the hook to its "
                    "default result"},
    {.name = "endpoint",
     .type = AGENTD_OPT_URL,
     .offset = O(endpoint),
     .description = "Auto Scaling endpoint (default: by region, or AWS_ENDPOINT_URL_AUTO_SCALING)"},
    {.name = "region",
     .type = AGENTD_OPT_STRING,
     .offset = O(region),
     .description = "region (default: agentd's)"},
    {NULL},
};

static const struct agentd_schema schema = {
    .name = "autoscaling",
    .size = sizeof(struct as_conf),
    .options = options,
};

/* One hook being worked on: its heartbeats and its completion. */
struct hook {
    struct as *as;
    const char *name; /* borrowed from the config */
    bool active, completing, completed;
    const char *result; /* "CONTINUE" or "ABANDON" once decided */
    unsigned attempts;
    struct agentd_aws_call *call, *beat_call;
    uv_timer_t beat, retry;
};

struct as {
    struct agentd_plugin_ctx *ctx;
    const struct as_conf *conf;
    struct hook term, launch;
    uv_timer_t launch_poll;
    uint64_t launch_start;
    unsigned open;
    bool stopping;
    agentd_stop_done_fn stop_done;
};

/* ---- requests ---- */

#define FORM_MAX 4096

static int form_add(char *buf, size_t *len, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t l = *len;
    int n = snprintf(buf + l, FORM_MAX - l, "%s%s=", l ? "&" : "", key);
    if (n < 0 || (size_t)n >= FORM_MAX - l)
        return -ENAMETOOLONG;
    l += (size_t)n;
    for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
        if (l + 4 >= FORM_MAX)
            return -ENAMETOOLONG;
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '_' || *s == '.' || *s == '~') {
            buf[l++] = (char)*s;
        } else {
            buf[l++] = '%';
            buf[l++] = hex[*s >> 4];
            buf[l++] = hex[*s & 15];
        }
    }
    buf[l] = 0;
    *len = l;
    return 0;
}

static const char *group_name(struct as *as)
{
    if (as->conf->group)
        return as->conf->group;
    return agentd_metadata_get(as->ctx, "tag:aws:autoscaling:groupName");
}

/* Sends Action for hook h; extra is an optional key, value pair. */
static int send_action(struct as *as, struct hook *h, const char *action, const char *k,
                       const char *v, agentd_aws_done_fn done, struct agentd_aws_call **ret)
{
    const char *group = group_name(as);
    const char *iid = agentd_metadata_get(as->ctx, "instance_id");
    if (!group || !iid) {
        agentd_warning(as->ctx, "%s for hook '%s' waits: %s not known yet", action, h->name,
                       group ? "the instance id" : "the Auto Scaling group name");
        return -EAGAIN;
    }
    char body[FORM_MAX];
    size_t len = 0;
    int r = 0;
    r = r < 0 ? r : form_add(body, &len, "Action", action);
    r = r < 0 ? r : form_add(body, &len, "Version", "2011-01-01");
    r = r < 0 ? r : form_add(body, &len, "AutoScalingGroupName", group);
    r = r < 0 ? r : form_add(body, &len, "InstanceId", iid);
    r = r < 0 ? r : form_add(body, &len, "LifecycleHookName", h->name);
    if (k)
        r = r < 0 ? r : form_add(body, &len, k, v);
    if (r < 0)
        return r;
    static const char *const headers[] = {
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL};
    struct agentd_aws_request req = {
        .service = "autoscaling",
        .endpoint_id = "AUTO_SCALING",
        .endpoint = as->conf->endpoint,
        .region = as->conf->region,
        .protocol = AGENTD_AWS_QUERY,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .body = body,
        .body_len = len,
    };
    return agentd_aws_request(as->ctx, &req, done, h, ret);
}

/* ---- heartbeats ---- */

static void on_beat_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                         void *ud)
{
    struct hook *h = ud;
    h->beat_call = NULL;
    if (res->error)
        agentd_warning(ctx, "hook '%s': RecordLifecycleActionHeartbeat failed: %s: %s", h->name,
                       res->error_code ? res->error_code : "error",
                       res->error_message ? res->error_message : "");
    else
        agentd_info(ctx, "hook '%s': heartbeat recorded", h->name);
}

static void on_beat(uv_timer_t *t)
{
    struct hook *h = t->data;
    if (h->completed || h->beat_call)
        return;
    send_action(h->as, h, "RecordLifecycleActionHeartbeat", NULL, NULL, on_beat_done,
                &h->beat_call);
}

static void hook_begin(struct hook *h)
{
    uint64_t every = h->as->conf->heartbeat_timeout_ms / 2;
    h->active = true;
    uv_timer_start(&h->beat, on_beat, every, every);
}

/* ---- completion ---- */

static void maybe_stopped(struct as *as);
static void complete(struct hook *h, const char *result);

static void on_retry(uv_timer_t *t)
{
    struct hook *h = t->data;
    complete(h, h->result);
}

static void on_complete_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                             void *ud)
{
    struct hook *h = ud;
    h->call = NULL;
    h->completing = false;
    if (!res->error) {
        h->completed = true;
        uv_timer_stop(&h->beat);
        agentd_notice(ctx, "hook '%s': CompleteLifecycleAction %s done", h->name, h->result);
        maybe_stopped(h->as);
        return;
    }
    const char *code = res->error_code ? res->error_code : "error";
    /* A ValidationError means no action waits (already completed, timed out):
     * there is nothing left to complete. */
    if (strcmp(code, "ValidationError") == 0 || ++h->attempts >= 5) {
        agentd_error(ctx, "hook '%s': CompleteLifecycleAction %s failed: %s: %s; giving up",
                     h->name, h->result, code, res->error_message ? res->error_message : "");
        h->completed = true;
        uv_timer_stop(&h->beat);
        maybe_stopped(h->as);
        return;
    }
    agentd_warning(ctx, "hook '%s': CompleteLifecycleAction failed: %s (again in 10 s)", h->name,
                   code);
    uv_timer_start(&h->retry, on_retry, 10000, 0);
}

static void complete(struct hook *h, const char *result)
{
    if (h->completed || h->completing)
        return;
    h->result = result;
    h->completing = true;
    if (send_action(h->as, h, "CompleteLifecycleAction", "LifecycleActionResult", result,
                    on_complete_done, &h->call) < 0) {
        h->completing = false;
        h->call = NULL;
        uv_timer_start(&h->retry, on_retry, 5000, 0);
    }
}

/* ---- terminate ---- */

static void on_sequence_done(struct agentd_plugin_ctx *ctx, int status, void *ud)
{
    struct as *as = ud;
    (void)ctx;
    if (status < 0) {
        /* agentd is stopping: the complete phase sends it after the flush. */
        return;
    }
    complete(&as->term, "CONTINUE");
}

static void on_lifecycle(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload,
                         void *ud)
{
    struct as *as = ud;
    const char *state = json_string_value(json_object_get(payload, "state"));
    (void)name;
    if (!state || strcmp(state, "Terminated") != 0 || !as->conf->terminate_hook || as->term.active)
        return;
    agentd_notice(ctx,
                  "Auto Scaling terminates the instance: draining and flushing before "
                  "hook '%s' is completed",
                  as->term.name);
    hook_begin(&as->term);
    int r = agentd_stop_sequence_run(ctx, "Auto Scaling termination", on_sequence_done, as);
    if (r == -EALREADY)
        agentd_warning(ctx, "a stop sequence is already running; completing after it");
    else if (r < 0)
        agentd_notice(ctx, "agentd is stopping: the hook completes after the flush");
}

/* ---- launch ---- */

static void on_launch_poll(uv_timer_t *t)
{
    struct as *as = t->data;
    uint64_t now = uv_now(agentd_loop(as->ctx));
    if (agentd_health_overall(as->ctx) == AGENTD_HEALTH_PASS && !agentd_health_draining(as->ctx)) {
        uv_timer_stop(t);
        agentd_notice(as->ctx, "health passes: completing launch hook '%s'", as->launch.name);
        complete(&as->launch, "CONTINUE");
        return;
    }
    if (now - as->launch_start < as->conf->launch_timeout_ms)
        return;
    uv_timer_stop(t);
    if (as->conf->launch_timeout_result == TIMEOUT_ABANDON) {
        agentd_warning(as->ctx, "health did not pass within %llu ms: abandoning launch hook '%s'",
                       (unsigned long long)as->conf->launch_timeout_ms, as->launch.name);
        complete(&as->launch, "ABANDON");
    } else {
        agentd_warning(as->ctx,
                       "health did not pass within %llu ms: launch hook '%s' is left to its "
                       "default result",
                       (unsigned long long)as->conf->launch_timeout_ms, as->launch.name);
        as->launch.completed = true;
        uv_timer_stop(&as->launch.beat);
    }
}

/* ---- plugin ---- */

static void hook_init(struct as *as, struct hook *h, const char *name)
{
    h->as = as;
    h->name = name;
    uv_timer_init(agentd_loop(as->ctx), &h->beat);
    uv_timer_init(agentd_loop(as->ctx), &h->retry);
    h->beat.data = h->retry.data = h;
}

static int configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    const struct as_conf *c = conf;
    if (!c->terminate_hook && !c->launch_hook)
        return agentd_err_set(err, "name terminate_hook, launch_hook or both");
    struct as *as = calloc(1, sizeof(*as));
    if (!as)
        return -ENOMEM;
    as->ctx = ctx;
    as->conf = c;
    agentd_plugin_set_data(ctx, as);
    return 0;
}

static int start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    struct as *as = agentd_plugin_get_data(ctx);
    (void)err;
    hook_init(as, &as->term, as->conf->terminate_hook);
    hook_init(as, &as->launch, as->conf->launch_hook);
    uv_timer_init(agentd_loop(ctx), &as->launch_poll);
    as->launch_poll.data = as;
    agentd_event_subscribe(ctx, "instance.lifecycle", on_lifecycle, as);
    if (as->conf->launch_hook) {
        as->launch_start = uv_now(agentd_loop(ctx));
        hook_begin(&as->launch);
        uv_timer_start(&as->launch_poll, on_launch_poll, 500, 500);
    }
    agentd_plugin_report(ctx, false, "hooks: %s%s%s", as->conf->terminate_hook ? "terminate" : "",
                         as->conf->terminate_hook && as->conf->launch_hook ? ", " : "",
                         as->conf->launch_hook ? "launch" : "");
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct as *as = h->data;
    if (--as->open == 0 && as->stop_done) {
        agentd_stop_done_fn done = as->stop_done;
        as->stop_done = NULL;
        done(as->ctx);
    }
}

static void close_all(struct as *as)
{
    uv_timer_t *timers[] = {&as->term.beat, &as->term.retry, &as->launch.beat, &as->launch.retry,
                            &as->launch_poll};
    as->open = 5;
    for (size_t i = 0; i < 5; i++) {
        timers[i]->data = as;
        uv_close((uv_handle_t *)timers[i], on_closed);
    }
}

static void maybe_stopped(struct as *as)
{
    if (!as->stopping || as->term.completing || as->launch.completing || !as->stop_done || as->open)
        return;
    close_all(as);
}

/* The complete phase: a terminate hook whose sequence was overtaken by the
 * stop is completed now (the leave and flush phases have run). */
static void stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    struct as *as = agentd_plugin_get_data(ctx);
    as->stopping = true;
    as->stop_done = done;
    uv_timer_stop(&as->launch_poll);
    uv_timer_stop(&as->term.retry);
    uv_timer_stop(&as->launch.retry);
    struct hook *hooks[] = {&as->term, &as->launch};
    for (size_t i = 0; i < 2; i++) {
        if (hooks[i]->beat_call) {
            agentd_aws_cancel(hooks[i]->beat_call);
            hooks[i]->beat_call = NULL;
        }
        uv_timer_stop(&hooks[i]->beat);
    }
    if (as->term.active && !as->term.completed)
        complete(&as->term, "CONTINUE");
    maybe_stopped(as);
}

static void status(struct agentd_plugin_ctx *ctx, json_t *out)
{
    struct as *as = agentd_plugin_get_data(ctx);
    if (!as)
        return;
    const char *g = group_name(as);
    json_object_set_new(out, "group", g ? json_string(g) : json_null());
    struct hook *hooks[] = {&as->term, &as->launch};
    const char *kinds[] = {"terminate", "launch"};
    for (size_t i = 0; i < 2; i++) {
        if (!hooks[i]->name)
            continue;
        json_object_set_new(out, kinds[i],
                            json_pack("{s:s, s:b, s:b, s:s?}", "hook", hooks[i]->name, "active",
                                      hooks[i]->active, "completed", hooks[i]->completed, "result",
                                      hooks[i]->result));
    }
}

static void destroy(struct agentd_plugin_ctx *ctx)
{
    free(agentd_plugin_get_data(ctx));
    agentd_plugin_set_data(ctx, NULL);
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "autoscaling",
    .description = "completes Auto Scaling lifecycle hooks: drain and flush before termination",
    .schema = &schema,
    .flags = AGENTD_PLUGIN_STOP_COMPLETE,
    .configure = configure,
    .start = start,
    .stop = stop,
    .status = status,
    .destroy = destroy,
};

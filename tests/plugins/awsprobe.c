/* Test-only plugin that fires AWS requests through agentd_aws_request, so the
 * integration tests drive the AWS core (endpoints, credentials, signing,
 * retries, error parsing) through agentctl:
 *
 *   agentctl awsprobe send '{"service":"logs","protocol":"json",...}'  -> {"id": N}
 *   agentctl awsprobe result N    -> {"done": false} or the outcome
 *   agentctl awsprobe region      -> agentd_aws_region()
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentd/plugin.h"

#define MAX_CALLS 1024

struct awsprobe_conf {
    char *endpoint;
};

static const struct agentd_option awsprobe_options[] = {
    {.name = "endpoint",
     .type = AGENTD_OPT_URL,
     .offset = offsetof(struct awsprobe_conf, endpoint),
     .description = "endpoint override for requests that do not name one"},
    {0},
};

static const struct agentd_schema awsprobe_schema = {
    .name = "awsprobe",
    .size = sizeof(struct awsprobe_conf),
    .options = awsprobe_options,
};

struct slot {
    struct agentd_aws_call *call;
    json_t *result; /* NULL while in flight */
};

struct awsprobe {
    const struct awsprobe_conf *conf;
    struct slot slots[MAX_CALLS];
    size_t n;
};

static struct awsprobe *P(struct agentd_plugin_ctx *ctx)
{
    return agentd_plugin_get_data(ctx);
}

static void on_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res, void *ud)
{
    struct awsprobe *p = P(ctx);
    size_t id = (size_t)(uintptr_t)ud;
    json_t *hdrs = json_array();

    for (size_t i = 0; res->headers && res->headers[i]; i++)
        json_array_append_new(hdrs, json_string(res->headers[i]));
    p->slots[id].call = NULL;
    p->slots[id].result =
        json_pack("{s:b,s:i,s:i,s:o,s:o,s:s%,s:i,s:o}", "done", 1, "error", res->error, "status",
                  (json_int_t)res->status, "code",
                  res->error_code ? json_string(res->error_code) : json_null(), "message",
                  res->error_message ? json_string(res->error_message) : json_null(), "body",
                  res->body ? res->body : "", res->body ? res->body_len : 0, "attempts",
                  res->attempts, "headers", hdrs);
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int ctl_send(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct awsprobe *p = P(ctx);
    struct agentd_aws_request req = {0};
    const char *headers[33] = {0};
    json_error_t jerr;
    json_t *in, *hs;
    const char *proto;
    size_t id;
    int r;

    if (json_array_size(args) != 1) {
        *ret = json_string("usage: send JSON");
        return -EINVAL;
    }
    if (p->n == MAX_CALLS) {
        *ret = json_string("too many calls");
        return -ENOSPC;
    }
    in = json_loads(json_string_value(json_array_get(args, 0)), 0, &jerr);
    if (!json_is_object(in)) {
        json_decref(in);
        *ret = json_string("bad JSON");
        return -EINVAL;
    }
    req.service = str(in, "service") ? str(in, "service") : "logs";
    req.endpoint_id = str(in, "endpoint_id");
    req.endpoint = json_object_get(in, "endpoint") ? str(in, "endpoint") : p->conf->endpoint;
    req.region = str(in, "region");
    proto = str(in, "protocol") ? str(in, "protocol") : "json";
    req.protocol = strcmp(proto, "query") == 0      ? AGENTD_AWS_QUERY
                   : strcmp(proto, "rest-xml") == 0 ? AGENTD_AWS_REST_XML
                                                    : AGENTD_AWS_JSON;
    req.method = str(in, "method") ? str(in, "method") : "POST";
    req.path = str(in, "path") ? str(in, "path") : "/";
    req.query = str(in, "query");
    req.target = str(in, "target");
    req.body = str(in, "body");
    req.body_len = req.body ? strlen(req.body) : 0;
    req.unsigned_payload = json_is_true(json_object_get(in, "unsigned"));
    req.max_attempts = (unsigned)json_integer_value(json_object_get(in, "max_attempts"));
    req.timeout_ms = (uint64_t)json_integer_value(json_object_get(in, "timeout_ms"));
    hs = json_object_get(in, "headers");
    for (size_t i = 0; i < json_array_size(hs) && i < 32; i++)
        headers[i] = json_string_value(json_array_get(hs, i));
    req.headers = headers;
    id = p->n;
    r = agentd_aws_request(ctx, &req, on_done, (void *)(uintptr_t)id, &p->slots[id].call);
    json_decref(in);
    if (r < 0) {
        *ret = json_pack("{s:i,s:s}", "error", r, "message", strerror(-r));
        return 0;
    }
    p->n++;
    *ret = json_pack("{s:i}", "id", (json_int_t)id);
    return 0;
}

static int ctl_result(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct awsprobe *p = P(ctx);
    const char *s = json_string_value(json_array_get(args, 0));
    char *end;
    unsigned long id;

    if (!s) {
        *ret = json_string("usage: result ID");
        return -EINVAL;
    }
    id = strtoul(s, &end, 10);
    if (*end || id >= p->n) {
        *ret = json_string("no such call");
        return -ENOENT;
    }
    *ret = p->slots[id].result ? json_incref(p->slots[id].result) : json_pack("{s:b}", "done", 0);
    return 0;
}

static int ctl_cancel(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct awsprobe *p = P(ctx);
    const char *s = json_string_value(json_array_get(args, 0));
    unsigned long id = s ? strtoul(s, NULL, 10) : MAX_CALLS;

    if (id >= p->n || !p->slots[id].call) {
        *ret = json_string("no such call in flight");
        return -ENOENT;
    }
    agentd_aws_cancel(p->slots[id].call);
    p->slots[id].call = NULL;
    p->slots[id].result = json_pack("{s:b,s:b}", "done", 1, "cancelled", 1);
    *ret = json_true();
    return 0;
}

static int ctl_region(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    const char *r = agentd_aws_region(ctx);

    *ret = r ? json_string(r) : json_null();
    return 0;
}

static int awsprobe_configure(struct agentd_plugin_ctx *ctx, const void *conf,
                              struct agentd_err *err)
{
    struct awsprobe *p = calloc(1, sizeof(*p));

    if (!p)
        return agentd_err_set(err, "out of memory");
    p->conf = conf;
    agentd_plugin_set_data(ctx, p);
    return 0;
}

static int awsprobe_start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    if (agentd_control_register(ctx, "send", "fire an AWS request", ctl_send, NULL) < 0 ||
        agentd_control_register(ctx, "result", "a request's outcome", ctl_result, NULL) < 0 ||
        agentd_control_register(ctx, "cancel", "cancel a request", ctl_cancel, NULL) < 0 ||
        agentd_control_register(ctx, "region", "agentd's region", ctl_region, NULL) < 0)
        return agentd_err_set(err, "cannot register control verbs");
    return 0;
}

static void awsprobe_stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    struct awsprobe *p = P(ctx);

    for (size_t i = 0; i < p->n; i++)
        if (p->slots[i].call) {
            agentd_aws_cancel(p->slots[i].call);
            p->slots[i].call = NULL;
        }
    done(ctx);
}

static void awsprobe_destroy(struct agentd_plugin_ctx *ctx)
{
    struct awsprobe *p = P(ctx);

    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        json_decref(p->slots[i].result);
    free(p);
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "awsprobe",
    .description = "test plugin: AWS requests on demand",
    .schema = &awsprobe_schema,
    .configure = awsprobe_configure,
    .start = awsprobe_start,
    .stop = awsprobe_stop,
    .destroy = awsprobe_destroy,
};

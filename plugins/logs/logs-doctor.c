/* `agentctl logs doctor`: what would stop each pipeline, checked now. Per
 * pipeline: every file pattern readable (tail-access.c's probe, naming the
 * directory that blocks it), and for a CloudWatch sink one harmless signed
 * call (DescribeLogStreams on its group) that proves the endpoint answers,
 * the credentials are valid and the role may read the group. The verb
 * `doctor start` begins a run and `doctor` reports it; agentctl doctor polls
 * every plugin's verb until each run is done. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "logs.h"
#include "tail-int.h"

#define DOCTOR_TIMEOUT_MS 5000

struct doctor {
    json_t *checks;
    unsigned pending;
    unsigned gen;  /* a new run makes answers of the old one stale */
    bool at_start; /* the run at start: failures are logged as warnings */
};

static struct doctor doc;

struct probe {
    struct logs *lg;
    unsigned gen;
    size_t idx; /* in doc.checks */
    char *group;
    char *pipeline; /* a copy: a reload may free the config first */
    bool at_start;
    struct agentd_aws_call *call;
    struct probe *next; /* in flight */
};

static struct probe *in_flight;

static void drop(struct probe *pr)
{
    for (struct probe **pp = &in_flight; *pp; pp = &(*pp)->next)
        if (*pp == pr) {
            *pp = pr->next;
            break;
        }
    logs_unbusy(pr->lg);
    free(pr->pipeline);
    free(pr->group);
    free(pr);
}

/* At stop: calls in flight are cancelled, so a black-holed endpoint does not
 * hold the stop for the doctor's timeout. */
void logs_doctor_cancel(void)
{
    while (in_flight) {
        agentd_aws_cancel(in_flight->call);
        drop(in_flight);
    }
    doc.pending = 0;
}

static json_t *check(const char *name, const char *status, const char *detail, const char *cause,
                     const char *fix)
{
    return json_pack("{s:s,s:s,s:s,s:s?,s:s?}", "name", name, "status", status, "detail", detail,
                     "cause", cause, "fix", fix);
}

/* What an AWS answer means for an admin: the cause and the fix. */
static void explain(const struct agentd_aws_response *res, const char *perm, const char **cause,
                    const char **fix, const char **status)
{
    const char *code = res->error_code ? res->error_code : "";

    *status = "fail";
    if (res->error == -ETIMEDOUT) {
        *cause = "no answer from the endpoint in time: a security group or NACL drops the "
                 "traffic, or there is no route (no NAT gateway and no VPC endpoint)";
        *fix = "allow outbound 443 to the service in the security group and NACL, and route "
               "through a NAT gateway or add an interface VPC endpoint for the service";
    } else if (res->error == -EHOSTUNREACH) {
        *cause = "the endpoint's name does not resolve";
        *fix = "check the VPC's DNS (enableDnsSupport), resolv.conf, and the private DNS "
               "of a VPC endpoint";
    } else if (res->status == 0) {
        *cause = "the connection to the endpoint failed (refused, reset, or TLS)";
        *fix = "check the endpoint URL (AWS_ENDPOINT_URL*), a proxy, and that TLS is not "
               "intercepted";
    } else if (strstr(code, "AccessDenied") || strcmp(code, "UnauthorizedOperation") == 0) {
        *cause = "the credentials are valid but the role lacks a permission";
        *fix = perm;
    } else if (strstr(code, "ExpiredToken") || strstr(code, "InvalidClientTokenId") ||
               strstr(code, "UnrecognizedClient") || strstr(code, "SignatureDoesNotMatch") ||
               res->error == -ENOKEY) {
        *cause = "the credentials are missing, expired or wrong (or the clock is skewed)";
        *fix = "check the instance profile and its role, and that the clock is synchronised "
               "(chrony)";
    } else if (strstr(code, "ResourceNotFound")) {
        *status = "warn";
        *cause = "the log group does not exist yet; agentd creates it";
        *fix = "allow logs:CreateLogGroup and logs:CreateLogStream, or create the group";
    } else {
        *cause = "AWS refused the call";
        *fix = "read the error above";
    }
}

static void on_answer(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                      void *ud)
{
    struct probe *pr = ud;
    bool current = pr->gen == doc.gen && doc.checks;
    const char *cause = NULL, *fix = NULL, *status = "pass";
    char detail[400];
    (void)ctx;

    if (res->error == 0) {
        snprintf(detail, sizeof(detail), "DescribeLogStreams on '%s' answered", pr->group);
    } else {
        explain(res,
                "allow logs:DescribeLogStreams, logs:CreateLogStream and "
                "logs:PutLogEvents on the group in the instance role's policy",
                &cause, &fix, &status);
        snprintf(detail, sizeof(detail), "DescribeLogStreams on '%s': %s%s%s", pr->group,
                 res->error_code ? res->error_code : "",
                 res->error_code && res->error_message ? ": " : "",
                 res->error_message ? res->error_message : strerror(-res->error));
    }
    /* The run at start logs its failures, even when a newer run has begun
     * since; a missing group is normal at the first start (the sink creates
     * it), so only failures are worth a line. */
    if (pr->at_start && strcmp(status, "fail") == 0)
        agentd_warning(pr->lg->ctx, "doctor: logs:%s cloudwatch: %s; likely cause: %s; fix: %s",
                       pr->pipeline ? pr->pipeline : "?", detail, cause, fix);
    if (current) {
        json_t *c = json_array_get(doc.checks, pr->idx);
        json_object_set_new(c, "status", json_string(status));
        json_object_set_new(c, "detail", json_string(detail));
        if (cause)
            json_object_set_new(c, "cause", json_string(cause));
        if (fix)
            json_object_set_new(c, "fix", json_string(fix));
        doc.pending--;
    }
    drop(pr);
}

static void probe_cloudwatch(struct logs *lg, const struct logs_conf *c)
{
    char name[160], *group = NULL, *missing = NULL;
    snprintf(name, sizeof(name), "logs:%s cloudwatch", c->name);

    if (agentd_template_expand(lg->ctx, c->cloudwatch->group, NULL, &group, &missing) < 0) {
        json_array_append_new(doc.checks, check(name, "warn", "the group's name is not known yet",
                                                "its template needs metadata that is not available",
                                                "check the imds plugin (agentctl imds status)"));
        free(missing);
        return;
    }
    json_t *body = json_pack("{s:s,s:i}", "logGroupName", group, "limit", 1);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct probe *pr = calloc(1, sizeof(*pr));
    const char *const headers[] = {"Content-Type: application/x-amz-json-1.1", NULL};
    struct agentd_aws_request req = {
        .service = "logs",
        .endpoint_id = "CLOUDWATCH_LOGS",
        .endpoint = c->cloudwatch->endpoint,
        .region = c->cloudwatch->region,
        .protocol = AGENTD_AWS_JSON,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .body = text,
        .body_len = text ? strlen(text) : 0,
        .target = "Logs_20140328.DescribeLogStreams",
        .max_attempts = 1,
        .timeout_ms = DOCTOR_TIMEOUT_MS,
    };
    if (!pr || !text) {
        free(pr);
        free(text);
        free(group);
        return;
    }
    pr->lg = lg;
    pr->gen = doc.gen;
    pr->idx = json_array_size(doc.checks);
    pr->group = group;
    pr->pipeline = strdup(c->name);
    pr->at_start = doc.at_start;
    json_array_append_new(doc.checks, check(name, "running", "asking CloudWatch Logs", NULL, NULL));
    logs_busy(lg);
    int r = agentd_aws_request(lg->ctx, &req, on_answer, pr, &pr->call);
    free(text);
    if (r < 0) {
        json_t *ch = json_array_get(doc.checks, pr->idx);
        json_object_set_new(ch, "status", json_string("fail"));
        json_object_set_new(ch, "detail", json_string(strerror(-r)));
        json_object_set_new(ch, "cause",
                            json_string(r == -EDESTADDRREQ ? "no region is known"
                                                           : "the request could "
                                                             "not be sent"));
        json_object_set_new(ch, "fix", json_string("set aws.region or the sink's region"));
        logs_unbusy(lg);
        free(pr->pipeline);
        free(pr->group);
        free(pr);
        return;
    }
    pr->next = in_flight;
    in_flight = pr;
    doc.pending++;
}

static void probe_sources(struct logs *lg, const struct logs_conf *c)
{
    char name[160], detail[600];
    snprintf(name, sizeof(name), "logs:%s sources", c->name);
    json_t *bad =
        tail_access_probe((const char *const *)c->files.items, c->files.n, c->follow_symlinks);
    (void)lg;

    if (!bad)
        return;
    if (json_array_size(bad) == 0) {
        snprintf(detail, sizeof(detail), "%zu pattern(s) readable", c->files.n);
        json_array_append_new(doc.checks, check(name, "pass", detail, NULL, NULL));
    } else {
        json_t *o = json_array_get(bad, 0);
        const char *blk = json_string_value(json_object_get(o, "blocked_by"));
        char cause[PATH_MAX + 200];
        snprintf(detail, sizeof(detail), "cannot read '%s' (%zu problem(s)): %s",
                 json_string_value(json_object_get(o, "path")), json_array_size(bad),
                 json_string_value(json_object_get(o, "error")));
        if (blk)
            snprintf(cause, sizeof(cause),
                     "'%s' (mode %s, owner %lld:%lld) does not let agentd's "
                     "user in",
                     blk, json_string_value(json_object_get(o, "mode")),
                     (long long)json_integer_value(json_object_get(o, "uid")),
                     (long long)json_integer_value(json_object_get(o, "gid")));
        else
            snprintf(cause, sizeof(cause), "the path does not exist");
        json_array_append_new(
            doc.checks,
            check(name, "warn", detail, cause,
                  blk ? "add agentd's user to the directory's group, or an ACL (setfacl -m "
                        "u:agentd:rx DIR; -d for new files), and check ReadOnlyPaths/"
                        "InaccessiblePaths in agentd.service"
                      : "check the pattern, or start the app that writes the file"));
    }
    json_decref(bad);
}

static json_t *report(void)
{
    return json_pack("{s:b,s:O}", "done", doc.pending == 0, "checks",
                     doc.checks ? doc.checks : json_array());
}

void logs_doctor_run(struct logs *lg, bool at_start)
{
    json_decref(doc.checks);
    doc.checks = json_array();
    doc.pending = 0;
    doc.gen++;
    doc.at_start = at_start;
    const struct logs_conf *c = lg->conf->items;
    for (size_t i = 0; i < lg->conf->n; i++) {
        /* At start the sources are probed by the pipelines themselves. */
        if (c[i].files.n && !at_start)
            probe_sources(lg, &c[i]);
        if (c[i].cloudwatch)
            probe_cloudwatch(lg, &c[i]);
    }
}

int logs_doctor_verb(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct logs *lg = ud;
    const char *a = json_string_value(json_array_get(args, 0));
    (void)ctx;

    if (a && strcmp(a, "start") == 0) {
        logs_doctor_run(lg, false);
    } else if (a) {
        *ret = json_string("usage: logs doctor [start]");
        return -EINVAL;
    }
    *ret = report();
    return 0;
}

void logs_doctor_free(void)
{
    logs_doctor_cancel();
    json_decref(doc.checks);
    doc.checks = NULL;
    doc.pending = 0;
    doc.gen++;
}

/* `agentctl targetgroup doctor`: per group, one harmless signed call
 * (DescribeTargetHealth for this target, or DescribeTargetGroups by name
 * while the ARN is not known) that proves the ELB endpoint answers, the
 * credentials work and the role has the permission the plugin needs. A run
 * is started by "doctor start" and reported by "doctor"; calls still in
 * flight are cancelled when the plugin stops. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg.h"

#define DOCTOR_TIMEOUT_MS 5000
#define MAX_CALLS         64

static json_t *checks;
static struct agentd_aws_call *calls[MAX_CALLS];
static size_t ncalls;
static unsigned pending;

static const char *group_name(const struct tg_group *g)
{
    return g->conf->name ? g->conf->name : g->conf->arn;
}

static void on_answer(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                      void *ud)
{
    size_t idx = (size_t)(uintptr_t)ud;
    json_t *c = json_array_get(checks, idx);
    const char *action = json_string_value(json_object_get(c, "action"));
    const char *code = res->error_code ? res->error_code : "";
    char detail[512];
    (void)ctx;

    calls[idx] = NULL;
    pending--;
    if (res->error == 0) {
        snprintf(detail, sizeof(detail), "%s answered", action);
        json_object_set_new(c, "status", json_string("pass"));
        json_object_set_new(c, "detail", json_string(detail));
        return;
    }
    snprintf(detail, sizeof(detail), "%s: %s%s%s", action, code, *code ? ": " : "",
             res->error_message ? res->error_message : strerror(-res->error));
    const char *cause, *fix;
    if (res->error == -ETIMEDOUT) {
        cause = "no answer from the endpoint in time: a security group or NACL drops the "
                "traffic, or there is no route (no NAT gateway and no VPC endpoint)";
        fix = "allow outbound 443 in the security group and NACL, and route through a NAT "
              "gateway or add an interface VPC endpoint for elasticloadbalancing";
    } else if (res->error == -EHOSTUNREACH) {
        cause = "the endpoint's name does not resolve";
        fix = "check the VPC's DNS and the private DNS of a VPC endpoint";
    } else if (res->status == 0) {
        cause = "the connection to the endpoint failed (refused, reset, or TLS)";
        fix = "check the endpoint (targetgroup.endpoint, AWS_ENDPOINT_URL*) and any proxy";
    } else if (strstr(code, "AccessDenied") || strcmp(code, "UnauthorizedOperation") == 0) {
        cause = "the credentials are valid but the role lacks a permission";
        fix = "allow elasticloadbalancing:DescribeTargetHealth, DescribeTargetGroups, "
              "DescribeTargetGroupAttributes, RegisterTargets and DeregisterTargets in the "
              "instance role's policy";
    } else if (strstr(code, "TargetGroupNotFound")) {
        cause = "no such target group in this account and region";
        fix = "check the group's name or ARN and aws.region";
    } else if (strstr(code, "ExpiredToken") || strstr(code, "InvalidClientTokenId") ||
               strstr(code, "SignatureDoesNotMatch") || res->error == -ENOKEY) {
        cause = "the credentials are missing, expired or wrong (or the clock is skewed)";
        fix = "check the instance profile and that the clock is synchronised (chrony)";
    } else {
        cause = "AWS refused the call";
        fix = "read the error above";
    }
    json_object_set_new(c, "status", json_string("fail"));
    json_object_set_new(c, "detail", json_string(detail));
    json_object_set_new(c, "cause", json_string(cause));
    json_object_set_new(c, "fix", json_string(fix));
}

void tg_doctor_cancel(void)
{
    for (size_t i = 0; i < ncalls; i++)
        if (calls[i])
            agentd_aws_cancel(calls[i]);
    memset(calls, 0, sizeof(calls));
    ncalls = 0;
    pending = 0;
}

void tg_doctor_free(void)
{
    tg_doctor_cancel();
    json_decref(checks);
    checks = NULL;
}

static void probe(struct tg *tg, struct tg_group *g)
{
    static const char *const headers[] = {
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL};
    const char *action = g->arn ? "DescribeTargetHealth" : "DescribeTargetGroups";
    char name[200];
    struct tg_form f;

    snprintf(name, sizeof(name), "targetgroup:%s", group_name(g));
    tg_form_init(&f, action);
    if (g->arn)
        tg_form_add(&f, "TargetGroupArn", g->arn);
    else
        tg_form_add(&f, "Names.member.1", g->conf->name);
    size_t idx = json_array_size(checks);
    json_array_append_new(checks, json_pack("{s:s,s:s,s:s,s:s}", "name", name, "status", "running",
                                            "detail", "asking ELB", "action", action));
    struct agentd_aws_request req = {
        .service = "elasticloadbalancing",
        .endpoint_id = "ELASTIC_LOAD_BALANCING_V2",
        .endpoint = tg->conf->endpoint,
        .region = tg->conf->region,
        .protocol = AGENTD_AWS_QUERY,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .body = f.buf,
        .body_len = f.len,
        .max_attempts = 1,
        .timeout_ms = DOCTOR_TIMEOUT_MS,
    };
    int r = f.failed || idx >= MAX_CALLS
                ? -ENOMEM
                : agentd_aws_request(tg->ctx, &req, on_answer, (void *)(uintptr_t)idx, &calls[idx]);
    tg_form_free(&f);
    if (r < 0) {
        json_t *c = json_array_get(checks, idx);
        json_object_set_new(c, "status", json_string("fail"));
        json_object_set_new(c, "detail", json_string(strerror(-r)));
        json_object_set_new(c, "cause",
                            json_string(r == -EDESTADDRREQ ? "no region is known"
                                                           : "the request could not "
                                                             "be sent"));
        json_object_set_new(c, "fix", json_string("set aws.region or targetgroup.region"));
        return;
    }
    ncalls = idx + 1;
    pending++;
}

int tg_doctor_verb(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct tg *tg = ud;
    const char *a = json_string_value(json_array_get(args, 0));
    (void)ctx;

    if (a && strcmp(a, "start") != 0) {
        *ret = json_string("usage: targetgroup doctor [start]");
        return -EINVAL;
    }
    if (a) {
        tg_doctor_free();
        checks = json_array();
        for (size_t i = 0; i < tg->n_groups && !tg->stopping; i++)
            probe(tg, &tg->groups[i]);
    }
    *ret = json_pack("{s:b,s:O}", "done", pending == 0, "checks", checks ? checks : json_array());
    return 0;
}

/* agentctl doctor: asks every plugin that offers a "doctor" verb to check
 * what would stop it (sources readable, endpoints reachable, permissions,
 * key files), waits for their runs to finish, and prints one line per check
 * with the cause and the fix of every one that did not pass. The checks
 * belong to the plugins, so a new plugin adds its own by registering the
 * verb: "PLUGIN doctor start" begins a run and "PLUGIN doctor" reports it as
 * {"done": bool, "checks": [{"name","status","detail","cause","fix"}]}. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentctl.h"
#include "control-proto.h"

#define DOCTOR_WAIT_MS 30000
#define POLL_MS        200

static json_t *call_verb(const char *path, const char *plugin, bool start, int *ret_rc)
{
    json_t *args = start ? json_pack("[s]", "start") : json_array();
    json_t *req = json_pack("{s:i,s:s,s:s,s:s,s:o}", "v", CONTROL_PROTO_VERSION, "cmd", "plugin",
                            "plugin", plugin, "verb", "doctor", "args", args);
    json_t *reply = NULL, *res = NULL;
    int r = ctl_call(path, req, &reply, false);

    json_decref(req);
    *ret_rc = r == -ENOENT || r == -ECONNREFUSED ? 3 : r < 0 ? 1 : 0;
    if (r == 0 && json_is_true(json_object_get(reply, "ok")))
        res = json_incref(json_object_get(reply, "result"));
    else if (r == 0)
        fprintf(stderr, "agentctl doctor: %s: %s\n", plugin, str(reply, "error"));
    json_decref(reply);
    return res;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_doctor(const char *path, bool json)
{
    json_t *req = json_pack("{s:i,s:s}", "v", CONTROL_PROTO_VERSION, "cmd", "verbs");
    json_t *reply = NULL, *v, *plugins = json_array(), *results = json_object();
    size_t i;
    int rc = 0, r = ctl_call(path, req, &reply, false);

    json_decref(req);
    if (r < 0) {
        json_decref(plugins);
        json_decref(results);
        return r == -ENOENT || r == -ECONNREFUSED ? 3 : 1;
    }
    json_array_foreach(json_object_get(reply, "result"), i,
                       v) if (strcmp(str(v, "verb"), "doctor") == 0)
        json_array_append_new(plugins, json_string(str(v, "plugin")));
    json_decref(reply);

    /* Start every run first, so the plugins check in parallel. */
    json_array_foreach(plugins, i, v)
    {
        json_t *res = call_verb(path, json_string_value(v), true, &r);
        if (r == 3) {
            json_decref(res);
            rc = 3;
            goto out;
        }
        if (res)
            json_object_set_new(results, json_string_value(v), res);
    }
    long long deadline = now_ms() + DOCTOR_WAIT_MS;
    for (;;) {
        bool all = true;
        const char *k;
        json_object_foreach(results, k, v) if (!json_is_true(json_object_get(v, "done"))) all =
            false;
        if (all || now_ms() > deadline)
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
        json_object_foreach(results, k, v)
        {
            if (json_is_true(json_object_get(v, "done")))
                continue;
            json_t *res = call_verb(path, k, false, &r);
            if (res)
                json_object_set_new(results, k, res);
        }
    }

    json_t *all = json_array();
    unsigned counts[3] = {0, 0, 0}; /* pass, warn, fail */
    const char *k;
    json_object_foreach(results, k, v)
    {
        size_t j;
        json_t *c;
        json_array_foreach(json_object_get(v, "checks"), j, c)
        {
            json_t *o = json_deep_copy(c);
            json_object_set_new(o, "plugin", json_string(k));
            const char *st = str(o, "status");
            if (strcmp(st, "pass") != 0 && strcmp(st, "warn") != 0) {
                if (strcmp(st, "fail") != 0) { /* still running at the deadline */
                    json_object_set_new(o, "status", json_string("fail"));
                    json_object_set_new(o, "cause", json_string("no result in time"));
                }
                counts[2]++;
            } else {
                counts[strcmp(st, "pass") == 0 ? 0 : 1]++;
            }
            json_array_append_new(all, o);
        }
    }
    if (json) {
        json_t *out = json_pack("{s:o,s:{s:i,s:i,s:i}}", "checks", all, "summary", "pass",
                                counts[0], "warn", counts[1], "fail", counts[2]);
        print_json(out);
        json_decref(out);
    } else {
        size_t w = 0;
        json_t *c;
        json_array_foreach(all, i, c) if (strlen(str(c, "name")) > w) w = strlen(str(c, "name"));
        json_array_foreach(all, i, c)
        {
            const char *st = str(c, "status");
            printf("%-4s  %-*s  %s\n", st, (int)w, str(c, "name"), str(c, "detail"));
            if (strcmp(st, "pass") != 0) {
                if (*str(c, "cause"))
                    printf("      %*s  cause: %s\n", (int)w, "", str(c, "cause"));
                if (*str(c, "fix"))
                    printf("      %*s  fix:   %s\n", (int)w, "", str(c, "fix"));
            }
        }
        printf("%u pass, %u warn, %u fail\n", counts[0], counts[1], counts[2]);
        json_decref(all);
    }
    rc = counts[2] ? 1 : 0;
out:
    json_decref(plugins);
    json_decref(results);
    return rc;
}

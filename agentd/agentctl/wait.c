/* agentctl wait [--timeout D] [CHECK...]: blocks until the named health
 * checks, or every critical one when none is named, pass. Made for an app's
 * unit (ExecStartPre=agentctl wait --timeout 5m postgres) so the app starts
 * only once its database answers. agentd itself may still be starting: a
 * missing socket or a check not registered yet is waited for too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentctl.h"
#include "control-proto.h"

#define DEFAULT_TIMEOUT_MS (120 * 1000LL)
#define POLL_MS            250

/* "90", "90s", "500ms", "5m", "1h": milliseconds, or -1. */
static long long parse_duration(const char *s)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno || end == s || n < 0 || n > 100000000LL)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return n * 1000;
    if (strcmp(end, "ms") == 0)
        return n;
    if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        return n * 60 * 1000;
    if (strcmp(end, "h") == 0)
        return n * 3600 * 1000;
    return -1;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether the checks asked for pass; otherwise why not, in why. */
static bool checks_pass(const json_t *health, char **names, int n, char *why, size_t len)
{
    const json_t *checks = json_object_get(health, "checks");
    size_t i;
    json_t *c;

    for (int k = 0; k < n; k++) {
        const json_t *found = NULL;
        json_array_foreach(checks, i, c) if (strcmp(str(c, "name"), names[k]) == 0) found = c;
        if (!found) {
            snprintf(why, len, "%s: no such check (yet)", names[k]);
            return false;
        }
        if (strcmp(str(found, "status"), "pass") != 0) {
            snprintf(why, len, "%s: %s: %s", names[k], str(found, "status"), str(found, "output"));
            return false;
        }
    }
    if (n > 0)
        return true;
    if (json_array_size(checks) == 0) {
        snprintf(why, len, "no health checks registered (yet)");
        return false;
    }
    json_array_foreach(checks, i, c)
    {
        if (json_is_false(json_object_get(c, "critical")))
            continue;
        if (strcmp(str(c, "status"), "pass") != 0) {
            snprintf(why, len, "%s: %s: %s", str(c, "name"), str(c, "status"), str(c, "output"));
            return false;
        }
    }
    return true;
}

int cmd_wait(const char *path, int argc, char **argv, bool json)
{
    long long timeout = DEFAULT_TIMEOUT_MS, deadline;
    char **names = calloc((size_t)argc + 1, sizeof(*names));
    char why[600] = "agentd is not running";
    int n = 0, rc = 1;
    json_t *req;

    if (!names)
        return 1;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--timeout") == 0)
            v = i + 1 < argc ? argv[++i] : "";
        else if (strncmp(argv[i], "--timeout=", 10) == 0)
            v = argv[i] + 10;
        if (v) {
            timeout = parse_duration(v);
            if (timeout < 0) {
                fprintf(stderr, "agentctl wait: bad --timeout '%s' (e.g. 90s, 5m, 500ms)\n", v);
                free(names);
                return 2;
            }
        } else {
            names[n++] = argv[i];
        }
    }
    req = json_pack("{s:i,s:s}", "v", CONTROL_PROTO_VERSION, "cmd", "health");
    deadline = now_ms() + timeout;
    for (;;) {
        json_t *reply = NULL;
        int r = ctl_call(path, req, &reply, true);
        if (r == 0) {
            json_t *res = json_object_get(reply, "result");
            bool ok = json_is_true(json_object_get(reply, "ok")) &&
                      checks_pass(res, names, n, why, sizeof(why));
            if (ok) {
                if (json)
                    print_json(res);
                json_decref(reply);
                rc = 0;
                break;
            }
            if (!json_is_true(json_object_get(reply, "ok")))
                snprintf(why, sizeof(why), "agentd: %s", str(reply, "error"));
        } else if (r == -ENOENT || r == -ECONNREFUSED) {
            snprintf(why, sizeof(why), "agentd is not running (no socket at %s)", path);
        } else {
            snprintf(why, sizeof(why), "cannot ask agentd: %s", strerror(-r));
        }
        json_decref(reply);
        long long left = deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "agentctl wait: timed out after %.1f s: %s\n", (double)timeout / 1000,
                    why);
            break;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (left < POLL_MS ? left : POLL_MS) * 1000000L};
        nanosleep(&ts, NULL);
    }
    json_decref(req);
    free(names);
    return rc;
}

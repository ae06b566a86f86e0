/* systemd notifications (Type=notify): READY, RELOADING, STOPPING, STATUS
 * and watchdog pings. libsystemd's sd_notify() is a no-op without
 * NOTIFY_SOCKET, so none of this needs a "running under systemd" switch.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "host.h"

static char last_status[256];
static uv_timer_t watchdog;
static bool watchdog_on;

void notify_summary(char *buf, size_t size)
{
    unsigned running = 0, failed = 0, degraded = 0, stopped = 0;

    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next) {
        if (p->state == PLUGIN_RUNNING) {
            running++;
            if (p->degraded)
                degraded++;
        } else if (p->state == PLUGIN_FAILED) {
            failed++;
        } else if (p->state == PLUGIN_STOPPED || p->state == PLUGIN_STOPPING) {
            stopped++;
        }
    }
    int n = snprintf(buf, size, "%u plugin%s running", running, running == 1 ? "" : "s");
    if (n > 0 && (size_t)n < size && degraded)
        n += snprintf(buf + n, size - (size_t)n, ", %u degraded", degraded);
    if (n > 0 && (size_t)n < size && failed)
        n += snprintf(buf + n, size - (size_t)n, ", %u failed", failed);
    if (n > 0 && (size_t)n < size && stopped)
        snprintf(buf + n, size - (size_t)n, ", %u stopped", stopped);
}

static void send_status(const char *prefix)
{
    char msg[320];

    notify_summary(last_status, sizeof(last_status));
    snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix, last_status);
    sd_notify(0, msg);
}

void notify_ready(void)
{
    send_status("READY=1\n");
}

void notify_reloading(void)
{
    struct timespec ts;
    char msg[64];

    /* systemd >= 253 wants MONOTONIC_USEC with RELOADING=1; older ones ignore it. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    sd_notify(0, msg);
}

void notify_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void notify_status_update(void)
{
    char now[sizeof(last_status)];

    notify_summary(now, sizeof(now));
    if (strcmp(now, last_status) != 0)
        send_status("");
}

static void watchdog_cb(uv_timer_t *t)
{
    sd_notify(0, "WATCHDOG=1");
}

int notify_watchdog_start(uv_loop_t *loop)
{
    uint64_t usec = 0;
    int r = sd_watchdog_enabled(0, &usec);

    if (r <= 0 || usec == 0)
        return 0;
    uint64_t ms = usec / 2000;
    if (ms == 0)
        ms = 1;
    uv_timer_init(loop, &watchdog);
    uv_unref((uv_handle_t *)&watchdog);
    uv_timer_start(&watchdog, watchdog_cb, ms, ms);
    watchdog_on = true;
    sd_notify(0, "WATCHDOG=1");
    log_debug("watchdog: pinging systemd every %llu ms", (unsigned long long)ms);
    return 1;
}

void notify_watchdog_stop(void)
{
    if (watchdog_on) {
        watchdog_on = false;
        uv_close((uv_handle_t *)&watchdog, NULL);
    }
}

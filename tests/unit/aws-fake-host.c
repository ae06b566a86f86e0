/* A small stand-in for the host functions the AWS core and HTTP client call,
 * so their unit tests link without the daemon (collectd's mock-daemon idea).
 * Tests set fake_host_loop and fake metadata; log lines are kept for
 * assertions (and printed with FAKE_HOST_VERBOSE=1). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentd/plugin.h"
#include "aws-fake-host.h"
#include "aws-internal.h"

uv_loop_t *fake_host_loop;
char fake_host_log[FAKE_LOG_LINES][256];
size_t fake_host_nlog;
static const char *meta_keys[16], *meta_values[16];

void fake_host_metadata(const char *key, const char *value)
{
    for (size_t i = 0; i < 16; i++)
        if (!meta_keys[i] || strcmp(meta_keys[i], key) == 0) {
            meta_keys[i] = key;
            meta_values[i] = value;
            return;
        }
}

bool fake_host_logged(const char *needle)
{
    for (size_t i = 0; i < fake_host_nlog && i < FAKE_LOG_LINES; i++)
        if (strstr(fake_host_log[i], needle))
            return true;
    return false;
}

uv_loop_t *agentd_loop(struct agentd_plugin_ctx *ctx)
{
    return fake_host_loop ? fake_host_loop : uv_default_loop();
}

const char *agentd_plugin_name(struct agentd_plugin_ctx *ctx)
{
    return "aws";
}

void agentd_logv(struct agentd_plugin_ctx *ctx, enum agentd_log_level level,
                 const char *const *fields, const char *fmt, va_list ap)
{
    char line[256];

    vsnprintf(line, sizeof(line), fmt, ap);
    if (getenv("FAKE_HOST_VERBOSE"))
        fprintf(stderr, "log<%d>: %s\n", (int)level, line);
    if (fake_host_nlog < FAKE_LOG_LINES)
        memcpy(fake_host_log[fake_host_nlog], line, sizeof(line));
    fake_host_nlog++;
}

void agentd_log(struct agentd_plugin_ctx *ctx, enum agentd_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    agentd_logv(ctx, level, NULL, fmt, ap);
    va_end(ap);
}

void agentd_log_fields(struct agentd_plugin_ctx *ctx, enum agentd_log_level level,
                       const char *const *fields, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    agentd_logv(ctx, level, fields, fmt, ap);
    va_end(ap);
}

const char *agentd_metadata_get(struct agentd_plugin_ctx *ctx, const char *key)
{
    for (size_t i = 0; i < 16 && meta_keys[i]; i++)
        if (strcmp(meta_keys[i], key) == 0)
            return meta_values[i];
    return NULL;
}

bool fake_host_stopping;

bool agentd_stopping(struct agentd_plugin_ctx *ctx)
{
    return fake_host_stopping;
}

struct work {
    uv_work_t req;
    void (*work)(void *ud);
    void (*done)(void *ud, int status);
    void *ud;
};

static void work_run(uv_work_t *req)
{
    struct work *w = req->data;

    w->work(w->ud);
}

static void work_after(uv_work_t *req, int status)
{
    struct work *w = req->data;

    w->done(w->ud, status);
    free(w);
}

int agentd_work_queue(struct agentd_plugin_ctx *ctx, void (*work)(void *ud),
                      void (*done)(void *ud, int status), void *ud)
{
    struct work *w = calloc(1, sizeof(*w));

    if (!w)
        return -12;
    w->work = work;
    w->done = done;
    w->ud = ud;
    w->req.data = w;
    return uv_queue_work(agentd_loop(ctx), &w->req, work_run, work_after);
}

bool fake_host_dead_ctx_set;
struct agentd_plugin_ctx *fake_host_dead_ctx;

bool aws_ctx_running(struct agentd_plugin_ctx *ctx)
{
    return !(fake_host_dead_ctx_set && ctx == fake_host_dead_ctx);
}

int fake_host_summaries;

void aws_plugin_summary(void)
{
    fake_host_summaries++;
}

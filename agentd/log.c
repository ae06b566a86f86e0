/* Logging: one API for the host and plugins. Lines go to the journal with
 * structured fields when stderr is connected to it (JOURNAL_STREAM matches),
 * otherwise to stderr with a level prefix. Repeats of one message (same
 * plugin and format string) are rate-limited so a retry loop cannot flood
 * the journal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* CODE_FILE=log.c would name this file for every line: leave it out. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "host.h"

#define RL_SLOTS     64
#define RL_BURST     10
#define RL_WINDOW_MS 10000
#define LINE_MAX_LEN 4096
#define MAX_FIELDS   16

struct rl_slot {
    const void *ctx;
    const char *fmt;
    uint64_t window_start;
    unsigned count;
    unsigned suppressed;
};

static int max_level = AGENTD_LOG_INFO;
static bool to_journal;
static struct rl_slot slots[RL_SLOTS];

static const char *const level_names[] = {
    [AGENTD_LOG_ERR] = "error", [AGENTD_LOG_WARNING] = "warning", [AGENTD_LOG_NOTICE] = "notice",
    [AGENTD_LOG_INFO] = "info", [AGENTD_LOG_DEBUG] = "debug",
};

void log_init(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    to_journal = false;
    if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        to_journal = true;
}

void log_set_level(int level)
{
    if (level >= AGENTD_LOG_ERR && level <= AGENTD_LOG_DEBUG)
        max_level = level;
}

int log_get_level(void)
{
    return max_level;
}

int log_level_from_name(const char *name)
{
    for (int i = AGENTD_LOG_ERR; i <= AGENTD_LOG_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -EINVAL;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *ctx_name(const struct agentd_plugin_ctx *ctx)
{
    if (!ctx || !ctx->desc)
        return NULL;
    return ctx->desc->name;
}

static void emit(int level, const char *plugin, const char *const *fields, const char *msg)
{
    if (to_journal) {
        struct iovec iov[MAX_FIELDS + 4];
        char prio[16], pl[128];
        char *mbuf;
        size_t n = 0, mlen = strlen(msg);

        mbuf = malloc(mlen + sizeof("MESSAGE="));
        if (!mbuf)
            return;
        memcpy(mbuf, "MESSAGE=", 8);
        memcpy(mbuf + 8, msg, mlen + 1);
        iov[n++] = (struct iovec){mbuf, mlen + 8};
        snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
        iov[n++] = (struct iovec){prio, strlen(prio)};
        iov[n++] = (struct iovec){(void *)"SYSLOG_IDENTIFIER=agentd", 24};
        if (plugin) {
            snprintf(pl, sizeof(pl), "PLUGIN=%s", plugin);
            iov[n++] = (struct iovec){pl, strlen(pl)};
        }
        for (size_t i = 0; fields && fields[i] && i < MAX_FIELDS; i++)
            if (strchr(fields[i], '='))
                iov[n++] = (struct iovec){(void *)fields[i], strlen(fields[i])};
        int r = sd_journal_sendv(iov, (int)n);
        free(mbuf);
        if (r >= 0)
            return;
        /* The journal refused the message: stderr still reaches it. */
    }

    char line[LINE_MAX_LEN + 256];
    int len = snprintf(line, sizeof(line), "%s: %s%s%s\n", level_names[level], plugin ? plugin : "",
                       plugin ? ": " : "", msg);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof(line)) {
        len = (int)sizeof(line) - 1;
        line[len - 1] = '\n';
    }
    /* One write per line so that concurrent writers never interleave it. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)len);
    (void)w;
}

/* Returns true if the message may be written; writes the "suppressed" line
 * of a finished window first. */
static bool rate_limit_pass(const struct agentd_plugin_ctx *ctx, const char *fmt)
{
    uintptr_t h = ((uintptr_t)ctx >> 4) ^ ((uintptr_t)fmt >> 2) ^ ((uintptr_t)fmt >> 9);
    struct rl_slot *s = &slots[h % RL_SLOTS];
    uint64_t now = mono_ms();
    char msg[128];

    if (s->ctx != ctx || s->fmt != fmt || now - s->window_start >= RL_WINDOW_MS) {
        if (s->suppressed) {
            snprintf(msg, sizeof(msg), "%u similar messages suppressed", s->suppressed);
            emit(AGENTD_LOG_NOTICE, ctx_name(s->ctx), NULL, msg);
        }
        *s = (struct rl_slot){.ctx = ctx, .fmt = fmt, .window_start = now};
    }
    if (++s->count > RL_BURST) {
        s->suppressed++;
        return false;
    }
    return true;
}

void agentd_logv(struct agentd_plugin_ctx *ctx, enum agentd_log_level level,
                 const char *const *fields, const char *fmt, va_list ap)
{
    char msg[LINE_MAX_LEN];

    if ((int)level < AGENTD_LOG_ERR)
        level = AGENTD_LOG_ERR;
    if (level > AGENTD_LOG_DEBUG)
        level = AGENTD_LOG_DEBUG;
    if ((int)level > max_level)
        return;
    if (!rate_limit_pass(ctx, fmt))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    emit(level, ctx_name(ctx), fields, msg);
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

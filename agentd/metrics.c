/* Metrics: counters and gauges with labels, rendered as Prometheus text
 * exposition format 0.0.4. Metrics live as long as the daemon, so plugins
 * keep their pointers; a reloaded plugin gets the same series back.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define MAX_FAMILIES 512
#define MAX_SERIES   4096
#define MAX_LABELS   16

enum mtype { M_COUNTER, M_GAUGE };

struct agentd_metric {
    struct family *fam;
    size_t nlabels;
    char **labels; /* name, value pairs */
    double value;
    struct agentd_metric *next;
};

struct family {
    char *name;
    char *help;
    enum mtype type;
    struct agentd_metric *series, **series_tail;
    struct family *next;
};

static struct family *families, **families_tail = &families;
static size_t nfamilies, nseries;

static bool valid_name(const char *s, bool label)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static struct family *family_get(const char *name, const char *help, enum mtype type)
{
    struct family *f;

    for (f = families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f->type == type ? f : NULL;
    if (nfamilies >= MAX_FAMILIES || !(f = calloc(1, sizeof(*f))))
        return NULL;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->type = type;
    f->series_tail = &f->series;
    *families_tail = f;
    families_tail = &f->next;
    nfamilies++;
    return f;
}

static bool labels_equal(const struct agentd_metric *m, const char *const *labels, size_t n)
{
    if (m->nlabels != n)
        return false;
    for (size_t i = 0; i < 2 * n; i++)
        if (strcmp(m->labels[i], labels[i]) != 0)
            return false;
    return true;
}

static struct agentd_metric *metric_get(const char *name, const char *help, enum mtype type,
                                        const char *const *labels)
{
    struct family *f;
    struct agentd_metric *m;
    size_t n = 0;

    if (!valid_name(name, false))
        return NULL;
    for (; labels && labels[2 * n]; n++) {
        if (!labels[2 * n + 1] || !valid_name(labels[2 * n], true) || n >= MAX_LABELS)
            return NULL;
    }
    if (!(f = family_get(name, help, type)))
        return NULL;
    for (m = f->series; m; m = m->next)
        if (labels_equal(m, labels, n))
            return m;
    if (nseries >= MAX_SERIES || !(m = calloc(1, sizeof(*m))))
        return NULL;
    m->labels = calloc(2 * n + 1, sizeof(char *));
    if (!m->labels) {
        free(m);
        return NULL;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        if (!(m->labels[i] = strdup(labels[i]))) {
            for (size_t j = 0; j < i; j++)
                free(m->labels[j]);
            free(m->labels);
            free(m);
            return NULL;
        }
    }
    m->nlabels = n;
    m->fam = f;
    *f->series_tail = m;
    f->series_tail = &m->next;
    nseries++;
    return m;
}

struct agentd_metric *agentd_metric_counter(struct agentd_plugin_ctx *ctx, const char *name,
                                            const char *help, const char *const *labels)
{
    return metric_get(name, help, M_COUNTER, labels);
}

struct agentd_metric *agentd_metric_gauge(struct agentd_plugin_ctx *ctx, const char *name,
                                          const char *help, const char *const *labels)
{
    return metric_get(name, help, M_GAUGE, labels);
}

void agentd_metric_add(struct agentd_metric *m, double v)
{
    /* Counters only go up: a negative add is a caller bug, ignored. */
    if (!m || (m->fam->type == M_COUNTER && !(v >= 0)))
        return;
    m->value += v;
}

void agentd_metric_set(struct agentd_metric *m, double v)
{
    if (m && m->fam->type == M_GAUGE)
        m->value = v;
}

/* A growable string with a fixed ceiling. */
struct buf {
    char *p;
    size_t len, cap;
    bool failed;
};

#define RENDER_MAX (16u << 20)

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = cap > RENDER_MAX ? NULL : realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* HELP text escapes backslash and newline; label values also the quote. */
static void put_escaped(struct buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            puts_(b, "\\\\");
        else if (*s == '\n')
            puts_(b, "\\n");
        else if (quote && *s == '"')
            puts_(b, "\\\"");
        else
            put(b, s, 1);
    }
}

static void put_value(struct buf *b, double v)
{
    char num[64];

    if (isnan(v))
        snprintf(num, sizeof(num), "NaN");
    else if (isinf(v))
        snprintf(num, sizeof(num), "%s", v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(long long)v && (v < 0 ? -v : v) < 1e15)
        snprintf(num, sizeof(num), "%lld", (long long)v);
    else
        snprintf(num, sizeof(num), "%.17g", v);
    puts_(b, num);
}

char *agentd_metrics_render(struct agentd_plugin_ctx *ctx, size_t *ret_len)
{
    struct buf b = {0};

    puts_(&b, "");
    for (struct family *f = families; f; f = f->next) {
        puts_(&b, "# HELP ");
        puts_(&b, f->name);
        puts_(&b, " ");
        put_escaped(&b, f->help, false);
        puts_(&b, "\n# TYPE ");
        puts_(&b, f->name);
        puts_(&b, f->type == M_COUNTER ? " counter\n" : " gauge\n");
        for (struct agentd_metric *m = f->series; m; m = m->next) {
            puts_(&b, f->name);
            for (size_t i = 0; i < m->nlabels; i++) {
                puts_(&b, i == 0 ? "{" : ",");
                puts_(&b, m->labels[2 * i]);
                puts_(&b, "=\"");
                put_escaped(&b, m->labels[2 * i + 1], true);
                puts_(&b, "\"");
            }
            puts_(&b, m->nlabels ? "} " : " ");
            put_value(&b, m->value);
            puts_(&b, "\n");
        }
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (ret_len)
        *ret_len = b.len;
    return b.p;
}

void metrics_free(void)
{
    while (families) {
        struct family *f = families;
        families = f->next;
        while (f->series) {
            struct agentd_metric *m = f->series;
            f->series = m->next;
            for (size_t i = 0; i < 2 * m->nlabels; i++)
                free(m->labels[i]);
            free(m->labels);
            free(m);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    families_tail = &families;
    nfamilies = nseries = 0;
}

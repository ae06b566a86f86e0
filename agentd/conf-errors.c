/* Error collection for the config loader: every problem found while loading
 * and applying a configuration is kept, so one --check-config run shows them
 * all. Helper code never prints; the caller prints or returns the list. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf-internal.h"

/* A runaway config (or a fuzzer) must not grow the list without bound. */
#define MAX_ERRORS 1000

int agentd_err_set(struct agentd_err *err, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static void add_verbatim(struct config_errors *errs, const char *file, unsigned line, unsigned col,
                         const char *path, char *message)
{
    struct config_error *v, *e;

    if (errs->n >= MAX_ERRORS) {
        free(message);
        if (errs->n == MAX_ERRORS) {
            message = strdup("too many errors; giving up on the rest");
            if (!message)
                return;
            path = NULL;
            line = col = 0;
        } else {
            return;
        }
    }
    v = realloc(errs->v, (errs->n + 1) * sizeof(*v));
    if (!v) {
        free(message);
        return;
    }
    errs->v = v;
    e = &v[errs->n];
    e->file = strdup(file ? file : "");
    e->path = strdup(path ? path : "");
    e->message = message;
    e->line = line;
    e->col = col;
    if (!e->file || !e->path) {
        free(e->file);
        free(e->path);
        free(e->message);
        return;
    }
    errs->n++;
}

void config_errors_addv(struct config_errors *errs, const char *file, unsigned line, unsigned col,
                        const char *path, const char *fmt, va_list ap)
{
    char *msg = NULL;

    if (!errs)
        return;
    if (vasprintf(&msg, fmt, ap) < 0)
        return;
    add_verbatim(errs, file, line, col, path, msg);
}

void config_errors_add(struct config_errors *errs, const char *file, unsigned line, unsigned col,
                       const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_errors_addv(errs, file, line, col, path, fmt, ap);
    va_end(ap);
}

char *config_error_format(const struct config_error *e)
{
    char pos[48] = "";
    char *s = NULL;

    if (e->line)
        snprintf(pos, sizeof(pos), ":%u:%u", e->line, e->col);
    /* Errors about an absent section have no file: "aws.region: ...". */
    if (asprintf(&s, "%s%s%s%s%s%s", e->file, pos, e->file[0] ? ": " : "", e->path,
                 e->path[0] ? ": " : "", e->message) < 0)
        return NULL;
    return s;
}

void config_errors_print(const struct config_errors *errs, FILE *f)
{
    for (size_t i = 0; errs && i < errs->n; i++) {
        char *s = config_error_format(&errs->v[i]);

        if (s)
            fprintf(f, "%s\n", s);
        free(s);
    }
}

json_t *config_errors_json(const struct config_errors *errs)
{
    json_t *a = json_array();

    for (size_t i = 0; a && errs && i < errs->n; i++) {
        char *s = config_error_format(&errs->v[i]);

        if (s)
            json_array_append_new(a, json_string(s));
        free(s);
    }
    return a;
}

void config_errors_clear(struct config_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->v[i].file);
        free(errs->v[i].path);
        free(errs->v[i].message);
    }
    free(errs->v);
    errs->v = NULL;
    errs->n = 0;
}

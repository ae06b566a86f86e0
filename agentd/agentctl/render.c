/* The text views agentctl prints for people: any JSON reply rendered as
 * aligned "key: value" lines, arrays of flat objects as tables, and times as
 * local ISO 8601 with their age ("3 s ago"). The daemon's JSON stays the one
 * contract; this file only lays it out. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "render.h"

#define MAX_COLS 16

static bool is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Keys whose integer value is a wall-clock time: *_ms (milliseconds since
 * the epoch) and time, NAME_time and NAME_at (seconds). Small values are durations or
 * "never" and are printed as numbers. */
static bool format_time(const char *key, const json_t *v, char *buf, size_t len)
{
    json_int_t n = json_integer_value(v);
    time_t t, now = time(NULL);
    struct tm tm;
    char when[40];

    if (!json_is_integer(v) || !key)
        return false;
    if (ends_with(key, "_ms") && n > 1000000000000LL)
        t = (time_t)(n / 1000);
    else if ((strcmp(key, "time") == 0 || ends_with(key, "_time") || ends_with(key, "_at")) &&
             n > 1000000000LL)
        t = (time_t)n;
    else
        return false;
    if (!localtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm))
        return false;
    if (now >= t)
        snprintf(buf, len, "%s (%lld s ago)", when, (long long)(now - t));
    else
        snprintf(buf, len, "%s (in %lld s)", when, (long long)(t - now));
    return true;
}

void render_scalar(const char *key, const json_t *v, char *buf, size_t len)
{
    if (format_time(key, v, buf, len))
        return;
    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(buf, len, "%s", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, len, "%.3g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(buf, len, "yes");
        break;
    case JSON_FALSE:
        snprintf(buf, len, "no");
        break;
    case JSON_NULL:
        snprintf(buf, len, "-");
        break;
    default:
        snprintf(buf, len, "%s", json_is_array(v) ? "[]" : "{}");
    }
}

/* An array whose members are objects of scalars, all sharing at most
 * MAX_COLS keys: a table. */
static bool is_table(const json_t *arr)
{
    size_t i;
    json_t *o, *v;
    const char *k;

    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return false;
    json_array_foreach(arr, i, o)
    {
        if (!json_is_object(o) || json_object_size(o) > MAX_COLS)
            return false;
        json_object_foreach(o, k, v) if (!is_scalar(v)) return false;
    }
    return true;
}

static void print_table(FILE *f, const json_t *arr, int indent)
{
    const char *cols[MAX_COLS];
    size_t ncols = 0, width[MAX_COLS], i, c;
    json_t *o, *v;
    const char *k;
    char cell[512];

    json_array_foreach(arr, i, o) json_object_foreach(o, k, v)
    {
        for (c = 0; c < ncols && strcmp(cols[c], k) != 0; c++)
            ;
        if (c == ncols && ncols < MAX_COLS) {
            cols[ncols] = k;
            width[ncols++] = strlen(k);
        }
    }
    json_array_foreach(arr, i, o) for (c = 0; c < ncols; c++)
    {
        render_scalar(cols[c], json_object_get(o, cols[c]), cell, sizeof(cell));
        if (strlen(cell) > width[c])
            width[c] = strlen(cell);
    }
    fprintf(f, "%*s", indent, "");
    for (c = 0; c < ncols; c++) {
        for (const char *p = cols[c]; *p; p++)
            fputc(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, f);
        if (c + 1 < ncols)
            fprintf(f, "%*s", (int)(width[c] - strlen(cols[c]) + 2), "");
    }
    fputc('\n', f);
    json_array_foreach(arr, i, o)
    {
        fprintf(f, "%*s", indent, "");
        for (c = 0; c < ncols; c++) {
            render_scalar(cols[c], json_object_get(o, cols[c]), cell, sizeof(cell));
            if (c + 1 < ncols)
                fprintf(f, "%-*s  ", (int)width[c], cell);
            else
                fputs(cell, f);
        }
        fputc('\n', f);
    }
}

static void print_object(FILE *f, const json_t *o, int indent);

static void print_array(FILE *f, const json_t *arr, int indent)
{
    size_t i;
    json_t *v;
    char cell[512];

    if (is_table(arr)) {
        print_table(f, arr, indent);
        return;
    }
    json_array_foreach(arr, i, v)
    {
        if (json_is_object(v)) {
            /* Objects with a name are introduced by it; others by their index. */
            const char *name = json_string_value(json_object_get(v, "name"));
            if (name)
                fprintf(f, "%*s%s:\n", indent, "", name);
            else
                fprintf(f, "%*s[%zu]:\n", indent, "", i);
            print_object(f, v, indent + 2);
        } else if (json_is_array(v)) {
            fprintf(f, "%*s[%zu]:\n", indent, "", i);
            print_array(f, v, indent + 2);
        } else {
            render_scalar(NULL, v, cell, sizeof(cell));
            fprintf(f, "%*s- %s\n", indent, "", cell);
        }
    }
}

static void print_object(FILE *f, const json_t *o, int indent)
{
    const char *k;
    json_t *v;
    size_t w = 0;
    char cell[512];

    json_object_foreach((json_t *)o, k, v) if (is_scalar(v) && strlen(k) > w) w = strlen(k);
    /* Scalars first, aligned; then the nested parts, each under its key. */
    json_object_foreach((json_t *)o, k, v)
    {
        if (!is_scalar(v) || (json_is_string(v) && strcmp(k, "name") == 0 && indent > 0))
            continue;
        render_scalar(k, v, cell, sizeof(cell));
        fprintf(f, "%*s%s:%*s %s\n", indent, "", k, (int)(w - strlen(k)), "", cell);
    }
    json_object_foreach((json_t *)o, k, v)
    {
        if (is_scalar(v))
            continue;
        if (json_is_array(v) && json_array_size(v) == 0) {
            fprintf(f, "%*s%s: (none)\n", indent, "", k);
        } else if (json_is_object(v) && json_object_size(v) == 0) {
            fprintf(f, "%*s%s: (none)\n", indent, "", k);
        } else {
            fprintf(f, "%*s%s:\n", indent, "", k);
            if (json_is_array(v))
                print_array(f, v, indent + 2);
            else
                print_object(f, v, indent + 2);
        }
    }
}

void render_text(FILE *f, const json_t *v)
{
    char cell[4096];

    if (json_is_object(v))
        print_object(f, v, 0);
    else if (json_is_array(v))
        print_array(f, v, 0);
    else if (!json_is_null(v)) {
        render_scalar(NULL, v, cell, sizeof(cell));
        fprintf(f, "%s\n", cell);
    }
}

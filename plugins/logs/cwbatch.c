/* PutLogEvents batch selection and encoding. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cwbatch.h"

void cwb_default_limits(struct cw_limits *lim)
{
    lim->max_bytes = CW_MAX_BATCH_BYTES;
    lim->max_events = CW_MAX_BATCH_EVENTS;
    lim->max_span_ms = CW_MAX_SPAN_MS;
}

size_t cwb_select(const struct ev *head, size_t avail, const struct cw_limits *lim,
                  size_t *ret_bytes)
{
    size_t n = 0, bytes = 0;
    int64_t lo = 0, hi = 0;
    for (const struct ev *e = head; e && n < avail; e = e->next) {
        size_t cost = e->len + CW_EVENT_OVERHEAD;
        int64_t nlo = n ? (e->ts < lo ? e->ts : lo) : e->ts;
        int64_t nhi = n ? (e->ts > hi ? e->ts : hi) : e->ts;
        if (n > 0 && (n + 1 > lim->max_events || bytes + cost > lim->max_bytes ||
                      nhi - nlo >= lim->max_span_ms))
            break;
        lo = nlo;
        hi = nhi;
        bytes += cost;
        n++;
    }
    *ret_bytes = bytes;
    return n;
}

/* Stable merge sort on (ts); the common case, already in order, is one pass. */
static void merge(struct ev **a, struct ev **tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge(a, tmp, h);
    merge(a + h, tmp, n - h);
    if (a[h - 1]->ts <= a[h]->ts)
        return;
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = a[j]->ts < a[i]->ts ? a[j++] : a[i++];
    while (i < h)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof(*a));
}

void cwb_sort(struct ev **evs, size_t n)
{
    size_t i;
    for (i = 1; i < n && evs[i - 1]->ts <= evs[i]->ts; i++)
        ;
    if (i >= n)
        return;
    struct ev **tmp = malloc(n * sizeof(*tmp));
    if (!tmp) {
        /* Insertion sort needs no memory; slow but still correct. */
        for (size_t a = 1; a < n; a++)
            for (size_t b = a; b > 0 && evs[b - 1]->ts > evs[b]->ts; b--) {
                struct ev *t = evs[b];
                evs[b] = evs[b - 1];
                evs[b - 1] = t;
            }
        return;
    }
    merge(evs, tmp, n);
    free(tmp);
}

static const char hex[] = "0123456789abcdef";

/* Whether any of the eight bytes in w needs escaping in JSON: a control
 * character (< 0x20), '"' or '\\'. Bytes >= 0x80 (UTF-8) never do. */
static inline bool word_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t lt = (w - ones * 0x20) & ~w & high;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t eq = ((q - ones) & ~q & high) | ((b - ones) & ~b & high);
    return (lt | eq) != 0;
}

/* Length of the run of bytes from s that need no escaping. */
static size_t plain_run(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (word_special(w))
            break;
        i += 8;
    }
    while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

size_t json_escaped_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = 2, i = 0;
    while (i < n) {
        size_t k = plain_run(s + i, n - i);
        len += k;
        i += k;
        if (i >= n)
            break;
        unsigned c = s[i++];
        if (c == '"' || c == '\\' || c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f')
            len += 2;
        else
            len += 6;
    }
    return len;
}

size_t json_escape(const char *str, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)str;
    char *o = out;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t k = plain_run(s + i, n - i);
        memcpy(o, s + i, k);
        o += k;
        i += k;
        if (i >= n)
            break;
        unsigned c = s[i++];
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\t':
            *o++ = 't';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    return (size_t)(o - out);
}

/* Writes v in decimal; returns the digits written. */
static size_t put_i64(char *o, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0)
        o[k++] = '-';
    while (n)
        o[k++] = tmp[--n];
    return k;
}

int cwb_encode(const char *group, const char *stream, struct ev *const *evs, size_t n, char **buf,
               size_t *cap, size_t *ret_len)
{
    static const char p1[] = "{\"logGroupName\":", p2[] = ",\"logStreamName\":",
                      p3[] = ",\"logEvents\":[",
                      e1[] = "{\"timestamp\":", e2[] = ",\"message\":", tail[] = "]}";
    size_t gl = strlen(group), sl = strlen(stream);
    size_t need = sizeof(p1) + sizeof(p2) + sizeof(p3) + sizeof(tail) +
                  json_escaped_len(group, gl) + json_escaped_len(stream, sl);
    /* The escaped length of each message, kept so that the plain ones (the
     * usual case) are copied without a second scan. */
    uint32_t *elen = malloc((n ? n : 1) * sizeof(*elen));
    if (!elen)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t k = json_escaped_len(evs[i]->msg, evs[i]->len);
        elen[i] = (uint32_t)k;
        need += sizeof(e1) + sizeof(e2) + 24 + 2 + k;
    }
    if (need > *cap) {
        char *nb = realloc(*buf, need);
        if (!nb) {
            free(elen);
            return -ENOMEM;
        }
        *buf = nb;
        *cap = need;
    }
    char *o = *buf;
#define PUT(lit)                                                                                   \
    do {                                                                                           \
        memcpy(o, lit, sizeof(lit) - 1);                                                           \
        o += sizeof(lit) - 1;                                                                      \
    } while (0)
    PUT(p1);
    o += json_escape(group, gl, o);
    PUT(p2);
    o += json_escape(stream, sl, o);
    PUT(p3);
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        PUT(e1);
        o += put_i64(o, evs[i]->ts);
        PUT(e2);
        if (elen[i] == evs[i]->len + 2) {
            *o++ = '"';
            memcpy(o, evs[i]->msg, evs[i]->len);
            o += evs[i]->len;
            *o++ = '"';
        } else {
            o += json_escape(evs[i]->msg, evs[i]->len, o);
        }
        *o++ = '}';
    }
    PUT(tail);
#undef PUT
    free(elen);
    *ret_len = (size_t)(o - *buf);
    return 0;
}

void cwb_rejected(const char *body, size_t len, size_t n, size_t *too_new, size_t *too_old,
                  size_t *expired)
{
    *too_new = *too_old = *expired = 0;
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!root)
        return;
    json_t *info = json_object_get(root, "rejectedLogEventsInfo");
    json_t *v;
    /* Start index: that event and all after it; end indexes: up to and
     * including that event. Indexes beyond the batch are clamped. */
    if ((v = json_object_get(info, "tooNewLogEventStartIndex")) && json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i >= 0 && (size_t)i < n)
            *too_new = n - (size_t)i;
    }
    if ((v = json_object_get(info, "tooOldLogEventEndIndex")) && json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i >= 0)
            *too_old = (size_t)i + 1 < n ? (size_t)i + 1 : n;
    }
    if ((v = json_object_get(info, "expiredLogEventEndIndex")) && json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i >= 0)
            *expired = (size_t)i + 1 < n ? (size_t)i + 1 : n;
    }
    json_decref(root);
}

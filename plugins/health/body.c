/* Bodies and responses. The health body follows the IETF health-check draft
 * (draft-inadarei-api-health-check, media type application/health+json):
 * a top-level "status" and a "checks" object of arrays keyed by check name.
 * Everything here is pure so it can be tested and fuzzed without the host. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "health-int.h"

void sbuf_init(struct sbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void sbuf_free(struct sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static bool reserve(struct sbuf *b, size_t n)
{
    size_t want, cap;
    char *p;

    if (b->overflow || b->oom)
        return false;
    if (n > b->max - b->len) {
        b->overflow = true;
        return false;
    }
    want = b->len + n + 1;
    if (want <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sbuf_adds(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

void sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* Callers format numbers and short words only; a longer result is a bug
     * that shows as a cut value rather than an overflow. */
    sbuf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void sbuf_json_str(struct sbuf *b, const char *str, size_t max)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), i = 0;

    sbuf_add(b, "\"", 1);
    while (i < n) {
        size_t len = utf8_seq(s + i, n - i);
        unsigned char c = s[i];

        if (i + (len ? len : 1) > max) {
            sbuf_adds(b, "\xe2\x80\xa6"); /* the cut shows as an ellipsis */
            break;
        }
        if (len == 0) {
            sbuf_adds(b, "\xef\xbf\xbd");
            i++;
            continue;
        }
        if (len > 1) {
            sbuf_add(b, str + i, len);
        } else if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sbuf_add(b, e, 2);
        } else if (c == '\n') {
            sbuf_adds(b, "\\n");
        } else if (c == '\t') {
            sbuf_adds(b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            sbuf_addf(b, "\\u%04x", c);
        } else {
            sbuf_add(b, str + i, 1);
        }
        i += len;
    }
    sbuf_add(b, "\"", 1);
}

const char *body_status_name(enum agentd_health_status s)
{
    switch (s) {
    case AGENTD_HEALTH_PASS:
        return "pass";
    case AGENTD_HEALTH_WARN:
        return "warn";
    default:
        return "fail";
    }
}

static void add_time(struct sbuf *b, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];

    if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        sbuf_adds(b, "null");
        return;
    }
    sbuf_addf(b, "\"%s.%03uZ\"", buf, (unsigned)(ms % 1000));
}

int body_render(struct sbuf *b, const struct body_state *st, bool verbose)
{
    sbuf_adds(b, "{\"status\":");
    if (st->draining) {
        sbuf_adds(b, "\"draining\"");
        if (st->draining_reason && *st->draining_reason) {
            sbuf_adds(b, ",\"output\":");
            sbuf_json_str(b, st->draining_reason, BODY_OUTPUT_MAX);
        }
    } else {
        sbuf_addf(b, "\"%s\"", body_status_name(st->overall));
    }
    sbuf_adds(b, ",\"checks\":{");
    for (size_t i = 0; i < st->n; i++) {
        const struct agentd_health_info *c = &st->checks[i];

        if (i)
            sbuf_adds(b, ",");
        sbuf_json_str(b, c->name, 256);
        sbuf_addf(b, ":[{\"status\":\"%s\"", body_status_name(c->status));
        if (verbose) {
            sbuf_adds(b, ",\"componentType\":");
            sbuf_json_str(b, c->plugin ? c->plugin : "", 64);
            sbuf_addf(b, ",\"critical\":%s", c->critical ? "true" : "false");
            sbuf_adds(b, ",\"time\":");
            add_time(b, c->changed_ms);
            sbuf_adds(b, ",\"updated\":");
            add_time(b, c->updated_ms);
            sbuf_addf(b, ",\"observedValue\":%llu,\"observedUnit\":\"ms\"",
                      (unsigned long long)c->duration_ms);
            sbuf_adds(b, ",\"output\":");
            sbuf_json_str(b, c->output ? c->output : "", BODY_OUTPUT_MAX);
        }
        sbuf_adds(b, "}]");
    }
    sbuf_adds(b, "}}\n");
    if (b->oom)
        return -ENOMEM;
    if (b->overflow)
        return -E2BIG;
    return 0;
}

int body_http_status(const struct body_state *st, int fail_status)
{
    if (st->draining || st->overall == AGENTD_HEALTH_FAIL)
        return fail_status;
    return 200;
}

const char *response_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Error" : status >= 400 ? "Client Error" : "Status";
    }
}

void http_date(time_t t, char buf[static 30])
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    /* Formatted by hand: strftime's %a/%b follow the locale. */
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        snprintf(buf, 30, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    snprintf(buf, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday,
             mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

struct response *response_new(int status, const char *content_type, const char *date,
                              const char *extra_headers, const char *body, size_t body_len)
{
    char head[512];
    int n;
    struct response *r;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nServer: agentd\r\n%s%s%sContent-Type: %s\r\n"
                 "Content-Length: %zu\r\nCache-Control: no-store\r\n%s",
                 status, response_reason(status), date ? "Date: " : "", date ? date : "",
                 date ? "\r\n" : "", content_type, body_len, extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return NULL;
    r = malloc(sizeof(*r) + (size_t)n + 2 + body_len + 1);
    if (!r)
        return NULL;
    r->refs = 1;
    r->status = status;
    r->head_len = (size_t)n;
    r->len = (size_t)n + 2 + body_len;
    memcpy(r->data, head, (size_t)n);
    memcpy(r->data + n, "\r\n", 2);
    if (body_len)
        memcpy(r->data + n + 2, body, body_len);
    r->data[r->len] = '\0';
    return r;
}

struct response *response_ref(struct response *r)
{
    r->refs++;
    return r;
}

void response_unref(struct response *r)
{
    if (r && --r->refs == 0)
        free(r);
}

/* The request parser: http-parser in request mode, paused after each complete
 * message so the server answers pipelined requests one at a time and in order.
 * Only the request target is copied (bounded); header names and values are
 * counted, never stored, so a client cannot make memory grow. */
#include <string.h>

#include "health-int.h"

static struct request *req_of(http_parser *p)
{
    return p->data;
}

static int fail(struct request *r, int status)
{
    r->error_status = status;
    return -1; /* makes http-parser stop with HPE_CB_* */
}

/* Every line outside body data must end in CRLF and no line may begin with
 * a space or tab (an obsolete folded header). http-parser tolerates both;
 * a proxy or a load balancer in front of us may not read them the same
 * way, and that difference is what request smuggling is made of. */
static int scan_framing(struct request *r, const char *p, const char *end)
{
    for (; p < end; p++) {
        char ch = *p;

        if (r->line_start && (ch == ' ' || ch == '\t'))
            return -1;
        if (ch == '\n' && !r->prev_cr)
            return -1;
        r->line_start = ch == '\n';
        r->prev_cr = ch == '\r';
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct request *r = req_of(p);

    r->started = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct request *r = req_of(p);

    if (len > r->lim->max_url - r->url_len)
        return fail(r, 414);
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

static int count_header_bytes(struct request *r, size_t len)
{
    if (len > r->lim->max_header_bytes - r->header_bytes)
        return fail(r, 431);
    r->header_bytes += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct request *r = req_of(p);

    r->line_done = true;
    /* No whitespace may stand between a field name and its colon: a
     * proxy in front of us might read "Content-Length :" differently. */
    if (memchr(at, ' ', len) || memchr(at, '\t', len))
        return fail(r, 400);

    /* A field arrives in pieces across reads; a new one starts after a value. */
    if (r->in_value || r->nheaders == 0) {
        if (r->nheaders >= r->lim->max_headers)
            return fail(r, 431);
        r->nheaders++;
        r->in_value = false;
    }
    return count_header_bytes(r, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct request *r = req_of(p);

    r->in_value = true;
    return count_header_bytes(r, len);
}

static int on_headers_complete(http_parser *p)
{
    struct request *r = req_of(p);

    r->line_done = true;
    r->headers_done = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct request *r = req_of(p);

    if (scan_framing(r, r->scan_from, at) < 0)
        return fail(r, 400);
    r->scan_from = at + len;
    r->prev_cr = false;
    r->line_start = false;
    /* Bodies are read and dropped: neither GET nor HEAD has a use for one,
     * and the request timeout bounds how long a client may keep sending. */
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct request *r = req_of(p);

    r->method = p->method;
    r->http10 = p->http_major == 1 && p->http_minor == 0;
    /* After an Upgrade the byte stream is no longer HTTP: answer and close. */
    r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void reset(struct request *r)
{
    r->started = false;
    r->line_done = false;
    r->headers_done = false;
    r->in_value = false;
    r->keep_alive = false;
    r->http10 = false;
    r->error_status = 0;
    r->method = 0;
    r->nheaders = 0;
    r->header_bytes = 0;
    r->url_len = 0;
    r->url[0] = '\0';
}

void request_init(struct request *r, const struct request_limits *lim)
{
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    r->lim = lim;
    r->prev_cr = false;
    r->line_start = true;
    reset(r);
}

size_t request_feed(struct request *r, const char *data, size_t len, enum request_event *ret_event)
{
    size_t n;
    enum http_errno e;

    if (r->error_status) {
        *ret_event = REQUEST_ERROR;
        return 0;
    }
    r->scan_from = data;
    n = http_parser_execute(&r->parser, &settings, data, len);
    e = HTTP_PARSER_ERRNO(&r->parser);
    if (!r->error_status && scan_framing(r, r->scan_from, data + n) < 0)
        r->error_status = 400;
    if (r->error_status) {
        *ret_event = REQUEST_ERROR;
        return n;
    }
    if (e == HPE_PAUSED) {
        *ret_event = REQUEST_DONE;
        return n;
    }
    if (e != HPE_OK) {
        if (!r->error_status)
            r->error_status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
        *ret_event = REQUEST_ERROR;
        return n;
    }
    if (n < len) {
        /* http-parser stops early only after an Upgrade/CONNECT message,
         * which on_message_complete has already paused on; anything else
         * is a stream we cannot follow. */
        r->error_status = 400;
        *ret_event = REQUEST_ERROR;
        return n;
    }
    *ret_event = REQUEST_MORE;
    return n;
}

void request_next(struct request *r)
{
    http_parser_pause(&r->parser, 0);
    reset(r);
}

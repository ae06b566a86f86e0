/* The HTTP client every plugin uses: libcurl's multi-socket API driven by the
 * one libuv loop, after curl's docs/examples/multi-uv.c. curl tells us which
 * sockets to watch (on_socket) and when to call it back (on_timer_set); we
 * hand readiness and timeouts back with curl_multi_socket_action() and collect
 * finished transfers with curl_multi_info_read().
 *
 * One multi handle for the whole daemon, so connections to the same endpoint
 * are reused across plugins. It is created on first use with the caller's
 * loop. Helper code here does not log: every outcome reaches the caller. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "agentd/plugin.h"
#include "http-client.h"

#define DEFAULT_CONNECT_MS   5000
#define DEFAULT_TOTAL_MS     30000
#define DEFAULT_MAX_RESPONSE (8u * 1024 * 1024)
/* Response headers beyond these bounds are dropped, never buffered. */
#define MAX_HEADERS      100
#define MAX_HEADER_BYTES (32 * 1024)

struct client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t *timer; /* heap: closed asynchronously by shutdown */
    size_t active;
};

static struct client client;

/* One watched socket; freed in its close callback. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
};

struct agentd_http_call {
    struct agentd_plugin_ctx *ctx;
    CURL *easy;
    struct curl_slist *req_headers;
    agentd_http_done_fn done;
    void *ud;
    char *buf; /* response body, NUL-terminated */
    size_t len, cap, max;
    bool too_big;
    char *hdrs[MAX_HEADERS + 1]; /* "name: value", NULL-terminated */
    size_t nhdrs, hdr_bytes;
    char errbuf[CURL_ERROR_SIZE];
    bool in_done; /* done() is running: a cancel now is a no-op */
};

int http_client_errno(CURLcode code, long os_errno)
{
    switch (code) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        /* curl folds refused, unreachable and timed-out connects into one
         * code; the socket's errno tells them apart. */
        return os_errno > 0 ? -(int)os_errno : -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        return os_errno > 0 ? -(int)os_errno : -ECONNRESET;
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return -ECONNRESET;
    case CURLE_FILESIZE_EXCEEDED:
        return -EFBIG;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return -EINVAL;
    case CURLE_ABORTED_BY_CALLBACK:
        return -ECANCELED;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return -EKEYREJECTED;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return -EPROTO;
    default:
        return -EIO;
    }
}

size_t http_client_active(void)
{
    return client.active;
}

static void sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void check_done(void);

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *sk = h->data;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(client.multi, sk->fd, flags, &running);
    check_done();
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct sock *sk = socketp;
    int ev = 0;

    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            uv_poll_stop(&sk->poll);
            curl_multi_assign(client.multi, s, NULL);
            uv_close((uv_handle_t *)&sk->poll, sock_closed);
        }
        return 0;
    }
    if (!sk) {
        sk = calloc(1, sizeof(*sk));
        if (!sk)
            return -1;
        sk->fd = s;
        if (uv_poll_init_socket(client.loop, &sk->poll, s) < 0) {
            free(sk);
            return -1;
        }
        sk->poll.data = sk;
        curl_multi_assign(client.multi, s, sk);
    }
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    return uv_poll_start(&sk->poll, ev, on_poll) < 0 ? -1 : 0;
}

static void on_timeout(uv_timer_t *t)
{
    int running;

    curl_multi_socket_action(client.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    if (timeout_ms < 0)
        uv_timer_stop(client.timer);
    else
        uv_timer_start(client.timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static int client_init(uv_loop_t *loop)
{
    static bool global_done;

    if (client.multi)
        return client.loop == loop ? 0 : -EINVAL;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -ENOMEM;
        global_done = true;
    }
    client.timer = calloc(1, sizeof(*client.timer));
    if (!client.timer)
        return -ENOMEM;
    client.multi = curl_multi_init();
    if (!client.multi) {
        free(client.timer);
        client.timer = NULL;
        return -ENOMEM;
    }
    client.loop = loop;
    uv_timer_init(loop, client.timer);
    curl_multi_setopt(client.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(client.multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    /* Keep a few idle connections per endpoint for reuse, not unbounded. */
    curl_multi_setopt(client.multi, CURLMOPT_MAXCONNECTS, 32L);
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

void http_client_shutdown(void)
{
    if (!client.multi || client.active > 0)
        return;
    curl_multi_cleanup(client.multi);
    client.multi = NULL;
    uv_timer_stop(client.timer);
    uv_close((uv_handle_t *)client.timer, timer_closed);
    client.timer = NULL;
    client.loop = NULL;
}

static void call_free(struct agentd_http_call *call)
{
    if (call->easy)
        curl_easy_cleanup(call->easy);
    /* Request headers carry session and IMDS tokens: wipe them. */
    for (struct curl_slist *l = call->req_headers; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(call->req_headers);
    for (size_t i = 0; i < call->nhdrs; i++)
        free(call->hdrs[i]);
    free(call->buf);
    free(call);
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct agentd_http_call *call = ud;
    size_t len = size * n;

    if (len > call->max - call->len) {
        call->too_big = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    if (call->len + len + 1 > call->cap) {
        size_t cap = call->cap ? call->cap : 4096;
        while (cap < call->len + len + 1)
            cap *= 2;
        if (cap > call->max + 1)
            cap = call->max + 1;
        char *nb = realloc(call->buf, cap);
        if (!nb)
            return 0;
        call->buf = nb;
        call->cap = cap;
    }
    memcpy(call->buf + call->len, p, len);
    call->len += len;
    call->buf[call->len] = '\0';
    return len;
}

static void headers_clear(struct agentd_http_call *call)
{
    for (size_t i = 0; i < call->nhdrs; i++) {
        free(call->hdrs[i]);
        call->hdrs[i] = NULL;
    }
    call->nhdrs = 0;
    call->hdr_bytes = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct agentd_http_call *call = ud;
    size_t len = size * n, nlen, vstart, vend;
    const char *colon;
    char *h;

    /* A status line starts a new header block (after 100 Continue or a
     * proxy's CONNECT answer): only the final block counts. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        headers_clear(call);
        return len;
    }
    colon = memchr(p, ':', len);
    if (!colon || colon == p)
        return len;
    if (call->nhdrs >= MAX_HEADERS || call->hdr_bytes + len > MAX_HEADER_BYTES)
        return len;
    nlen = (size_t)(colon - p);
    vstart = nlen + 1;
    vend = len;
    while (vstart < vend && (p[vstart] == ' ' || p[vstart] == '\t'))
        vstart++;
    while (vend > vstart && (p[vend - 1] == '\r' || p[vend - 1] == '\n' || p[vend - 1] == ' ' ||
                             p[vend - 1] == '\t'))
        vend--;
    h = malloc(nlen + 2 + (vend - vstart) + 1);
    if (!h)
        return len;
    for (size_t i = 0; i < nlen; i++)
        h[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
    memcpy(h + nlen, ": ", 2);
    memcpy(h + nlen + 2, p + vstart, vend - vstart);
    h[nlen + 2 + vend - vstart] = '\0';
    call->hdrs[call->nhdrs++] = h;
    call->hdr_bytes += len;
    return len;
}

static void finish(struct agentd_http_call *call, CURLcode rc)
{
    struct agentd_http_response res = {0};
    curl_off_t total_us = 0;
    long status = 0, os_errno = 0;

    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME_T, &total_us);
    if (rc != CURLE_OK) {
        curl_easy_getinfo(call->easy, CURLINFO_OS_ERRNO, &os_errno);
        res.error = call->too_big ? -EFBIG : http_client_errno(rc, os_errno);
        if (call->too_big)
            res.error_message = "response larger than the allowed maximum";
        else
            res.error_message = call->errbuf[0] ? call->errbuf : curl_easy_strerror(rc);
    } else
        res.status = status;
    res.body = call->buf ? call->buf : "";
    res.body_len = call->len;
    res.headers = (const char *const *)call->hdrs;
    res.elapsed_ms = (uint64_t)total_us / 1000;

    curl_multi_remove_handle(client.multi, call->easy);
    client.active--;
    call->in_done = true;
    call->done(call->ctx, &res, call->ud);
    call_free(call);
}

static void check_done(void)
{
    CURLMsg *msg;
    int pending;

    while (client.multi && (msg = curl_multi_info_read(client.multi, &pending))) {
        struct agentd_http_call *call = NULL;
        CURLcode rc = msg->data.result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        if (call)
            finish(call, rc);
    }
}

static bool method_ok(const char *m)
{
    if (!*m || strlen(m) > 16)
        return false;
    for (; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    return true;
}

/* A header line must not smuggle a CR or LF (header injection). */
static bool header_ok(const char *h)
{
    return strchr(h, ':') && !strpbrk(h, "\r\n");
}

static bool has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; headers && headers[i]; i++)
        if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
            return true;
    return false;
}

static int set_options(struct agentd_http_call *call, const struct agentd_http_request *req)
{
    CURL *e = call->easy;
    struct curl_slist *l;
    bool with_body = strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;

    curl_easy_setopt(e, CURLOPT_URL, req->url);
    /* The path goes out exactly as the caller built (and signed) it: curl
     * would otherwise remove "/./" and "/../" segments on the wire. */
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "agentd/" PACKAGE_VERSION);
    curl_easy_setopt(
        e, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(req->connect_timeout_ms ? req->connect_timeout_ms : DEFAULT_CONNECT_MS));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     (long)(req->timeout_ms ? req->timeout_ms : DEFAULT_TOTAL_MS));
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max);
    /* An empty proxy string overrides the environment's proxies (IMDS). */
    if (req->no_proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, "");

    if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(req->method, "GET") == 0 && !req->body_len)
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else {
        with_body = true;
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body_len ? req->body : "") != CURLE_OK)
            return -ENOMEM;
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }

    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        if (!header_ok(req->headers[i]))
            return -EINVAL;
        l = curl_slist_append(call->req_headers, req->headers[i]);
        if (!l)
            return -ENOMEM;
        call->req_headers = l;
    }
    /* No 100-continue round trip, and no form Content-Type curl would
     * otherwise invent for a body the caller did not describe. */
    l = curl_slist_append(call->req_headers, "Expect:");
    if (!l)
        return -ENOMEM;
    call->req_headers = l;
    if (with_body && !has_header(req->headers, "Content-Type")) {
        l = curl_slist_append(call->req_headers, "Content-Type:");
        if (!l)
            return -ENOMEM;
        call->req_headers = l;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->req_headers);
    return 0;
}

int agentd_http_request(struct agentd_plugin_ctx *ctx, const struct agentd_http_request *req,
                        agentd_http_done_fn done, void *ud, struct agentd_http_call **ret)
{
    struct agentd_http_call *call;
    int r;

    if (!req || !req->method || !req->url || !done || !method_ok(req->method))
        return -EINVAL;
    if (req->body_len && !req->body)
        return -EINVAL;
    r = client_init(agentd_loop(ctx));
    if (r < 0)
        return r;
    call = calloc(1, sizeof(*call));
    if (!call)
        return -ENOMEM;
    call->ctx = ctx;
    call->done = done;
    call->ud = ud;
    call->max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
    call->easy = curl_easy_init();
    if (!call->easy) {
        r = -ENOMEM;
        goto fail;
    }
    r = set_options(call, req);
    if (r < 0)
        goto fail;
    if (curl_multi_add_handle(client.multi, call->easy) != CURLM_OK) {
        r = -ENOMEM;
        goto fail;
    }
    client.active++;
    if (ret)
        *ret = call;
    return 0;
fail:
    call_free(call);
    return r;
}

void agentd_http_cancel(struct agentd_http_call *call)
{
    if (!call || call->in_done)
        return;
    curl_multi_remove_handle(client.multi, call->easy);
    client.active--;
    call_free(call);
}

const char *agentd_http_header(const struct agentd_http_response *res, const char *name)
{
    size_t n;

    if (!res || !res->headers || !name)
        return NULL;
    n = strlen(name);
    for (size_t i = 0; res->headers[i]; i++)
        if (strncasecmp(res->headers[i], name, n) == 0 && res->headers[i][n] == ':')
            return res->headers[i] + n + (res->headers[i][n + 1] == ' ' ? 2 : 1);
    return NULL;
}

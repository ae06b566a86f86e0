/* SigV4 canonical forms: URI encoding, path normalisation, the query and
 * the headers, exactly as botocore builds them (auth.py). Split from
 * aws-sigv4.c, which hashes and signs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws-sigv4.h"

void sigv4_buf_put(struct sigv4_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sigv4_buf_puts(struct sigv4_buf *b, const char *s)
{
    sigv4_buf_put(b, s, strlen(s));
}

void sigv4_buf_putc(struct sigv4_buf *b, char c)
{
    sigv4_buf_put(b, &c, 1);
}

/* Returns the string (caller frees) or NULL if any append failed. */
char *sigv4_buf_take(struct sigv4_buf *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        b->p = NULL;
        return b->oom ? NULL : strdup("");
    }
    return b->p;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void put_encoded(struct sigv4_buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/'))
            sigv4_buf_putc(b, (char)c);
        else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sigv4_buf_put(b, e, 3);
        }
    }
}

char *sigv4_uri_encode(const char *s, size_t n, bool keep_slash)
{
    struct sigv4_buf b = {0};

    put_encoded(&b, s, n, keep_slash);
    return sigv4_buf_take(&b);
}

char *sigv4_wire_path(const char *path)
{
    struct sigv4_buf b = {0};

    for (size_t i = 0; path[i]; i++) {
        if (path[i] == '%' && hexval(path[i + 1]) >= 0 && hexval(path[i + 2]) >= 0) {
            sigv4_buf_put(&b, path + i, 3);
            i += 2;
        } else
            put_encoded(&b, path + i, 1, true);
    }
    return sigv4_buf_take(&b);
}

/* Decodes %XX escapes; an invalid escape stays literal ('%' then encodes as
 * %25), and '+' stays '+': we send the canonical form, so the server sees
 * exactly what we signed. */
static char *uri_decode(const char *s, size_t n, size_t *ret_len)
{
    char *out = malloc(n + 1);
    size_t j = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else
            out[j++] = s[i];
    }
    out[j] = '\0';
    *ret_len = j;
    return out;
}

/* botocore's remove_dot_segments: RFC 3986 5.2.4 plus empty segments
 * dropped, a trailing slash kept only if something is left. */
void sigv4_put_normalized_path(struct sigv4_buf *b, const char *path)
{
    size_t n = strlen(path), nseg = 0, cap = 16;
    const char **seg = NULL;
    size_t *seglen = NULL;

    if (n == 0) {
        sigv4_buf_putc(b, '/');
        return;
    }
    seg = malloc(cap * sizeof(*seg));
    seglen = malloc(cap * sizeof(*seglen));
    if (!seg || !seglen) {
        b->oom = true;
        goto out;
    }
    for (const char *p = path; p <= path + n;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 0 || (l == 1 && p[0] == '.')) {
            /* empty or "." segment: dropped */
        } else if (l == 2 && p[0] == '.' && p[1] == '.') {
            if (nseg)
                nseg--;
        } else {
            if (nseg == cap) {
                cap *= 2;
                const char **ns = realloc(seg, cap * sizeof(*seg));
                if (ns)
                    seg = ns;
                size_t *nl = realloc(seglen, cap * sizeof(*seglen));
                if (nl)
                    seglen = nl;
                if (!ns || !nl) {
                    b->oom = true;
                    goto out;
                }
            }
            seg[nseg] = p;
            seglen[nseg++] = l;
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (path[0] == '/')
        sigv4_buf_putc(b, '/');
    for (size_t i = 0; i < nseg; i++) {
        if (i)
            sigv4_buf_putc(b, '/');
        put_encoded(b, seg[i], seglen[i], false);
    }
    if (path[n - 1] == '/' && nseg)
        sigv4_buf_putc(b, '/');
out:
    free(seg);
    free(seglen);
}

struct pair {
    char *k, *v;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->k, y->k);

    return c ? c : strcmp(x->v, y->v);
}

char *sigv4_canonical_query(const char *q)
{
    struct pair *pairs = NULL;
    size_t n = 0, cap = 0;
    struct sigv4_buf b = {0};
    char *out = NULL;

    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t l = amp ? (size_t)(amp - p) : strlen(p);
        if (l > 0) {
            const char *eq = memchr(p, '=', l);
            size_t kl = eq ? (size_t)(eq - p) : l, dl;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                struct pair *np = realloc(pairs, cap * sizeof(*pairs));
                if (!np)
                    goto out;
                pairs = np;
            }
            char *dk = uri_decode(p, kl, &dl);
            pairs[n].k = dk ? sigv4_uri_encode(dk, dl, false) : NULL;
            free(dk);
            char *dv = eq ? uri_decode(eq + 1, l - kl - 1, &dl) : strdup("");
            if (!eq)
                dl = 0;
            pairs[n].v = dv ? sigv4_uri_encode(dv, dl, false) : NULL;
            free(dv);
            n++;
            if (!pairs[n - 1].k || !pairs[n - 1].v)
                goto out;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    if (n)
        qsort(pairs, n, sizeof(*pairs), pair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sigv4_buf_putc(&b, '&');
        sigv4_buf_puts(&b, pairs[i].k);
        sigv4_buf_putc(&b, '=');
        sigv4_buf_puts(&b, pairs[i].v);
    }
    out = sigv4_buf_take(&b);
    b.p = NULL;
out:
    for (size_t i = 0; i < n; i++) {
        free(pairs[i].k);
        free(pairs[i].v);
    }
    free(pairs);
    free(b.p);
    return out;
}

static int hdr_cmp(const void *a, const void *b)
{
    const struct sigv4_hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Python's str.split() whitespace, restricted to ASCII (botocore folds
 * values with ' '.join(value.split())). */
static bool fold_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static char *fold_value(const char *v)
{
    struct sigv4_buf b = {0};
    bool pending = false;

    for (; *v; v++) {
        if (fold_space((unsigned char)*v)) {
            pending = b.len > 0;
            continue;
        }
        if (pending)
            sigv4_buf_putc(&b, ' ');
        pending = false;
        sigv4_buf_putc(&b, *v);
    }
    return sigv4_buf_take(&b);
}

static bool skipped_header(const char *name, bool content_sha256)
{
    static const char *const never[] = {"authorization", "x-amz-date", "x-amz-security-token",
                                        "user-agent",    "expect",     "x-amzn-trace-id"};

    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        if (strcmp(name, never[i]) == 0)
            return true;
    return content_sha256 && strcmp(name, "x-amz-content-sha256") == 0;
}

static int hdr_add(struct sigv4_hdr **hs, size_t *n, size_t *cap, const char *name, size_t nl,
                   const char *value)
{
    struct sigv4_hdr *h;

    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        struct sigv4_hdr *nh = realloc(*hs, c * sizeof(**hs));
        if (!nh)
            return -ENOMEM;
        *hs = nh;
        *cap = c;
    }
    h = &(*hs)[*n];
    h->name = strndup(name, nl);
    h->value = fold_value(value);
    h->idx = *n;
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return -ENOMEM;
    }
    for (char *p = h->name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    (*n)++;
    return 0;
}

int sigv4_collect_headers(const struct sigv4_request *req,
                          const struct agentd_aws_credentials *creds, const char *amz_date,
                          const char *payload_hash, struct sigv4_hdr **ret, size_t *ret_n)
{
    struct sigv4_hdr *hs = NULL;
    size_t n = 0, cap = 0;
    bool host = false;
    int r = 0;

    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        const char *line = req->headers[i], *colon = strchr(line, ':');
        char lname[64];
        size_t nl;

        if (!colon || colon == line) {
            r = -EINVAL;
            goto fail;
        }
        nl = (size_t)(colon - line);
        if (nl < sizeof(lname)) {
            for (size_t j = 0; j < nl; j++)
                lname[j] = (char)((line[j] >= 'A' && line[j] <= 'Z') ? line[j] + 32 : line[j]);
            lname[nl] = '\0';
            if (skipped_header(lname, req->content_sha256))
                continue;
            if (strcmp(lname, "host") == 0)
                host = true;
        }
        r = hdr_add(&hs, &n, &cap, line, nl, colon + 1);
        if (r < 0)
            goto fail;
    }
    if (!host) {
        r = -EINVAL;
        goto fail;
    }
    r = hdr_add(&hs, &n, &cap, "x-amz-date", 10, amz_date);
    if (r >= 0 && creds->session_token && *creds->session_token)
        r = hdr_add(&hs, &n, &cap, "x-amz-security-token", 20, creds->session_token);
    if (r >= 0 && req->content_sha256)
        r = hdr_add(&hs, &n, &cap, "x-amz-content-sha256", 20, payload_hash);
    if (r < 0)
        goto fail;
    qsort(hs, n, sizeof(*hs), hdr_cmp);
    *ret = hs;
    *ret_n = n;
    return 0;
fail:
    for (size_t i = 0; i < n; i++) {
        free(hs[i].name);
        free(hs[i].value);
    }
    free(hs);
    return r;
}

void sigv4_headers_free(struct sigv4_hdr *hs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(hs[i].name);
        free(hs[i].value);
    }
    free(hs);
}

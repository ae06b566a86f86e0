/* AWS Signature Version 4, header signing.
 *
 * Our own signer because libcurl 7.88's CURLOPT_AWS_SIGV4 neither sorts nor
 * encodes the query, hashes only POSTFIELDS bodies, lacks session tokens and
 * orders same-prefix headers wrongly. The canonical form follows botocore
 * (auth.py, SigV4Auth and S3SigV4Auth) exactly; the differential test
 * (tests/integration/test_aws_sigv4_diff.py) holds us to that. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "aws-sigv4.h"

/* A growable string; allocation failure is sticky and checked once. */
struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void buf_put(struct buf *b, const char *s, size_t n)
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

static void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_putc(struct buf *b, char c)
{
    buf_put(b, &c, 1);
}

/* Returns the string (caller frees) or NULL if any append failed. */
static char *buf_take(struct buf *b)
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

static void put_encoded(struct buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/'))
            buf_putc(b, (char)c);
        else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_put(b, e, 3);
        }
    }
}

char *sigv4_uri_encode(const char *s, size_t n, bool keep_slash)
{
    struct buf b = {0};

    put_encoded(&b, s, n, keep_slash);
    return buf_take(&b);
}

char *sigv4_wire_path(const char *path)
{
    struct buf b = {0};

    for (size_t i = 0; path[i]; i++) {
        if (path[i] == '%' && hexval(path[i + 1]) >= 0 && hexval(path[i + 2]) >= 0) {
            buf_put(&b, path + i, 3);
            i += 2;
        } else
            put_encoded(&b, path + i, 1, true);
    }
    return buf_take(&b);
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
static void put_normalized_path(struct buf *b, const char *path)
{
    size_t n = strlen(path), nseg = 0, cap = 16;
    const char **seg = NULL;
    size_t *seglen = NULL;

    if (n == 0) {
        buf_putc(b, '/');
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
        buf_putc(b, '/');
    for (size_t i = 0; i < nseg; i++) {
        if (i)
            buf_putc(b, '/');
        put_encoded(b, seg[i], seglen[i], false);
    }
    if (path[n - 1] == '/' && nseg)
        buf_putc(b, '/');
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

static char *canonical_query(const char *q)
{
    struct pair *pairs = NULL;
    size_t n = 0, cap = 0;
    struct buf b = {0};
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
            buf_putc(&b, '&');
        buf_puts(&b, pairs[i].k);
        buf_putc(&b, '=');
        buf_puts(&b, pairs[i].v);
    }
    out = buf_take(&b);
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

struct hdr {
    char *name;  /* lowercase */
    char *value; /* trimmed, whitespace runs folded to one space */
    size_t idx;
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
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
    struct buf b = {0};
    bool pending = false;

    for (; *v; v++) {
        if (fold_space((unsigned char)*v)) {
            pending = b.len > 0;
            continue;
        }
        if (pending)
            buf_putc(&b, ' ');
        pending = false;
        buf_putc(&b, *v);
    }
    return buf_take(&b);
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

static int hdr_add(struct hdr **hs, size_t *n, size_t *cap, const char *name, size_t nl,
                   const char *value)
{
    struct hdr *h;

    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        struct hdr *nh = realloc(*hs, c * sizeof(**hs));
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

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];

    SHA256(data, n, d);
    to_hex(d, sizeof(d), out);
}

static int hmac(const void *key, size_t keylen, const char *data, unsigned char out[32])
{
    unsigned int len = 32;

    return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, strlen(data), out,
                &len)
               ? 0
               : -ENOMEM;
}

/* Signing keys change once a day per region and service; deriving one costs
 * four HMACs, so keep the last few. Entries hold a hash of the secret, not
 * the secret, and are zeroed when replaced. */
#define KEY_CACHE 8

struct key_entry {
    bool used;
    uint64_t stamp;
    char date[9];
    char region[64];
    char service[64];
    unsigned char secret_fp[32];
    unsigned char key[32];
};

static struct key_entry key_cache[KEY_CACHE];
static uint64_t key_clock;

void sigv4_cache_clear(void)
{
    OPENSSL_cleanse(key_cache, sizeof(key_cache));
}

static int signing_key(const char *secret, const char *date, const char *region,
                       const char *service, unsigned char out[32])
{
    unsigned char fp[32], k1[32], k2[32], k3[32];
    struct key_entry *slot = &key_cache[0];
    size_t klen = strlen(secret) + 5;
    char *k0;
    int r;

    SHA256((const unsigned char *)secret, strlen(secret), fp);
    for (size_t i = 0; i < KEY_CACHE; i++) {
        struct key_entry *e = &key_cache[i];
        if (e->used && strcmp(e->date, date) == 0 && strcmp(e->region, region) == 0 &&
            strcmp(e->service, service) == 0 && CRYPTO_memcmp(e->secret_fp, fp, 32) == 0) {
            e->stamp = ++key_clock;
            memcpy(out, e->key, 32);
            return 0;
        }
        if (!e->used || e->stamp < slot->stamp)
            slot = e;
    }
    k0 = malloc(klen + 1);
    if (!k0)
        return -ENOMEM;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, klen - 4);
    r = hmac(k0, klen - 1, date, k1);
    if (r >= 0)
        r = hmac(k1, 32, region, k2);
    if (r >= 0)
        r = hmac(k2, 32, service, k3);
    if (r >= 0)
        r = hmac(k3, 32, "aws4_request", out);
    OPENSSL_cleanse(k0, klen + 1);
    free(k0);
    OPENSSL_cleanse(k1, 32);
    OPENSSL_cleanse(k2, 32);
    OPENSSL_cleanse(k3, 32);
    if (r < 0)
        return r;
    /* Only names that fit are cached; longer ones are derived every time. */
    if (strlen(region) < sizeof(slot->region) && strlen(service) < sizeof(slot->service)) {
        OPENSSL_cleanse(slot, sizeof(*slot));
        slot->used = true;
        slot->stamp = ++key_clock;
        memcpy(slot->date, date, 9);
        memcpy(slot->region, region, strlen(region) + 1);
        memcpy(slot->service, service, strlen(service) + 1);
        memcpy(slot->secret_fp, fp, 32);
        memcpy(slot->key, out, 32);
    }
    return 0;
}

void sigv4_result_free(struct sigv4_result *r)
{
    if (!r)
        return;
    free(r->canonical_query);
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->authorization);
    memset(r, 0, sizeof(*r));
}

static int collect_headers(const struct sigv4_request *req,
                           const struct agentd_aws_credentials *creds,
                           const struct sigv4_result *res, struct hdr **ret, size_t *ret_n)
{
    struct hdr *hs = NULL;
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
    r = hdr_add(&hs, &n, &cap, "x-amz-date", 10, res->amz_date);
    if (r >= 0 && creds->session_token && *creds->session_token)
        r = hdr_add(&hs, &n, &cap, "x-amz-security-token", 20, creds->session_token);
    if (r >= 0 && req->content_sha256)
        r = hdr_add(&hs, &n, &cap, "x-amz-content-sha256", 20, res->payload_hash);
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

int sigv4_sign(const struct sigv4_request *req, const struct agentd_aws_credentials *creds,
               struct sigv4_result *ret)
{
    struct sigv4_result res = {0};
    struct buf cr = {0}, sh = {0}, sts = {0}, auth = {0};
    struct hdr *hs = NULL;
    size_t nh = 0;
    char date[9], cr_hash[65], sig_hex[65];
    unsigned char key[32], sig[32];
    struct tm tm;
    time_t t = (time_t)req->now;
    int r;

    if (!req->method || !req->path || !req->service || !req->region || !creds ||
        !creds->access_key_id || !creds->secret_access_key)
        return -EINVAL;
    if (!gmtime_r(&t, &tm) || strftime(res.amz_date, sizeof(res.amz_date), "%Y%m%dT%H%M%SZ", &tm) !=
                                  sizeof(res.amz_date) - 1)
        return -EINVAL;
    memcpy(date, res.amz_date, 8);
    date[8] = '\0';
    if (req->payload_hash) {
        if (strlen(req->payload_hash) >= sizeof(res.payload_hash))
            return -EINVAL;
        memcpy(res.payload_hash, req->payload_hash, strlen(req->payload_hash) + 1);
    } else
        sha256_hex(req->body_len ? req->body : "", req->body_len, res.payload_hash);

    r = collect_headers(req, creds, &res, &hs, &nh);
    if (r < 0)
        return r;
    res.canonical_query = canonical_query(req->query);
    if (!res.canonical_query) {
        r = -ENOMEM;
        goto out;
    }

    buf_puts(&cr, req->method);
    buf_putc(&cr, '\n');
    if (req->s3_path)
        buf_puts(&cr, req->path);
    else
        put_normalized_path(&cr, req->path);
    buf_putc(&cr, '\n');
    buf_puts(&cr, res.canonical_query);
    buf_putc(&cr, '\n');
    for (size_t i = 0; i < nh; i++) {
        bool dup = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
        if (dup)
            buf_putc(&cr, ',');
        else {
            if (i > 0) {
                buf_putc(&cr, '\n');
                buf_putc(&sh, ';');
            }
            buf_puts(&cr, hs[i].name);
            buf_putc(&cr, ':');
            buf_puts(&sh, hs[i].name);
        }
        buf_puts(&cr, hs[i].value);
    }
    buf_puts(&cr, "\n\n");
    buf_put(&cr, sh.p ? sh.p : "", sh.len);
    buf_putc(&cr, '\n');
    buf_puts(&cr, res.payload_hash);
    res.canonical_request = buf_take(&cr);
    if (!res.canonical_request || sh.oom) {
        r = -ENOMEM;
        goto out;
    }

    sha256_hex(res.canonical_request, strlen(res.canonical_request), cr_hash);
    buf_puts(&sts, "AWS4-HMAC-SHA256\n");
    buf_puts(&sts, res.amz_date);
    buf_putc(&sts, '\n');
    buf_puts(&sts, date);
    buf_putc(&sts, '/');
    buf_puts(&sts, req->region);
    buf_putc(&sts, '/');
    buf_puts(&sts, req->service);
    buf_puts(&sts, "/aws4_request\n");
    buf_puts(&sts, cr_hash);
    res.string_to_sign = buf_take(&sts);
    if (!res.string_to_sign) {
        r = -ENOMEM;
        goto out;
    }

    r = signing_key(creds->secret_access_key, date, req->region, req->service, key);
    if (r < 0)
        goto out;
    r = hmac(key, 32, res.string_to_sign, sig);
    OPENSSL_cleanse(key, sizeof(key));
    if (r < 0)
        goto out;
    to_hex(sig, 32, sig_hex);

    buf_puts(&auth, "AWS4-HMAC-SHA256 Credential=");
    buf_puts(&auth, creds->access_key_id);
    buf_putc(&auth, '/');
    buf_puts(&auth, date);
    buf_putc(&auth, '/');
    buf_puts(&auth, req->region);
    buf_putc(&auth, '/');
    buf_puts(&auth, req->service);
    buf_puts(&auth, "/aws4_request, SignedHeaders=");
    buf_put(&auth, sh.p ? sh.p : "", sh.len);
    buf_puts(&auth, ", Signature=");
    buf_puts(&auth, sig_hex);
    res.authorization = buf_take(&auth);
    if (!res.authorization) {
        r = -ENOMEM;
        goto out;
    }
    *ret = res;
    memset(&res, 0, sizeof(res));
    r = 0;
out:
    for (size_t i = 0; i < nh; i++) {
        free(hs[i].name);
        free(hs[i].value);
    }
    free(hs);
    free(sh.p);
    sigv4_result_free(&res);
    return r;
}

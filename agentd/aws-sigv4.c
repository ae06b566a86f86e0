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

int sigv4_sign(const struct sigv4_request *req, const struct agentd_aws_credentials *creds,
               struct sigv4_result *ret)
{
    struct sigv4_result res = {0};
    struct sigv4_buf cr = {0}, sh = {0}, sts = {0}, auth = {0};
    struct sigv4_hdr *hs = NULL;
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

    r = sigv4_collect_headers(req, creds, res.amz_date, res.payload_hash, &hs, &nh);
    if (r < 0)
        return r;
    res.canonical_query = sigv4_canonical_query(req->query);
    if (!res.canonical_query) {
        r = -ENOMEM;
        goto out;
    }

    sigv4_buf_puts(&cr, req->method);
    sigv4_buf_putc(&cr, '\n');
    if (req->s3_path)
        sigv4_buf_puts(&cr, req->path);
    else
        sigv4_put_normalized_path(&cr, req->path);
    sigv4_buf_putc(&cr, '\n');
    sigv4_buf_puts(&cr, res.canonical_query);
    sigv4_buf_putc(&cr, '\n');
    for (size_t i = 0; i < nh; i++) {
        bool dup = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
        if (dup)
            sigv4_buf_putc(&cr, ',');
        else {
            if (i > 0) {
                sigv4_buf_putc(&cr, '\n');
                sigv4_buf_putc(&sh, ';');
            }
            sigv4_buf_puts(&cr, hs[i].name);
            sigv4_buf_putc(&cr, ':');
            sigv4_buf_puts(&sh, hs[i].name);
        }
        sigv4_buf_puts(&cr, hs[i].value);
    }
    sigv4_buf_puts(&cr, "\n\n");
    sigv4_buf_put(&cr, sh.p ? sh.p : "", sh.len);
    sigv4_buf_putc(&cr, '\n');
    sigv4_buf_puts(&cr, res.payload_hash);
    res.canonical_request = sigv4_buf_take(&cr);
    if (!res.canonical_request || sh.oom) {
        r = -ENOMEM;
        goto out;
    }

    sha256_hex(res.canonical_request, strlen(res.canonical_request), cr_hash);
    sigv4_buf_puts(&sts, "AWS4-HMAC-SHA256\n");
    sigv4_buf_puts(&sts, res.amz_date);
    sigv4_buf_putc(&sts, '\n');
    sigv4_buf_puts(&sts, date);
    sigv4_buf_putc(&sts, '/');
    sigv4_buf_puts(&sts, req->region);
    sigv4_buf_putc(&sts, '/');
    sigv4_buf_puts(&sts, req->service);
    sigv4_buf_puts(&sts, "/aws4_request\n");
    sigv4_buf_puts(&sts, cr_hash);
    res.string_to_sign = sigv4_buf_take(&sts);
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

    sigv4_buf_puts(&auth, "AWS4-HMAC-SHA256 Credential=");
    sigv4_buf_puts(&auth, creds->access_key_id);
    sigv4_buf_putc(&auth, '/');
    sigv4_buf_puts(&auth, date);
    sigv4_buf_putc(&auth, '/');
    sigv4_buf_puts(&auth, req->region);
    sigv4_buf_putc(&auth, '/');
    sigv4_buf_puts(&auth, req->service);
    sigv4_buf_puts(&auth, "/aws4_request, SignedHeaders=");
    sigv4_buf_put(&auth, sh.p ? sh.p : "", sh.len);
    sigv4_buf_puts(&auth, ", Signature=");
    sigv4_buf_puts(&auth, sig_hex);
    res.authorization = sigv4_buf_take(&auth);
    if (!res.authorization) {
        r = -ENOMEM;
        goto out;
    }
    *ret = res;
    memset(&res, 0, sizeof(res));
    r = 0;
out:
    sigv4_headers_free(hs, nh);
    free(sh.p);
    sigv4_result_free(&res);
    return r;
}

/* Pure helpers of the imds plugin: endpoint choice, path escaping, time
 * parsing and backoff. No host calls, so unit tests link this file alone. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imds.h"

static int strip_base(const char *url, char **ret, const char **ret_bad)
{
    size_t n = strlen(url);

    /* IMDS is plain http on a link-local address; https would need a
     * certificate IMDS does not have, so only http:// is accepted. */
    if (strncmp(url, "http://", 7) != 0 || n <= 7) {
        *ret_bad = "the IMDS endpoint must be an http:// URL";
        return -EINVAL;
    }
    while (n > 7 && url[n - 1] == '/')
        n--;
    char *s = strndup(url, n);
    if (!s)
        return -ENOMEM;
    *ret = s;
    return 0;
}

int imds_endpoint_resolve(const char *option, int mode, const char *(*getenv_fn)(const char *name),
                          char **ret, const char **ret_bad)
{
    const char *bad = NULL;
    if (option && *option)
        return strip_base(option, ret, ret_bad);
    const char *env = getenv_fn("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (env && *env)
        return strip_base(env, ret, ret_bad);
    if (mode == IMDS_MODE_AUTO) {
        const char *m = getenv_fn("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        mode = IMDS_MODE_IPV4;
        if (m && *m) {
            if (strcasecmp(m, "ipv6") == 0)
                mode = IMDS_MODE_IPV6;
            else if (strcasecmp(m, "ipv4") != 0)
                bad = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE must be IPv4 or IPv6";
        }
    }
    if (bad) {
        *ret_bad = bad;
        return -EINVAL;
    }
    char *s = strdup(mode == IMDS_MODE_IPV6 ? IMDS_ENDPOINT_V6 : IMDS_ENDPOINT_V4);
    if (!s)
        return -ENOMEM;
    *ret = s;
    return 0;
}

bool imds_endpoint_is_local(const char *url)
{
    static const uint8_t imds6[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                      0,    0,    0,    0,    0, 0, 0x02, 0x54};
    char host[64];
    const char *h, *end;
    struct in_addr a4;
    struct in6_addr a6;

    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    h = url + 7;
    if (*h == '[') {
        h++;
        end = strchr(h, ']');
    } else {
        end = h + strcspn(h, ":/?#");
    }
    if (!end || (size_t)(end - h) >= sizeof(host))
        return false;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        uint32_t a = ntohl(a4.s_addr);
        return (a >> 24) == 127 || (a >> 16) == 0xa9fe;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_LINKLOCAL(&a6) ||
               memcmp(a6.s6_addr, imds6, 16) == 0;
    return false;
}

bool imds_env_disabled(const char *value)
{
    return value && strcasecmp(value, "true") == 0;
}

int imds_path_escape(const char *seg, char **ret)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(seg);
    char *out = malloc(n * 3 + 1);
    if (!out)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)seg[i];
        /* RFC 3986 pchar stays as is: tag keys such as
         * aws:cloudformation:stack-name keep their colons. */
        if (isalnum(c) || strchr("-._~!$&'()*+,;=:@", c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    *ret = out;
    return 0;
}

static int digits(const char *s, int n, int *ret)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *ret = v;
    return 0;
}

int imds_parse_time(const char *s, int64_t *ret)
{
    int Y, M, D, h, m, sec;

    if (!s || strlen(s) < 20)
        return -EINVAL;
    if (digits(s, 4, &Y) < 0 || s[4] != '-' || digits(s + 5, 2, &M) < 0 || s[7] != '-' ||
        digits(s + 8, 2, &D) < 0 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) < 0 || s[13] != ':' || digits(s + 14, 2, &m) < 0 || s[16] != ':' ||
        digits(s + 17, 2, &sec) < 0)
        return -EINVAL;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (!((strcmp(p, "Z") == 0 || strcmp(p, "z") == 0 || strcmp(p, "+00:00") == 0)))
        return -EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -EINVAL;
    struct tm tm = {
        .tm_year = Y - 1900,
        .tm_mon = M - 1,
        .tm_mday = D,
        .tm_hour = h,
        .tm_min = m,
        .tm_sec = sec,
    };
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *ret = (int64_t)t;
    return 0;
}

uint64_t imds_backoff_ms(unsigned n, uint64_t base, uint64_t cap, uint32_t rnd)
{
    uint64_t d = base;
    for (unsigned i = 0; i < n && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    /* Jitter spreads a fleet's retries so a recovering IMDS (throttled per
     * instance, but also the host's) is not hit in lockstep. */
    return d + (d / 2) * rnd / ((uint64_t)UINT32_MAX + 1);
}

/* Scalar parsers (durations, sizes, booleans, integers, CIDRs, host:port,
 * URLs) and the CIDR and host:port helpers of the plugin ABI. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf.h"
#include "conf-internal.h"

/* Reads a run of decimal digits; 0 or -EINVAL (none, or overflow). */
static int read_digits(const char **s, uint64_t *ret)
{
    const char *p = *s;
    uint64_t v = 0;

    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
            return -EINVAL;
    }
    *s = p;
    *ret = v;
    return 0;
}

int config_parse_duration(const char *s, uint64_t *ret_ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    uint64_t total = 0;

    if (!s || !*s)
        return -EINVAL;
    while (*s) {
        uint64_t v, part;
        size_t i;

        if (read_digits(&s, &v) < 0)
            return -EINVAL;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);

            /* "m" must not swallow the "m" of "ms". */
            if (!strncmp(s, units[i].unit, ul) && !isalpha((unsigned char)s[ul]))
                break;
        }
        if (i == sizeof(units) / sizeof(units[0]))
            return -EINVAL;
        s += strlen(units[i].unit);
        if (__builtin_mul_overflow(v, units[i].ms, &part) ||
            __builtin_add_overflow(total, part, &total))
            return -EINVAL;
    }
    *ret_ms = total;
    return 0;
}

int config_parse_size(const char *s, uint64_t *ret_bytes)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", 1024ULL},
        {"MiB", 1024ULL * 1024},
        {"GiB", 1024ULL * 1024 * 1024},
        {"TiB", 1024ULL * 1024 * 1024 * 1024},
        {"KB", 1000ULL},
        {"kB", 1000ULL},
        {"MB", 1000ULL * 1000},
        {"GB", 1000ULL * 1000 * 1000},
        {"TB", 1000ULL * 1000 * 1000 * 1000},
    };
    uint64_t v;

    if (!s || read_digits(&s, &v) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (!strcmp(s, units[i].unit)) {
            if (__builtin_mul_overflow(v, units[i].mult, &v))
                return -EINVAL;
            *ret_bytes = v;
            return 0;
        }
    }
    return -EINVAL;
}

int config_parse_bool(const char *s, bool *ret)
{
    /* YAML 1.1's words, in the three spellings it allows. */
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!strcmp(s, yes[i])) {
            *ret = true;
            return 0;
        }
        if (!strcmp(s, no[i])) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

int config_parse_int(const char *s, int64_t *ret)
{
    bool neg = false;
    uint64_t v;

    if (!s)
        return -EINVAL;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (read_digits(&s, &v) < 0 || *s)
        return -EINVAL;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -EINVAL;
        *ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -EINVAL;
        *ret = (int64_t)v;
    }
    return 0;
}

int config_parse_cidr(const char *s, struct agentd_cidr *ret)
{
    struct agentd_cidr c = {0};
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash;
    size_t alen;
    unsigned maxp;

    if (!s)
        return -EINVAL;
    slash = strchr(s, '/');
    alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(addr))
        return -EINVAL;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, c.addr) == 1) {
        c.family = AF_INET;
        maxp = 32;
    } else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
        c.family = AF_INET6;
        maxp = 128;
    } else {
        return -EINVAL;
    }
    c.prefix = maxp;
    if (slash) {
        const char *p = slash + 1;
        uint64_t v;

        if (read_digits(&p, &v) < 0 || *p || v > maxp || p - (slash + 1) > 3)
            return -EINVAL;
        c.prefix = (unsigned)v;
    }
    /* A host address with a prefix ("10.0.1.5/16") means its network. */
    for (unsigned bit = c.prefix; bit < maxp; bit++)
        c.addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    *ret = c;
    return 0;
}

bool agentd_cidr_contains(const struct agentd_cidr *cidr, const struct sockaddr *sa)
{
    const uint8_t *a;
    uint8_t mapped[16];
    unsigned full, rest;

    if (!cidr || !sa)
        return false;
    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        if (cidr->family == AF_INET6) {
            /* An IPv4 peer on a v6 rule matches as ::ffff:a.b.c.d. */
            memset(mapped, 0, 10);
            mapped[10] = mapped[11] = 0xff;
            memcpy(mapped + 12, a, 4);
            a = mapped;
        } else if (cidr->family != AF_INET) {
            return false;
        }
    } else if (sa->sa_family == AF_INET6) {
        a = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (cidr->family == AF_INET) {
            /* A v4-mapped v6 peer (dual-stack sockets) matches v4 rules. */
            static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

            if (memcmp(a, prefix, 12) != 0)
                return false;
            a += 12;
        } else if (cidr->family != AF_INET6) {
            return false;
        }
    } else {
        return false;
    }
    full = cidr->prefix / 8;
    rest = cidr->prefix % 8;
    if (full > 16 || memcmp(a, cidr->addr, full) != 0)
        return false;
    if (rest) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rest));

        if ((a[full] & mask) != (cidr->addr[full] & mask))
            return false;
    }
    return true;
}

static bool valid_port(const char *p)
{
    uint64_t v;
    const char *s = p;

    return read_digits(&s, &v) == 0 && !*s && s - p <= 5 && v <= 65535;
}

static bool valid_hostname(const char *h, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];

        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return false;
    }
    return true;
}

static bool valid_v6(const char *h, size_t len)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;

    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, h, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

int agentd_hostport_split(const char *hp, char **ret_host, char **ret_port)
{
    const char *host, *colon;
    size_t hlen;
    char *h, *p;

    if (!hp)
        return -EINVAL;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');

        if (!close || close[1] != ':')
            return -EINVAL;
        host = hp + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        if (!valid_v6(host, hlen))
            return -EINVAL;
    } else {
        colon = strrchr(hp, ':');
        if (!colon)
            return -EINVAL;
        host = hp;
        hlen = (size_t)(colon - hp);
        if (!valid_hostname(host, hlen))
            return -EINVAL;
    }
    if (!valid_port(colon + 1))
        return -EINVAL;
    h = strndup(host, hlen);
    p = strdup(colon + 1);
    if (!h || !p) {
        free(h);
        free(p);
        return -ENOMEM;
    }
    *ret_host = h;
    *ret_port = p;
    return 0;
}

int config_check_hostport(const char *s)
{
    char *h = NULL, *p = NULL;
    int r = agentd_hostport_split(s, &h, &p);

    free(h);
    free(p);
    return r < 0 ? -EINVAL : 0;
}

bool config_host_is_loopback(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

int config_url_host(const char *s, char *buf, size_t size)
{
    const char *auth, *end, *at, *host, *hend;

    if (config_check_url(s) < 0)
        return -EINVAL;
    auth = strstr(s, "://") + 3;
    end = auth + strcspn(auth, "/?#");
    at = memchr(auth, '@', (size_t)(end - auth));
    host = at ? at + 1 : auth;
    if (*host == '[') {
        host++;
        hend = memchr(host, ']', (size_t)(end - host));
    } else {
        hend = memchr(host, ':', (size_t)(end - host));
        if (!hend)
            hend = end;
    }
    if ((size_t)(hend - host) >= size)
        return -ENAMETOOLONG;
    memcpy(buf, host, (size_t)(hend - host));
    buf[hend - host] = '\0';
    return 0;
}

bool config_url_is_remote_plain(const char *s)
{
    char host[256];

    if (strncasecmp(s, "http://", 7) != 0)
        return false;
    return config_url_host(s, host, sizeof(host)) < 0 || !config_host_is_loopback(host);
}

int config_check_url(const char *s)
{
    const char *auth, *end, *at, *host, *hend;

    if (!s)
        return -EINVAL;
    if (!strncasecmp(s, "http://", 7))
        auth = s + 7;
    else if (!strncasecmp(s, "https://", 8))
        auth = s + 8;
    else
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return -EINVAL;
    }
    end = auth + strcspn(auth, "/?#");
    at = memchr(auth, '@', (size_t)(end - auth));
    host = at ? at + 1 : auth;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));

        if (!close || !valid_v6(host + 1, (size_t)(close - host - 1)))
            return -EINVAL;
        hend = close + 1;
    } else {
        hend = memchr(host, ':', (size_t)(end - host));
        if (!hend)
            hend = end;
        if (!valid_hostname(host, (size_t)(hend - host)))
            return -EINVAL;
    }
    if (hend < end) {
        char port[8];
        size_t plen = (size_t)(end - hend - 1);

        if (*hend != ':' || plen == 0 || plen >= sizeof(port))
            return -EINVAL;
        memcpy(port, hend + 1, plen);
        port[plen] = '\0';
        if (!valid_port(port))
            return -EINVAL;
    }
    return 0;
}

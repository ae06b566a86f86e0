/* Scalar parsers (durations, sizes, booleans, integers, CIDRs, host:port,
 * URLs), their inverse formatters for --dump-config, and did-you-mean. */
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

/* Optimal string alignment distance (Damerau-Levenshtein without repeated
 * edits of one substring), case-insensitive; words are short. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[33][33];

    if (la > 32 || lb > 32)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca != cb, best = d[i - 1][j] + 1;

            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *config_suggest(const char *word, const char *const *candidates, size_t n)
{
    size_t len, limit, best = SIZE_MAX;
    const char *pick = NULL;

    if (!word || !candidates)
        return NULL;
    len = strlen(word);
    /* Two edits turn any short word into any other: be stricter there. */
    limit = len <= 3 ? 1 : 2;
    for (size_t i = 0; i < n && candidates[i]; i++) {
        size_t d = edit_distance(word, candidates[i]);

        /* Replacing the whole word is no suggestion. */
        if (d <= limit && d < len && d < best) {
            best = d;
            pick = candidates[i];
        }
    }
    return pick;
}

void conf_format_duration(uint64_t ms, char *buf, size_t size)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t len = 0;

    buf[0] = '\0';
    if (ms == 0) {
        snprintf(buf, size, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && len < size; i++) {
        uint64_t v = ms / units[i].ms;
        int w;

        if (!v)
            continue;
        ms %= units[i].ms;
        w = snprintf(buf + len, size - len, "%llu%s", (unsigned long long)v, units[i].unit);
        if (w < 0)
            return;
        len += (size_t)w;
    }
}

void conf_format_size(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};

    for (size_t i = 0; bytes && i < 4; i++) {
        uint64_t m = 1ULL << (10 * (4 - i));

        if (bytes % m == 0) {
            snprintf(buf, size, "%llu%s", (unsigned long long)(bytes / m), units[i]);
            return;
        }
    }
    snprintf(buf, size, "%llu", (unsigned long long)bytes);
}

void conf_format_cidr(const struct agentd_cidr *c, char *buf, size_t size)
{
    char a[INET6_ADDRSTRLEN];

    if (!inet_ntop(c->family == AF_INET6 ? AF_INET6 : AF_INET, c->addr, a, sizeof(a)))
        snprintf(a, sizeof(a), "?");
    snprintf(buf, size, "%s/%u", a, c->prefix);
}

bool conf_plain_safe(const char *s)
{
    static const char *const words[] = {"null", "true", "false", "yes", "no",
                                        "on",   "off",  "y",     "n"};
    unsigned char c0 = (unsigned char)s[0];

    if (!c0 || !(isalnum(c0) || c0 == '/' || c0 == '.' || c0 == '_'))
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (isalnum(c) || strchr("_./@+-*", c))
            continue;
        /* ':' is plain unless followed by a space or at the end. */
        if (c == ':' && p[1] && p[1] != ' ')
            continue;
        return false;
    }
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (!strcasecmp(s, words[i]))
            return false;
    }
    return true;
}

void conf_write_scalar(FILE *f, const char *s)
{
    if (conf_plain_safe(s)) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\x%02x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

const char *conf_type_name(enum agentd_opt_type t)
{
    switch (t) {
    case AGENTD_OPT_STRING:
        return "string";
    case AGENTD_OPT_INT:
        return "integer";
    case AGENTD_OPT_BOOL:
        return "boolean";
    case AGENTD_OPT_DURATION:
        return "duration";
    case AGENTD_OPT_SIZE:
        return "size";
    case AGENTD_OPT_ENUM:
        return "enum";
    case AGENTD_OPT_CIDR:
        return "CIDR";
    case AGENTD_OPT_HOSTPORT:
        return "host:port";
    case AGENTD_OPT_URL:
        return "URL";
    case AGENTD_OPT_PATH:
        return "path";
    case AGENTD_OPT_LIST:
        return "list";
    case AGENTD_OPT_MAP:
        return "map";
    case AGENTD_OPT_OBJECT:
        return "object";
    }
    return "?";
}

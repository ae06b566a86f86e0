/* Text for humans and for YAML: did-you-mean suggestions, and the formatters
 * that turn parsed values back into the text the parsers accept. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf.h"
#include "conf-internal.h"

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
            /* YAML folds its Unicode line breaks (NEL, LS, PS) even inside
             * double quotes: escape them so they read back unchanged. */
            if (p[0] == 0xc2 && p[1] == 0x85) {
                fputs("\\N", f);
                p++;
            } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
                fputs(p[2] == 0xa8 ? "\\L" : "\\P", f);
                p += 2;
            } else if (p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
                fputs("\\uFEFF", f);
                p += 2;
            } else if (*p < 0x20 || *p == 0x7f) {
                fprintf(f, "\\x%02x", *p);
            } else {
                fputc(*p, f);
            }
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

/* The router: method and request target to an endpoint. Paths are compared
 * byte for byte (no percent-decoding, no dot-segment games): an ALB asks for
 * exactly the configured path, and anything else is a 404. */
#include <string.h>

#include "health-int.h"

static const char *const fixed[] = {"/livez", "/readyz", "/metrics"};
static const enum route_kind fixed_kind[] = {ROUTE_LIVEZ, ROUTE_READYZ, ROUTE_METRICS};

static bool eq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);

    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Whether the query string asks for verbose output: a parameter named
 * "verbose" that is bare or set to 1/true/yes. */
static bool query_verbose(const char *q, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t j = i, k;

        while (j < len && q[j] != '&' && q[j] != ';')
            j++;
        k = i;
        while (k < j && q[k] != '=')
            k++;
        if (eq(q + i, k - i, "verbose")) {
            if (k == j)
                return true;
            if (eq(q + k + 1, j - k - 1, "1") || eq(q + k + 1, j - k - 1, "true") ||
                eq(q + k + 1, j - k - 1, "yes"))
                return true;
        }
        i = j + 1;
    }
    return false;
}

void route_match(const char *const *paths, size_t npaths, unsigned method, const char *url,
                 size_t url_len, struct route_result *ret)
{
    struct http_parser_url u;
    const char *path = NULL, *query = NULL;
    size_t path_len = 0, query_len = 0;

    ret->kind = ROUTE_BAD_REQUEST;
    ret->head = method == HTTP_HEAD;
    ret->verbose = false;
    ret->path = NULL;
    ret->path_len = 0;

    if (method != HTTP_GET && method != HTTP_HEAD) {
        ret->kind = ROUTE_BAD_METHOD;
        return;
    }
    if (url_len == 0)
        return;
    http_parser_url_init(&u);
    /* Origin form ("/health?verbose") and absolute form
     * ("http://host/health") are both valid request targets. */
    if (http_parser_parse_url(url, url_len, 0, &u) != 0)
        return;
    if (u.field_set & (1u << UF_PATH)) {
        path = url + u.field_data[UF_PATH].off;
        path_len = u.field_data[UF_PATH].len;
    }
    if (u.field_set & (1u << UF_QUERY)) {
        query = url + u.field_data[UF_QUERY].off;
        query_len = u.field_data[UF_QUERY].len;
    }
    if (!path) {
        /* "http://host" without a path means "/". */
        path = "/";
        path_len = 1;
    }
    ret->verbose = query && query_verbose(query, query_len);
    ret->path = path;
    ret->path_len = path_len;
    for (size_t i = 0; i < npaths; i++) {
        if (eq(path, path_len, paths[i])) {
            ret->kind = ROUTE_HEALTH;
            return;
        }
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (eq(path, path_len, fixed[i])) {
            ret->kind = fixed_kind[i];
            return;
        }
    }
    ret->kind = ROUTE_NOT_FOUND;
}

bool route_path_valid(const char *path, const char **ret_why)
{
    const char *why = NULL;

    if (path[0] != '/')
        why = "must start with '/'";
    else if (strlen(path) > 1024)
        why = "is longer than 1024 bytes";
    else {
        for (const char *c = path; *c; c++) {
            if (*c == '?' || *c == '#') {
                why = "must not contain '?' or '#'";
                break;
            }
            if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
                why = "must be printable ASCII without spaces";
                break;
            }
        }
    }
    for (size_t i = 0; !why && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcmp(path, fixed[i]) == 0)
            why = "is a fixed endpoint (/livez, /readyz, /metrics)";
    if (why && ret_why)
        *ret_why = why;
    return why == NULL;
}

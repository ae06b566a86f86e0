/* libFuzzer: any bytes as an IMDS answer, through every imds parser. What a
 * parser accepts must hold its promises: strings non-empty, printable and
 * within bounds, times parsed, lists bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/imds/imds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    struct imds_creds c = {0};
    if (imds_parse_creds(b, size, &c) == 0) {
        check_str(c.access_key_id, 128);
        check_str(c.secret_access_key, 256);
        check_str(c.token, 8192);
        int64_t t;
        if (imds_parse_time(c.expiration, &t) != 0 || t != c.expires_at)
            abort();
        imds_creds_clear(&c);
    }
    char *a = NULL, *t = NULL;
    if (imds_parse_spot(b, size, &a, &t) == 0) {
        check_str(a, 32);
        check_str(t, 64);
        free(a);
        free(t);
    }
    if (imds_parse_rebalance(b, size, &t) == 0) {
        check_str(t, 64);
        free(t);
    }
    json_t *ev = NULL;
    if (imds_parse_maintenance(b, size, &ev) == 0) {
        if (!json_is_array(ev) || json_array_size(ev) > 100)
            abort();
        json_decref(ev);
    }
    if (imds_parse_lifecycle(b, size, &a) == 0) {
        check_str(a, 32);
        free(a);
    }
    struct imds_identity id = {0};
    if (imds_parse_identity(b, size, &id) == 0) {
        check_str(id.account_id, 32);
        check_str(id.instance_id, 64);
        imds_identity_clear(&id);
    }
    if (imds_parse_value(b, size, &a) == 0) {
        check_str(a, IMDS_MAX_VALUE);
        if (!*a)
            abort();
        free(a);
    }
    char **v = NULL;
    if (imds_parse_listing(b, size, 8, &v) == 0) {
        size_t n = 0;
        for (; v[n]; n++)
            check_str(v[n], 256);
        if (n > 8)
            abort();
        imds_strv_free(v);
    }
    /* The time parser on NUL-terminated input. */
    char *s = strndup(b, size < 64 ? size : 64);
    if (s) {
        int64_t x;
        imds_parse_time(s, &x);
        char *esc = NULL;
        if (imds_path_escape(s, &esc) == 0) {
            if (strlen(esc) > 3 * strlen(s) || strpbrk(esc, "/?# "))
                abort();
            free(esc);
        }
        free(s);
    }
    return 0;
}

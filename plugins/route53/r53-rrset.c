/* Resource record sets: copies, comparison, and the name and value forms
 * Route 53 lists them in, so what we wrote can be recognised when read back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "r53.h"

void r53_rrset_free(struct r53_rrset *s)
{
    free(s->name);
    free(s->type);
    free(s->set_id);
    free(s->value);
    memset(s, 0, sizeof(*s));
    s->weight = -1;
    s->ttl = -1;
}

static int dup_opt(const char *v, char **ret)
{
    *ret = NULL;
    if (!v)
        return 0;
    *ret = strdup(v);
    return *ret ? 0 : -ENOMEM;
}

int r53_rrset_copy(const struct r53_rrset *src, struct r53_rrset *ret)
{
    struct r53_rrset s = *src;
    if (dup_opt(src->name, &s.name) < 0 || dup_opt(src->type, &s.type) < 0 ||
        dup_opt(src->set_id, &s.set_id) < 0 || dup_opt(src->value, &s.value) < 0) {
        free(s.name);
        free(s.type);
        free(s.set_id);
        free(s.value);
        return -ENOMEM;
    }
    *ret = s;
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Names compare without case and without the trailing dot. */
static bool name_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

bool r53_rrset_same_key(const struct r53_rrset *a, const struct r53_rrset *b)
{
    return name_eq(a->name, b->name) && str_eq(a->type, b->type) && str_eq(a->set_id, b->set_id);
}

bool r53_rrset_equal(const struct r53_rrset *a, const struct r53_rrset *b)
{
    if (!r53_rrset_same_key(a, b) || a->weight != b->weight || a->multivalue != b->multivalue ||
        a->ttl != b->ttl || a->n_values != b->n_values)
        return false;
    /* A CNAME's target is a name: case and the final dot do not matter. */
    if (a->type && strcmp(a->type, "CNAME") == 0)
        return name_eq(a->value, b->value);
    return str_eq(a->value, b->value);
}

char *r53_name_normalize(const char *name)
{
    size_t n = strlen(name);
    char *out = malloc(n + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '\\' && strncmp(name + i, "\\052", 4) == 0) {
            out[o++] = '*';
            i += 3;
        } else if (name[i] >= 'A' && name[i] <= 'Z') {
            out[o++] = (char)(name[i] + 32);
        } else {
            out[o++] = name[i];
        }
    }
    if (o == 0 || out[o - 1] != '.')
        out[o++] = '.';
    out[o] = '\0';
    return out;
}

char *r53_txt_quote(const char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
        return strdup(v);
    /* Inside the quotes, '"' and '\' are escaped with a backslash. */
    char *out = malloc(2 * n + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\')
            out[o++] = '\\';
        out[o++] = v[i];
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

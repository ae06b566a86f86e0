/* {name} templates in string options: checked at load time against the known
 * metadata names, expanded later from whatever provides the values. "{{" and
 * "}}" are literal braces; strftime's % fields are not ours and pass through. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf-internal.h"

/* Expanded strings are names, keys and URLs: anything bigger is a loop. */
#define MAX_EXPANDED (64u * 1024)

static const char *const known[] = {
    "instance_id", "instance_type", "ami_id", "region",     "az",       "local_ipv4",
    "public_ipv4", "hostname",      "mac",    "account_id", "iam_role", NULL,
};

static bool name_known(const char *name, const char *const *extra)
{
    if (!strncmp(name, "tag:", 4) && name[4])
        return true;
    for (size_t i = 0; known[i]; i++) {
        if (!strcmp(name, known[i]))
            return true;
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        if (!strcmp(name, extra[i]))
            return true;
    }
    return false;
}

static const char *suggest(const char *name, const char *const *extra)
{
    const char *cands[64];
    size_t n = 0;

    for (size_t i = 0; known[i] && n < 64; i++)
        cands[n++] = known[i];
    for (size_t i = 0; extra && extra[i] && n < 64; i++)
        cands[n++] = extra[i];
    if (!strncasecmp(name, "tag", 3) && (name[3] == ':' || name[3] == '_' || name[3] == '.'))
        return "tag:NAME";
    return config_suggest(name, cands, n);
}

/* Walks tmpl. For each {name} calls fn (if non-NULL) and for literal runs
 * calls lit. Returns 0, -EINVAL with *ret_bad describing bad syntax, or what
 * fn returns. */
struct walker {
    int (*name)(struct walker *w, const char *name);
    int (*lit)(struct walker *w, const char *s, size_t len);
};

static int walk(const char *tmpl, struct walker *w, char **ret_bad)
{
    const char *p = tmpl, *run = tmpl;
    int r;

    while (*p) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            if (w->lit && (r = w->lit(w, run, (size_t)(p - run + 1))) < 0)
                return r;
            p += 2;
            run = p;
            continue;
        }
        if (*p == '}') {
            if (ret_bad)
                *ret_bad = strdup("a lone '}' (write '}}' for a literal brace)");
            return -EINVAL;
        }
        if (*p != '{') {
            p++;
            continue;
        }
        const char *end = strchr(p + 1, '}');
        const char *inner = strchr(p + 1, '{');
        char *name;

        if (!end || (inner && inner < end)) {
            if (ret_bad)
                *ret_bad = strdup("a '{' without its '}' (write '{{' for a literal brace)");
            return -EINVAL;
        }
        if (end == p + 1) {
            if (ret_bad)
                *ret_bad = strdup("an empty template {}");
            return -EINVAL;
        }
        if (w->lit && p > run && (r = w->lit(w, run, (size_t)(p - run))) < 0)
            return r;
        name = strndup(p + 1, (size_t)(end - p - 1));
        if (!name)
            return -ENOMEM;
        r = w->name ? w->name(w, name) : 0;
        free(name);
        if (r < 0)
            return r;
        p = end + 1;
        run = p;
    }
    if (w->lit && p > run && (r = w->lit(w, run, (size_t)(p - run))) < 0)
        return r;
    return 0;
}

struct checker {
    struct walker w;
    const char *const *extra;
    char *bad;
};

static int check_name(struct walker *w, const char *name)
{
    struct checker *c = (struct checker *)w;

    if (name_known(name, c->extra))
        return 0;
    c->bad = strdup(name);
    return c->bad ? -ENOENT : -ENOMEM;
}

int template_check_hint(const char *tmpl, const char *const *extra, char **ret_bad, char **ret_hint)
{
    struct checker c = {.w = {.name = check_name}, .extra = extra};
    char *bad = NULL;
    int r;

    r = walk(tmpl, &c.w, &bad);
    if (r == -ENOENT) {
        const char *hint = suggest(c.bad, extra);

        *ret_hint = hint ? strdup(hint) : NULL;
        *ret_bad = c.bad;
        return -ENOENT;
    }
    if (r == -EINVAL) {
        *ret_hint = NULL;
        *ret_bad = bad;
        return -EINVAL;
    }
    return r;
}

int template_check(const char *tmpl, const char *const *extra, char **ret_bad)
{
    char *hint = NULL;
    int r = template_check_hint(tmpl, extra, ret_bad, &hint);

    free(hint);
    return r == -ENOENT ? -EINVAL : r;
}

struct expander {
    struct walker w;
    const char *(*lookup)(const char *name, void *ud);
    void *ud;
    char *buf;
    size_t len, cap;
    char *missing;
};

static int put(struct walker *w, const char *s, size_t len)
{
    struct expander *e = (struct expander *)w;

    if (e->len + len + 1 > MAX_EXPANDED)
        return -E2BIG;
    if (e->len + len + 1 > e->cap) {
        size_t cap = (e->len + len + 1) * 2;
        char *b = realloc(e->buf, cap);

        if (!b)
            return -ENOMEM;
        e->buf = b;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, s, len);
    e->len += len;
    e->buf[e->len] = '\0';
    return 0;
}

static int expand_name(struct walker *w, const char *name)
{
    struct expander *e = (struct expander *)w;
    const char *v = e->lookup ? e->lookup(name, e->ud) : NULL;

    if (!v) {
        e->missing = strdup(name);
        return -ENOENT;
    }
    return put(w, v, strlen(v));
}

int template_expand(const char *tmpl, const char *(*lookup)(const char *name, void *ud), void *ud,
                    char **ret, char **ret_missing)
{
    struct expander e = {.w = {.name = expand_name, .lit = put}, .lookup = lookup, .ud = ud};
    int r;

    if (!tmpl)
        return -EINVAL;
    r = walk(tmpl, &e.w, NULL);
    if (r == 0 && !e.buf)
        r = put(&e.w, "", 0);
    if (r < 0) {
        if (r == -ENOENT && ret_missing) {
            *ret_missing = e.missing;
            e.missing = NULL;
        }
        free(e.missing);
        free(e.buf);
        return r;
    }
    *ret = e.buf;
    return 0;
}

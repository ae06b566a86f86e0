/* Walks over filled configs: freeing them (secrets zeroed first) and deep
 * comparison, which decides whether a reload changes a plugin's config. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf-internal.h"

static void free_object(const struct agentd_schema *schema, void *obj);

static void free_value(const struct agentd_option *opt, enum agentd_opt_type t, void *p)
{
    switch (t) {
    case AGENTD_OPT_STRING:
    case AGENTD_OPT_HOSTPORT:
    case AGENTD_OPT_URL:
    case AGENTD_OPT_PATH: {
        char *s = *(char **)p;

        if (s && (opt->flags & AGENTD_OPT_SECRET))
            explicit_bzero(s, strlen(s));
        free(s);
        *(char **)p = NULL;
        break;
    }
    case AGENTD_OPT_LIST: {
        struct agentd_list *l = p;
        size_t es = conf_elem_size(opt, opt->elem);

        for (size_t i = 0; l->items && i < l->n; i++) {
            void *item = (char *)l->items + i * es;

            if (opt->elem == AGENTD_OPT_OBJECT)
                free_object(opt->sub, item);
            else
                free_value(opt, opt->elem, item);
        }
        free(l->items);
        l->items = NULL;
        l->n = 0;
        break;
    }
    case AGENTD_OPT_MAP: {
        struct agentd_map *m = p;

        for (size_t i = 0; i < m->n; i++) {
            if (m->keys)
                free(m->keys[i]);
            if (m->values) {
                if (m->values[i] && (opt->flags & AGENTD_OPT_SECRET))
                    explicit_bzero(m->values[i], strlen(m->values[i]));
                free(m->values[i]);
            }
        }
        free(m->keys);
        free(m->values);
        memset(m, 0, sizeof(*m));
        break;
    }
    case AGENTD_OPT_OBJECT: {
        void *obj = *(void **)p;

        if (obj && opt->sub) {
            free_object(opt->sub, obj);
            free(obj);
        }
        *(void **)p = NULL;
        break;
    }
    default:
        break;
    }
}

static void free_object(const struct agentd_schema *schema, void *obj)
{
    for (const struct agentd_option *o = schema->options; o && o->name; o++)
        free_value(o, o->type, (char *)obj + o->offset);
}

void config_free(const struct agentd_schema *schema, bool list_root, void *conf)
{
    if (!conf)
        return;
    if (!schema) {
        free(conf);
        return;
    }
    if (list_root) {
        struct agentd_list *l = conf;

        for (size_t i = 0; l->items && i < l->n; i++)
            free_object(schema, (char *)l->items + i * schema->size);
        free(l->items);
    } else {
        free_object(schema, conf);
    }
    free(conf);
}

static bool equal_value(const struct agentd_option *o, enum agentd_opt_type t, const void *a,
                        const void *b);

static bool equal_object(const struct agentd_schema *s, const void *a, const void *b)
{
    for (const struct agentd_option *o = s->options; o && o->name; o++) {
        if (!equal_value(o, o->type, (const char *)a + o->offset, (const char *)b + o->offset))
            return false;
    }
    return true;
}

static bool equal_str(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static bool equal_value(const struct agentd_option *o, enum agentd_opt_type t, const void *a,
                        const void *b)
{
    switch (t) {
    case AGENTD_OPT_STRING:
    case AGENTD_OPT_HOSTPORT:
    case AGENTD_OPT_URL:
    case AGENTD_OPT_PATH:
        return equal_str(*(char *const *)a, *(char *const *)b);
    case AGENTD_OPT_INT:
        return *(const int64_t *)a == *(const int64_t *)b;
    case AGENTD_OPT_BOOL:
        return *(const bool *)a == *(const bool *)b;
    case AGENTD_OPT_DURATION:
    case AGENTD_OPT_SIZE:
        return *(const uint64_t *)a == *(const uint64_t *)b;
    case AGENTD_OPT_ENUM:
        return *(const int *)a == *(const int *)b;
    case AGENTD_OPT_CIDR: {
        const struct agentd_cidr *x = a, *y = b;

        return x->family == y->family && x->prefix == y->prefix &&
               !memcmp(x->addr, y->addr, sizeof(x->addr));
    }
    case AGENTD_OPT_MAP: {
        const struct agentd_map *x = a, *y = b;

        if (x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++) {
            if (!equal_str(x->keys[i], y->keys[i]) || !equal_str(x->values[i], y->values[i]))
                return false;
        }
        return true;
    }
    case AGENTD_OPT_OBJECT: {
        const void *x = *(void *const *)a, *y = *(void *const *)b;

        if (!x || !y)
            return x == y;
        return equal_object(o->sub, x, y);
    }
    case AGENTD_OPT_LIST: {
        const struct agentd_list *x = a, *y = b;
        size_t es = conf_elem_size(o, o->elem);

        if (x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++) {
            const void *ia = (const char *)x->items + i * es, *ib = (const char *)y->items + i * es;

            if (o->elem == AGENTD_OPT_OBJECT ? !equal_object(o->sub, ia, ib)
                                             : !equal_value(o, o->elem, ia, ib))
                return false;
        }
        return true;
    }
    }
    return false;
}

bool config_equal(const struct agentd_schema *schema, bool list_root, const void *a, const void *b)
{
    if (!a || !b)
        return a == b;
    if (!schema)
        return true;
    if (list_root) {
        struct agentd_option root = {
            .name = "",
            .type = AGENTD_OPT_LIST,
            .elem = AGENTD_OPT_OBJECT,
            .sub = schema,
        };

        return equal_value(&root, AGENTD_OPT_LIST, a, b);
    }
    return equal_object(schema, a, b);
}

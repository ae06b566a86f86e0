/* Option tables applied to node trees: type checks, defaults, bounds,
 * unknown keys with a did-you-mean, templates, and the plugin's validate
 * callback, collecting every error with its position and key path. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf-internal.h"

struct agentd_confctx {
    struct config_errors *errs;
    const struct config_node *map;   /* NULL when the mapping was absent */
    const struct config_node *where; /* position of the mapping, or of its parent */
    const char *path;
    const struct agentd_schema *schema;
    size_t nerr;
};

static const char default_file[] = "(default)";

static char *path_join(const char *path, const char *key)
{
    char *s = NULL;

    if (asprintf(&s, "%s%s%s", path, *path ? "." : "", key) < 0)
        return NULL;
    return s;
}

static char *path_index(const char *path, size_t i)
{
    char *s = NULL;

    if (asprintf(&s, "%s[%zu]", path, i) < 0)
        return NULL;
    return s;
}

const char *conf_kind_name(const struct config_node *n)
{
    switch (n->kind) {
    case CONFIG_SCALAR:
        return "a single value";
    case CONFIG_SEQUENCE:
        return "a list";
    case CONFIG_MAPPING:
        return "a mapping";
    case CONFIG_NULL:
        return "nothing";
    }
    return "?";
}

size_t conf_elem_size(const struct agentd_option *opt, enum agentd_opt_type t)
{
    switch (t) {
    case AGENTD_OPT_STRING:
    case AGENTD_OPT_HOSTPORT:
    case AGENTD_OPT_URL:
    case AGENTD_OPT_PATH:
        return sizeof(char *);
    case AGENTD_OPT_INT:
        return sizeof(int64_t);
    case AGENTD_OPT_BOOL:
        return sizeof(bool);
    case AGENTD_OPT_DURATION:
    case AGENTD_OPT_SIZE:
        return sizeof(uint64_t);
    case AGENTD_OPT_ENUM:
        return sizeof(int);
    case AGENTD_OPT_CIDR:
        return sizeof(struct agentd_cidr);
    case AGENTD_OPT_MAP:
        return sizeof(struct agentd_map);
    case AGENTD_OPT_OBJECT:
        /* Objects in a list are stored inline, like the list root's. */
        return opt->sub ? opt->sub->size : 0;
    case AGENTD_OPT_LIST:
        return 0;
    }
    return 0;
}

/* The option describing one element of a LIST option. */
static struct agentd_option elem_option(const struct agentd_option *opt)
{
    struct agentd_option e = *opt;

    e.type = opt->elem;
    e.min = e.max = 0;
    e.def = NULL;
    return e;
}

/* Whether YAML would read s as a plain, non-null scalar with the same text. */
static bool plain_word(const char *s)
{
    if (!*s || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL") || strchr("-.", s[0]))
        return false;
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_./+-", *p)))
            return false;
    }
    return true;
}

static int parse_default(const char *def, struct config_node **ret, struct config_errors *errs)
{
    struct config_node *n;

    /* Most defaults are a word like "5s" or "true": skip the YAML parser. */
    if (plain_word(def)) {
        n = conf_node_new(CONFIG_SCALAR, default_file, 1, 1);
        if (!n || !(n->value = strdup(def))) {
            conf_node_free(n);
            return -ENOMEM;
        }
        *ret = n;
        return 0;
    }
    return conf_parse_yaml(default_file, def, strlen(def), ret, errs);
}

static int apply_object(struct config_errors *errs, const struct config_node *node,
                        const struct config_node *where, const char *path,
                        const struct agentd_schema *schema, void *obj, unsigned depth);

static int apply_map(struct config_errors *errs, const struct config_node *n, const char *path,
                     const struct agentd_option *opt, struct agentd_map *m)
{
    int r = 0;

    if (n->kind != CONFIG_MAPPING) {
        conf_err_at(errs, n, path, "expected a mapping of names to values, got %s",
                    conf_kind_name(n));
        return -EINVAL;
    }
    if (n->n == 0)
        return 0;
    m->keys = calloc(n->n, sizeof(char *));
    m->values = calloc(n->n, sizeof(char *));
    if (!m->keys || !m->values)
        return -ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        const struct config_node *v = n->items[i];
        char *kp;

        if (v->kind != CONFIG_SCALAR && v->kind != CONFIG_NULL) {
            kp = path_join(path, n->keys[i]->value);
            conf_err_at(errs, v, kp ? kp : path, "expected a single value, got %s",
                        conf_kind_name(v));
            free(kp);
            r = -EINVAL;
            continue;
        }
        if ((opt->flags & AGENTD_OPT_TEMPLATE) && v->kind == CONFIG_SCALAR) {
            char *plain = NULL;

            kp = path_join(path, n->keys[i]->value);
            if (conf_check_templates(errs, v, kp ? kp : path, opt, &plain) < 0)
                r = -EINVAL;
            free(plain);
            free(kp);
        }
        m->keys[m->n] = strdup(n->keys[i]->value);
        m->values[m->n] = strdup(v->kind == CONFIG_NULL ? "" : v->value);
        if (!m->keys[m->n] || !m->values[m->n]) {
            m->n++;
            return -ENOMEM;
        }
        m->n++;
    }
    return r;
}

static int apply_value(struct config_errors *errs, const struct config_node *n, const char *path,
                       const struct agentd_option *opt, void *dst, unsigned depth);

/* The value node of key in a mapping, or NULL. */
static const struct config_node *map_value(const struct config_node *m, const char *key)
{
    if (m->kind != CONFIG_MAPPING)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (m->keys[i]->value && strcmp(m->keys[i]->value, key) == 0)
            return m->items[i];
    return NULL;
}

/* AGENTD_OPT_UNIQUE: items of a list of objects that share a value (two
 * tunnels named alike) are refused, naming where the first one is. Items
 * come from several files when conf.d lists are concatenated. */
static int check_unique(struct config_errors *errs, const struct config_node *n, const char *path,
                        const struct agentd_schema *sub, const struct agentd_list *l, size_t es)
{
    int r = 0;
    for (const struct agentd_option *o = sub->options; o->name; o++) {
        if (!(o->flags & AGENTD_OPT_UNIQUE) || o->type != AGENTD_OPT_STRING)
            continue;
        for (size_t i = 1; i < l->n && i < n->n; i++) {
            const char *vi = *(char **)((char *)l->items + i * es + o->offset);
            for (size_t j = 0; vi && j < i; j++) {
                const char *vj = *(char **)((char *)l->items + j * es + o->offset);
                if (!vj || strcmp(vi, vj) != 0)
                    continue;
                const struct config_node *at = map_value(n->items[i], o->name);
                const struct config_node *first = map_value(n->items[j], o->name);
                char *ip = path_index(path, i), *kp = NULL;
                if (ip && asprintf(&kp, "%s.%s", ip, o->name) < 0)
                    kp = NULL;
                conf_err_at(errs, at ? at : n->items[i], kp ? kp : path,
                            "'%s' is already used by %s[%zu] (%s:%u)", vi, path, j,
                            first ? first->file : "?", first ? first->line : 0);
                free(kp);
                free(ip);
                r = -EINVAL;
                break;
            }
        }
    }
    return r;
}

static int apply_list(struct config_errors *errs, const struct config_node *n, const char *path,
                      const struct agentd_option *opt, struct agentd_list *l, unsigned depth)
{
    struct agentd_option eo = elem_option(opt);
    size_t es = conf_elem_size(opt, opt->elem), count;
    const struct config_node *const *items;
    int r = 0;

    if (es == 0 || (opt->elem == AGENTD_OPT_OBJECT && !opt->sub)) {
        conf_err_at(errs, n, path, "internal error: bad list element type");
        return -EINVAL;
    }
    /* A single value (or one mapping for a list of objects) is a list of one. */
    if (n->kind == CONFIG_SEQUENCE) {
        items = (const struct config_node *const *)n->items;
        count = n->n;
    } else {
        items = &n;
        count = 1;
    }
    if (count) {
        l->items = calloc(count, es);
        if (!l->items)
            return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        char *ip = n->kind == CONFIG_SEQUENCE ? path_index(path, i) : strdup(path);
        int k;

        if (!ip)
            return -ENOMEM;
        if (items[i]->kind == CONFIG_NULL) {
            conf_err_at(errs, items[i], ip, "empty list item");
            k = -EINVAL;
        } else if (opt->elem == AGENTD_OPT_OBJECT) {
            /* In a list, objects are stored inline, not as pointers. */
            k = apply_object(errs, items[i], items[i], ip, opt->sub, (char *)l->items + l->n * es,
                             depth + 1);
        } else {
            k = apply_value(errs, items[i], ip, &eo, (char *)l->items + l->n * es, depth + 1);
        }
        free(ip);
        /* Keep the item even when it failed: it may hold allocations. */
        l->n++;
        if (k == -ENOMEM)
            return k;
        if (k < 0)
            r = -EINVAL;
    }
    if (r == 0 && opt->elem == AGENTD_OPT_OBJECT && n->kind == CONFIG_SEQUENCE)
        r = check_unique(errs, n, path, opt->sub, l, es);
    if (r == 0 && opt->max > opt->min && (l->n < (uint64_t)opt->min || l->n > (uint64_t)opt->max)) {
        conf_err_at(errs, n, path, "has %zu item%s; allowed: %lld..%lld", l->n,
                    l->n == 1 ? "" : "s", (long long)opt->min, (long long)opt->max);
        r = -EINVAL;
    }
    return r;
}

static int apply_value(struct config_errors *errs, const struct config_node *n, const char *path,
                       const struct agentd_option *opt, void *dst, unsigned depth)
{
    if (depth > CONF_MAX_DEPTH) {
        conf_err_at(errs, n, path, "nested too deeply");
        return -EINVAL;
    }
    switch (opt->type) {
    case AGENTD_OPT_LIST:
        if (opt->elem == AGENTD_OPT_LIST) {
            conf_err_at(errs, n, path, "internal error: lists of lists are not supported");
            return -EINVAL;
        }
        return apply_list(errs, n, path, opt, dst, depth);
    case AGENTD_OPT_MAP:
        return apply_map(errs, n, path, opt, dst);
    case AGENTD_OPT_OBJECT: {
        void *obj;
        int r;

        if (!opt->sub) {
            conf_err_at(errs, n, path, "internal error: object option without a schema");
            return -EINVAL;
        }
        obj = calloc(1, opt->sub->size ? opt->sub->size : 1);
        if (!obj)
            return -ENOMEM;
        /* Stored even when it failed: the parent frees the partial object. */
        r = apply_object(errs, n, n, path, opt->sub, obj, depth + 1);
        *(void **)dst = obj;
        return r;
    }
    default:
        return conf_apply_scalar(errs, n, path, opt, opt->type, dst);
    }
}

static size_t option_names(const struct agentd_schema *schema, const char **buf, size_t cap)
{
    size_t n = 0;

    for (const struct agentd_option *o = schema->options; o && o->name && n < cap; o++)
        buf[n++] = o->name;
    return n;
}

static int apply_object(struct config_errors *errs, const struct config_node *node,
                        const struct config_node *where, const char *path,
                        const struct agentd_schema *schema, void *obj, unsigned depth)
{
    size_t before = errs ? errs->n : 0;
    bool failed = false;
    int r;

    if (depth > CONF_MAX_DEPTH) {
        conf_err_at(errs, where, path, "nested too deeply");
        return -EINVAL;
    }
    if (node && node->kind == CONFIG_NULL)
        node = NULL;
    if (node && node->kind != CONFIG_MAPPING) {
        conf_err_at(errs, node, path, "expected a mapping of options (%s), got %s",
                    schema->name ? schema->name : "options", conf_kind_name(node));
        return -EINVAL;
    }
    if (node) {
        const char *names[256];
        size_t nn = option_names(schema, names, 256);

        for (size_t i = 0; i < node->n; i++) {
            const struct config_node *k = node->keys[i];
            const char *hint;
            char *kp;
            bool found = false;

            for (size_t j = 0; j < nn && !found; j++)
                found = !strcmp(names[j], k->value);
            if (found)
                continue;
            kp = path_join(path, k->value);
            hint = config_suggest(k->value, names, nn);
            if (hint)
                conf_err_at(errs, k, kp ? kp : path, "unknown option (did you mean '%s'?)", hint);
            else
                conf_err_at(errs, k, kp ? kp : path, "unknown option");
            free(kp);
            failed = true;
        }
    }
    for (const struct agentd_option *o = schema->options; o && o->name; o++) {
        const struct config_node *v = conf_map_get(node, o->name, NULL);
        struct config_node *defnode = NULL;
        void *dst = (char *)obj + o->offset;
        char *kp = path_join(path, o->name);

        if (!kp)
            return -ENOMEM;
        if (!v || v->kind == CONFIG_NULL) {
            if (o->def) {
                r = parse_default(o->def, &defnode, errs);
                if (r < 0) {
                    conf_err_at(errs, where, kp, "internal error: bad default '%s'", o->def);
                    free(kp);
                    failed = true;
                    continue;
                }
                v = defnode;
            } else if (o->flags & AGENTD_OPT_REQUIRED) {
                if (v)
                    conf_err_at(errs, v, kp, "a value is required");
                else
                    conf_err_at(errs, node ? node : where, kp, "missing required option");
                free(kp);
                failed = true;
                continue;
            } else {
                free(kp);
                continue;
            }
        }
        if (v && v->kind != CONFIG_NULL) {
            r = apply_value(errs, v, kp, o, dst, depth);
            if (r == -ENOMEM) {
                free(kp);
                conf_node_free(defnode);
                return r;
            }
            if (r < 0)
                failed = true;
        }
        conf_node_free(defnode);
        free(kp);
    }
    if (!failed && schema->validate) {
        struct agentd_confctx cc = {
            .errs = errs,
            .map = node,
            .where = node ? node : where,
            .path = path,
            .schema = schema,
        };

        r = schema->validate(obj, &cc);
        if (r < 0 && cc.nerr == 0)
            conf_err_at(errs, cc.where, path, "invalid %s",
                        schema->name ? schema->name : "options");
    }
    return failed || (errs && errs->n > before) ? -EINVAL : 0;
}

void agentd_conf_error(struct agentd_confctx *cc, const char *key, const char *fmt, ...)
{
    const struct config_node *at = cc->where;
    char *kp = NULL;
    va_list ap;

    if (key) {
        const struct config_node *v = conf_map_get(cc->map, key, NULL);

        if (v)
            at = v;
        kp = path_join(cc->path, key);
    }
    va_start(ap, fmt);
    config_errors_addv(cc->errs, at ? at->file : "", at ? at->line : 0, at ? at->col : 0,
                       kp ? kp : cc->path, fmt, ap);
    va_end(ap);
    free(kp);
    cc->nerr++;
}

/* Errors come out in the order the walk found them: unknown keys first, then
 * table order. Readers scan a file top to bottom, so sort the new ones by
 * position within each file (files keep their order of appearance). */
static void sort_errors(struct config_errors *errs, size_t from)
{
    size_t n = errs ? errs->n - from : 0;
    struct config_error *v = errs ? errs->v + from : NULL;
    size_t *rank;

    if (n < 2 || !(rank = calloc(n, sizeof(*rank))))
        return;
    for (size_t i = 0; i < n; i++) {
        rank[i] = i;
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(v[i].file, v[j].file)) {
                rank[i] = rank[j];
                break;
            }
        }
    }
    /* Insertion sort: stable, and error lists are short. */
    for (size_t i = 1; i < n; i++) {
        struct config_error e = v[i];
        size_t r = rank[i], j = i;

        while (j > 0 &&
               (rank[j - 1] > r ||
                (rank[j - 1] == r &&
                 (v[j - 1].line > e.line || (v[j - 1].line == e.line && v[j - 1].col > e.col))))) {
            v[j] = v[j - 1];
            rank[j] = rank[j - 1];
            j--;
        }
        v[j] = e;
        rank[j] = r;
    }
    free(rank);
}

int config_apply(const struct config_node *node, const char *path,
                 const struct agentd_schema *schema, bool list_root, void **ret,
                 struct config_errors *errs)
{
    const struct config_node *where = node;
    size_t before;
    void *conf;
    int r;

    if (!path)
        path = "";
    if (node && node->kind == CONFIG_NULL)
        node = NULL;
    before = errs ? errs->n : 0;
    if (!schema) {
        if (node && !(node->kind == CONFIG_MAPPING && node->n == 0)) {
            conf_err_at(errs, node, path, "this section takes no options");
            return -EINVAL;
        }
        *ret = NULL;
        return 0;
    }
    if (!list_root) {
        conf = calloc(1, schema->size ? schema->size : 1);
        if (!conf)
            return -ENOMEM;
        r = apply_object(errs, node, where, path, schema, conf, 0);
    } else {
        /* The root list is a LIST of OBJECT option without a name. */
        struct agentd_option root = {
            .name = path,
            .type = AGENTD_OPT_LIST,
            .elem = AGENTD_OPT_OBJECT,
            .sub = schema,
        };
        struct agentd_list *l = calloc(1, sizeof(*l));

        if (!l)
            return -ENOMEM;
        conf = l;
        r = node ? apply_list(errs, node, path, &root, l, 0) : 0;
    }
    if (r < 0) {
        if (r == -ENOMEM)
            config_errors_add(errs, node ? node->file : "", 0, 0, path, "out of memory");
        config_free(schema, list_root, conf);
        sort_errors(errs, before);
        return r == -ENOMEM ? r : -EINVAL;
    }
    *ret = conf;
    return 0;
}

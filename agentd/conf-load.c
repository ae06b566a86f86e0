/* YAML text → config_node trees with file:line:col on every node (libyaml's
 * event API), and the merge of conf.d/<name>.yaml files into the main file's mapping. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "conf.h"
#include "conf-internal.h"

/* A config file larger than this is certainly a mistake (a log, a binary). */
#define MAX_FILE_SIZE (4u * 1024 * 1024)

struct doc_priv {
    size_t n;
    char **files; /* every file name a node points at */
};

/* One step of the key path being parsed; formatted only when an error needs it. */
struct pseg {
    const struct pseg *up;
    const char *key; /* NULL: a sequence index */
    size_t idx;
};

struct loader {
    yaml_parser_t parser;
    const char *file;
    struct config_errors *errs;
    bool broken; /* a syntax error: stop parsing */
    bool bad;    /* a semantic error: keep parsing to report more */
};

static void path_format(const struct pseg *p, char *buf, size_t size)
{
    const struct pseg *segs[CONF_MAX_DEPTH + 2];
    size_t n = 0, len = 0;

    buf[0] = '\0';
    for (; p && n < sizeof(segs) / sizeof(segs[0]); p = p->up)
        segs[n++] = p;
    while (n-- > 0 && len < size) {
        int w;

        if (segs[n]->key)
            w = snprintf(buf + len, size - len, "%s%s", len ? "." : "", segs[n]->key);
        else
            w = snprintf(buf + len, size - len, "[%zu]", segs[n]->idx);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

static void lerr(struct loader *l, const yaml_mark_t *m, const struct pseg *p, const char *fmt, ...)
    AGENTD_PRINTF(4, 5);
static void lerr(struct loader *l, const yaml_mark_t *m, const struct pseg *p, const char *fmt, ...)
{
    char path[512];
    va_list ap;

    path_format(p, path, sizeof(path));
    va_start(ap, fmt);
    config_errors_addv(l->errs, l->file, (unsigned)m->line + 1, (unsigned)m->column + 1, path, fmt,
                       ap);
    va_end(ap);
    l->bad = true;
}

static void syntax_error(struct loader *l)
{
    const yaml_parser_t *ps = &l->parser;
    const char *problem = ps->problem ? ps->problem : "invalid YAML";

    if (ps->error == YAML_MEMORY_ERROR)
        problem = "out of memory";
    if (ps->context && ps->context_mark.line != ps->problem_mark.line)
        config_errors_add(l->errs, l->file, (unsigned)ps->problem_mark.line + 1,
                          (unsigned)ps->problem_mark.column + 1, NULL,
                          "YAML syntax error: %s (%s at line %u)", problem, ps->context,
                          (unsigned)ps->context_mark.line + 1);
    else if (ps->context)
        config_errors_add(l->errs, l->file, (unsigned)ps->problem_mark.line + 1,
                          (unsigned)ps->problem_mark.column + 1, NULL, "YAML syntax error: %s (%s)",
                          problem, ps->context);
    else
        config_errors_add(l->errs, l->file, (unsigned)ps->problem_mark.line + 1,
                          (unsigned)ps->problem_mark.column + 1, NULL, "YAML syntax error: %s",
                          problem);
    l->broken = true;
}

static int next(struct loader *l, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&l->parser, ev)) {
        syntax_error(l);
        return -EINVAL;
    }
    return 0;
}

struct config_node *conf_node_new(enum config_node_kind kind, const char *file, unsigned line,
                                  unsigned col)
{
    struct config_node *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    n->kind = kind;
    n->file = file;
    n->line = line;
    n->col = col;
    return n;
}

void conf_node_free(struct config_node *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n; i++) {
        conf_node_free(node->items[i]);
        if (node->keys)
            conf_node_free(node->keys[i]);
    }
    free(node->items);
    free(node->keys);
    free(node->value);
    free(node);
}

static bool is_null_word(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static struct config_node *make_node(struct loader *l, enum config_node_kind kind,
                                     const yaml_mark_t *m)
{
    struct config_node *n =
        conf_node_new(kind, l->file, (unsigned)m->line + 1, (unsigned)m->column + 1);

    if (!n) {
        config_errors_add(l->errs, l->file, 0, 0, NULL, "out of memory");
        l->broken = true;
    }
    return n;
}

static int append(struct config_node *parent, size_t *cap, struct config_node *key,
                  struct config_node *item)
{
    if (parent->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct config_node **items = realloc(parent->items, ncap * sizeof(*items));

        if (!items)
            return -ENOMEM;
        parent->items = items;
        if (parent->kind == CONFIG_MAPPING) {
            struct config_node **keys = realloc(parent->keys, ncap * sizeof(*keys));

            if (!keys)
                return -ENOMEM;
            parent->keys = keys;
        }
        *cap = ncap;
    }
    if (parent->kind == CONFIG_MAPPING)
        parent->keys[parent->n] = key;
    parent->items[parent->n++] = item;
    return 0;
}

static struct config_node *parse_node(struct loader *l, yaml_event_t *ev, const struct pseg *p,
                                      unsigned depth);

static struct config_node *parse_scalar(struct loader *l, yaml_event_t *ev)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    struct config_node *n;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

    /* An explicit !!str keeps even "null" a string, as a quote would. */
    if (tag && !strcmp(tag, YAML_STR_TAG))
        plain = false;
    n = make_node(
        l, plain && is_null_word((const char *)ev->data.scalar.value) ? CONFIG_NULL : CONFIG_SCALAR,
        &ev->start_mark);
    if (!n)
        return NULL;
    n->quoted = !plain;
    n->value = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
    if (!n->value) {
        conf_node_free(n);
        l->broken = true;
        return NULL;
    }
    if (strlen(n->value) != ev->data.scalar.length)
        lerr(l, &ev->start_mark, NULL, "NUL characters are not allowed in values");
    return n;
}

static struct config_node *parse_sequence(struct loader *l, yaml_event_t *start,
                                          const struct pseg *p, unsigned depth)
{
    struct config_node *n = make_node(l, CONFIG_SEQUENCE, &start->start_mark);
    size_t cap = 0;

    while (n && !l->broken) {
        yaml_event_t ev;
        struct config_node *item;
        struct pseg seg = {p, NULL, n->n};

        if (next(l, &ev) < 0)
            break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return n;
        }
        item = parse_node(l, &ev, &seg, depth + 1);
        if (item && append(n, &cap, NULL, item) < 0) {
            conf_node_free(item);
            l->broken = true;
        }
    }
    conf_node_free(n);
    return NULL;
}

static struct config_node *parse_mapping(struct loader *l, yaml_event_t *start,
                                         const struct pseg *p, unsigned depth)
{
    struct config_node *n = make_node(l, CONFIG_MAPPING, &start->start_mark);
    size_t cap = 0;

    while (n && !l->broken) {
        yaml_event_t ev;
        yaml_mark_t kmark;
        struct config_node *key, *val;
        struct pseg seg = {p, NULL, 0};

        if (next(l, &ev) < 0)
            break;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return n;
        }
        kmark = ev.start_mark;
        if (ev.type != YAML_SCALAR_EVENT) {
            lerr(l, &kmark, p, "keys must be plain strings, not a %s",
                 ev.type == YAML_MAPPING_START_EVENT ? "mapping"
                 : ev.type == YAML_ALIAS_EVENT       ? "alias"
                                                     : "sequence");
            key = parse_node(l, &ev, p, depth + 1);
            conf_node_free(key);
            key = NULL;
        } else {
            key = parse_scalar(l, &ev);
            yaml_event_delete(&ev);
        }
        if (l->broken) {
            conf_node_free(key);
            break;
        }
        if (key) {
            key->kind = CONFIG_SCALAR; /* "null:" as a key is just the word */
            seg.key = key->value;
            for (size_t i = 0; i < n->n; i++) {
                if (!strcmp(n->keys[i]->value, key->value)) {
                    lerr(l, &kmark, &seg, "duplicate key (first defined at line %u)",
                         n->keys[i]->line);
                    conf_node_free(key);
                    key = NULL;
                    break;
                }
            }
        }
        if (next(l, &ev) < 0) {
            conf_node_free(key);
            break;
        }
        val = parse_node(l, &ev, key ? &seg : p, depth + 1);
        if (key && val) {
            if (append(n, &cap, key, val) < 0) {
                conf_node_free(key);
                conf_node_free(val);
                l->broken = true;
            }
        } else {
            conf_node_free(key);
            conf_node_free(val);
        }
    }
    conf_node_free(n);
    return NULL;
}

/* Consumes ev (and, for collections, every event up to the matching end). */
static struct config_node *parse_node(struct loader *l, yaml_event_t *ev, const struct pseg *p,
                                      unsigned depth)
{
    struct config_node *n = NULL;

    if (depth > CONF_MAX_DEPTH) {
        lerr(l, &ev->start_mark, p, "nesting deeper than %u levels", CONF_MAX_DEPTH);
        l->broken = true;
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = parse_scalar(l, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        n = parse_sequence(l, ev, p, depth);
        break;
    case YAML_MAPPING_START_EVENT:
        n = parse_mapping(l, ev, p, depth);
        break;
    case YAML_ALIAS_EVENT:
        /* Aliases would share nodes (and invite exponential expansion);
         * configs are short enough to repeat a value. */
        lerr(l, &ev->start_mark, p,
             "YAML aliases (*%s) are not supported; repeat the value instead",
             (const char *)ev->data.alias.anchor);
        break;
    default:
        lerr(l, &ev->start_mark, p, "unexpected YAML event");
        l->broken = true;
        break;
    }
    yaml_event_delete(ev);
    return n;
}

int conf_parse_yaml(const char *file, const char *text, size_t len, struct config_node **ret_root,
                    struct config_errors *errs)
{
    struct loader l = {.file = file, .errs = errs};
    struct config_node *root = NULL;
    unsigned docs = 0;
    yaml_event_t ev;

    if (!yaml_parser_initialize(&l.parser)) {
        config_errors_add(errs, file, 0, 0, NULL, "out of memory");
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&l.parser, (const unsigned char *)text, len);
    while (!l.broken && next(&l, &ev) == 0) {
        yaml_event_type_t t = ev.type;

        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            lerr(&l, &ev.start_mark, NULL,
                 "more than one YAML document (---) in a file is not supported");
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT) {
            root = parse_node(&l, &ev, NULL, 0);
            continue;
        }
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&l.parser);
    if (l.broken || l.bad) {
        conf_node_free(root);
        return -EINVAL;
    }
    *ret_root = root;
    return 0;
}

const struct config_node *conf_map_get(const struct config_node *map, const char *key,
                                       size_t *ret_index)
{
    if (!map || map->kind != CONFIG_MAPPING)
        return NULL;
    for (size_t i = 0; i < map->n; i++) {
        if (!strcmp(map->keys[i]->value, key)) {
            if (ret_index)
                *ret_index = i;
            return map->items[i];
        }
    }
    return NULL;
}

const struct config_node *config_doc_get(const struct config_doc *doc, const char *key)
{
    return doc ? conf_map_get(doc->root, key, NULL) : NULL;
}

static const char *doc_add_file(struct config_doc *doc, const char *name)
{
    struct doc_priv *pv = doc->priv;
    char **files = realloc(pv->files, (pv->n + 1) * sizeof(*files));
    char *copy;

    if (!files)
        return NULL;
    pv->files = files;
    copy = strdup(name);
    if (!copy)
        return NULL;
    pv->files[pv->n++] = copy;
    return copy;
}

static struct config_doc *doc_new(const char *main_file)
{
    struct config_doc *doc = calloc(1, sizeof(*doc));

    if (!doc)
        return NULL;
    doc->priv = calloc(1, sizeof(struct doc_priv));
    doc->main_file = strdup(main_file);
    if (!doc->priv || !doc->main_file) {
        config_doc_free(doc);
        return NULL;
    }
    return doc;
}

void config_doc_free(struct config_doc *doc)
{
    struct doc_priv *pv;

    if (!doc)
        return;
    pv = doc->priv;
    conf_node_free(doc->root);
    for (size_t i = 0; pv && i < pv->n; i++)
        free(pv->files[i]);
    if (pv)
        free(pv->files);
    free(pv);
    free(doc->main_file);
    free(doc);
}

int config_load_string(const char *name, const char *text, struct config_doc **ret,
                       struct config_errors *errs)
{
    struct config_doc *doc = doc_new(name);
    const char *file;
    int r;

    if (!doc || !(file = doc_add_file(doc, name))) {
        config_doc_free(doc);
        config_errors_add(errs, name, 0, 0, NULL, "out of memory");
        return -ENOMEM;
    }
    r = conf_parse_yaml(file, text, strlen(text), &doc->root, errs);
    if (r == 0 && !doc->root && !(doc->root = conf_node_new(CONFIG_MAPPING, file, 1, 1)))
        r = -ENOMEM;
    if (r < 0) {
        config_doc_free(doc);
        return r;
    }
    *ret = doc;
    return 0;
}

static int read_file(const char *path, char **ret, size_t *ret_len, struct config_errors *errs)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd, r = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        r = -errno;
        config_errors_add(errs, path, 0, 0, NULL, "cannot open: %s", strerror(-r));
        return r;
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        config_errors_add(errs, path, 0, 0, NULL, "cannot stat: %s", strerror(-r));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        config_errors_add(errs, path, 0, 0, NULL, "not a regular file");
        goto out;
    }
    if (st.st_size > (off_t)MAX_FILE_SIZE) {
        r = -EFBIG;
        config_errors_add(errs, path, 0, 0, NULL, "larger than %u bytes", MAX_FILE_SIZE);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        r = -ENOMEM;
        config_errors_add(errs, path, 0, 0, NULL, "out of memory");
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + len, (size_t)st.st_size - len);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = -errno;
            config_errors_add(errs, path, 0, 0, NULL, "cannot read: %s", strerror(-r));
            goto out;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    *ret = buf;
    *ret_len = len;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return r;
}

/* Parses one file whose root must be a mapping (or empty). */
static int load_file(struct config_doc *doc, const char *path, struct config_node **ret,
                     struct config_errors *errs)
{
    const char *file = doc_add_file(doc, path);
    struct config_node *root = NULL;
    char *text = NULL;
    size_t len = 0;
    int r;

    if (!file) {
        config_errors_add(errs, path, 0, 0, NULL, "out of memory");
        return -ENOMEM;
    }
    r = read_file(path, &text, &len, errs);
    if (r < 0)
        return r;
    r = conf_parse_yaml(file, text, len, &root, errs);
    free(text);
    if (r < 0)
        return r;
    if (root && root->kind == CONFIG_NULL) {
        conf_node_free(root);
        root = NULL;
    }
    if (root && root->kind != CONFIG_MAPPING) {
        config_errors_add(errs, file, root->line, root->col, NULL,
                          "the top level must be a mapping of sections (agentd:, health:, ...)");
        conf_node_free(root);
        return -EINVAL;
    }
    if (!root && !(root = conf_node_new(CONFIG_MAPPING, file, 1, 1)))
        return -ENOMEM;
    *ret = root;
    return 0;
}

/* Moves the keys of `add` into `root`; sequences under the same key are
 * concatenated, anything else defined twice is an error naming both places. */
static int merge(struct config_node *root, struct config_node *add, struct config_errors *errs)
{
    int r = 0;

    for (size_t i = 0; i < add->n; i++) {
        struct config_node *k = add->keys[i], *v = add->items[i];
        size_t at;
        const struct config_node *old = conf_map_get(root, k->value, &at);

        if (!old) {
            struct config_node **keys = realloc(root->keys, (root->n + 1) * sizeof(*keys));
            struct config_node **items;

            if (keys)
                root->keys = keys;
            items = keys ? realloc(root->items, (root->n + 1) * sizeof(*items)) : NULL;
            if (!items)
                return -ENOMEM;
            root->items = items;
            root->keys[root->n] = k;
            root->items[root->n++] = v;
            add->keys[i] = add->items[i] = NULL;
            continue;
        }
        if (old->kind == CONFIG_SEQUENCE && v->kind == CONFIG_SEQUENCE) {
            struct config_node *dst = root->items[at];
            struct config_node **items = realloc(dst->items, (dst->n + v->n) * sizeof(*items));

            if (!items && dst->n + v->n > 0)
                return -ENOMEM;
            dst->items = items;
            memcpy(dst->items + dst->n, v->items, v->n * sizeof(*items));
            dst->n += v->n;
            v->n = 0;
            continue;
        }
        config_errors_add(errs, k->file, k->line, k->col, k->value,
                          "already defined at %s:%u:%u (only lists can be split across files)",
                          root->keys[at]->file, root->keys[at]->line, root->keys[at]->col);
        r = -EINVAL;
    }
    return r;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_yaml_name(const char *n)
{
    size_t len = strlen(n);

    return n[0] != '.' && len > 5 && !strcmp(n + len - 5, ".yaml");
}

static int load_confd(struct config_doc *doc, const char *dir, struct config_errors *errs)
{
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    DIR *d;
    int r = 0;

    d = opendir(dir);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        r = -errno;
        config_errors_add(errs, dir, 0, 0, NULL, "cannot open directory: %s", strerror(-r));
        return r;
    }
    while ((de = readdir(d))) {
        char **nn;

        if (!is_yaml_name(de->d_name))
            continue;
        nn = realloc(names, (n + 1) * sizeof(*nn));
        if (!nn) {
            r = -ENOMEM;
            break;
        }
        names = nn;
        if (!(names[n] = strdup(de->d_name))) {
            r = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (r == 0 && n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; r != -ENOMEM && i < n; i++) {
        struct config_node *root = NULL;
        char *path = NULL;
        int k;

        if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
            r = -ENOMEM;
            break;
        }
        k = load_file(doc, path, &root, errs);
        free(path);
        if (k == 0) {
            k = merge(doc->root, root, errs);
            conf_node_free(root);
        }
        if (k == -ENOMEM)
            r = k;
        else if (k < 0 && r == 0)
            r = -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (r == -ENOMEM)
        config_errors_add(errs, dir, 0, 0, NULL, "out of memory");
    return r;
}

int config_load(const char *main_file, const char *confd_dir, struct config_doc **ret,
                struct config_errors *errs)
{
    struct config_doc *doc = doc_new(main_file);
    char *dflt = NULL;
    int r, k;

    if (!doc) {
        config_errors_add(errs, main_file, 0, 0, NULL, "out of memory");
        return -ENOMEM;
    }
    r = load_file(doc, main_file, &doc->root, errs);
    if (r < 0) {
        config_doc_free(doc);
        return r;
    }
    if (!confd_dir) {
        const char *slash = strrchr(main_file, '/');

        if (!slash)
            dflt = strdup("conf.d");
        else if (asprintf(&dflt, "%.*s/conf.d", (int)(slash - main_file), main_file) < 0)
            dflt = NULL;
        if (!dflt) {
            config_doc_free(doc);
            return -ENOMEM;
        }
        confd_dir = dflt;
    }
    k = load_confd(doc, confd_dir, errs);
    free(dflt);
    if (k < 0) {
        config_doc_free(doc);
        return k;
    }
    *ret = doc;
    return 0;
}

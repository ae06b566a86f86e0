/* YAML text → config_node trees with file:line:col on every node, through
 * libyaml's event API. Syntax errors carry libyaml's problem mark; duplicate
 * keys and second documents are reported and parsing goes on. Aliases become
 * copies of their anchor's node (bounded), and "<<" merge keys merge. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "conf.h"
#include "conf-internal.h"

/* One step of the key path being parsed; formatted only when an error needs it. */
struct pseg {
    const struct pseg *up;
    const char *key; /* NULL: a sequence index */
    size_t idx;
};

/* Alias expansion copies nodes; this bounds the copies (a "billion laughs"
 * document stops here, long before memory runs out). */
#define MAX_ALIAS_NODES 20000u

struct anchor {
    char *name;
    struct config_node *node; /* a private copy: the tree's own node may be freed on errors */
};

struct loader {
    yaml_parser_t parser;
    const char *file;
    struct config_errors *errs;
    bool broken; /* a syntax error: stop parsing */
    bool bad;    /* a semantic error: keep parsing to report more */
    struct anchor *anchors;
    size_t nanchors;
    size_t budget;    /* nodes alias expansion may still create */
    const char *text; /* the input, for hints about syntax errors */
    size_t len;
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
    /* The two mistakes people make most get a hint instead of parser talk. */
    if (ps->problem_mark.index < l->len && l->text[ps->problem_mark.index] == '\t') {
        config_errors_add(l->errs, l->file, (unsigned)ps->problem_mark.line + 1,
                          (unsigned)ps->problem_mark.column + 1, NULL,
                          "YAML syntax error: a tab character (YAML indents with spaces only)");
        l->broken = true;
        return;
    }
    if (!strcmp(problem, "mapping values are not allowed in this context")) {
        config_errors_add(l->errs, l->file, (unsigned)ps->problem_mark.line + 1,
                          (unsigned)ps->problem_mark.column + 1, NULL,
                          "YAML syntax error: %s (check the indentation, and quote values "
                          "that contain ': ')",
                          problem);
        l->broken = true;
        return;
    }
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

static void add_anchor(struct loader *l, const char *name, const struct config_node *node)
{
    struct anchor *a = realloc(l->anchors, (l->nanchors + 1) * sizeof(*a));

    if (!a) {
        l->broken = true;
        return;
    }
    l->anchors = a;
    a[l->nanchors].name = strdup(name);
    a[l->nanchors].node = conf_node_copy(node, &l->budget);
    if (!a[l->nanchors].name || !a[l->nanchors].node) {
        free(a[l->nanchors].name);
        conf_node_free(a[l->nanchors].node);
        config_errors_add(l->errs, l->file, node->line, node->col, NULL,
                          "YAML anchor &%s: aliases expand to more than %u nodes", name,
                          MAX_ALIAS_NODES);
        l->broken = true;
        return;
    }
    l->nanchors++;
}

static void free_anchors(struct loader *l)
{
    for (size_t i = 0; i < l->nanchors; i++) {
        free(l->anchors[i].name);
        conf_node_free(l->anchors[i].node);
    }
    free(l->anchors);
}

/* An alias is a copy of the node its anchor named last (YAML allows
 * redefinition); positions stay those of the anchored text. */
static struct config_node *resolve_alias(struct loader *l, yaml_event_t *ev, const struct pseg *p,
                                         unsigned depth)
{
    const char *name = (const char *)ev->data.alias.anchor;
    struct config_node *n;

    for (size_t i = l->nanchors; i-- > 0;) {
        if (strcmp(l->anchors[i].name, name) != 0)
            continue;
        if (depth + conf_node_height(l->anchors[i].node) > CONF_MAX_DEPTH) {
            lerr(l, &ev->start_mark, p, "alias *%s nests deeper than %u levels", name,
                 CONF_MAX_DEPTH);
            l->broken = true;
            return NULL;
        }
        n = conf_node_copy(l->anchors[i].node, &l->budget);
        if (!n) {
            lerr(l, &ev->start_mark, p, "aliases expand to more than %u nodes", MAX_ALIAS_NODES);
            l->broken = true;
        }
        return n;
    }
    lerr(l, &ev->start_mark, p, "unknown alias *%s (anchors must come first)", name);
    return NULL;
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
        if (item && conf_node_append(n, &cap, NULL, item) < 0) {
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
    struct config_node **merges = NULL;
    size_t cap = 0, nmerges = 0;

    while (n && !l->broken) {
        yaml_event_t ev;
        yaml_mark_t kmark;
        struct config_node *key, *val;
        struct pseg seg = {p, NULL, 0};
        bool merge = false;

        if (next(l, &ev) < 0)
            break;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            if (nmerges && conf_apply_merges(n, &cap, merges, nmerges) < 0) {
                l->broken = true;
                break;
            }
            for (size_t i = 0; i < nmerges; i++)
                conf_node_free(merges[i]);
            free(merges);
            return n;
        }
        kmark = ev.start_mark;
        if (ev.type != YAML_SCALAR_EVENT) {
            lerr(l, &kmark, p, "keys must be plain strings, not %s",
                 ev.type == YAML_MAPPING_START_EVENT ? "a mapping"
                 : ev.type == YAML_ALIAS_EVENT       ? "an alias"
                                                     : "a sequence");
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
            merge = !key->quoted && !strcmp(key->value, "<<");
            for (size_t i = 0; i < n->n && !merge; i++) {
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
        val = parse_node(l, &ev, key && !merge ? &seg : p, depth + 1);
        if (merge && val) {
            struct config_node **mm = NULL;

            if (!conf_mergeable(val)) {
                lerr(l, &kmark, p, "the merge key << needs a mapping or a list of mappings");
                conf_node_free(val);
            } else if (!(mm = realloc(merges, (nmerges + 1) * sizeof(*mm)))) {
                conf_node_free(val);
                l->broken = true;
            } else {
                merges = mm;
                merges[nmerges++] = val;
            }
            conf_node_free(key);
        } else if (key && val) {
            if (conf_node_append(n, &cap, key, val) < 0) {
                conf_node_free(key);
                conf_node_free(val);
                l->broken = true;
            }
        } else {
            conf_node_free(key);
            conf_node_free(val);
        }
    }
    for (size_t i = 0; i < nmerges; i++)
        conf_node_free(merges[i]);
    free(merges);
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
        n = resolve_alias(l, ev, p, depth);
        break;
    default:
        lerr(l, &ev->start_mark, p, "unexpected YAML event");
        l->broken = true;
        break;
    }
    {
        const yaml_char_t *anchor =
            ev->type == YAML_SCALAR_EVENT           ? ev->data.scalar.anchor
            : ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
            : ev->type == YAML_MAPPING_START_EVENT  ? ev->data.mapping_start.anchor
                                                    : NULL;

        if (n && anchor && !l->broken)
            add_anchor(l, (const char *)anchor, n);
    }
    yaml_event_delete(ev);
    return n;
}

int conf_parse_yaml(const char *file, const char *text, size_t len, struct config_node **ret_root,
                    struct config_errors *errs)
{
    struct loader l = {
        .file = file, .errs = errs, .budget = MAX_ALIAS_NODES, .text = text, .len = len};
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
    free_anchors(&l);
    if (l.broken || l.bad) {
        conf_node_free(root);
        return -EINVAL;
    }
    *ret_root = root;
    return 0;
}

/* Building a whole configuration: the YAML files, the core section, the
 * plugin directory it names, and every plugin's section checked against that
 * plugin's option table. Used alike by startup, --check-config and reload, so
 * what --check-config accepts is exactly what the daemon runs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static bool is_null_node(const struct config_node *n)
{
    return !n || n->kind == CONFIG_NULL;
}

static int add_entry(struct host_config *cfg, struct plugin_module *mod, void *conf)
{
    struct host_config_entry *ne = realloc(cfg->entries, (cfg->n + 1) * sizeof(*ne));

    if (!ne)
        return -ENOMEM;
    cfg->entries = ne;
    cfg->entries[cfg->n++] = (struct host_config_entry){mod, conf};
    return 0;
}

static void unknown_key(const struct config_node *key, struct config_errors *errs)
{
    const char *names[256];
    const char *hint;
    size_t n = 0;

    for (struct plugin_module *m = host.modules; m && n < 255; m = m->next)
        names[n++] = m->desc->name;
    names[n++] = "agentd";
    hint = config_suggest(key->value, names, n);
    if (hint)
        config_errors_add(errs, key->file, key->line, key->col, key->value,
                          "unknown plugin '%s' (did you mean '%s'?)", key->value, hint);
    else
        config_errors_add(errs, key->file, key->line, key->col, key->value,
                          "unknown plugin '%s' (no such plugin in the plugin directory)",
                          key->value);
}

static void apply_plugin(struct host_config *cfg, struct plugin_module *mod,
                         const struct config_node *key, const struct config_node *node,
                         struct config_errors *errs)
{
    const struct agentd_plugin *d = mod->desc;
    bool list_root = d->flags & AGENTD_PLUGIN_LIST_ROOT;
    void *conf = NULL;

    if (!d->schema) {
        if (!is_null_node(node) && !(node->kind == CONFIG_MAPPING && node->n == 0)) {
            config_errors_add(errs, node->file, node->line, node->col, d->name,
                              "plugin '%s' takes no options", d->name);
            return;
        }
    } else if (config_apply(node, d->name, d->schema, list_root, &conf, errs) < 0) {
        return;
    }
    if (add_entry(cfg, mod, conf) < 0) {
        config_free(d->schema, list_root, conf);
        config_errors_add(errs, key ? key->file : cfg->doc->main_file, 0, 0, d->name,
                          "out of memory");
    }
}

/* The plugin directory named in the file, read raw: used to go on checking
 * the plugins' sections when the core section itself has errors. */
static const char *raw_plugin_dir(const struct config_doc *doc)
{
    const struct config_node *core = config_doc_get(doc, "agentd");

    for (size_t i = 0; core && core->kind == CONFIG_MAPPING && i < core->n; i++)
        if (strcmp(core->keys[i]->value, "plugin_dir") == 0 &&
            core->items[i]->kind == CONFIG_SCALAR && core->items[i]->value[0] == '/')
            return core->items[i]->value;
    return AGENTD_PLUGIN_DIR;
}

struct err_key {
    size_t file_idx, idx;
    const struct config_error *e;
};

static int cmp_err(const void *a, const void *b)
{
    const struct err_key *x = a, *y = b;

    if (x->file_idx != y->file_idx)
        return x->file_idx < y->file_idx ? -1 : 1;
    if (x->e->line != y->e->line)
        return x->e->line < y->e->line ? -1 : 1;
    if (x->e->col != y->e->col)
        return x->e->col < y->e->col ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Errors in file order (files as first named), then line and column, so
 * that the output reads top to bottom like the file. */
static void sort_errors(struct config_errors *errs, size_t from)
{
    size_t n = errs->n - from;
    struct err_key *k;
    struct config_error *v;

    if (n < 2 || !(k = calloc(n, sizeof(*k))))
        return;
    if (!(v = calloc(n, sizeof(*v)))) {
        free(k);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct config_error *e = &errs->v[from + i];
        k[i] = (struct err_key){.file_idx = i, .idx = i, .e = e};
        for (size_t j = 0; j < i; j++) {
            const char *f = errs->v[from + j].file;
            if (f && e->file && strcmp(f, e->file) == 0) {
                k[i].file_idx = k[j].file_idx;
                break;
            }
        }
    }
    qsort(k, n, sizeof(*k), cmp_err);
    for (size_t i = 0; i < n; i++)
        v[i] = *k[i].e;
    memcpy(&errs->v[from], v, n * sizeof(*v));
    free(v);
    free(k);
}

int host_config_build(const char *path, struct host_config **ret, struct config_errors *errs)
{
    struct host_config *cfg = calloc(1, sizeof(*cfg));
    const struct config_node *root;
    size_t nerr0 = errs->n;
    int r;

    if (!cfg)
        return -ENOMEM;
    r = config_load(path, NULL, &cfg->doc, errs);
    if (r < 0) {
        host_config_free(cfg);
        return r;
    }
    root = cfg->doc->root;
    const char *pdir;
    if (config_apply(config_doc_get(cfg->doc, "agentd"), "agentd", &core_schema, false,
                     (void **)&cfg->core, errs) < 0) {
        cfg->core = NULL;
        pdir = raw_plugin_dir(cfg->doc);
    } else if (core_conf_finish(cfg->core) < 0) {
        host_config_free(cfg);
        return -ENOMEM;
    } else {
        pdir = cfg->core->plugin_dir;
    }
    r = plugin_scan_dir(pdir);
    if (r < 0) {
        const struct config_node *pd = config_doc_get(cfg->doc, "agentd");
        config_errors_add(errs, pd ? pd->file : cfg->doc->main_file, pd ? pd->line : 0,
                          pd ? pd->col : 0, "agentd.plugin_dir", "cannot read '%s': %s", pdir,
                          strerror(-r));
    }

    /* Built-ins flagged ALWAYS come first, so every other plugin starts
     * after (and stops before) the services they provide. */
    for (struct plugin_module *m = host.modules; m; m = m->next) {
        if (!(m->desc->flags & AGENTD_PLUGIN_ALWAYS))
            continue;
        const struct config_node *node = config_doc_get(cfg->doc, m->desc->name);
        apply_plugin(cfg, m, NULL, node, errs);
    }
    for (size_t i = 0; root && root->kind == CONFIG_MAPPING && i < root->n; i++) {
        const struct config_node *key = root->keys[i];
        struct plugin_module *m;

        if (strcmp(key->value, "agentd") == 0)
            continue;
        m = plugin_module_find(key->value);
        if (!m) {
            unknown_key(key, errs);
            continue;
        }
        if (m->desc->flags & AGENTD_PLUGIN_ALWAYS)
            continue;
        apply_plugin(cfg, m, key, root->items[i], errs);
    }
    if (errs->n > nerr0) {
        sort_errors(errs, nerr0);
        host_config_free(cfg);
        return -EINVAL;
    }
    *ret = cfg;
    return 0;
}

struct host_config_entry *host_config_find(struct host_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && i < cfg->n; i++)
        if (strcmp(cfg->entries[i].mod->desc->name, name) == 0)
            return &cfg->entries[i];
    return NULL;
}

void host_config_free(struct host_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        const struct agentd_plugin *d = cfg->entries[i].mod->desc;
        if (cfg->entries[i].conf)
            config_free(d->schema, d->flags & AGENTD_PLUGIN_LIST_ROOT, cfg->entries[i].conf);
    }
    free(cfg->entries);
    if (cfg->core)
        config_free(&core_schema, false, cfg->core);
    config_doc_free(cfg->doc);
    free(cfg);
}

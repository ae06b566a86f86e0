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
    if (config_apply(config_doc_get(cfg->doc, "agentd"), "agentd", &core_schema, false,
                     (void **)&cfg->core, errs) < 0) {
        host_config_free(cfg);
        return -EINVAL;
    }
    if (core_conf_finish(cfg->core) < 0) {
        host_config_free(cfg);
        return -ENOMEM;
    }
    r = plugin_scan_dir(cfg->core->plugin_dir);
    if (r < 0) {
        const struct config_node *pd = config_doc_get(cfg->doc, "agentd");
        config_errors_add(errs, pd ? pd->file : cfg->doc->main_file, pd ? pd->line : 0,
                          pd ? pd->col : 0, "agentd.plugin_dir", "cannot read '%s': %s",
                          cfg->core->plugin_dir, strerror(-r));
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

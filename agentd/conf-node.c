/* config_node trees: allocation, copies (for YAML aliases), lookups, and
 * YAML's "<<" merge of mappings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf-internal.h"

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

/* Copies src for an alias, taking one from *budget per node; NULL when out
 * of memory or over the budget. */
struct config_node *conf_node_copy(const struct config_node *src, size_t *budget)
{
    struct config_node *n;

    if (*budget == 0)
        return NULL;
    (*budget)--;
    n = conf_node_new(src->kind, src->file, src->line, src->col);
    if (!n)
        return NULL;
    n->quoted = src->quoted;
    if (src->value && !(n->value = strdup(src->value)))
        goto fail;
    if (src->n) {
        n->items = calloc(src->n, sizeof(*n->items));
        if (!n->items)
            goto fail;
        if (src->keys && !(n->keys = calloc(src->n, sizeof(*n->keys))))
            goto fail;
    }
    for (size_t i = 0; i < src->n; i++) {
        /* n->n counts complete pairs, so a failure here frees what exists. */
        struct config_node *k = src->keys ? conf_node_copy(src->keys[i], budget) : NULL;
        struct config_node *v = conf_node_copy(src->items[i], budget);

        if (!v || (src->keys && !k)) {
            conf_node_free(k);
            conf_node_free(v);
            goto fail;
        }
        if (n->keys)
            n->keys[i] = k;
        n->items[i] = v;
        n->n++;
    }
    return n;
fail:
    conf_node_free(n);
    return NULL;
}

unsigned conf_node_height(const struct config_node *n)
{
    unsigned h = 0;

    for (size_t i = 0; i < n->n; i++) {
        unsigned c = conf_node_height(n->items[i]);

        if (c > h)
            h = c;
    }
    return h + 1;
}

int conf_node_append(struct config_node *parent, size_t *cap, struct config_node *key,
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

/* Applies the "<<" merge keys of mapping n: keys of the merged mappings that
 * n does not define itself are added, earlier sources first (YAML's merge
 * key type). The merged nodes are moved out of `merges`. */
int conf_apply_merges(struct config_node *n, size_t *cap, struct config_node **merges,
                      size_t nmerges)
{
    for (size_t m = 0; m < nmerges; m++) {
        struct config_node *mv = merges[m];
        size_t nsrc = mv->kind == CONFIG_MAPPING ? 1 : mv->n;

        for (size_t si = 0; si < nsrc; si++) {
            struct config_node *src = mv->kind == CONFIG_MAPPING ? mv : mv->items[si];

            for (size_t k = 0; k < src->n; k++) {
                if (conf_map_get(n, src->keys[k]->value, NULL))
                    continue;
                if (conf_node_append(n, cap, src->keys[k], src->items[k]) < 0)
                    return -ENOMEM;
                src->keys[k] = src->items[k] = NULL;
            }
        }
    }
    return 0;
}

bool conf_mergeable(const struct config_node *v)
{
    if (v->kind == CONFIG_MAPPING)
        return true;
    if (v->kind != CONFIG_SEQUENCE)
        return false;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->kind != CONFIG_MAPPING)
            return false;
    }
    return true;
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

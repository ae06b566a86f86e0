/* Metadata: the instance facts templates are filled from. Providers (imds)
 * set values; the static agentd.metadata map fills in what no provider set,
 * which is how a laptop or an on-prem host gets {region} or {tag:Name}.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define MAX_KEYS 1024

struct kv {
    char *key;
    char *value;
};

struct kvset {
    size_t n, cap;
    struct kv *v;
};

static struct kvset provided, statics;

static struct kv *kv_find(struct kvset *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0)
            return &s->v[i];
    return NULL;
}

static void kv_clear(struct kvset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].key);
        free(s->v[i].value);
    }
    free(s->v);
    *s = (struct kvset){0};
}

/* Sets key in s; returns 1 if the stored value changed, 0 if not, -errno. */
static int kv_set(struct kvset *s, const char *key, const char *value)
{
    struct kv *e = kv_find(s, key);
    char *v;

    if (e && strcmp(e->value, value) == 0)
        return 0;
    if (!(v = strdup(value)))
        return -ENOMEM;
    if (e) {
        free(e->value);
        e->value = v;
        return 1;
    }
    if (s->n >= MAX_KEYS) {
        free(v);
        return -E2BIG;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct kv *nv = realloc(s->v, cap * sizeof(*nv));
        if (!nv) {
            free(v);
            return -ENOMEM;
        }
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n].key = strdup(key);
    if (!s->v[s->n].key) {
        free(v);
        return -ENOMEM;
    }
    s->v[s->n++].value = v;
    return 1;
}

static void publish_changed(const char *const *keys, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(keys[i]));
    agentd_event_publish(NULL, "metadata.changed", json_pack("{s:o}", "keys", arr));
}

const char *meta_lookup(const char *name, void *ud)
{
    struct kv *e = kv_find(&provided, name);

    if (!e)
        e = kv_find(&statics, name);
    return e ? e->value : NULL;
}

void meta_set_static(const struct agentd_map *map)
{
    struct kvset old = statics;
    const char **changed;
    size_t nchanged = 0;

    statics = (struct kvset){0};
    for (size_t i = 0; map && i < map->n; i++)
        kv_set(&statics, map->keys[i], map->values[i]);

    /* A static value is visible only where no provider set the key. */
    changed = calloc(old.n + statics.n + 1, sizeof(*changed));
    if (changed) {
        for (size_t i = 0; i < statics.n; i++) {
            struct kv *o = kv_find(&old, statics.v[i].key);
            if (!kv_find(&provided, statics.v[i].key) &&
                (!o || strcmp(o->value, statics.v[i].value) != 0))
                changed[nchanged++] = statics.v[i].key;
        }
        for (size_t i = 0; i < old.n; i++)
            if (!kv_find(&statics, old.v[i].key) && !kv_find(&provided, old.v[i].key))
                changed[nchanged++] = old.v[i].key;
        if (nchanged)
            publish_changed(changed, nchanged);
        free(changed);
    }
    kv_clear(&old);
}

int agentd_metadata_set(struct agentd_plugin_ctx *ctx, const char *key, const char *value)
{
    const char *before;
    bool differs;
    int r;

    if (!key || !*key || !value)
        return -EINVAL;
    before = meta_lookup(key, NULL);
    differs = !before || strcmp(before, value) != 0;
    r = kv_set(&provided, key, value);
    if (r < 0)
        return r;
    if (differs)
        publish_changed(&key, 1);
    return 0;
}

int agentd_metadata_unset(struct agentd_plugin_ctx *ctx, const char *key)
{
    struct kv *e = key ? kv_find(&provided, key) : NULL;
    struct kv *st;
    bool differs;

    if (!e)
        return -ENOENT;
    st = kv_find(&statics, key);
    differs = !st || strcmp(st->value, e->value) != 0;
    free(e->key);
    free(e->value);
    *e = provided.v[--provided.n];
    if (differs)
        publish_changed(&key, 1);
    return 0;
}

const char *agentd_metadata_get(struct agentd_plugin_ctx *ctx, const char *key)
{
    return key ? meta_lookup(key, NULL) : NULL;
}

struct extra_lookup {
    const char *const *extra;
};

static const char *lookup_with_extra(const char *name, void *ud)
{
    struct extra_lookup *x = ud;

    for (size_t i = 0; x->extra && x->extra[i] && x->extra[i + 1]; i += 2)
        if (strcmp(x->extra[i], name) == 0)
            return x->extra[i + 1];
    return meta_lookup(name, NULL);
}

int agentd_template_expand(struct agentd_plugin_ctx *ctx, const char *tmpl,
                           const char *const *extra, char **ret, char **ret_missing)
{
    struct extra_lookup x = {extra};

    if (!tmpl || !ret)
        return -EINVAL;
    return template_expand(tmpl, lookup_with_extra, &x, ret, ret_missing);
}

void meta_free(void)
{
    kv_clear(&provided);
    kv_clear(&statics);
}

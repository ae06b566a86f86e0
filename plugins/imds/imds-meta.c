/* Instance metadata → agentd metadata keys. A refresh reads every item one
 * after another over the one kept-alive connection (IMDS is throttled per
 * instance, and these are a dozen tiny answers), collects the values, and only
 * when all of them were read applies the differences: a half-read refresh
 * never replaces good values with nothing. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imds.h"

#define MAX_TAGS 64 /* EC2 allows 50 per resource */
#define MAX_KEYS (16 + MAX_TAGS)

enum special { PLAIN, IDENTITY, ROLE, TAGS, VPC };

static const struct step {
    const char *path;
    const char *key;
    bool required;
    enum special kind;
} steps[] = {
    {"meta-data/instance-id", "instance_id", true, PLAIN},
    {"meta-data/instance-type", "instance_type", false, PLAIN},
    {"meta-data/ami-id", "ami_id", false, PLAIN},
    {"meta-data/placement/region", "region", false, PLAIN},
    {"meta-data/placement/availability-zone", "az", false, PLAIN},
    {"meta-data/local-ipv4", "local_ipv4", false, PLAIN},
    {"meta-data/public-ipv4", "public_ipv4", false, PLAIN},
    {"meta-data/local-hostname", "hostname", false, PLAIN},
    {"meta-data/mac", "mac", false, PLAIN},
    /* The path holds the mac read just before; the health plugin's
     * automatic allow-list is these blocks. */
    {"meta-data/network/interfaces/macs/MAC/vpc-ipv4-cidr-blocks", "vpc_ipv4_cidr_blocks", false,
     VPC},
    {"dynamic/instance-identity/document", NULL, true, IDENTITY},
    {"meta-data/iam/security-credentials/", "iam_role", false, ROLE},
    {"meta-data/tags/instance/", NULL, false, TAGS},
};
#define N_STEPS (sizeof(steps) / sizeof(steps[0]))

struct refresh {
    struct imds *im;
    size_t step;
    struct agentd_map vals;
    char **tag_keys;
    size_t tag_i;
    bool tags_enabled;
};

static void step_next(struct refresh *rf);

static int map_find(const struct agentd_map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return (int)i;
    return -1;
}

static int map_put(struct agentd_map *m, const char *key, const char *value)
{
    int i = map_find(m, key);
    char *v = strdup(value);
    if (!v)
        return -ENOMEM;
    if (i >= 0) {
        free(m->values[i]);
        m->values[i] = v;
        return 0;
    }
    if (m->n >= MAX_KEYS) {
        free(v);
        return -E2BIG;
    }
    if (!m->keys) {
        m->keys = calloc(MAX_KEYS, sizeof(char *));
        m->values = calloc(MAX_KEYS, sizeof(char *));
        if (!m->keys || !m->values) {
            free(m->keys);
            free(m->values);
            m->keys = m->values = NULL;
            free(v);
            return -ENOMEM;
        }
    }
    if (!(m->keys[m->n] = strdup(key))) {
        free(v);
        return -ENOMEM;
    }
    m->values[m->n++] = v;
    return 0;
}

static const char *map_get(const struct agentd_map *m, const char *key)
{
    int i = map_find(m, key);
    return i >= 0 ? m->values[i] : "-";
}

static size_t map_count_tags(const struct agentd_map *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += strncmp(m->keys[i], "tag:", 4) == 0;
    return n;
}

static void map_clear(struct agentd_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(*m));
}

static void refresh_free(struct refresh *rf)
{
    map_clear(&rf->vals);
    imds_strv_free(rf->tag_keys);
    free(rf);
}

static void fail(struct refresh *rf, int err, const char *what)
{
    struct imds *im = rf->im;
    refresh_free(rf);
    imds_refresh_done(im, err, what);
}

/* Publishes what changed to the host and keeps the new set. */
static void apply(struct refresh *rf)
{
    struct imds *im = rf->im;
    size_t changed = 0;
    char list[512] = "";
    size_t used = 0;

    for (size_t i = 0; i < rf->vals.n; i++) {
        int o = map_find(&im->meta, rf->vals.keys[i]);
        if (o >= 0 && strcmp(im->meta.values[o], rf->vals.values[i]) == 0)
            continue;
        int r = agentd_metadata_set(im->ctx, rf->vals.keys[i], rf->vals.values[i]);
        if (r < 0)
            agentd_warning(im->ctx, "cannot set metadata '%s': %s", rf->vals.keys[i], strerror(-r));
        changed++;
        int n =
            snprintf(list + used, sizeof(list) - used, "%s%s", used ? " " : "", rf->vals.keys[i]);
        if (n > 0 && (size_t)n < sizeof(list) - used)
            used += (size_t)n;
    }
    for (size_t i = 0; i < im->meta.n; i++) {
        if (map_find(&rf->vals, im->meta.keys[i]) >= 0)
            continue;
        agentd_metadata_unset(im->ctx, im->meta.keys[i]);
        changed++;
        int n =
            snprintf(list + used, sizeof(list) - used, "%s-%s", used ? " " : "", im->meta.keys[i]);
        if (n > 0 && (size_t)n < sizeof(list) - used)
            used += (size_t)n;
    }
    if (changed && im->meta.n == 0) {
        agentd_info(im->ctx, "instance %s (%s) in %s, account %s, role %s, %zu tag(s)",
                    map_get(&rf->vals, "instance_id"), map_get(&rf->vals, "instance_type"),
                    map_get(&rf->vals, "az"), map_get(&rf->vals, "account_id"),
                    map_get(&rf->vals, "iam_role"), map_count_tags(&rf->vals));
    } else if (changed) {
        agentd_info(im->ctx, "metadata changed: %s", list);
    }
    map_clear(&im->meta);
    im->meta = rf->vals;
    memset(&rf->vals, 0, sizeof(rf->vals));

    int ri = map_find(&im->meta, "iam_role");
    free(im->role);
    im->role = ri >= 0 ? strdup(im->meta.values[ri]) : NULL;
    im->tags_enabled = rf->tags_enabled;
}

static void identity_apply(struct refresh *rf, const struct imds_identity *id)
{
    /* The document is signed by AWS and always present; it fills in items a
     * restrictive hop limit or an old instance type did not give us. */
    static const struct {
        const char *key;
        size_t off;
    } fill[] = {
        {"account_id", offsetof(struct imds_identity, account_id)},
        {"region", offsetof(struct imds_identity, region)},
        {"az", offsetof(struct imds_identity, az)},
        {"instance_type", offsetof(struct imds_identity, instance_type)},
        {"ami_id", offsetof(struct imds_identity, image_id)},
        {"local_ipv4", offsetof(struct imds_identity, private_ip)},
    };
    for (size_t i = 0; i < sizeof(fill) / sizeof(fill[0]); i++) {
        const char *v = *(char *const *)((const char *)id + fill[i].off);
        if (v && (strcmp(fill[i].key, "account_id") == 0 || map_find(&rf->vals, fill[i].key) < 0))
            map_put(&rf->vals, fill[i].key, v);
    }
}

static bool tag_key_ok(const char *k)
{
    /* A key must survive a {tag:KEY} template and a URL path. */
    return *k && !strpbrk(k, "{}/");
}

static void tag_done(struct imds *im, int err, long status, const char *body, size_t len, void *ud)
{
    struct refresh *rf = ud;
    if (err == -ECANCELED || im->stopping)
        return fail(rf, -ECANCELED, "stopping");
    if (err == 0) {
        char *v = NULL;
        char key[300];
        snprintf(key, sizeof(key), "tag:%s", rf->tag_keys[rf->tag_i]);
        /* An empty tag value is a real value. */
        if (imds_parse_value(body, len, &v) == 0) {
            map_put(&rf->vals, key, v);
            free(v);
        } else {
            map_put(&rf->vals, key, "");
        }
    } else if (err != -ENOENT) {
        return fail(rf, err, "tags/instance");
    }
    rf->tag_i++;
    step_next(rf);
}

static void step_done(struct imds *im, int err, long status, const char *body, size_t len, void *ud)
{
    struct refresh *rf = ud;
    const struct step *s = &steps[rf->step];
    char *v = NULL;
    int r;

    if (err == -ECANCELED || im->stopping)
        return fail(rf, -ECANCELED, "stopping");
    if (err == -ENOENT && !s->required) {
        /* public-ipv4 without a public address, no role, tags not allowed. */
        rf->step++;
        return step_next(rf);
    }
    if (err < 0)
        return fail(rf, err, s->path);

    switch (s->kind) {
    case PLAIN:
        if ((r = imds_parse_value(body, len, &v)) < 0) {
            if (s->required)
                return fail(rf, -EPROTO, s->path);
            break;
        }
        map_put(&rf->vals, s->key, v);
        break;
    case IDENTITY: {
        struct imds_identity id = {0};
        if (imds_parse_identity(body, len, &id) < 0)
            return fail(rf, -EPROTO, s->path);
        identity_apply(rf, &id);
        imds_identity_clear(&id);
        break;
    }
    case ROLE: {
        char **roles = NULL;
        if (imds_parse_listing(body, len, 4, &roles) == 0 && roles[0])
            map_put(&rf->vals, s->key, roles[0]);
        imds_strv_free(roles);
        break;
    }
    case VPC: {
        char **blocks = NULL, joined[512] = "";
        size_t off = 0;
        if (imds_parse_listing(body, len, 16, &blocks) == 0) {
            for (size_t i = 0; blocks[i] && off < sizeof(joined); i++)
                off += (size_t)snprintf(joined + off, sizeof(joined) - off, "%s%s", i ? " " : "",
                                        blocks[i]);
            if (joined[0] && off < sizeof(joined))
                map_put(&rf->vals, s->key, joined);
        }
        imds_strv_free(blocks);
        break;
    }
    case TAGS:
        rf->tags_enabled = true;
        if ((r = imds_parse_listing(body, len, MAX_TAGS, &rf->tag_keys)) < 0)
            return fail(rf, -EPROTO, s->path);
        break;
    }
    free(v);
    rf->step++;
    step_next(rf);
}

/* A mac as IMDS writes it (0e:12:34:56:78:9a): safe inside a path. */
static bool mac_ok(const struct refresh *rf)
{
    const char *m = map_get(&rf->vals, "mac");
    if (strlen(m) != 17)
        return false;
    for (size_t i = 0; i < 17; i++)
        if (i % 3 == 2 ? m[i] != ':' : !isxdigit((unsigned char)m[i]))
            return false;
    return true;
}

static void step_next(struct refresh *rf)
{
    struct imds *im = rf->im;
    int r;

    while (rf->step < N_STEPS && ((steps[rf->step].kind == TAGS && !im->conf->tags) ||
                                  (steps[rf->step].kind == VPC && !mac_ok(rf))))
        rf->step++;
    if (rf->step < N_STEPS) {
        char vpath[256];
        const char *path = steps[rf->step].path;
        if (steps[rf->step].kind == VPC) {
            snprintf(vpath, sizeof(vpath),
                     "meta-data/network/interfaces/macs/%s/vpc-ipv4-cidr-blocks",
                     map_get(&rf->vals, "mac"));
            path = vpath;
        }
        r = imds_get(im, path, (unsigned)im->conf->attempts, step_done, rf);
        if (r < 0)
            fail(rf, r, steps[rf->step].path);
        return;
    }
    while (rf->tag_keys && rf->tag_keys[rf->tag_i] && !tag_key_ok(rf->tag_keys[rf->tag_i]))
        rf->tag_i++;
    if (rf->tag_keys && rf->tag_keys[rf->tag_i]) {
        char *esc = NULL, path[1024];
        if ((r = imds_path_escape(rf->tag_keys[rf->tag_i], &esc)) < 0)
            return fail(rf, r, "tags/instance");
        snprintf(path, sizeof(path), "meta-data/tags/instance/%s", esc);
        free(esc);
        r = imds_get(im, path, (unsigned)im->conf->attempts, tag_done, rf);
        if (r < 0)
            fail(rf, r, path);
        return;
    }
    apply(rf);
    refresh_free(rf);
    imds_refresh_done(im, 0, NULL);
}

int imds_meta_refresh(struct imds *im)
{
    struct refresh *rf = calloc(1, sizeof(*rf));
    if (!rf)
        return -ENOMEM;
    rf->im = im;
    step_next(rf);
    return 0;
}

const char *imds_meta_get(const struct imds *im, const char *key)
{
    int i = map_find(&im->meta, key);
    return i >= 0 ? im->meta.values[i] : NULL;
}

void imds_meta_free(struct imds *im)
{
    map_clear(&im->meta);
    free(im->role);
    im->role = NULL;
}

json_t *imds_meta_json(const struct imds *im)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < im->meta.n; i++)
        json_object_set_new(o, im->meta.keys[i], json_string(im->meta.values[i]));
    return o;
}

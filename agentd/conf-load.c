/* Loading a configuration: the main file, then conf.d/<name>.yaml files in
 * lexical order merged into its top-level mapping. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conf-internal.h"

/* A config file larger than this is certainly a mistake (a log, a binary). */
#define MAX_FILE_SIZE (4u * 1024 * 1024)

struct doc_priv {
    size_t n;
    char **files; /* every file name a node points at */
};

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
    /* A main file that does not parse still lets conf.d be checked, so one
     * run reports every file's errors; a missing one stops here. */
    if (r < 0 && r != -EINVAL) {
        config_doc_free(doc);
        return r;
    }
    if (!doc->root && !(doc->root = conf_node_new(CONFIG_MAPPING, doc->main_file, 1, 1))) {
        config_doc_free(doc);
        return -ENOMEM;
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
    if (k < 0 || r < 0) {
        config_doc_free(doc);
        return k < 0 && k != -EINVAL ? k : -EINVAL;
    }
    *ret = doc;
    return 0;
}

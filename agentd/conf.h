/* Configuration loading: YAML files → node tree with positions → structs
 * filled from option tables (struct agentd_schema in plugin.h). Internal to
 * the host; plugins see only their filled struct. Helper code here does not
 * log: every problem goes into a struct config_errors that the caller prints.
 */
#ifndef AGENTD_CONF_H
#define AGENTD_CONF_H

#include <stdbool.h>
#include <stdio.h>

#include "agentd/plugin.h"

/* One error: "FILE:LINE:COL: PATH: MESSAGE". line/col are 1-based; 0 when the
 * error concerns a whole file. path is the key path ("health.checks[1].interval"),
 * or empty. */
struct config_error {
    char *file;
    unsigned line, col;
    char *path;
    char *message;
};

struct config_errors {
    size_t n;
    struct config_error *v;
};

void config_errors_add(struct config_errors *errs, const char *file, unsigned line, unsigned col,
                       const char *path, const char *fmt, ...) AGENTD_PRINTF(6, 7);
/* Prints each error as one line "file:line:col: path: message" to f. */
void config_errors_print(const struct config_errors *errs, FILE *f);
/* The errors as a JSON array of those same strings (for agentctl reload). */
json_t *config_errors_json(const struct config_errors *errs);
void config_errors_clear(struct config_errors *errs);

/* A parsed YAML node with its source position. A plain empty, "~" or "null"
 * scalar is CONFIG_NULL (its text still in value); quoted or !!str scalars are
 * always CONFIG_SCALAR. Mapping keys are unique (duplicates are load errors).
 * YAML aliases are resolved to copies of the anchored node (keeping its
 * positions; at most 20000 copied nodes per file) and "<<" merge keys work. */
enum config_node_kind { CONFIG_SCALAR, CONFIG_SEQUENCE, CONFIG_MAPPING, CONFIG_NULL };

struct config_node {
    enum config_node_kind kind;
    const char *file; /* shared, owned by the doc */
    unsigned line, col;
    char *value;                /* SCALAR: its text */
    bool quoted;                /* SCALAR: was quoted in YAML (so "123" stays a string) */
    size_t n;                   /* SEQUENCE / MAPPING: number of children */
    struct config_node **items; /* SEQUENCE items; MAPPING values */
    struct config_node **keys;  /* MAPPING keys (scalars) */
};

/* A loaded configuration: the main file merged with conf.d/<*.yaml> in lexical
 * order. Top-level keys must be unique across files (an error names both
 * places), except sequences, which are concatenated (so conf.d files can add
 * log pipelines or tunnels). */
struct config_doc {
    char *main_file;
    struct config_node *root; /* a MAPPING; empty if every file was empty */
    /* internals: storage for file names and nodes */
    void *priv;
};

/* Loads main_file and, if confd_dir is non-NULL and exists, its *.yaml files.
 * confd_dir NULL means "<dirname(main_file)>/conf.d". Syntax errors (with
 * libyaml's marks), duplicate keys and non-mapping roots go into errs. Returns
 * 0 with *ret set, or -EINVAL (errs filled) / -errno for I/O errors (also in
 * errs, naming the file). */
int config_load(const char *main_file, const char *confd_dir, struct config_doc **ret,
                struct config_errors *errs);
/* Parses YAML text (for defaults and tests); name is used in positions. */
int config_load_string(const char *name, const char *text, struct config_doc **ret,
                       struct config_errors *errs);
void config_doc_free(struct config_doc *doc);
/* The value of a top-level key, or NULL. */
const struct config_node *config_doc_get(const struct config_doc *doc, const char *key);

/* Storage (see plugin.h): a LIST of OBJECT holds its structs inline, like the
 * list root: ((struct foo *)list->items)[i]; an OBJECT option is a pointer,
 * NULL when absent without a default. A key given as null (`key:` or `key: ~`)
 * counts as absent. Quoted scalars stay strings: "8080" is no INT, 'yes' no
 * BOOL. List indexes in key paths count from 0. schema->validate runs only
 * for a mapping whose own options (and nested ones) had no errors. The errors
 * one call adds are sorted by position within each file.
 *
 * Fills a new struct from node following schema. path is the key path prefix
 * for messages ("health"). list_root: node must be a sequence of mappings and
 * the result is a struct agentd_list. A NULL or CONFIG_NULL node means an
 * empty mapping (all defaults) or an empty list. Unknown keys are errors with
 * a did-you-mean. All errors are collected. Returns 0 and *ret (free with
 * config_free), or -EINVAL. Template names in AGENTD_OPT_TEMPLATE strings are
 * checked with template_check(). */
int config_apply(const struct config_node *node, const char *path,
                 const struct agentd_schema *schema, bool list_root, void **ret,
                 struct config_errors *errs);
void config_free(const struct agentd_schema *schema, bool list_root, void *conf);
/* Whether two filled configs are equal (decides reload vs no-op). */
bool config_equal(const struct agentd_schema *schema, bool list_root, const void *a, const void *b);
/* Emits a filled config as YAML under key `name` with defaults filled in and
 * AGENTD_OPT_SECRET values shown as "********". */
void config_dump(FILE *f, const char *name, const struct agentd_schema *schema, bool list_root,
                 const void *conf);
/* Prints the option table as text for --list-options (name, type, default,
 * constraints, description; nested objects indented). */
void config_describe(FILE *f, const struct agentd_schema *schema, bool list_root);

/* Scalar parsers shared with tests. Each returns 0 or -EINVAL and writes *ret
 * only on success. */
int config_parse_duration(const char *s, uint64_t *ret_ms);
int config_parse_size(const char *s, uint64_t *ret_bytes);
int config_parse_bool(const char *s, bool *ret);
int config_parse_int(const char *s, int64_t *ret);
int config_parse_cidr(const char *s, struct agentd_cidr *ret);
int config_check_hostport(const char *s);
int config_check_url(const char *s);
/* The host of a URL that passes config_check_url (no brackets for IPv6). */
int config_url_host(const char *s, char *buf, size_t size);
bool config_host_is_loopback(const char *host);
/* Whether a URL is plain http:// to a host that is not loopback. */
bool config_url_is_remote_plain(const char *s);
/* Closest candidate within a small edit distance, or NULL (did-you-mean). */
const char *config_suggest(const char *word, const char *const *candidates, size_t n);

/* Templates. Known names are the metadata keys listed in plugin.h, "tag:NAME"
 * for any NAME, plus `extra` (NULL-terminated). Returns 0, or -EINVAL with
 * *ret_bad set to the first unknown name or a description of bad syntax
 * (caller frees). */
int template_check(const char *tmpl, const char *const *extra, char **ret_bad);
/* Expands tmpl: lookup returns a value or NULL. -ENOENT when a name has no
 * value, with *ret_missing set (caller frees). */
int template_expand(const char *tmpl, const char *(*lookup)(const char *name, void *ud), void *ud,
                    char **ret, char **ret_missing);

#endif

/* Private to the config loader's files (conf-*.c, template.c). */
#ifndef AGENTD_CONF_INTERNAL_H
#define AGENTD_CONF_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "conf.h"

/* Nesting deeper than this is refused: it bounds the recursion of every walk. */
#define CONF_MAX_DEPTH 64

void config_errors_addv(struct config_errors *errs, const char *file, unsigned line, unsigned col,
                        const char *path, const char *fmt, va_list ap) AGENTD_PRINTF(6, 0);
/* "file:line:col: path: message" as a new string, or NULL. */
char *config_error_format(const struct config_error *e);

/* Parses one YAML document from text. *ret_root is the document's root node
 * (NULL for an empty stream); every node's file points at `file`, which must
 * outlive the nodes. Errors go to errs; returns 0 or -EINVAL. */
int conf_parse_yaml(const char *file, const char *text, size_t len, struct config_node **ret_root,
                    struct config_errors *errs);
void conf_node_free(struct config_node *node);
struct config_node *conf_node_new(enum config_node_kind kind, const char *file, unsigned line,
                                  unsigned col);
/* A deep copy of src; each node takes one from *budget. NULL when out of
 * memory or when the budget runs out. */
struct config_node *conf_node_copy(const struct config_node *src, size_t *budget);
/* Levels in the tree under n (1 for a scalar). */
unsigned conf_node_height(const struct config_node *n);
/* Adds an item (and for mappings its key) to parent; *cap is its capacity. */
int conf_node_append(struct config_node *parent, size_t *cap, struct config_node *key,
                     struct config_node *item);
/* Whether v can be the value of a "<<" merge key (a mapping, or a list of them). */
bool conf_mergeable(const struct config_node *v);
/* Adds to mapping n the keys of the merge sources it lacks, first source
 * first; moves the nodes out of merges. */
int conf_apply_merges(struct config_node *n, size_t *cap, struct config_node **merges,
                      size_t nmerges);
/* The value for key in a mapping node, or NULL; *ret_index gets its index. */
const struct config_node *conf_map_get(const struct config_node *map, const char *key,
                                       size_t *ret_index);

/* Scalar formatting for dumps and messages. */
void conf_format_duration(uint64_t ms, char *buf, size_t size);
void conf_format_size(uint64_t bytes, char *buf, size_t size);
void conf_format_cidr(const struct agentd_cidr *c, char *buf, size_t size);
/* Whether s can be written as a plain YAML scalar and read back as the same string. */
bool conf_plain_safe(const char *s);
/* Writes s as a YAML scalar (plain when safe, else double-quoted). */
void conf_write_scalar(FILE *f, const char *s);

const char *conf_type_name(enum agentd_opt_type t);
/* "a list", "a mapping", ... for messages. */
const char *conf_kind_name(const struct config_node *n);
/* Bytes one element of type t takes in a struct agentd_list (objects inline). */
size_t conf_elem_size(const struct agentd_option *opt, enum agentd_opt_type t);

/* Reports an error at n's position (none if n is NULL). */
void conf_err_at(struct config_errors *errs, const struct config_node *n, const char *path,
                 const char *fmt, ...) AGENTD_PRINTF(4, 5);
/* Checks the {names} in n's text for opt; on success *ret_plain is the text
 * with every template replaced by "x" (for validating URLs and paths). */
int conf_check_templates(struct config_errors *errs, const struct config_node *n, const char *path,
                         const struct agentd_option *opt, char **ret_plain);
/* Parses scalar node n as type t of opt into dst, reporting what is wrong. */
int conf_apply_scalar(struct config_errors *errs, const struct config_node *n, const char *path,
                      const struct agentd_option *opt, enum agentd_opt_type t, void *dst);

/* Template checking with the kind of problem: -ENOENT for an unknown name (in
 * *ret_bad, with a did-you-mean in *ret_hint when one is close, else NULL),
 * -EINVAL for bad syntax (a description in *ret_bad). */
int template_check_hint(const char *tmpl, const char *const *extra, char **ret_bad,
                        char **ret_hint);

#endif

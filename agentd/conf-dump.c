/* Filled configs back out as text: --dump-config (YAML that loads back to an
 * equal config) and --list-options. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf-internal.h"

static const char mask[] = "********";

static void indent(FILE *f, unsigned n)
{
    fprintf(f, "%*s", (int)n, "");
}

/* Writes one scalar of type t (no newline). Returns false if there is nothing
 * to write (a NULL string). */
static bool scalar_text(FILE *f, const struct agentd_option *o, enum agentd_opt_type t,
                        const void *p)
{
    char buf[64];

    if (o->flags & AGENTD_OPT_SECRET) {
        if ((t == AGENTD_OPT_STRING || t == AGENTD_OPT_HOSTPORT || t == AGENTD_OPT_URL ||
             t == AGENTD_OPT_PATH) &&
            !*(char *const *)p)
            return false;
        conf_write_scalar(f, mask);
        return true;
    }
    switch (t) {
    case AGENTD_OPT_STRING:
    case AGENTD_OPT_HOSTPORT:
    case AGENTD_OPT_URL:
    case AGENTD_OPT_PATH:
        if (!*(char *const *)p)
            return false;
        conf_write_scalar(f, *(char *const *)p);
        return true;
    case AGENTD_OPT_INT:
        fprintf(f, "%lld", (long long)*(const int64_t *)p);
        return true;
    case AGENTD_OPT_BOOL:
        fputs(*(const bool *)p ? "true" : "false", f);
        return true;
    case AGENTD_OPT_DURATION:
        conf_format_duration(*(const uint64_t *)p, buf, sizeof(buf));
        fputs(buf, f);
        return true;
    case AGENTD_OPT_SIZE:
        conf_format_size(*(const uint64_t *)p, buf, sizeof(buf));
        fputs(buf, f);
        return true;
    case AGENTD_OPT_ENUM: {
        int i = *(const int *)p;
        size_t n = 0;

        while (o->values && o->values[n])
            n++;
        conf_write_scalar(f, i >= 0 && (size_t)i < n ? o->values[i] : "?");
        return true;
    }
    case AGENTD_OPT_CIDR:
        conf_format_cidr(p, buf, sizeof(buf));
        fputs(buf, f);
        return true;
    default:
        return false;
    }
}

static void dump_object(FILE *f, const struct agentd_schema *s, const void *obj, unsigned ind,
                        const char *lead);

/* Writes the value of one option after "key:" (the rest of that line and any
 * nested lines at ind). */
static void dump_value(FILE *f, const struct agentd_option *o, const void *p, unsigned ind)
{
    switch (o->type) {
    case AGENTD_OPT_LIST: {
        const struct agentd_list *l = p;
        size_t es = conf_elem_size(o, o->elem);

        if (!l->n) {
            fputs(" []\n", f);
            return;
        }
        fputc('\n', f);
        for (size_t i = 0; i < l->n; i++) {
            const void *item = (const char *)l->items + i * es;

            if (o->elem == AGENTD_OPT_OBJECT) {
                dump_object(f, o->sub, item, ind + 2, "- ");
            } else if (o->elem == AGENTD_OPT_MAP) {
                struct agentd_option mo = *o;

                mo.type = AGENTD_OPT_MAP;
                indent(f, ind);
                fputs("-", f);
                dump_value(f, &mo, item, ind + 2);
            } else {
                indent(f, ind);
                fputs("- ", f);
                if (!scalar_text(f, o, o->elem, item))
                    fputs("\"\"", f);
                fputc('\n', f);
            }
        }
        return;
    }
    case AGENTD_OPT_MAP: {
        const struct agentd_map *m = p;

        if (!m->n) {
            fputs(" {}\n", f);
            return;
        }
        fputc('\n', f);
        for (size_t i = 0; i < m->n; i++) {
            indent(f, ind);
            conf_write_scalar(f, m->keys[i]);
            fputs(": ", f);
            conf_write_scalar(f, (o->flags & AGENTD_OPT_SECRET) ? mask : m->values[i]);
            fputc('\n', f);
        }
        return;
    }
    case AGENTD_OPT_OBJECT:
        dump_object(f, o->sub, *(void *const *)p, ind, NULL);
        return;
    default:
        fputc(' ', f);
        scalar_text(f, o, o->type, p);
        fputc('\n', f);
    }
}

static bool has_value(const struct agentd_option *o, const void *p)
{
    switch (o->type) {
    case AGENTD_OPT_STRING:
    case AGENTD_OPT_HOSTPORT:
    case AGENTD_OPT_URL:
    case AGENTD_OPT_PATH:
    case AGENTD_OPT_OBJECT:
        return *(void *const *)p != NULL;
    default:
        return true;
    }
}

/* Writes an object's options at ind. lead (e.g. "- ") replaces the
 * indentation of the first line, for list items; NULL means the object
 * follows "key:" on the current line. */
static void dump_object(FILE *f, const struct agentd_schema *s, const void *obj, unsigned ind,
                        const char *lead)
{
    bool first = true;

    for (const struct agentd_option *o = s->options; o && o->name; o++) {
        const void *p = (const char *)obj + o->offset;

        if (!has_value(o, p))
            continue;
        if (first && !lead)
            fputc('\n', f);
        if (first && lead) {
            indent(f, ind - (unsigned)strlen(lead));
            fputs(lead, f);
        } else {
            indent(f, ind);
        }
        first = false;
        fprintf(f, "%s:", o->name);
        dump_value(f, o, p, ind + 2);
    }
    if (first) {
        if (lead) {
            indent(f, ind - (unsigned)strlen(lead));
            fputs(lead, f);
            fputs("{}\n", f);
        } else {
            fputs(" {}\n", f);
        }
    }
}

void config_dump(FILE *f, const char *name, const struct agentd_schema *schema, bool list_root,
                 const void *conf)
{
    fprintf(f, "%s:", name);
    if (!schema || !conf) {
        fputs(list_root ? " []\n" : " {}\n", f);
        return;
    }
    if (list_root) {
        struct agentd_option root = {
            .name = name,
            .type = AGENTD_OPT_LIST,
            .elem = AGENTD_OPT_OBJECT,
            .sub = schema,
        };

        dump_value(f, &root, conf, 2);
        return;
    }
    dump_object(f, schema, conf, 2, NULL);
}

static void describe_type(FILE *f, const struct agentd_option *o)
{
    if (o->type == AGENTD_OPT_LIST)
        fprintf(f, "list of %s",
                o->elem == AGENTD_OPT_OBJECT && o->sub && o->sub->name ? o->sub->name
                                                                       : conf_type_name(o->elem));
    else if (o->type == AGENTD_OPT_OBJECT && o->sub && o->sub->name)
        fputs(o->sub->name, f);
    else
        fputs(conf_type_name(o->type), f);
}

static void describe_schema(FILE *f, const struct agentd_schema *s, unsigned ind)
{
    for (const struct agentd_option *o = s->options; o && o->name; o++) {
        char lo[32], hi[32];

        indent(f, ind);
        fprintf(f, "%s (", o->name);
        describe_type(f, o);
        if (o->flags & AGENTD_OPT_REQUIRED)
            fputs(", required", f);
        if (o->flags & AGENTD_OPT_SECRET)
            fputs(", secret", f);
        if (o->flags & AGENTD_OPT_TEMPLATE)
            fputs(", templates", f);
        if (o->def)
            fprintf(f, ", default %s", o->def);
        if (o->max > o->min) {
            if (o->type == AGENTD_OPT_DURATION) {
                conf_format_duration((uint64_t)o->min, lo, sizeof(lo));
                conf_format_duration((uint64_t)o->max, hi, sizeof(hi));
            } else if (o->type == AGENTD_OPT_SIZE) {
                conf_format_size((uint64_t)o->min, lo, sizeof(lo));
                conf_format_size((uint64_t)o->max, hi, sizeof(hi));
            } else {
                snprintf(lo, sizeof(lo), "%lld", (long long)o->min);
                snprintf(hi, sizeof(hi), "%lld", (long long)o->max);
            }
            fprintf(f, ", %s%s..%s", o->type == AGENTD_OPT_LIST ? "items " : "", lo, hi);
        }
        fputs(")", f);
        if (o->description)
            fprintf(f, ": %s", o->description);
        fputc('\n', f);
        if (o->type == AGENTD_OPT_ENUM && o->values) {
            indent(f, ind + 4);
            fputs("one of:", f);
            for (size_t i = 0; o->values[i]; i++)
                fprintf(f, " %s", o->values[i]);
            fputc('\n', f);
        }
        if (o->template_vars && o->template_vars[0]) {
            indent(f, ind + 4);
            fputs("extra templates:", f);
            for (size_t i = 0; o->template_vars[i]; i++)
                fprintf(f, " {%s}", o->template_vars[i]);
            fputc('\n', f);
        }
        if ((o->type == AGENTD_OPT_OBJECT ||
             (o->type == AGENTD_OPT_LIST && o->elem == AGENTD_OPT_OBJECT)) &&
            o->sub)
            describe_schema(f, o->sub, ind + 4);
    }
}

void config_describe(FILE *f, const struct agentd_schema *schema, bool list_root)
{
    if (!schema) {
        fputs("(no options)\n", f);
        return;
    }
    if (list_root)
        fprintf(f, "a list of %s, each with:\n", schema->name ? schema->name : "entries");
    describe_schema(f, schema, 2);
}

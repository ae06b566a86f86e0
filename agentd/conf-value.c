/* One scalar option value: its type's parser, bounds, template names, and
 * the exact message for each way it can be wrong. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf-internal.h"

void conf_err_at(struct config_errors *errs, const struct config_node *n, const char *path,
                 const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_errors_addv(errs, n ? n->file : "", n ? n->line : 0, n ? n->col : 0, path, fmt, ap);
    va_end(ap);
}

/* A value for a message: escaped, cut at 60 characters. */
static const char *shown(const char *s, char *buf, size_t size)
{
    size_t o = 0;

    for (; *s && o + 8 < size; s++) {
        unsigned char c = (unsigned char)*s;

        if (o >= 60) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* Validates and, where templates are allowed, checks {names}; for typed
 * strings, the check runs on the text with every template replaced by "x". */
static const char *placeholder(const char *name, void *ud)
{
    return "x";
}

int conf_check_templates(struct config_errors *errs, const struct config_node *n, const char *path,
                         const struct agentd_option *opt, char **ret_plain)
{
    char *bad = NULL, *hint = NULL;
    int r;

    *ret_plain = NULL;
    r = template_check_hint(n->value, opt->template_vars, &bad, &hint);
    if (r == -ENOENT) {
        if (hint)
            conf_err_at(errs, n, path, "unknown template {%s} (did you mean {%s}?)", bad, hint);
        else
            conf_err_at(errs, n, path, "unknown template {%s}", bad);
    } else if (r == -EINVAL) {
        conf_err_at(errs, n, path, "bad template: %s", bad ? bad : "syntax");
    } else if (r == 0) {
        r = template_expand(n->value, placeholder, NULL, ret_plain, NULL);
    }
    free(bad);
    free(hint);
    return r < 0 ? -EINVAL : 0;
}

int conf_apply_scalar(struct config_errors *errs, const struct config_node *n, const char *path,
                      const struct agentd_option *opt, enum agentd_opt_type t, void *dst)
{
    char sbuf[128];
    const char *v;
    int r;

    if (n->kind != CONFIG_SCALAR) {
        conf_err_at(errs, n, path, "expected %s %s, got %s",
                    t == AGENTD_OPT_INT || t == AGENTD_OPT_ENUM || t == AGENTD_OPT_URL ? "an" : "a",
                    conf_type_name(t), conf_kind_name(n));
        return -EINVAL;
    }
    v = n->value;
    switch (t) {
    case AGENTD_OPT_STRING:
    case AGENTD_OPT_HOSTPORT:
    case AGENTD_OPT_URL:
    case AGENTD_OPT_PATH: {
        char *plain = NULL, *copy;
        const char *check = v;

        if (opt->flags & AGENTD_OPT_TEMPLATE) {
            if (conf_check_templates(errs, n, path, opt, &plain) < 0)
                return -EINVAL;
            check = plain;
        }
        r = 0;
        if (t == AGENTD_OPT_HOSTPORT && config_check_hostport(check) < 0) {
            conf_err_at(errs, n, path,
                        "\"%s\" is not a host:port (e.g. 127.0.0.1:8080, [::1]:8080, "
                        "db.example.com:5432)",
                        shown(v, sbuf, sizeof(sbuf)));
            r = -EINVAL;
        } else if (t == AGENTD_OPT_URL && config_check_url(check) < 0) {
            conf_err_at(errs, n, path, "\"%s\" is not an http:// or https:// URL",
                        shown(v, sbuf, sizeof(sbuf)));
            r = -EINVAL;
        } else if (t == AGENTD_OPT_URL && (opt->flags & AGENTD_OPT_ENDPOINT) &&
                   config_url_is_remote_plain(check)) {
            conf_err_at(errs, n, path,
                        "\"%s\": signed requests go over https:// (plain http:// only to a "
                        "loopback host: 127.0.0.0/8, ::1, localhost)",
                        shown(v, sbuf, sizeof(sbuf)));
            r = -EINVAL;
        } else if (t == AGENTD_OPT_PATH && check[0] != '/') {
            conf_err_at(errs, n, path, "\"%s\" is not an absolute path",
                        shown(v, sbuf, sizeof(sbuf)));
            r = -EINVAL;
        }
        free(plain);
        if (r < 0)
            return r;
        copy = strdup(v);
        if (!copy)
            return -ENOMEM;
        *(char **)dst = copy;
        return 0;
    }
    case AGENTD_OPT_INT: {
        int64_t i;

        if (n->quoted) {
            conf_err_at(
                errs, n, path,
                "\"%s\" is quoted, so it is a string; write it without quotes for an integer",
                shown(v, sbuf, sizeof(sbuf)));
            return -EINVAL;
        }
        if (config_parse_int(v, &i) < 0) {
            conf_err_at(errs, n, path, "\"%s\" is not an integer", shown(v, sbuf, sizeof(sbuf)));
            return -EINVAL;
        }
        if (opt->max > opt->min && (i < opt->min || i > opt->max)) {
            conf_err_at(errs, n, path, "%lld is out of range (%lld..%lld)", (long long)i,
                        (long long)opt->min, (long long)opt->max);
            return -EINVAL;
        }
        *(int64_t *)dst = i;
        return 0;
    }
    case AGENTD_OPT_BOOL: {
        bool b;

        if (n->quoted && config_parse_bool(v, &b) == 0) {
            conf_err_at(
                errs, n, path,
                "\"%s\" is quoted, so it is a string; write it without quotes for a boolean",
                shown(v, sbuf, sizeof(sbuf)));
            return -EINVAL;
        }
        if (n->quoted || config_parse_bool(v, &b) < 0) {
            conf_err_at(errs, n, path, "\"%s\" is not a boolean (true/false, yes/no, on/off)",
                        shown(v, sbuf, sizeof(sbuf)));
            return -EINVAL;
        }
        *(bool *)dst = b;
        return 0;
    }
    case AGENTD_OPT_DURATION: {
        uint64_t ms;
        int64_t dummy;

        if (config_parse_duration(v, &ms) < 0) {
            if (config_parse_int(v, &dummy) == 0 && v[0] != '-' && v[0] != '+')
                conf_err_at(errs, n, path, "\"%s\" is not a duration: use a unit, e.g. %ss",
                            shown(v, sbuf, sizeof(sbuf)), v);
            else
                conf_err_at(errs, n, path, "\"%s\" is not a duration (e.g. 250ms, 5s, 2m, 1h)",
                            shown(v, sbuf, sizeof(sbuf)));
            return -EINVAL;
        }
        if (opt->max > opt->min && (ms < (uint64_t)opt->min || ms > (uint64_t)opt->max)) {
            char lo[32], hi[32];

            conf_format_duration((uint64_t)opt->min, lo, sizeof(lo));
            conf_format_duration((uint64_t)opt->max, hi, sizeof(hi));
            conf_err_at(errs, n, path, "\"%s\" is out of range (%s..%s)",
                        shown(v, sbuf, sizeof(sbuf)), lo, hi);
            return -EINVAL;
        }
        *(uint64_t *)dst = ms;
        return 0;
    }
    case AGENTD_OPT_SIZE: {
        uint64_t b;

        if (config_parse_size(v, &b) < 0) {
            conf_err_at(errs, n, path, "\"%s\" is not a size (e.g. 512, 64KiB, 10MiB, 1GiB)",
                        shown(v, sbuf, sizeof(sbuf)));
            return -EINVAL;
        }
        if (opt->max > opt->min && (b < (uint64_t)opt->min || b > (uint64_t)opt->max)) {
            char lo[32], hi[32];

            conf_format_size((uint64_t)opt->min, lo, sizeof(lo));
            conf_format_size((uint64_t)opt->max, hi, sizeof(hi));
            conf_err_at(errs, n, path, "\"%s\" is out of range (%s..%s)",
                        shown(v, sbuf, sizeof(sbuf)), lo, hi);
            return -EINVAL;
        }
        *(uint64_t *)dst = b;
        return 0;
    }
    case AGENTD_OPT_ENUM: {
        char list[256];
        size_t len = 0, nv = 0;
        const char *hint;

        for (; opt->values && opt->values[nv]; nv++) {
            if (!strcmp(v, opt->values[nv])) {
                *(int *)dst = (int)nv;
                return 0;
            }
        }
        list[0] = '\0';
        for (size_t i = 0; i < nv && len < sizeof(list); i++) {
            int w = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", opt->values[i]);
            if (w < 0)
                break;
            len += (size_t)w;
        }
        hint = config_suggest(v, opt->values, nv);
        if (hint)
            conf_err_at(errs, n, path, "\"%s\" is not one of %s (did you mean '%s'?)",
                        shown(v, sbuf, sizeof(sbuf)), list, hint);
        else
            conf_err_at(errs, n, path, "\"%s\" is not one of %s", shown(v, sbuf, sizeof(sbuf)),
                        list);
        return -EINVAL;
    }
    case AGENTD_OPT_CIDR:
        if (config_parse_cidr(v, dst) < 0) {
            conf_err_at(errs, n, path,
                        "\"%s\" is not an address or CIDR (e.g. 10.0.0.0/16, 192.0.2.7, fd00::/8)",
                        shown(v, sbuf, sizeof(sbuf)));
            return -EINVAL;
        }
        return 0;
    default:
        conf_err_at(errs, n, path, "internal error: option type %d is not a scalar", (int)t);
        return -EINVAL;
    }
}

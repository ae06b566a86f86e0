/* Control protocol framing and parsing, kept apart from the socket code so
 * that unit tests and agentctl share it. Every request is length-checked
 * before it is parsed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control-proto.h"

int proto_feed(struct proto_framer *f, const char *data, size_t len,
               int (*on_line)(char *line, size_t len, void *ud), void *ud)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;

        /* The line, its newline and our NUL must fit. */
        if (f->len + take + 1 > sizeof(f->buf)) {
            f->len = 0;
            return -EMSGSIZE;
        }
        memcpy(f->buf + f->len, data, take);
        f->len += take;
        if (!nl)
            return 0;
        data += take + 1;
        len -= take + 1;
        f->buf[f->len] = '\0';
        size_t l = f->len;
        f->len = 0;
        if (l > 0 && f->buf[l - 1] == '\r')
            f->buf[--l] = '\0';
        int r = on_line(f->buf, l, ud);
        if (r < 0)
            return r;
    }
    return 0;
}

int proto_parse_request(const char *line, size_t len, json_t **ret_root, struct proto_request *ret,
                        char *msg, size_t msgsize)
{
    json_error_t jerr;
    json_t *root, *v, *cmd, *args;

    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(msg, msgsize, "malformed request: %s (at byte %d)", jerr.text, jerr.position);
        return -EINVAL;
    }
    if (!json_is_object(root)) {
        snprintf(msg, msgsize, "malformed request: not a JSON object");
        goto bad;
    }
    v = json_object_get(root, "v");
    if (!json_is_integer(v) || json_integer_value(v) != CONTROL_PROTO_VERSION) {
        snprintf(msg, msgsize, "unsupported protocol version (expected \"v\": %d)",
                 CONTROL_PROTO_VERSION);
        goto bad;
    }
    cmd = json_object_get(root, "cmd");
    if (!json_is_string(cmd) || json_string_length(cmd) == 0) {
        snprintf(msg, msgsize, "malformed request: \"cmd\" must be a non-empty string");
        goto bad;
    }
    *ret = (struct proto_request){.cmd = json_string_value(cmd)};
    args = json_object_get(root, "args");
    if (args) {
        size_t i;
        json_t *a;
        if (!json_is_array(args)) {
            snprintf(msg, msgsize, "malformed request: \"args\" must be an array of strings");
            goto bad;
        }
        json_array_foreach(args, i, a)
        {
            if (!json_is_string(a)) {
                snprintf(msg, msgsize, "malformed request: \"args\" must be an array of strings");
                goto bad;
            }
        }
        ret->args = args;
    } else {
        /* Handlers always get an array: put an empty one into the request. */
        args = json_array();
        json_object_set_new(root, "args", args);
        ret->args = args;
    }
    if (strcmp(ret->cmd, "plugin") == 0) {
        json_t *p = json_object_get(root, "plugin"), *vb = json_object_get(root, "verb");
        if (!json_is_string(p) || !json_is_string(vb)) {
            snprintf(msg, msgsize, "malformed request: \"plugin\" and \"verb\" must be strings");
            goto bad;
        }
        ret->plugin = json_string_value(p);
        ret->verb = json_string_value(vb);
    }
    *ret_root = root;
    return 0;
bad:
    json_decref(root);
    return -EINVAL;
}

static char *dump_line(json_t *reply)
{
    char *s = json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII), *line = NULL;

    json_decref(reply);
    if (!s)
        return NULL;
    if (asprintf(&line, "%s\n", s) < 0)
        line = NULL;
    free(s);
    return line;
}

char *proto_reply_ok(json_t *result)
{
    return dump_line(json_pack("{s:i,s:b,s:o}", "v", CONTROL_PROTO_VERSION, "ok", 1, "result",
                               result ? result : json_null()));
}

char *proto_reply_error(const char *message, json_t *errors)
{
    json_t *r = json_pack("{s:i,s:b,s:s}", "v", CONTROL_PROTO_VERSION, "ok", 0, "error",
                          message ? message : "error");

    if (errors)
        json_object_set_new(r, "errors", errors);
    return dump_line(r);
}

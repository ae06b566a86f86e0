/* AWS error answers into a code and a message: Query and S3 XML with expat,
 * JSON 1.1 with jansson. Bodies come from the network, so every copy is
 * bounded and malformed input is an error, never a crash (fuzzed by
 * tests/fuzz/fuzz-aws-xml.c and fuzz-aws-json.c). */
#include <errno.h>
#include <string.h>

#include <expat.h>
#include <jansson.h>

#include "aws-internal.h"

struct xml_state {
    struct aws_error *err;
    int depth;
    int error_depth; /* depth of the innermost open <Error>, or 0 */
    int field;       /* 1 collecting Code, 2 Message, 0 nothing */
    size_t code_len, msg_len;
    bool have_code;
    bool root_is_error;
};

static void xml_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct xml_state *s = ud;

    s->depth++;
    if (strcmp(name, "Error") == 0) {
        if (s->depth == 1)
            s->root_is_error = true;
        s->error_depth = s->depth;
    } else if (s->error_depth && s->depth == s->error_depth + 1) {
        /* Only the first Code and Message count. */
        if (strcmp(name, "Code") == 0 && !s->have_code)
            s->field = 1;
        else if (strcmp(name, "Message") == 0 && s->msg_len == 0)
            s->field = 2;
    }
}

static void xml_end(void *ud, const XML_Char *name)
{
    struct xml_state *s = ud;

    if (s->field == 1)
        s->have_code = s->code_len > 0;
    s->field = 0;
    if (s->depth == s->error_depth)
        s->error_depth = 0;
    s->depth--;
}

static void append(char *dst, size_t cap, size_t *len, const char *src, size_t n)
{
    if (*len + 1 >= cap)
        return;
    if (n > cap - 1 - *len)
        n = cap - 1 - *len;
    memcpy(dst + *len, src, n);
    *len += n;
    dst[*len] = '\0';
}

static void xml_text(void *ud, const XML_Char *text, int n)
{
    struct xml_state *s = ud;

    if (n <= 0)
        return;
    if (s->field == 1)
        append(s->err->code, sizeof(s->err->code), &s->code_len, text, (size_t)n);
    else if (s->field == 2)
        append(s->err->message, sizeof(s->err->message), &s->msg_len, text, (size_t)n);
}

static int xml_run(const char *body, size_t len, struct xml_state *s)
{
    XML_Parser p;
    enum XML_Status st;

    if (len > (size_t)INT32_MAX)
        return -EFBIG;
    p = XML_ParserCreate("UTF-8");
    if (!p)
        return -ENOMEM;
    XML_SetUserData(p, s);
    XML_SetElementHandler(p, xml_start, xml_end);
    XML_SetCharacterDataHandler(p, xml_text);
    st = XML_Parse(p, body ? body : "", (int)len, 1);
    XML_ParserFree(p);
    return st == XML_STATUS_OK ? 0 : -EBADMSG;
}

int aws_error_parse_xml(const char *body, size_t len, struct aws_error *ret)
{
    struct aws_error e = {.code = {0}};
    struct xml_state s = {.err = &e};
    int r;

    r = xml_run(body, len, &s);
    if (r < 0)
        return r;
    if (!s.have_code)
        return -ENOENT;
    *ret = e;
    return 0;
}

bool aws_error_xml_is_error(const char *body, size_t len)
{
    struct aws_error e = {.code = {0}};
    struct xml_state s = {.err = &e};

    /* A cheap test first: success bodies are large and rarely start so. */
    if (!body || len == 0 || !memmem(body, len < 512 ? len : 512, "<Error>", 7))
        return false;
    return xml_run(body, len, &s) == 0 && s.root_is_error && s.have_code;
}

/* "prefix#Code:detail" -> "Code" */
static void set_code(struct aws_error *e, const char *v)
{
    const char *hash = strrchr(v, '#');
    size_t n;

    if (hash)
        v = hash + 1;
    n = strcspn(v, ":");
    if (n >= sizeof(e->code))
        n = sizeof(e->code) - 1;
    memcpy(e->code, v, n);
    e->code[n] = '\0';
}

int aws_error_parse_json(const char *body, size_t len, const char *errortype_header,
                         struct aws_error *ret)
{
    struct aws_error e = {.code = {0}};
    json_error_t jerr;
    json_t *root, *v;

    root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && !errortype_header)
        return -EBADMSG;
    if (errortype_header && *errortype_header)
        set_code(&e, errortype_header);
    if (json_is_object(root)) {
        v = json_object_get(root, "__type");
        if (!e.code[0] && json_is_string(v))
            set_code(&e, json_string_value(v));
        if (!e.code[0] && json_is_string(v = json_object_get(root, "code")))
            set_code(&e, json_string_value(v));
        v = json_object_get(root, "message");
        if (!json_is_string(v))
            v = json_object_get(root, "Message");
        if (json_is_string(v)) {
            size_t n = 0;
            append(e.message, sizeof(e.message), &n, json_string_value(v), json_string_length(v));
        }
    }
    bool parsed = root != NULL;

    json_decref(root);
    if (!e.code[0])
        return parsed || errortype_header ? -ENOENT : -EBADMSG;
    *ret = e;
    return 0;
}

/* ELBv2 Query protocol: form bodies out, XML answers in (expat). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>

#include "tg.h"

/* A form body never needs more than a few KiB: one target, one ARN. */
#define FORM_MAX (16 * 1024)

static void form_put(struct tg_form *f, const char *s, size_t n)
{
    if (f->failed)
        return;
    if (f->len + n + 1 > f->cap) {
        size_t cap = f->cap ? f->cap : 256;
        while (cap < f->len + n + 1)
            cap *= 2;
        if (cap > FORM_MAX) {
            f->failed = true;
            return;
        }
        char *b = realloc(f->buf, cap);
        if (!b) {
            f->failed = true;
            return;
        }
        f->buf = b;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, s, n);
    f->len += n;
    f->buf[f->len] = '\0';
}

static void form_put_encoded(struct tg_form *f, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            form_put(f, (const char *)s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            form_put(f, e, 3);
        }
    }
}

void tg_form_init(struct tg_form *f, const char *action)
{
    memset(f, 0, sizeof(*f));
    form_put(f, "Action=", 7);
    form_put_encoded(f, action);
    form_put(f, "&Version=2015-12-01", 19);
}

void tg_form_add(struct tg_form *f, const char *key, const char *value)
{
    form_put(f, "&", 1);
    form_put_encoded(f, key);
    form_put(f, "=", 1);
    form_put_encoded(f, value);
}

void tg_form_add_target(struct tg_form *f, const char *id, int64_t port, const char *az)
{
    char p[24];
    tg_form_add(f, "Targets.member.1.Id", id);
    if (port > 0) {
        snprintf(p, sizeof(p), "%lld", (long long)port);
        tg_form_add(f, "Targets.member.1.Port", p);
    }
    if (az && *az)
        tg_form_add(f, "Targets.member.1.AvailabilityZone", az);
}

void tg_form_free(struct tg_form *f)
{
    free(f->buf);
    memset(f, 0, sizeof(*f));
}

/* --- XML ------------------------------------------------------------------ */

#define PATH_MAX_DEPTH 16
#define TEXT_MAX       4096

struct parse {
    struct tg_reply *r;
    const char *stack[PATH_MAX_DEPTH]; /* local names, pointers into names[] */
    char names[PATH_MAX_DEPTH][64];
    int depth;
    char text[TEXT_MAX];
    size_t text_len;
    int members_seen; /* TargetHealthDescriptions members completed */
    char key[128];    /* the last Attributes member Key */
    bool nomem;
};

static const char *local_name(const char *n)
{
    const char *c = strrchr(n, ':');
    return c ? c + 1 : n;
}

/* Whether the element stack ends with the given names (innermost last). */
static bool path_ends(const struct parse *p, int n, const char *const *names)
{
    if (p->depth < n)
        return false;
    for (int i = 0; i < n; i++)
        if (strcmp(p->stack[p->depth - n + i], names[i]) != 0)
            return false;
    return true;
}

#define ENDS(p, ...)                                                                               \
    path_ends((p), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),            \
              (const char *[]){__VA_ARGS__})

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct parse *p = ud;
    (void)attrs;
    if (p->depth < PATH_MAX_DEPTH) {
        snprintf(p->names[p->depth], sizeof(p->names[0]), "%s", local_name(name));
        p->stack[p->depth] = p->names[p->depth];
    }
    p->depth++;
    p->text_len = 0;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct parse *p = ud;
    size_t n = (size_t)len;
    if (p->text_len + n >= TEXT_MAX)
        n = TEXT_MAX - 1 - p->text_len;
    memcpy(p->text + p->text_len, s, n);
    p->text_len += n;
}

static void keep(struct parse *p, char **slot)
{
    if (*slot)
        return; /* the first member wins */
    *slot = strndup(p->text, p->text_len);
    if (!*slot)
        p->nomem = true;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct parse *p = ud;
    (void)name;
    p->text[p->text_len] = '\0';
    if (p->depth <= PATH_MAX_DEPTH) {
        if (ENDS(p, "TargetGroups", "member", "TargetGroupArn"))
            keep(p, &p->r->arn);
        else if (p->members_seen == 0 && ENDS(p, "member", "TargetHealth", "State"))
            keep(p, &p->r->state);
        else if (p->members_seen == 0 && ENDS(p, "member", "TargetHealth", "Reason"))
            keep(p, &p->r->reason);
        else if (p->members_seen == 0 && ENDS(p, "member", "TargetHealth", "Description"))
            keep(p, &p->r->description);
        else if (ENDS(p, "TargetHealthDescriptions", "member")) {
            p->members_seen++;
            p->r->has_target = true;
        } else if (ENDS(p, "Attributes", "member", "Key")) {
            size_t n = p->text_len < sizeof(p->key) - 1 ? p->text_len : sizeof(p->key) - 1;
            memcpy(p->key, p->text, n);
            p->key[n] = '\0';
        } else if (ENDS(p, "Attributes", "member", "Value") &&
                   strcmp(p->key, "deregistration_delay.timeout_seconds") == 0) {
            char *end;
            long long v = strtoll(p->text, &end, 10);
            if (end != p->text && *end == '\0' && v >= 0)
                p->r->dereg_delay_s = v;
        }
    }
    p->depth--;
    p->text_len = 0;
}

int tg_reply_parse(const char *xml, size_t len, struct tg_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->dereg_delay_s = -1;
    struct parse *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->r = r;
    XML_Parser xp = XML_ParserCreate(NULL);
    if (!xp) {
        free(p);
        return -ENOMEM;
    }
    XML_SetUserData(xp, p);
    XML_SetElementHandler(xp, on_start, on_end);
    XML_SetCharacterDataHandler(xp, on_text);
    int ok = XML_Parse(xp, xml, (int)len, 1) == XML_STATUS_OK;
    bool nomem = p->nomem;
    XML_ParserFree(xp);
    free(p);
    if (!ok || nomem) {
        tg_reply_free(r);
        return nomem ? -ENOMEM : -EBADMSG;
    }
    return 0;
}

void tg_reply_free(struct tg_reply *r)
{
    free(r->arn);
    free(r->state);
    free(r->reason);
    free(r->description);
    r->arn = r->state = r->reason = r->description = NULL;
}

int tg_parse_time(const char *s, int64_t *ret)
{
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end)
        return -EINVAL;
    if (*end == '.') /* fractional seconds */
        while (*++end >= '0' && *end <= '9')
            ;
    if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
        return -EINVAL;
    *ret = (int64_t)timegm(&tm);
    return 0;
}

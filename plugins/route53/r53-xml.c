/* Route 53's REST-XML: the ChangeBatch body out, answers and errors in (expat). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "r53.h"

#define R53_NS "https://route53.amazonaws.com/doc/2013-04-01/"
/* One change of one value: a few KiB at most (a TXT value is <= 4000 bytes). */
#define BODY_MAX (64 * 1024)

struct buf {
    char *b;
    size_t len, cap;
    bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = cap <= BODY_MAX ? realloc(b->b, cap) : NULL;
        if (!nb) {
            b->failed = true;
            return;
        }
        b->b = nb;
        b->cap = cap;
    }
    memcpy(b->b + b->len, s, n);
    b->len += n;
    b->b[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_escaped(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            puts_(b, "&amp;");
            break;
        case '<':
            puts_(b, "&lt;");
            break;
        case '>':
            puts_(b, "&gt;");
            break;
        case '"':
            puts_(b, "&quot;");
            break;
        case '\'':
            puts_(b, "&apos;");
            break;
        default:
            put(b, s, 1);
        }
    }
}

static void element(struct buf *b, const char *name, const char *value)
{
    puts_(b, "<");
    puts_(b, name);
    puts_(b, ">");
    put_escaped(b, value);
    puts_(b, "</");
    puts_(b, name);
    puts_(b, ">");
}

char *r53_change_xml(const char *action, const struct r53_rrset *s, const char *comment,
                     size_t *ret_len)
{
    struct buf b = {0};
    char num[24];
    puts_(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<ChangeResourceRecordSetsRequest xmlns=\"" R53_NS "\"><ChangeBatch>");
    if (comment)
        element(&b, "Comment", comment);
    puts_(&b, "<Changes><Change>");
    element(&b, "Action", action);
    puts_(&b, "<ResourceRecordSet>");
    element(&b, "Name", s->name);
    element(&b, "Type", s->type);
    if (s->set_id)
        element(&b, "SetIdentifier", s->set_id);
    if (s->weight >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)s->weight);
        element(&b, "Weight", num);
    }
    if (s->multivalue)
        element(&b, "MultiValueAnswer", "true");
    if (s->ttl >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)s->ttl);
        element(&b, "TTL", num);
    }
    puts_(&b, "<ResourceRecords><ResourceRecord>");
    element(&b, "Value", s->value);
    puts_(&b, "</ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes>"
              "</ChangeBatch></ChangeResourceRecordSetsRequest>\n");
    if (b.failed) {
        free(b.b);
        return NULL;
    }
    *ret_len = b.len;
    return b.b;
}

/* --- parsing --------------------------------------------------------------- */

#define DEPTH_MAX 12
#define TEXT_MAX  4096

struct parse {
    struct r53_reply *r;
    char names[DEPTH_MAX][48];
    int depth;
    char text[TEXT_MAX];
    size_t text_len;
    int sets_done;  /* ResourceRecordSet elements completed */
    int zones_done; /* HostedZone elements completed */
    bool nomem;
};

static const char *local_name(const char *n)
{
    const char *c = strrchr(n, ':');
    return c ? c + 1 : n;
}

/* Whether the open elements end with the given names (innermost last). */
static bool ends(const struct parse *p, int n, ...)
{
    va_list ap;
    bool ok = p->depth >= n && p->depth <= DEPTH_MAX;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        if (ok && strcmp(p->names[p->depth - n + i], want) != 0)
            ok = false;
    }
    va_end(ap);
    return ok;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct parse *p = ud;
    (void)attrs;
    if (p->depth < DEPTH_MAX)
        snprintf(p->names[p->depth], sizeof(p->names[0]), "%s", local_name(name));
    p->depth++;
    p->text_len = 0;
    if (p->depth == 1 && strcmp(local_name(name), "InvalidChangeBatch") == 0)
        p->r->invalid_change_batch = true;
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
        return; /* the first one wins */
    *slot = strndup(p->text, p->text_len);
    if (!*slot)
        p->nomem = true;
}

static int64_t to_int(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return end != s && *end == '\0' && v >= 0 ? v : -1;
}

static void on_set_field(struct parse *p)
{
    struct r53_rrset *s = &p->r->rrset;
    if (ends(p, 2, "ResourceRecordSet", "Name")) {
        if (!s->name) {
            s->name = r53_name_normalize(p->text);
            p->nomem |= !s->name;
        }
    } else if (ends(p, 2, "ResourceRecordSet", "Type")) {
        keep(p, &s->type);
    } else if (ends(p, 2, "ResourceRecordSet", "SetIdentifier")) {
        keep(p, &s->set_id);
    } else if (ends(p, 2, "ResourceRecordSet", "Weight")) {
        s->weight = to_int(p->text);
    } else if (ends(p, 2, "ResourceRecordSet", "MultiValueAnswer")) {
        s->multivalue = strcmp(p->text, "true") == 0;
    } else if (ends(p, 2, "ResourceRecordSet", "TTL")) {
        s->ttl = to_int(p->text);
    } else if (ends(p, 3, "ResourceRecords", "ResourceRecord", "Value")) {
        s->n_values++;
        keep(p, &s->value);
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct parse *p = ud;
    (void)name;
    p->text[p->text_len] = '\0';
    struct r53_reply *r = p->r;
    if (p->sets_done == 0)
        on_set_field(p); /* only the first set's fields count */
    if (ends(p, 2, "ChangeInfo", "Id")) {
        const char *v = strncmp(p->text, "/change/", 8) == 0 ? p->text + 8 : p->text;
        if (!r->change_id && !(r->change_id = strdup(v)))
            p->nomem = true;
    } else if (ends(p, 2, "ChangeInfo", "Status")) {
        keep(p, &r->change_status);
    } else if (ends(p, 2, "ResourceRecordSets", "ResourceRecordSet")) {
        p->sets_done++;
    } else if (p->zones_done < 2 && ends(p, 3, "HostedZones", "HostedZone", "Id")) {
        const char *v = strncmp(p->text, "/hostedzone/", 12) == 0 ? p->text + 12 : p->text;
        if (!(r->zone_ids[p->zones_done] = strdup(v)))
            p->nomem = true;
    } else if (p->zones_done < 2 && ends(p, 3, "HostedZones", "HostedZone", "Name")) {
        if (!(r->zone_names[p->zones_done] = r53_name_normalize(p->text)))
            p->nomem = true;
    } else if (ends(p, 2, "HostedZones", "HostedZone")) {
        p->zones_done++;
    } else if (ends(p, 2, "Messages", "Message") || ends(p, 2, "Error", "Message")) {
        keep(p, &r->error_message);
    }
    p->depth--;
    p->text_len = 0;
}

int r53_reply_parse(const char *xml, size_t len, struct r53_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->rrset.weight = -1;
    r->rrset.ttl = -1;
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
    int ok = len <= INT32_MAX && XML_Parse(xp, xml, (int)len, 1) == XML_STATUS_OK;
    bool nomem = p->nomem;
    XML_ParserFree(xp);
    free(p);
    if (!ok || nomem) {
        r53_reply_free(r);
        return nomem ? -ENOMEM : -EBADMSG;
    }
    return 0;
}

void r53_reply_free(struct r53_reply *r)
{
    free(r->change_id);
    free(r->change_status);
    r53_rrset_free(&r->rrset);
    for (int i = 0; i < 2; i++) {
        free(r->zone_ids[i]);
        free(r->zone_names[i]);
    }
    free(r->error_message);
    memset(r, 0, sizeof(*r));
    r->rrset.weight = -1;
    r->rrset.ttl = -1;
}

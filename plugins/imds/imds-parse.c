/* Parsers of IMDS answers. Pure (jansson only) and bounded: every string kept
 * is checked for length and printable characters, because values end up in
 * templates, logs and event payloads. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imds.h"

#define MAX_JSON (64 * 1024)

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static json_t *load_object(const char *body, size_t len, int *ret_err)
{
    if (len > MAX_JSON) {
        *ret_err = -EFBIG;
        return NULL;
    }
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!j) {
        *ret_err = -EBADMSG;
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *ret_err = -EBADMSG;
        return NULL;
    }
    return j;
}

/* A string member, copied; -EINVAL when missing, not a string, empty, too
 * long or not printable. */
static int get_str(json_t *obj, const char *key, size_t max, char **ret)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return -EINVAL;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > max || !printable(s, n))
        return -EINVAL;
    char *c = strndup(s, n);
    if (!c)
        return -ENOMEM;
    *ret = c;
    return 0;
}

static void free_secret(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

void imds_creds_clear(struct imds_creds *c)
{
    free(c->access_key_id);
    free_secret(&c->secret_access_key);
    free_secret(&c->token);
    free(c->expiration);
    memset(c, 0, sizeof(*c));
}

int imds_parse_creds(const char *body, size_t len, struct imds_creds *ret)
{
    int r = 0;
    struct imds_creds c = {0};
    json_t *j = load_object(body, len, &r);
    if (!j)
        return r;
    json_t *code = json_object_get(j, "Code");
    if (code && (!json_is_string(code) || strcmp(json_string_value(code), "Success") != 0)) {
        r = -EPROTO;
        goto out;
    }
    if ((r = get_str(j, "AccessKeyId", 128, &c.access_key_id)) < 0 ||
        (r = get_str(j, "SecretAccessKey", 256, &c.secret_access_key)) < 0 ||
        (r = get_str(j, "Token", 8192, &c.token)) < 0 ||
        (r = get_str(j, "Expiration", 64, &c.expiration)) < 0)
        goto out;
    if ((r = imds_parse_time(c.expiration, &c.expires_at)) < 0)
        goto out;
    *ret = c;
    memset(&c, 0, sizeof(c));
out:
    imds_creds_clear(&c);
    json_decref(j);
    return r;
}

static bool word(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != ':' && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

int imds_parse_spot(const char *body, size_t len, char **ret_action, char **ret_time)
{
    int r = 0;
    char *action = NULL, *t = NULL;
    int64_t ts;
    json_t *j = load_object(body, len, &r);
    if (!j)
        return r;
    if ((r = get_str(j, "action", 32, &action)) < 0 || (r = get_str(j, "time", 64, &t)) < 0)
        goto out;
    if (!word(action, 32) || imds_parse_time(t, &ts) < 0) {
        r = -EINVAL;
        goto out;
    }
    *ret_action = action;
    *ret_time = t;
    action = t = NULL;
out:
    free(action);
    free(t);
    json_decref(j);
    return r;
}

int imds_parse_rebalance(const char *body, size_t len, char **ret_notice_time)
{
    int r = 0;
    char *t = NULL;
    int64_t ts;
    json_t *j = load_object(body, len, &r);
    if (!j)
        return r;
    if ((r = get_str(j, "noticeTime", 64, &t)) < 0)
        goto out;
    if (imds_parse_time(t, &ts) < 0) {
        r = -EINVAL;
        goto out;
    }
    *ret_notice_time = t;
    t = NULL;
out:
    free(t);
    json_decref(j);
    return r;
}

int imds_parse_maintenance(const char *body, size_t len, json_t **ret_events)
{
    if (len > MAX_JSON)
        return -EFBIG;
    /* Whitespace only is "no events" (the list has been seen empty). */
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i]))
        i++;
    if (i == len) {
        json_t *a = json_array();
        if (!a)
            return -ENOMEM;
        *ret_events = a;
        return 0;
    }
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!j)
        return -EBADMSG;
    if (!json_is_array(j) || json_array_size(j) > 100) {
        json_decref(j);
        return -EINVAL;
    }
    size_t k;
    json_t *ev;
    json_array_foreach(j, k, ev)
    {
        if (!json_is_object(ev)) {
            json_decref(j);
            return -EINVAL;
        }
    }
    *ret_events = j;
    return 0;
}

/* Trims whitespace at both ends; returns the start and sets *n. */
static const char *trim(const char *s, size_t len, size_t *n)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    *n = len;
    return s;
}

int imds_parse_value(const char *body, size_t len, char **ret)
{
    size_t n;
    const char *s = trim(body, len, &n);
    if (n == 0 || n > IMDS_MAX_VALUE || !printable(s, n) || memchr(s, '\0', n))
        return -EINVAL;
    char *c = strndup(s, n);
    if (!c)
        return -ENOMEM;
    *ret = c;
    return 0;
}

int imds_parse_lifecycle(const char *body, size_t len, char **ret_state)
{
    char *v = NULL;
    int r = imds_parse_value(body, len, &v);
    if (r < 0)
        return r;
    if (!word(v, 32)) {
        free(v);
        return -EINVAL;
    }
    *ret_state = v;
    return 0;
}

void imds_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

int imds_parse_listing(const char *body, size_t len, size_t max, char ***ret)
{
    char **v = calloc(max + 1, sizeof(char *));
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t l;
        const char *s = trim(p, (size_t)(e - p), &l);
        if (l > 0) {
            if (n == max || l > 256 || !printable(s, l) || memchr(s, '\0', l)) {
                imds_strv_free(v);
                return n == max ? -E2BIG : -EINVAL;
            }
            if (!(v[n++] = strndup(s, l))) {
                imds_strv_free(v);
                return -ENOMEM;
            }
        }
        p = e + 1;
    }
    *ret = v;
    return 0;
}

void imds_identity_clear(struct imds_identity *id)
{
    free(id->account_id);
    free(id->region);
    free(id->az);
    free(id->instance_id);
    free(id->instance_type);
    free(id->image_id);
    free(id->private_ip);
    memset(id, 0, sizeof(*id));
}

int imds_parse_identity(const char *body, size_t len, struct imds_identity *ret)
{
    int r = 0;
    struct imds_identity id = {0};
    json_t *j = load_object(body, len, &r);
    if (!j)
        return r;
    /* accountId and instanceId are what the document is for; the rest is
     * optional and fills in if the meta-data items were not readable. */
    if ((r = get_str(j, "accountId", 32, &id.account_id)) < 0 ||
        (r = get_str(j, "instanceId", 64, &id.instance_id)) < 0)
        goto out;
    for (size_t i = 0; id.account_id[i]; i++)
        if (!isdigit((unsigned char)id.account_id[i])) {
            r = -EINVAL;
            goto out;
        }
    get_str(j, "region", 64, &id.region);
    get_str(j, "availabilityZone", 64, &id.az);
    get_str(j, "instanceType", 64, &id.instance_type);
    get_str(j, "imageId", 64, &id.image_id);
    get_str(j, "privateIp", 64, &id.private_ip);
    *ret = id;
    memset(&id, 0, sizeof(id));
out:
    imds_identity_clear(&id);
    json_decref(j);
    return r;
}

/* Credentials (and region) from the shared files, the SDKs' second source:
 * ~/.aws/credentials ("[NAME]" sections) and ~/.aws/config ("[profile NAME]"
 * and "[default]"), or AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE; the
 * profile is AWS_PROFILE or "default". Parsed like botocore's configparser
 * use: '=' or ':' separates, '#' and ';' start comment lines (there are no
 * inline comments), indented lines continue a nested value and are skipped,
 * CRLF is accepted, keys are case-insensitive. Values here are secrets:
 * every copy is zeroed before it is freed. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aws-internal.h"

#define MAX_FILE (1024 * 1024)

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void aws_profile_clear(struct aws_profile *p)
{
    free_secret(p->access_key_id);
    free_secret(p->secret_access_key);
    free_secret(p->session_token);
    free(p->region);
    memset(p, 0, sizeof(*p));
}

const char *aws_profile_name(const char *configured)
{
    const char *p;

    if (configured && *configured)
        return configured;
    p = getenv("AWS_PROFILE");
    if (p && *p)
        return p;
    return "default";
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Trims [*s, *e) of spaces, tabs and CRs. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_space(**s))
        (*s)++;
    while (*e > *s && is_space((*e)[-1]))
        (*e)--;
}

static bool section_matches(const char *s, const char *e, bool config_file, const char *profile)
{
    size_t pl = strlen(profile);

    trim(&s, &e);
    if (config_file) {
        /* [default] or [profile NAME]; botocore also accepts
         * [profile default]. */
        if (strcmp(profile, "default") == 0 && (size_t)(e - s) == 7 && !memcmp(s, "default", 7))
            return true;
        if (e - s < 8 || memcmp(s, "profile", 7) != 0 || !is_space(s[7]))
            return false;
        s += 8;
        trim(&s, &e);
    }
    return (size_t)(e - s) == pl && memcmp(s, profile, pl) == 0;
}

static int set_value(char **dst, const char *s, const char *e)
{
    if (*dst)
        return 0; /* an earlier file (or line) already set it */
    *dst = strndup(s, (size_t)(e - s));
    return *dst ? 0 : -ENOMEM;
}

int aws_profile_parse(const char *text, size_t len, bool config_file, const char *profile,
                      struct aws_profile *ret)
{
    const char *p = text, *end = text + len;
    bool in_section = false, found = false;
    int r;

    if (memchr(text, '\0', len))
        return -EINVAL;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *ls = p, *le = eol ? eol : end, *sep;
        bool indented = ls < le && (*ls == ' ' || *ls == '\t');

        p = eol ? eol + 1 : end;
        trim(&ls, &le);
        if (ls == le || *ls == '#' || *ls == ';')
            continue;
        if (*ls == '[' && !indented) {
            const char *close = memchr(ls, ']', (size_t)(le - ls));
            if (!close)
                return -EINVAL;
            in_section = section_matches(ls + 1, close, config_file, profile);
            found |= in_section;
            continue;
        }
        /* Indented lines belong to a nested value (s3 = ...). */
        if (!in_section || indented)
            continue;
        sep = ls;
        while (sep < le && *sep != '=' && *sep != ':')
            sep++;
        if (sep == le)
            continue;
        const char *ks = ls, *ke = sep, *vs = sep + 1, *ve = le;
        trim(&ks, &ke);
        trim(&vs, &ve);
        size_t kl = (size_t)(ke - ks);
        r = 0;
        if (kl == 17 && strncasecmp(ks, "aws_access_key_id", kl) == 0)
            r = set_value(&ret->access_key_id, vs, ve);
        else if (kl == 21 && strncasecmp(ks, "aws_secret_access_key", kl) == 0)
            r = set_value(&ret->secret_access_key, vs, ve);
        else if (kl == 17 && strncasecmp(ks, "aws_session_token", kl) == 0)
            r = set_value(&ret->session_token, vs, ve);
        else if (kl == 18 && strncasecmp(ks, "aws_security_token", kl) == 0)
            r = set_value(&ret->session_token, vs, ve);
        else if (kl == 6 && strncasecmp(ks, "region", kl) == 0)
            r = set_value(&ret->region, vs, ve);
        if (r < 0)
            return r;
    }
    return found ? 1 : 0;
}

/* Reads a whole small file; -ENOENT if absent, -EFBIG past MAX_FILE. */
static int read_file(const char *path, char **ret, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), r = 0;
    struct stat st;
    char *buf = NULL;
    size_t n = 0;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = -EINVAL;
        goto out;
    }
    if (st.st_size > MAX_FILE) {
        r = -EFBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    while (n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    *ret = buf;
    *ret_len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return r;
}

static char *default_path(const char *env, const char *name)
{
    const char *v = getenv(env), *home = getenv("HOME");
    char *p = NULL;

    if (v && *v)
        return strdup(v);
    if (!home || !*home)
        return NULL;
    if (asprintf(&p, "%s/.aws/%s", home, name) < 0)
        return NULL;
    return p;
}

static int load_one(const char *path, bool config_file, const char *profile,
                    struct aws_profile *ret)
{
    char *text = NULL;
    size_t len = 0;
    int r;

    if (!path)
        return 0;
    r = read_file(path, &text, &len);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    r = aws_profile_parse(text, len, config_file, profile, ret);
    OPENSSL_cleanse(text, len);
    free(text);
    return r;
}

int aws_profile_load(const char *creds_path, const char *config_path, const char *profile,
                     struct aws_profile *ret)
{
    struct aws_profile p = {0};
    char *cp = creds_path ? strdup(creds_path)
                          : default_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    char *fp = config_path ? strdup(config_path) : default_path("AWS_CONFIG_FILE", "config");
    const char *name = aws_profile_name(profile);
    int r;

    /* The credentials file wins over the config file for the same key. */
    r = load_one(cp, false, name, &p);
    if (r >= 0)
        r = load_one(fp, true, name, &p);
    free(cp);
    free(fp);
    if (r < 0) {
        aws_profile_clear(&p);
        return r;
    }
    *ret = p;
    return 0;
}

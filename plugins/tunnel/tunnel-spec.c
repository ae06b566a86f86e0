/* tunnel plugin: parsing of destinations and forward specs, and the checks
 * on strings that end up on ssh's command line. Everything that reaches ssh
 * is validated here first so that no config value can become an ssh option
 * of its own (a host "-oProxyCommand=..." for example).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tunnel.h"

#define MAX_HOST 253
#define MAX_USER 64
#define MAX_NAME 64

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A DNS name or IPv4 address: letters, digits, '.', '-', '_'; not starting
 * with '-' so that ssh can never read it as an option. */
static bool host_ok(const char *s, size_t n)
{
    if (n == 0 || n > MAX_HOST || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

/* The inside of "[...]": an IPv6 address (hex digits, ':', '.'). */
static bool v6_ok(const char *s, size_t n)
{
    bool colon = false;

    if (n < 2 || n > 45)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ':')
            colon = true;
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                   c == '.'))
            return false;
    }
    return colon;
}

/* Parses a decimal port; allow_zero for a server-allocated listen port. */
static int port_parse(const char *s, size_t n, bool allow_zero, unsigned *ret)
{
    unsigned v = 0;

    if (n == 0 || n > 5)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535 || (v == 0 && !allow_zero))
        return -EINVAL;
    *ret = v;
    return 0;
}

bool tunnel_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(name[i]) && name[i] != '_' && name[i] != '.' && name[i] != '-')
            return false;
    return true;
}

void tunnel_dest_clear(struct tunnel_dest *d)
{
    free(d->user);
    free(d->host);
    d->user = d->host = NULL;
    d->port = 0;
}

int tunnel_dest_parse(const char *s, struct tunnel_dest *ret, const char **ret_why)
{
    const char *at = strchr(s, '@'), *host, *hend, *rest;
    unsigned port = 22;
    struct tunnel_dest d = {0};

    if (!at || at == s) {
        *ret_why = "must be user@host[:port]";
        return -EINVAL;
    }
    if ((size_t)(at - s) > MAX_USER || s[0] == '-') {
        *ret_why = "bad user name";
        return -EINVAL;
    }
    for (const char *p = s; p < at; p++)
        if (!is_alnum(*p) && *p != '.' && *p != '-' && *p != '_') {
            *ret_why = "bad user name";
            return -EINVAL;
        }
    host = at + 1;
    if (*host == '[') {
        const char *close = strchr(host, ']');
        if (!close || !v6_ok(host + 1, (size_t)(close - host - 1))) {
            *ret_why = "bad IPv6 address (use user@[addr]:port)";
            return -EINVAL;
        }
        hend = close;
        host++;
        rest = close + 1;
    } else {
        hend = strchr(host, ':');
        if (!hend)
            hend = host + strlen(host);
        if (!host_ok(host, (size_t)(hend - host))) {
            *ret_why = "bad host name";
            return -EINVAL;
        }
        rest = hend;
    }
    if (*rest == ':') {
        if (port_parse(rest + 1, strlen(rest + 1), false, &port) < 0) {
            *ret_why = "bad port (1-65535)";
            return -EINVAL;
        }
    } else if (*rest != '\0') {
        *ret_why = "must be user@host[:port]";
        return -EINVAL;
    }
    d.user = strndup(s, (size_t)(at - s));
    d.host = strndup(host, (size_t)(hend - host));
    d.port = port;
    if (!d.user || !d.host) {
        tunnel_dest_clear(&d);
        return -ENOMEM;
    }
    *ret = d;
    return 0;
}

void tunnel_forward_clear(struct tunnel_forward *f)
{
    free(f->bind);
    free(f->host);
    f->bind = f->host = NULL;
    f->port = f->hostport = 0;
}

struct tok {
    const char *s;
    size_t n;
    bool bracketed;
};

/* Splits at ':' outside of brackets, as ssh's hpdelim() does. */
static int split_colons(const char *spec, struct tok *toks, size_t max, size_t *ret_n)
{
    size_t n = 0;
    const char *p = spec;

    for (;;) {
        struct tok t = {p, 0, false};
        if (n == max)
            return -EINVAL;
        if (*p == '[') {
            const char *close = strchr(p, ']');
            if (!close)
                return -EINVAL;
            t.s = p + 1;
            t.n = (size_t)(close - p - 1);
            t.bracketed = true;
            p = close + 1;
            if (*p != ':' && *p != '\0')
                return -EINVAL;
        } else {
            const char *c = strchr(p, ':');
            t.n = c ? (size_t)(c - p) : strlen(p);
            p += t.n;
        }
        toks[n++] = t;
        if (*p == '\0')
            break;
        p++; /* the ':' */
    }
    *ret_n = n;
    return 0;
}

static bool addr_tok_ok(const struct tok *t, bool allow_star)
{
    if (t->bracketed)
        return v6_ok(t->s, t->n);
    if (allow_star && t->n == 1 && t->s[0] == '*')
        return true;
    return host_ok(t->s, t->n);
}

int tunnel_forward_parse(const char *spec, bool remote, struct tunnel_forward *ret,
                         const char **ret_why)
{
    struct tok t[5];
    size_t n = 0, i = 0;
    struct tunnel_forward f = {0};

    *ret_why = "must be [bind:]port:host:hostport";
    if (!spec || split_colons(spec, t, 5, &n) < 0 || (n != 3 && n != 4))
        return -EINVAL;
    if (n == 4) {
        if (!addr_tok_ok(&t[0], true)) {
            *ret_why = "bad bind address";
            return -EINVAL;
        }
        i = 1;
    }
    if (port_parse(t[i].s, t[i].n, remote, &f.port) < 0) {
        *ret_why = remote ? "bad listen port (0-65535)" : "bad listen port (1-65535)";
        return -EINVAL;
    }
    if (t[i + 1].bracketed ? !v6_ok(t[i + 1].s, t[i + 1].n) : !host_ok(t[i + 1].s, t[i + 1].n)) {
        *ret_why = "bad target host";
        return -EINVAL;
    }
    if (port_parse(t[i + 2].s, t[i + 2].n, false, &f.hostport) < 0) {
        *ret_why = "bad target port (1-65535)";
        return -EINVAL;
    }
    if (n == 4 && !(f.bind = strndup(t[0].s, t[0].n)))
        return -ENOMEM;
    if (!(f.host = strndup(t[i + 1].s, t[i + 1].n))) {
        tunnel_forward_clear(&f);
        return -ENOMEM;
    }
    *ret = f;
    return 0;
}

int tunnel_forward_remote_text(const struct tunnel_forward *f, char *buf, size_t size)
{
    /* Mirrors ssh's client_global_request reply debug line: "listen %s%s%d,
     * connect %s:%d" with the listen host and a ':' only when one was given. */
    int r = snprintf(buf, size, "listen %s%s%u, connect %s:%u", f->bind ? f->bind : "",
                     f->bind ? ":" : "", f->port, f->host, f->hostport);
    if (r < 0 || (size_t)r >= size)
        return -ENOBUFS;
    return r;
}

/* Options that tune transport and crypto only. Everything that decides where
 * keys come from, how host keys are checked, or that runs commands
 * (ProxyCommand, LocalCommand, ProxyJump, whose inner ssh would not inherit
 * the pinned known_hosts) stays out. */
static const char *const allowed_options[] = {
    "AddressFamily",
    "BindAddress",
    "BindInterface",
    "CASignatureAlgorithms",
    "CertificateFile",
    "Ciphers",
    "Compression",
    "GatewayPorts",
    "HostKeyAlgorithms",
    "HostKeyAlias",
    "IPQoS",
    "KexAlgorithms",
    "MACs",
    "PubkeyAcceptedAlgorithms",
    "RekeyLimit",
    "RequiredRSASize",
    "TCPKeepAlive",
    NULL,
};

bool tunnel_ssh_option_allowed(const char *key, const char **ret_canon)
{
    for (size_t i = 0; allowed_options[i]; i++)
        if (strcasecmp(key, allowed_options[i]) == 0) {
            if (ret_canon)
                *ret_canon = allowed_options[i];
            return true;
        }
    return false;
}

bool tunnel_ssh_value_ok(const char *value)
{
    if (!value || !*value || value[0] == '-' || strlen(value) > 1024)
        return false;
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '\\' || c == ' ' || c == '\t')
            return false;
    }
    return true;
}

bool tunnel_path_ok(const char *path)
{
    if (!path || path[0] != '/' || strlen(path) > 4096 || strstr(path, "${"))
        return false;
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '\\')
            return false;
    }
    return true;
}

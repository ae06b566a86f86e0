/* tunnel plugin: the ssh command line.
 *
 * ssh takes the first value it sees for an option, so the fixed options come
 * first and the user's allow-listed extras after them: nothing in ssh_options
 * can weaken host key checking or batch mode. -F none keeps the system and
 * user ssh_config files out, so the tunnel behaves the same on every host.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel.h"

struct argv_buf {
    char **v;
    size_t n, cap;
    int err;
};

static void add_owned(struct argv_buf *a, char *s)
{
    if (a->err || !s) {
        a->err = a->err ? a->err : -ENOMEM;
        free(s);
        return;
    }
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        char **v = realloc(a->v, cap * sizeof(*v));
        if (!v) {
            a->err = -ENOMEM;
            free(s);
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void add(struct argv_buf *a, const char *s)
{
    add_owned(a, strdup(s));
}

static void addf(struct argv_buf *a, const char *fmt, ...) AGENTD_PRINTF(2, 3);
static void addf(struct argv_buf *a, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    add_owned(a, s);
}

/* ssh expands %-tokens in IdentityFile and UserKnownHostsFile; a literal '%'
 * in a path must be written "%%". */
static char *escape_percent(const char *path)
{
    size_t n = 0;
    char *out, *o;

    for (const char *p = path; *p; p++)
        n += *p == '%' ? 2 : 1;
    if (!(out = malloc(n + 1)))
        return NULL;
    o = out;
    for (const char *p = path; *p; p++) {
        *o++ = *p;
        if (*p == '%')
            *o++ = '%';
    }
    *o = '\0';
    return out;
}

static void add_opt_path(struct argv_buf *a, const char *key, const char *path)
{
    char *e = escape_percent(path);

    add(a, "-o");
    if (!e) {
        add_owned(a, NULL);
        return;
    }
    addf(a, "%s=%s", key, e);
    free(e);
}

/* ssh wants IPv6 addresses in brackets inside forward specs. */
static void add_forward(struct argv_buf *a, const char *flag, const struct tunnel_forward *f)
{
    bool bind6 = f->bind && strchr(f->bind, ':');
    bool host6 = strchr(f->host, ':') != NULL;

    add(a, flag);
    if (f->bind)
        addf(a, "%s%s%s:%u:%s%s%s:%u", bind6 ? "[" : "", f->bind, bind6 ? "]" : "", f->port,
             host6 ? "[" : "", f->host, host6 ? "]" : "", f->hostport);
    else
        addf(a, "%u:%s%s%s:%u", f->port, host6 ? "[" : "", f->host, host6 ? "]" : "", f->hostport);
}

int tunnel_argv_build(const struct tunnel_argv_in *in, char ***ret)
{
    struct argv_buf a = {0};

    if (!in->ssh || !in->dest || !in->identity || !in->known_hosts)
        return -EINVAL;
    add(&a, in->ssh);
    /* -v: the debug lines are the only report of each forward's success. */
    add(&a, "-v");
    add(&a, "-N");
    add(&a, "-T");
    add(&a, "-F");
    add(&a, "none");
    add(&a, "-o");
    add(&a, "BatchMode=yes");
    add(&a, "-o");
    add(&a, "ExitOnForwardFailure=yes");
    add(&a, "-o");
    addf(&a, "ServerAliveInterval=%u", in->keepalive_s);
    add(&a, "-o");
    addf(&a, "ServerAliveCountMax=%u", in->keepalive_count);
    add(&a, "-o");
    addf(&a, "ConnectTimeout=%u", in->connect_timeout_s);
    add(&a, "-o");
    add(&a, "ConnectionAttempts=1");
    add(&a, "-o");
    add(&a, "IdentitiesOnly=yes");
    add_opt_path(&a, "IdentityFile", in->identity);
    add_opt_path(&a, "UserKnownHostsFile", in->known_hosts);
    /* Only the pinned file counts: a key in /etc/ssh/ssh_known_hosts must
     * not make an unpinned server acceptable. */
    add(&a, "-o");
    add(&a, "GlobalKnownHostsFile=/dev/null");
    add(&a, "-o");
    add(&a, in->accept_new ? "StrictHostKeyChecking=accept-new" : "StrictHostKeyChecking=yes");
    add(&a, "-o");
    add(&a, "UpdateHostKeys=no");
    add(&a, "-o");
    add(&a, "CheckHostIP=no");
    add(&a, "-o");
    add(&a, "VerifyHostKeyDNS=no");
    add(&a, "-o");
    add(&a, "PasswordAuthentication=no");
    add(&a, "-o");
    add(&a, "KbdInteractiveAuthentication=no");
    add(&a, "-o");
    add(&a, "ControlMaster=no");
    add(&a, "-o");
    add(&a, "ControlPath=none");
    add(&a, "-o");
    add(&a, "ForwardAgent=no");
    add(&a, "-o");
    add(&a, "ForwardX11=no");
    add(&a, "-o");
    add(&a, "PermitLocalCommand=no");
    if (in->extra)
        for (size_t i = 0; i < in->extra->n; i++) {
            const char *canon = NULL;
            if (!tunnel_ssh_option_allowed(in->extra->keys[i], &canon) ||
                !tunnel_ssh_value_ok(in->extra->values[i])) {
                a.err = a.err ? a.err : -EINVAL;
                break;
            }
            if (strcmp(canon, "CertificateFile") == 0) {
                add_opt_path(&a, canon, in->extra->values[i]);
            } else {
                add(&a, "-o");
                addf(&a, "%s=%s", canon, in->extra->values[i]);
            }
        }
    for (size_t i = 0; i < in->nremote; i++)
        add_forward(&a, "-R", &in->remote[i]);
    for (size_t i = 0; i < in->nlocal; i++)
        add_forward(&a, "-L", &in->local[i]);
    add(&a, "-l");
    add(&a, in->dest->user);
    add(&a, "-p");
    addf(&a, "%u", in->dest->port);
    /* "--": the host is an operand, never an option. */
    add(&a, "--");
    add(&a, in->dest->host);
    if (a.err) {
        tunnel_argv_free(a.v);
        return a.err;
    }
    *ret = a.v;
    return 0;
}

void tunnel_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

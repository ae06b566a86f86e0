/* tunnel plugin: a tunnel's fixed parts, prepared once from its config:
 * the parsed destination and forwards, the ssh command line, and the
 * comparison that lets a reload keep an unchanged tunnel running.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel.h"

unsigned tunnel_keepalive_s(const struct tunnel_conf *c)
{
    return (unsigned)((c->keepalive ? c->keepalive->interval_ms : TUNNEL_DEFAULT_KEEPALIVE_MS) /
                      1000u);
}

unsigned tunnel_keepalive_count(const struct tunnel_conf *c)
{
    return c->keepalive ? (unsigned)c->keepalive->count : TUNNEL_DEFAULT_KEEPALIVE_COUNT;
}

int tunnel_init(struct tunnel *t, struct tunnel_plugin *tp, const struct tunnel_conf *conf,
                struct agentd_err *err)
{
    char *const *rspecs = conf->remote_forwards.items, *const *lspecs = conf->local_forwards.items;
    const char *why = NULL;
    int r;

    memset(t, 0, sizeof(*t));
    t->tp = tp;
    t->conf = conf;
    t->state = TUNNEL_IDLE;
    if (tunnel_dest_parse(conf->destination, &t->dest, &why) < 0)
        return agentd_err_set(err, "tunnel '%s': destination: %s", conf->name, why);
    t->nremote = conf->remote_forwards.n;
    t->nfwd = t->nremote + conf->local_forwards.n;
    t->fwd = calloc(t->nfwd, sizeof(*t->fwd));
    t->confirmed = calloc(t->nfwd, sizeof(*t->confirmed));
    t->allocated = calloc(t->nfwd, sizeof(*t->allocated));
    if (asprintf(&t->field, "TUNNEL=%s", conf->name) < 0)
        t->field = NULL;
    t->name = strdup(conf->name);
    if (!t->fwd || !t->confirmed || !t->allocated || !t->field || !t->name)
        return -ENOMEM;
    t->fields[0] = t->field;
    for (size_t i = 0; i < t->nfwd; i++) {
        bool remote = i < t->nremote;
        const char *spec = remote ? rspecs[i] : lspecs[i - t->nremote];
        if (tunnel_forward_parse(spec, remote, &t->fwd[i], &why) < 0)
            return agentd_err_set(err, "tunnel '%s': forward '%s': %s", conf->name, spec, why);
    }
    struct tunnel_argv_in in = {
        .ssh = "ssh",
        .dest = &t->dest,
        .remote = t->fwd,
        .nremote = t->nremote,
        .local = t->fwd + t->nremote,
        .nlocal = t->nfwd - t->nremote,
        .identity = conf->identity,
        .known_hosts = conf->known_hosts,
        .accept_new = conf->host_key_checking == TUNNEL_HOSTKEY_ACCEPT_NEW,
        .keepalive_s = tunnel_keepalive_s(conf),
        .keepalive_count = tunnel_keepalive_count(conf),
        .connect_timeout_s = (unsigned)(conf->connect_timeout_ms / 1000u),
        .extra = &conf->ssh_options,
    };
    r = tunnel_argv_build(&in, &t->argv);
    if (r < 0)
        return agentd_err_set(err, "tunnel '%s': cannot build the ssh command line: %s", conf->name,
                              strerror(-r));
    return 0;
}

void tunnel_clear(struct tunnel *t)
{
    tunnel_dest_clear(&t->dest);
    for (size_t i = 0; t->fwd && i < t->nfwd; i++)
        tunnel_forward_clear(&t->fwd[i]);
    free(t->fwd);
    free(t->confirmed);
    free(t->allocated);
    free(t->field);
    free(t->name);
    tunnel_argv_free(t->argv);
    memset(t, 0, sizeof(*t));
}

bool tunnel_conf_same(const struct tunnel_conf *a, const struct tunnel_conf *b)
{
    const struct agentd_list *la[2] = {&a->remote_forwards, &a->local_forwards};
    const struct agentd_list *lb[2] = {&b->remote_forwards, &b->local_forwards};

    if (strcmp(a->name, b->name) != 0 || strcmp(a->destination, b->destination) != 0 ||
        strcmp(a->identity, b->identity) != 0 || !a->known_hosts != !b->known_hosts ||
        (a->known_hosts && strcmp(a->known_hosts, b->known_hosts) != 0) ||
        a->host_key_checking != b->host_key_checking ||
        tunnel_keepalive_s(a) != tunnel_keepalive_s(b) ||
        tunnel_keepalive_count(a) != tunnel_keepalive_count(b) ||
        a->connect_timeout_ms != b->connect_timeout_ms || a->critical != b->critical ||
        a->backoff_max_ms != b->backoff_max_ms ||
        a->backoff_permanent_ms != b->backoff_permanent_ms ||
        a->backoff_reset_ms != b->backoff_reset_ms || a->ssh_options.n != b->ssh_options.n)
        return false;
    for (size_t k = 0; k < 2; k++) {
        if (la[k]->n != lb[k]->n)
            return false;
        for (size_t i = 0; i < la[k]->n; i++)
            if (strcmp(((char *const *)la[k]->items)[i], ((char *const *)lb[k]->items)[i]) != 0)
                return false;
    }
    for (size_t i = 0; i < a->ssh_options.n; i++)
        if (strcmp(a->ssh_options.keys[i], b->ssh_options.keys[i]) != 0 ||
            strcmp(a->ssh_options.values[i], b->ssh_options.values[i]) != 0)
            return false;
    return true;
}

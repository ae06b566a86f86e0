/* tunnel plugin: the option tables and their cross-field checks. The host
 * parses YAML into struct tunnel_conf; validate() catches everything that
 * would only fail later inside ssh, with the config position of the key.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "tunnel.h"

static int keepalive_validate(void *obj, struct agentd_confctx *cc)
{
    const struct tunnel_keepalive_conf *k = obj;
    int r = 0;

    /* ssh takes whole seconds. */
    if (k->interval_ms % 1000 != 0) {
        agentd_conf_error(cc, "interval", "must be whole seconds (ssh's ServerAliveInterval)");
        r = -EINVAL;
    }
    return r;
}

static const struct agentd_option keepalive_options[] = {
    {.name = "interval",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct tunnel_keepalive_conf, interval_ms),
     .def = "10s",
     .min = 1000,
     .max = 3600000,
     .description = "ServerAliveInterval: how often to probe the server (whole seconds)"},
    {.name = "count",
     .type = AGENTD_OPT_INT,
     .offset = offsetof(struct tunnel_keepalive_conf, count),
     .def = "3",
     .min = 1,
     .max = 100,
     .description = "ServerAliveCountMax: unanswered probes before the tunnel is down"},
    {.name = NULL},
};

static const struct agentd_schema keepalive_schema = {
    .name = "tunnel keepalive",
    .size = sizeof(struct tunnel_keepalive_conf),
    .options = keepalive_options,
    .validate = keepalive_validate,
};

static const char *const hostkey_values[] = {"yes", "accept-new", NULL};

static bool forwards_ok(struct agentd_confctx *cc, const char *key, const struct agentd_list *l,
                        bool remote)
{
    char *const *specs = l->items;
    bool ok = true;

    for (size_t i = 0; i < l->n; i++) {
        struct tunnel_forward f;
        const char *why = NULL;
        if (tunnel_forward_parse(specs[i], remote, &f, &why) < 0) {
            agentd_conf_error(cc, key, "'%s': %s", specs[i], why);
            ok = false;
            continue;
        }
        tunnel_forward_clear(&f);
    }
    return ok;
}

static int tunnel_validate(void *obj, struct agentd_confctx *cc)
{
    const struct tunnel_conf *c = obj;
    bool ok = true;

    if (!tunnel_name_ok(c->name)) {
        agentd_conf_error(cc, "name", "'%s' must be 1-64 characters of A-Z a-z 0-9 _ . -",
                          c->name ? c->name : "");
        ok = false;
    }
    if (c->destination) {
        struct tunnel_dest d;
        const char *why = NULL;
        if (tunnel_dest_parse(c->destination, &d, &why) < 0) {
            agentd_conf_error(cc, "destination", "'%s': %s", c->destination, why);
            ok = false;
        } else {
            tunnel_dest_clear(&d);
        }
    }
    ok &= forwards_ok(cc, "remote_forwards", &c->remote_forwards, true);
    ok &= forwards_ok(cc, "local_forwards", &c->local_forwards, false);
    if (c->remote_forwards.n + c->local_forwards.n == 0) {
        agentd_conf_error(cc, NULL,
                          "a tunnel needs at least one of remote_forwards, local_forwards");
        ok = false;
    }
    if (!c->known_hosts) {
        agentd_conf_error(cc, NULL,
                          "known_hosts is required: tunnels pin the server's host key "
                          "(StrictHostKeyChecking=yes); use host_key_checking: accept-new to "
                          "record it on first contact");
        ok = false;
    } else if (!tunnel_path_ok(c->known_hosts)) {
        agentd_conf_error(cc, "known_hosts", "'%s': no spaces, quotes, backslashes or ${ allowed",
                          c->known_hosts);
        ok = false;
    }
    if (c->identity && !tunnel_path_ok(c->identity)) {
        agentd_conf_error(cc, "identity", "'%s': no spaces, quotes, backslashes or ${ allowed",
                          c->identity);
        ok = false;
    }
    if (c->connect_timeout_ms % 1000 != 0) {
        agentd_conf_error(cc, "connect_timeout", "must be whole seconds (ssh's ConnectTimeout)");
        ok = false;
    }
    if (c->backoff_permanent_ms < c->backoff_max_ms) {
        agentd_conf_error(cc, "backoff_permanent", "must not be shorter than backoff_max");
        ok = false;
    }
    for (size_t i = 0; i < c->ssh_options.n; i++) {
        const char *k = c->ssh_options.keys[i], *v = c->ssh_options.values[i], *canon = NULL;
        if (!tunnel_ssh_option_allowed(k, &canon)) {
            agentd_conf_error(cc, "ssh_options",
                              "'%s' is not an allowed ssh option (transport and crypto "
                              "options only; see the tunnel README)",
                              k);
            ok = false;
        } else if (strcmp(canon, "CertificateFile") == 0 ? !tunnel_path_ok(v)
                                                         : !tunnel_ssh_value_ok(v)) {
            agentd_conf_error(cc, "ssh_options", "%s: bad value '%s'", canon, v ? v : "");
            ok = false;
        }
    }
    return ok ? 0 : -EINVAL;
}

static const struct agentd_option tunnel_options[] = {
    {.name = "name",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct tunnel_conf, name),
     .flags = AGENTD_OPT_REQUIRED | AGENTD_OPT_UNIQUE,
     .description = "the tunnel's name in status, logs (TUNNEL=) and its health check"},
    {.name = "destination",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct tunnel_conf, destination),
     .flags = AGENTD_OPT_REQUIRED,
     .description = "the ssh server: user@host[:port] (user@[v6addr]:port)"},
    {.name = "remote_forwards",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_STRING,
     .offset = offsetof(struct tunnel_conf, remote_forwards),
     .min = 0,
     .max = 64,
     .description = "ssh -R specs \"[bind:]port:host:hostport\" (port 0: the server picks)"},
    {.name = "local_forwards",
     .type = AGENTD_OPT_LIST,
     .elem = AGENTD_OPT_STRING,
     .offset = offsetof(struct tunnel_conf, local_forwards),
     .min = 0,
     .max = 64,
     .description = "ssh -L specs \"[bind:]port:host:hostport\""},
    {.name = "identity",
     .type = AGENTD_OPT_PATH,
     .offset = offsetof(struct tunnel_conf, identity),
     .flags = AGENTD_OPT_REQUIRED,
     .description = "private key file (mode 0600, readable by agentd)"},
    {.name = "known_hosts",
     .type = AGENTD_OPT_PATH,
     .offset = offsetof(struct tunnel_conf, known_hosts),
     .description = "required: known_hosts file pinning the server's host key"},
    {.name = "host_key_checking",
     .type = AGENTD_OPT_ENUM,
     .offset = offsetof(struct tunnel_conf, host_key_checking),
     .def = "yes",
     .values = hostkey_values,
     .description = "yes (pinned key only) or accept-new (record an unknown key once)"},
    {.name = "keepalive",
     .type = AGENTD_OPT_OBJECT,
     .offset = offsetof(struct tunnel_conf, keepalive),
     .sub = &keepalive_schema,
     .description = "server keepalive: {interval: 10s, count: 3}; down after interval x count"},
    {.name = "connect_timeout",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct tunnel_conf, connect_timeout_ms),
     .def = "10s",
     .min = 1000,
     .max = 300000,
     .description = "ConnectTimeout: TCP connect and banner exchange (whole seconds)"},
    {.name = "ssh_options",
     .type = AGENTD_OPT_MAP,
     .offset = offsetof(struct tunnel_conf, ssh_options),
     .description = "extra ssh -o options from an allow-list (Ciphers, KexAlgorithms, ...)"},
    {.name = "critical",
     .type = AGENTD_OPT_BOOL,
     .offset = offsetof(struct tunnel_conf, critical),
     .def = "false",
     .description = "whether the tunnel:NAME health check failing fails overall health"},
    {.name = "backoff_max",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct tunnel_conf, backoff_max_ms),
     .def = "4s",
     .min = 1000,
     .max = 3600000,
     .description = "longest wait between attempts after transient failures"},
    {.name = "backoff_permanent",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct tunnel_conf, backoff_permanent_ms),
     .def = "5m",
     .min = 1000,
     .max = 86400000,
     .description = "wait after a permanent error (host key, identity, authentication)"},
    {.name = "backoff_reset",
     .type = AGENTD_OPT_DURATION,
     .offset = offsetof(struct tunnel_conf, backoff_reset_ms),
     .def = "30s",
     .min = 0,
     .max = 86400000,
     .description = "up this long, the next failure starts the backoff from 1 s again"},
    {.name = NULL},
};

const struct agentd_schema tunnel_schema = {
    .name = "tunnel",
    .size = sizeof(struct tunnel_conf),
    .options = tunnel_options,
    .validate = tunnel_validate,
};

/* `agentctl tunnel doctor`: per tunnel, what ssh will refuse before it even
 * connects. The identity file must be readable by agentd and not readable
 * by group or others (ssh ignores such a key); with strict host key
 * checking, known_hosts must exist and not be empty. Checks are local and
 * answered at once ("done": true). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tunnel.h"

static json_t *check(const char *name, const char *status, const char *detail, const char *cause,
                     const char *fix)
{
    return json_pack("{s:s,s:s,s:s,s:s?,s:s?}", "name", name, "status", status, "detail", detail,
                     "cause", cause, "fix", fix);
}

static json_t *identity(const struct tunnel_conf *c)
{
    char name[160], detail[PATH_MAX + 100];
    struct stat st;

    snprintf(name, sizeof(name), "tunnel:%s identity", c->name);
    if (!c->identity)
        return check(name, "pass", "no identity file configured (ssh's default)", NULL, NULL);
    int fd = open(c->identity, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(detail, sizeof(detail), "'%s': %s", c->identity, strerror(e));
        return check(name, "fail", detail,
                     e == ENOENT ? "the key file does not exist"
                                 : "agentd's user may not read the key file",
                     "install the key (e.g. /etc/agentd/keys/, group agentd, mode 0640 or "
                     "owned by agentd with 0600)");
    }
    close(fd);
    if (st.st_mode & 0007) {
        snprintf(detail, sizeof(detail), "'%s' is mode %04o", c->identity,
                 (unsigned)(st.st_mode & 07777));
        return check(name, "fail", detail, "others may read the key: ssh refuses it",
                     "chmod o-rwx the key file (0600, or 0640 with group agentd)");
    }
    snprintf(detail, sizeof(detail), "'%s' readable, mode %04o", c->identity,
             (unsigned)(st.st_mode & 07777));
    return check(name, "pass", detail, NULL, NULL);
}

static json_t *known_hosts(const struct tunnel_conf *c)
{
    char name[160], detail[PATH_MAX + 100];
    struct stat st;

    snprintf(name, sizeof(name), "tunnel:%s known_hosts", c->name);
    if (!c->known_hosts)
        return check(name, "pass", "not configured (ssh's default files)", NULL, NULL);
    if (stat(c->known_hosts, &st) < 0 || access(c->known_hosts, R_OK) < 0) {
        snprintf(detail, sizeof(detail), "'%s': %s", c->known_hosts, strerror(errno));
        return check(name, "fail", detail,
                     "ssh cannot check the server's host key, so it refuses to connect",
                     "pin the server's key: ssh-keyscan -H HOST > FILE (and verify its "
                     "fingerprint)");
    }
    if (st.st_size == 0 && c->host_key_checking == TUNNEL_HOSTKEY_YES) {
        snprintf(detail, sizeof(detail), "'%s' is empty", c->known_hosts);
        return check(name, "fail", detail,
                     "with strict host key checking an empty file refuses every server",
                     "pin the server's key: ssh-keyscan -H HOST > FILE (and verify its "
                     "fingerprint), or host_key_checking: accept-new");
    }
    snprintf(detail, sizeof(detail), "'%s' present", c->known_hosts);
    return check(name, "pass", detail, NULL, NULL);
}

int tunnel_doctor_verb(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct tunnel_plugin *tp = agentd_plugin_get_data(ctx);
    const char *a = json_string_value(json_array_get(args, 0));
    json_t *checks = json_array();
    (void)ud;

    if (a && strcmp(a, "start") != 0) {
        json_decref(checks);
        *ret = json_string("usage: tunnel doctor [start]");
        return -EINVAL;
    }
    for (size_t i = 0; tp && i < tp->n; i++) {
        json_array_append_new(checks, identity(tp->t[i]->conf));
        json_array_append_new(checks, known_hosts(tp->t[i]->conf));
    }
    *ret = json_pack("{s:b,s:o}", "done", 1, "checks", checks);
    return 0;
}

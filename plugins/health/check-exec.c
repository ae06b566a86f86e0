/* exec: runs argv (no shell) in its own process group through the host's
 * child API. Exit 0 is pass, 1 warn, anything else fail; a timeout kills the
 * whole group so a script's children die with it. Output is kept up to 4 KiB. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health-int.h"

#define EXEC_OUTPUT_MAX 4096

struct exec_priv {
    char **argv; /* copies: a reload may keep the check and free the old config */
    struct agentd_child *child;
    size_t out_len;
    char out[EXEC_OUTPUT_MAX + 1];
};

static void on_line(struct agentd_child *child, int stream, const char *line, size_t len, void *ud)
{
    struct hcheck *c = ud;
    struct exec_priv *p = c->priv;
    size_t room = EXEC_OUTPUT_MAX - p->out_len;

    if (room == 0)
        return;
    if (p->out_len && room > 1) {
        p->out[p->out_len++] = '\n';
        room--;
    }
    if (len > room)
        len = room;
    memcpy(p->out + p->out_len, line, len);
    p->out_len += len;
    p->out[p->out_len] = '\0';
}

static void on_exit_cb(struct agentd_child *child, int64_t exit_status, int term_signal, void *ud)
{
    struct hcheck *c = ud;
    struct exec_priv *p = c->priv;
    const char *sep = p->out_len ? ": " : "";

    p->child = NULL;
    if (term_signal)
        check_done(c, AGENTD_HEALTH_FAIL, "%s: killed by signal %d%s%s", c->desc, term_signal, sep,
                   p->out);
    else
        check_done(c,
                   exit_status == 0   ? AGENTD_HEALTH_PASS
                   : exit_status == 1 ? AGENTD_HEALTH_WARN
                                      : AGENTD_HEALTH_FAIL,
                   "%s: exit %lld%s%s", c->desc, (long long)exit_status, sep, p->out);
}

static void exec_run(struct hcheck *c)
{
    struct exec_priv *p = c->priv;
    struct agentd_child_opts o = {
        .argv = (const char *const *)p->argv,
        .new_process_group = true,
        .die_with_agentd = true,
        .max_line = EXEC_OUTPUT_MAX,
        .on_line = on_line,
        .on_exit = on_exit_cb,
        .ud = c,
    };
    int r;

    p->out_len = 0;
    p->out[0] = '\0';
    r = agentd_child_spawn(c->h->ctx, &o, &p->child);
    if (r < 0) {
        p->child = NULL;
        check_done(c, AGENTD_HEALTH_FAIL, "%s: cannot start: %s", c->desc, strerror(-r));
    }
}

static void exec_cancel(struct hcheck *c)
{
    struct exec_priv *p = c->priv;

    if (!p->child)
        return;
    /* The group: a shell script's sleep must not outlive its timeout. */
    agentd_child_kill(p->child, SIGKILL);
    agentd_child_detach(p->child);
    p->child = NULL;
}

static void exec_free(struct hcheck *c)
{
    struct exec_priv *p = c->priv;

    if (!p)
        return;
    exec_cancel(c);
    for (size_t i = 0; p->argv && p->argv[i]; i++)
        free(p->argv[i]);
    free(p->argv);
    free(p);
}

static int exec_init(struct hcheck *c, struct agentd_err *err)
{
    struct exec_priv *p = calloc(1, sizeof(*p));
    const struct agentd_list *l = &c->cf->exec;
    const char *argv0;

    if (!p)
        return -ENOMEM;
    p->argv = calloc(l->n + 1, sizeof(*p->argv));
    if (!p->argv) {
        free(p);
        return -ENOMEM;
    }
    c->priv = p;
    for (size_t i = 0; i < l->n; i++) {
        p->argv[i] = strdup(*LIST_AT(*l, char *, i));
        if (!p->argv[i]) {
            exec_free(c);
            c->priv = NULL;
            return -ENOMEM;
        }
    }
    /* Only the program's name: arguments may carry passwords. */
    argv0 = strrchr(p->argv[0], '/');
    snprintf(c->desc, sizeof(c->desc), "exec %s", argv0 ? argv0 + 1 : p->argv[0]);
    return 0;
}

const struct check_type check_exec = {
    .name = "exec",
    .init = exec_init,
    .run = exec_run,
    .cancel = exec_cancel,
    .free = exec_free,
};

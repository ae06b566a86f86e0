/* Reload: applies a changed health config in place. The listeners stay open
 * (a changed `listen` makes the host restart the plugin instead), and checks
 * whose definition did not change keep running with their state: a reload
 * must not flip a healthy instance to fail while rise counts up again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "health-int.h"

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool strlist_eq(const struct agentd_list *a, const struct agentd_list *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!str_eq(*LIST_AT(*a, char *, i), *LIST_AT(*b, char *, i)))
            return false;
    return true;
}

bool check_conf_equal(const struct health_check_conf *a, const struct health_check_conf *b)
{
    return str_eq(a->name, b->name) && str_eq(a->tcp, b->tcp) && str_eq(a->http, b->http) &&
           strlist_eq(&a->exec, &b->exec) && str_eq(a->file, b->file) &&
           str_eq(a->systemd, b->systemd) && a->interval == b->interval &&
           a->timeout == b->timeout && a->grace == b->grace && a->max_age == b->max_age &&
           a->rise == b->rise && a->fall == b->fall && a->critical == b->critical &&
           strlist_eq(&a->expect_status, &b->expect_status) &&
           str_eq(a->expect_body, b->expect_body);
}

int health_reload(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    struct health *h = agentd_plugin_get_data(ctx);
    const struct health_conf *ncf = conf;
    size_t n = ncf->checks.n, kept = 0, started = 0, stopped = 0;
    struct hcheck **checks = NULL;
    bool *reused = NULL, *keep = NULL;
    const char **paths = NULL;
    struct hsrv_conf sc;
    int r = -ENOMEM;

    if (!h || !h->srv || !strlist_eq(&h->cf->listen, &ncf->listen))
        return -EOPNOTSUPP;
    checks = calloc(n + 1, sizeof(*checks));
    reused = calloc(n + 1, sizeof(*reused));
    keep = calloc(h->nchecks + 1, sizeof(*keep));
    paths = calloc(ncf->paths.n + 1, sizeof(*paths));
    if (!checks || !reused || !keep || !paths)
        goto fail;
    /* Everything that can fail happens before anything changes. */
    for (size_t i = 0; i < n; i++) {
        const struct health_check_conf *cc = LIST_AT(ncf->checks, struct health_check_conf, i);

        for (size_t j = 0; j < h->nchecks && !checks[i]; j++) {
            if (!keep[j] && check_conf_equal(h->checks[j]->cf, cc)) {
                keep[j] = true;
                reused[i] = true;
                checks[i] = h->checks[j];
            }
        }
        if (!checks[i]) {
            r = check_new(h, cc, &checks[i], err);
            if (r < 0)
                goto fail;
        }
    }
    for (size_t i = 0; i < ncf->paths.n; i++)
        paths[i] = *LIST_AT(ncf->paths, char *, i);

    /* Commit. Old checks go first so a changed check can take its name back. */
    for (size_t j = 0; j < h->nchecks; j++) {
        if (!keep[j]) {
            check_stop(h->checks[j]);
            stopped++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (reused[i]) {
            checks[i]->cf = LIST_AT(ncf->checks, struct health_check_conf, i);
            kept++;
        } else {
            check_start(checks[i]);
            started++;
        }
    }
    free(h->checks);
    h->checks = checks;
    h->nchecks = n;
    free(h->paths);
    h->paths = paths;
    h->cf = ncf;
    if (ncf->allow.n == 0)
        health_auto_allow(h);
    health_server_conf(h, ncf, &sc);
    hsrv_update(h->srv, &sc);
    serve_invalidate(h);
    free(reused);
    free(keep);
    agentd_info(ctx, "reloaded: %zu checks kept, %zu started, %zu stopped", kept, started, stopped);
    return 0;

fail:
    for (size_t i = 0; checks && i < n; i++)
        if (checks[i] && !reused[i])
            check_stop(checks[i]); /* never started: freed at once */
    free(checks);
    free(reused);
    free(keep);
    free(paths);
    return r == -ENOMEM ? agentd_err_set(err, "out of memory") : r;
}

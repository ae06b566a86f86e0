/* Per-path checks: health.path_checks maps a path to the checks it reports,
 * so a shallow /health for the load balancer can leave out a flaky
 * dependency that a deep /health/deep still shows. A path in the map is
 * served even when it is not in `paths`; every other health path reports
 * every check, as before. */
#include <errno.h>
#include <string.h>

#include "health-int.h"

int path_checks_find(const struct health_conf *cf, const char *path, size_t len)
{
    for (size_t i = 0; i < cf->path_checks.n; i++) {
        const char *k = cf->path_checks.keys[i];
        if (strlen(k) == len && memcmp(k, path, len) == 0)
            return (int)i;
    }
    return -1;
}

bool path_checks_has(const char *spec, const char *name)
{
    size_t len = strlen(name);

    for (const char *p = spec; *p;) {
        size_t n;
        while (*p == ',' || *p == ' ')
            p++;
        for (n = 0; p[n] && p[n] != ',' && p[n] != ' '; n++)
            ;
        if (n == len && n && memcmp(p, name, n) == 0)
            return true;
        p += n;
    }
    return false;
}

int path_checks_validate(const struct health_conf *cf, struct agentd_confctx *cc)
{
    int bad = 0;

    for (size_t i = 0; i < cf->path_checks.n; i++) {
        const char *p = cf->path_checks.keys[i], *v = cf->path_checks.values[i], *why = NULL;

        if (!route_path_valid(p, &why)) {
            agentd_conf_error(cc, "path_checks", "'%s' %s", p, why);
            bad = 1;
        }
        if (!v || strspn(v, ", ") == strlen(v)) {
            agentd_conf_error(cc, "path_checks", "'%s' names no checks (\"db, cache\")", p);
            bad = 1;
        }
    }
    return bad ? -EINVAL : 0;
}

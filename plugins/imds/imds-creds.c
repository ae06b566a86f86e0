/* The IMDS role credentials provider. The AWS core decides when to refresh
 * (ahead of Expiration) and calls fetch(); we read the role name (cached from
 * the last metadata refresh) and the role's credentials. A 404 on a cached
 * role means the instance profile changed: the name is read again, once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imds.h"

#define ROLES_PATH "meta-data/iam/security-credentials/"

struct fetch {
    struct imds *im;
    agentd_creds_done_fn done;
    void *host_ud;
    char *role;
    bool relisted;
};

static void fetch_role(struct fetch *f);

static void finish(struct fetch *f, int status, const struct agentd_aws_credentials *c,
                   const char *msg)
{
    agentd_creds_done_fn done = f->done;
    void *host_ud = f->host_ud;
    free(f->role);
    free(f);
    done(status, c, msg, host_ud);
}

static void creds_done(struct imds *im, int err, long status, const char *body, size_t len,
                       void *ud)
{
    struct fetch *f = ud;
    char msg[320];

    if (err == -ENOENT && !f->relisted) {
        free(f->role);
        f->role = NULL;
        fetch_role(f);
        return;
    }
    if (err < 0) {
        snprintf(msg, sizeof(msg), "IMDS role credentials for '%s': %s", f->role,
                 err == -ENOENT      ? "no such role"
                 : im->last_error[0] ? im->last_error
                                     : strerror(-err));
        finish(f, err, NULL, msg);
        return;
    }
    struct imds_creds c = {0};
    int r = imds_parse_creds(body, len, &c);
    if (r < 0) {
        snprintf(msg, sizeof(msg), "IMDS role credentials for '%s': %s", f->role,
                 r == -EPROTO ? "Code is not Success" : "malformed answer");
        finish(f, r, NULL, msg);
        return;
    }
    const struct agentd_aws_credentials ac = {
        .access_key_id = c.access_key_id,
        .secret_access_key = c.secret_access_key,
        .session_token = c.token,
        .expiration = c.expires_at,
    };
    im->creds_expires_at = c.expires_at;
    im->creds_fetches++;
    size_t n = strlen(c.access_key_id);
    snprintf(im->creds_akid_tail, sizeof(im->creds_akid_tail), "%s",
             c.access_key_id + (n > 4 ? n - 4 : 0));
    agentd_debug(im->ctx, "role '%s' credentials ...%s expire %s", f->role, im->creds_akid_tail,
                 c.expiration);
    finish(f, 0, &ac, NULL);
    imds_creds_clear(&c);
}

static void role_done(struct imds *im, int err, long status, const char *body, size_t len, void *ud)
{
    struct fetch *f = ud;
    char **roles = NULL;

    if (err == 0 && imds_parse_listing(body, len, 4, &roles) == 0 && roles[0]) {
        f->role = strdup(roles[0]);
        imds_strv_free(roles);
        if (!f->role) {
            finish(f, -ENOMEM, NULL, "out of memory");
            return;
        }
        fetch_role(f);
        return;
    }
    imds_strv_free(roles);
    if (err == 0 || err == -ENOENT)
        finish(f, -ENOENT, NULL, "IMDS: the instance has no IAM role");
    else
        finish(f, err, NULL, im->last_error[0] ? im->last_error : "IMDS unreachable");
}

static void fetch_role(struct fetch *f)
{
    struct imds *im = f->im;
    char path[512];
    int r;

    if (!f->role) {
        f->relisted = true;
        r = imds_get(im, ROLES_PATH, (unsigned)im->conf->attempts, role_done, f);
    } else {
        char *esc = NULL;
        if ((r = imds_path_escape(f->role, &esc)) == 0) {
            snprintf(path, sizeof(path), ROLES_PATH "%s", esc);
            free(esc);
            r = imds_get(im, path, (unsigned)im->conf->attempts, creds_done, f);
        }
    }
    if (r < 0)
        finish(f, r, NULL, im->stopping ? "agentd is stopping" : "cannot query IMDS");
}

static void provider_fetch(void *provider_ud, agentd_creds_done_fn done, void *host_ud)
{
    struct imds *im = provider_ud;
    struct fetch *f = calloc(1, sizeof(*f));
    if (!f) {
        done(-ENOMEM, NULL, "out of memory", host_ud);
        return;
    }
    f->im = im;
    f->done = done;
    f->host_ud = host_ud;
    if (im->role && !(f->role = strdup(im->role))) {
        free(f);
        done(-ENOMEM, NULL, "out of memory", host_ud);
        return;
    }
    fetch_role(f);
}

int imds_creds_register(struct imds *im)
{
    const struct agentd_creds_provider p = {
        .name = "imds",
        .fetch = provider_fetch,
        .provider_ud = im,
    };
    return agentd_aws_register_creds_provider(im->ctx, &p);
}

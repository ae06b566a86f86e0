/* file: the path exists and, with max_age, was modified recently (a
 * heartbeat file an app touches). stat() runs on libuv's pool so a hung
 * network filesystem cannot stall the loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "health-int.h"

struct fs_attempt {
    uv_fs_t req;
    struct hcheck *c; /* NULL once abandoned */
    struct health *h;
};

struct file_priv {
    struct fs_attempt *cur;
};

static void on_stat(uv_fs_t *req)
{
    struct fs_attempt *a = req->data;
    struct hcheck *c = a->c;
    struct health *h = a->h;

    if (c) {
        const struct health_check_conf *cf = c->cf;

        ((struct file_priv *)c->priv)->cur = NULL;
        if (req->result < 0) {
            check_done(c, AGENTD_HEALTH_FAIL, "%s: %s", c->desc,
                       req->result == UV_ENOENT ? "does not exist" : uv_strerror((int)req->result));
        } else {
            struct timespec now;
            int64_t age_ms;
            char age[32], max[32];

            clock_gettime(CLOCK_REALTIME, &now);
            age_ms = ((int64_t)now.tv_sec - (int64_t)req->statbuf.st_mtim.tv_sec) * 1000 +
                     ((int64_t)now.tv_nsec - (int64_t)req->statbuf.st_mtim.tv_nsec) / 1000000;
            if (age_ms < 0)
                age_ms = 0;
            /* Rounded down to the unit shown: "3s", "17m", "5h". */
            age_ms = age_ms >= 7200000  ? age_ms / 3600000 * 3600000
                     : age_ms >= 120000 ? age_ms / 60000 * 60000
                                        : age_ms / 1000 * 1000;
            fmt_ms((uint64_t)age_ms, age, sizeof(age));
            if (cf->max_age && (uint64_t)age_ms > cf->max_age) {
                fmt_ms(cf->max_age, max, sizeof(max));
                check_done(c, AGENTD_HEALTH_FAIL, "%s: modified %s ago, more than max_age %s",
                           c->desc, age, max);
            } else {
                check_done(c, AGENTD_HEALTH_PASS, "%s: exists, modified %s ago", c->desc, age);
            }
        }
    }
    uv_fs_req_cleanup(req);
    free(a);
    health_pending_done(h);
}

static void file_run(struct hcheck *c)
{
    struct file_priv *p = c->priv;
    struct fs_attempt *a = calloc(1, sizeof(*a));
    int r;

    if (!a) {
        check_done(c, AGENTD_HEALTH_FAIL, "%s: out of memory", c->desc);
        return;
    }
    a->c = c;
    a->h = c->h;
    a->req.data = a;
    r = uv_fs_stat(agentd_loop(c->h->ctx), &a->req, c->cf->file, on_stat);
    if (r < 0) {
        free(a);
        check_done(c, AGENTD_HEALTH_FAIL, "%s: %s", c->desc, uv_strerror(r));
        return;
    }
    c->h->pending++;
    p->cur = a;
}

static void file_cancel(struct hcheck *c)
{
    struct file_priv *p = c->priv;

    if (!p->cur)
        return;
    p->cur->c = NULL;
    /* Fails harmlessly if the stat already runs; on_stat then just frees. */
    uv_cancel((uv_req_t *)&p->cur->req);
    p->cur = NULL;
}

static int file_init(struct hcheck *c, struct agentd_err *err)
{
    struct file_priv *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    c->priv = p;
    snprintf(c->desc, sizeof(c->desc), "file %s", c->cf->file);
    return 0;
}

static void file_free(struct hcheck *c)
{
    struct file_priv *p = c->priv;

    if (p && p->cur)
        p->cur->c = NULL;
    free(p);
}

const struct check_type check_file = {
    .name = "file",
    .init = file_init,
    .run = file_run,
    .cancel = file_cancel,
    .free = file_free,
};

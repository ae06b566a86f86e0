/* The work queue: blocking work on libuv's thread pool, so that plugins never
 * need threads of their own. */
#include <errno.h>
#include <stdlib.h>

#include "host.h"

struct work {
    uv_work_t req;
    void (*work)(void *ud);
    void (*done)(void *ud, int status);
    void *ud;
};

static void work_cb(uv_work_t *req)
{
    struct work *w = req->data;

    w->work(w->ud);
}

static void after_cb(uv_work_t *req, int status)
{
    struct work *w = req->data;

    if (w->done)
        w->done(w->ud, status);
    free(w);
}

int agentd_work_queue(struct agentd_plugin_ctx *ctx, void (*work)(void *ud),
                      void (*done)(void *ud, int status), void *ud)
{
    struct work *w;
    int r;

    if (!work)
        return -EINVAL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->work = work;
    w->done = done;
    w->ud = ud;
    w->req.data = w;
    r = uv_queue_work(host.loop, &w->req, work_cb, after_cb);
    if (r < 0)
        free(w);
    return r;
}

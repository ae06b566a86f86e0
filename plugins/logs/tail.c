/* File sources: globs re-scanned on an interval and on inotify events of the
 * directories involved; files known by device + inode + a fingerprint of
 * their first bytes; rename rotation (the old file read to its end first),
 * copytruncate (restart at 0, the rest of the old content taken from the
 * copy when it is found), deleted files read to their end; one read in
 * flight per pipeline, and none while the pipeline's memory is full. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "glob.h"
#include "lines.h"
#include "logs.h"
#include "tail-int.h"

static void on_record(void *ud, const char *msg, size_t len, uint64_t end_off, unsigned flags)
{
    struct tail_file *f = ud;
    struct tail *t = f->t;
    pipeline_push(t->p, &f->src, msg, len, end_off, flags, (int64_t)t->now_ms, NULL);
    t->pushed++;
}

static void on_line(void *ud, const char *line, size_t len, uint64_t end_off, unsigned flags)
{
    struct tail_file *f = ud;
    f->t->p->c.lines++;
    mline_feed(&f->ml, line, len, end_off, flags, uv_now(agentd_loop(f->t->p->ctx)), on_record, f);
}

static struct tail_file *pick(struct tail *t)
{
    for (struct tail_file *f = t->files; f; f = f->next)
        if (f->fd >= 0 && f->orphan && !f->eof)
            return f;
    for (struct tail_file *f = t->files; f; f = f->next)
        if (f->fd >= 0 && !f->eof)
            return f;
    return NULL;
}

static void truncated(struct tail *t, struct tail_file *f)
{
    char dir[PATH_MAX], path[PATH_MAX];
    uint64_t resume = f->read_off - f->lines.carry_len;
    agentd_info(t->p->ctx, "pipeline '%s': '%s' was truncated: reading it again from the start",
                t->p->conf->name, f->path);
    /* copytruncate: what we had not read yet is in the copy. */
    tail_dir_of(f->path, dir, sizeof(dir));
    struct want w = {.fp = f->fp, .fp_len = f->fp_len, .min_size = resume + 1};
    struct stat st;
    int fd = f->fp_len ? tail_find_in_dir(t, dir, &w, path, sizeof(path), &st) : -1;
    if (fd >= 0) {
        if (tail_file_new(t, path, fd, &st, resume, true))
            agentd_info(t->p->ctx, "pipeline '%s': reading the rest of '%s' from its copy '%s'",
                        t->p->conf->name, f->path, path);
        else
            close(fd);
    }
    /* The new content is a new source from offset 0: the old one keeps its
     * queued events (their acknowledgements move only its own offset, in
     * the old content's coordinates) and is forgotten once they are done.
     * A checkpoint therefore never pairs the new fingerprint with an old
     * offset. */
    mline_flush(&f->ml, on_record, f);
    struct stat nst;
    int nfd = fstat(f->fd, &nst) == 0 ? dup(f->fd) : -1;
    bool orphan = f->orphan;
    tail_file_close(f);
    f->orphan = true;
    if (nfd >= 0) {
        if (fcntl(nfd, F_SETFD, FD_CLOEXEC) < 0 || !tail_file_new(t, f->path, nfd, &nst, 0, orphan))
            close(nfd);
    }
}

static void finish_orphan(struct tail *t, struct tail_file *f)
{
    lines_finish(&f->lines, on_line, f);
    mline_flush(&f->ml, on_record, f);
    agentd_debug(t->p->ctx, "pipeline '%s': done with '%s' at offset %" PRIu64, t->p->conf->name,
                 f->path, f->read_off);
    tail_file_close(f);
}

static void at_eof(struct tail *t, struct tail_file *f)
{
    struct stat st;
    if (fstat(f->fd, &st) == 0) {
        if ((uint64_t)st.st_size < f->read_off) {
            truncated(t, f);
            return;
        }
        if (st.st_nlink == 0 && !f->orphan) {
            f->orphan = true;
            f->eof_since = 0;
        }
    }
    f->eof = true;
    uint64_t now = uv_now(agentd_loop(t->p->ctx));
    if (f->eof_since == 0)
        f->eof_since = now;
    else if (f->orphan && now - f->eof_since >= t->p->conf->rotate_wait)
        finish_orphan(t, f);
}

static void consume(struct tail *t, struct tail_file *f, const char *buf, size_t n)
{
    struct pipeline *p = t->p;
    uint64_t lines0 = p->c.lines;
    t->now_ms = logs_wall_ms();
    lines_feed(&f->lines, buf, n, on_line, f);
    f->read_off += n;
    f->eof_since = 0;
    p->c.bytes += n;
    agentd_metric_add(p->m_bytes, (double)n);
    agentd_metric_add(p->m_lines, (double)(p->c.lines - lines0));
}

static void on_read(uv_fs_t *req)
{
    struct tail *t = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    t->reading = false;
    struct tail_file *f = t->rf;
    t->rf = NULL;
    logs_unbusy(t->p->lg);
    if (t->stopped || !f || f->fd < 0)
        return;
    t->pushed = 0;
    if (n < 0) {
        agentd_warning(t->p->ctx, "pipeline '%s': reading '%s': %s", t->p->conf->name, f->path,
                       uv_strerror((int)n));
        f->eof = true;
    } else if (n == 0) {
        at_eof(t, f);
    } else {
        consume(t, f, t->buf, (size_t)n);
    }
    if (t->pushed)
        t->p->sink_ops->kick(t->p->sink);
    tail_pump(t);
}

void tail_pump(struct tail *t)
{
    if (t->reading || t->stopped || pipeline_full(t->p))
        return;
    struct tail_file *f;
    while ((f = pick(t))) {
        if (f->read_off > 0 && !tail_same_content(f->fd, &f->fp, &f->fp_len)) {
            truncated(t, f);
            continue;
        }
        break;
    }
    if (!f)
        return;
    /* Read at most half the room left: events cost more than their bytes
     * (the event header), so the queue stays within max_memory. */
    size_t room = t->p->conf->max_memory - t->p->q_bytes;
    size_t want = room / 2 < READ_BUF ? room / 2 : READ_BUF;
    if (want < 4096)
        want = 4096;
    uv_buf_t b = uv_buf_init(t->buf, (unsigned)want);
    t->req.data = t;
    int r =
        uv_fs_read(agentd_loop(t->p->ctx), &t->req, f->fd, &b, 1, (int64_t)f->read_off, on_read);
    if (r < 0) {
        f->eof = true;
        return;
    }
    t->reading = true;
    t->rf = f;
    logs_busy(t->p->lg);
}

/* Marks the files an event names (all with name NULL) as worth a read.
 * Returns whether one of them is dormant: a scan reopens it. */
static bool wake_files(struct tail *t, const char *dir, const char *name)
{
    size_t dl = dir ? strlen(dir) : 0;
    bool dormant = false;
    for (struct tail_file *f = t->files; f; f = f->next) {
        if (!name || f->orphan) {
            f->eof = false;
            continue;
        }
        const char *base = strrchr(f->path, '/');
        if (base && strcmp(base + 1, name) == 0 && (size_t)(base - f->path) == dl &&
            strncmp(f->path, dir, dl) == 0) {
            f->eof = false;
            dormant |= f->dormant;
        }
    }
    return dormant;
}

static void on_kick(uv_timer_t *h)
{
    struct tail *t = h->data;
    if (t->stopped)
        return;
    if (t->need_scan)
        tail_scan(t);
    tail_pump(t);
}

void tail_on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct watch *w = h->data;
    struct tail *t = w->t;
    if (t->stopped)
        return;
    if (status < 0 || (events & UV_RENAME) || !filename)
        t->need_scan = true;
    if (wake_files(t, w->dir, status < 0 ? NULL : filename))
        t->need_scan = true;
    if (!uv_is_active((uv_handle_t *)&t->kick))
        uv_timer_start(&t->kick, on_kick, KICK_DELAY_MS, 0);
}

static void on_rescan(uv_timer_t *h)
{
    struct tail *t = h->data;
    if (t->stopped)
        return;
    tail_scan(t);
    wake_files(t, NULL, NULL);
    tail_pump(t);
}

void tail_tick(struct tail *t, uint64_t now_ms)
{
    if (t->stopped)
        return;
    const struct logs_conf *c = t->p->conf;
    bool pushed = false;
    for (struct tail_file **pp = &t->files; *pp;) {
        struct tail_file *f = *pp;
        if (f->fd < 0 && !f->dormant && f->src.pending == 0 && f != t->rf) {
            *pp = f->next;
            tail_file_free(f);
            t->p->ckpt_dirty = true;
            continue;
        }
        if (f->ml.on && mline_due(&f->ml, now_ms, c->multiline_flush)) {
            mline_flush(&f->ml, on_record, f);
            pushed = true;
        }
        if (f->orphan && f->eof && f->eof_since && now_ms - f->eof_since >= c->rotate_wait)
            f->eof = false; /* one last read, then it is closed */
        else if (!f->orphan && f->fd >= 0 && f->eof && f->eof_since && c->close_inactive &&
                 now_ms - f->eof_since >= c->close_inactive && f->lines.carry_len == 0 &&
                 !f->ml.have && f != t->rf) {
            /* Idle at its end: the descriptor goes back, the position stays. */
            tail_file_close(f);
            f->dormant = true;
        }
        pp = &f->next;
    }
    if (pushed)
        t->p->sink_ops->kick(t->p->sink);
}

void tail_acked(struct tail *t)
{
    (void)t;
}

int tail_create(struct pipeline *p, json_t *ckpt_files, struct tail **ret)
{
    struct tail *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->p = p;
    t->buf = malloc(READ_BUF);
    if (!t->buf) {
        free(t);
        return -ENOMEM;
    }
    t->first_start = ckpt_files == NULL;
    int r = tail_parse_restored(t, ckpt_files);
    if (r < 0) {
        tail_free(t);
        return r;
    }
    *ret = t;
    return 0;
}

int tail_start(struct tail *t)
{
    uv_loop_t *loop = agentd_loop(t->p->ctx);
    uv_timer_init(loop, &t->rescan);
    uv_timer_init(loop, &t->kick);
    t->rescan.data = t;
    t->kick.data = t;
    logs_busy(t->p->lg);
    logs_busy(t->p->lg);
    tail_scan(t);
    uv_timer_start(&t->rescan, on_rescan, t->p->conf->rescan_interval, t->p->conf->rescan_interval);
    tail_pump(t);
    return 0;
}

static void watch_closed(uv_handle_t *h)
{
    struct watch *w = h->data;
    struct logs *lg = w->t->p->lg;
    free(w);
    logs_unbusy(lg);
}

void tail_stop(struct tail *t)
{
    if (t->stopped)
        return;
    t->stopped = true;
    if (!t->timers_closed && t->rescan.data) {
        t->timers_closed = true;
        t->rescan.data = t->p;
        t->kick.data = t->p;
        uv_close((uv_handle_t *)&t->rescan, logs_close_cb);
        uv_close((uv_handle_t *)&t->kick, logs_close_cb);
    }
    while (t->watches) {
        struct watch *w = t->watches;
        t->watches = w->next;
        uv_close((uv_handle_t *)&w->h, watch_closed);
    }
    t->n_watches = 0;
    if (t->reading)
        uv_cancel((uv_req_t *)&t->req);
}

bool tail_idle(const struct tail *t)
{
    return t->stopped && !t->reading;
}

void tail_free(struct tail *t)
{
    while (t->files) {
        struct tail_file *f = t->files;
        t->files = f->next;
        tail_file_free(f);
    }
    while (t->restored) {
        struct ck_entry *e = t->restored;
        t->restored = e->next;
        tail_ck_free(e);
    }
    json_decref(t->unreadable);
    free(t->buf);
    free(t);
}

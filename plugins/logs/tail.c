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

#define FP_MAX        1024
#define READ_BUF      (256 * 1024)
#define MAX_WATCHES   64
#define KICK_DELAY_MS 5

struct tail_file {
    struct src src;
    struct tail *t;
    struct tail_file *next;
    char *path;
    int fd; /* -1 once closed */
    dev_t dev;
    ino_t ino;
    uint64_t fp;
    uint32_t fp_len;
    uint64_t read_off;
    struct lines lines;
    struct mline ml;
    bool orphan;  /* no longer at a matched path: read to its end, then closed */
    bool dormant; /* closed after close_inactive at its end; reopened when it grows */
    bool seen;
    bool eof;
    uint64_t eof_since;
};

struct ck_entry {
    struct ck_entry *next;
    char *path;
    dev_t dev;
    ino_t ino;
    uint64_t fp;
    uint32_t fp_len;
    uint64_t off;
};

struct watch {
    uv_fs_event_t h;
    struct tail *t;
    struct watch *next;
    char dir[];
};

struct tail {
    struct pipeline *p;
    struct tail_file *files;
    unsigned n_open;
    struct ck_entry *restored;
    bool first_start; /* no checkpoint: start_at applies to files present now */
    bool scanned;
    struct watch *watches;
    unsigned n_watches;
    uv_timer_t rescan, kick;
    bool timers_closed;
    bool need_scan;
    uv_fs_t req;
    bool reading;
    struct tail_file *rf;
    char *buf;
    bool stopped;
    bool warned_cap;
    uint64_t now_ms;
    size_t pushed; /* events queued by the current chunk */
};

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Fingerprint of the first up to FP_MAX bytes of fd. */
static int fingerprint(int fd, uint64_t *ret_fp, uint32_t *ret_len)
{
    char b[FP_MAX];
    ssize_t n = pread(fd, b, sizeof(b), 0);
    if (n < 0)
        return -errno;
    *ret_fp = fnv(b, (size_t)n);
    *ret_len = (uint32_t)n;
    return 0;
}

/* Whether fd still starts with the fingerprinted bytes; extends a short
 * fingerprint as the file grows. */
static bool same_content(int fd, uint64_t *fp, uint32_t *fp_len)
{
    char b[FP_MAX];
    ssize_t n = pread(fd, b, sizeof(b), 0);
    if (n < (ssize_t)*fp_len || (*fp_len && fnv(b, *fp_len) != *fp))
        return false;
    if ((uint32_t)n > *fp_len) {
        *fp = fnv(b, (size_t)n);
        *fp_len = (uint32_t)n;
    }
    return true;
}

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

static struct tail_file *file_new(struct tail *t, const char *path, int fd, const struct stat *st,
                                  uint64_t off, bool orphan)
{
    const struct logs_conf *c = t->p->conf;
    struct tail_file *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->path = strdup(path);
    if (!f->path || lines_init(&f->lines, c->max_line, off) < 0 ||
        mline_init(&f->ml, c->multiline_start, c->max_line) < 0) {
        lines_free(&f->lines);
        free(f->path);
        free(f);
        return NULL;
    }
    f->t = t;
    f->fd = fd;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->read_off = off;
    f->src.acked_off = off;
    f->orphan = orphan;
    f->seen = true;
    if (fingerprint(fd, &f->fp, &f->fp_len) < 0)
        f->fp_len = 0;
    /* Append: files found earlier are read first. */
    struct tail_file **pp = &t->files;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    t->n_open++;
    agentd_debug(t->p->ctx, "pipeline '%s': reading '%s' from offset %" PRIu64 "%s", c->name, path,
                 off, orphan ? " (rotated)" : "");
    return f;
}

static void file_close(struct tail_file *f)
{
    if (f->fd < 0)
        return;
    close(f->fd);
    f->fd = -1;
    f->t->n_open--;
}

static void file_free(struct tail_file *f)
{
    file_close(f);
    lines_free(&f->lines);
    mline_free(&f->ml);
    free(f->src.acked_cursor);
    free(f->path);
    free(f);
}

static struct tail_file *find_open(struct tail *t, dev_t dev, ino_t ino)
{
    for (struct tail_file *f = t->files; f; f = f->next)
        if (f->fd >= 0 && f->dev == dev && f->ino == ino)
            return f;
    return NULL;
}

/* Opens path when it is a regular file we do not already read. Returns the
 * fd and fills *st, or -1. */
static int open_regular(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

struct want {
    dev_t dev;
    ino_t ino; /* 0: any inode */
    uint64_t fp;
    uint32_t fp_len;
    uint64_t min_size;
};

/* Looks in dir for a file that is not open and matches w (by inode and
 * fingerprint, or by fingerprint alone for a copy). Returns an open fd and
 * the path, or -1. Blocking, but only at truncation and restart. */
static int find_in_dir(struct tail *t, const char *dir, const struct want *w, char *path,
                       size_t size, struct stat *ret_st)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int found = -1;
    struct dirent *de;
    while (found < 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if (snprintf(path, size, "%s/%s", dir, de->d_name) >= (int)size)
            continue;
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < w->min_size)
            continue;
        if (w->ino && (st.st_dev != w->dev || st.st_ino != w->ino))
            continue;
        if (find_open(t, st.st_dev, st.st_ino))
            continue;
        int fd = open_regular(path, &st);
        if (fd < 0)
            continue;
        uint64_t fp = w->fp;
        uint32_t fl = w->fp_len;
        if (!same_content(fd, &fp, &fl)) {
            close(fd);
            continue;
        }
        *ret_st = st;
        found = fd;
    }
    closedir(d);
    return found;
}

static void dir_of(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash == buf)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status);

static void watch_dir(struct tail *t, const char *dir)
{
    for (struct watch *w = t->watches; w; w = w->next)
        if (strcmp(w->dir, dir) == 0)
            return;
    if (t->n_watches >= MAX_WATCHES)
        return;
    size_t len = strlen(dir);
    struct watch *w = calloc(1, sizeof(*w) + len + 1);
    if (!w)
        return;
    memcpy(w->dir, dir, len + 1);
    w->t = t;
    uv_fs_event_init(agentd_loop(t->p->ctx), &w->h);
    w->h.data = w;
    logs_busy(t->p->lg);
    int r = uv_fs_event_start(&w->h, on_fs_event, dir, 0);
    if (r < 0)
        agentd_debug(t->p->ctx, "pipeline '%s': cannot watch '%s' (%s): rescans find its files",
                     t->p->conf->name, dir, uv_strerror(r));
    w->next = t->watches;
    t->watches = w;
    t->n_watches++;
}

static struct ck_entry *take_restored(struct tail *t, const struct stat *st, int fd)
{
    for (struct ck_entry **pp = &t->restored; *pp; pp = &(*pp)->next) {
        struct ck_entry *e = *pp;
        if (e->dev != st->st_dev || e->ino != st->st_ino)
            continue;
        uint64_t fp = e->fp;
        uint32_t fl = e->fp_len;
        if (!same_content(fd, &fp, &fl))
            continue; /* the inode was reused for another file */
        *pp = e->next;
        return e;
    }
    return NULL;
}

static void ck_free(struct ck_entry *e)
{
    free(e->path);
    free(e);
}

static struct tail_file *find_dormant(struct tail *t, dev_t dev, ino_t ino)
{
    for (struct tail_file *f = t->files; f; f = f->next)
        if (f->dormant && f->dev == dev && f->ino == ino)
            return f;
    return NULL;
}

/* A dormant file seen by a scan: reopened when its size changed (and it is
 * still the same content), kept as it is otherwise. Returns false when the
 * entry is gone because the inode now holds another file (to be opened as
 * new). */
static bool wake_dormant(struct tail *t, struct tail_file *f, const char *path,
                         const struct stat *st)
{
    f->seen = true;
    if ((uint64_t)st->st_size == f->read_off)
        return true;
    if ((int64_t)t->n_open >= t->p->conf->max_open_files)
        return true;
    struct stat st2;
    int fd = open_regular(path, &st2);
    if (fd < 0)
        return true;
    if (st2.st_ino != f->ino || !same_content(fd, &f->fp, &f->fp_len)) {
        close(fd);
        f->dormant = false; /* freed by the next tick: nothing of it is queued */
        f->dev = 0;
        f->ino = 0;
        return false;
    }
    f->fd = fd;
    f->dormant = false;
    f->eof = false;
    f->eof_since = 0;
    t->n_open++;
    return true;
}

static int on_found(const char *path, void *ud)
{
    struct tail *t = ud;
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    struct tail_file *f = find_open(t, st.st_dev, st.st_ino);
    if (!f && (f = find_dormant(t, st.st_dev, st.st_ino)) && !wake_dormant(t, f, path, &st))
        f = NULL;
    if (f) {
        f->seen = true;
        if (strcmp(f->path, path) != 0) {
            char *np = strdup(path);
            if (np) {
                free(f->path);
                f->path = np;
            }
        }
        return 0;
    }
    if ((int64_t)t->n_open >= t->p->conf->max_open_files) {
        if (!t->warned_cap)
            agentd_warning(t->p->ctx,
                           "pipeline '%s': %u files open, the max_open_files limit: '%s' waits",
                           t->p->conf->name, t->n_open, path);
        t->warned_cap = true;
        return 0;
    }
    int fd = open_regular(path, &st);
    if (fd < 0)
        return 0;
    uint64_t off = 0;
    struct ck_entry *e = take_restored(t, &st, fd);
    if (e) {
        off = e->off <= (uint64_t)st.st_size ? e->off : 0;
        ck_free(e);
    } else if (t->first_start && !t->scanned && t->p->conf->start_at == START_END) {
        off = (uint64_t)st.st_size;
    }
    if (!file_new(t, path, fd, &st, off, false))
        close(fd);
    return 0;
}

/* Checkpointed files not found at a matched path: rotated while agentd was
 * down. Their rest is read from where the rename put them, when that is in
 * the same directory. */
static void recover_restored(struct tail *t)
{
    while (t->restored) {
        struct ck_entry *e = t->restored;
        t->restored = e->next;
        char dir[PATH_MAX], path[PATH_MAX];
        dir_of(e->path, dir, sizeof(dir));
        struct want w = {.dev = e->dev, .ino = e->ino, .fp = e->fp, .fp_len = e->fp_len};
        struct stat st;
        int fd = find_in_dir(t, dir, &w, path, sizeof(path), &st);
        if (fd >= 0) {
            if ((uint64_t)st.st_size > e->off && file_new(t, path, fd, &st, e->off, true))
                agentd_info(t->p->ctx, "pipeline '%s': '%s' was rotated to '%s': reading its rest",
                            t->p->conf->name, e->path, path);
            else
                close(fd);
        }
        ck_free(e);
    }
}

static void scan(struct tail *t)
{
    const struct logs_conf *c = t->p->conf;
    char dir[PATH_MAX];
    t->need_scan = false;
    for (struct tail_file *f = t->files; f; f = f->next)
        f->seen = false;
    const char *const *pats = c->files.items;
    for (size_t i = 0; i < c->files.n; i++) {
        glob_walk(pats[i], on_found, t);
        if (glob_base_dir(pats[i], dir, sizeof(dir)) == 0)
            watch_dir(t, dir);
    }
    if (!t->scanned) {
        t->scanned = true;
        recover_restored(t);
    }
    for (struct tail_file *f = t->files; f; f = f->next) {
        if (f->dormant && !f->seen)
            f->dormant = false; /* gone from the matched paths: forgotten by the tick */
        if (f->fd < 0)
            continue;
        dir_of(f->path, dir, sizeof(dir));
        watch_dir(t, dir);
        if (f->seen || f->orphan)
            continue;
        f->orphan = true;
        f->eof = false;
        f->eof_since = 0;
        agentd_debug(t->p->ctx, "pipeline '%s': '%s' was rotated or deleted: reading it to its end",
                     c->name, f->path);
    }
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
    dir_of(f->path, dir, sizeof(dir));
    struct want w = {.fp = f->fp, .fp_len = f->fp_len, .min_size = resume + 1};
    struct stat st;
    int fd = f->fp_len ? find_in_dir(t, dir, &w, path, sizeof(path), &st) : -1;
    if (fd >= 0) {
        if (file_new(t, path, fd, &st, resume, true))
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
    file_close(f);
    f->orphan = true;
    if (nfd >= 0) {
        if (fcntl(nfd, F_SETFD, FD_CLOEXEC) < 0 || !file_new(t, f->path, nfd, &nst, 0, orphan))
            close(nfd);
    }
}

static void finish_orphan(struct tail *t, struct tail_file *f)
{
    lines_finish(&f->lines, on_line, f);
    mline_flush(&f->ml, on_record, f);
    agentd_debug(t->p->ctx, "pipeline '%s': done with '%s' at offset %" PRIu64, t->p->conf->name,
                 f->path, f->read_off);
    file_close(f);
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
        if (f->read_off > 0 && !same_content(f->fd, &f->fp, &f->fp_len)) {
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
        scan(t);
    tail_pump(t);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
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
    scan(t);
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
            file_free(f);
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
            file_close(f);
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

static json_t *hex64(uint64_t v)
{
    char b[17];
    snprintf(b, sizeof(b), "%016" PRIx64, v);
    return json_string(b);
}

json_t *tail_checkpoint(struct tail *t)
{
    json_t *a = json_array();
    for (struct tail_file *f = t->files; f; f = f->next) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(f->path));
        json_object_set_new(o, "dev", json_integer((json_int_t)f->dev));
        json_object_set_new(o, "ino", json_integer((json_int_t)f->ino));
        json_object_set_new(o, "fp", hex64(f->fp));
        json_object_set_new(o, "fp_len", json_integer(f->fp_len));
        json_object_set_new(o, "off", json_integer((json_int_t)f->src.acked_off));
        json_array_append_new(a, o);
    }
    /* Entries not matched yet (before the first scan) are kept as they were. */
    for (struct ck_entry *e = t->restored; e; e = e->next) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(e->path));
        json_object_set_new(o, "dev", json_integer((json_int_t)e->dev));
        json_object_set_new(o, "ino", json_integer((json_int_t)e->ino));
        json_object_set_new(o, "fp", hex64(e->fp));
        json_object_set_new(o, "fp_len", json_integer(e->fp_len));
        json_object_set_new(o, "off", json_integer((json_int_t)e->off));
        json_array_append_new(a, o);
    }
    return a;
}

uint64_t tail_lag(struct tail *t)
{
    uint64_t lag = 0;
    for (struct tail_file *f = t->files; f; f = f->next) {
        struct stat st;
        if (f->fd >= 0 && fstat(f->fd, &st) == 0 && (uint64_t)st.st_size > f->src.acked_off)
            lag += (uint64_t)st.st_size - f->src.acked_off;
        else if (f->fd < 0 && f->src.pending)
            lag += 1; /* closed, its last events not acknowledged yet */
    }
    return lag;
}

json_t *tail_status(struct tail *t)
{
    json_t *a = json_array();
    for (struct tail_file *f = t->files; f; f = f->next) {
        json_t *o = json_object();
        struct stat st;
        json_object_set_new(o, "path", json_string(f->path));
        if (f->fd >= 0 && fstat(f->fd, &st) == 0)
            json_object_set_new(o, "size", json_integer((json_int_t)st.st_size));
        json_object_set_new(o, "read_offset", json_integer((json_int_t)f->read_off));
        json_object_set_new(o, "acked_offset", json_integer((json_int_t)f->src.acked_off));
        json_object_set_new(o, "queued_events", json_integer(f->src.pending));
        json_object_set_new(o, "state",
                            json_string(f->dormant  ? "idle"
                                        : f->fd < 0 ? "closed"
                                        : f->orphan ? "rotated"
                                                    : "open"));
        json_array_append_new(a, o);
    }
    return a;
}

static int parse_restored(struct tail *t, json_t *files)
{
    size_t i;
    json_t *o;
    json_array_foreach(files, i, o)
    {
        const char *path = json_string_value(json_object_get(o, "path"));
        const char *fp = json_string_value(json_object_get(o, "fp"));
        if (!path || !fp)
            continue;
        struct ck_entry *e = calloc(1, sizeof(*e));
        if (!e || !(e->path = strdup(path))) {
            free(e);
            return -ENOMEM;
        }
        e->dev = (dev_t)json_integer_value(json_object_get(o, "dev"));
        e->ino = (ino_t)json_integer_value(json_object_get(o, "ino"));
        e->fp = strtoull(fp, NULL, 16);
        e->fp_len = (uint32_t)json_integer_value(json_object_get(o, "fp_len"));
        e->off = (uint64_t)json_integer_value(json_object_get(o, "off"));
        e->next = t->restored;
        t->restored = e;
    }
    return 0;
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
    int r = parse_restored(t, ckpt_files);
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
    scan(t);
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
        file_free(f);
    }
    while (t->restored) {
        struct ck_entry *e = t->restored;
        t->restored = e->next;
        ck_free(e);
    }
    free(t->buf);
    free(t);
}

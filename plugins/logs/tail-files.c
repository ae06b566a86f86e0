/* File sources, discovery half: globs evaluated on scans, files known by
 * device + inode + a fingerprint of their first bytes, idle files kept as
 * dormant entries, checkpoint entries restored after a restart (and looked
 * for by inode when rotated meanwhile), directory watches. */
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

uint64_t tail_fnv(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Fingerprint of the first up to FP_MAX bytes of fd. */
int tail_fingerprint(int fd, uint64_t *ret_fp, uint32_t *ret_len)
{
    char b[FP_MAX];
    ssize_t n = pread(fd, b, sizeof(b), 0);
    if (n < 0)
        return -errno;
    *ret_fp = tail_fnv(b, (size_t)n);
    *ret_len = (uint32_t)n;
    return 0;
}

/* Whether fd still starts with the fingerprinted bytes; extends a short
 * fingerprint as the file grows. */
bool tail_same_content(int fd, uint64_t *fp, uint32_t *fp_len)
{
    char b[FP_MAX];
    ssize_t n = pread(fd, b, sizeof(b), 0);
    if (n < (ssize_t)*fp_len || (*fp_len && tail_fnv(b, *fp_len) != *fp))
        return false;
    if ((uint32_t)n > *fp_len) {
        *fp = tail_fnv(b, (size_t)n);
        *fp_len = (uint32_t)n;
    }
    return true;
}

struct tail_file *tail_file_new(struct tail *t, const char *path, int fd, const struct stat *st,
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
    if (tail_fingerprint(fd, &f->fp, &f->fp_len) < 0)
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

void tail_file_close(struct tail_file *f)
{
    if (f->fd < 0)
        return;
    close(f->fd);
    f->fd = -1;
    f->t->n_open--;
}

void tail_file_free(struct tail_file *f)
{
    tail_file_close(f);
    lines_free(&f->lines);
    mline_free(&f->ml);
    free(f->src.acked_cursor);
    free(f->path);
    free(f);
}

struct tail_file *tail_find_open(struct tail *t, dev_t dev, ino_t ino)
{
    for (struct tail_file *f = t->files; f; f = f->next)
        if (f->fd >= 0 && f->dev == dev && f->ino == ino)
            return f;
    return NULL;
}

static void warn_link(struct tail *t, const char *path, const char *why)
{
    uint64_t h = tail_fnv(path, strlen(path));
    for (unsigned i = 0; i < t->n_warned_link && i < 32; i++)
        if (t->warned_link[i] == h)
            return;
    t->warned_link[t->n_warned_link++ % 32] = h;
    agentd_warning(t->p->ctx, "pipeline '%s': '%s' not read: %s (follow_symlinks is off)",
                   t->p->conf->name, path, why);
}

/* Whether the open file lies under the resolved fixed prefix of one of the
 * pipeline's patterns: a link anywhere on the way (planted in a directory
 * the pattern walks, or swapped in after the walk looked) that leads out of
 * it is caught here, on the file actually opened. */
static bool under_a_root(struct tail *t, int fd)
{
    char link[64], real[PATH_MAX], base[PATH_MAX], root[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    if (n <= 0)
        return false;
    real[n] = '\0';
    const char *const *pats = t->p->conf->files.items;
    for (size_t i = 0; i < t->p->conf->files.n; i++) {
        if (glob_base_dir(pats[i], base, sizeof(base)) < 0 || !realpath(base, root))
            continue;
        size_t k = strlen(root);
        if (k == 1 || (strncmp(real, root, k) == 0 && real[k] == '/'))
            return true;
    }
    return false;
}

/* Opens path when it is a regular file we do not already read. Returns the
 * fd and fills *st, or -1. Unless follow_symlinks is set, a path that is a
 * link, or resolves outside its pattern's fixed prefix, is refused. */
static int open_regular(struct tail *t, const char *path, struct stat *st)
{
    bool follow = t->p->conf->follow_symlinks;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0) {
        if (errno == ELOOP)
            warn_link(t, path, "it is a symbolic link");
        return -1;
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    if (!follow && !under_a_root(t, fd)) {
        warn_link(t, path, "it resolves outside the pattern's directory");
        close(fd);
        return -1;
    }
    return fd;
}

/* stat, or lstat when links are not followed. */
static int tstat(const struct tail *t, const char *path, struct stat *st)
{
    return t->p->conf->follow_symlinks ? stat(path, st) : lstat(path, st);
}

/* Looks in dir for a file that is not open and matches w (by inode and
 * tail_fingerprint, or by fingerprint alone for a copy). Returns an open fd and
 * the path, or -1. Blocking, but only at truncation and restart. */
int tail_find_in_dir(struct tail *t, const char *dir, const struct want *w, char *path, size_t size,
                     struct stat *ret_st)
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
        if (tstat(t, path, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < w->min_size)
            continue;
        if (w->ino && (st.st_dev != w->dev || st.st_ino != w->ino))
            continue;
        if (tail_find_open(t, st.st_dev, st.st_ino))
            continue;
        int fd = open_regular(t, path, &st);
        if (fd < 0)
            continue;
        uint64_t fp = w->fp;
        uint32_t fl = w->fp_len;
        if (!tail_same_content(fd, &fp, &fl)) {
            close(fd);
            continue;
        }
        *ret_st = st;
        found = fd;
    }
    closedir(d);
    return found;
}

void tail_dir_of(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash == buf)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
}

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
    int r = uv_fs_event_start(&w->h, tail_on_fs_event, dir, 0);
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
        if (!tail_same_content(fd, &fp, &fl))
            continue; /* the inode was reused for another file */
        *pp = e->next;
        return e;
    }
    return NULL;
}

void tail_ck_free(struct ck_entry *e)
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
    int fd = open_regular(t, path, &st2);
    if (fd < 0)
        return true;
    if (st2.st_ino != f->ino || !tail_same_content(fd, &f->fp, &f->fp_len)) {
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

static int on_found(const char *path, bool is_link, void *ud)
{
    struct tail *t = ud;
    struct stat st;
    if (is_link) {
        warn_link(t, path, "it is a symbolic link");
        return 0;
    }
    if (tstat(t, path, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    struct tail_file *f = tail_find_open(t, st.st_dev, st.st_ino);
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
    int fd = open_regular(t, path, &st);
    if (fd < 0)
        return 0;
    uint64_t off = 0;
    struct ck_entry *e = take_restored(t, &st, fd);
    if (e) {
        off = e->off <= (uint64_t)st.st_size ? e->off : 0;
        tail_ck_free(e);
    } else if (t->first_start && !t->scanned && t->p->conf->start_at == START_END) {
        off = (uint64_t)st.st_size;
    }
    if (!tail_file_new(t, path, fd, &st, off, false))
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
        tail_dir_of(e->path, dir, sizeof(dir));
        struct want w = {.dev = e->dev, .ino = e->ino, .fp = e->fp, .fp_len = e->fp_len};
        struct stat st;
        int fd = tail_find_in_dir(t, dir, &w, path, sizeof(path), &st);
        if (fd >= 0) {
            if ((uint64_t)st.st_size > e->off && tail_file_new(t, path, fd, &st, e->off, true))
                agentd_info(t->p->ctx, "pipeline '%s': '%s' was rotated to '%s': reading its rest",
                            t->p->conf->name, e->path, path);
            else
                close(fd);
        }
        tail_ck_free(e);
    }
}

void tail_scan(struct tail *t)
{
    const struct logs_conf *c = t->p->conf;
    char dir[PATH_MAX];
    t->need_scan = false;
    for (struct tail_file *f = t->files; f; f = f->next)
        f->seen = false;
    const char *const *pats = c->files.items;
    for (size_t i = 0; i < c->files.n; i++) {
        glob_walk(pats[i], c->follow_symlinks, on_found, t);
        if (glob_base_dir(pats[i], dir, sizeof(dir)) == 0)
            watch_dir(t, dir);
    }
    tail_access_update(t);
    if (!t->scanned) {
        t->scanned = true;
        recover_restored(t);
    }
    for (struct tail_file *f = t->files; f; f = f->next) {
        if (f->dormant && !f->seen)
            f->dormant = false; /* gone from the matched paths: forgotten by the tick */
        if (f->fd < 0)
            continue;
        tail_dir_of(f->path, dir, sizeof(dir));
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
    /* Entries not matched yet (before the first tail_scan) are kept as they were. */
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

void tail_flush_mark(struct tail *t)
{
    for (struct tail_file *f = t->files; f; f = f->next) {
        struct stat st;
        f->flush_mark = f->fd >= 0 && fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    }
}

bool tail_flush_reached(struct tail *t)
{
    for (struct tail_file *f = t->files; f; f = f->next)
        if (f->src.acked_off < f->flush_mark || (f->fd < 0 && f->src.pending))
            return false;
    return true;
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

int tail_parse_restored(struct tail *t, json_t *files)
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

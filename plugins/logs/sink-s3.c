/* The S3 sink. Events are appended to a gzip object built in the state
 * directory, one gzip member per chunk, written and fsynced off the loop;
 * they are acknowledged once on disk. An object is closed on size or age and
 * uploaded (PutObject, or a multipart upload above one part, aborted when it
 * fails), then deleted. State (next {seq}, the open object, the objects
 * waiting for upload) is a small record, so a restart continues the open
 * object (cut back to its last whole member) and uploads what was pending. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "logs.h"
#include "s3-int.h"

static void kick(void *sink);

/* Chunk and part buffers (1 to 5 MiB) are mapped, not malloc'd: they are
 * used on pool threads, whose malloc arenas would keep them resident after
 * free, and the peak RSS is part of the budget. */
void *s3_big_alloc(size_t n)
{
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void s3_big_free(void *p, size_t n)
{
    if (p)
        munmap(p, n ? n : 1);
}

uint64_t s3_now_ms(struct s3 *s)
{
    return uv_now(agentd_loop(s->p->ctx));
}

/* ---- state record ---- */

int s3_save_state(struct s3 *s)
{
    json_t *pend = json_array();
    for (size_t i = 0; i < s->n_pend; i++)
        json_array_append_new(
            pend, json_pack("{s:s,s:s}", "file", s->pend[i].file, "key", s->pend[i].key));
    json_t *j = json_pack("{s:I,s:o}", "seq", (json_int_t)s->seq, "pending", pend);
    if (s->open)
        json_object_set_new(j, "open",
                            json_pack("{s:s,s:s,s:I}", "file", s->cur.file, "key", s->cur.key,
                                      "opened_ms", (json_int_t)s->cur_opened_wall));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return -ENOMEM;
    char rec[300];
    snprintf(rec, sizeof(rec), "s3-%s.json", s->p->conf->name);
    int r = agentd_state_write(s->p->ctx, rec, text, strlen(text));
    free(text);
    if (r < 0)
        agentd_warning(s->p->ctx, "pipeline '%s': S3 state not saved: %s", s->p->conf->name,
                       strerror(-r));
    return r;
}

/* The length of the longest prefix of the file made of whole gzip members:
 * what a crash in the middle of a write leaves after it is cut off. */
static uint64_t whole_members(const char *path)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return 0;
    z_stream z = {0};
    unsigned char in[65536], out[65536];
    uint64_t pos = 0, good = 0;
    if (inflateInit2(&z, 15 + 16) != Z_OK) {
        fclose(f);
        return 0;
    }
    size_t n;
    while ((n = fread(in, 1, sizeof(in), f)) > 0) {
        z.next_in = in;
        z.avail_in = (unsigned)n;
        while (z.avail_in > 0) {
            z.next_out = out;
            z.avail_out = sizeof(out);
            int r = inflate(&z, Z_NO_FLUSH);
            if (r == Z_STREAM_END) {
                good = pos + (n - z.avail_in);
                inflateReset(&z);
            } else if (r != Z_OK && r != Z_BUF_ERROR) {
                goto out;
            } else if (r == Z_BUF_ERROR && z.avail_in > 0 && z.avail_out > 0) {
                goto out;
            }
        }
        pos += n;
    }
out:
    inflateEnd(&z);
    fclose(f);
    return good;
}

void s3_obj_free(struct obj *o)
{
    free(o->file);
    free(o->key);
    o->file = o->key = NULL;
}

static int load_state(struct s3 *s)
{
    char rec[300];
    snprintf(rec, sizeof(rec), "s3-%s.json", s->p->conf->name);
    void *data;
    size_t len;
    int r = agentd_state_read(s->p->ctx, rec, &data, &len);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    json_t *j = json_loadb(data, len, 0, NULL);
    free(data);
    if (!j)
        return -EINVAL;
    s->seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    json_t *pend = json_object_get(j, "pending"), *o;
    size_t i;
    s->pend = calloc(json_array_size(pend) + 1, sizeof(*s->pend));
    if (!s->pend) {
        json_decref(j);
        return -ENOMEM;
    }
    json_array_foreach(pend, i, o)
    {
        const char *file = json_string_value(json_object_get(o, "file"));
        const char *key = json_string_value(json_object_get(o, "key"));
        if (file && key && access(file, R_OK) == 0) {
            s->pend[s->n_pend].file = strdup(file);
            s->pend[s->n_pend].key = strdup(key);
            s->n_pend++;
        }
    }
    json_t *op = json_object_get(j, "open");
    const char *file = json_string_value(json_object_get(op, "file"));
    const char *key = json_string_value(json_object_get(op, "key"));
    if (file && key) {
        uint64_t good = whole_members(file);
        if (truncate(file, (off_t)good) == 0 || errno == ENOENT) {
            s->open = true;
            s->cur.file = strdup(file);
            s->cur.key = strdup(key);
            s->cur_len = good;
            /* Its age counts from when the earlier run opened it, so an
             * object left by a stop or a crash is not held back another
             * whole rotate age. A record without the time is old enough. */
            json_int_t opened = json_integer_value(json_object_get(op, "opened_ms"));
            uint64_t wall = logs_wall_ms(), age = UINT64_MAX / 4;
            if (opened > 0)
                age = wall > (uint64_t)opened ? wall - (uint64_t)opened : 0;
            if (s->c->rotate && age > s->c->rotate->age)
                age = s->c->rotate->age;
            s->cur_opened_wall = wall - age;
            /* Unsigned: "now - cur_opened" gives back age even when the
             * loop's clock is younger than the object. */
            s->cur_opened = s3_now_ms(s) - age;
        }
    }
    json_decref(j);
    return 0;
}

/* ---- building objects ---- */

/* Why an expanded key cannot be used, or NULL. A key comes from templates
 * (tags someone else sets): an empty or dot segment would be rewritten by
 * URL normalisation on its way (so the signature no longer matches, or it
 * lands under another prefix), and a control character has no place in a
 * log object's name. */
static const char *key_problem(const char *key)
{
    size_t n = strlen(key);
    if (n == 0)
        return "it is empty";
    if (n > 1024)
        return "it is longer than 1024 bytes";
    for (const char *c = key; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return "it holds a control character";
    for (const char *seg = key;;) {
        size_t k = strcspn(seg, "/");
        if (k == 0)
            return "it has an empty path segment (a leading, trailing or double '/')";
        if ((k == 1 && seg[0] == '.') || (k == 2 && seg[0] == '.' && seg[1] == '.'))
            return "it has a '.' or '..' path segment";
        if (!seg[k])
            return NULL;
        seg += k + 1;
    }
}

static int open_object(struct s3 *s)
{
    char tbuf[1024], seq[24], *key = NULL, *missing = NULL;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    /* The key template is a strftime format by design (%Y/%m/%d...). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t tl = strftime(tbuf, sizeof(tbuf), s->c->key, &tm);
#pragma GCC diagnostic pop
    if (tl == 0)
        return -ENAMETOOLONG;
    snprintf(seq, sizeof(seq), "%" PRIu64, s->seq + 1);
    const char *extra[] = {"seq", seq, NULL};
    int r = agentd_template_expand(s->p->ctx, tbuf, extra, &key, &missing);
    if (r < 0) {
        snprintf(s->last_error, sizeof(s->last_error), "waiting for metadata '%s'",
                 missing ? missing : "?");
        free(missing);
        return r;
    }
    const char *why = key_problem(key);
    if (why) {
        /* The events stay queued: the pipeline stalls, loudly, until the
         * tag is fixed (or the template, with a reload). */
        char msg[sizeof(s->key_error)], shown[121];
        size_t i = 0;
        for (; key[i] && i < sizeof(shown) - 1; i++)
            shown[i] = (unsigned char)key[i] < 0x20 || key[i] == 0x7f ? '?' : key[i];
        shown[i] = '\0';
        snprintf(msg, sizeof(msg), "S3 key '%s' refused: %s", shown, why);
        if (strcmp(msg, s->key_error) != 0)
            agentd_error(s->p->ctx, "pipeline '%s': %s; nothing is dropped, shipping waits",
                         s->p->conf->name, msg);
        snprintf(s->key_error, sizeof(s->key_error), "%s", msg);
        snprintf(s->last_error, sizeof(s->last_error), "%s", msg);
        free(key);
        return -EINVAL;
    }
    if (s->key_error[0]) {
        agentd_notice(s->p->ctx, "pipeline '%s': S3 key '%s' accepted again", s->p->conf->name,
                      key);
        s->key_error[0] = '\0';
        s->last_error[0] = '\0';
    }
    char *file;
    if (asprintf(&file, "%s/s3-%s-%" PRIu64 ".gz", agentd_state_dir(s->p->ctx), s->p->conf->name,
                 s->seq + 1) < 0) {
        free(key);
        return -ENOMEM;
    }
    s->seq++;
    s->cur.file = file;
    s->cur.key = key;
    s->cur_len = 0;
    s->cur_opened = s3_now_ms(s);
    s->cur_opened_wall = logs_wall_ms();
    s->open = true;
    s3_save_state(s);
    return 0;
}

static void close_object(struct s3 *s)
{
    if (!s->open)
        return;
    s->open = false;
    if (s->cur_len == 0) {
        unlink(s->cur.file);
        s3_obj_free(&s->cur);
        s3_save_state(s);
        return;
    }
    struct obj *np = realloc(s->pend, (s->n_pend + 1) * sizeof(*np));
    if (!np) {
        s->open = true; /* try again on the next tick */
        return;
    }
    s->pend = np;
    s->pend[s->n_pend++] = s->cur;
    s->cur.file = s->cur.key = NULL;
    s3_save_state(s);
    s3_upload_next(s);
}

static void write_work(void *ud)
{
    struct job *j = ud;
    uLong cap = compressBound((uLong)j->in_len) + 64;
    unsigned char *out = s3_big_alloc(cap);
    if (!out) {
        j->err = -ENOMEM;
        return;
    }
    z_stream z = {0};
    if (deflateInit2(&z, j->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        s3_big_free(out, cap);
        j->err = -ENOMEM;
        return;
    }
    z.next_in = (unsigned char *)j->in;
    z.avail_in = (uInt)j->in_len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        s3_big_free(out, cap);
        j->err = -EIO;
        return;
    }
    int fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        j->err = -errno;
        s3_big_free(out, cap);
        return;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, out + done, n - done);
        if (w < 0) {
            j->err = -errno;
            break;
        }
        done += (size_t)w;
    }
    if (j->err == 0 && fdatasync(fd) < 0)
        j->err = -errno;
    close(fd);
    s3_big_free(out, cap);
    j->out_len = n;
}

void s3_job_free(struct job *j)
{
    free(j->path);
    s3_big_free(j->in, j->in_cap);
    s3_big_free(j->out, j->out_cap);
    free(j);
}

void s3_backoff(struct s3 *s, const char *what, const char *msg)
{
    snprintf(s->last_error, sizeof(s->last_error), "%s: %s", what, msg);
    agentd_warning(s->p->ctx, "pipeline '%s': %s (retrying)", s->p->conf->name, s->last_error);
    s->p->c.retries++;
    agentd_metric_add(s->p->m_retries, 1);
    s->backoff = s->backoff ? s->backoff * 2 : 500;
    if (s->backoff > BACKOFF_MAX_MS)
        s->backoff = BACKOFF_MAX_MS;
    s->retry_at = s3_now_ms(s) + s->backoff;
}

static void write_done(void *ud, int status)
{
    struct job *j = ud;
    struct s3 *s = j->s3;
    s->writing = false;
    logs_unbusy(s->p->lg);
    if (status < 0 || j->err < 0) {
        if (!s->stopped)
            s3_backoff(s, "writing the object", strerror(j->err ? -j->err : ECANCELED));
        /* A partial member may be on disk: cut the file back to what is
         * known good, so the next chunk follows a whole member. */
        if (truncate(j->path, (off_t)s->cur_len) < 0 && errno != ENOENT)
            agentd_warning(s->p->ctx, "pipeline '%s': cannot cut '%s' back: %s", s->p->conf->name,
                           j->path, strerror(errno));
        s3_job_free(j);
        return;
    }
    s->cur_len += j->out_len;
    size_t n = s->w_n;
    s->w_n = 0;
    s3_job_free(j);
    struct pipeline *p = s->p;
    p->c.shipped += n;
    p->c.batches++;
    agentd_metric_add(p->m_shipped, (double)n);
    agentd_metric_add(p->m_batches, 1);
    s->backoff = 0;
    pipeline_ack(p, n);
    if (s->c->rotate && s->cur_len >= s->c->rotate->size)
        close_object(s);
    if (!s->stopped)
        pipeline_wake(p);
}

static void write_chunk(struct s3 *s)
{
    struct pipeline *p = s->p;
    if (!s->open) {
        int r = open_object(s);
        if (r < 0) {
            s->retry_at = s3_now_ms(s) + 1000;
            return;
        }
    }
    size_t raw = 0, n = 0;
    for (struct ev *e = p->head; e && (n == 0 || raw + e->len + 1 <= CHUNK_RAW); e = e->next) {
        raw += e->len + 1;
        n++;
    }
    struct job *j = calloc(1, sizeof(*j));
    char *buf = s3_big_alloc(raw);
    char *path = strdup(s->cur.file);
    if (!j || !buf || !path) {
        free(j);
        s3_big_free(buf, raw);
        free(path);
        return;
    }
    char *o = buf;
    struct ev *e = p->head;
    for (size_t i = 0; i < n; i++, e = e->next) {
        memcpy(o, e->msg, e->len);
        o += e->len;
        *o++ = '\n';
    }
    j->s3 = s;
    j->path = path;
    j->in = buf;
    j->in_len = raw;
    j->in_cap = raw;
    j->level = s->c->gzip_level;
    if (agentd_work_queue(p->ctx, write_work, write_done, j) < 0) {
        s3_job_free(j);
        return;
    }
    s->writing = true;
    s->w_n = n;
    logs_busy(p->lg);
}

static void kick(void *sink)
{
    struct s3 *s = sink;
    struct pipeline *p = s->p;
    if (s->stopped || s->writing || p->q_n == 0 || !s->bucket || s3_now_ms(s) < s->retry_at)
        return;
    bool due = s3_now_ms(s) >= p->queued_since + FLUSH_MS;
    if (p->stopping || p->flushing || due || pipeline_full(p) || p->q_bytes >= CHUNK_RAW)
        write_chunk(s);
}

/* Asked once every event up to the flush mark is acknowledged (on disk, in
 * the open object): close that object and count it and every pending one;
 * flushed once they are all uploaded. Events written meanwhile go into a new
 * object, which this flush does not wait for. */
static bool s3_flushed(void *sink)
{
    struct s3 *s = sink;
    if (!s->flush_armed || s->flush_epoch != s->p->flush_epoch) {
        if (s->writing)
            return false; /* the chunk being written may hold marked events */
        close_object(s);
        s->flush_armed = true;
        s->flush_epoch = s->p->flush_epoch;
        s->flush_left = s->n_pend;
        /* The last chance before the disk may be gone: every object is
         * tried now, whatever backoff it was waiting out. */
        s->retry_at = 0;
        for (size_t i = 0; i < s->n_pend; i++)
            s->pend[i].retry_at = 0;
    }
    s3_upload_next(s);
    if (s->flush_left > 0)
        return false;
    return true;
}

static bool s3_undelivered(void *sink)
{
    struct s3 *s = sink;
    return (s->open && s->cur_len > 0) || s->writing || s->n_pend > 0;
}

static void s3_interruption(void *sink)
{
    struct s3 *s = sink;
    if (!s->interrupted)
        agentd_notice(s->p->ctx,
                      "pipeline '%s': spot interruption notice: uploading the open object now, "
                      "then every %d s",
                      s->p->conf->name, SPOT_AGE_MS / 1000);
    s->interrupted = true;
    /* A chunk being written closes the object on the next tick. */
    if (s->open && !s->writing)
        close_object(s);
}

static void s3_leftover(void *sink, char *buf, size_t size)
{
    struct s3 *s = sink;
    snprintf(buf, size, ", %zu S3 object%s not uploaded%s", s->n_pend + (s->open ? 1 : 0),
             s->n_pend + (s->open ? 1 : 0) == 1 ? "" : "s", s->open ? " (one still open)" : "");
}

/* ---- the sink interface ---- */

static void on_tick(uv_timer_t *h)
{
    struct s3 *s = h->data;
    if (s->stopped)
        return;
    if (!s->bucket) {
        char *missing = NULL;
        if (agentd_template_expand(s->p->ctx, s->c->bucket, NULL, &s->bucket, &missing) < 0) {
            snprintf(s->last_error, sizeof(s->last_error), "waiting for metadata '%s'",
                     missing ? missing : "?");
            free(missing);
            return;
        }
    }
    uint64_t max_age = s->c->rotate ? s->c->rotate->age : UINT64_MAX;
    if (s->interrupted && max_age > SPOT_AGE_MS)
        max_age = SPOT_AGE_MS;
    if (s->open && !s->writing && s3_now_ms(s) - s->cur_opened >= max_age)
        close_object(s);
    s3_upload_next(s);
    kick(s);
}

static int s3_start(void *sink)
{
    struct s3 *s = sink;
    int r = load_state(s);
    if (r < 0)
        agentd_warning(s->p->ctx, "pipeline '%s': S3 state unreadable (%s): starting afresh",
                       s->p->conf->name, strerror(-r));
    uv_timer_init(agentd_loop(s->p->ctx), &s->timer);
    s->timer.data = s;
    logs_busy(s->p->lg);
    uv_timer_start(&s->timer, on_tick, 0, TICK_MS);
    return 0;
}

static void s3_stop(void *sink)
{
    struct s3 *s = sink;
    if (s->stopped)
        return;
    s->stopped = true;
    if (s->call) {
        agentd_aws_cancel(s->call);
        s->call = NULL;
        logs_unbusy(s->p->lg);
    }
    if (!s->timer_closed) {
        s->timer_closed = true;
        uv_timer_stop(&s->timer);
        s->timer.data = s->p;
        uv_close((uv_handle_t *)&s->timer, logs_close_cb);
    }
}

static bool s3_idle(void *sink)
{
    struct s3 *s = sink;
    return s->stopped && !s->call && !s->writing && !s->reading;
}

static void s3_status(void *sink, json_t *out)
{
    struct s3 *s = sink;
    json_object_set_new(out, "bucket", s->bucket ? json_string(s->bucket) : json_null());
    if (s->open) {
        json_object_set_new(out, "open_object", json_string(s->cur.key));
        json_object_set_new(out, "open_bytes", json_integer((json_int_t)s->cur_len));
    }
    json_object_set_new(out, "pending_uploads", json_integer((json_int_t)s->n_pend));
    json_object_set_new(out, "objects_uploaded", json_integer((json_int_t)s->objects));
    json_object_set_new(out, "upload_errors", json_integer((json_int_t)s->upload_errors));
    if (s->last_error[0])
        json_object_set_new(out, "last_error", json_string(s->last_error));
}

static void s3_free(void *sink)
{
    struct s3 *s = sink;
    s3_obj_free(&s->cur);
    for (size_t i = 0; i < s->n_pend; i++)
        s3_obj_free(&s->pend[i]);
    free(s->pend);
    for (size_t i = 0; i < s->nparts; i++)
        free(s->etags[i]);
    free(s->etags);
    free(s->upload_id);
    free(s->bucket);
    free(s);
}

int s3_sink_create(struct pipeline *p, void **ret)
{
    struct s3 *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->p = p;
    s->c = p->conf->s3;
    *ret = s;
    return 0;
}

const struct sink_ops s3_sink_ops = {
    .type = "s3",
    .start = s3_start,
    .kick = kick,
    .stop = s3_stop,
    .idle = s3_idle,
    .status = s3_status,
    .free = s3_free,
    .accept = NULL,
    .flushed = s3_flushed,
    .undelivered = s3_undelivered,
    .interruption = s3_interruption,
    .leftover = s3_leftover,
};

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

#define CHUNK_RAW      (1024 * 1024)
#define PART_SIZE      (5 * 1024 * 1024)
#define FLUSH_MS       1000
#define TICK_MS        1000
#define BACKOFF_MAX_MS 30000

struct obj {
    char *file, *key;
};

struct job {
    struct s3 *s3;
    char *path;
    char *in;
    size_t in_len;
    uint64_t off; /* read jobs: where to read */
    char *out;    /* read jobs: the bytes read */
    size_t out_len;
    size_t in_cap, out_cap; /* mapped sizes of in and out */
    char md5[32];           /* base64 of the MD5 of out */
    int level;              /* gzip level for write jobs */
    int err;
};

struct s3 {
    struct pipeline *p;
    const struct logs_s3_conf *c;
    char *bucket;
    uint64_t seq;
    /* the object being built */
    bool open;
    struct obj cur;
    uint64_t cur_len, cur_opened;
    /* a chunk being written */
    bool writing;
    size_t w_n;
    /* closed objects, oldest first */
    struct obj *pend;
    size_t n_pend;
    /* the upload of pend[0] */
    bool uploading, reading;
    struct agentd_aws_call *call;
    char *upload_id;
    char **etags;
    size_t nparts;
    uint64_t up_off, up_size;
    uint64_t retry_at, backoff;
    uv_timer_t timer;
    bool stopped, timer_closed;
    uint64_t objects, upload_errors;
    char last_error[256];
};

static void kick(void *sink);

/* Chunk and part buffers (1 to 5 MiB) are mapped, not malloc'd: they are
 * used on pool threads, whose malloc arenas would keep them resident after
 * free, and the peak RSS is part of the budget. */
static void *big_alloc(size_t n)
{
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void big_free(void *p, size_t n)
{
    if (p)
        munmap(p, n ? n : 1);
}
static void upload_next(struct s3 *s);

static uint64_t now_ms(struct s3 *s)
{
    return uv_now(agentd_loop(s->p->ctx));
}

/* ---- state record ---- */

static int save_state(struct s3 *s)
{
    json_t *pend = json_array();
    for (size_t i = 0; i < s->n_pend; i++)
        json_array_append_new(
            pend, json_pack("{s:s,s:s}", "file", s->pend[i].file, "key", s->pend[i].key));
    json_t *j = json_pack("{s:I,s:o}", "seq", (json_int_t)s->seq, "pending", pend);
    if (s->open)
        json_object_set_new(j, "open",
                            json_pack("{s:s,s:s}", "file", s->cur.file, "key", s->cur.key));
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

static void obj_free(struct obj *o)
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
            s->cur_opened = now_ms(s);
        }
    }
    json_decref(j);
    return 0;
}

/* ---- building objects ---- */

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
    s->cur_opened = now_ms(s);
    s->open = true;
    save_state(s);
    return 0;
}

static void close_object(struct s3 *s)
{
    if (!s->open)
        return;
    s->open = false;
    if (s->cur_len == 0) {
        unlink(s->cur.file);
        obj_free(&s->cur);
        save_state(s);
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
    save_state(s);
    upload_next(s);
}

static void write_work(void *ud)
{
    struct job *j = ud;
    uLong cap = compressBound((uLong)j->in_len) + 64;
    unsigned char *out = big_alloc(cap);
    if (!out) {
        j->err = -ENOMEM;
        return;
    }
    z_stream z = {0};
    if (deflateInit2(&z, j->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        big_free(out, cap);
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
        big_free(out, cap);
        j->err = -EIO;
        return;
    }
    int fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        j->err = -errno;
        big_free(out, cap);
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
    big_free(out, cap);
    j->out_len = n;
}

static void job_free(struct job *j)
{
    free(j->path);
    big_free(j->in, j->in_cap);
    big_free(j->out, j->out_cap);
    free(j);
}

static void backoff(struct s3 *s, const char *what, const char *msg)
{
    snprintf(s->last_error, sizeof(s->last_error), "%s: %s", what, msg);
    agentd_warning(s->p->ctx, "pipeline '%s': %s (retrying)", s->p->conf->name, s->last_error);
    s->p->c.retries++;
    agentd_metric_add(s->p->m_retries, 1);
    s->backoff = s->backoff ? s->backoff * 2 : 500;
    if (s->backoff > BACKOFF_MAX_MS)
        s->backoff = BACKOFF_MAX_MS;
    s->retry_at = now_ms(s) + s->backoff;
}

static void write_done(void *ud, int status)
{
    struct job *j = ud;
    struct s3 *s = j->s3;
    s->writing = false;
    logs_unbusy(s->p->lg);
    if (status < 0 || j->err < 0) {
        if (!s->stopped)
            backoff(s, "writing the object", strerror(j->err ? -j->err : ECANCELED));
        /* A partial member may be on disk: cut the file back to what is
         * known good, so the next chunk follows a whole member. */
        if (truncate(j->path, (off_t)s->cur_len) < 0 && errno != ENOENT)
            agentd_warning(s->p->ctx, "pipeline '%s': cannot cut '%s' back: %s", s->p->conf->name,
                           j->path, strerror(errno));
        job_free(j);
        return;
    }
    s->cur_len += j->out_len;
    size_t n = s->w_n;
    s->w_n = 0;
    job_free(j);
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
            s->retry_at = now_ms(s) + 1000;
            return;
        }
    }
    size_t raw = 0, n = 0;
    for (struct ev *e = p->head; e && (n == 0 || raw + e->len + 1 <= CHUNK_RAW); e = e->next) {
        raw += e->len + 1;
        n++;
    }
    struct job *j = calloc(1, sizeof(*j));
    char *buf = big_alloc(raw);
    char *path = strdup(s->cur.file);
    if (!j || !buf || !path) {
        free(j);
        big_free(buf, raw);
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
        job_free(j);
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
    if (s->stopped || s->writing || p->q_n == 0 || !s->bucket || now_ms(s) < s->retry_at)
        return;
    bool due = now_ms(s) >= p->queued_since + FLUSH_MS;
    if (p->stopping || due || pipeline_full(p) || p->q_bytes >= CHUNK_RAW)
        write_chunk(s);
}

/* ---- uploads ---- */

static void read_work(void *ud)
{
    struct job *j = ud;
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        j->err = -errno;
        return;
    }
    j->out = big_alloc(j->in_len);
    j->out_cap = j->in_len;
    if (!j->out) {
        j->err = -ENOMEM;
        close(fd);
        return;
    }
    size_t got = 0;
    while (got < j->in_len) {
        ssize_t r = pread(fd, j->out + got, j->in_len - got, (off_t)(j->off + got));
        if (r <= 0) {
            j->err = r < 0 ? -errno : -EIO;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    j->out_len = got;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(j->out, got, md, &mdlen, EVP_md5(), NULL) == 1)
        EVP_EncodeBlock((unsigned char *)j->md5, md, (int)mdlen);
    /* OpenSSL keeps per-thread state; pool threads never exit cleanly. */
    OPENSSL_thread_stop();
}

static void upload_failed(struct s3 *s, const struct agentd_aws_response *res, const char *what);
static void part_read_done(void *ud, int status);

static int s3_call(struct s3 *s, const char *method, const char *query, const char *const *headers,
                   const void *body, size_t len, agentd_aws_done_fn done)
{
    char *path;
    if (asprintf(&path, "/%s/%s", s->bucket, s->pend[0].key) < 0)
        return -ENOMEM;
    struct agentd_aws_request req = {
        .service = "s3",
        .endpoint_id = "S3",
        .endpoint = s->c->endpoint,
        .region = s->c->region,
        .protocol = AGENTD_AWS_REST_XML,
        .method = method,
        .path = path,
        .query = query,
        .headers = headers,
        .body = body,
        .body_len = len,
        .timeout_ms = 120000,
    };
    int r = agentd_aws_request(s->p->ctx, &req, done, s, &s->call);
    free(path);
    if (r == 0)
        logs_busy(s->p->lg);
    return r;
}

static bool take_call(struct s3 *s)
{
    s->call = NULL;
    logs_unbusy(s->p->lg);
    return !s->stopped;
}

static void upload_succeeded(struct s3 *s)
{
    agentd_info(s->p->ctx, "pipeline '%s': uploaded s3://%s/%s", s->p->conf->name, s->bucket,
                s->pend[0].key);
    unlink(s->pend[0].file);
    obj_free(&s->pend[0]);
    memmove(s->pend, s->pend + 1, (s->n_pend - 1) * sizeof(*s->pend));
    s->n_pend--;
    s->objects++;
    s->backoff = 0;
    s->uploading = false;
    free(s->upload_id);
    s->upload_id = NULL;
    save_state(s);
    upload_next(s);
}

/* Headers of PutObject and CreateMultipartUpload: type, encryption, class. */
static size_t object_headers(struct s3 *s, const char **h, char *b1, char *b2, size_t bsz)
{
    static const char *const sse[] = {NULL, "x-amz-server-side-encryption: AES256",
                                      "x-amz-server-side-encryption: aws:kms"};
    size_t n = 0;
    h[n++] = "Content-Type: application/gzip";
    if (sse[s->c->sse])
        h[n++] = sse[s->c->sse];
    if (s->c->kms_key_id) {
        snprintf(b1, bsz, "x-amz-server-side-encryption-aws-kms-key-id: %s", s->c->kms_key_id);
        h[n++] = b1;
    }
    if (s->c->storage_class) {
        snprintf(b2, bsz, "x-amz-storage-class: %s", s->c->storage_class);
        h[n++] = b2;
    }
    return n;
}

static void on_put_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                        void *ud)
{
    struct s3 *s = ud;
    if (!take_call(s))
        return;
    if (res->error)
        upload_failed(s, res, "PutObject");
    else
        upload_succeeded(s);
}

static void on_complete_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                             void *ud)
{
    struct s3 *s = ud;
    if (!take_call(s))
        return;
    if (res->error)
        upload_failed(s, res, "CompleteMultipartUpload");
    else
        upload_succeeded(s);
}

static void complete_multipart(struct s3 *s)
{
    size_t cap = 128 + s->nparts * 160;
    char *xml = malloc(cap), *q = NULL;
    if (!xml)
        return upload_failed(s, &(struct agentd_aws_response){.error_message = "no memory"},
                             "CompleteMultipartUpload");
    size_t o = (size_t)snprintf(xml, cap, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < s->nparts; i++)
        o += (size_t)snprintf(xml + o, cap - o,
                              "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1,
                              s->etags[i]);
    o += (size_t)snprintf(xml + o, cap - o, "</CompleteMultipartUpload>");
    static const char *const h[] = {"Content-Type: application/xml", NULL};
    int r = asprintf(&q, "uploadId=%s", s->upload_id) < 0
                ? -ENOMEM
                : s3_call(s, "POST", q, h, xml, o, on_complete_done);
    free(q);
    free(xml);
    if (r < 0)
        upload_failed(s, &(struct agentd_aws_response){.error_message = strerror(-r)},
                      "CompleteMultipartUpload");
}

static void read_part(struct s3 *s)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j || !(j->path = strdup(s->pend[0].file))) {
        free(j);
        return upload_failed(s, &(struct agentd_aws_response){.error_message = "no memory"},
                             "reading the object");
    }
    j->s3 = s;
    j->off = s->up_off;
    j->in_len = s->up_size - s->up_off < PART_SIZE ? s->up_size - s->up_off : PART_SIZE;
    if (agentd_work_queue(s->p->ctx, read_work, part_read_done, j) < 0) {
        job_free(j);
        return upload_failed(s, &(struct agentd_aws_response){.error_message = "work queue"},
                             "reading the object");
    }
    s->reading = true;
    logs_busy(s->p->lg);
}

static void on_part_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                         void *ud)
{
    struct s3 *s = ud;
    if (!take_call(s))
        return;
    if (res->error)
        return upload_failed(s, res, "UploadPart");
    const char *etag = NULL;
    for (const char *const *h = res->headers; h && *h; h++)
        if (strncmp(*h, "etag:", 5) == 0)
            etag = *h + 5 + strspn(*h + 5, " ");
    char **ne = realloc(s->etags, (s->nparts + 1) * sizeof(*ne));
    if (!etag || !ne)
        return upload_failed(s, &(struct agentd_aws_response){.error_message = "no ETag"},
                             "UploadPart");
    s->etags = ne;
    s->etags[s->nparts++] = strdup(etag);
    if (s->up_off >= s->up_size)
        complete_multipart(s);
    else
        read_part(s);
}

static void part_read_done(void *ud, int status)
{
    struct job *j = ud;
    struct s3 *s = j->s3;
    s->reading = false;
    logs_unbusy(s->p->lg);
    if (s->stopped || status < 0 || j->err < 0) {
        if (!s->stopped)
            upload_failed(s, &(struct agentd_aws_response){.error_message = "read failed"},
                          "reading the object");
        job_free(j);
        return;
    }
    char md5h[64], b1[300], b2[300], *q = NULL;
    const char *h[8];
    size_t n = 0;
    snprintf(md5h, sizeof(md5h), "Content-MD5: %s", j->md5);
    int r;
    s->up_off += j->out_len;
    if (s->upload_id) {
        h[n++] = md5h;
        h[n] = NULL;
        r = asprintf(&q, "partNumber=%zu&uploadId=%s", s->nparts + 1, s->upload_id) < 0
                ? -ENOMEM
                : s3_call(s, "PUT", q, h, j->out, j->out_len, on_part_done);
    } else {
        n = object_headers(s, h, b1, b2, sizeof(b1));
        h[n++] = md5h;
        h[n] = NULL;
        r = s3_call(s, "PUT", NULL, h, j->out, j->out_len, on_put_done);
    }
    free(q);
    job_free(j);
    if (r < 0)
        upload_failed(s, &(struct agentd_aws_response){.error_message = strerror(-r)}, "upload");
}

static void on_create_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                           void *ud)
{
    struct s3 *s = ud;
    if (!take_call(s))
        return;
    const char *a = res->error ? NULL : memmem(res->body, res->body_len, "<UploadId>", 10);
    const char *b = a ? strstr(a, "</UploadId>") : NULL;
    if (!b)
        return upload_failed(s, res, "CreateMultipartUpload");
    s->upload_id = strndup(a + 10, (size_t)(b - a - 10));
    read_part(s);
}

static void on_abort_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                          void *ud)
{
    struct s3 *s = ud;
    take_call(s);
}

static void upload_failed(struct s3 *s, const struct agentd_aws_response *res, const char *what)
{
    s->upload_errors++;
    char msg[200];
    snprintf(msg, sizeof(msg), "%s%s%s", res->error_code ? res->error_code : "",
             res->error_code ? ": " : "", res->error_message ? res->error_message : "error");
    backoff(s, what, msg);
    for (size_t i = 0; i < s->nparts; i++)
        free(s->etags[i]);
    free(s->etags);
    s->etags = NULL;
    s->nparts = 0;
    s->uploading = false;
    if (s->upload_id && !s->stopped) {
        /* An unfinished multipart upload costs money until aborted. */
        char *q = NULL;
        if (asprintf(&q, "uploadId=%s", s->upload_id) >= 0 &&
            s3_call(s, "DELETE", q, NULL, NULL, 0, on_abort_done) == 0)
            s->uploading = true; /* the abort holds the one request slot */
        free(q);
    }
    free(s->upload_id);
    s->upload_id = NULL;
}

static void upload_next(struct s3 *s)
{
    if (s->stopped || s->uploading || s->call || s->reading || s->n_pend == 0 || !s->bucket ||
        now_ms(s) < s->retry_at)
        return;
    struct stat st;
    if (stat(s->pend[0].file, &st) < 0) {
        agentd_error(s->p->ctx, "pipeline '%s': object file '%s' is gone: %s", s->p->conf->name,
                     s->pend[0].file, strerror(errno));
        obj_free(&s->pend[0]);
        memmove(s->pend, s->pend + 1, (s->n_pend - 1) * sizeof(*s->pend));
        s->n_pend--;
        save_state(s);
        return upload_next(s);
    }
    s->uploading = true;
    s->up_off = 0;
    s->up_size = (uint64_t)st.st_size;
    s->nparts = 0;
    if (s->up_size <= PART_SIZE) {
        read_part(s);
        return;
    }
    char b1[300], b2[300];
    const char *h[8];
    size_t n = object_headers(s, h, b1, b2, sizeof(b1));
    h[n] = NULL;
    int r = s3_call(s, "POST", "uploads", h, NULL, 0, on_create_done);
    if (r < 0)
        upload_failed(s, &(struct agentd_aws_response){.error_message = strerror(-r)},
                      "CreateMultipartUpload");
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
    if (s->open && s->c->rotate && !s->writing && now_ms(s) - s->cur_opened >= s->c->rotate->age)
        close_object(s);
    upload_next(s);
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
    obj_free(&s->cur);
    for (size_t i = 0; i < s->n_pend; i++)
        obj_free(&s->pend[i]);
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
};

/* S3 uploads of closed objects, one at a time: PutObject up to one part,
 * else CreateMultipartUpload, UploadPart per 5 MiB (each read off the loop,
 * with its Content-MD5), CompleteMultipartUpload; a failed multipart upload
 * is aborted and the object tried again later from its start. */
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

static void read_work(void *ud)
{
    struct job *j = ud;
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        j->err = -errno;
        return;
    }
    j->out = s3_big_alloc(j->in_len);
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

static void free_etags(struct s3 *s)
{
    for (size_t i = 0; i < s->nparts; i++)
        free(s->etags[i]);
    free(s->etags);
    s->etags = NULL;
    s->nparts = 0;
}

static void upload_succeeded(struct s3 *s)
{
    agentd_info(s->p->ctx, "pipeline '%s': uploaded s3://%s/%s", s->p->conf->name, s->bucket,
                s->pend[0].key);
    unlink(s->pend[0].file);
    s3_obj_free(&s->pend[0]);
    memmove(s->pend, s->pend + 1, (s->n_pend - 1) * sizeof(*s->pend));
    s->n_pend--;
    if (s->flush_left)
        s->flush_left--;
    s->objects++;
    s->backoff = 0;
    s->uploading = false;
    /* The parts' ETags of a completed multipart upload were kept until
     * here, and leaked before: the next upload started at nparts = 0. */
    free_etags(s);
    free(s->upload_id);
    s->upload_id = NULL;
    s3_save_state(s);
    s3_upload_next(s);
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
        s3_job_free(j);
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
        s3_job_free(j);
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
    s3_job_free(j);
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

static void to_back(struct s3 *s)
{
    struct obj o = s->pend[0];
    memmove(s->pend, s->pend + 1, (s->n_pend - 1) * sizeof(*s->pend));
    s->pend[s->n_pend - 1] = o;
}

static void on_abort_done(struct agentd_plugin_ctx *ctx, const struct agentd_aws_response *res,
                          void *ud)
{
    struct s3 *s = ud;
    if (!take_call(s))
        return;
    /* The slot the abort held is free again (it was never released before,
     * so one failed multipart upload stopped every later upload). */
    s->uploading = false;
    to_back(s);
    s3_upload_next(s);
}

/* The object that failed goes to the back of the queue with its own
 * backoff, so one object S3 keeps refusing (a key signed one way and sent
 * another, a policy on one prefix) never holds back the objects behind it. */
static void defer_failed(struct s3 *s)
{
    struct obj *o = &s->pend[0];
    uint64_t wait = OBJ_BACKOFF_MS;
    for (unsigned i = 0; i < o->fails && wait < OBJ_BACKOFF_MAX_MS; i++)
        wait *= 2;
    if (wait > OBJ_BACKOFF_MAX_MS)
        wait = OBJ_BACKOFF_MAX_MS;
    o->fails++;
    o->retry_at = s3_now_ms(s) + wait;
    /* With a multipart upload to abort, pend[0] names it: it moves once the
     * abort is done. */
    if (!s->upload_id || s->stopped)
        to_back(s);
}

static void upload_failed(struct s3 *s, const struct agentd_aws_response *res, const char *what)
{
    s->upload_errors++;
    char msg[200];
    snprintf(msg, sizeof(msg), "%s%s%s", res->error_code ? res->error_code : "",
             res->error_code ? ": " : "", res->error_message ? res->error_message : "error");
    s3_backoff(s, what, msg);
    defer_failed(s);
    free_etags(s);
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

void s3_upload_next(struct s3 *s)
{
    if (s->stopped || s->uploading || s->call || s->reading || s->n_pend == 0 || !s->bucket ||
        s3_now_ms(s) < s->retry_at)
        return;
    /* The oldest object not waiting out its own backoff goes first. */
    uint64_t now = s3_now_ms(s);
    size_t due = 0;
    while (due < s->n_pend && s->pend[due].retry_at > now)
        due++;
    if (due == s->n_pend)
        return;
    if (due > 0) {
        struct obj o = s->pend[due];
        memmove(s->pend + 1, s->pend, due * sizeof(*s->pend));
        s->pend[0] = o;
    }
    struct stat st;
    if (stat(s->pend[0].file, &st) < 0) {
        agentd_error(s->p->ctx, "pipeline '%s': object file '%s' is gone: %s", s->p->conf->name,
                     s->pend[0].file, strerror(errno));
        s3_obj_free(&s->pend[0]);
        memmove(s->pend, s->pend + 1, (s->n_pend - 1) * sizeof(*s->pend));
        s->n_pend--;
        if (s->flush_left)
            s->flush_left--;
        s3_save_state(s);
        return s3_upload_next(s);
    }
    s->uploading = true;
    s->up_off = 0;
    s->up_size = (uint64_t)st.st_size;
    free_etags(s);
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

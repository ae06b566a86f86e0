/* Internals shared by the S3 sink's halves: sink-s3.c (state, building
 * objects, the sink interface) and s3-upload.c (PutObject and multipart). */
#ifndef LOGS_S3_INT_H
#define LOGS_S3_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logs.h"

#define CHUNK_RAW      (1024 * 1024)
#define PART_SIZE      (5 * 1024 * 1024)
#define FLUSH_MS       1000
#define TICK_MS        1000
#define BACKOFF_MAX_MS 30000
/* A failed object is tried again after 30 s, doubling to 10 min. */
#define OBJ_BACKOFF_MS     30000
#define OBJ_BACKOFF_MAX_MS 600000
/* After a spot interruption notice the open object is closed at once, and
 * later ones after this age, so the two minutes end with everything in S3. */
#define SPOT_AGE_MS 10000

struct obj {
    char *file, *key;
    /* Its own backoff after failed uploads: a failing object waits at the
     * end of the queue while the objects behind it upload. */
    uint64_t retry_at;
    unsigned fails;
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
    uint64_t cur_opened_wall; /* ms since the epoch, kept in the state record */
    bool interrupted;         /* a spot notice: objects rotate after SPOT_AGE_MS */
    /* A flush: once armed, the oldest flush_left pending objects (the open
     * one closed at arming included) must be uploaded. */
    bool flush_armed;
    unsigned flush_epoch; /* the pipeline's, when armed */
    size_t flush_left;
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
    char key_error[256]; /* why the last expanded key was refused; "" when it was not */
};

void *s3_big_alloc(size_t n);
void s3_big_free(void *p, size_t n);
uint64_t s3_now_ms(struct s3 *s);
int s3_save_state(struct s3 *s);
void s3_obj_free(struct obj *o);
void s3_job_free(struct job *j);
/* Counts a failure and sets when the next attempt may start. */
void s3_backoff(struct s3 *s, const char *what, const char *msg);
/* Starts uploading the oldest closed object, unless one is in progress. */
void s3_upload_next(struct s3 *s);

#endif

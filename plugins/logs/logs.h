/* The logs plugin's internal interfaces: configuration structs, pipelines
 * (sources → bounded queue → one sink), and the pieces each file implements. */
#ifndef LOGS_LOGS_H
#define LOGS_LOGS_H

#include <stdbool.h>
#include <stdint.h>

#include "agentd/plugin.h"
#include "event.h"
#include "evpool.h"

/* ---- configuration (filled by the host from the option tables) ---- */

enum { START_BEGINNING, START_END };
enum { SSE_NONE, SSE_AES256, SSE_KMS };
enum { JFMT_TEXT, JFMT_JSON };

struct logs_cw_conf {
    char *group;
    char *stream;
    uint64_t retention; /* ms; whole days from the allowed list, 0: unset */
    char *endpoint;
    char *region;
    uint64_t flush_interval;
};

struct logs_rotate_conf {
    uint64_t size;
    uint64_t age;
};

struct logs_s3_conf {
    char *bucket;
    char *key;
    struct logs_rotate_conf *rotate;
    int sse;
    char *kms_key_id;
    char *storage_class;
    char *endpoint;
    char *region;
    int64_t gzip_level;
};

struct logs_journal_conf {
    struct agentd_list units; /* char * */
    int priority;             /* 0 emerg .. 7 debug: entries at or above */
    int format;
    char *directory; /* journal files of another system; NULL: the local journal */
};

struct logs_conf {
    char *name;
    struct agentd_list files; /* char * */
    bool follow_symlinks;
    struct logs_journal_conf *journal;
    char *multiline_start;
    uint64_t multiline_flush;
    char *timestamp_format;
    int start_at;
    uint64_t max_line;
    uint64_t max_memory;
    int64_t max_open_files;
    uint64_t rescan_interval;
    uint64_t rotate_wait;
    uint64_t close_inactive;
    uint64_t checkpoint_interval;
    uint64_t lag_threshold;
    uint64_t flush_timeout; /* the flush phase's budget at stop */
    struct logs_cw_conf *cloudwatch;
    struct logs_s3_conf *s3;
};

extern const struct agentd_schema logs_pipeline_schema;

/* ---- pipeline ---- */

struct pipeline;
struct tail;
struct journal;

/* A sink takes events from the head of its pipeline's queue and calls
 * pipeline_ack() once the service has them. */
struct sink_ops {
    const char *type;
    int (*start)(void *sink);
    void (*kick)(void *sink); /* events were queued, or the pipeline is stopping */
    void (*stop)(void *sink); /* drop what is in flight and close handles */
    bool (*idle)(void *sink); /* nothing in flight and every handle closed */
    void (*status)(void *sink, json_t *out);
    void (*free)(void *sink);
    /* Whether an event may be queued; else *ret_reason says why it is dropped. */
    bool (*accept)(void *sink, const char *msg, size_t len, int64_t ts, const char **ret_reason);
    /* While the pipeline flushes, once everything up to the flush mark is
     * acknowledged: whether it is also where it belongs (S3: the open object
     * closed and uploaded with the pending ones). NULL: acknowledged is
     * delivered (CloudWatch). */
    bool (*flushed)(void *sink);
    /* Whether it holds acknowledged events not delivered yet (S3: an open
     * object with data); NULL: never. Another flush round follows if so. */
    bool (*undelivered)(void *sink);
    /* A spot interruption notice arrived (NULL: nothing to do). */
    void (*interruption)(void *sink);
    /* What a flush that ran out of time leaves behind, for its log line. */
    void (*leftover)(void *sink, char *buf, size_t size);
};

struct counters {
    uint64_t lines, bytes, shipped, batches, retries, rejected;
    uint64_t drop_empty, drop_too_old, drop_invalid;
};

struct pipeline {
    struct agentd_plugin_ctx *ctx;
    const struct logs_conf *conf;
    struct logs *lg;

    /* The queue: events from head on; the sink owns the first in_flight. */
    struct ev *head, **tailp;
    struct ev_pool pool; /* the queued events' memory */
    size_t q_n, q_bytes;
    uint64_t queued_since; /* uv_now when the oldest unsent event came */

    struct tail *tail;
    struct journal *journal;
    char journal_error[160];
    const struct sink_ops *sink_ops;
    void *sink;

    struct counters c;
    uint64_t lag_bytes;
    uint64_t behind_since_ms; /* wall clock ms when lag became > 0; 0: none */
    bool ckpt_dirty;
    uint64_t ckpt_last; /* uv_now of the last checkpoint write */
    bool stopping;
    bool stopped;    /* every part idle, final checkpoint written */
    bool flush_over; /* flushed, or out of budget: the sources have stopped */
    bool flushing;   /* shipping everything written so far (stop, or prepare) */
    uint64_t flush_deadline, flush_start;
    unsigned flush_rounds;
    unsigned flush_epoch; /* counts flushes and their rounds, for the sinks */
    uint64_t stop_deadline;

    uv_timer_t tick; /* lag, health, multiline flush, checkpoint, stop drain */
    struct agentd_health_check *health;
    struct agentd_metric *m_lines, *m_bytes, *m_shipped, *m_batches, *m_retries, *m_rejected;
    struct agentd_metric *m_drop_empty, *m_drop_old, *m_drop_invalid, *m_lag_bytes, *m_lag_secs;
};

struct logs {
    struct agentd_plugin_ctx *ctx;
    const struct agentd_list *conf; /* of struct logs_conf */
    struct pipeline *pipes;         /* conf->n of them, after start */
    size_t n;
    unsigned busy; /* open handles and requests in flight */
    bool stopping;
    agentd_stop_done_fn done;
    agentd_stop_done_fn prepared; /* prepare(flush) in progress */
};

/* Every uv handle and request of the plugin counts in lg->busy, so stop()
 * finishes when the last one is closed. */
/* logs-doctor.c: the "doctor" verb (ud: struct logs), and its cleanup. */
int logs_doctor_verb(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud);
void logs_doctor_free(void);
/* Cancels the doctor's calls in flight (at stop). */
void logs_doctor_cancel(void);
/* Starts a doctor run; at_start logs its failures as warnings. */
void logs_doctor_run(struct logs *lg, bool at_start);

void logs_busy(struct logs *lg);
void logs_unbusy(struct logs *lg);
void logs_close_cb(uv_handle_t *h); /* for handles whose data is the struct logs */

int pipeline_start(struct pipeline *p, struct agentd_err *err);
void pipeline_stop(struct pipeline *p);
/* Ships everything written so far without stopping (the flush phase of a
 * sequence that does not exit); logs_flushed() is called when done. */
void pipeline_flush(struct pipeline *p);
void logs_flushed(struct logs *lg);
void pipeline_free(struct pipeline *p);
/* Memory for events is used up: sources must pause. */
bool pipeline_full(const struct pipeline *p);
/* Turns a line or record from a source into a queued event (or a counted
 * drop). ts < 0: parse with timestamp_format, else ingestion time now_ms. */
void pipeline_push(struct pipeline *p, struct src *src, const char *msg, size_t len,
                   uint64_t end_off, unsigned flags, int64_t now_ms, char *cursor);
/* The sink acknowledges the first n events (their delivery is durable). */
void pipeline_ack(struct pipeline *p, size_t n);
/* The first n events are dropped for reason (counted, logged by the caller)
 * and acknowledged like delivered ones so that sources move on. */
void pipeline_drop_head(struct pipeline *p, size_t n, const char *reason);
/* Sources have room again, or a sink finished: re-evaluate. */
void pipeline_wake(struct pipeline *p);
void pipeline_status(struct pipeline *p, json_t *out);
uint64_t logs_wall_ms(void);

/* ---- file sources (tail.c) ---- */
int tail_create(struct pipeline *p, json_t *ckpt, struct tail **ret);
int tail_start(struct tail *t);
void tail_pump(struct tail *t);
void tail_tick(struct tail *t, uint64_t now_ms);
void tail_stop(struct tail *t);
bool tail_idle(const struct tail *t);
void tail_free(struct tail *t);
/* Checkpoint entries for the files, and the lag in bytes. */
json_t *tail_checkpoint(struct tail *t);
uint64_t tail_lag(struct tail *t);
/* Flush marks: the size of every open file now; reached once everything up
 * to them is acknowledged (files found later have none). */
void tail_flush_mark(struct tail *t);
bool tail_flush_reached(struct tail *t);
json_t *tail_status(struct tail *t);
/* The sources the last scan could not read (a borrowed JSON array, never
 * NULL after the first scan; NULL before). */
const json_t *tail_unreadable(const struct tail *t);
/* The sink acknowledged the events of src up to its acked_off. */
void tail_acked(struct tail *t);

/* ---- the journal source (journal.c) ---- */
/* from_head: with no cursor, start at the head whatever start_at says (a
 * checkpoint was there but unusable). */
int journal_create(struct pipeline *p, const char *cursor, bool from_head, struct journal **ret);
int journal_start(struct journal *j);
void journal_pump(struct journal *j);
void journal_stop(struct journal *j);
bool journal_idle(const struct journal *j);
void journal_free(struct journal *j);
const char *journal_cursor(struct journal *j);
json_t *journal_status(struct journal *j);

/* ---- checkpoints (checkpoint.c) ---- */
/* The saved checkpoint of pipeline `name`, or NULL (none, or unreadable:
 * logged). Caller decrefs. */
/* The pipeline's checkpoint into *ret (NULL when there is none: a first
 * start). -EBADMSG, with *ret NULL, when one is there but unusable (logged):
 * not a first start. */
int checkpoint_load(struct agentd_plugin_ctx *ctx, const char *name, json_t **ret);
int checkpoint_save(struct pipeline *p);

/* ---- sinks ---- */
extern const struct sink_ops cw_sink_ops;
extern const struct sink_ops s3_sink_ops;
int cw_sink_create(struct pipeline *p, void **ret);
int s3_sink_create(struct pipeline *p, void **ret);

#endif

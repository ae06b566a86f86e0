/* A pipeline: its sources feed a queue bounded by max_memory; its sink takes
 * events from the head and acknowledges them; acknowledgements move the
 * sources' checkpoints, which are saved atomically and in batches. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cwbatch.h"
#include "evpool.h"
#include "lines.h"
#include "logs.h"

#define TICK_MS 250

uint64_t logs_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool pipeline_full(const struct pipeline *p)
{
    return p->q_bytes >= p->conf->max_memory;
}

static void drop_count(struct pipeline *p, const char *reason)
{
    if (strcmp(reason, "empty") == 0) {
        p->c.drop_empty++;
        agentd_metric_add(p->m_drop_empty, 1);
    } else if (strcmp(reason, "too_old") == 0) {
        p->c.drop_too_old++;
        agentd_metric_add(p->m_drop_old, 1);
    } else {
        p->c.drop_invalid++;
        agentd_metric_add(p->m_drop_invalid, 1);
    }
}

void pipeline_push(struct pipeline *p, struct src *src, const char *msg, size_t len,
                   uint64_t end_off, unsigned flags, int64_t now_ms, char *cursor)
{
    int64_t ts = now_ms;
    if (p->conf->timestamp_format) {
        int64_t parsed;
        if (lines_parse_time(p->conf->timestamp_format, msg, len, now_ms, &parsed) == 0)
            ts = parsed;
    }
    const char *reason = NULL;
    if (p->sink_ops->accept && !p->sink_ops->accept(p->sink, msg, len, ts, &reason)) {
        drop_count(p, reason);
        /* Nothing queued carries this position: remember it so that the
         * checkpoint moves past the dropped line once the queue drains. */
        if (src->pending == 0) {
            src->acked_off = end_off;
            if (cursor) {
                free(src->acked_cursor);
                src->acked_cursor = cursor;
                cursor = NULL;
            }
            p->ckpt_dirty = true;
        } else {
            src->dropped_off = end_off;
        }
        free(cursor);
        return;
    }
    bool plain = text_plain(msg, len);
    bool valid = plain || utf8_valid(msg, len);
    size_t mark = (flags & LINES_SPLIT) ? LINES_SPLIT_MARK_LEN : 0;
    size_t cap = (valid ? len : 3 * len) + mark;
    struct ev *e = evpool_alloc(&p->pool, sizeof(*e) + cap);
    if (!e) {
        /* Out of memory: the line stays unacknowledged and is read again
         * after a restart; nothing better is possible here. */
        drop_count(p, "invalid");
        free(cursor);
        return;
    }
    size_t n = len;
    if (valid) {
        memcpy(e->msg, msg, len);
    } else {
        n = utf8_repair(msg, len, e->msg);
        evpool_shrink_last(&p->pool, e, sizeof(*e) + cap, sizeof(*e) + n + mark);
    }
    if (mark) {
        memcpy(e->msg + n, LINES_SPLIT_MARK, mark);
        n += mark;
    }
    e->next = NULL;
    e->src = src;
    e->ts = ts;
    e->end_off = end_off;
    e->cursor = cursor;
    e->len = (uint32_t)n;
    e->plain = plain; /* the split mark is plain too */
    src->pending++;
    if (p->q_n == 0)
        p->queued_since = uv_now(agentd_loop(p->ctx));
    *p->tailp = e;
    p->tailp = &e->next;
    p->q_n++;
    p->q_bytes += ev_cost(e);
}

static void maybe_checkpoint(struct pipeline *p, bool force);

/* A checkpoint right after an acknowledgement keeps what a kill -9 sends
 * twice small; the interval bounds the fsyncs this costs. */
static void mark_dirty(struct pipeline *p)
{
    p->ckpt_dirty = true;
    maybe_checkpoint(p, false);
}

void pipeline_ack(struct pipeline *p, size_t n)
{
    for (size_t i = 0; i < n && p->head; i++) {
        struct ev *e = p->head;
        struct src *s = e->src;
        s->acked_off = e->end_off;
        if (e->cursor) {
            free(s->acked_cursor);
            s->acked_cursor = e->cursor;
            e->cursor = NULL;
        }
        if (--s->pending == 0 && s->dropped_off > s->acked_off)
            s->acked_off = s->dropped_off;
        p->head = e->next;
        p->q_n--;
        p->q_bytes -= ev_cost(e);
        evpool_release(&p->pool, e);
    }
    if (!p->head)
        p->tailp = &p->head;
    p->queued_since = uv_now(agentd_loop(p->ctx));
    mark_dirty(p);
    if (p->tail)
        tail_acked(p->tail);
}

void pipeline_drop_head(struct pipeline *p, size_t n, const char *reason)
{
    for (size_t i = 0; i < n; i++)
        drop_count(p, reason);
    pipeline_ack(p, n);
}

void pipeline_wake(struct pipeline *p)
{
    if (p->tail)
        tail_pump(p->tail);
    if (p->journal)
        journal_pump(p->journal);
    if (p->q_n > 0 || p->stopping)
        p->sink_ops->kick(p->sink);
}

static void update_lag(struct pipeline *p, uint64_t wall)
{
    uint64_t lag = p->tail ? tail_lag(p->tail) : 0;
    /* Queued journal entries are not counted in bytes; they count in time. */
    bool behind = lag > 0 || p->q_n > 0;
    if (!behind)
        p->behind_since_ms = 0;
    else if (p->behind_since_ms == 0)
        p->behind_since_ms = wall;
    p->lag_bytes = lag;
    double secs = p->behind_since_ms ? (double)(wall - p->behind_since_ms) / 1000.0 : 0;
    agentd_metric_set(p->m_lag_bytes, (double)lag);
    agentd_metric_set(p->m_lag_secs, secs);
    if (p->health) {
        if (p->conf->lag_threshold && secs * 1000 > (double)p->conf->lag_threshold)
            agentd_health_set(p->health, AGENTD_HEALTH_FAIL, "behind by %.0f s (%llu bytes)", secs,
                              (unsigned long long)lag);
        else if (p->tail && json_array_size(tail_unreadable(p->tail)))
            agentd_health_set(p->health, AGENTD_HEALTH_WARN, "%zu source(s) unreadable: '%s': %s",
                              json_array_size(tail_unreadable(p->tail)),
                              json_string_value(json_object_get(
                                  json_array_get(tail_unreadable(p->tail), 0), "path")),
                              json_string_value(json_object_get(
                                  json_array_get(tail_unreadable(p->tail), 0), "error")));
        else
            agentd_health_set(p->health, AGENTD_HEALTH_PASS, "lag %.0f s, %llu bytes", secs,
                              (unsigned long long)lag);
    }
}

static void maybe_checkpoint(struct pipeline *p, bool force)
{
    uint64_t now = uv_now(agentd_loop(p->ctx));
    if (!p->ckpt_dirty || (!force && now - p->ckpt_last < p->conf->checkpoint_interval))
        return;
    int r = checkpoint_save(p);
    if (r < 0)
        agentd_warning(p->ctx, "pipeline '%s': checkpoint not saved: %s", p->conf->name,
                       strerror(-r));
    else
        p->ckpt_dirty = false;
    p->ckpt_last = now;
}

/* Flushed when everything up to the mark is acknowledged and delivered. A
 * writer that keeps writing must not hold the flush to its budget: when the
 * mark is reached with more written since, a new mark is taken, up to
 * FLUSH_ROUNDS times, so lines written during the flush ship too. */
#define FLUSH_ROUNDS 3

static bool flushed(struct pipeline *p)
{
    /* Files: everything up to the mark acknowledged. The journal has no
     * mark: its queue must be empty. */
    if (p->tail ? !tail_flush_reached(p->tail) : p->q_n > 0)
        return false;
    if (p->journal && p->q_n > 0)
        return false;
    if (p->sink_ops->flushed && !p->sink_ops->flushed(p->sink))
        return false;
    bool more = (p->tail && tail_lag(p->tail) > 0) ||
                (p->sink_ops->undelivered && p->sink_ops->undelivered(p->sink));
    if (more && ++p->flush_rounds < FLUSH_ROUNDS) {
        p->flush_epoch++;
        if (p->tail)
            tail_flush_mark(p->tail);
        return false;
    }
    return true;
}

/* One tick of a flush: sources keep reading and the sink keeps sending until
 * everything written is where it belongs, or the budget is spent. Returns
 * true once the flush is over (logged once, with what was left). */
static bool flush_step(struct pipeline *p)
{
    uint64_t now = uv_now(agentd_loop(p->ctx));
    bool done = flushed(p);
    if (!done && now < p->flush_deadline) {
        pipeline_wake(p);
        p->sink_ops->kick(p->sink);
        return false;
    }
    p->flushing = false;
    if (done) {
        agentd_info(p->ctx, "pipeline '%s': flushed in %llu ms (%llu events shipped in all)",
                    p->conf->name, (unsigned long long)(now - p->flush_start),
                    (unsigned long long)p->c.shipped);
    } else {
        char extra[160] = "";
        if (p->sink_ops->leftover)
            p->sink_ops->leftover(p->sink, extra, sizeof(extra));
        agentd_warning(p->ctx,
                       "pipeline '%s': flush budget of %llu ms spent: %zu events queued, "
                       "%llu bytes not acknowledged%s; kept in the state directory for the "
                       "next start",
                       p->conf->name, (unsigned long long)p->conf->flush_timeout, p->q_n,
                       (unsigned long long)(p->tail ? tail_lag(p->tail) : 0), extra);
    }
    maybe_checkpoint(p, true);
    if (!p->stopping)
        logs_flushed(p->lg);
    return true;
}

static void flush_begin(struct pipeline *p)
{
    p->flushing = true;
    p->flush_start = uv_now(agentd_loop(p->ctx));
    p->flush_deadline = p->flush_start + p->conf->flush_timeout;
    p->flush_rounds = 0;
    p->flush_epoch++;
    if (p->tail)
        tail_flush_mark(p->tail);
    /* Flush the partial multiline records and lines read so far. */
    pipeline_wake(p);
    p->sink_ops->kick(p->sink);
}

void pipeline_flush(struct pipeline *p)
{
    if (p->stopping || p->flushing || !uv_is_active((uv_handle_t *)&p->tick)) {
        if (!p->stopping && !p->flushing)
            logs_flushed(p->lg);
        return;
    }
    flush_begin(p);
}

static bool parts_idle(struct pipeline *p)
{
    return (!p->tail || tail_idle(p->tail)) && (!p->journal || journal_idle(p->journal)) &&
           p->sink_ops->idle(p->sink);
}

static void on_tick(uv_timer_t *h)
{
    struct pipeline *p = h->data;
    uint64_t wall = logs_wall_ms();
    if (p->tail)
        tail_tick(p->tail, uv_now(agentd_loop(p->ctx)));
    update_lag(p, wall);
    maybe_checkpoint(p, false);
    if (p->flushing && !flush_step(p))
        return;
    if (p->stopping && !p->stopped) {
        /* Flushed, or out of time: what is not acknowledged stays behind the
         * checkpoint and is sent again after the restart. */
        p->sink_ops->stop(p->sink);
        if (p->tail)
            tail_stop(p->tail);
        if (p->journal)
            journal_stop(p->journal);
        if (parts_idle(p)) {
            maybe_checkpoint(p, true);
            p->stopped = true;
            uv_timer_stop(&p->tick);
            uv_close((uv_handle_t *)&p->tick, logs_close_cb);
        }
        return;
    }
    pipeline_wake(p);
}

static const char *const *labels(struct pipeline *p, const char *reason)
{
    static const char *l[5];
    l[0] = "pipeline";
    l[1] = p->conf->name;
    l[2] = reason ? "reason" : NULL;
    l[3] = reason;
    l[4] = NULL;
    return l;
}

static void make_metrics(struct pipeline *p)
{
    struct agentd_plugin_ctx *c = p->ctx;
    p->m_lines = agentd_metric_counter(c, "agentd_logs_lines_read_total", "Lines read from sources",
                                       labels(p, NULL));
    p->m_bytes = agentd_metric_counter(c, "agentd_logs_bytes_read_total", "Bytes read from sources",
                                       labels(p, NULL));
    p->m_shipped = agentd_metric_counter(c, "agentd_logs_events_shipped_total",
                                         "Events acknowledged by the sink", labels(p, NULL));
    p->m_batches = agentd_metric_counter(c, "agentd_logs_batches_total",
                                         "Batches acknowledged by the sink", labels(p, NULL));
    p->m_retries =
        agentd_metric_counter(c, "agentd_logs_retries_total",
                              "Sink requests that failed and were retried", labels(p, NULL));
    p->m_rejected = agentd_metric_counter(c, "agentd_logs_rejected_total",
                                          "Events the service accepted the call for but rejected",
                                          labels(p, NULL));
    const char *help = "Events dropped before sending, by reason";
    p->m_drop_empty =
        agentd_metric_counter(c, "agentd_logs_dropped_total", help, labels(p, "empty"));
    p->m_drop_old =
        agentd_metric_counter(c, "agentd_logs_dropped_total", help, labels(p, "too_old"));
    p->m_drop_invalid =
        agentd_metric_counter(c, "agentd_logs_dropped_total", help, labels(p, "invalid"));
    p->m_lag_bytes = agentd_metric_gauge(c, "agentd_logs_lag_bytes",
                                         "Bytes in sources not yet acknowledged", labels(p, NULL));
    p->m_lag_secs = agentd_metric_gauge(c, "agentd_logs_lag_seconds",
                                        "How long the pipeline has been behind", labels(p, NULL));
}

int pipeline_start(struct pipeline *p, struct agentd_err *err)
{
    const struct logs_conf *c = p->conf;
    p->tailp = &p->head;
    make_metrics(p);
    char hname[256];
    snprintf(hname, sizeof(hname), "logs:%s", c->name);
    int r = agentd_health_register(p->ctx, hname, false, &p->health);
    if (r < 0)
        p->health = NULL;

    p->sink_ops = c->cloudwatch ? &cw_sink_ops : &s3_sink_ops;
    r = c->cloudwatch ? cw_sink_create(p, &p->sink) : s3_sink_create(p, &p->sink);
    if (r < 0)
        return agentd_err_set(err, "pipeline '%s': sink: %s", c->name, strerror(-r));

    json_t *ck;
    bool bad_ck = checkpoint_load(p->ctx, c->name, &ck) < 0;
    if (bad_ck)
        ck = json_object(); /* not a first start: every source from its beginning */
    if (c->files.n > 0) {
        json_t *files = json_object_get(ck, "files");
        if (!files && bad_ck)
            json_object_set_new(ck, "files", files = json_array());
        r = tail_create(p, files, &p->tail);
        if (r < 0) {
            json_decref(ck);
            return agentd_err_set(err, "pipeline '%s': files: %s", c->name, strerror(-r));
        }
        if (!ck || bad_ck)
            p->ckpt_dirty = true; /* remember that the first start happened */
    }
    if (c->journal) {
        const char *cur = ck ? json_string_value(json_object_get(ck, "journal_cursor")) : NULL;
        r = journal_create(p, cur, bad_ck, &p->journal);
        if (r < 0) {
            /* No journal here (a container, no permission): the files of
             * the pipeline still ship; the status says why the journal does not. */
            agentd_error(p->ctx, "pipeline '%s': cannot open the journal: %s", c->name,
                         strerror(-r));
            snprintf(p->journal_error, sizeof(p->journal_error), "cannot open the journal: %s",
                     strerror(-r));
            p->journal = NULL;
        }
    }
    json_decref(ck);

    uv_timer_init(agentd_loop(p->ctx), &p->tick);
    p->tick.data = p;
    logs_busy(p->lg);
    uv_timer_start(&p->tick, on_tick, TICK_MS, TICK_MS);

    if ((r = p->sink_ops->start(p->sink)) < 0)
        return agentd_err_set(err, "pipeline '%s': sink: %s", c->name, strerror(-r));
    if (p->tail && (r = tail_start(p->tail)) < 0)
        return agentd_err_set(err, "pipeline '%s': files: %s", c->name, strerror(-r));
    if (p->journal && (r = journal_start(p->journal)) < 0)
        agentd_error(p->ctx, "pipeline '%s': cannot follow the journal: %s", c->name, strerror(-r));
    maybe_checkpoint(p, true);
    return 0;
}

void pipeline_stop(struct pipeline *p)
{
    if (p->stopping)
        return;
    p->stopping = true;
    if (!uv_is_active((uv_handle_t *)&p->tick) || p->tick.data != p) {
        /* start failed before the timer existed */
        p->stopped = true;
        return;
    }
    /* Sources keep reading up to end of file and the sink keeps shipping,
     * within the flush budget (a flush already running keeps its own). */
    if (!p->flushing)
        flush_begin(p);
}

void pipeline_free(struct pipeline *p)
{
    while (p->head) {
        struct ev *e = p->head;
        p->head = e->next;
        if (e->src)
            e->src->pending--;
        free(e->cursor);
        evpool_release(&p->pool, e);
    }
    evpool_free(&p->pool);
    if (p->tail)
        tail_free(p->tail);
    if (p->journal)
        journal_free(p->journal);
    if (p->sink)
        p->sink_ops->free(p->sink);
    if (p->health)
        agentd_health_unregister(p->health);
    p->tail = NULL;
    p->journal = NULL;
    p->sink = NULL;
    p->health = NULL;
}

void pipeline_status(struct pipeline *p, json_t *out)
{
    json_object_set_new(out, "name", json_string(p->conf->name));
    json_object_set_new(out, "queued_events", json_integer((json_int_t)p->q_n));
    json_object_set_new(out, "queued_bytes", json_integer((json_int_t)p->q_bytes));
    json_object_set_new(out, "max_memory", json_integer((json_int_t)p->conf->max_memory));
    json_object_set_new(out, "lag_bytes", json_integer((json_int_t)p->lag_bytes));
    uint64_t wall = logs_wall_ms();
    json_object_set_new(
        out, "lag_seconds",
        json_real(p->behind_since_ms ? (double)(wall - p->behind_since_ms) / 1000.0 : 0.0));
    json_t *c = json_object();
    json_object_set_new(c, "lines_read", json_integer((json_int_t)p->c.lines));
    json_object_set_new(c, "bytes_read", json_integer((json_int_t)p->c.bytes));
    json_object_set_new(c, "events_shipped", json_integer((json_int_t)p->c.shipped));
    json_object_set_new(c, "batches", json_integer((json_int_t)p->c.batches));
    json_object_set_new(c, "retries", json_integer((json_int_t)p->c.retries));
    json_object_set_new(c, "rejected", json_integer((json_int_t)p->c.rejected));
    json_t *d = json_object();
    json_object_set_new(d, "empty", json_integer((json_int_t)p->c.drop_empty));
    json_object_set_new(d, "too_old", json_integer((json_int_t)p->c.drop_too_old));
    json_object_set_new(d, "invalid", json_integer((json_int_t)p->c.drop_invalid));
    json_object_set_new(c, "dropped", d);
    json_object_set_new(out, "counters", c);
    if (p->tail) {
        json_object_set_new(out, "files", tail_status(p->tail));
        const json_t *bad = tail_unreadable(p->tail);
        json_object_set_new(out, "unreadable", bad ? json_deep_copy(bad) : json_array());
    }
    if (p->journal)
        json_object_set_new(out, "journal", journal_status(p->journal));
    else if (p->journal_error[0])
        json_object_set_new(out, "journal", json_pack("{s:s}", "error", p->journal_error));
    json_t *s = json_object();
    json_object_set_new(s, "type", json_string(p->sink_ops->type));
    if (p->sink)
        p->sink_ops->status(p->sink, s);
    json_object_set_new(out, "sink", s);
}

/* The systemd journal source: sd_journal with matches on units and priority,
 * woken by the journal's own fd (uv_poll), resumed after the cursor of the
 * last acknowledged entry. Entries are formatted as a text line
 * ("identifier[pid]: message") or a JSON object; the event time is the
 * entry's realtime timestamp. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-journal.h>

#include "logs.h"

#define BATCH 512 /* entries per turn of the loop */

struct journal {
    struct src src;
    struct pipeline *p;
    sd_journal *j;
    char *start_cursor;
    uv_poll_t poll;
    bool polling, stopped, closed;
    uv_idle_t idle; /* continues a long backlog on the next loop turn */
    bool idle_on;
    uint64_t entries;
    char last_error[200];
};

static int field(sd_journal *j, const char *name, const char **ret, size_t *ret_len)
{
    const void *d;
    size_t n;
    int r = sd_journal_get_data(j, name, &d, &n);
    if (r < 0)
        return r;
    size_t k = strlen(name) + 1; /* "NAME=" */
    if (n < k)
        return -EINVAL;
    *ret = (const char *)d + k;
    *ret_len = n - k;
    return 0;
}

/* Formats the current entry into buf (text) or a new JSON string. */
static char *format_entry(struct journal *jr, size_t *ret_len)
{
    sd_journal *j = jr->j;
    const char *msg = "", *id = NULL, *pid = NULL, *unit = NULL, *prio = NULL;
    size_t msg_len = 0, id_len = 0, pid_len = 0, unit_len = 0, prio_len = 0;
    field(j, "MESSAGE", &msg, &msg_len);
    if (field(j, "SYSLOG_IDENTIFIER", &id, &id_len) < 0)
        field(j, "_COMM", &id, &id_len);
    field(j, "_PID", &pid, &pid_len);
    field(j, "_SYSTEMD_UNIT", &unit, &unit_len);
    field(j, "PRIORITY", &prio, &prio_len);
    char *out = NULL;
    if (jr->p->conf->journal->format == JFMT_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "message", json_stringn_nocheck(msg, msg_len));
        if (id)
            json_object_set_new(o, "identifier", json_stringn_nocheck(id, id_len));
        if (unit)
            json_object_set_new(o, "unit", json_stringn_nocheck(unit, unit_len));
        if (pid)
            json_object_set_new(o, "pid", json_stringn_nocheck(pid, pid_len));
        if (prio)
            json_object_set_new(o, "priority", json_stringn_nocheck(prio, prio_len));
        out = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(o);
        if (out) {
            *ret_len = strlen(out);
            return out;
        }
        /* Not valid UTF-8 for JSON: the text form still carries it (repaired). */
    }
    int n = pid ? asprintf(&out, "%.*s[%.*s]: %.*s", (int)id_len, id ? id : "unknown", (int)pid_len,
                           pid, (int)msg_len, msg)
                : asprintf(&out, "%.*s: %.*s", (int)id_len, id ? id : "unknown", (int)msg_len, msg);
    if (n < 0)
        return NULL;
    *ret_len = (size_t)n;
    return out;
}

static void on_idle(uv_idle_t *h);

void journal_pump(struct journal *jr)
{
    struct pipeline *p = jr->p;
    if (jr->stopped || !jr->j)
        return;
    size_t n = 0;
    uint64_t bytes = 0;
    while (n < BATCH && !pipeline_full(p)) {
        int r = sd_journal_next(jr->j);
        if (r < 0) {
            snprintf(jr->last_error, sizeof(jr->last_error), "sd_journal_next: %s", strerror(-r));
            break;
        }
        if (r == 0)
            break;
        char *cursor = NULL;
        if (sd_journal_get_cursor(jr->j, &cursor) < 0)
            continue;
        if (jr->start_cursor) {
            /* Resuming: the saved entry itself was shipped already. */
            bool same = strcmp(cursor, jr->start_cursor) == 0;
            free(jr->start_cursor);
            jr->start_cursor = NULL;
            if (same) {
                free(cursor);
                continue;
            }
        }
        uint64_t usec = 0;
        sd_journal_get_realtime_usec(jr->j, &usec);
        size_t len;
        char *text = format_entry(jr, &len);
        if (!text) {
            free(cursor);
            continue;
        }
        p->c.lines++;
        bytes += len;
        jr->entries++;
        pipeline_push(p, &jr->src, text, len, 0, 0, (int64_t)(usec / 1000), cursor);
        free(text);
        n++;
    }
    if (n) {
        p->c.bytes += bytes;
        agentd_metric_add(p->m_lines, (double)n);
        agentd_metric_add(p->m_bytes, (double)bytes);
        p->sink_ops->kick(p->sink);
    }
    /* A full batch means there may be more: go on after other work ran. */
    bool more = n == BATCH && !pipeline_full(p);
    if (more && !jr->idle_on) {
        uv_idle_start(&jr->idle, on_idle);
        jr->idle_on = true;
    } else if (!more && jr->idle_on) {
        uv_idle_stop(&jr->idle);
        jr->idle_on = false;
    }
}

static void on_idle(uv_idle_t *h)
{
    journal_pump(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct journal *jr = h->data;
    if (jr->stopped)
        return;
    sd_journal_process(jr->j);
    journal_pump(jr);
}

int journal_create(struct pipeline *p, const char *cursor, bool from_head, struct journal **ret)
{
    const struct logs_journal_conf *c = p->conf->journal;
    struct journal *jr = calloc(1, sizeof(*jr));
    if (!jr)
        return -ENOMEM;
    jr->p = p;
    int r = c->directory ? sd_journal_open_directory(&jr->j, c->directory, 0)
                         : sd_journal_open(&jr->j, SD_JOURNAL_LOCAL_ONLY);
    if (r < 0) {
        free(jr);
        return r;
    }
    const char *const *units = c->units.items;
    for (size_t i = 0; i < c->units.n && r >= 0; i++) {
        char m[512];
        snprintf(m, sizeof(m), "_SYSTEMD_UNIT=%s", units[i]);
        r = sd_journal_add_match(jr->j, m, 0);
    }
    if (c->priority < 7)
        for (int pr = 0; pr <= c->priority && r >= 0; pr++) {
            char m[32];
            snprintf(m, sizeof(m), "PRIORITY=%d", pr);
            r = sd_journal_add_match(jr->j, m, 0);
        }
    if (r >= 0 && cursor) {
        r = sd_journal_seek_cursor(jr->j, cursor);
        jr->start_cursor = strdup(cursor);
        jr->src.acked_cursor = strdup(cursor);
    } else if (r >= 0 && p->conf->start_at == START_END && !from_head) {
        r = sd_journal_seek_tail(jr->j);
        if (r >= 0)
            sd_journal_previous(jr->j); /* the next entry is the first new one */
    } else if (r >= 0) {
        r = sd_journal_seek_head(jr->j);
    }
    if (r < 0) {
        sd_journal_close(jr->j);
        free(jr->start_cursor);
        free(jr->src.acked_cursor);
        free(jr);
        return r;
    }
    *ret = jr;
    return 0;
}

int journal_start(struct journal *jr)
{
    uv_loop_t *loop = agentd_loop(jr->p->ctx);
    uv_idle_init(loop, &jr->idle);
    jr->idle.data = jr;
    logs_busy(jr->p->lg);
    int fd = sd_journal_get_fd(jr->j);
    if (fd >= 0 && uv_poll_init(loop, &jr->poll, fd) == 0) {
        jr->poll.data = jr;
        jr->polling = true;
        logs_busy(jr->p->lg);
        uv_poll_start(&jr->poll, UV_READABLE, on_poll);
    } else {
        snprintf(jr->last_error, sizeof(jr->last_error), "no journal fd to wait on: %s",
                 strerror(fd < 0 ? -fd : EINVAL));
        return fd < 0 ? fd : -EINVAL;
    }
    journal_pump(jr);
    return 0;
}

void journal_stop(struct journal *jr)
{
    if (jr->stopped)
        return;
    jr->stopped = true;
    if (jr->closed)
        return;
    jr->closed = true;
    uv_idle_stop(&jr->idle);
    jr->idle.data = jr->p;
    uv_close((uv_handle_t *)&jr->idle, logs_close_cb);
    if (jr->polling) {
        uv_poll_stop(&jr->poll);
        jr->poll.data = jr->p;
        uv_close((uv_handle_t *)&jr->poll, logs_close_cb);
    }
}

bool journal_idle(const struct journal *jr)
{
    return jr->stopped;
}

void journal_free(struct journal *jr)
{
    if (jr->j)
        sd_journal_close(jr->j);
    free(jr->start_cursor);
    free(jr->src.acked_cursor);
    free(jr);
}

const char *journal_cursor(struct journal *jr)
{
    return jr->src.acked_cursor;
}

json_t *journal_status(struct journal *jr)
{
    json_t *o = json_object();
    json_object_set_new(o, "entries_read", json_integer((json_int_t)jr->entries));
    json_object_set_new(o, "queued_events", json_integer(jr->src.pending));
    json_object_set_new(o, "cursor",
                        jr->src.acked_cursor ? json_string(jr->src.acked_cursor) : json_null());
    if (jr->last_error[0])
        json_object_set_new(o, "last_error", json_string(jr->last_error));
    return o;
}

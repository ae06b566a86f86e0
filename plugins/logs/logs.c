/* The logs plugin: its descriptor and options, and the pipelines it runs
 * (one per list item): file and journal sources → a CloudWatch Logs or S3
 * sink, at-least-once. */
#include <errno.h>
#include <regex.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cwbatch.h"
#include "lines.h"
#include "logs.h"

/* ---- options ---- */

static const char *const start_values[] = {"beginning", "end", NULL};
static const char *const sse_values[] = {"none", "AES256", "aws:kms", NULL};
static const char *const jfmt_values[] = {"text", "json", NULL};
static const char *const prio_values[] = {"emerg",  "alert", "crit",  "err", "warning",
                                          "notice", "info",  "debug", NULL};
static const char *const seq_var[] = {"seq", NULL};

#define O(s, f) offsetof(struct s, f)

static int cw_validate(void *obj, struct agentd_confctx *cc)
{
    struct logs_cw_conf *c = obj;
    static const unsigned days[] = {1,   3,   5,   7,   14,   30,   60,   90,   120,  150,  180,
                                    365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653};
    if (c->retention) {
        bool ok = c->retention % 86400000 == 0;
        unsigned d = (unsigned)(c->retention / 86400000);
        bool listed = false;
        for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++)
            listed |= days[i] == d;
        if (!ok || !listed)
            agentd_conf_error(cc, "retention",
                              "must be a number of days CloudWatch offers: 1d, 3d, 5d, 7d, 14d, "
                              "30d, 60d, 90d, 120d, 150d, 180d, 365d, 400d, 545d, 731d, 1096d, "
                              "1827d, 2192d, 2557d, 2922d, 3288d or 3653d");
    }
    if (c->group && !strchr(c->group, '{')) {
        size_t n = strlen(c->group);
        if (n == 0 || n > 512 ||
            strspn(c->group, "._-/#abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != n)
            agentd_conf_error(cc, "group",
                              "'%s' is not a log group name ([.-_/#A-Za-z0-9], 1 to "
                              "512 characters)",
                              c->group);
    }
    if (c->stream && (strchr(c->stream, ':') || strchr(c->stream, '*')))
        agentd_conf_error(cc, "stream", "a log stream name cannot contain ':' or '*'");
    return 0;
}

static const struct agentd_option cw_options[] = {
    {"group", AGENTD_OPT_STRING, O(logs_cw_conf, group), NULL,
     AGENTD_OPT_REQUIRED | AGENTD_OPT_TEMPLATE, .description = "log group name (template)"},
    {"stream", AGENTD_OPT_STRING, O(logs_cw_conf, stream), "\"{instance_id}\"", AGENTD_OPT_TEMPLATE,
     .description = "log stream name (template)"},
    {"retention", AGENTD_OPT_DURATION, O(logs_cw_conf, retention), NULL, 0,
     .description = "retention set on the group, in days (\"30d\"); unset: left alone"},
    {"endpoint", AGENTD_OPT_URL, O(logs_cw_conf, endpoint), NULL, AGENTD_OPT_ENDPOINT,
     .description = "CloudWatch Logs endpoint URL (default: the region's)"},
    {"region", AGENTD_OPT_STRING, O(logs_cw_conf, region), NULL, 0,
     .description = "region (default: agentd's)"},
    {"flush_interval", AGENTD_OPT_DURATION, O(logs_cw_conf, flush_interval), "5s", 0, 10, 3600000,
     .description = "longest an event waits for a fuller batch"},
    {NULL},
};

static const struct agentd_schema cw_schema = {
    .name = "cloudwatch sink",
    .size = sizeof(struct logs_cw_conf),
    .options = cw_options,
    .validate = cw_validate,
};

static const struct agentd_option rotate_options[] = {
    {"size", AGENTD_OPT_SIZE, O(logs_rotate_conf, size), "64MiB", 0, 1024, 5368709120LL,
     .description = "close an object when its compressed size reaches this"},
    {"age", AGENTD_OPT_DURATION, O(logs_rotate_conf, age), "5m", 0, 1000, 86400000,
     .description = "close an object this long after its first line"},
    {NULL},
};

static const struct agentd_schema rotate_schema = {
    .name = "s3 rotation",
    .size = sizeof(struct logs_rotate_conf),
    .options = rotate_options,
};

static int s3_validate(void *obj, struct agentd_confctx *cc)
{
    struct logs_s3_conf *c = obj;
    if (c->sse == SSE_KMS && !c->kms_key_id)
        agentd_conf_error(cc, "sse", "aws:kms needs kms_key_id");
    if (c->kms_key_id && c->sse != SSE_KMS)
        agentd_conf_error(cc, "kms_key_id", "only used with sse: aws:kms");
    return 0;
}

static const struct agentd_option s3_options[] = {
    {"bucket", AGENTD_OPT_STRING, O(logs_s3_conf, bucket), NULL,
     AGENTD_OPT_REQUIRED | AGENTD_OPT_TEMPLATE, .description = "bucket name (template)"},
    {"key", AGENTD_OPT_STRING, O(logs_s3_conf, key),
     "\"log/{instance_id}/%Y/%m/%d/%H%M%S-{seq}.log.gz\"", AGENTD_OPT_TEMPLATE,
     .template_vars = seq_var,
     .description = "object key (template with strftime fields and {seq})"},
    {"rotate", AGENTD_OPT_OBJECT, O(logs_s3_conf, rotate), "{}", 0, .sub = &rotate_schema,
     .description = "when an object is closed and uploaded"},
    {"sse", AGENTD_OPT_ENUM, O(logs_s3_conf, sse), "none", 0, .values = sse_values,
     .description = "server-side encryption"},
    {"kms_key_id", AGENTD_OPT_STRING, O(logs_s3_conf, kms_key_id), NULL, 0,
     .description = "KMS key for sse: aws:kms"},
    {"storage_class", AGENTD_OPT_STRING, O(logs_s3_conf, storage_class), NULL, 0,
     .description = "storage class (STANDARD_IA, ...)"},
    {"endpoint", AGENTD_OPT_URL, O(logs_s3_conf, endpoint), NULL, AGENTD_OPT_ENDPOINT,
     .description = "S3 endpoint URL (path-style requests)"},
    {"region", AGENTD_OPT_STRING, O(logs_s3_conf, region), NULL, 0,
     .description = "region (default: agentd's)"},
    {"gzip_level", AGENTD_OPT_INT, O(logs_s3_conf, gzip_level), "1", 0, 1, 9,
     .description = "zlib level: 1 is fast (the CPU budget), 9 is small"},
    {NULL},
};

static const struct agentd_schema s3_schema = {
    .name = "s3 sink",
    .size = sizeof(struct logs_s3_conf),
    .options = s3_options,
    .validate = s3_validate,
};

static const struct agentd_option journal_options[] = {
    {"units", AGENTD_OPT_LIST, O(logs_journal_conf, units), NULL, 0, .elem = AGENTD_OPT_STRING,
     .description = "systemd units to follow (none: every entry)"},
    {"priority", AGENTD_OPT_ENUM, O(logs_journal_conf, priority), "debug", 0, .values = prio_values,
     .description = "lowest priority shipped"},
    {"format", AGENTD_OPT_ENUM, O(logs_journal_conf, format), "text", 0, .values = jfmt_values,
     .description = "each entry as a text line or a JSON object"},
    {"directory", AGENTD_OPT_PATH, O(logs_journal_conf, directory), NULL, 0,
     .description = "read journal files from this directory instead of the local journal"},
    {NULL},
};

static const struct agentd_schema journal_schema = {
    .name = "journal source",
    .size = sizeof(struct logs_journal_conf),
    .options = journal_options,
};

static int pipeline_validate(void *obj, struct agentd_confctx *cc)
{
    struct logs_conf *c = obj;
    if (c->name && (strlen(c->name) == 0 || strlen(c->name) > 128 ||
                    strspn(c->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789_.-") != strlen(c->name) ||
                    c->name[0] == '.'))
        agentd_conf_error(cc, "name", "'%s': use letters, digits, '_', '.' and '-'", c->name);
    if (c->files.n == 0 && !c->journal)
        agentd_conf_error(cc, NULL, "a pipeline needs files or journal");
    if (!!c->cloudwatch + !!c->s3 != 1)
        agentd_conf_error(cc, NULL, "a pipeline needs exactly one of cloudwatch and s3");
    const char *const *pats = c->files.items;
    for (size_t i = 0; i < c->files.n; i++)
        if (pats[i][0] != '/')
            agentd_conf_error(cc, "files", "'%s' is not an absolute path", pats[i]);
    if (c->multiline_start) {
        regex_t re;
        if (regcomp(&re, c->multiline_start, REG_EXTENDED | REG_NOSUB) != 0)
            agentd_conf_error(cc, "multiline_start", "'%s' is not a POSIX extended regex",
                              c->multiline_start);
        else
            regfree(&re);
    }
    if (c->max_memory < 2 * c->max_line)
        agentd_conf_error(cc, "max_memory", "must hold at least two lines of max_line");
    return 0;
}

static const struct agentd_option pipeline_options[] = {
    {"name", AGENTD_OPT_STRING, O(logs_conf, name), NULL, AGENTD_OPT_REQUIRED | AGENTD_OPT_UNIQUE,
     .description = "pipeline name (checkpoints, metrics, the logs:NAME check)"},
    {"files", AGENTD_OPT_LIST, O(logs_conf, files), NULL, 0, 0, 0, AGENTD_OPT_PATH,
     .description = "absolute glob patterns (*, ?, [...], **) of files to ship"},
    {"follow_symlinks", AGENTD_OPT_BOOL, O(logs_conf, follow_symlinks), "false", 0,
     .description = "take symbolic links met by the patterns (see README: the risk)"},
    {"journal", AGENTD_OPT_OBJECT, O(logs_conf, journal), NULL, 0, .sub = &journal_schema,
     .description = "ship the systemd journal"},
    {"multiline_start", AGENTD_OPT_STRING, O(logs_conf, multiline_start), NULL, 0,
     .description = "POSIX ERE a record's first line matches; following lines join it"},
    {"multiline_flush", AGENTD_OPT_DURATION, O(logs_conf, multiline_flush), "1s", 0, 10, 600000,
     .description = "how long a record waits for more lines"},
    {"timestamp_format", AGENTD_OPT_STRING, O(logs_conf, timestamp_format), NULL, 0,
     .description = "strptime format of the time at a line's start (default: ingestion time)"},
    {"start_at", AGENTD_OPT_ENUM, O(logs_conf, start_at), "beginning", 0, .values = start_values,
     .description = "where files present at the very first start are read from"},
    {"max_line", AGENTD_OPT_SIZE, O(logs_conf, max_line), "256KiB", 0, 1024, 320 * 1024,
     .description = "longer lines are split into marked pieces"},
    {"max_memory", AGENTD_OPT_SIZE, O(logs_conf, max_memory), "2MiB", 0, 65536, 1LL << 32,
     .description = "events held in memory; reading pauses when full"},
    {"max_open_files", AGENTD_OPT_INT, O(logs_conf, max_open_files), "256", 0, 1, 65536,
     .description = "files open at once; more wait"},
    {"rescan_interval", AGENTD_OPT_DURATION, O(logs_conf, rescan_interval), "10s", 0, 100, 3600000,
     .description = "globs are re-evaluated this often (and on directory events)"},
    {"rotate_wait", AGENTD_OPT_DURATION, O(logs_conf, rotate_wait), "5s", 0, 0, 3600000,
     .description = "a rotated file is closed after this long at its end"},
    {"close_inactive", AGENTD_OPT_DURATION, O(logs_conf, close_inactive), "5m", 0, 0, 86400000,
     .description = "a file idle at its end this long is closed (reopened when it grows)"},
    {"checkpoint_interval", AGENTD_OPT_DURATION, O(logs_conf, checkpoint_interval), "1s", 0, 0,
     600000, .description = "checkpoints are written at most this often"},
    {"lag_threshold", AGENTD_OPT_DURATION, O(logs_conf, lag_threshold), "5m", 0,
     .description = "the logs:NAME check fails when behind longer than this (0: never)"},
    {"flush_timeout", AGENTD_OPT_DURATION, O(logs_conf, flush_timeout), "60s", 0, 100, 3600000,
     .description = "at stop, how long to keep shipping until everything written is sent; what "
                    "is left stays in the state directory for the next start"},
    {"cloudwatch", AGENTD_OPT_OBJECT, O(logs_conf, cloudwatch), NULL, 0, .sub = &cw_schema,
     .description = "ship to CloudWatch Logs"},
    {"s3", AGENTD_OPT_OBJECT, O(logs_conf, s3), NULL, 0, .sub = &s3_schema,
     .description = "ship to S3 as gzip objects"},
    {NULL},
};

const struct agentd_schema logs_pipeline_schema = {
    .name = "log pipeline",
    .size = sizeof(struct logs_conf),
    .options = pipeline_options,
    .validate = pipeline_validate,
};

/* ---- lifetime ---- */

void logs_busy(struct logs *lg)
{
    lg->busy++;
}

static void maybe_done(struct logs *lg)
{
    if (!lg->stopping || lg->busy > 0 || !lg->done)
        return;
    for (size_t i = 0; i < lg->n; i++)
        if (!lg->pipes[i].stopped)
            return;
    for (size_t i = 0; i < lg->n; i++)
        pipeline_free(&lg->pipes[i]);
    free(lg->pipes);
    lg->pipes = NULL;
    lg->n = 0;
    agentd_stop_done_fn done = lg->done;
    lg->done = NULL;
    done(lg->ctx);
}

void logs_unbusy(struct logs *lg)
{
    lg->busy--;
    maybe_done(lg);
}

void logs_close_cb(uv_handle_t *h)
{
    struct pipeline *p = h->data;
    logs_unbusy(p->lg);
}

static int ctl_status(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud)
{
    struct logs *lg = ud;
    json_t *a = json_array();
    for (size_t i = 0; i < lg->n; i++) {
        json_t *o = json_object();
        pipeline_status(&lg->pipes[i], o);
        json_array_append_new(a, o);
    }
    *ret = json_pack("{s:o}", "pipelines", a);
    return 0;
}

static void on_interruption(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload,
                            void *ud)
{
    struct logs *lg = ud;
    (void)ctx, (void)name, (void)payload;
    for (size_t i = 0; i < lg->n; i++) {
        struct pipeline *p = &lg->pipes[i];
        if (p->sink && p->sink_ops->interruption && !p->stopping)
            p->sink_ops->interruption(p->sink);
    }
}

void logs_flushed(struct logs *lg)
{
    if (!lg->prepared)
        return;
    for (size_t i = 0; i < lg->n; i++)
        if (lg->pipes[i].flushing)
            return;
    agentd_stop_done_fn done = lg->prepared;
    lg->prepared = NULL;
    done(lg->ctx);
}

/* The flush phase of a stop sequence that does not exit: ship everything
 * written so far and keep running (lines written later ship as usual). */
static void logs_prepare(struct agentd_plugin_ctx *ctx, enum agentd_stop_phase phase,
                         agentd_stop_done_fn done)
{
    struct logs *lg = agentd_plugin_get_data(ctx);
    if (phase != AGENTD_PHASE_FLUSH || !lg || lg->stopping || lg->prepared) {
        done(ctx);
        return;
    }
    lg->prepared = done;
    for (size_t i = 0; i < lg->n; i++)
        pipeline_flush(&lg->pipes[i]);
    logs_flushed(lg);
}

static int logs_configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    const struct agentd_list *l = conf;
    const struct logs_conf *c = l->items;
    for (size_t i = 0; i < l->n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c[i].name, c[j].name) == 0)
                return agentd_err_set(err, "two pipelines are named '%s'", c[i].name);
    struct logs *lg = agentd_plugin_get_data(ctx);
    if (!lg) {
        lg = calloc(1, sizeof(*lg));
        if (!lg)
            return -ENOMEM;
        agentd_plugin_set_data(ctx, lg);
    }
    lg->ctx = ctx;
    lg->conf = l;
    /* stop() runs the flush: let it take its budget and a little more. */
    uint64_t budget = 0;
    for (size_t i = 0; i < l->n; i++)
        if (c[i].flush_timeout > budget)
            budget = c[i].flush_timeout;
    agentd_plugin_set_stop_timeout(ctx, budget + 15000);
    return 0;
}

static int logs_start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    struct logs *lg = agentd_plugin_get_data(ctx);
    const struct logs_conf *c = lg->conf->items;
    lg->pipes = calloc(lg->conf->n ? lg->conf->n : 1, sizeof(*lg->pipes));
    if (!lg->pipes)
        return -ENOMEM;
    lg->n = lg->conf->n;
    lg->stopping = false;
    for (size_t i = 0; i < lg->n; i++) {
        lg->pipes[i].ctx = ctx;
        lg->pipes[i].conf = &c[i];
        lg->pipes[i].lg = lg;
    }
    agentd_control_register(ctx, "status", "show each pipeline's sources and sink", ctl_status, lg);
    agentd_event_subscribe(ctx, "instance.interruption", on_interruption, lg);
    agentd_control_register(ctx, "doctor",
                            "[start]: check sources readable and the sink's endpoint and IAM",
                            logs_doctor_verb, lg);
    for (size_t i = 0; i < lg->n; i++) {
        int r = pipeline_start(&lg->pipes[i], err);
        if (r < 0)
            return r;
    }
    size_t broken = 0;
    for (size_t i = 0; i < lg->n; i++)
        broken += lg->pipes[i].journal_error[0] != 0;
    if (broken)
        agentd_plugin_report(ctx, true, "%zu pipeline%s, %zu without its journal", lg->n,
                             lg->n == 1 ? "" : "s", broken);
    else
        agentd_plugin_report(ctx, false, "%zu pipeline%s", lg->n, lg->n == 1 ? "" : "s");
    /* The doctor's network checks once at start: a failure is logged with its
     * likely cause and fix (agentctl logs doctor shows them again). */
    logs_doctor_run(lg, true);
    return 0;
}

static void logs_stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    struct logs *lg = agentd_plugin_get_data(ctx);
    logs_doctor_cancel();
    lg->stopping = true;
    lg->done = done;
    if (lg->prepared) { /* a flush without exit is overtaken by the stop */
        agentd_stop_done_fn prepared = lg->prepared;
        lg->prepared = NULL;
        prepared(ctx);
    }
    for (size_t i = 0; i < lg->n; i++)
        pipeline_stop(&lg->pipes[i]);
    maybe_done(lg);
}

static void logs_status(struct agentd_plugin_ctx *ctx, json_t *out)
{
    struct logs *lg = agentd_plugin_get_data(ctx);
    if (!lg)
        return;
    json_t *a = json_array();
    for (size_t i = 0; i < lg->n; i++) {
        struct pipeline *p = &lg->pipes[i];
        json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:I,s:I}", "name", p->conf->name, "sink",
                                           p->sink_ops ? p->sink_ops->type : "?", "shipped",
                                           (json_int_t)p->c.shipped, "queued", (json_int_t)p->q_n,
                                           "lag_bytes", (json_int_t)p->lag_bytes));
    }
    json_object_set_new(out, "pipelines", a);
}

static void logs_destroy(struct agentd_plugin_ctx *ctx)
{
    struct logs *lg = agentd_plugin_get_data(ctx);
    logs_doctor_free();
    if (!lg)
        return;
    /* After a failed start the loop still holds our handles: they are
     * closed by stop; here only memory no handle points to is freed. */
    if (lg->busy == 0) {
        for (size_t i = 0; i < lg->n; i++)
            pipeline_free(&lg->pipes[i]);
        free(lg->pipes);
        free(lg);
        agentd_plugin_set_data(ctx, NULL);
    }
}

AGENTD_EXPORT const struct agentd_plugin agentd_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "logs",
    .description = "ships log files and the journal to CloudWatch Logs or S3, at least once",
    .schema = &logs_pipeline_schema,
    /* Stops in the flush phase: pipelines read and ship through announce and
     * leave (the drain), then ship everything up to end of file. */
    .flags = AGENTD_PLUGIN_LIST_ROOT | AGENTD_PLUGIN_STOP_FLUSH,
    .configure = logs_configure,
    .start = logs_start,
    .stop = logs_stop,
    .prepare = logs_prepare,
    .status = logs_status,
    .destroy = logs_destroy,
};

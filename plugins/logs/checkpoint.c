/* Checkpoints: one record per pipeline in the plugin's state directory,
 * {"version":1,"files":[{path,dev,ino,fp,fp_len,off}],"journal_cursor":...},
 * replaced atomically by agentd_state_write (temp file, fsync, rename). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logs.h"

static void record_name(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "pipeline-%s.json", name);
}

int checkpoint_load(struct agentd_plugin_ctx *ctx, const char *name, json_t **ret)
{
    char rec[300];
    record_name(name, rec, sizeof(rec));
    void *data;
    size_t len;
    *ret = NULL;
    int r = agentd_state_read(ctx, rec, &data, &len);
    if (r == -ENOENT)
        return 0;
    /* A checkpoint that is there but cannot be used means agentd ran before:
     * lines may have been written while it was down, so its sources resume
     * from the beginning (duplicates, never a gap), whatever start_at says. */
    if (r < 0) {
        agentd_warning(ctx,
                       "pipeline '%s': checkpoint unreadable (%s): reading from the beginning "
                       "(start_at does not apply)",
                       name, strerror(-r));
        return -EBADMSG;
    }
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    free(data);
    if (!j || !json_is_object(j) || json_integer_value(json_object_get(j, "version")) != 1) {
        agentd_warning(ctx,
                       "pipeline '%s': checkpoint is not valid: reading from the beginning "
                       "(start_at does not apply)",
                       name);
        json_decref(j);
        return -EBADMSG;
    }
    *ret = j;
    return 0;
}

int checkpoint_save(struct pipeline *p)
{
    json_t *j = json_object();
    json_object_set_new(j, "version", json_integer(1));
    if (p->tail)
        json_object_set_new(j, "files", tail_checkpoint(p->tail));
    if (p->journal) {
        const char *cur = journal_cursor(p->journal);
        json_object_set_new(j, "journal_cursor", cur ? json_string(cur) : json_null());
    }
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return -ENOMEM;
    char rec[300];
    record_name(p->conf->name, rec, sizeof(rec));
    int r = agentd_state_write(p->ctx, rec, text, strlen(text));
    free(text);
    return r;
}

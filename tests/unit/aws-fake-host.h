#ifndef AWS_FAKE_HOST_H
#define AWS_FAKE_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#define FAKE_LOG_LINES 256

extern uv_loop_t *fake_host_loop;
extern char fake_host_log[FAKE_LOG_LINES][256];
extern size_t fake_host_nlog;
extern bool fake_host_stopping;
extern int fake_host_summaries; /* aws_plugin_summary() calls */
/* aws_ctx_running() is false for this ctx while the flag is set. */
extern bool fake_host_dead_ctx_set;
extern struct agentd_plugin_ctx *fake_host_dead_ctx;
struct agentd_plugin_ctx;

/* Sets a metadata value agentd_metadata_get returns (strings borrowed). */
void fake_host_metadata(const char *key, const char *value);
/* Whether any log line so far contains needle. */
bool fake_host_logged(const char *needle);

#endif

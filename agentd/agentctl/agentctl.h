/* What agentctl's files share: the one request/reply exchange and small
 * printing helpers. */
#ifndef AGENTCTL_H
#define AGENTCTL_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

/* Sends req (not consumed) to the control socket at path and reads one
 * reply. Returns 0 and *ret_reply (a JSON object the caller frees), -ENOENT
 * or -ECONNREFUSED when agentd is not running, another negative errno on
 * failure (already reported on stderr unless quiet). */
int ctl_call(const char *path, const json_t *req, json_t **ret_reply, bool quiet);

/* The string member key of o, or "" when it is missing. */
const char *str(const json_t *o, const char *key);

void print_json(const json_t *v);

/* Prints the verbs of a "verbs" reply as aligned "plugin verb  help" lines,
 * only those of plugin only when it is not NULL. */
void print_verbs(FILE *f, const json_t *verbs, const char *only);

/* agentctl wait: argv holds the arguments after "wait". Returns the exit
 * code (0 passed, 1 timed out, 2 usage). */
int cmd_wait(const char *path, int argc, char **argv, bool json);

/* agentctl doctor: every plugin's doctor checks. Returns the exit code
 * (0 none failed, 1 some failed, 3 agentd not running). */
int cmd_doctor(const char *path, bool json);

#endif

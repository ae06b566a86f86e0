/* The control protocol, shared by agentd and agentctl: one JSON object per
 * line in each direction, every request and reply carrying "v": 1.
 *
 *   request  {"v":1,"cmd":"status"}
 *            {"v":1,"cmd":"plugin","plugin":"health","verb":"show","args":["x"]}
 *   reply    {"v":1,"ok":true,"result":...}
 *            {"v":1,"ok":false,"error":"...","errors":[...]?}
 */
#ifndef AGENTD_CONTROL_PROTO_H
#define AGENTD_CONTROL_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CONTROL_PROTO_VERSION 1
#define CONTROL_MAX_REQUEST   65536 /* bytes, newline included */

/* Accumulates bytes into lines. */
struct proto_framer {
    char buf[CONTROL_MAX_REQUEST];
    size_t len;
};

/* Feeds data; calls on_line for each complete line (without the newline,
 * NUL-terminated). Returns 0, a negative value returned by on_line (which stops
 * feeding), or -EMSGSIZE when a line exceeds CONTROL_MAX_REQUEST. */
int proto_feed(struct proto_framer *f, const char *data, size_t len,
               int (*on_line)(char *line, size_t len, void *ud), void *ud);

struct proto_request {
    const char *cmd;
    const char *plugin; /* cmd "plugin" */
    const char *verb;
    const json_t *args; /* array of strings; never NULL after a successful parse */
};

/* Parses one request line. On success *ret borrows from *ret_root (caller
 * decrefs). On failure returns -EINVAL and a message in msg. */
int proto_parse_request(const char *line, size_t len, json_t **ret_root, struct proto_request *ret,
                        char *msg, size_t msgsize);

/* Replies, as a newline-terminated string (caller frees). result: stolen. */
char *proto_reply_ok(json_t *result);
/* errors: optional array of strings, stolen. */
char *proto_reply_error(const char *message, json_t *errors);

#endif

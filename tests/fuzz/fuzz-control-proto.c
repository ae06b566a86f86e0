/* libFuzzer target: arbitrary bytes from a control-socket peer go through
 * framing and request parsing; the first byte picks the read sizes so that
 * lines split across reads are covered too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_line(char *line, size_t len, void *ud)
{
    struct proto_request req;
    json_t *root = NULL;
    char msg[256];

    if (proto_parse_request(line, len, &root, &req, msg, sizeof(msg)) == 0) {
        char *reply = proto_reply_ok(json_string(req.cmd));
        free(reply);
        json_decref(root);
    } else {
        free(proto_reply_error(msg, NULL));
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct proto_framer f;
    size_t chunk;

    if (size == 0)
        return 0;
    chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    f.len = 0;
    while (size > 0) {
        size_t n = size < chunk ? size : chunk;
        if (proto_feed(&f, (const char *)data, n, on_line, NULL) < 0)
            f.len = 0;
        data += n;
        size -= n;
    }
    return 0;
}

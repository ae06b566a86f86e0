/* libFuzzer target: the health endpoint's request parser and router, fed the
 * way a connection feeds them (in chunks, pipelined requests, limits small
 * enough to be hit), plus the JSON string writer on the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../plugins/health/health-int.h"

static const char *const paths[] = {"/health", "/my-devices/health.json"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct request_limits lim = {
        .max_url = 256, .max_header_bytes = 1024, .max_headers = 16};
    struct request r;
    size_t off = 0, chunk;
    int requests = 0;

    if (size == 0)
        return 0;
    /* The first byte picks the chunk size: the parser must not care. */
    chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    request_init(&r, &lim);
    while (off < size && requests < 1000) {
        size_t n = size - off < chunk ? size - off : chunk;
        enum request_event ev;
        size_t used = request_feed(&r, (const char *)data + off, n, &ev);

        if (used > n)
            __builtin_trap();
        off += used;
        if (ev == REQUEST_ERROR) {
            if (r.error_status != 400 && r.error_status != 414 && r.error_status != 431)
                __builtin_trap();
            break;
        }
        if (ev == REQUEST_DONE) {
            struct route_result rt;

            if (r.url_len > lim.max_url || strlen(r.url) != r.url_len)
                __builtin_trap();
            route_match(paths, 2, r.method, r.url, r.url_len, &rt);
            requests++;
            if (!r.keep_alive)
                break;
            request_next(&r);
        }
    }
    {
        /* The JSON writer on arbitrary bytes must give valid, bounded output. */
        char s[512];
        struct sbuf b;
        size_t k = size < sizeof(s) - 1 ? size : sizeof(s) - 1;

        memcpy(s, data, k);
        s[k] = '\0';
        sbuf_init(&b, 8192);
        sbuf_json_str(&b, s, 100);
        if (b.overflow || b.len < 2 || b.p[0] != '"' || b.p[b.len - 1] != '"')
            __builtin_trap();
        sbuf_free(&b);
    }
    return 0;
}

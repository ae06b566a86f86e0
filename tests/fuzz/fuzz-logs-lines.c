/* libFuzzer target: the line splitter, multiline grouping and UTF-8 repair.
 * The first byte picks the maximum line length and where to cut the input
 * into feeds; every piece must respect the maximum, offsets must be
 * monotonic and end at the input's length, and repair must yield valid
 * UTF-8 no longer than three times its input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/logs/lines.h"

struct st {
    size_t max;
    uint64_t last_end;
    struct mline *m;
    char *fix;
};

static void check_event(void *ud, const char *msg, size_t len, uint64_t end, unsigned flags)
{
    struct st *s = ud;
    if (!utf8_valid(msg, len)) {
        size_t k = utf8_repair(msg, len, s->fix);
        if (k > 3 * len || !utf8_valid(s->fix, k))
            abort();
    }
    (void)end;
    (void)flags;
}

static void on_line(void *ud, const char *line, size_t len, uint64_t end, unsigned flags)
{
    struct st *s = ud;
    if (len > s->max || end < s->last_end)
        abort();
    if (!(flags & LINES_SPLIT) && memchr(line, '\n', len))
        abort();
    s->last_end = end;
    mline_feed(s->m, line, len, end, flags, 0, check_event, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = 8 + (data[0] & 63);
    size_t chunk = 1 + data[1];
    data += 2;
    size -= 2;
    struct lines l;
    struct mline m;
    if (lines_init(&l, max, 0) < 0)
        return 0;
    if (mline_init(&m, "^[A-Z]", 4 * max) < 0) {
        lines_free(&l);
        return 0;
    }
    struct st s = {.max = max, .m = &m, .fix = malloc(3 * 4 * max + 3)};
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        lines_feed(&l, (const char *)data + off, n, on_line, &s);
    }
    lines_finish(&l, on_line, &s);
    mline_flush(&m, check_event, &s);
    if (l.off != size)
        abort();
    /* Repair of the raw input too. */
    char *fix = malloc(3 * size + 1);
    size_t k = utf8_repair((const char *)data, size, fix);
    if (!utf8_valid(fix, k))
        abort();
    free(fix);
    free(s.fix);
    mline_free(&m);
    lines_free(&l);
    return 0;
}

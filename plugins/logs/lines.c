/* Line splitting, UTF-8 repair, multiline grouping and timestamp parsing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lines.h"

int lines_init(struct lines *l, size_t max_line, uint64_t off)
{
    if (max_line < 8)
        return -EINVAL;
    l->carry = malloc(max_line);
    if (!l->carry)
        return -ENOMEM;
    l->carry_len = 0;
    l->max_line = max_line;
    l->off = off;
    return 0;
}

void lines_free(struct lines *l)
{
    free(l->carry);
    l->carry = NULL;
    l->carry_len = 0;
}

void lines_reset(struct lines *l, uint64_t off)
{
    l->carry_len = 0;
    l->off = off;
}

/* Emits max_line bytes of the carry as a split piece, cut on a character
 * boundary so that both pieces stay valid UTF-8 when the line was. */
static void emit_piece(struct lines *l, lines_emit_fn emit, void *ud)
{
    size_t n = utf8_cut(l->carry, l->carry_len);
    if (n == 0)
        n = l->carry_len;
    /* The piece ends n bytes into the carry; the carry's last byte is at off. */
    uint64_t end = l->off - (l->carry_len - n);
    emit(ud, l->carry, n, end, LINES_SPLIT);
    memmove(l->carry, l->carry + n, l->carry_len - n);
    l->carry_len -= n;
}

void lines_feed(struct lines *l, const char *data, size_t len, lines_emit_fn emit, void *ud)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (l->carry_len == 0 && nl && take <= l->max_line) {
            /* The fast path: a whole line in the input, no copy. */
            l->off += take + 1;
            emit(ud, data, take, l->off, 0);
            data += take + 1;
            len -= take + 1;
            continue;
        }
        /* Append to the carry as much as fits; cut a piece when it is full. */
        size_t room = l->max_line - l->carry_len;
        size_t n = take < room ? take : room;
        memcpy(l->carry + l->carry_len, data, n);
        l->carry_len += n;
        l->off += n;
        data += n;
        len -= n;
        if (n < take) {
            /* More of the line than fits: a full carry is cut, unless the
             * line ends right there (checked on the next byte). */
            emit_piece(l, emit, ud);
            continue;
        }
        if (nl && n == take) {
            l->off += 1;
            data += 1;
            len -= 1;
            emit(ud, l->carry, l->carry_len, l->off, 0);
            l->carry_len = 0;
        }
    }
}

void lines_finish(struct lines *l, lines_emit_fn emit, void *ud)
{
    if (l->carry_len == 0)
        return;
    emit(ud, l->carry, l->carry_len, l->off, 0);
    l->carry_len = 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xc2)
        return 0;
    if (c < 0xe0) {
        if (n < 2 || (s[1] & 0xc0) != 0x80)
            return 0;
        return 2;
    }
    if (c < 0xf0) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)
            return 0; /* overlong */
        if (c == 0xed && s[1] >= 0xa0)
            return 0; /* surrogate */
        return 3;
    }
    if (c < 0xf5) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xf4 && s[1] >= 0x90)
            return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

bool utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* ASCII runs dominate logs: check eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        size_t k = seq_len(s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

size_t utf8_repair(const char *str, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t k = seq_len(s + i, n - i);
        if (k == 0) {
            /* One U+FFFD per bad byte: simple, and never loses the count of
             * what was there. */
            out[o++] = (char)0xef;
            out[o++] = (char)0xbf;
            out[o++] = (char)0xbd;
            i++;
            continue;
        }
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
    }
    return o;
}

size_t utf8_cut(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    /* Look back at most 3 bytes for the lead byte of the last sequence. */
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned c = s[n - back];
        if ((c & 0xc0) == 0x80)
            continue; /* continuation byte */
        size_t want = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return want > back ? n - back : n;
    }
    return n;
}

int mline_init(struct mline *m, const char *pattern, size_t max)
{
    memset(m, 0, sizeof(*m));
    if (!pattern)
        return 0;
    if (regcomp(&m->re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return -EINVAL;
    m->buf = malloc(max);
    m->scratch = malloc(max + 1);
    if (!m->buf || !m->scratch) {
        free(m->buf);
        free(m->scratch);
        regfree(&m->re);
        return -ENOMEM;
    }
    m->max = max;
    m->on = true;
    return 0;
}

void mline_free(struct mline *m)
{
    if (m->on) {
        regfree(&m->re);
        free(m->buf);
        free(m->scratch);
    }
    memset(m, 0, sizeof(*m));
}

void mline_flush(struct mline *m, lines_emit_fn emit, void *ud)
{
    if (!m->have)
        return;
    m->have = false;
    emit(ud, m->buf, m->len, m->end_off, 0);
    m->len = 0;
}

static bool is_start(struct mline *m, const char *line, size_t len)
{
    /* A NUL-terminated copy: REG_STARTEND would avoid it, but sanitizers'
     * regexec interceptors read up to a NUL regardless. */
    size_t n = len < m->max ? len : m->max;
    memcpy(m->scratch, line, n);
    m->scratch[n] = '\0';
    return regexec(&m->re, m->scratch, 0, NULL, 0) == 0;
}

static void start_record(struct mline *m, const char *line, size_t len, uint64_t end_off,
                         uint64_t now_ms)
{
    size_t n = len < m->max ? len : m->max;
    memcpy(m->buf, line, n);
    m->len = n;
    m->end_off = end_off;
    m->have = true;
    m->started_ms = now_ms;
}

void mline_feed(struct mline *m, const char *line, size_t len, uint64_t end_off, unsigned flags,
                uint64_t now_ms, lines_emit_fn emit, void *ud)
{
    if (!m->on) {
        emit(ud, line, len, end_off, flags);
        return;
    }
    /* A split piece is too long to group: it goes out on its own. */
    if (flags & LINES_SPLIT) {
        mline_flush(m, emit, ud);
        emit(ud, line, len, end_off, flags);
        return;
    }
    if (!m->have || is_start(m, line, len) || m->len + 1 + len > m->max) {
        mline_flush(m, emit, ud);
        if (len > m->max) {
            emit(ud, line, len, end_off, flags);
            return;
        }
        start_record(m, line, len, end_off, now_ms);
        return;
    }
    m->buf[m->len++] = '\n';
    memcpy(m->buf + m->len, line, len);
    m->len += len;
    m->end_off = end_off;
}

bool mline_due(const struct mline *m, uint64_t now_ms, uint64_t timeout_ms)
{
    return m->have && now_ms >= m->started_ms + timeout_ms;
}

int lines_parse_time(const char *fmt, const char *s, size_t n, int64_t now_ms, int64_t *ret_ms)
{
    char buf[160];
    size_t k = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;
    memcpy(buf, s, k);
    buf[k] = '\0';

    time_t now = (time_t)(now_ms / 1000);
    struct tm cur;
    gmtime_r(&now, &cur);
    struct tm tm = {.tm_year = cur.tm_year, .tm_mday = 1};
    tm.tm_gmtoff = 0;
    const char *end = strptime(buf, fmt, &tm);
    if (!end)
        return -EINVAL;
    long gmtoff = tm.tm_gmtoff;
    tm.tm_isdst = 0;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
        return -EINVAL;
    int64_t ms = ((int64_t)t - gmtoff) * 1000;
    if ((*end == '.' || *end == ',') && end[1] >= '0' && end[1] <= '9') {
        int scale = 100;
        for (const char *p = end + 1; *p >= '0' && *p <= '9'; p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    *ret_ms = ms;
    return 0;
}

/* Line assembly for the logs plugin: splitting a byte stream on '\n' with a
 * maximum line length, repairing invalid UTF-8, grouping multiline records by a
 * start pattern, and parsing timestamps. Pure code: no loop, no host calls, so
 * it is unit tested and fuzzed on its own. */
#ifndef LOGS_LINES_H
#define LOGS_LINES_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Flag of an emitted piece: a line longer than the maximum was cut here and
 * more of it follows. The event built from it carries LINES_SPLIT_MARK. */
#define LINES_SPLIT          0x1u
#define LINES_SPLIT_MARK     " [split]"
#define LINES_SPLIT_MARK_LEN (sizeof(LINES_SPLIT_MARK) - 1)

/* Called for each line (without its '\n') or piece. end_off is the stream
 * offset just past what was consumed for it (past the '\n' for a whole line),
 * which is where reading resumes once the line is delivered. */
typedef void (*lines_emit_fn)(void *ud, const char *line, size_t len, uint64_t end_off,
                              unsigned flags);

struct lines {
    char *carry; /* the partial line so far; capacity max_line */
    size_t carry_len;
    size_t max_line;
    uint64_t off; /* stream offset of the end of what was fed */
};

/* max_line >= 8. Returns 0 or -ENOMEM. */
int lines_init(struct lines *l, size_t max_line, uint64_t off);
void lines_free(struct lines *l);
/* Drops the partial line and restarts at offset off (a truncated file). */
void lines_reset(struct lines *l, uint64_t off);
/* Feeds the next len bytes of the stream. */
void lines_feed(struct lines *l, const char *data, size_t len, lines_emit_fn emit, void *ud);
/* Emits the partial line, if any (the end of a file that will not grow). */
void lines_finish(struct lines *l, lines_emit_fn emit, void *ud);

/* Whether s[0..n) is valid UTF-8 (no overlongs, surrogates, or > U+10FFFF). */
bool utf8_valid(const char *s, size_t n);
/* Writes s with every invalid sequence replaced by U+FFFD into out, which
 * holds at least 3 * n bytes. Returns the length written. */
size_t utf8_repair(const char *s, size_t n, char *out);
/* The length of the longest prefix of s[0..n) that does not end inside a
 * UTF-8 sequence that continues past n (so a cut there keeps characters whole). */
size_t utf8_cut(const char *s, size_t n);

/* Multiline grouping: a line matching the start pattern begins a record; the
 * lines that follow (not matching) are appended with '\n' between them. */
struct mline {
    bool on;
    regex_t re;
    char *buf;     /* capacity max */
    char *scratch; /* capacity max + 1: a line as a C string for regexec */
    size_t len, max;
    uint64_t end_off;
    bool have;
    uint64_t started_ms; /* caller's clock when the record began (flush timeout) */
};

/* pattern NULL: grouping off (lines pass through). Returns 0, -EINVAL for a
 * bad pattern, -ENOMEM. */
int mline_init(struct mline *m, const char *pattern, size_t max);
void mline_free(struct mline *m);
/* Feeds one line; emits the previous record when this one starts a new one.
 * now_ms stamps a record's start for mline_due(). */
void mline_feed(struct mline *m, const char *line, size_t len, uint64_t end_off, unsigned flags,
                uint64_t now_ms, lines_emit_fn emit, void *ud);
/* Emits the pending record, if any. */
void mline_flush(struct mline *m, lines_emit_fn emit, void *ud);
/* Whether a pending record has waited at least timeout_ms. */
bool mline_due(const struct mline *m, uint64_t now_ms, uint64_t timeout_ms);

/* Parses a timestamp at the start of s with a strptime format; a fraction of
 * a second (".123" or ",123") right after the parsed text is honoured, as is
 * %z. Without %Y the current year is assumed. Times are UTC unless %z says
 * otherwise. Returns 0 and *ret_ms (ms since the epoch), or -EINVAL. */
int lines_parse_time(const char *fmt, const char *s, size_t n, int64_t now_ms, int64_t *ret_ms);

#endif

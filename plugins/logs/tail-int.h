/* Internals shared by the file source's two halves: tail.c (reading,
 * rotation, truncation, timers) and tail-files.c (discovery by glob, file
 * identity, watches, checkpoint entries). */
#ifndef LOGS_TAIL_INT_H
#define LOGS_TAIL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lines.h"
#include "logs.h"

#define FP_MAX        1024
#define READ_BUF      (256 * 1024)
#define MAX_WATCHES   64
#define KICK_DELAY_MS 5

struct tail_file {
    struct src src;
    struct tail *t;
    struct tail_file *next;
    char *path;
    int fd; /* -1 once closed */
    dev_t dev;
    ino_t ino;
    uint64_t fp;
    uint32_t fp_len;
    uint64_t read_off;
    struct lines lines;
    struct mline ml;
    bool orphan;  /* no longer at a matched path: read to its end, then closed */
    bool dormant; /* closed after close_inactive at its end; reopened when it grows */
    bool seen;
    bool eof;
    uint64_t eof_since;
    uint64_t flush_mark; /* size when the flush began: what it must ship */
};

struct ck_entry {
    struct ck_entry *next;
    char *path;
    dev_t dev;
    ino_t ino;
    uint64_t fp;
    uint32_t fp_len;
    uint64_t off;
};

struct watch {
    uv_fs_event_t h;
    struct tail *t;
    struct watch *next;
    char dir[];
};

struct tail {
    struct pipeline *p;
    struct tail_file *files;
    unsigned n_open;
    struct ck_entry *restored;
    bool first_start; /* no checkpoint: start_at applies to files present now */
    bool scanned;
    struct watch *watches;
    unsigned n_watches;
    uv_timer_t rescan, kick;
    bool timers_closed;
    bool need_scan;
    uv_fs_t req;
    bool reading;
    struct tail_file *rf;
    char *buf;
    bool stopped;
    bool warned_cap;
    uint64_t warned_link[32]; /* path hashes refused as links, warned once each */
    unsigned n_warned_link;
    uint64_t now_ms;
    size_t pushed;      /* events queued by the current chunk */
    json_t *unreadable; /* tail-access.c: the problems of the last scan */
};

/* tail-access.c: probes every pattern (see there) and returns a JSON array
 * of {pattern, path, error, errno[, blocked_by, mode, uid, gid]}. */
json_t *tail_access_probe(const char *const *patterns, size_t n, bool follow);
/* Probes t's patterns after a scan; logs problems that appeared, changed or
 * cleared, and keeps the list in t->unreadable. */
void tail_access_update(struct tail *t);

struct want {
    dev_t dev;
    ino_t ino; /* 0: any inode */
    uint64_t fp;
    uint32_t fp_len;
    uint64_t min_size;
};

uint64_t tail_fnv(const char *s, size_t n);
/* Fingerprint of the first up to FP_MAX bytes of fd. */
int tail_fingerprint(int fd, uint64_t *ret_fp, uint32_t *ret_len);
/* Whether fd still starts with the fingerprinted bytes; extends a short
 * fingerprint as the file grows. */
bool tail_same_content(int fd, uint64_t *fp, uint32_t *fp_len);
/* A new source for the open fd of path, read from off; NULL on ENOMEM. */
struct tail_file *tail_file_new(struct tail *t, const char *path, int fd, const struct stat *st,
                                uint64_t off, bool orphan);
void tail_file_close(struct tail_file *f);
void tail_file_free(struct tail_file *f);
struct tail_file *tail_find_open(struct tail *t, dev_t dev, ino_t ino);
/* A file in dir that is not open and matches w; its fd and path, or -1. */
int tail_find_in_dir(struct tail *t, const char *dir, const struct want *w, char *path, size_t size,
                     struct stat *ret_st);
void tail_dir_of(const char *path, char *buf, size_t size);
/* Evaluates the globs: new files opened, vanished ones marked rotated. */
void tail_scan(struct tail *t);
int tail_parse_restored(struct tail *t, json_t *files);
void tail_ck_free(struct ck_entry *e);
void tail_on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status);

#endif

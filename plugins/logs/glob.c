/* Glob matching and walking with "**". */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "glob.h"

#define MAX_SEGS 64

bool glob_has_magic(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

struct segs {
    size_t n;
    char *v[MAX_SEGS];
    char buf[PATH_MAX];
};

/* Splits an absolute path into its non-empty segments. */
static int split(const char *path, struct segs *s)
{
    size_t len = strlen(path);
    if (len >= sizeof(s->buf))
        return -ENAMETOOLONG;
    memcpy(s->buf, path, len + 1);
    s->n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(s->buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (s->n == MAX_SEGS)
            return -ENAMETOOLONG;
        s->v[s->n++] = tok;
    }
    return 0;
}

static bool match_from(char **pat, size_t np, char **path, size_t nq)
{
    if (np == 0)
        return nq == 0;
    if (strcmp(pat[0], "**") == 0) {
        for (size_t skip = 0; skip <= nq; skip++)
            if (match_from(pat + 1, np - 1, path + skip, nq - skip))
                return true;
        return false;
    }
    if (nq == 0 || fnmatch(pat[0], path[0], FNM_PERIOD) != 0)
        return false;
    return match_from(pat + 1, np - 1, path + 1, nq - 1);
}

bool glob_match(const char *pattern, const char *path)
{
    static struct segs p, q; /* loop thread only; keeps big buffers off the stack */
    if (split(pattern, &p) < 0 || split(path, &q) < 0)
        return false;
    return match_from(p.v, p.n, q.v, q.n);
}

int glob_base_dir(const char *pattern, char *buf, size_t size)
{
    size_t end = 0; /* length of the prefix up to the last '/' before magic */
    for (size_t i = 0; pattern[i]; i++) {
        if (strchr("*?[", pattern[i]))
            break;
        if (pattern[i] == '/')
            end = i;
    }
    if (end == 0)
        end = 1; /* "/" */
    if (end >= size)
        return -ENAMETOOLONG;
    memcpy(buf, pattern, end);
    buf[end] = '\0';
    return 0;
}

struct walk {
    glob_fn fn;
    void *ud;
    bool follow;
    char path[PATH_MAX];
};

/* stat, or lstat when symbolic links are not followed (a link then shows as
 * S_IFLNK and matches neither a file nor a directory). */
static int wstat(const struct walk *w, struct stat *st)
{
    return w->follow ? stat(w->path, st) : lstat(w->path, st);
}

static bool is_dir_nofollow(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* past_magic: a segment with magic was walked, so the directories from here
 * on were found, not named by the admin, and may have been planted. */
static int walk(struct walk *w, size_t plen, char **pat, size_t np, unsigned depth, bool past_magic)
{
    if (np == 0) {
        struct stat st;
        if (wstat(w, &st) < 0)
            return 0;
        if (S_ISREG(st.st_mode))
            return w->fn(w->path, false, w->ud);
        if (S_ISLNK(st.st_mode))
            return w->fn(w->path, true, w->ud);
        return 0;
    }
    if (depth > GLOB_MAX_DEPTH)
        return 0;
    bool globstar = strcmp(pat[0], "**") == 0;
    if (globstar) {
        /* "**" as zero directories. */
        int r = walk(w, plen, pat + 1, np - 1, depth, true);
        if (r < 0)
            return r;
    } else if (!glob_has_magic(pat[0])) {
        size_t k = strlen(pat[0]);
        if (plen + 1 + k >= sizeof(w->path))
            return 0;
        w->path[plen] = '/';
        memcpy(w->path + plen + 1, pat[0], k + 1);
        int r = 0;
        if (np == 1 || !past_magic || w->follow || is_dir_nofollow(w->path))
            r = walk(w, plen + 1 + k, pat + 1, np - 1, depth + 1, past_magic);
        w->path[plen] = '\0';
        return r;
    }
    DIR *d = opendir(plen ? w->path : "/");
    if (!d)
        return 0;
    int r = 0;
    struct dirent *de;
    while (r >= 0 && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (globstar && de->d_name[0] == '.')
            continue;
        if (!globstar && fnmatch(pat[0], de->d_name, FNM_PERIOD) != 0)
            continue;
        size_t k = strlen(de->d_name);
        if (plen + 1 + k >= sizeof(w->path))
            continue;
        w->path[plen] = '/';
        memcpy(w->path + plen + 1, de->d_name, k + 1);
        if (globstar) {
            struct stat st;
            if (wstat(w, &st) == 0 && S_ISDIR(st.st_mode))
                r = walk(w, plen + 1 + k, pat, np, depth + 1, true);
            else if (!w->follow && S_ISLNK(st.st_mode) && stat(w->path, &st) == 0 &&
                     S_ISDIR(st.st_mode))
                r = w->fn(w->path, true,
                          w->ud); /* a link to a file is reported by the next segment */
        } else if (de->d_type == DT_LNK && !w->follow) {
            r = w->fn(w->path, true, w->ud);
        } else if (np == 1 || de->d_type == DT_DIR ||
                   ((de->d_type == DT_LNK || de->d_type == DT_UNKNOWN) && w->follow) ||
                   (de->d_type == DT_UNKNOWN && is_dir_nofollow(w->path))) {
            r = walk(w, plen + 1 + k, pat + 1, np - 1, depth + 1, true);
        }
        w->path[plen] = '\0';
    }
    closedir(d);
    return r;
}

int glob_walk(const char *pattern, bool follow, glob_fn fn, void *ud)
{
    struct segs p;
    struct walk w = {.fn = fn, .ud = ud, .follow = follow};
    if (pattern[0] != '/')
        return -EINVAL;
    int r = split(pattern, &p);
    if (r < 0)
        return r;
    w.path[0] = '\0';
    return walk(&w, 0, p.v, p.n, 0, false);
}

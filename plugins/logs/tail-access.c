/* File sources that cannot be read are loud. After each scan every pattern
 * is probed: the directories on its fixed prefix must be searchable, the
 * deepest one readable (to list it), a literal path must exist and open,
 * and every file a glob matches must open. Each problem is logged once when
 * it appears or changes (path and errno, and the directory that blocks it),
 * once more when it clears; the pipeline's status lists the current ones
 * and its health check warns while there are any. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "glob.h"
#include "logs.h"
#include "tail-int.h"

#define MAX_PROBLEMS 64

struct access_ctx {
    json_t *out;
    const char *pattern;
};

static void add(json_t *out, const char *pattern, const char *path, int err, const char *blocker)
{
    if (json_array_size(out) >= MAX_PROBLEMS)
        return;
    json_t *o = json_pack("{s:s,s:s,s:s,s:i}", "pattern", pattern, "path", path, "error",
                          strerror(err), "errno", err);
    struct stat st;
    if (blocker && stat(blocker, &st) == 0) {
        json_object_set_new(o, "blocked_by", json_string(blocker));
        char mode[8];
        snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
        json_object_set_new(o, "mode", json_string(mode));
        json_object_set_new(o, "uid", json_integer((json_int_t)st.st_uid));
        json_object_set_new(o, "gid", json_integer((json_int_t)st.st_gid));
    }
    json_array_append_new(out, o);
}

static int on_file(const char *path, bool is_link, void *ud)
{
    struct access_ctx *a = ud;
    if (is_link)
        return 0; /* not read, by design: the scan warns about it */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    if (fd >= 0)
        close(fd);
    else if (errno != ENOENT) /* gone between the walk and the open: rotation */
        add(a->out, a->pattern, path, errno, path);
    return json_array_size(a->out) >= MAX_PROBLEMS ? -1 : 0;
}

/* The first directory on dir's way from "/" that we cannot search, or dir
 * itself when it cannot be listed. Returns 0 or -errno and the path. */
static int probe_dir(const char *dir, bool list, char *ret_path, size_t len)
{
    char buf[PATH_MAX];
    size_t n = strlen(dir);

    if (n >= sizeof(buf))
        return 0;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        struct stat st;
        int err = 0;
        if (stat(buf, &st) < 0)
            err = errno;
        else if (!S_ISDIR(st.st_mode))
            err = ENOTDIR;
        else if (access(buf, X_OK) < 0)
            err = errno;
        else if (c == '\0' && list && access(buf, R_OK) < 0)
            err = errno;
        if (err) {
            /* A missing directory is reported as itself; a directory we may
             * not enter blocks everything below it. */
            snprintf(ret_path, len, "%s", buf);
            return -err;
        }
        buf[i] = c;
    }
    return 0;
}

json_t *tail_access_probe(const char *const *patterns, size_t n, bool follow)
{
    json_t *out = json_array();
    char dir[PATH_MAX], blocker[PATH_MAX];

    for (size_t i = 0; i < n && out; i++) {
        const char *pat = patterns[i];
        bool magic = glob_has_magic(pat);
        if (glob_base_dir(pat, dir, sizeof(dir)) < 0)
            continue;
        int r = probe_dir(dir, magic, blocker, sizeof(blocker));
        if (r < 0) {
            add(out, pat, magic ? dir : pat, -r, blocker);
            continue;
        }
        if (!magic) {
            int fd = open(pat, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
            if (fd >= 0)
                close(fd);
            else
                add(out, pat, pat, errno, errno == ENOENT ? NULL : pat);
            continue;
        }
        struct access_ctx a = {.out = out, .pattern = pat};
        glob_walk(pat, follow, on_file, &a);
    }
    return out;
}

static const json_t *find(const json_t *arr, const json_t *o)
{
    size_t i;
    json_t *x;

    json_array_foreach(
        arr, i,
        x) if (json_equal(json_object_get(x, "path"), json_object_get(o, "path")) &&
               json_equal(json_object_get(x, "errno"), json_object_get(o, "errno"))) return x;
    return NULL;
}

/* The fix an admin would apply, by errno. */
static const char *hint(int err)
{
    switch (err) {
    case EACCES:
        return "give agentd's user read access: add it to the directory's group, or an ACL "
               "(setfacl -m u:agentd:rx DIR), and check the unit's ReadOnlyPaths/"
               "InaccessiblePaths sandbox";
    case ENOENT:
        return "the path does not exist (yet): check the pattern, or start the app that "
               "writes it";
    case ENOTDIR:
        return "a part of the path is not a directory: check the pattern";
    default:
        return "check the path and the unit's sandbox";
    }
}

void tail_access_update(struct tail *t)
{
    const struct logs_conf *c = t->p->conf;
    json_t *now =
        tail_access_probe((const char *const *)c->files.items, c->files.n, c->follow_symlinks);
    size_t i;
    json_t *o;

    if (!now)
        return;
    json_array_foreach(now, i, o)
    {
        if (find(t->unreadable, o))
            continue;
        const char *blk = json_string_value(json_object_get(o, "blocked_by"));
        const char *path = json_string_value(json_object_get(o, "path"));
        char why[PATH_MAX + 80] = "";
        if (blk)
            snprintf(why, sizeof(why), " ('%s' is mode %s, owner %lld:%lld)", blk,
                     json_string_value(json_object_get(o, "mode")),
                     (long long)json_integer_value(json_object_get(o, "uid")),
                     (long long)json_integer_value(json_object_get(o, "gid")));
        agentd_warning(t->p->ctx, "pipeline '%s': cannot read '%s' (pattern '%s'): %s%s; %s",
                       c->name, path, json_string_value(json_object_get(o, "pattern")),
                       json_string_value(json_object_get(o, "error")), why,
                       hint((int)json_integer_value(json_object_get(o, "errno"))));
    }
    json_array_foreach(t->unreadable, i, o) if (!find(now, o))
        agentd_notice(t->p->ctx, "pipeline '%s': '%s' is readable now", c->name,
                      json_string_value(json_object_get(o, "path")));
    json_decref(t->unreadable);
    t->unreadable = now;
}

const json_t *tail_unreadable(const struct tail *t)
{
    return t->unreadable;
}

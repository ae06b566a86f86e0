/* The state store: small durable records under STATE_DIRECTORY/<plugin>/,
 * replaced atomically (write a temp file, fsync it, rename it over the
 * record, fsync the directory) so a crash leaves either the old or the new
 * record, never a torn one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

#define RECORD_MAX (64u << 20)

static bool valid_record_name(const char *name)
{
    size_t n = 0;

    if (!name || name[0] == '\0' || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n <= 128;
}

static int mkdir_0700(const char *path)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

const char *agentd_state_dir(struct agentd_plugin_ctx *ctx)
{
    const char *base = host.cfg && host.cfg->core ? host.cfg->core->state_dir : NULL;
    const char *name;
    char path[PATH_MAX];

    if (!ctx)
        ctx = &host.core_ctx;
    if (ctx->state_path)
        return ctx->state_path;
    if (!base)
        return NULL;
    name = ctx->desc ? ctx->desc->name : "agentd";
    if (snprintf(path, sizeof(path), "%s/%s", base, name) >= (int)sizeof(path))
        return NULL;
    if (mkdir_0700(base) < 0 || mkdir_0700(path) < 0)
        return NULL;
    ctx->state_path = strdup(path);
    return ctx->state_path;
}

int state_write_at(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    const char *p = data;
    int fd, dfd, r = 0;

    if (!valid_record_name(name) || (!data && len))
        return -EINVAL;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        p += w;
        len -= (size_t)w;
    }
    if (r == 0 && fchmod(fd, 0600) < 0)
        r = -errno;
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    /* The rename is durable only once the directory entry is. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    if (fsync(dfd) < 0)
        r = -errno;
    close(dfd);
    return r;
}

int state_read_at(const char *dir, const char *name, void **ret_data, size_t *ret_len)
{
    char path[PATH_MAX];
    struct stat st;
    char *buf;
    size_t off = 0;
    int fd, r = 0;

    if (!valid_record_name(name) || !ret_data)
        return -EINVAL;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    /* A record is a regular file we wrote: a link or a FIFO someone put in
     * its place is refused, and must not block the loop in open(). */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > RECORD_MAX) {
        close(fd);
        return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    if (r < 0) {
        free(buf);
        return r;
    }
    buf[off] = '\0';
    *ret_data = buf;
    if (ret_len)
        *ret_len = off;
    return 0;
}

int state_remove_at(const char *dir, const char *name)
{
    char path[PATH_MAX];

    if (!valid_record_name(name))
        return -EINVAL;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    if (unlink(path) < 0)
        return -errno;
    return 0;
}

int agentd_state_write(struct agentd_plugin_ctx *ctx, const char *name, const void *data,
                       size_t len)
{
    const char *dir = agentd_state_dir(ctx);

    return dir ? state_write_at(dir, name, data, len) : -ENOENT;
}

int agentd_state_read(struct agentd_plugin_ctx *ctx, const char *name, void **ret_data,
                      size_t *ret_len)
{
    const char *dir = agentd_state_dir(ctx);

    return dir ? state_read_at(dir, name, ret_data, ret_len) : -ENOENT;
}

int agentd_state_remove(struct agentd_plugin_ctx *ctx, const char *name)
{
    const char *dir = agentd_state_dir(ctx);

    return dir ? state_remove_at(dir, name) : -ENOENT;
}

/* Child processes: spawned and reaped through libuv, output delivered line by
 * line. A child's callbacks end with one on_exit, after both its exit and the
 * end of its output, so a plugin sees every line before the exit status.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"

#define DEFAULT_MAX_LINE 4096
#define MAX_ARGS         256

struct agentd_child {
    uv_process_t proc;
    uv_pipe_t pipes[2]; /* stdout, stderr */
    struct agentd_plugin_ctx *ctx;
    void (*on_line)(struct agentd_child *, int, const char *, size_t, void *);
    void (*on_exit)(struct agentd_child *, int64_t, int, void *);
    void *ud;
    size_t max_line;
    bool group;
    char *line[2];
    size_t line_len[2];
    bool cutting[2];
    unsigned open_handles;
    unsigned pipes_open;
    bool exited, reported, detached;
    int64_t exit_status;
    int term_signal;
    pid_t pid;
    struct agentd_child *next;
};

static struct agentd_child *children;
static char helper_path[PATH_MAX];

static void unlink_child(struct agentd_child *c)
{
    for (struct agentd_child **pp = &children; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            return;
        }
    }
}

static void handle_closed(uv_handle_t *h)
{
    struct agentd_child *c = h->data;

    if (--c->open_handles == 0) {
        unlink_child(c);
        free(c->line[0]);
        free(c->line[1]);
        free(c);
    }
}

static void maybe_report(struct agentd_child *c)
{
    if (c->reported || !c->exited || c->pipes_open)
        return;
    c->reported = true;
    if (!c->detached && c->on_exit)
        c->on_exit(c, c->exit_status, c->term_signal, c->ud);
}

static void emit_line(struct agentd_child *c, int i)
{
    if (!c->detached && c->on_line) {
        c->line[i][c->line_len[i]] = '\0';
        c->on_line(c, i + 1, c->line[i], c->line_len[i], c->ud);
    }
    c->line_len[i] = 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[16384];

    /* The loop is single-threaded and lines are copied out of the chunk at
     * once, so one static read buffer serves every child. */
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct agentd_child *c = s->data;
    int i = (uv_pipe_t *)s == &c->pipes[0] ? 0 : 1;

    if (n < 0) {
        if (c->line_len[i]) /* a last line without its newline */
            emit_line(c, i);
        c->cutting[i] = false;
        uv_close((uv_handle_t *)s, handle_closed);
        c->pipes_open--;
        maybe_report(c);
        return;
    }
    for (ssize_t k = 0; k < n; k++) {
        char ch = buf->base[k];
        if (ch == '\n') {
            if (!(c->cutting[i] && c->line_len[i] == 0))
                emit_line(c, i);
            c->cutting[i] = false;
            continue;
        }
        if (c->cutting[i])
            continue;
        if (c->line_len[i] == c->max_line) {
            /* Deliver the cut line now and drop the rest up to the newline. */
            emit_line(c, i);
            c->cutting[i] = true;
            continue;
        }
        c->line[i][c->line_len[i]++] = ch;
    }
}

static void exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct agentd_child *c = p->data;

    c->exited = true;
    c->exit_status = status;
    c->term_signal = sig;
    uv_close((uv_handle_t *)p, handle_closed);
    maybe_report(c);
}

static const char *helper(void)
{
    char self[PATH_MAX];
    ssize_t n;

    if (helper_path[0])
        return helper_path;
    /* In the build tree the helper sits next to the agentd binary. */
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(helper_path, sizeof(helper_path), "%s/agentd-exec", self) <
                    (int)sizeof(helper_path) &&
                access(helper_path, X_OK) == 0)
                return helper_path;
        }
    }
    snprintf(helper_path, sizeof(helper_path), "%s/agentd-exec", AGENTD_LIBEXEC_DIR);
    return helper_path;
}

static const char *const default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    NULL,
};

int agentd_child_spawn(struct agentd_plugin_ctx *ctx, const struct agentd_child_opts *opts,
                       struct agentd_child **ret)
{
    const char *argv[MAX_ARGS + 3];
    char ppid[24];
    uv_stdio_container_t stdio[3];
    uv_process_options_t po = {0};
    struct agentd_child *c;
    size_t argc = 0, k = 0;
    int r;

    if (!opts || !opts->argv || !opts->argv[0])
        return -EINVAL;
    while (opts->argv[argc])
        if (++argc > MAX_ARGS)
            return -E2BIG;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->ctx = ctx;
    c->on_line = opts->on_line;
    c->on_exit = opts->on_exit;
    c->ud = opts->ud;
    c->group = opts->new_process_group;
    c->max_line = opts->max_line ? opts->max_line : DEFAULT_MAX_LINE;
    if (c->on_line) {
        c->line[0] = malloc(c->max_line + 1);
        c->line[1] = malloc(c->max_line + 1);
        if (!c->line[0] || !c->line[1]) {
            free(c->line[0]);
            free(c->line[1]);
            free(c);
            return -ENOMEM;
        }
    }

    if (opts->die_with_agentd) {
        /* The helper sets PR_SET_PDEATHSIG, checks agentd is still its
         * parent, then execs the real program. */
        snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
        argv[k++] = helper();
        argv[k++] = ppid;
    }
    for (size_t i = 0; i < argc; i++)
        argv[k++] = opts->argv[i];
    argv[k] = NULL;

    stdio[0].flags = UV_IGNORE;
    for (int i = 0; i < 2; i++) {
        if (c->on_line) {
            uv_pipe_init(host.loop, &c->pipes[i], 0);
            c->pipes[i].data = c;
            c->open_handles++;
            stdio[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
            stdio[i + 1].data.stream = (uv_stream_t *)&c->pipes[i];
        } else {
            stdio[i + 1].flags = UV_IGNORE;
        }
    }
    po.file = argv[0];
    po.args = (char **)argv;
    po.env = (char **)(opts->env ? opts->env : default_env);
    po.cwd = opts->cwd ? opts->cwd : "/";
    po.stdio = stdio;
    po.stdio_count = 3;
    po.exit_cb = exit_cb;
    if (opts->new_process_group)
        po.flags |= UV_PROCESS_DETACHED;
    c->proc.data = c;

    r = uv_spawn(host.loop, &c->proc, &po);
    c->next = children;
    children = c;
    if (r < 0) {
        /* uv_spawn initialised the process handle even on failure. */
        c->reported = true;
        c->detached = true;
        c->open_handles++;
        uv_close((uv_handle_t *)&c->proc, handle_closed);
        for (int i = 0; i < 2 && c->on_line; i++)
            uv_close((uv_handle_t *)&c->pipes[i], handle_closed);
        return r;
    }
    c->open_handles++;
    c->pid = c->proc.pid;
    for (int i = 0; i < 2 && c->on_line; i++) {
        c->pipes_open++;
        uv_read_start((uv_stream_t *)&c->pipes[i], alloc_cb, read_cb);
    }
    if (ret)
        *ret = c;
    return 0;
}

int agentd_child_kill(struct agentd_child *c, int signum)
{
    if (!c || c->exited)
        return -ESRCH;
    if (c->group && kill(-c->pid, signum) == 0)
        return 0;
    return uv_process_kill(&c->proc, signum);
}

pid_t agentd_child_pid(const struct agentd_child *c)
{
    return c ? c->pid : -1;
}

void agentd_child_detach(struct agentd_child *c)
{
    if (c)
        c->detached = true;
}

void child_close_all(void)
{
    for (struct agentd_child *c = children; c; c = c->next) {
        c->detached = true;
        if (!c->exited) {
            agentd_child_kill(c, SIGKILL);
            c->exited = true;
            uv_close((uv_handle_t *)&c->proc, handle_closed);
        }
        for (int i = 0; i < 2 && c->on_line; i++)
            if (!uv_is_closing((uv_handle_t *)&c->pipes[i])) {
                uv_close((uv_handle_t *)&c->pipes[i], handle_closed);
                c->pipes_open--;
            }
    }
}

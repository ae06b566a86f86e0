/* The control socket: a unix stream socket, mode 0660, whose peers are
 * checked with SO_PEERCRED (root, agentd's own user, or a member of
 * agentd.admin_group). Each connection reads JSON lines of at most 64 KiB;
 * a malformed line gets an error reply and the connection stays usable, an
 * oversized one is refused and the connection closed.
 *
 * An authorized peer cannot lock the others out: one uid other than root
 * holds at most MAX_PER_UID connections, a connection silent for IDLE_MS is
 * closed, and root is admitted past MAX_CONNS (into ROOT_RESERVE) so an
 * admin can always get in.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control-proto.h"
#include "host.h"

#define MAX_CONNS        64
#define ROOT_RESERVE     16
#define MAX_PER_UID      16
#define IDLE_MS          30000
#define SWEEP_MS         5000
#define MAX_PEER_GRP     256
#define MAX_QUEUED_REPLY (8u << 20)

struct conn {
    uv_pipe_t pipe;
    struct proto_framer framer;
    uid_t uid;
    uint64_t last; /* uv_now() of the last request or reply */
    bool closing;
    struct conn *next;
};

struct wreq {
    uv_write_t req;
    char *data;
    bool close_after;
};

static uv_pipe_t server;
static bool listening;
static char *socket_path;
static gid_t admin_gid;
static bool have_admin_gid;
static struct conn *conns;
static unsigned nconns;
static uv_timer_t sweep;
static bool sweep_on;

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    for (struct conn **pp = &conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    nconns--;
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = req->handle->data;

    if (w->close_after || status < 0)
        conn_close(c);
    free(w->data);
    free(w);
}

static void conn_send(struct conn *c, char *line, bool close_after)
{
    struct wreq *w;
    uv_buf_t b;

    if (!line || c->closing) {
        free(line);
        if (close_after)
            conn_close(c);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        free(line);
        conn_close(c);
        return;
    }
    w->data = line;
    w->close_after = close_after;
    b = uv_buf_init(line, (unsigned)strlen(line));
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, write_cb) < 0) {
        free(line);
        free(w);
        conn_close(c);
    }
}

static int on_line(char *line, size_t len, void *ud)
{
    struct conn *c = ud;
    struct proto_request req;
    json_t *root = NULL;
    char msg[256], *reply = NULL;

    if (len == 0)
        return 0;
    /* A peer that sends without reading would make replies pile up. */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > MAX_QUEUED_REPLY) {
        log_warning("control: peer does not read its replies; closing the connection");
        conn_close(c);
        return -ECONNABORTED;
    }
    if (proto_parse_request(line, len, &root, &req, msg, sizeof(msg)) < 0) {
        log_debug("control: %s", msg);
        conn_send(c, proto_reply_error(msg, NULL), false);
        return 0;
    }
    c->last = uv_now(host.loop);
    control_dispatch(&req, &reply);
    json_decref(root);
    conn_send(c, reply, false);
    return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[16384];

    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    int r;

    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->closing)
        return;
    r = proto_feed(&c->framer, buf->base, (size_t)n, on_line, c);
    if (r == -EMSGSIZE) {
        char msg[96];
        log_warning("control: request larger than %d bytes refused", CONTROL_MAX_REQUEST);
        snprintf(msg, sizeof(msg), "request too large (limit %d bytes)", CONTROL_MAX_REQUEST);
        uv_read_stop(s);
        conn_send(c, proto_reply_error(msg, NULL), true);
    }
}

/* Whether the peer may talk to us: root, our own user, or admin_group. */
static bool peer_allowed(int fd, struct ucred *cred)
{
    socklen_t len = sizeof(*cred);
    gid_t groups[MAX_PEER_GRP];

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0)
        return false;
    if (cred->uid == 0 || cred->uid == geteuid())
        return true;
    if (!have_admin_gid)
        return false;
    if (cred->gid == admin_gid)
        return true;
    len = sizeof(groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
            if (groups[i] == admin_gid)
                return true;
    }
    return false;
}

static void on_sweep(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop);

    for (struct conn *c = conns; c; c = c->next) {
        if (c->closing || now - c->last < IDLE_MS)
            continue;
        /* A reply still being written is not idleness. */
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > 0)
            continue;
        log_debug("control: closing a connection idle for %d s (uid %ld)", IDLE_MS / 1000,
                  (long)c->uid);
        conn_close(c);
    }
}

static unsigned conns_of(uid_t uid, const struct conn *except)
{
    unsigned n = 0;

    for (const struct conn *c = conns; c; c = c->next)
        if (c != except && !c->closing && c->uid == uid)
            n++;
    return n;
}

/* Why an authorized peer is turned away, or NULL to admit it. */
static const char *over_limit(const struct conn *c)
{
    if (c->uid == 0)
        return nconns > MAX_CONNS + ROOT_RESERVE ? "too many connections" : NULL;
    if (nconns > MAX_CONNS)
        return "too many connections";
    if (conns_of(c->uid, c) >= MAX_PER_UID)
        return "too many connections from this user";
    return NULL;
}

static void on_connection(uv_stream_t *srv, int status)
{
    const char *why;
    struct conn *c;
    struct ucred cred = {0};
    uv_os_fd_t fd;

    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    uv_pipe_init(host.loop, &c->pipe, 0);
    c->pipe.data = c;
    c->next = conns;
    conns = c;
    nconns++;
    if (uv_accept(srv, (uv_stream_t *)&c->pipe) < 0) {
        conn_close(c);
        return;
    }
    c->last = uv_now(host.loop);
    if (nconns > MAX_CONNS + ROOT_RESERVE) {
        log_warning("control: too many connections; refusing one");
        conn_send(c, proto_reply_error("too many connections", NULL), true);
        return;
    }
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 || !peer_allowed(fd, &cred)) {
        log_warning("control: permission denied for pid %ld uid %ld gid %ld", (long)cred.pid,
                    (long)cred.uid, (long)cred.gid);
        conn_send(c, proto_reply_error("permission denied", NULL), true);
        return;
    }
    c->uid = cred.uid;
    why = over_limit(c);
    if (why) {
        log_warning("control: %s (uid %ld); refusing one", why, (long)cred.uid);
        conn_send(c, proto_reply_error(why, NULL), true);
        return;
    }
    if (!sweep_on) {
        uv_timer_init(host.loop, &sweep);
        uv_timer_start(&sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        sweep_on = true;
    }
    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

static int make_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');

    if (!slash || slash == path)
        return 0;
    if ((size_t)(slash - path) >= sizeof(dir))
        return -ENAMETOOLONG;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int control_listen(uv_loop_t *loop, const char *path, const char *admin_group)
{
    struct stat st;
    mode_t old;
    int r;

    if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
        return -ENAMETOOLONG;
    have_admin_gid = false;
    if (admin_group) {
        /* Resolved once at startup: NSS lookups may block. */
        struct group *g = getgrnam(admin_group);
        if (!g)
            log_warning("control: admin_group '%s' does not exist; only root and agentd's own "
                        "user may connect",
                        admin_group);
        else {
            admin_gid = g->gr_gid;
            have_admin_gid = true;
        }
    }
    r = make_parent(path);
    if (r < 0)
        return r;
    /* A socket left by a previous run would make bind fail. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    r = uv_pipe_init(loop, &server, 0);
    if (r < 0)
        return r;
    old = umask(0117);
    r = uv_pipe_bind(&server, path);
    umask(old);
    if (r < 0) {
        uv_close((uv_handle_t *)&server, NULL);
        return r;
    }
    listening = true;
    chmod(path, 0660);
    if (have_admin_gid && chown(path, (uid_t)-1, admin_gid) < 0)
        log_warning("control: cannot give '%s' to group '%s': %s (agentd's user must be a "
                    "member of that group, e.g. SupplementaryGroups= in a unit drop-in)",
                    path, admin_group, strerror(errno));
    r = uv_listen((uv_stream_t *)&server, 16, on_connection);
    if (r < 0) {
        control_close();
        return r;
    }
    socket_path = strdup(path);
    return 0;
}

void control_close(void)
{
    for (struct conn *c = conns; c; c = c->next)
        conn_close(c);
    if (sweep_on) {
        sweep_on = false;
        uv_close((uv_handle_t *)&sweep, NULL);
    }
    if (listening) {
        listening = false;
        uv_close((uv_handle_t *)&server, NULL);
        if (socket_path)
            unlink(socket_path);
    }
    free(socket_path);
    socket_path = NULL;
}

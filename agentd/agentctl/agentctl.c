/* agentctl: the admin's client for agentd's control socket. A thin client:
 * it turns the command line into one request line, prints the reply (as
 * text, or as JSON with --json), and has no logic of its own.
 *
 * Exit codes: 0 ok, 1 the daemon answered with an error, 2 usage,
 * 3 agentd is not running, 78 reload refused because the configuration is
 * invalid (like agentd --check-config).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agentctl.h"
#include "control-proto.h"
#include "render.h"

#define DEFAULT_SOCKET "/run/agentd/control.sock"
#define REPLY_MAX      (64u << 20)
#define TIMEOUT_MS     120000

static bool json_out;

static const char *sock_path;

static void usage(FILE *f)
{
    fprintf(f, "Usage: agentctl [--socket PATH] [--json] COMMAND [ARGS...]\n"
               "Options may stand anywhere on the line; \"--\" ends them.\n"
               "\n"
               "Commands:\n"
               "  status               version, uptime, config, last reload, plugins\n"
               "  plugins              the plugins and their state\n"
               "  health               every health check and the overall status\n"
               "  metrics              Prometheus metrics\n"
               "  reload               reload the configuration (like SIGHUP)\n"
               "  check-config FILE    validate FILE (runs agentd --check-config)\n"
               "  verbs                the commands plugins offer\n"
               "  doctor               check what would stop each plugin, with causes and "
               "fixes\n"
               "  wait [--timeout D] [CHECK...]\n"
               "                       wait until the checks (default: every critical one) "
               "pass\n"
               "  help [PLUGIN [VERB]] this text, or a plugin's verbs\n"
               "  PLUGIN VERB [ARGS]   run a plugin's command\n");
}

static int connect_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "agentctl: socket path too long: %s\n", path);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one reply line; returns a new buffer or NULL. */
static char *read_line(int fd)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    while (buf) {
        if (len + 1 >= cap) {
            char *nb = cap * 2 > REPLY_MAX ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        int pr = poll(&pfd, 1, TIMEOUT_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            fprintf(stderr, "agentctl: no reply from agentd\n");
            break;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(buf + len - (size_t)n, '\n', (size_t)n)) {
            buf[len] = '\0';
            return buf;
        }
    }
    if (buf && len) {
        buf[len] = '\0';
        return buf;
    }
    free(buf);
    return NULL;
}

void print_verbs(FILE *f, const json_t *verbs, const char *only)
{
    size_t i, w = 0;
    json_t *v;
    char name[160];

    json_array_foreach(verbs, i, v)
    {
        snprintf(name, sizeof(name), "%s %s", str(v, "plugin"), str(v, "verb"));
        if ((!only || strcmp(only, str(v, "plugin")) == 0) && strlen(name) > w)
            w = strlen(name);
    }
    json_array_foreach(verbs, i, v)
    {
        if (only && strcmp(only, str(v, "plugin")) != 0)
            continue;
        snprintf(name, sizeof(name), "%s %s", str(v, "plugin"), str(v, "verb"));
        fprintf(f, "  %-*s  %s\n", (int)w, name, str(v, "help"));
    }
}

void print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

    if (s)
        printf("%s\n", s);
    free(s);
}

const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static void print_plugins(const json_t *arr, bool with_summary)
{
    size_t i;
    json_t *p;

    json_array_foreach(arr, i, p)
    {
        const char *extra = *str(p, "error") ? str(p, "error") : str(p, "summary");
        if (!with_summary)
            extra = *str(p, "description") ? str(p, "description") : extra;
        printf("  %-14s %-9s %s\n", str(p, "name"), str(p, "state"), extra);
    }
}

static void print_human(const char *cmd, const json_t *r)
{
    if (strcmp(cmd, "verbs") == 0) {
        print_verbs(stdout, r, NULL);
        return;
    }
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "reload") == 0) {
        const json_t *rl = json_object_get(r, "reload");
        printf("agentd %s, up %llds, %s\n", str(r, "version"),
               (long long)json_integer_value(json_object_get(r, "uptime_s")), str(r, "summary"));
        printf("config: %s\n", str(r, "config"));
        if (json_is_integer(json_object_get(rl, "time"))) {
            time_t t = (time_t)json_integer_value(json_object_get(rl, "time"));
            char when[64];
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
            printf("last reload: %s at %s\n",
                   json_is_true(json_object_get(rl, "ok")) ? "ok"
                                                           : "FAILED (running the "
                                                             "previous configuration)",
                   when);
            size_t i;
            json_t *e;
            json_array_foreach(json_object_get(rl, "errors"), i, e)
                printf("  %s\n", json_string_value(e));
        }
        printf("plugins:\n");
        print_plugins(json_object_get(r, "plugins"), true);
    } else if (strcmp(cmd, "plugins") == 0) {
        print_plugins(r, false);
    } else if (strcmp(cmd, "health") == 0) {
        size_t i;
        json_t *c;
        printf("overall: %s%s\n", str(r, "status"),
               json_is_true(json_object_get(r, "draining")) ? " (draining)" : "");
        json_array_foreach(json_object_get(r, "checks"), i, c)
            printf("  %-4s %-28s %s%s\n", str(c, "status"), str(c, "name"), str(c, "output"),
                   json_is_true(json_object_get(c, "critical")) ? "" : " (non-critical)");
    } else if (strcmp(cmd, "metrics") == 0) {
        fputs(json_string_value(r) ? json_string_value(r) : "", stdout);
    } else {
        render_text(stdout, r);
    }
}

/* check-config runs locally: agentd next to us (build tree), else installed. */
static int check_config(const char *self, const char *file)
{
    char path[PATH_MAX], exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    (void)self;
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(path, sizeof(path), "%s/../agentd", exe) < (int)sizeof(path) &&
                access(path, X_OK) == 0)
                execl(path, "agentd", "--check-config", "-c", file, (char *)NULL);
        }
    }
    snprintf(path, sizeof(path), "%s/agentd", AGENTD_SBINDIR);
    execl(path, "agentd", "--check-config", "-c", file, (char *)NULL);
    fprintf(stderr, "agentctl: cannot run %s: %s\n", path, strerror(errno));
    return 1;
}

static bool is_builtin(const char *cmd, int nargs)
{
    static const char *const cmds[] = {"status", "plugins", "metrics", "reload", "verbs", NULL};

    if (strcmp(cmd, "health") == 0)
        return nargs == 0; /* "health VERB" is the health plugin's verb */
    for (size_t i = 0; cmds[i]; i++)
        if (strcmp(cmd, cmds[i]) == 0)
            return true;
    return false;
}

int ctl_call(const char *path, const json_t *req, json_t **ret_reply, bool quiet)
{
    char *text, *line;
    json_t *reply;
    int fd = connect_socket(path);

    if (fd < 0) {
        if (!quiet && (fd == -ENOENT || fd == -ECONNREFUSED))
            fprintf(stderr, "agentd is not running (no socket at %s)\n", path);
        else if (!quiet)
            fprintf(stderr, "agentctl: cannot connect to %s: %s\n", path, strerror(-fd));
        return fd;
    }
    text = json_dumps(req, JSON_COMPACT);
    if (!text) {
        close(fd);
        return -ENOMEM;
    }
    /* A refused peer may be cut off before it writes; its reply ("permission
     * denied") is still waiting to be read, so read it even then. */
    if (send_all(fd, text, strlen(text)) == 0)
        send_all(fd, "\n", 1);
    free(text);
    line = read_line(fd);
    close(fd);
    if (!line) {
        if (!quiet)
            fprintf(stderr, "agentctl: agentd closed the connection without a reply\n");
        return -EPIPE;
    }
    reply = json_loads(line, 0, NULL);
    free(line);
    if (!json_is_object(reply)) {
        if (!quiet)
            fprintf(stderr, "agentctl: malformed reply from agentd\n");
        json_decref(reply);
        return -EBADMSG;
    }
    *ret_reply = reply;
    return 0;
}

/* "agentctl help [PLUGIN [VERB]]": the usage text and the verbs the running
 * daemon offers (it supplies their one-line descriptions). */
static int cmd_help(int argc, char **argv)
{
    json_t *req = json_pack("{s:i,s:s}", "v", CONTROL_PROTO_VERSION, "cmd", "verbs");
    json_t *reply = NULL, *verbs, *v;
    const char *plugin = argc > 0 ? argv[0] : NULL, *verb = argc > 1 ? argv[1] : NULL;
    size_t i;
    int r = ctl_call(sock_path, req, &reply, true);

    json_decref(req);
    if (!plugin)
        usage(stdout);
    if (r < 0 || !json_is_true(json_object_get(reply, "ok"))) {
        json_decref(reply);
        if (plugin) {
            fprintf(stderr, "agentctl: agentd is not running; its plugins' verbs are unknown\n");
            return 3;
        }
        printf("\n(agentd is not running: its plugins' verbs are not listed)\n");
        return 0;
    }
    verbs = json_object_get(reply, "result");
    if (!plugin) {
        printf("\nPlugin verbs (agentctl PLUGIN VERB [ARGS]):\n");
        print_verbs(stdout, verbs, NULL);
        json_decref(reply);
        return 0;
    }
    bool found = false;
    json_array_foreach(verbs, i, v)
    {
        if (strcmp(str(v, "plugin"), plugin) != 0 || (verb && strcmp(str(v, "verb"), verb) != 0))
            continue;
        if (!found && !verb)
            printf("Verbs of %s (agentctl %s VERB [ARGS]):\n", plugin, plugin);
        if (verb)
            printf("agentctl %s %s: %s\n", plugin, verb, str(v, "help"));
        else
            printf("  %-12s %s\n", str(v, "verb"), str(v, "help"));
        found = true;
    }
    json_decref(reply);
    if (!found) {
        if (verb)
            fprintf(stderr, "agentctl: plugin '%s' has no verb '%s'\n", plugin, verb);
        else
            fprintf(stderr, "agentctl: no running plugin '%s' offers verbs\n", plugin);
        return 1;
    }
    return 0;
}

/* Options may stand anywhere on the line, so "agentctl status --json" works:
 * agentctl's own options are taken out and everything else stays in order
 * as the command and its arguments. "--" ends option parsing; "--timeout"
 * belongs to wait and is left for it. Other words that start with "-" are
 * usage errors before a plugin's verb and the verb's arguments after it
 * ("agentctl probe spawn sh -c ..."). Returns the number of words left in
 * argv, or -1 on a usage error. */
static int parse_options(int argc, char **argv, bool *ret_help)
{
    int n = 0;
    bool opts = true;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts && strcmp(a, "--") == 0) {
            opts = false;
        } else if (opts && (strcmp(a, "--json") == 0 || strcmp(a, "-j") == 0)) {
            json_out = true;
        } else if (opts && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            *ret_help = true;
        } else if (opts && (strcmp(a, "--socket") == 0 || strcmp(a, "-s") == 0)) {
            if (++i >= argc) {
                fprintf(stderr, "agentctl: %s needs a path\n", a);
                return -1;
            }
            sock_path = argv[i];
        } else if (opts && strncmp(a, "--socket=", 9) == 0) {
            sock_path = a + 9;
        } else if (opts && (strcmp(a, "--timeout") == 0 || strncmp(a, "--timeout=", 10) == 0)) {
            argv[n++] = argv[i];
            if (strcmp(a, "--timeout") == 0 && i + 1 < argc)
                argv[n++] = argv[++i];
        } else if (opts && a[0] == '-' && a[1] != '\0' && n < 2) {
            fprintf(stderr, "agentctl: unknown option '%s'\n", a);
            return -1;
        } else {
            argv[n++] = argv[i];
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    json_t *req, *reply, *args;
    bool help = false;
    int rc, r;

    sock_path = getenv("AGENTCTL_SOCKET");
    if (!sock_path)
        sock_path = DEFAULT_SOCKET;
    int nw = parse_options(argc, argv, &help);
    if (nw < 0) {
        usage(stderr);
        return 2;
    }
    if (help && nw == 0)
        return cmd_help(0, NULL);
    if (nw == 0) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[0];
    int nargs = nw - 1;
    if (strcmp(cmd, "help") == 0)
        return cmd_help(nargs, argv + 1);
    if (help)
        return cmd_help(nw, argv);
    if (strcmp(cmd, "doctor") == 0) {
        if (nargs) {
            usage(stderr);
            return 2;
        }
        return cmd_doctor(sock_path, json_out);
    }
    if (strcmp(cmd, "wait") == 0)
        return cmd_wait(sock_path, nargs, argv + 1, json_out);
    for (int i = 0; i < nw; i++)
        if (strncmp(argv[i], "--timeout", 9) == 0) {
            fprintf(stderr, "agentctl: --timeout belongs to wait\n");
            usage(stderr);
            return 2;
        }
    if (strcmp(cmd, "check-config") == 0) {
        if (nargs != 1) {
            usage(stderr);
            return 2;
        }
        return check_config(argv[0], argv[1]);
    }
    if (is_builtin(cmd, nargs)) {
        if (nargs) {
            usage(stderr);
            return 2;
        }
        req = json_pack("{s:i,s:s}", "v", CONTROL_PROTO_VERSION, "cmd", cmd);
    } else {
        /* "agentctl tunnel" alone means "agentctl tunnel status": every plugin
         * that has verbs offers status. */
        const char *verb = nargs >= 1 ? argv[1] : "status";
        args = json_array();
        for (int i = 2; i < nw; i++)
            json_array_append_new(args, json_string(argv[i]));
        req = json_pack("{s:i,s:s,s:s,s:s,s:o}", "v", CONTROL_PROTO_VERSION, "cmd", "plugin",
                        "plugin", cmd, "verb", verb, "args", args);
    }

    r = ctl_call(sock_path, req, &reply, false);
    json_decref(req);
    if (r < 0)
        return r == -ENOENT || r == -ECONNREFUSED ? 3 : 1;
    if (json_is_true(json_object_get(reply, "ok"))) {
        json_t *result = json_object_get(reply, "result");
        if (json_out)
            print_json(result);
        else
            print_human(cmd, result);
        rc = 0;
    } else {
        json_t *errors = json_object_get(reply, "errors");
        if (json_out) {
            print_json(reply);
        } else {
            size_t i;
            json_t *e;
            fprintf(stderr, "agentctl: %s\n", str(reply, "error"));
            json_array_foreach(errors, i, e) fprintf(stderr, "%s\n", json_string_value(e));
        }
        rc = strcmp(cmd, "reload") == 0 && json_array_size(errors) ? 78 : 1;
    }
    json_decref(reply);
    return rc;
}

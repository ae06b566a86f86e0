/* tunnel plugin: what ssh's stderr says.
 *
 * ssh reports a forward's success only in its -v debug output, and its
 * errors only as free text, so the state machine is driven by matching the
 * lines of OpenSSH (checked against 9.2p1):
 *
 *   debug1: Local forwarding listening on 127.0.0.1 port 8080.
 *   debug1: remote forward success for: listen 127.0.0.1:15240, connect 127.0.0.1:3306
 *   debug1: remote forward failure for: listen 15240, connect 127.0.0.1:3306
 *   Allocated port 43499 for remote forward to 127.0.0.1:80
 *   Error: remote port forwarding failed for listen port 15240
 *   Permissions 0644 for '/k/id' are too open.
 *   Host key for [h]:2222 has changed and you have requested strict checking.
 *   user@h: Permission denied (publickey).
 *
 * One failed attempt prints several of these (a key with bad permissions
 * also ends in "Permission denied"), so each error has a priority and the
 * state machine keeps the most specific one.
 */
#include <string.h>

#include "tunnel.h"

struct pattern {
    const char *text;
    enum tunnel_err err;
    int prio;
};

/* Searched in order; the first pattern found in the line wins. */
static const struct pattern patterns[] = {
    {"are too open", TUNNEL_ERR_IDENTITY, 50},
    {"bad permissions", TUNNEL_ERR_IDENTITY, 50},
    {"Load key ", TUNNEL_ERR_IDENTITY, 50},
    {"not accessible", TUNNEL_ERR_IDENTITY, 50},
    {"no such identity", TUNNEL_ERR_IDENTITY, 50},
    {"you have requested strict checking", TUNNEL_ERR_HOSTKEY, 40},
    {"Host key verification failed", TUNNEL_ERR_HOSTKEY, 40},
    {"Permission denied (", TUNNEL_ERR_AUTH, 30},
    {"Too many authentication failures", TUNNEL_ERR_AUTH, 30},
    {"remote port forwarding failed", TUNNEL_ERR_FORWARD, 20},
    {"Address already in use", TUNNEL_ERR_FORWARD, 20},
    {"cannot listen to port", TUNNEL_ERR_FORWARD, 20},
    {"Could not request local forwarding", TUNNEL_ERR_FORWARD, 20},
    {"Timeout, server", TUNNEL_ERR_TIMEOUT, 10},
    {"timed out", TUNNEL_ERR_TIMEOUT, 10},
    {"connect to host", TUNNEL_ERR_CONNECT, 10},
    {"Could not resolve hostname", TUNNEL_ERR_CONNECT, 10},
    {"kex_exchange_identification", TUNNEL_ERR_CONNECT, 10},
    {"Network is unreachable", TUNNEL_ERR_CONNECT, 10},
    {"No route to host", TUNNEL_ERR_CONNECT, 10},
    {"closed by remote host", TUNNEL_ERR_CLOSED, 10},
    {"Connection closed by", TUNNEL_ERR_CLOSED, 10},
    {"Connection reset", TUNNEL_ERR_CLOSED, 10},
    {"Broken pipe", TUNNEL_ERR_CLOSED, 10},
    {"send disconnect", TUNNEL_ERR_CLOSED, 10},
};

/* Lines that are neither progress nor errors: banners, the explanations
 * around an error already matched above, and transfer statistics. */
static const char *const benign_prefixes[] = {
    "OpenSSH_",
    "Authenticated to ",
    "Transferred: ",
    "Bytes per second",
    "@",
    "IT IS POSSIBLE",
    "Someone could",
    "It is also possible",
    "The fingerprint for",
    "SHA256:",
    "Please contact",
    "Add correct host key",
    "Offending ",
    "  remove with",
    "  ssh-keygen",
    "It is required that your private key",
    "This private key will be ignored",
    "Warning: Permanently added",
    "Exit status",
};

static bool has_prefix(const char *s, size_t n, const char *p)
{
    size_t pn = strlen(p);

    return n >= pn && memcmp(s, p, pn) == 0;
}

static bool contains(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

/* Parses the decimal number at s (up to n bytes), stopping at a non-digit. */
static bool number_at(const char *s, size_t n, unsigned *ret)
{
    unsigned v = 0;
    size_t i = 0;

    for (; i < n && s[i] >= '0' && s[i] <= '9' && i < 6; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    if (i == 0 || v > 65535)
        return false;
    *ret = v;
    return true;
}

static void classify_debug(const char *s, size_t n, struct tunnel_line *r)
{
    static const char listen[] = "Local forwarding listening on ";
    static const char ok[] = "remote forward success for: ";
    static const char fail[] = "remote forward failure for: ";

    if (has_prefix(s, n, listen)) {
        /* "... on ADDR port N." */
        const char *p = memmem(s, n, " port ", 6);
        if (p && number_at(p + 6, n - (size_t)(p + 6 - s), &r->port))
            r->kind = TUNNEL_LINE_LOCAL_LISTEN;
    } else if (has_prefix(s, n, ok)) {
        r->kind = TUNNEL_LINE_REMOTE_OK;
        r->arg = s + sizeof(ok) - 1;
        r->arg_len = n - (sizeof(ok) - 1);
    } else if (has_prefix(s, n, fail)) {
        r->kind = TUNNEL_LINE_REMOTE_FAIL;
        r->arg = s + sizeof(fail) - 1;
        r->arg_len = n - (sizeof(fail) - 1);
        r->err = TUNNEL_ERR_FORWARD;
        /* Below the "Error: remote port forwarding failed for listen port N"
         * that follows, which is what an operator knows from ssh. */
        r->prio = 19;
    }
}

void tunnel_classify(const char *line, size_t len, struct tunnel_line *ret)
{
    static const char alloc[] = "Allocated port ";
    struct tunnel_line r = {.kind = TUNNEL_LINE_OTHER};

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (has_prefix(line, len, "debug")) {
        const char *colon = memchr(line, ':', len);
        r.debug = true;
        if (colon && colon + 2 <= line + len)
            classify_debug(colon + 2, len - (size_t)(colon + 2 - line), &r);
        *ret = r;
        return;
    }
    if (has_prefix(line, len, alloc)) {
        /* "Allocated port N for remote forward to H:P" */
        const char *to = memmem(line, len, " to ", 4);
        if (number_at(line + sizeof(alloc) - 1, len - (sizeof(alloc) - 1), &r.port) && to) {
            r.kind = TUNNEL_LINE_ALLOCATED;
            r.arg = to + 4;
            r.arg_len = len - (size_t)(to + 4 - line);
        }
        *ret = r;
        return;
    }
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
        if (contains(line, len, patterns[i].text)) {
            r.kind = TUNNEL_LINE_ERROR;
            r.err = patterns[i].err;
            r.prio = patterns[i].prio;
            *ret = r;
            return;
        }
    if (len == 0) {
        *ret = r;
        return;
    }
    for (size_t i = 0; i < sizeof(benign_prefixes) / sizeof(benign_prefixes[0]); i++)
        if (has_prefix(line, len, benign_prefixes[i])) {
            *ret = r;
            return;
        }
    /* Anything else ssh says outside of debug output is worth showing if
     * nothing more specific comes. */
    r.kind = TUNNEL_LINE_ERROR;
    r.err = TUNNEL_ERR_OTHER;
    r.prio = 1;
    *ret = r;
}

bool tunnel_err_permanent(enum tunnel_err e)
{
    return e == TUNNEL_ERR_AUTH || e == TUNNEL_ERR_HOSTKEY || e == TUNNEL_ERR_IDENTITY;
}

const char *tunnel_err_name(enum tunnel_err e)
{
    switch (e) {
    case TUNNEL_ERR_NONE:
        return "none";
    case TUNNEL_ERR_OTHER:
        return "other";
    case TUNNEL_ERR_CONNECT:
        return "connect";
    case TUNNEL_ERR_TIMEOUT:
        return "timeout";
    case TUNNEL_ERR_CLOSED:
        return "closed";
    case TUNNEL_ERR_FORWARD:
        return "forward";
    case TUNNEL_ERR_AUTH:
        return "auth";
    case TUNNEL_ERR_HOSTKEY:
        return "host-key";
    case TUNNEL_ERR_IDENTITY:
        return "identity";
    }
    return "other";
}

const char *tunnel_err_summary(enum tunnel_err e)
{
    switch (e) {
    case TUNNEL_ERR_NONE:
        return "no error";
    case TUNNEL_ERR_OTHER:
        return "ssh exited";
    case TUNNEL_ERR_CONNECT:
        return "cannot connect";
    case TUNNEL_ERR_TIMEOUT:
        return "timed out";
    case TUNNEL_ERR_CLOSED:
        return "connection lost";
    case TUNNEL_ERR_FORWARD:
        return "forward refused";
    case TUNNEL_ERR_AUTH:
        return "authentication refused";
    case TUNNEL_ERR_HOSTKEY:
        return "host key verification failed";
    case TUNNEL_ERR_IDENTITY:
        return "identity file unusable";
    }
    return "ssh exited";
}

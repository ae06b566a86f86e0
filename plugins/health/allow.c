/* The automatic allow-list, used when `allow` is not set: loopback plus the
 * IPv4 CIDR blocks of the instance's VPC as the imds plugin reads them
 * (metadata key vpc_ipv4_cidr_blocks), which is where a load balancer's
 * health checks come from. Off EC2, or before IMDS answered, it is the
 * private ranges. The list follows metadata.changed. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health-int.h"

#define AUTO_MAX 64

static const char *const loopback[] = {"127.0.0.0/8", "::1/128"};
static const char *const fallback[] = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                       "100.64.0.0/10", "fc00::/7"};

static int parse_cidr(const char *s, struct agentd_cidr *ret)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    char *end;
    unsigned long prefix;

    if (n == 0 || n >= sizeof(addr))
        return -1;
    memcpy(addr, s, n);
    addr[n] = '\0';
    memset(ret, 0, sizeof(*ret));
    if (inet_pton(AF_INET, addr, ret->addr) == 1)
        ret->family = AF_INET;
    else if (inet_pton(AF_INET6, addr, ret->addr) == 1)
        ret->family = AF_INET6;
    else
        return -1;
    prefix = ret->family == AF_INET ? 32 : 128;
    if (slash) {
        prefix = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end || prefix > (ret->family == AF_INET ? 32u : 128u))
            return -1;
    }
    ret->prefix = (unsigned)prefix;
    for (unsigned bit = ret->prefix; bit < (ret->family == AF_INET ? 32u : 128u); bit++)
        ret->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    return 0;
}

static void add_all(struct agentd_cidr *out, size_t *n, const char *const *v, size_t nv)
{
    for (size_t i = 0; i < nv && *n < AUTO_MAX; i++)
        if (parse_cidr(v[i], &out[*n]) == 0)
            (*n)++;
}

bool health_auto_allow(struct health *h)
{
    struct agentd_cidr next[AUTO_MAX];
    size_t n = 0;
    const char *vpc = agentd_metadata_get(h->ctx, "vpc_ipv4_cidr_blocks");
    char desc[256];
    bool changed;

    add_all(next, &n, loopback, 2);
    if (vpc && *vpc) {
        char *copy = strdup(vpc), *save = NULL;

        for (char *tok = copy ? strtok_r(copy, " \t\n", &save) : NULL; tok && n < AUTO_MAX;
             tok = strtok_r(NULL, " \t\n", &save))
            if (parse_cidr(tok, &next[n]) == 0)
                n++;
        free(copy);
        snprintf(desc, sizeof(desc), "loopback and the VPC (%s)", vpc);
    }
    if (n == 2) {
        add_all(next, &n, fallback, sizeof(fallback) / sizeof(fallback[0]));
        snprintf(desc, sizeof(desc), "loopback and the private ranges (no VPC CIDR from IMDS)");
    }
    changed = n != h->n_auto || memcmp(next, h->auto_allow, n * sizeof(next[0])) != 0;
    if (changed) {
        struct agentd_cidr *a = malloc(n * sizeof(*a));

        if (!a)
            return false;
        memcpy(a, next, n * sizeof(*a));
        free(h->auto_allow);
        h->auto_allow = a;
        h->n_auto = n;
        agentd_info(h->ctx, "allow (automatic): %s", desc);
    }
    return changed;
}

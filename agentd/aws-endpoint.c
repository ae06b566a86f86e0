/* Where an AWS request goes, and agentd's region.
 *
 * Endpoints follow the SDKs: a per-plugin `endpoint:` option, then
 * AWS_ENDPOINT_URL_<SERVICE_ID>, then AWS_ENDPOINT_URL, then the regional
 * endpoint of the region's partition. Plain http is allowed only towards
 * loopback (the tests' and the demo's emulators): credentials never cross a
 * network unencrypted. https is always verified by the HTTP client. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "aws-internal.h"

static char *config_region, *profile_region;

void aws_region_set_config(const char *region)
{
    free(config_region);
    config_region = region && *region ? strdup(region) : NULL;
}

void aws_region_set_profile(const char *region)
{
    free(profile_region);
    profile_region = region && *region ? strdup(region) : NULL;
}

/* Region names go into host names: letters, digits and '-' only. */
static bool region_ok(const char *r)
{
    if (!r || !*r || strlen(r) > 64)
        return false;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return false;
    return true;
}

static const char *region_lookup(struct agentd_plugin_ctx *ctx, const char **ret_source)
{
    const char *r;

    if (region_ok(config_region)) {
        *ret_source = "config";
        return config_region;
    }
    r = getenv("AWS_REGION");
    if (!region_ok(r))
        r = getenv("AWS_DEFAULT_REGION");
    if (region_ok(r)) {
        *ret_source = "environment";
        return r;
    }
    if (region_ok(profile_region)) {
        *ret_source = "profile";
        return profile_region;
    }
    r = agentd_metadata_get(ctx, "region");
    if (region_ok(r)) {
        *ret_source = "metadata";
        return r;
    }
    *ret_source = NULL;
    return NULL;
}

const char *agentd_aws_region(struct agentd_plugin_ctx *ctx)
{
    const char *src;

    return region_lookup(ctx, &src);
}

const char *aws_region_source(struct agentd_plugin_ctx *ctx)
{
    const char *src;

    region_lookup(ctx, &src);
    return src;
}

const char *aws_partition_name(const char *region)
{
    if (region && strncmp(region, "cn-", 3) == 0)
        return "aws-cn";
    if (region && strncmp(region, "us-gov-", 7) == 0)
        return "aws-us-gov";
    return "aws";
}

const char *aws_partition_dns_suffix(const char *region)
{
    return strcmp(aws_partition_name(region), "aws-cn") == 0 ? "amazonaws.com.cn" : "amazonaws.com";
}

bool aws_host_is_loopback(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    char buf[64];
    size_t n = strlen(host);

    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

void aws_endpoint_free(struct aws_endpoint *e)
{
    if (!e)
        return;
    free(e->base);
    free(e->host);
    free(e->path);
    memset(e, 0, sizeof(*e));
}

static int parse_url(const char *url, struct aws_endpoint *ret)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    struct aws_endpoint e = {0};
    bool https;
    int r = -EINVAL;
    size_t pl;

    if (!u)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    https = strcasecmp(scheme, "https") == 0;
    if (!https && strcasecmp(scheme, "http") != 0)
        goto out;
    e.loopback = aws_host_is_loopback(host);
    if (!https && !e.loopback) {
        r = -EPERM;
        goto out;
    }
    if (port && strcmp(port, https ? "443" : "80") == 0) {
        curl_free(port);
        port = NULL;
    }
    pl = path ? strlen(path) : 0;
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    e.path = strndup(path ? path : "", pl);
    if (asprintf(&e.host, "%s%s%s", host, port ? ":" : "", port ? port : "") < 0)
        e.host = NULL;
    if (asprintf(&e.base, "%s://%s%.*s", https ? "https" : "http", e.host ? e.host : "", (int)pl,
                 path ? path : "") < 0)
        e.base = NULL;
    if (!e.path || !e.host || !e.base) {
        aws_endpoint_free(&e);
        r = -ENOMEM;
        goto out;
    }
    *ret = e;
    r = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return r;
}

int aws_endpoint_resolve(const char *service, const char *endpoint_id, const char *override,
                         const char *region, struct aws_endpoint *ret)
{
    char name[128], url[256];
    const char *v = NULL;

    if (override && *override)
        return parse_url(override, ret);
    if (endpoint_id && *endpoint_id) {
        size_t n = (size_t)snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s", endpoint_id);
        if (n < sizeof(name)) {
            /* Service ids are upper case with '_' for spaces and '-'. */
            for (char *p = name; *p; p++) {
                if (*p >= 'a' && *p <= 'z')
                    *p = (char)(*p - 32);
                else if (*p == ' ' || *p == '-')
                    *p = '_';
            }
            v = getenv(name);
        }
    }
    if (!v || !*v)
        v = getenv("AWS_ENDPOINT_URL");
    if (v && *v)
        return parse_url(v, ret);
    if (!region_ok(region))
        return -EDESTADDRREQ;
    if (!service || !*service ||
        strspn(service, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(service))
        return -EINVAL;
    if (strcmp(service, "route53") == 0) {
        /* Route 53 is global: one endpoint per partition. */
        const char *p = aws_partition_name(region);
        snprintf(url, sizeof(url), "https://route53.%s%s",
                 strcmp(p, "aws-us-gov") == 0 ? "us-gov." : "", aws_partition_dns_suffix(region));
    } else
        snprintf(url, sizeof(url), "https://%s.%s.%s", service, region,
                 aws_partition_dns_suffix(region));
    return parse_url(url, ret);
}

/* The built-in "aws" plugin: the top-level `aws:` key configures agentd's AWS
 * core (region, credentials source, retries). It is always present, with
 * defaults when the key is absent. Its status and `agentctl aws creds` show
 * where credentials come from and when they expire, never a secret. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agentd/plugin.h"
#include "aws-internal.h"
#include "host.h"
#include "aws-sigv4.h"
#include "http-client.h"

struct aws_conf {
    char *region;
    int credentials;
    char *profile;
    char *credentials_file;
    char *config_file;
    int64_t max_attempts;
};

bool aws_ctx_running(struct agentd_plugin_ctx *ctx)
{
    /* Only a ctx still in the host's list may be looked at: a plugin
     * removed by a reload is freed. */
    for (struct agentd_plugin_ctx *p = host.plugins; p; p = p->next)
        if (p == ctx)
            return p->state == PLUGIN_RUNNING && !p->destroyed;
    return false;
}

static const char *const creds_values[] = {"auto", "env", "profile", "imds", NULL};

static const struct agentd_option aws_options[] = {
    {.name = "region",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct aws_conf, region),
     .description = "AWS region; default: AWS_REGION, AWS_DEFAULT_REGION, the profile's "
                    "region, then the instance's (IMDS)"},
    {.name = "credentials",
     .type = AGENTD_OPT_ENUM,
     .offset = offsetof(struct aws_conf, credentials),
     .def = "auto",
     .values = creds_values,
     .description = "credentials source: auto (environment, shared files, IMDS role, in that "
                    "order), or only env, profile or imds"},
    {.name = "profile",
     .type = AGENTD_OPT_STRING,
     .offset = offsetof(struct aws_conf, profile),
     .description = "profile in the shared credentials/config files; default: AWS_PROFILE, "
                    "else default"},
    {.name = "credentials_file",
     .type = AGENTD_OPT_PATH,
     .offset = offsetof(struct aws_conf, credentials_file),
     .description = "shared credentials file; default: AWS_SHARED_CREDENTIALS_FILE, else "
                    "~/.aws/credentials"},
    {.name = "config_file",
     .type = AGENTD_OPT_PATH,
     .offset = offsetof(struct aws_conf, config_file),
     .description = "shared config file; default: AWS_CONFIG_FILE, else ~/.aws/config"},
    {.name = "max_attempts",
     .type = AGENTD_OPT_INT,
     .offset = offsetof(struct aws_conf, max_attempts),
     .def = "3",
     .min = 1,
     .max = 10,
     .description = "attempts per AWS request (standard retry mode) unless a plugin says"},
    {.name = NULL},
};

/* Checked with the rest of the config, so --check-config names the line. */
static int aws_validate(void *obj, struct agentd_confctx *cc)
{
    const struct aws_conf *c = obj;

    if (c->region && c->region[0] &&
        strspn(c->region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(c->region)) {
        agentd_conf_error(cc, "region", "'%s' is not a region name", c->region);
        return -EINVAL;
    }
    return 0;
}

static const struct agentd_schema aws_schema = {
    .validate = aws_validate,
    .name = "aws",
    .size = sizeof(struct aws_conf),
    .options = aws_options,
};

static void apply(struct agentd_plugin_ctx *ctx, const struct aws_conf *conf)
{
    struct aws_creds_settings s = {
        .source = (enum aws_creds_source)conf->credentials,
        .profile = conf->profile,
        .credentials_file = conf->credentials_file,
        .config_file = conf->config_file,
    };
    struct aws_profile p = {0};

    aws_region_set_config(conf->region);
    aws_set_default_max_attempts((unsigned)conf->max_attempts);
    aws_creds_configure(ctx, &s);
    /* The profile's region, read once here like the YAML config itself;
     * the file is small and local. Its keys are dropped at once. */
    aws_region_set_profile(NULL);
    if (aws_profile_load(conf->credentials_file, conf->config_file, conf->profile, &p) == 0)
        aws_region_set_profile(p.region);
    aws_profile_clear(&p);
}

static int aws_configure(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    const struct aws_conf *c = conf;

    agentd_plugin_set_data(ctx, (void *)c);
    apply(ctx, c);
    return 0;
}

static void nop_creds(int status, const struct aws_creds *creds, const char *message, void *ud)
{
}

static int ctl_creds(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret_result,
                     void *ud)
{
    json_t *st = aws_creds_status();

    if (!st)
        return -ENOMEM;
    /* Asking is a reason to resolve: the next look shows the outcome. */
    if (json_is_null(json_object_get(st, "source")) &&
        !json_is_true(json_object_get(st, "refreshing"))) {
        aws_creds_get(ctx, nop_creds, NULL, NULL);
        json_decref(st);
        st = aws_creds_status();
        if (!st)
            return -ENOMEM;
    }
    json_object_set_new(st, "region",
                        agentd_aws_region(ctx) ? json_string(agentd_aws_region(ctx)) : json_null());
    *ret_result = st;
    return 0;
}

static struct agentd_plugin_ctx *aws_ctx;

/* "region R (source); credentials from S until T", degraded while a
 * credentials refresh has failed and nothing valid is left. */
void aws_plugin_summary(void)
{
    json_t *c;
    const char *region, *src, *exp, *err;

    if (!aws_ctx)
        return;
    region = agentd_aws_region(aws_ctx);
    c = aws_creds_status();
    src = c ? json_string_value(json_object_get(c, "source")) : NULL;
    exp = c ? json_string_value(json_object_get(c, "expiration")) : NULL;
    err = c ? json_string_value(json_object_get(c, "last_error")) : NULL;
    agentd_plugin_report(aws_ctx, !aws_creds_valid() && err != NULL,
                         "region %s%s%s%s; credentials %s%s%s%s", region ? region : "unknown",
                         region ? " (" : "", region ? aws_region_source(aws_ctx) : "",
                         region ? ")" : "", src ? "from " : (err ? "unavailable" : "not used yet"),
                         src ? src : "", exp ? " until " : "", exp ? exp : "");
    json_decref(c);
}

/* The region may come from IMDS metadata after start. */
static void on_metadata(struct agentd_plugin_ctx *ctx, const char *name, const json_t *payload,
                        void *ud)
{
    aws_plugin_summary();
}

static int aws_start(struct agentd_plugin_ctx *ctx, struct agentd_err *err)
{
    int r;

    r = agentd_control_register(
        ctx, "creds", "where AWS credentials come from and when they expire", ctl_creds, NULL);
    if (r < 0)
        return agentd_err_set(err, "cannot register the creds command: %s", strerror(-r));
    r = agentd_event_subscribe(ctx, "metadata.changed", on_metadata, NULL);
    if (r < 0)
        return agentd_err_set(err, "cannot subscribe to metadata changes: %s", strerror(-r));
    aws_ctx = ctx;
    aws_plugin_summary();
    return 0;
}

static void aws_stop(struct agentd_plugin_ctx *ctx, agentd_stop_done_fn done)
{
    done(ctx);
}

static int aws_reload(struct agentd_plugin_ctx *ctx, const void *conf, struct agentd_err *err)
{
    const struct aws_conf *c = conf;

    agentd_plugin_set_data(ctx, (void *)c);
    apply(ctx, c);
    aws_plugin_summary();
    return 0;
}

static void aws_status(struct agentd_plugin_ctx *ctx, json_t *out)
{
    const char *region = agentd_aws_region(ctx);
    json_t *creds = aws_creds_status();

    json_object_set_new(out, "region", region ? json_string(region) : json_null());
    json_object_set_new(out, "region_source",
                        region ? json_string(aws_region_source(ctx)) : json_null());
    if (creds)
        json_object_set_new(out, "credentials", creds);
}

/* The aws plugin lives as long as the daemon, so its destroy is the
 * daemon's teardown: secrets are wiped, and the HTTP client closes its
 * handles (when no request is left) so the loop can close. */
static void aws_destroy(struct agentd_plugin_ctx *ctx)
{
    aws_ctx = NULL;
    aws_creds_shutdown();
    sigv4_cache_clear();
    http_client_shutdown();
    agentd_plugin_set_data(ctx, NULL);
}

const struct agentd_plugin aws_builtin_plugin = {
    .abi = AGENTD_PLUGIN_ABI,
    .name = "aws",
    .description = "AWS core: region, credentials, endpoints, retries",
    .schema = &aws_schema,
    .flags = AGENTD_PLUGIN_ALWAYS,
    .configure = aws_configure,
    .start = aws_start,
    .stop = aws_stop,
    .reload = aws_reload,
    .status = aws_status,
    .destroy = aws_destroy,
};

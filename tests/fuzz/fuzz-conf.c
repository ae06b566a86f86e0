/* libFuzzer: YAML text → config_load_string → config_apply with a test option
 * table; a config that applies must dump to YAML that loads back equal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "../unit/conf-test-schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const char *name, const struct agentd_schema *s, bool list_root, const void *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        abort();
    config_dump(f, name, s, list_root, c);
    fclose(f);
    return buf;
}

static void roundtrip(const char *name, const struct agentd_schema *s, bool list_root,
                      const void *conf)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    void *again = NULL;
    char *text = dump(name, s, list_root, conf);

    if (config_load_string("dump.yaml", text, &doc, &errs) < 0 ||
        config_apply(config_doc_get(doc, name), name, s, list_root, &again, &errs) < 0) {
        config_errors_print(&errs, stderr);
        fprintf(stderr, "dump does not load back:\n%s", text);
        abort();
    }
    if (!config_equal(s, list_root, conf, again)) {
        fprintf(stderr, "dump loads back different:\n%s", text);
        abort();
    }
    config_free(s, list_root, again);
    config_doc_free(doc);
    config_errors_clear(&errs);
    free(text);
}

static bool has_secret(const struct t_health *h)
{
    return h->token || (h->s3 && h->s3->secret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_errors errs = {0};
    struct config_doc *doc = NULL;
    char *text = malloc(size + 1);
    void *conf = NULL;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (config_load_string("fuzz.yaml", text, &doc, &errs) == 0) {
        if (config_apply(config_doc_get(doc, "health"), "health", &t_health_schema, false, &conf,
                         &errs) == 0) {
            if (!has_secret(conf))
                roundtrip("health", &t_health_schema, false, conf);
            config_free(&t_health_schema, false, conf);
        }
        conf = NULL;
        if (config_apply(config_doc_get(doc, "checks"), "checks", &t_check_schema, true, &conf,
                         &errs) == 0) {
            roundtrip("checks", &t_check_schema, true, conf);
            config_free(&t_check_schema, true, conf);
        }
        config_doc_free(doc);
    }
    /* Formatting every error exercises the printers too. */
    if (errs.n) {
        FILE *devnull = fopen("/dev/null", "w");

        if (devnull) {
            config_errors_print(&errs, devnull);
            fclose(devnull);
        }
    }
    config_errors_clear(&errs);
    free(text);
    return 0;
}

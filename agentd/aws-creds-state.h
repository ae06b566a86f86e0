/* The credentials cache's state, shared by aws-creds.c (the cache: who
 * waits, what is current, refresh outcomes) and aws-creds-chain.c (the
 * sources tried in order, the providers plugins register). Internal. */
#ifndef AGENTD_AWS_CREDS_STATE_H
#define AGENTD_AWS_CREDS_STATE_H

#include "aws-internal.h"

#define MAX_PROVIDERS 8

struct creds_provider {
    struct agentd_plugin_ctx *owner;
    char name[32];
    void (*fetch)(void *provider_ud, agentd_creds_done_fn done, void *host_ud);
    void *ud;
};

struct aws_creds_wait {
    struct aws_creds_wait *next;
    aws_creds_fn fn;
    void *ud;
};

struct creds_state {
    struct agentd_plugin_ctx *ctx;
    enum aws_creds_source source;
    char *profile, *credentials_file, *config_file;
    struct aws_creds cur;
    int64_t obtained; /* when cur was fetched */
    bool have;
    bool refreshing;
    unsigned gen; /* tells a current refresh's answers from abandoned ones */
    struct aws_creds_wait *waiters;
    struct creds_provider providers[MAX_PROVIDERS];
    size_t nproviders;
    char reasons[512]; /* why sources failed, for the error message */
    char last_error[512];
    char last_source[32];
    bool warned_expiring;
    unsigned fails;
    int64_t next_attempt;
    int64_t (*now)(void);
    uv_timer_t *watchdog; /* heap: closed by aws_creds_shutdown */
    size_t watched_step;
};

extern struct creds_state creds_state;

/* aws-creds.c */
int64_t creds_now(void);
/* Makes c (moved in) the current credentials. */
void creds_set_current(struct aws_creds *c);
/* Ends the refresh in progress and delivers its outcome to every waiter. */
void creds_refresh_done(int status, const char *message);

/* aws-creds-chain.c */
/* Starts a refresh: the sources in order from the first. */
void creds_refresh_start(void);

#endif

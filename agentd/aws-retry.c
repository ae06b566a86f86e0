/* The AWS SDKs' "standard" retry mode: capped exponential backoff with full
 * jitter, throttling and transient errors retried, and a retry quota per
 * endpoint so that a dead endpoint turns into fast failures instead of a
 * retry storm (botocore retries/standard.py, aws-c-io's retry strategy). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws-internal.h"

void aws_retry_quota_init(struct aws_retry_quota *q)
{
    q->tokens = AWS_RETRY_QUOTA_MAX;
}

int aws_retry_quota_acquire(struct aws_retry_quota *q, bool timeout)
{
    int cost = timeout ? AWS_RETRY_TIMEOUT_COST : AWS_RETRY_COST;

    if (q->tokens < cost)
        return -ENOSPC;
    q->tokens -= cost;
    return cost;
}

void aws_retry_quota_release(struct aws_retry_quota *q, int cost)
{
    q->tokens += cost > 0 ? cost : 1;
    if (q->tokens > AWS_RETRY_QUOTA_MAX)
        q->tokens = AWS_RETRY_QUOTA_MAX;
}

uint64_t aws_retry_backoff_ms(unsigned retry, double rand01)
{
    double cap = AWS_RETRY_MAX_BACKOFF, base;

    if (rand01 < 0)
        rand01 = 0;
    if (rand01 > 1)
        rand01 = 1;
    /* 2^retry seconds; past 2^40 the product is over the cap anyway unless
     * rand01 is ~0, so the exponent is bounded to keep it finite. */
    base = 1000;
    for (unsigned i = 0; i < retry && i < 40; i++)
        base *= 2;
    base *= rand01;
    return (uint64_t)(base < cap ? base : cap);
}

bool aws_retry_is_throttle(const char *code)
{
    static const char *const codes[] = {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    };

    if (!code)
        return false;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

static bool is_transient_code(const char *code)
{
    static const char *const codes[] = {
        "RequestTimeout",        "RequestTimeoutException", "InternalError",
        "InternalFailure",       "ServiceUnavailable",      "ServiceUnavailableException",
        "IDPCommunicationError",
    };

    if (!code)
        return false;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

bool aws_retry_retryable(int transport_error, long status, const char *code)
{
    if (transport_error) {
        /* Our own refusals and bounds are not transient. */
        return transport_error != -EINVAL && transport_error != -EFBIG &&
               transport_error != -EPERM && transport_error != -EKEYREJECTED &&
               transport_error != -ENOMEM && transport_error != -ECANCELED;
    }
    if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429)
        return true;
    return aws_retry_is_throttle(code) || is_transient_code(code);
}

/* A few endpoints per daemon; beyond the table, the last slot is shared,
 * which errs on the side of fewer retries. */
#define QUOTAS 32

static struct {
    char endpoint[256];
    struct aws_retry_quota q;
} quotas[QUOTAS];
static size_t nquotas;

struct aws_retry_quota *aws_retry_quota_for(const char *endpoint)
{
    size_t i;

    for (i = 0; i < nquotas; i++)
        if (strcmp(quotas[i].endpoint, endpoint) == 0)
            return &quotas[i].q;
    if (nquotas == QUOTAS)
        return &quotas[QUOTAS - 1].q;
    i = nquotas++;
    snprintf(quotas[i].endpoint, sizeof(quotas[i].endpoint), "%s", endpoint);
    aws_retry_quota_init(&quotas[i].q);
    return &quotas[i].q;
}

static unsigned default_attempts = AWS_DEFAULT_MAX_ATTEMPTS;

void aws_set_default_max_attempts(unsigned n)
{
    default_attempts = n ? n : AWS_DEFAULT_MAX_ATTEMPTS;
}

unsigned aws_default_max_attempts(void)
{
    return default_attempts;
}

/* Credentials from the environment, the first source in the SDKs' chain:
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for temporary keys,
 * AWS_SESSION_TOKEN (AWS_SECURITY_TOKEN is its old name). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws-internal.h"

int aws_creds_env_load(struct aws_creds *ret)
{
    const char *akid = getenv("AWS_ACCESS_KEY_ID");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");
    struct agentd_aws_credentials c;

    if (!akid || !*akid || !secret || !*secret)
        return -ENOENT;
    if (!token || !*token)
        token = getenv("AWS_SECURITY_TOKEN");
    c.access_key_id = akid;
    c.secret_access_key = secret;
    c.session_token = token && *token ? token : NULL;
    c.expiration = 0;
    return aws_creds_copy(ret, &c, "environment");
}

/* Internal parts of the HTTP client (agentd/http-client.c) that tests and the
 * AWS core use besides the public agentd_http_* functions in plugin.h. */
#ifndef AGENTD_HTTP_CLIENT_H
#define AGENTD_HTTP_CLIENT_H

#include <curl/curl.h>

#include "agentd/plugin.h"

/* Maps a finished transfer's CURLcode to a negative errno. os_errno is
 * CURLINFO_OS_ERRNO (0 if unknown); it refines connect and socket errors. */
int http_client_errno(CURLcode code, long os_errno);

/* Number of requests in flight (tests check that cancels release them). */
size_t http_client_active(void);

/* Closes the client's handles and the curl multi handle once no request is in
 * flight; the next request starts a new one. For orderly shutdown and tests. */
void http_client_shutdown(void);

#endif

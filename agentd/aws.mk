# fragment: see the top-level Makefile.am
# The AWS core (SigV4, credentials, endpoints, retries, errors, requests) and
# the HTTP client are part of the daemon; plugins reach them through plugin.h.
AWS_CORE_SOURCES = agentd/http-client.c agentd/http-client.h \
	agentd/aws-sigv4.c agentd/aws-sigv4.h agentd/aws-internal.h \
	agentd/aws-error.c agentd/aws-retry.c agentd/aws-endpoint.c \
	agentd/aws-creds.c agentd/aws-creds-env.c agentd/aws-creds-profile.c \
	agentd/aws-request.c
CORE_SOURCES += agentd/aws-plugin.c $(AWS_CORE_SOURCES)

# Unit tests compile the modules they test with a small fake of the host
# functions (tests/unit/aws-fake-host.c), not the whole core.
AWS_UNIT_CF = $(UNIT_CF) -I$(top_srcdir)/tests/unit -DAGENTD_SRCDIR=\"$(abs_top_srcdir)\"
AWS_UNIT_LIBS = $(DEPS_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test-aws-sigv4
TESTS += tests/unit/test-aws-sigv4
tests_unit_test_aws_sigv4_SOURCES = tests/unit/test-aws-sigv4.c agentd/aws-sigv4.c
tests_unit_test_aws_sigv4_CFLAGS = $(AWS_UNIT_CF)
tests_unit_test_aws_sigv4_LDADD = $(AWS_UNIT_LIBS)

check_PROGRAMS += tests/unit/test-http-client
TESTS += tests/unit/test-http-client
tests_unit_test_http_client_SOURCES = tests/unit/test-http-client.c agentd/http-client.c \
	tests/unit/aws-fake-host.c tests/unit/aws-fake-host.h
tests_unit_test_http_client_CFLAGS = $(AWS_UNIT_CF)
tests_unit_test_http_client_LDADD = $(AWS_UNIT_LIBS)

check_PROGRAMS += tests/unit/test-aws-error
TESTS += tests/unit/test-aws-error
tests_unit_test_aws_error_SOURCES = tests/unit/test-aws-error.c agentd/aws-error.c
tests_unit_test_aws_error_CFLAGS = $(AWS_UNIT_CF)
tests_unit_test_aws_error_LDADD = $(AWS_UNIT_LIBS)

check_PROGRAMS += tests/unit/test-aws-retry
TESTS += tests/unit/test-aws-retry
tests_unit_test_aws_retry_SOURCES = tests/unit/test-aws-retry.c agentd/aws-retry.c
tests_unit_test_aws_retry_CFLAGS = $(AWS_UNIT_CF)
tests_unit_test_aws_retry_LDADD = $(AWS_UNIT_LIBS)

check_PROGRAMS += tests/unit/test-aws-endpoint
TESTS += tests/unit/test-aws-endpoint
tests_unit_test_aws_endpoint_SOURCES = tests/unit/test-aws-endpoint.c agentd/aws-endpoint.c \
	tests/unit/aws-fake-host.c
tests_unit_test_aws_endpoint_CFLAGS = $(AWS_UNIT_CF)
tests_unit_test_aws_endpoint_LDADD = $(AWS_UNIT_LIBS)

check_PROGRAMS += tests/unit/test-aws-creds
TESTS += tests/unit/test-aws-creds
tests_unit_test_aws_creds_SOURCES = tests/unit/test-aws-creds.c agentd/aws-creds.c \
	agentd/aws-creds-env.c agentd/aws-creds-profile.c tests/unit/aws-fake-host.c
tests_unit_test_aws_creds_CFLAGS = $(AWS_UNIT_CF)
tests_unit_test_aws_creds_LDADD = $(AWS_UNIT_LIBS)

EXTRA_DIST += tests/data/sigv4

# The differential test's signer (tests/integration/test_aws_sigv4_diff.py).
check_PROGRAMS += tests/unit/sigv4-sign-tool
tests_unit_sigv4_sign_tool_SOURCES = tests/unit/sigv4-sign-tool.c agentd/aws-sigv4.c
tests_unit_sigv4_sign_tool_CFLAGS = $(AWS_UNIT_CF)
tests_unit_sigv4_sign_tool_LDADD = $(AWS_UNIT_LIBS)

# A test-only plugin that fires AWS requests on demand (integration tests).
check_LTLIBRARIES += tests/plugins/awsprobe.la
tests_plugins_awsprobe_la_SOURCES = tests/plugins/awsprobe.c
tests_plugins_awsprobe_la_CFLAGS = $(PLUGIN_CF)
tests_plugins_awsprobe_la_LDFLAGS = $(TEST_PLUGIN_LF)

EXTRA_DIST += tests/emulators/capture.py tests/integration/test_aws_sigv4_diff.py \
	tests/integration/test_aws_core.py tests/deps/aws.txt

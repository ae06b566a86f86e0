# fragment: see the top-level Makefile.am
# The AWS core (SigV4, credentials, endpoints, retries, errors, requests) and
# the HTTP client are part of the daemon; plugins reach them through plugin.h.
AWS_CORE_SOURCES = agentd/http-client.c agentd/http-client.h \
	agentd/aws-sigv4.c agentd/aws-sigv4-canon.c agentd/aws-sigv4.h agentd/aws-internal.h \
	agentd/aws-error.c agentd/aws-retry.c agentd/aws-endpoint.c \
	agentd/aws-creds.c agentd/aws-creds-chain.c agentd/aws-creds-state.h \
	agentd/aws-creds-env.c agentd/aws-creds-profile.c agentd/aws-request.c
CORE_SOURCES += agentd/aws-plugin.c $(AWS_CORE_SOURCES)

# Unit tests compile the modules they test with a small fake of the host
# functions (tests/unit/aws-fake-host.c), not the whole core.
AWS_UNIT_CF = $(UNIT_CF) -I$(top_srcdir)/tests/unit -DAGENTD_SRCDIR=\"$(abs_top_srcdir)\"
AWS_UNIT_LIBS = $(DEPS_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test-aws-sigv4
TESTS += tests/unit/test-aws-sigv4
tests_unit_test_aws_sigv4_SOURCES = tests/unit/test-aws-sigv4.c agentd/aws-sigv4.c \
	agentd/aws-sigv4-canon.c
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
	agentd/aws-creds-chain.c agentd/aws-creds-state.h \
	agentd/aws-creds-env.c agentd/aws-creds-profile.c tests/unit/aws-fake-host.c
tests_unit_test_aws_creds_CFLAGS = $(AWS_UNIT_CF)
tests_unit_test_aws_creds_LDADD = $(AWS_UNIT_LIBS)

EXTRA_DIST += tests/data/sigv4 agentd/aws-README.md

# The differential test's signer (tests/integration/test_aws_sigv4_diff.py).
check_PROGRAMS += tests/unit/sigv4-sign-tool
tests_unit_sigv4_sign_tool_SOURCES = tests/unit/sigv4-sign-tool.c agentd/aws-sigv4.c \
	agentd/aws-sigv4-canon.c
tests_unit_sigv4_sign_tool_CFLAGS = $(AWS_UNIT_CF)
tests_unit_sigv4_sign_tool_LDADD = $(AWS_UNIT_LIBS)

# A test-only plugin that fires AWS requests on demand (integration tests).
check_LTLIBRARIES += tests/plugins/awsprobe.la
tests_plugins_awsprobe_la_SOURCES = tests/plugins/awsprobe.c
tests_plugins_awsprobe_la_CFLAGS = $(PLUGIN_CF)
tests_plugins_awsprobe_la_LDFLAGS = $(TEST_PLUGIN_LF)

EXTRA_DIST += tests/emulators/capture.py tests/integration/test_aws_sigv4_diff.py tests/bench/sigv4/run \
	tests/integration/test_aws_core.py tests/deps/aws.txt

# libFuzzer targets for the parsers that read untrusted input.
FUZZ_TARGETS += tests/fuzz/fuzz-aws-credsfile tests/fuzz/fuzz-aws-json tests/fuzz/fuzz-aws-xml
tests_fuzz_fuzz_aws_credsfile_SOURCES = tests/fuzz/fuzz-aws-credsfile.c agentd/aws-creds-profile.c
tests_fuzz_fuzz_aws_credsfile_CFLAGS = $(FUZZ_CF)
tests_fuzz_fuzz_aws_credsfile_LDFLAGS = $(FUZZ_LF)
tests_fuzz_fuzz_aws_credsfile_LDADD = $(DEPS_LIBS)
tests_fuzz_fuzz_aws_json_SOURCES = tests/fuzz/fuzz-aws-json.c agentd/aws-error.c
tests_fuzz_fuzz_aws_json_CFLAGS = $(FUZZ_CF)
tests_fuzz_fuzz_aws_json_LDFLAGS = $(FUZZ_LF)
tests_fuzz_fuzz_aws_json_LDADD = $(DEPS_LIBS)
tests_fuzz_fuzz_aws_xml_SOURCES = tests/fuzz/fuzz-aws-xml.c agentd/aws-error.c
tests_fuzz_fuzz_aws_xml_CFLAGS = $(FUZZ_CF)
tests_fuzz_fuzz_aws_xml_LDFLAGS = $(FUZZ_LF)
tests_fuzz_fuzz_aws_xml_LDADD = $(DEPS_LIBS)
EXTRA_DIST += tests/fuzz/corpus/fuzz-aws-credsfile tests/fuzz/corpus/fuzz-aws-json \
	tests/fuzz/corpus/fuzz-aws-xml

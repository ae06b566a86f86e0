# fragment: see the top-level Makefile.am
# The AWS core (SigV4, credentials, endpoints, retries, errors, requests) and
# the HTTP client are part of the daemon; plugins reach them through plugin.h.
AWS_CORE_SOURCES = agentd/http-client.c agentd/http-client.h \
	agentd/aws-sigv4.c agentd/aws-sigv4.h
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

EXTRA_DIST += tests/data/sigv4

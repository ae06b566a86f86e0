# fragment: see the top-level Makefile.am
# The health plugin: HTTP health endpoint and checks. request.c, route.c,
# body.c and http-server.c never call the host, so unit tests and the fuzz
# target link them directly.
HEALTH_CORE = plugins/health/request.c plugins/health/route.c plugins/health/body.c \
	plugins/health/health-int.h

plugin_LTLIBRARIES += plugins/health/health.la
plugins_health_health_la_SOURCES = $(HEALTH_CORE) plugins/health/http-server.c
plugins_health_health_la_CFLAGS = $(PLUGIN_CF)
plugins_health_health_la_LDFLAGS = $(PLUGIN_LF)
plugins_health_health_la_LIBADD = $(HTTP_PARSER_LIBS)

check_PROGRAMS += tests/unit/test-health-request tests/unit/test-health-route \
	tests/unit/test-health-body
TESTS += tests/unit/test-health-request tests/unit/test-health-route \
	tests/unit/test-health-body
tests_unit_test_health_request_SOURCES = tests/unit/test-health-request.c $(HEALTH_CORE)
tests_unit_test_health_request_CFLAGS = $(UNIT_CF)
tests_unit_test_health_request_LDADD = $(UNIT_LIBS)
tests_unit_test_health_route_SOURCES = tests/unit/test-health-route.c $(HEALTH_CORE)
tests_unit_test_health_route_CFLAGS = $(UNIT_CF)
tests_unit_test_health_route_LDADD = $(UNIT_LIBS)
tests_unit_test_health_body_SOURCES = tests/unit/test-health-body.c $(HEALTH_CORE)
tests_unit_test_health_body_CFLAGS = $(UNIT_CF)
tests_unit_test_health_body_LDADD = $(UNIT_LIBS)

EXTRA_DIST += plugins/health/README.md

# fragment: see the top-level Makefile.am
# The health plugin: HTTP health endpoint and checks. request.c, route.c,
# body.c, debounce.c and http-server.c/http-conn.c never call the host, so unit tests
# and the fuzz target link them directly.
HEALTH_PURE = plugins/health/request.c plugins/health/route.c plugins/health/body.c \
	plugins/health/debounce.c plugins/health/health-int.h

plugin_LTLIBRARIES += plugins/health/health.la
HEALTH_ALL = $(HEALTH_PURE) plugins/health/http-server.c plugins/health/http-conn.c \
	plugins/health/http-server-int.h \
	plugins/health/health.c plugins/health/serve.c plugins/health/check.c \
	plugins/health/check-tcp.c plugins/health/check-http.c plugins/health/check-exec.c \
	plugins/health/check-file.c plugins/health/check-systemd.c plugins/health/reload.c \
	plugins/health/allow.c \
	plugins/health/path-checks.c
plugins_health_health_la_SOURCES = $(HEALTH_ALL)
plugins_health_health_la_CFLAGS = $(PLUGIN_CF)
plugins_health_health_la_LDFLAGS = $(PLUGIN_LF)
plugins_health_health_la_LIBADD = $(HTTP_PARSER_LIBS) $(LIBUV_LIBS) $(JANSSON_LIBS) \
	$(LIBSYSTEMD_LIBS)

HEALTH_UNITS = tests/unit/test-health-request tests/unit/test-health-route \
	tests/unit/test-health-body tests/unit/test-health-debounce tests/unit/test-health-server \
	tests/unit/test-health-checks
check_PROGRAMS += $(HEALTH_UNITS)
TESTS += $(HEALTH_UNITS)
tests_unit_test_health_request_SOURCES = tests/unit/test-health-request.c $(HEALTH_PURE)
tests_unit_test_health_request_CFLAGS = $(UNIT_CF)
tests_unit_test_health_request_LDADD = $(UNIT_LIBS)
tests_unit_test_health_route_SOURCES = tests/unit/test-health-route.c $(HEALTH_PURE)
tests_unit_test_health_route_CFLAGS = $(UNIT_CF)
tests_unit_test_health_route_LDADD = $(UNIT_LIBS)
tests_unit_test_health_body_SOURCES = tests/unit/test-health-body.c $(HEALTH_PURE)
tests_unit_test_health_body_CFLAGS = $(UNIT_CF)
tests_unit_test_health_body_LDADD = $(UNIT_LIBS)
tests_unit_test_health_debounce_SOURCES = tests/unit/test-health-debounce.c $(HEALTH_PURE)
tests_unit_test_health_debounce_CFLAGS = $(UNIT_CF)
tests_unit_test_health_debounce_LDADD = $(UNIT_LIBS)
tests_unit_test_health_server_SOURCES = tests/unit/test-health-server.c $(HEALTH_PURE) \
	plugins/health/http-server.c plugins/health/http-conn.c plugins/health/http-server-int.h
tests_unit_test_health_server_CFLAGS = $(UNIT_CF)
tests_unit_test_health_server_LDADD = $(UNIT_LIBS) -lpthread

# The check helpers need the host: this one links the whole plugin and the core.
tests_unit_test_health_checks_SOURCES = tests/unit/test-health-checks.c $(HEALTH_ALL)
tests_unit_test_health_checks_CFLAGS = $(UNIT_CF)
tests_unit_test_health_checks_LDADD = $(UNIT_LIBS)

FUZZ_TARGETS += tests/fuzz/fuzz-health-request
tests_fuzz_fuzz_health_request_SOURCES = tests/fuzz/fuzz-health-request.c $(HEALTH_PURE)
tests_fuzz_fuzz_health_request_CFLAGS = $(FUZZ_CF)
tests_fuzz_fuzz_health_request_LDFLAGS = $(FUZZ_LF)
tests_fuzz_fuzz_health_request_LDADD = $(HTTP_PARSER_LIBS)

EXTRA_DIST += plugins/health/README.md tests/integration/test_health.py \
	tests/bench/health/run tests/bench/health/README.md tests/demo/30-health.sh \
	tests/deps/health.txt tests/fuzz/corpus/fuzz-health-request

# tunnel plugin: reverse/local SSH tunnels kept up by agentd (plugins/tunnel/README.md).
TUNNEL_PURE = plugins/tunnel/tunnel-spec.c plugins/tunnel/tunnel-argv.c \
	plugins/tunnel/tunnel-backoff.c plugins/tunnel/tunnel-classify.c

# Table-driven tests leave the unused trailing fields of a row out.
TUNNEL_TEST_CF = -Wno-missing-field-initializers

plugin_LTLIBRARIES += plugins/tunnel/tunnel.la
plugins_tunnel_tunnel_la_SOURCES = plugins/tunnel/tunnel.h plugins/tunnel/tunnel.c \
	plugins/tunnel/tunnel-fsm.c plugins/tunnel/tunnel-setup.c plugins/tunnel/tunnel-status.c \
	plugins/tunnel/tunnel-options.c plugins/tunnel/tunnel-doctor.c $(TUNNEL_PURE)
plugins_tunnel_tunnel_la_CFLAGS = $(PLUGIN_CF)
plugins_tunnel_tunnel_la_LDFLAGS = $(PLUGIN_LF)

# The pure parts are tested without the host: they never call it.
check_PROGRAMS += tests/unit/test-tunnel-spec tests/unit/test-tunnel-argv \
	tests/unit/test-tunnel-backoff tests/unit/test-tunnel-classify tests/unit/test-tunnel-fsm
TESTS += tests/unit/test-tunnel-spec tests/unit/test-tunnel-argv \
	tests/unit/test-tunnel-backoff tests/unit/test-tunnel-classify tests/unit/test-tunnel-fsm
tests_unit_test_tunnel_spec_SOURCES = tests/unit/test-tunnel-spec.c plugins/tunnel/tunnel-spec.c
tests_unit_test_tunnel_spec_CFLAGS = $(UNIT_CF) $(TUNNEL_TEST_CF)
tests_unit_test_tunnel_spec_LDADD = $(CMOCKA_LIBS)
tests_unit_test_tunnel_argv_SOURCES = tests/unit/test-tunnel-argv.c plugins/tunnel/tunnel-argv.c \
	plugins/tunnel/tunnel-spec.c
tests_unit_test_tunnel_argv_CFLAGS = $(UNIT_CF) $(TUNNEL_TEST_CF)
tests_unit_test_tunnel_argv_LDADD = $(CMOCKA_LIBS)
tests_unit_test_tunnel_backoff_SOURCES = tests/unit/test-tunnel-backoff.c \
	plugins/tunnel/tunnel-backoff.c
tests_unit_test_tunnel_backoff_CFLAGS = $(UNIT_CF) $(TUNNEL_TEST_CF)
tests_unit_test_tunnel_backoff_LDADD = $(CMOCKA_LIBS)
tests_unit_test_tunnel_classify_SOURCES = tests/unit/test-tunnel-classify.c \
	plugins/tunnel/tunnel-classify.c
tests_unit_test_tunnel_classify_CFLAGS = $(UNIT_CF) $(TUNNEL_TEST_CF)
tests_unit_test_tunnel_classify_LDADD = $(CMOCKA_LIBS)
# The state machine against a mock host (the test defines the host calls).
tests_unit_test_tunnel_fsm_SOURCES = tests/unit/test-tunnel-fsm.c plugins/tunnel/tunnel-fsm.c \
	plugins/tunnel/tunnel-setup.c plugins/tunnel/tunnel-status.c \
	$(TUNNEL_PURE)
tests_unit_test_tunnel_fsm_CFLAGS = $(UNIT_CF) $(TUNNEL_TEST_CF)
tests_unit_test_tunnel_fsm_LDADD = $(CMOCKA_LIBS) $(LIBUV_LIBS) $(JANSSON_LIBS)

EXTRA_DIST += plugins/tunnel/README.md tests/integration/test_tunnel.py \
	tests/bench/tunnel/bench.py tests/bench/tunnel/README.md tests/demo/50-tunnel.sh \
	tests/deps/tunnel.txt

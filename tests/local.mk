# fragment: test-only plugins and test data of the core (see Makefile.am)
check_LTLIBRARIES += tests/plugins/failstart.la tests/plugins/probe.la \
	tests/plugins/bad/badabi.la
tests_plugins_failstart_la_SOURCES = tests/plugins/failstart.c
tests_plugins_failstart_la_CFLAGS = $(PLUGIN_CF)
tests_plugins_failstart_la_LDFLAGS = $(TEST_PLUGIN_LF)
tests_plugins_probe_la_SOURCES = tests/plugins/probe.c
tests_plugins_probe_la_CFLAGS = $(PLUGIN_CF)
tests_plugins_probe_la_LDFLAGS = $(TEST_PLUGIN_LF)
# Outside tests/plugins/.libs so that the harness does not link it into every
# test's plugin directory; test_core.py does, on purpose.
tests_plugins_bad_badabi_la_SOURCES = tests/plugins/bad/badabi.c
tests_plugins_bad_badabi_la_CFLAGS = $(PLUGIN_CF)
tests_plugins_bad_badabi_la_LDFLAGS = $(TEST_PLUGIN_LF)

EXTRA_DIST += tests/integration/conftest.py tests/integration/test_core.py \
	tests/deps/core.txt

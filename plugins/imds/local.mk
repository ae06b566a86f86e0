# fragment: see the top-level Makefile.am
plugin_LTLIBRARIES += plugins/imds/imds.la
plugins_imds_imds_la_SOURCES = plugins/imds/imds.h plugins/imds/imds.c plugins/imds/imds-control.c \
	plugins/imds/imds-client.c plugins/imds/imds-meta.c plugins/imds/imds-notices.c \
	plugins/imds/imds-creds.c plugins/imds/imds-parse.c plugins/imds/imds-util.c
plugins_imds_imds_la_CFLAGS = $(PLUGIN_CF)
plugins_imds_imds_la_LDFLAGS = $(PLUGIN_LF)

# The parsers and helpers are pure: their tests link them alone, no host.
check_PROGRAMS += tests/unit/test-imds-parse tests/unit/test-imds-util tests/unit/test-imds-client
TESTS += tests/unit/test-imds-parse tests/unit/test-imds-util tests/unit/test-imds-client
tests_unit_test_imds_parse_SOURCES = tests/unit/test-imds-parse.c plugins/imds/imds-parse.c \
	plugins/imds/imds-util.c plugins/imds/imds.h
tests_unit_test_imds_parse_CFLAGS = $(UNIT_CF)
tests_unit_test_imds_parse_LDADD = $(JANSSON_LIBS) $(LIBUV_LIBS) $(CMOCKA_LIBS)
tests_unit_test_imds_util_SOURCES = tests/unit/test-imds-util.c plugins/imds/imds-util.c \
	plugins/imds/imds.h
tests_unit_test_imds_util_CFLAGS = $(UNIT_CF)
tests_unit_test_imds_util_LDADD = $(JANSSON_LIBS) $(LIBUV_LIBS) $(CMOCKA_LIBS)
# The client against a mock host (the test defines the host functions it
# uses), so it links neither the core nor a daemon.
tests_unit_test_imds_client_SOURCES = tests/unit/test-imds-client.c plugins/imds/imds-client.c \
	plugins/imds/imds-parse.c plugins/imds/imds-util.c plugins/imds/imds.h
tests_unit_test_imds_client_CFLAGS = $(UNIT_CF)
tests_unit_test_imds_client_LDADD = $(JANSSON_LIBS) $(LIBUV_LIBS) $(CMOCKA_LIBS)

EXTRA_DIST += plugins/imds/README.md tests/emulators/imds.py tests/integration/test_imds.py \
	tests/demo/20-imds.sh tests/deps/imds.txt

FUZZ_TARGETS += tests/fuzz/fuzz-imds
tests_fuzz_fuzz_imds_SOURCES = tests/fuzz/fuzz-imds.c plugins/imds/imds-parse.c \
	plugins/imds/imds-util.c plugins/imds/imds.h
tests_fuzz_fuzz_imds_CFLAGS = $(FUZZ_CF)
tests_fuzz_fuzz_imds_LDFLAGS = $(FUZZ_LF)
tests_fuzz_fuzz_imds_LDADD = $(JANSSON_LIBS)
EXTRA_DIST += tests/fuzz/corpus/fuzz-imds tests/bench/imds/wakeups.py

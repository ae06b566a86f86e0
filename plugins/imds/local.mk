# fragment: see the top-level Makefile.am
plugin_LTLIBRARIES += plugins/imds/imds.la
plugins_imds_imds_la_SOURCES = plugins/imds/imds.h plugins/imds/imds.c \
	plugins/imds/imds-client.c plugins/imds/imds-meta.c plugins/imds/imds-notices.c \
	plugins/imds/imds-creds.c plugins/imds/imds-parse.c plugins/imds/imds-util.c
plugins_imds_imds_la_CFLAGS = $(PLUGIN_CF)
plugins_imds_imds_la_LDFLAGS = $(PLUGIN_LF)

# The parsers and helpers are pure: their tests link them alone, no host.
check_PROGRAMS += tests/unit/test-imds-parse tests/unit/test-imds-util
TESTS += tests/unit/test-imds-parse tests/unit/test-imds-util
tests_unit_test_imds_parse_SOURCES = tests/unit/test-imds-parse.c plugins/imds/imds-parse.c \
	plugins/imds/imds-util.c plugins/imds/imds.h
tests_unit_test_imds_parse_CFLAGS = $(UNIT_CF)
tests_unit_test_imds_parse_LDADD = $(JANSSON_LIBS) $(LIBUV_LIBS) $(CMOCKA_LIBS)
tests_unit_test_imds_util_SOURCES = tests/unit/test-imds-util.c plugins/imds/imds-util.c \
	plugins/imds/imds.h
tests_unit_test_imds_util_CFLAGS = $(UNIT_CF)
tests_unit_test_imds_util_LDADD = $(JANSSON_LIBS) $(LIBUV_LIBS) $(CMOCKA_LIBS)

EXTRA_DIST += plugins/imds/README.md tests/emulators/imds.py tests/integration/test_imds.py \
	tests/demo/20-imds.sh tests/deps/imds.txt

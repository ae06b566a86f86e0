# fragment: see the top-level Makefile.am
plugin_LTLIBRARIES += plugins/logs/logs.la
plugins_logs_logs_la_SOURCES = plugins/logs/logs.c plugins/logs/logs.h \
	plugins/logs/pipeline.c plugins/logs/tail.c plugins/logs/tail-files.c plugins/logs/tail-access.c plugins/logs/logs-doctor.c plugins/logs/tail-int.h plugins/logs/checkpoint.c \
	plugins/logs/sink-cloudwatch.c plugins/logs/sink-s3.c plugins/logs/s3-upload.c plugins/logs/s3-int.h plugins/logs/journal.c \
	plugins/logs/lines.c plugins/logs/lines.h plugins/logs/glob.c plugins/logs/glob.h \
	plugins/logs/cwbatch.c plugins/logs/cwbatch.h plugins/logs/event.h \
	plugins/logs/evpool.c plugins/logs/evpool.h
plugins_logs_logs_la_CFLAGS = $(PLUGIN_CF)
plugins_logs_logs_la_LDFLAGS = $(PLUGIN_LF)
plugins_logs_logs_la_LIBADD = $(ZLIB_LIBS) $(LIBCRYPTO_LIBS) $(LIBSYSTEMD_LIBS) $(JANSSON_LIBS)

check_PROGRAMS += tests/unit/test-logs-lines tests/unit/test-logs-glob tests/unit/test-logs-cwbatch \
	tests/unit/test-logs-evpool
TESTS += tests/unit/test-logs-lines tests/unit/test-logs-glob tests/unit/test-logs-cwbatch \
	tests/unit/test-logs-evpool
tests_unit_test_logs_evpool_SOURCES = tests/unit/test-logs-evpool.c plugins/logs/evpool.c
tests_unit_test_logs_evpool_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_logs_evpool_LDADD = $(CMOCKA_LIBS)
tests_unit_test_logs_lines_SOURCES = tests/unit/test-logs-lines.c plugins/logs/lines.c
tests_unit_test_logs_lines_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_logs_lines_LDADD = $(CMOCKA_LIBS)
tests_unit_test_logs_glob_SOURCES = tests/unit/test-logs-glob.c plugins/logs/glob.c
tests_unit_test_logs_glob_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_logs_glob_LDADD = $(CMOCKA_LIBS)
tests_unit_test_logs_cwbatch_SOURCES = tests/unit/test-logs-cwbatch.c plugins/logs/cwbatch.c
tests_unit_test_logs_cwbatch_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_logs_cwbatch_LDADD = $(CMOCKA_LIBS) $(JANSSON_LIBS)

FUZZ_TARGETS += tests/fuzz/fuzz-logs-lines
tests_fuzz_fuzz_logs_lines_SOURCES = tests/fuzz/fuzz-logs-lines.c plugins/logs/lines.c
tests_fuzz_fuzz_logs_lines_CFLAGS = $(FUZZ_CF)
tests_fuzz_fuzz_logs_lines_LDFLAGS = $(FUZZ_LF)

EXTRA_DIST += plugins/logs/README.md tests/integration/test_logs.py \
	tests/integration/test_logs_s3.py tests/integration/test_logs_journal.py \
	tests/emulators/cwlogs.py tests/emulators/s3rver.js \
	tests/fuzz/corpus/fuzz-logs-lines tests/deps/logs.txt tests/setup/logs.sh \
	tests/demo/40-logs.sh tests/bench/logs

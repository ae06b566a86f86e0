# targetgroup plugin: see plugins/targetgroup/README.md
plugin_LTLIBRARIES += plugins/targetgroup/targetgroup.la
plugins_targetgroup_targetgroup_la_SOURCES = plugins/targetgroup/targetgroup.c \
	plugins/targetgroup/tg-group.c plugins/targetgroup/tg-query.c plugins/targetgroup/tg-view.c plugins/targetgroup/tg-doctor.c \
	plugins/targetgroup/tg.h
plugins_targetgroup_targetgroup_la_CFLAGS = $(PLUGIN_CF)
plugins_targetgroup_targetgroup_la_LDFLAGS = $(PLUGIN_LF)
plugins_targetgroup_targetgroup_la_LIBADD = $(EXPAT_LIBS) $(JANSSON_LIBS) $(LIBUV_LIBS)

check_PROGRAMS += tests/unit/test-targetgroup-query
TESTS += tests/unit/test-targetgroup-query
tests_unit_test_targetgroup_query_SOURCES = tests/unit/test-targetgroup-query.c \
	plugins/targetgroup/tg-query.c
tests_unit_test_targetgroup_query_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/targetgroup
tests_unit_test_targetgroup_query_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_targetgroup_query_LDADD = $(CMOCKA_LIBS) $(EXPAT_LIBS)

EXTRA_DIST += plugins/targetgroup/README.md tests/integration/test_targetgroup.py \
	tests/emulators/elbv2.py tests/demo/60-targetgroup.sh

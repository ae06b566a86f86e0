# route53 plugin: see plugins/route53/README.md
plugin_LTLIBRARIES += plugins/route53/route53.la
plugins_route53_route53_la_SOURCES = plugins/route53/route53.c plugins/route53/r53-record.c \
	plugins/route53/r53-xml.c plugins/route53/r53-rrset.c plugins/route53/r53-backoff.c \
	plugins/route53/r53.h
plugins_route53_route53_la_CFLAGS = $(PLUGIN_CF)
plugins_route53_route53_la_LDFLAGS = $(PLUGIN_LF)
plugins_route53_route53_la_LIBADD = $(EXPAT_LIBS) $(JANSSON_LIBS) $(LIBUV_LIBS)

check_PROGRAMS += tests/unit/test-route53-xml
TESTS += tests/unit/test-route53-xml
tests_unit_test_route53_xml_SOURCES = tests/unit/test-route53-xml.c \
	plugins/route53/r53-xml.c plugins/route53/r53-rrset.c
tests_unit_test_route53_xml_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/route53
tests_unit_test_route53_xml_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_route53_xml_LDADD = $(CMOCKA_LIBS) $(EXPAT_LIBS)

check_PROGRAMS += tests/unit/test-route53-backoff
TESTS += tests/unit/test-route53-backoff
tests_unit_test_route53_backoff_SOURCES = tests/unit/test-route53-backoff.c \
	plugins/route53/r53-backoff.c
tests_unit_test_route53_backoff_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/route53
tests_unit_test_route53_backoff_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_route53_backoff_LDADD = $(CMOCKA_LIBS)

EXTRA_DIST += plugins/route53/README.md tests/integration/test_route53.py \
	tests/emulators/route53.py tests/demo/70-route53.sh

# fragment: see the top-level Makefile.am
# The config loader: YAML → nodes with positions → structs from option tables.
conf_sources = agentd/conf.h agentd/conf-internal.h agentd/conf-errors.c agentd/conf-yaml.c \
	agentd/conf-free.c agentd/conf-node.c \
	agentd/conf-load.c agentd/conf-apply.c agentd/conf-value.c agentd/conf-scalar.c \
	agentd/conf-format.c agentd/conf-dump.c agentd/template.c
CORE_SOURCES += $(conf_sources)

check_PROGRAMS += tests/unit/test-conf-scalar tests/unit/test-conf-load \
	tests/unit/test-conf-apply tests/unit/test-conf-template
TESTS += tests/unit/test-conf-scalar tests/unit/test-conf-load \
	tests/unit/test-conf-apply tests/unit/test-conf-template
tests_unit_test_conf_scalar_SOURCES = tests/unit/test-conf-scalar.c
tests_unit_test_conf_scalar_CFLAGS = $(UNIT_CF)
tests_unit_test_conf_scalar_LDADD = $(UNIT_LIBS)
tests_unit_test_conf_load_SOURCES = tests/unit/test-conf-load.c
tests_unit_test_conf_load_CFLAGS = $(UNIT_CF) -DCONF_TEST_DATA=\"$(abs_top_srcdir)/tests/data/config\"
tests_unit_test_conf_load_LDADD = $(UNIT_LIBS)
tests_unit_test_conf_apply_SOURCES = tests/unit/test-conf-apply.c tests/unit/conf-test-schema.h
tests_unit_test_conf_apply_CFLAGS = $(UNIT_CF) -DCONF_TEST_DATA=\"$(abs_top_srcdir)/tests/data/config\"
tests_unit_test_conf_apply_LDADD = $(UNIT_LIBS)
tests_unit_test_conf_template_SOURCES = tests/unit/test-conf-template.c
tests_unit_test_conf_template_CFLAGS = $(UNIT_CF)
tests_unit_test_conf_template_LDADD = $(UNIT_LIBS)
EXTRA_DIST += tests/data/config

FUZZ_TARGETS += tests/fuzz/fuzz-conf
tests_fuzz_fuzz_conf_SOURCES = tests/fuzz/fuzz-conf.c tests/unit/conf-test-schema.h $(conf_sources)
tests_fuzz_fuzz_conf_CFLAGS = $(FUZZ_CF)
tests_fuzz_fuzz_conf_LDFLAGS = $(FUZZ_LF)
tests_fuzz_fuzz_conf_LDADD = $(DEPS_LIBS) $(HTTP_PARSER_LIBS)
EXTRA_DIST += tests/fuzz/corpus/fuzz-conf

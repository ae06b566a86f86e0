# fragment: the daemon core (see the top-level Makefile.am)
CORE_SOURCES += \
	agentd/host.h \
	agentd/log.c \
	agentd/notify.c \
	agentd/plugin.c \
	agentd/lifecycle.c \
	agentd/builtins.c \
	agentd/core-conf.c \
	agentd/hostconf.c \
	agentd/events.c \
	agentd/metadata.c \
	agentd/healthreg.c \
	agentd/metrics.c \
	agentd/state.c \
	agentd/work.c \
	agentd/child.c \
	agentd/control-proto.h \
	agentd/control-proto.c \
	agentd/control.c \
	agentd/control-cmds.c \
	agentd/reload.c \
	agentd/stopseq.c \
	agentd/daemon.c

# The helper that gives children PR_SET_PDEATHSIG (die_with_agentd).
pkglibexec_PROGRAMS += agentd/agentd-exec
agentd_agentd_exec_SOURCES = agentd/agentd-exec.c

bin_PROGRAMS += agentd/agentctl/agentctl
agentd_agentctl_agentctl_SOURCES = agentd/agentctl/agentctl.c agentd/agentctl/render.c \
	agentd/agentctl/render.h agentd/agentctl/wait.c agentd/agentctl/doctor.c agentd/control-proto.c \
	agentd/control-proto.h
agentd_agentctl_agentctl_CPPFLAGS = $(AM_CPPFLAGS) -DAGENTD_SBINDIR=\"$(sbindir)\"
agentd_agentctl_agentctl_CFLAGS = $(AM_CFLAGS)
agentd_agentctl_agentctl_LDADD = $(JANSSON_LIBS)

# Unit tests of the core modules.
core_unit_tests = \
	tests/unit/test-events \
	tests/unit/test-state \
	tests/unit/test-control-proto \
	tests/unit/test-metrics \
	tests/unit/test-healthreg \
	tests/unit/test-metadata \
	tests/unit/test-log \
	tests/unit/test-lifecycle \
	tests/unit/test-work-child
check_PROGRAMS += $(core_unit_tests)
TESTS += $(core_unit_tests)
tests_unit_test_events_SOURCES = tests/unit/test-events.c tests/unit/core-test.h
tests_unit_test_events_CFLAGS = $(UNIT_CF)
tests_unit_test_events_LDADD = $(UNIT_LIBS)
tests_unit_test_state_SOURCES = tests/unit/test-state.c tests/unit/core-test.h
tests_unit_test_state_CFLAGS = $(UNIT_CF)
tests_unit_test_state_LDADD = $(UNIT_LIBS)
tests_unit_test_control_proto_SOURCES = tests/unit/test-control-proto.c tests/unit/core-test.h
tests_unit_test_control_proto_CFLAGS = $(UNIT_CF)
tests_unit_test_control_proto_LDADD = $(UNIT_LIBS)
tests_unit_test_metrics_SOURCES = tests/unit/test-metrics.c tests/unit/core-test.h
tests_unit_test_metrics_CFLAGS = $(UNIT_CF)
tests_unit_test_metrics_LDADD = $(UNIT_LIBS)
tests_unit_test_healthreg_SOURCES = tests/unit/test-healthreg.c tests/unit/core-test.h
tests_unit_test_healthreg_CFLAGS = $(UNIT_CF)
tests_unit_test_healthreg_LDADD = $(UNIT_LIBS)
tests_unit_test_metadata_SOURCES = tests/unit/test-metadata.c tests/unit/core-test.h
tests_unit_test_metadata_CFLAGS = $(UNIT_CF)
tests_unit_test_metadata_LDADD = $(UNIT_LIBS)
tests_unit_test_log_SOURCES = tests/unit/test-log.c tests/unit/core-test.h
tests_unit_test_log_CFLAGS = $(UNIT_CF)
tests_unit_test_log_LDADD = $(UNIT_LIBS)
tests_unit_test_lifecycle_SOURCES = tests/unit/test-lifecycle.c tests/unit/core-test.h
tests_unit_test_lifecycle_CFLAGS = $(UNIT_CF)
tests_unit_test_lifecycle_LDADD = $(UNIT_LIBS)
tests_unit_test_work_child_SOURCES = tests/unit/test-work-child.c tests/unit/core-test.h
tests_unit_test_work_child_CFLAGS = $(UNIT_CF)
tests_unit_test_work_child_LDADD = $(UNIT_LIBS)

# Headers every core file includes (the ABI and the loader contract); listed
# here so that "make dist" carries them.
EXTRA_DIST += agentd/include/agentd/plugin.h agentd/conf.h tests/bench/core/measure.py

FUZZ_TARGETS += tests/fuzz/fuzz-control-proto
tests_fuzz_fuzz_control_proto_SOURCES = tests/fuzz/fuzz-control-proto.c agentd/control-proto.c \
	agentd/control-proto.h
tests_fuzz_fuzz_control_proto_CFLAGS = $(FUZZ_CF)
tests_fuzz_fuzz_control_proto_LDFLAGS = $(FUZZ_LF)
tests_fuzz_fuzz_control_proto_LDADD = $(JANSSON_LIBS)
EXTRA_DIST += tests/fuzz/corpus/fuzz-control-proto

# agentctl's tests: text views (golden files), wait, doctor.
EXTRA_DIST += tests/integration/test_admin.py tests/integration/test_doctor.py tests/data/agentctl

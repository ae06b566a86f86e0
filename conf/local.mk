# fragment: see the top-level Makefile.am
# What an installed agentd needs besides its programs: the default config,
# the systemd unit, sysusers/tmpfiles entries, man pages, bash completion.

agentdconf_DATA += conf/agentd.yaml

# The unit names the installed paths, substituted at build time.
systemdsystemunit_DATA = conf/agentd.service
conf/agentd.service: $(srcdir)/conf/agentd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' \
	    -e 's|@bindir[@]|$(bindir)|g' \
	    -e 's|@agentdconfdir[@]|$(agentdconfdir)|g' \
	    $(srcdir)/conf/agentd.service.in >$@.tmp && mv $@.tmp $@
CLEANFILES += conf/agentd.service conf/agentd.service.tmp

# Not $(libdir): these directories are fixed, not multiarch.
sysusersdir = $(prefix)/lib/sysusers.d
dist_sysusers_DATA = conf/sysusers.d/agentd.conf
tmpfilesdir = $(prefix)/lib/tmpfiles.d
dist_tmpfiles_DATA = conf/tmpfiles.d/agentd.conf

dist_man_MANS += conf/man/agentd.8 conf/man/agentctl.8 conf/man/agentd.yaml.5

bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = conf/completion/agentctl

# conf.d/ exists even when empty, so "ls /etc/agentd/conf.d" shows where
# drop-ins go.
install-data-local: install-agentd-confd
install-agentd-confd:
	$(MKDIR_P) $(DESTDIR)$(agentdconfdir)/conf.d
.PHONY: install-agentd-confd

EXTRA_DIST += conf/agentd.yaml conf/agentd.service.in conf/check-unit.sh \
	conf/cloud-init/README.md conf/cloud-init/app-behind-alb.yaml \
	conf/cloud-init/logs-s3-and-tunnel.yaml \
	tests/integration/test_packaging.py tests/deps/pkg.txt \
	tests/e2e/run tests/e2e/build-deb tests/e2e/parts/README.md \
	tests/e2e/parts/10-health.sh tests/e2e/parts/20-imds.sh \
	tests/e2e/parts/50-tunnel.sh tests/e2e/parts/60-targetgroup.sh \
	tests/e2e/parts/70-logs.sh

# The unit is linted by systemd itself: "verify" (a typo is only a warning
# on stderr, so any stderr fails) and the offline "security" exposure
# (threshold 20 = exposure 2.0). Shell tests run without the LOG_COMPILER
# that "make check" may set for C programs (valgrind).
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)
TESTS += conf/check-unit.sh
conf/check-unit.log: conf/agentd.service

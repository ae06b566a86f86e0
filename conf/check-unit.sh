#!/bin/sh
# make check: lints the generated conf/agentd.service with systemd's own
# tools. Run from the top build directory; exit 77 = skipped.
set -u
unit=conf/agentd.service
[ -f "$unit" ] || { echo "FAIL: $unit not built"; exit 1; }
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze not installed (Debian package systemd)"
    exit 77
fi
fail=0
if grep -n '@[a-z_]*@' "$unit"; then
    echo "FAIL: unsubstituted @variables@ in $unit"
    fail=1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify insists that every Exec*= program exists: the installed paths do not
# exist yet here, so agentd is replaced by a stand-in (the unit file name
# must stay agentd.service).
printf '#!/bin/sh\nexit 0\n' >"$tmp/agentd"
chmod +x "$tmp/agentd"
sed -E "s#^(Exec[A-Za-z]*=[-@+!:]*)/[^ ]*/agentd( |\$)#\1$tmp/agentd\2#" "$unit" >"$tmp/agentd.service"

# A typo ("Unknown key") is only a warning with exit status 0: any stderr
# line about our unit fails the test. Lines about other units of the host
# (dependencies verify loads) are shown, not counted.
systemd-analyze verify --man=no "$tmp/agentd.service" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err"
if [ $rc -ne 0 ] || grep -q -e "$tmp" -e 'agentd.service' "$tmp/err"; then
    echo "FAIL: systemd-analyze verify (exit $rc)"
    fail=1
else
    echo "ok: systemd-analyze verify is clean"
fi

# Exposure must stay at most 2.0 ("OK"); the offline mode reads the file
# alone, no running manager needed (systemd >= 250).
if systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
    systemd-analyze security --offline=true --threshold=20 --no-pager "$tmp/agentd.service" >"$tmp/sec" 2>&1
    rc=$?
    grep -e '^✗' -e 'Overall exposure' "$tmp/sec"
    if [ $rc -ne 0 ]; then
        cat "$tmp/sec"
        echo "FAIL: systemd-analyze security --threshold=20 (exit $rc)"
        fail=1
    else
        echo "ok: exposure at most 2.0"
    fi
else
    echo "SKIP: this systemd-analyze has no security --offline (systemd < 250)"
    [ $fail -eq 0 ] && exit 77
fi
exit $fail

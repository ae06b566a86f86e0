"""The logs plugin's journal source, across a restart. No journald runs in
the test environment, so the journal is real journal files written by
systemd-journal-remote into a directory the source reads (journal:
directory:), which exercises the same sd_journal calls, matches, fd wakeups
and cursors."""
import os
import pathlib
import subprocess
import sys
import time

import pytest

from conftest import wait_for

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_logs import Cwl, CORE, ENV, restart  # noqa: E402

REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def cwl():
    c = Cwl()
    yield c
    c.close()


def append(jdir, entries):
    """Appends entries (unit, priority, message) to jdir/remote.journal."""
    now = int(time.time() * 1e6)
    out = []
    for i, (unit, prio, msg) in enumerate(entries):
        out.append("__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n"
                   "_SYSTEMD_UNIT=%s\nSYSLOG_IDENTIFIER=%s\n_PID=42\nPRIORITY=%d\nMESSAGE=%s\n\n"
                   % (now + i, now + i, BOOT, unit, unit.split(".")[0], prio, msg))
    subprocess.run([REMOTE, "--output=%s/remote.journal" % jdir, "-"], input="".join(out),
                   text=True, check=True, capture_output=True)


def test_journal_across_restart(agentd_factory, cwl, tmp_path):
    if not os.path.exists(REMOTE):
        pytest.skip("systemd-journal-remote is not installed (tests/deps/logs.txt lists it)")
    jdir = tmp_path / "journal"
    jdir.mkdir()
    append(jdir, [("app.service", 6, "J%05d first" % n) for n in range(50)] +
           [("other.service", 6, "not wanted"), ("app.service", 7, "debug, not wanted")])
    body = """
logs:
  - name: jr
    journal: {units: [app.service], priority: info, directory: %s}
    checkpoint_interval: 100ms
    cloudwatch: {group: journal-logs, flush_interval: 100ms}
""" % jdir
    env = dict(ENV, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=cwl.url)
    d = agentd_factory(body, core=CORE, env=env)
    d.start()
    wait_for(lambda: cwl.stored() >= 50, timeout=30, what="50 journal entries")
    # Entries written while it runs arrive through the journal's fd.
    append(jdir, [("app.service", 3, "J%05d live" % n) for n in range(50, 60)])
    wait_for(lambda: cwl.stored() >= 60, timeout=30, what="10 live entries")
    wait_for(lambda: d.ctl("logs", "status")["pipelines"][0]["journal"]["cursor"], timeout=10,
             what="a cursor acknowledged")
    assert d.stop() == 0
    append(jdir, [("app.service", 6, "J%05d while down" % n) for n in range(60, 80)])
    restart(d)
    wait_for(lambda: cwl.stored() >= 80, timeout=30, what="the entries written while down")
    time.sleep(0.5)
    msgs = [e["message"] for e in cwl.events()]
    assert len(msgs) == 80, msgs[-5:]
    assert msgs[0] == "app[42]: J00000 first"
    assert [int(m.split("J")[1][:5]) for m in msgs] == list(range(80))
    assert d.stop() == 0


def test_journal_unavailable_keeps_files(agentd_factory, cwl, tmp_path):
    """Without a journal (here: a directory that is not one) the pipeline's
    files still ship and the status says what is wrong."""
    log = tmp_path / "app.log"
    log.write_text("L00000000 a file line\n")
    body = """
logs:
  - name: jf
    files: [%s]
    journal: {directory: %s}
    cloudwatch: {group: journal-logs, flush_interval: 100ms}
""" % (log, tmp_path / "no-such-dir")
    env = dict(ENV, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=cwl.url)
    d = agentd_factory(body, core=CORE, env=env)
    d.start()
    wait_for(lambda: cwl.stored() >= 1, timeout=20, what="the file's line")
    st = d.ctl("logs", "status")["pipelines"][0]
    assert "journal" in st["journal"]["error"]
    assert d.stop() == 0

"""The logs plugin against the CloudWatch Logs emulator: every test counts the
lines written against the events received (each line carries its number)."""
import collections
import json
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
import urllib.request

import pytest

from conftest import EMULATORS, Emulator, plugin_dir, run_agentd, wait_for

sys.path.insert(0, str(EMULATORS))
import emulib  # noqa: E402

AKID = "AKIDTESTLOGS0001"
ENV = {
    "AWS_ACCESS_KEY_ID": AKID,
    "AWS_SECRET_ACCESS_KEY": emulib.derive_secret(AKID),
    "AWS_REGION": "us-east-1",
}
CORE = {"metadata": {"instance_id": "i-0123456789abcdef0"}}
LINE_RX = re.compile(r"^L(\d{8}) ")


class Cwl:
    """The emulator with helpers to read back what agentd shipped."""

    def __init__(self):
        self.emu = Emulator("cwlogs.py", "--quiet")
        self.url = self.emu.base_url

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.load(r)

    def faults(self, **kw):
        req = urllib.request.Request(self.url + "/_admin/faults", data=json.dumps(kw).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def stats(self):
        return self.get("/_admin/stats")

    def stored(self):
        return self.stats()["put_events"]

    def events(self, group=None):
        return self.get("/_admin/events" + ("?group=" + group if group else ""))["events"]

    def close(self):
        self.emu.close()


@pytest.fixture
def cwl():
    c = Cwl()
    yield c
    c.close()


def pipeline_yaml(name, files, group="app-logs", extra="", cw_extra=""):
    return """
logs:
  - name: %s
    files: %s
    rotate_wait: 300ms
    checkpoint_interval: 100ms
    rescan_interval: 1s
%s    cloudwatch:
      group: %s
      flush_interval: 100ms
%s""" % (name, json.dumps([str(f) for f in files]), extra, group, cw_extra)


def start(agentd_factory, cwl, body):
    env = dict(ENV, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=cwl.url)
    d = agentd_factory(body, core=CORE, env=env)
    d.start()
    return d


def restart(d):
    """Starts a stopped agentd again with the same state directory. The
    harness binds a fresh notify socket per start: remove the old one."""
    if d.notify:
        d.notify.close()
        d.notify = None
    try:
        os.unlink(d.tmp / "notify.sock")
    except FileNotFoundError:
        pass
    d.start()


def numbers(events):
    out = []
    for e in events:
        m = LINE_RX.match(e["message"])
        assert m, "unexpected event %r" % e["message"][:80]
        out.append(int(m.group(1)))
    return out


def line(n, pad=60):
    return "L%08d %s\n" % (n, "x" * (pad + n % 37))


def ranges(ns):
    out = []
    for n in ns:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ", ".join("%d-%d" % (a, b) for a, b in out[:20])


def check_exact(cwl, total, timeout=60, allow_dups=False):
    """Waits for every line 0..total-1; returns the number of duplicates.
    Fails on a missing or unknown line."""
    try:
        wait_for(lambda: cwl.stats()["distinct_messages"] >= total, timeout=timeout,
                 interval=0.5, what="%d distinct events stored" % total)
    except AssertionError:
        pass  # the exact comparison below says what is missing
    got = collections.Counter(numbers(cwl.events()))
    missing = [n for n in range(total) if got[n] == 0]
    assert not missing, "%d lines lost: %s" % (len(missing), ranges(missing))
    extra = [n for n in got if n >= total or n < 0]
    assert not extra, "unknown lines %s" % extra[:10]
    dups = sum(c - 1 for c in got.values())
    if not allow_dups:
        assert dups == 0, "%d duplicates" % dups
    return dups


def test_ship_restart_checkpoint(agentd_factory, cwl, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("".join(line(n) for n in range(1000)))
    body = pipeline_yaml("app", [tmp_path / "*.log"], cw_extra="      retention: 30d\n")
    d = start(agentd_factory, cwl, body)
    check_exact(cwl, 1000)
    st = d.ctl("logs", "status")["pipelines"][0]
    assert st["sink"]["group"] == "app-logs"
    assert st["sink"]["stream"] == "i-0123456789abcdef0"
    wait_for(lambda: d.ctl("logs", "status")["pipelines"][0]["files"][0]["acked_offset"]
             == log.stat().st_size, what="acked offset at the end")
    assert d.stop() == 0
    # Lines written while agentd is down are shipped after the restart, and
    # none of the first thousand again.
    with open(log, "a") as f:
        f.write("".join(line(n) for n in range(1000, 1500)))
    restart(d)
    check_exact(cwl, 1500)
    s = cwl.stats()
    assert s["created_groups"] == {"app-logs": 1}
    assert s["created_streams"] == {"app-logs/i-0123456789abcdef0": 1}
    assert s["groups"]["app-logs"]["retention"] == 30
    assert s["sig_errors"] == 0 and s["invalid"] == 0
    assert d.stop() == 0


def writer_rename(path, total, every, rate_pause=0.0):
    n = 0
    gen = 0
    f = open(path, "a")
    while n < total:
        chunk = min(1000, total - n)
        f.write("".join(line(i) for i in range(n, n + chunk)))
        f.flush()
        n += chunk
        if n % every == 0 and n < total:
            f.close()
            gen += 1
            os.rename(path, "%s.%d" % (path, gen))
            f = open(path, "a")
        if rate_pause:
            time.sleep(rate_pause)
    f.close()


def writer_copytruncate(path, total, every, rate_pause=0.0):
    n = 0
    gen = 0
    with open(path, "a") as f:
        while n < total:
            chunk = min(1000, total - n)
            f.write("".join(line(i) for i in range(n, n + chunk)))
            f.flush()
            n += chunk
            if n % every == 0 and n < total:
                # What logrotate's copytruncate does: copy, then truncate the
                # file the writer keeps open (O_APPEND).
                gen += 1
                shutil.copyfile(path, "%s.%d" % (path, gen))
                os.truncate(path, 0)
            if rate_pause:
                time.sleep(rate_pause)


@pytest.mark.parametrize("mode", ["rename", "copytruncate"])
def test_rotation_200k(agentd_factory, cwl, tmp_path, mode):
    log = tmp_path / "app.log"
    log.write_text("")
    # With copytruncate, a generation the shipper never read before the next
    # truncation is lost whatever it does: reading must not pause on the
    # sink, so memory is ample here. 200k lines at ~50k lines/s, rotated
    # every 50k lines.
    d = start(agentd_factory, cwl, pipeline_yaml("rot", [log], extra="    max_memory: 64MiB\n"))
    total = 200000
    w = writer_rename if mode == "rename" else writer_copytruncate
    t = threading.Thread(target=w, args=(str(log), total, 50000, 0.02))
    t.start()
    t.join()
    dups = check_exact(cwl, total, timeout=120, allow_dups=True)
    print("%s rotation: %d lines, %d duplicates" % (mode, total, dups))
    assert dups == 0
    assert d.stop() == 0


def test_deleted_while_reading(agentd_factory, cwl, tmp_path):
    log = tmp_path / "app.log"
    total = 60000
    log.write_text("".join(line(n) for n in range(total)))
    # A slow endpoint and little memory keep agentd mid-file when the file
    # goes away.
    cwl.faults(latency_ms=300)
    d = start(agentd_factory, cwl, pipeline_yaml("del", [log], extra="    max_memory: 600KiB\n"))
    wait_for(lambda: cwl.stored() > 0, timeout=30, what="first events")
    st = d.ctl("logs", "status")["pipelines"][0]["files"][0]
    assert st["read_offset"] < os.path.getsize(log), "the whole file was read already"
    log.unlink()
    cwl.faults(latency_ms=0)
    check_exact(cwl, total, timeout=90)
    wait_for(lambda: d.ctl("logs", "status")["pipelines"][0]["files"] == [], timeout=15,
             what="the deleted file closed")
    assert d.stop() == 0


def test_kill9_no_loss(agentd_factory, cwl, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    body = pipeline_yaml("k9", [log], extra="    max_memory: 1MiB\n")
    env = dict(ENV, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=cwl.url)
    d = agentd_factory(body, core=CORE, env=env)
    rng = random.Random(9)
    total = 150000
    cwl.faults(latency_ms=20)
    t = threading.Thread(target=writer_rename, args=(str(log), total, 40000, 0.03))
    t.start()
    kills = 0
    for _ in range(10):
        restart(d)
        time.sleep(rng.uniform(0.05, 0.6))
        d.stop(sig=signal.SIGKILL)
        kills += 1
    t.join()
    restart(d)
    dups = check_exact(cwl, total, timeout=120, allow_dups=True)
    print("kill -9 x%d: %d lines, %d duplicates (the unacknowledged tails)" % (kills, total, dups))
    # Duplicates come only from what was sent but not checkpointed when
    # killed: at most one batch in flight plus one checkpoint interval.
    assert dups <= kills * 12000
    assert d.stop() == 0


def test_endpoint_down_then_throttled(agentd_factory, cwl, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    cwl.faults(down=True)
    d = start(agentd_factory, cwl,
              pipeline_yaml("down", [log], extra="    max_memory: 512KiB\n"))
    total = 40000
    with open(log, "a") as f:
        f.write("".join(line(n) for n in range(total)))
    # Memory stays bounded while the endpoint is down: reading pauses.
    deadline = time.monotonic() + 30
    peak = 0
    while time.monotonic() < deadline:
        st = d.ctl("logs", "status")["pipelines"][0]
        peak = max(peak, st["queued_bytes"])
        time.sleep(0.5)
    assert 0 < peak <= 512 * 1024 + 256 * 1024 + 4096, peak
    assert st["files"][0]["read_offset"] < os.path.getsize(log)
    assert cwl.stored() == 0
    assert st["counters"]["retries"] > 0
    # Then 30% throttled, and a few 500s and connection resets on top; none
    # of them stores anything, so nothing may arrive twice.
    cwl.faults(down=False, throttle_rate=0.3, error_rate=0.05, reset_rate=0.05, seed=7)
    check_exact(cwl, total, timeout=120)
    s = cwl.stats()
    assert s["throttled"] > 0
    assert d.ctl("logs", "status")["pipelines"][0]["counters"]["events_shipped"] == total
    assert d.stop() == 0


def test_invalid_utf8_and_long_line(agentd_factory, cwl, tmp_path):
    log = tmp_path / "app.log"
    big = ("L%08d " % 1).encode() + bytes(random.Random(3).choice(b"abcdefgh") for _ in range(2 << 20))
    data = b"L00000000 bad \xff\xfe bytes \xc3 end\n" + big + b"\nL00000002 after\n"
    log.write_bytes(data)
    d = start(agentd_factory, cwl, pipeline_yaml("utf", [log]))
    wait_for(lambda: any(e["message"] == "L00000002 after" for e in cwl.events()), timeout=60,
             what="the line after the long one")
    evs = [e["message"] for e in cwl.events()]
    assert evs[0] == "L00000000 bad \ufffd\ufffd bytes \ufffd end"
    mark = " [split]"
    pieces = evs[1:-1]
    assert len(pieces) == 9  # 2 MiB + 10 bytes in 256 KiB pieces
    assert all(p.endswith(mark) for p in pieces[:-1]) and not pieces[-1].endswith(mark)
    joined = "".join(p[:-len(mark)] for p in pieces[:-1]) + pieces[-1]
    assert joined.encode() == big
    assert d.stop() == 0


def test_old_timestamps_dropped(agentd_factory, cwl, tmp_path):
    log = tmp_path / "app.log"
    now = time.time()
    old = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - 15 * 86400))
    new = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - 60))
    lines = ["%s L%08d old\n" % (old, n) for n in range(100)]
    lines += ["%s L%08d fresh\n" % (new, n) for n in range(100, 150)]
    # Three hours ahead: sent, and rejected by the service one by one.
    future = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 3 * 3600))
    lines += ["%s L%08d future\n" % (future, n) for n in range(150, 155)]
    log.write_text("".join(lines))
    extra = '    timestamp_format: "%Y-%m-%d %H:%M:%S"\n'
    d = start(agentd_factory, cwl, pipeline_yaml("old", [log], extra=extra))
    wait_for(lambda: cwl.stored() >= 50, timeout=30, what="fresh events")
    evs = cwl.events()
    assert len(evs) == 50 and all("fresh" in e["message"] for e in evs)
    # The parsed time is the event's timestamp.
    assert abs(evs[0]["timestamp"] / 1000 - (int(now) - 60)) < 2
    st = wait_for(lambda: (lambda p: p if p["counters"]["events_shipped"] == 50 else None)(
        d.ctl("logs", "status")["pipelines"][0]), timeout=10, what="50 acknowledged")
    assert st["counters"]["dropped"]["too_old"] == 100
    st = wait_for(lambda: (lambda p: p if p["counters"]["rejected"] == 5 else None)(
        d.ctl("logs", "status")["pipelines"][0]), timeout=10, what="5 rejected as too new")
    assert cwl.stats()["rejected"] == 5
    assert d.stop() == 0


def test_multiline_and_glob(agentd_factory, cwl, tmp_path):
    root = tmp_path / "logs"
    sub = root / "a" / "b"
    sub.mkdir(parents=True)
    (sub / "deep.log").write_text("2024-01-01 start one\n  at x\n  at y\n2024-01-01 start two\n")
    extra = "    multiline_start: '^[0-9]{4}-'\n    multiline_flush: 200ms\n"
    d = start(agentd_factory, cwl, pipeline_yaml("ml", [str(root) + "/**/*.log"], extra=extra))
    wait_for(lambda: cwl.stored() >= 2, timeout=20, what="two records")
    assert [e["message"] for e in cwl.events()] == [
        "2024-01-01 start one\n  at x\n  at y", "2024-01-01 start two"]
    # A file created later in a new directory is found by the rescan.
    (root / "c").mkdir()
    (root / "c" / "new.log").write_text("2024-01-02 later\n")
    wait_for(lambda: cwl.stored() >= 3, timeout=20, what="the new file's record")
    assert d.stop() == 0


def test_metrics_and_health(agentd_factory, cwl, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("".join(line(n) for n in range(100)))
    cwl.faults(down=True)
    extra = "    lag_threshold: 1s\n"
    d = start(agentd_factory, cwl, pipeline_yaml("mh", [log], extra=extra))

    def check(status):
        return [c for c in d.ctl("health")["checks"]
                if c["name"] == "logs:mh" and c["status"] == status and "behind" in c["output"]]
    wait_for(lambda: d.ctl("logs", "status")["pipelines"][0]["counters"]["retries"] > 0,
             timeout=20, what="failed attempts counted")
    wait_for(lambda: check("fail"), timeout=20, what="logs:mh failing while behind")
    cwl.faults(down=False)
    check_exact(cwl, 100)
    wait_for(lambda: [c for c in d.ctl("health")["checks"]
                      if c["name"] == "logs:mh" and c["status"] == "pass"],
             timeout=20, what="logs:mh passing again")
    assert d.ctl("health")["status"] == "pass"  # the check is not critical
    text = d.ctl_raw("metrics").stdout
    assert 'agentd_logs_events_shipped_total{pipeline="mh"} 100' in text
    assert 'agentd_logs_lines_read_total{pipeline="mh"} 100' in text
    assert re.search(r'agentd_logs_retries_total\{pipeline="mh"\} [1-9]', text)
    assert d.stop() == 0


@pytest.mark.parametrize("yaml_body,msg", [
    ("logs:\n  - name: x\n    files: [/tmp/x.log]\n    cloudwatch: {group: g, retention: 31d}\n",
     "retention"),
    ("logs:\n  - name: x\n    files: [/tmp/x.log]\n", "exactly one of cloudwatch and s3"),
    ("logs:\n  - name: x\n    files: [rel.log]\n    cloudwatch: {group: g}\n", "files"),
    ("logs:\n  - name: x\n    files: [/a.log]\n    multiline_start: '(['\n    cloudwatch: {group: g}\n",
     "multiline_start"),
    # Checkpoints are kept per pipeline name: two pipelines may not share one.
    ("logs:\n  - name: x\n    files: [/a.log]\n    cloudwatch: {group: g}\n"
     "  - name: x\n    files: [/b.log]\n    cloudwatch: {group: h}\n",
     "logs[1].name: 'x' is already used by logs[0]"),
])
def test_config_errors(tmp_path, yaml_body, msg):
    cfg = tmp_path / "agentd.yaml"
    cfg.write_text("agentd:\n  plugin_dir: %s\n" % plugin_dir(tmp_path) + yaml_body)
    r = run_agentd("-c", str(cfg), "--check-config")
    assert r.returncode == 78, r.stdout + r.stderr
    assert msg in r.stderr + r.stdout


def test_idle_files_closed_and_reopened(agentd_factory, cwl, tmp_path):
    logs = [tmp_path / ("f%d.log" % i) for i in range(3)]
    for i, p in enumerate(logs):
        p.write_text("".join(line(n) for n in range(i * 100, i * 100 + 100)))
    extra = "    close_inactive: 500ms\n    max_open_files: 2\n"
    d = start(agentd_factory, cwl, pipeline_yaml("idle", [tmp_path / "*.log"], extra=extra))
    # Two files open at most: the third waits until an idle one is closed.
    check_exact(cwl, 300, timeout=30)

    def states():
        return sorted(f["state"] for f in d.ctl("logs", "status")["pipelines"][0]["files"])
    wait_for(lambda: states() == ["idle"] * 3, timeout=20, what="three idle files (%s)" % states())
    # An idle file that grows is reopened at its position: no line twice.
    with open(logs[1], "a") as f:
        f.write("".join(line(n) for n in range(300, 350)))
    check_exact(cwl, 350, timeout=30)
    assert d.stop() == 0


def test_start_at_end(agentd_factory, cwl, tmp_path):
    old = tmp_path / "old.log"
    old.write_text("".join("old line %d\n" % n for n in range(100)))
    d = start(agentd_factory, cwl, pipeline_yaml("end", [tmp_path / "*.log"],
                                                  extra="    start_at: end\n"))
    wait_for(lambda: d.ctl("logs", "status")["pipelines"][0]["files"], timeout=10,
             what="the file found")
    with open(old, "a") as f:
        f.write("".join(line(n) for n in range(50)))
    # A file that appears after the start is read from its beginning.
    (tmp_path / "new.log").write_text("".join(line(n) for n in range(50, 80)))
    check_exact(cwl, 80)
    assert d.stop() == 0


def test_rotated_names_matched_too(agentd_factory, cwl, tmp_path):
    """With a glob that also matches the rotated names (app.log*), a renamed
    file is the same file under a new name: read on, never again from 0."""
    log = tmp_path / "app.log"
    log.write_text("")
    d = start(agentd_factory, cwl, pipeline_yaml("all", [str(tmp_path) + "/app.log*"]))
    t = threading.Thread(target=writer_rename, args=(str(log), 30000, 10000, 0.01))
    t.start()
    t.join()
    check_exact(cwl, 30000)
    files = d.ctl("logs", "status")["pipelines"][0]["files"]
    assert sorted(os.path.basename(f["path"]) for f in files) == [
        "app.log", "app.log.1", "app.log.2"]
    assert d.stop() == 0

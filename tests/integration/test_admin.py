"""The admin's tools: agentctl's text views (golden files under
tests/data/agentctl/), options anywhere on the line, help listing the plugins'
verbs, and agentctl wait.

Set AGENTD_UPDATE_GOLDEN=1 to rewrite the golden files from what agentctl
prints now (then read the diff before committing it)."""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import AGENTCTL, EMULATORS, SRC, Emulator, free_port, wait_for

sys.path.insert(0, str(EMULATORS))
import emulib  # noqa: E402

GOLDEN = SRC / "tests/data/agentctl"
AKID = "AKIDTESTADMIN0001"
INSTANCE = "i-0123456789abcdef0"
ENV = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": emulib.derive_secret(AKID),
       "AWS_REGION": "us-east-1", "TZ": "UTC"}
CORE = {"metadata": {"instance_id": INSTANCE, "region": "us-east-1"}}


@pytest.fixture(autouse=True)
def no_sanitizer_reports(tmp_path):
    """Under ASan+UBSan, a report in any agentd log of the test fails it."""
    yield
    for log in tmp_path.rglob("agentd.log"):
        text = log.read_text(errors="replace")
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert marker not in text, "%s in %s:\n%s" % (marker, log, text[-4000:])

# What changes from run to run, and what it becomes in a golden file.
NORMALISE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?"), "<TIME>"),
    (re.compile(r"\((in )?\d+ s( ago)?\)"), "(<AGE>)"),
    (re.compile(r"up \d+s"), "up <N>s"),
    (re.compile(r"^(\s*(dev|ino|fp|pid|seconds_in_state|uptime_s|lag_seconds|size|"
                r"allocated_port|attempts|restarts|off|lag_bytes|next_attempt_in_ms)\s*:\s*)\S+$", re.M), r"\1<N>"),
    (re.compile(r"agentd \d+\.\d+\.\d+\S*"), "agentd <VERSION>"),
]


def normalise(text, d, extra=()):
    text = text.replace(str(d.tmp), "<TMP>")
    for old, new in extra:
        text = text.replace(old, new)
    for rx, new in NORMALISE:
        text = rx.sub(new, text)
    return text


def golden(name, text):
    path = GOLDEN / name
    if os.environ.get("AGENTD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), "no golden file %s (run with AGENTD_UPDATE_GOLDEN=1)" % path
    want = path.read_text()
    assert text == want, "agentctl output differs from %s:\n--- got\n%s--- want\n%s" % (
        path, text, want)


def text_of(d, *args):
    r = d.ctl_raw(*args)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


class Port:
    """A TCP port that the test opens (accepting and closing connections)."""

    def __init__(self):
        self.port = free_port()
        self.sock = None

    def open(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.sock = s

        def loop():
            while True:
                try:
                    c, _ = s.accept()
                except OSError:
                    return
                c.close()
        threading.Thread(target=loop, daemon=True).start()

    def close(self):
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None


@pytest.fixture
def port():
    p = Port()
    yield p
    p.close()


def health_yaml(hp, checks):
    return """
health:
  listen: ["127.0.0.1:%d"]
  checks:
%s""" % (hp, checks)


def tcp_check(name, port, critical=True):
    return """    - name: %s
      tcp: 127.0.0.1:%d
      interval: 200ms
      timeout: 150ms
      rise: 1
      fall: 1
      critical: %s
""" % (name, port, "true" if critical else "false")


# --- options anywhere, help -----------------------------------------------------


def test_options_anywhere_and_exit_codes(agentd_factory, port, tmp_path):
    hp = free_port()
    d = agentd_factory(health_yaml(hp, tcp_check("db", port.port)), core=CORE, env=ENV).start()
    sock = str(d.socket)
    for argv in (["--socket", sock, "--json", "status"], ["status", "--json", "--socket", sock],
                 ["--socket=" + sock, "status", "-j"]):
        r = subprocess.run([str(AGENTCTL)] + argv, capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, (argv, r.stderr)
        assert json.loads(r.stdout)["plugins"], argv
    r = d.ctl_raw("health", "--json")
    assert json.loads(r.stdout)["checks"][0]["name"] == "db"
    # Unknown options are usage errors (2) before a plugin verb; after one they
    # are its arguments.
    assert d.ctl_raw("status", "--bogus").returncode == 2
    # Not running: 3, with --json after the command too.
    r = subprocess.run([str(AGENTCTL), "status", "--json", "--socket", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 3 and "not running" in r.stderr
    # An unknown plugin verb: 1.
    assert d.ctl_raw("health", "nosuchverb").returncode == 1
    assert d.stop() == 0


def tunnel_body(tmp_path):
    (tmp_path / "known_hosts").write_text("")
    return """tunnel:
  - name: vendor
    destination: agent@127.0.0.1:1
    identity: %s
    known_hosts: %s
    remote_forwards: ["0:127.0.0.1:9"]
""" % (tmp_path / "no-key", tmp_path / "known_hosts")


def test_help_lists_plugin_verbs(agentd_factory, tmp_path):
    d = agentd_factory(tunnel_body(tmp_path), core=CORE, env=ENV).start()
    verbs = d.ctl("verbs")
    assert verbs
    out = text_of(d, "--help")
    assert "Usage: agentctl" in out and "Plugin verbs" in out
    for v in verbs:
        line = re.search(r"^  %s %s +(.*)$" % (v["plugin"], v["verb"]), out, re.M)
        assert line and line.group(1) == v["help"], (v, out)
    out = text_of(d, "help", "tunnel")
    assert out.startswith("Verbs of tunnel")
    tv = [v for v in verbs if v["plugin"] == "tunnel"]
    assert len(tv) >= 2
    assert all(re.search(r"^  %s +%s$" % (v["verb"], re.escape(v["help"])), out, re.M)
               for v in tv), out
    out = text_of(d, "help", "tunnel", "restart")
    assert out == "agentctl tunnel restart: %s\n" % [v for v in tv if v["verb"] == "restart"][0]["help"]
    assert d.ctl_raw("tunnel", "--help").stdout.startswith("Verbs of tunnel")
    assert d.ctl_raw("help", "tunnel", "nosuchverb").returncode == 1
    # Without a daemon, --help still prints the usage and says why verbs are missing.
    r = subprocess.run([str(AGENTCTL), "--socket", "/nonexistent/sock", "--help"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "Usage: agentctl" in r.stdout and "not running" in r.stdout
    assert d.stop() == 0


# --- golden text views ----------------------------------------------------------


def test_golden_status_and_health(agentd_factory, port):
    port.open()
    hp = free_port()
    cache = free_port()
    d = agentd_factory(health_yaml(hp, tcp_check("db", port.port) +
                                   tcp_check("cache", cache, critical=False)),
                       core=CORE, env=ENV).start()
    wait_for(lambda: d.ctl("health")["checks"][0]["status"] == "pass", 10, what="db passes")
    wait_for(lambda: [c for c in d.ctl("health")["checks"] if c["name"] == "cache"][0]["status"]
             == "fail", 10, what="cache fails")
    ports = [(str(port.port), "<PORT>"), (str(hp), "<HPORT>"), (str(cache), "<CPORT>")]
    golden("status.txt", normalise(text_of(d, "status"), d, ports))
    golden("health.txt", normalise(text_of(d, "health"), d, ports))
    assert d.stop() == 0


@pytest.fixture
def cwl():
    e = Emulator("cwlogs.py", "--quiet")
    yield e
    e.close()


def test_golden_logs_status(agentd_factory, cwl, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("".join("line %d\n" % i for i in range(10)))
    body = """
logs:
  - name: app
    files: ["%s"]
    checkpoint_interval: 100ms
    cloudwatch:
      group: app-logs
      stream: "{instance_id}"
      flush_interval: 100ms
""" % log
    d = agentd_factory(body, core=CORE, env=dict(ENV, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=cwl.base_url))
    d.start()
    wait_for(lambda: d.ctl("logs", "status")["pipelines"][0]["counters"]["events_shipped"] == 10,
             20, what="10 lines shipped")
    # The files table is as wide as the temporary path: its gaps are collapsed.
    text = normalise(text_of(d, "logs", "status"), d, [(str(tmp_path), "<TMP>")])
    golden("logs-status.txt", re.sub(r"(?<=\S) {2,}(?=\S)", "  ", text))
    # The JSON view is the same data.
    assert d.ctl("logs", "status")["pipelines"][0]["name"] == "app"
    assert d.stop() == 0


@pytest.fixture
def elb():
    e = Emulator("elbv2.py")
    emulib_post(e.base_url + "/admin/instances", {INSTANCE: "127.0.0.1"})
    yield e
    e.close()


def emulib_post(url, obj):
    import urllib.request
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def tg_group(elb, name, hp):
    return emulib_post(elb.base_url + "/admin/target-groups", {
        "name": name, "port": 8000, "deregistration_delay": 1,
        "health_check": {"port": str(hp), "path": "/health", "interval": 0.5,
                         "timeout": 1, "healthy": 2, "unhealthy": 2}})["arn"]


def tg_config(elb, hp, app_port, arn):
    return health_yaml(hp, tcp_check("app", app_port)) + """
targetgroup:
  groups: [{arn: "%s", port: 8000}]
  poll_interval: 1s
  drain_poll_interval: 250ms
  endpoint: %s
""" % (arn, elb.base_url)


def tg_health(d):
    return d.ctl("targetgroup", "status")["groups"][0].get("target_health", {}).get("state")


def test_golden_targetgroup_status(agentd_factory, elb, port):
    port.open()
    hp = free_port()
    arn = tg_group(elb, "web", hp)
    d = agentd_factory(tg_config(elb, hp, port.port, arn), core=CORE, env=ENV).start()
    wait_for(lambda: tg_health(d) == "healthy", 20, what="ELB healthy")
    text = normalise(text_of(d, "targetgroup", "status"), d, [(arn, "<ARN>")])
    golden("targetgroup-status.txt", text)
    assert d.stop() == 0


def test_golden_tunnel_status(agentd_factory, tmp_path):
    # No server is needed: a missing identity file is a permanent error the
    # status shows the same way every time.
    d = agentd_factory(tunnel_body(tmp_path), core=CORE, env=ENV).start()
    # Between attempts it waits in backoff (0.7 s at first, then longer).
    for _ in range(20):
        wait_for(lambda: d.ctl("tunnel", "status")["tunnels"][0]["state"] == "backoff", 20,
                 interval=0.02, what="backoff after the first failure")
        text = normalise(text_of(d, "tunnel", "status"), d, [(str(tmp_path), "<TMP>")])
        if re.search(r"^    state: +backoff$", text, re.M):
            break
    golden("tunnel-status.txt", text)
    assert d.stop() == 0


# --- agentctl wait -----------------------------------------------------------------


def test_wait_returns_once_port_opens(agentd_factory, port):
    hp = free_port()
    d = agentd_factory(health_yaml(hp, tcp_check("postgres", port.port) +
                                   tcp_check("other", free_port(), critical=False)),
                       core=CORE, env=ENV).start()
    threading.Timer(3.0, port.open).start()
    t0 = time.monotonic()
    r = d.ctl_raw("wait", "--timeout", "20s", "postgres", timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert 2.5 < took < 6, took
    # Every critical check (the non-critical "other" fails and does not count).
    r = d.ctl_raw("wait", "--timeout=5s")
    assert r.returncode == 0, r.stderr
    assert d.stop() == 0


def test_wait_times_out_with_the_failing_check(agentd_factory, port):
    hp = free_port()
    d = agentd_factory(health_yaml(hp, tcp_check("postgres", port.port)), core=CORE,
                       env=ENV).start()
    wait_for(lambda: d.ctl("health")["checks"][0]["status"] == "fail", 10, what="fail")
    t0 = time.monotonic()
    r = d.ctl_raw("wait", "postgres", "--timeout", "1500ms")
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert 1.4 < took < 4, took
    assert "timed out after 1.5 s: postgres: fail: " in r.stderr, r.stderr
    # A check that does not exist is named as such.
    r = d.ctl_raw("wait", "--timeout", "300ms", "nosuch")
    assert r.returncode == 1 and "nosuch: no such check" in r.stderr, r.stderr
    # A bad duration is a usage error.
    assert d.ctl_raw("wait", "--timeout", "soon").returncode == 2
    assert d.stop() == 0


def test_wait_for_agentd_not_yet_running(tmp_path):
    r = subprocess.run([str(AGENTCTL), "--socket", str(tmp_path / "sock"), "wait", "--timeout",
                        "500ms"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "agentd is not running" in r.stderr, r.stderr


# --- the load balancer's view ----------------------------------------------------


def test_target_health_transitions_logged_and_published(agentd_factory, elb, port):
    port.open()
    hp = free_port()
    arn = tg_group(elb, "web", hp)
    d = agentd_factory(tg_config(elb, hp, port.port, arn) + "probe:\n  message: x\n", core=CORE,
                       env=ENV).start()
    wait_for(lambda: tg_health(d) == "healthy", 20, what="ELB healthy")
    # Configured by ARN, so the group is named by its ARN.
    d.wait_log(r"notice: targetgroup: group '%s': the load balancer sees this target healthy "
               r"\(was (initial|unknown)\)" % re.escape(arn))
    # The app goes down: our /health answers 503 and the emulator marks the
    # target unhealthy; the change is one warning with the reason.
    port.close()
    wait_for(lambda: tg_health(d) == "unhealthy", 20, what="ELB unhealthy")
    st = d.ctl("targetgroup", "status")["groups"][0]["target_health"]
    line = d.wait_log(r"warning: targetgroup: group '%s': the load balancer sees this target "
                      r"unhealthy \(was healthy\): %s: %s" % (re.escape(arn), re.escape(st["reason"]),
                                                           re.escape(st["description"])))
    assert st["reason"].startswith("Target."), st
    time.sleep(2.5)  # more polls: still one line per change
    assert len(re.findall(r"sees this target unhealthy", d.log())) == 1, d.log()
    assert len(re.findall(r"sees this target healthy", d.log())) == 1, d.log()
    seen = d.ctl("probe", "events")
    assert seen.count("targetgroup.target_health") in (2, 3), seen  # [initial,] healthy, unhealthy
    assert line
    assert d.stop() == 0


# --- unreadable log sources ------------------------------------------------------


@pytest.fixture
def unprivileged(monkeypatch, tmp_path):
    """Runs agentd without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so file
    modes apply to it as they do to agentd's own user on an instance. The
    tests run as root; dropping those capabilities from the bounding set
    before exec leaves uid 0 an ordinary owner or "other" for every file."""
    import conftest
    wrapper = tmp_path / "agentd-nodac"
    wrapper.write_text("#!/bin/sh\nexec setpriv --bounding-set=-dac_override,-dac_read_search "
                       "-- %s \"$@\"\n" % conftest.AGENTD)
    wrapper.chmod(0o755)
    monkeypatch.setattr(conftest, "AGENTD", wrapper)


def blocked_dir(tmp_path):
    """Docker's volume directory: 0710 and not ours (owner 65534 here, since
    agentd runs as uid 0 without its DAC capabilities; the group is not ours
    either), with a readable log inside."""
    d = tmp_path / "volumes"
    d.mkdir()
    (d / "app.log").write_text("one\ntwo\n")
    (d / "app.log").chmod(0o644)
    os.chown(d, 65534, 65534)
    d.chmod(0o710)
    return d


def test_unreadable_source_is_loud(agentd_factory, cwl, tmp_path, unprivileged):
    d0 = blocked_dir(tmp_path)
    body = """
logs:
  - name: app
    files: ["%s/app.log", "%s/*.txt", "%s/missing.log"]
    rescan_interval: 300ms
    cloudwatch:
      group: app-logs
      flush_interval: 100ms
""" % (d0, d0, tmp_path)
    d = agentd_factory(body, core=CORE, env=dict(ENV, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=cwl.base_url))
    d.start()
    d.wait_log(r"warning: logs: pipeline 'app': cannot read '%s/app.log' \(pattern '%s/app.log'\): "
               r"Permission denied \('%s' is mode 0710, owner 65534:65534\); "
               r"give agentd's user read access" % ((re.escape(str(d0)),) * 3))
    d.wait_log(r"pipeline 'app': cannot read '%s' \(pattern '%s/\*\.txt'\): Permission denied "
               r"\('%s' is mode 0710" % ((re.escape(str(d0)),) * 3))
    d.wait_log(r"pipeline 'app': cannot read '%s/missing.log' .*: No such file or directory; "
               r"the path does not exist" % re.escape(str(tmp_path)))
    st = d.ctl("logs", "status")["pipelines"][0]
    bad = {u["path"]: u for u in st["unreadable"]}
    assert bad[str(d0 / "app.log")]["errno"] == 13 and bad[str(d0 / "app.log")]["blocked_by"] == str(d0)
    assert bad[str(d0)]["pattern"] == str(d0) + "/*.txt"
    assert bad[str(tmp_path / "missing.log")]["error"] == "No such file or directory"
    assert st["files"] == []
    check = wait_for(lambda: [c for c in d.ctl("health")["checks"] if c["name"].startswith("logs")
                              and c["status"] == "warn"], 10, what="the pipeline's check warns")[0]
    assert "3 source(s) unreadable" in check["output"], check
    # Several rescans later: still one warning per problem.
    time.sleep(1.2)
    assert len(re.findall(r"cannot read '%s/app.log'" % re.escape(str(d0)), d.log())) == 1
    # The fix (o+x on the directory, like an ACL would): a notice, and the lines ship.
    d0.chmod(0o711)
    d.wait_log(r"notice: logs: pipeline 'app': '%s/app.log' is readable now" % re.escape(str(d0)))
    wait_for(lambda: d.ctl("logs", "status")["pipelines"][0]["counters"]["events_shipped"] == 2,
             20, what="the two lines shipped")
    st = d.ctl("logs", "status")["pipelines"][0]
    assert [u["path"] for u in st["unreadable"]] == [str(d0), str(tmp_path / "missing.log")], st
    assert d.stop() == 0


# --- per-path checks -------------------------------------------------------------


def http_get(port, path):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        return e.code, (json.loads(body) if body.startswith(b"{") else body)


def test_per_path_checks(agentd_factory, port):
    port.open()
    hp = free_port()
    body = health_yaml(hp, tcp_check("app", port.port) + tcp_check("db", free_port())) + """
  path_checks:
    /health: app
    /health/deep: "app, db"
    /health/typo: "app, dbb"
"""
    d = agentd_factory(body, core=CORE, env=ENV).start()
    wait_for(lambda: [c["status"] for c in d.ctl("health")["checks"]] == ["pass", "fail"], 10,
             what="app passes, db fails")
    # The shallow path reports only app: the load balancer keeps the target.
    code, b = http_get(hp, "/health")
    assert code == 200 and b["status"] == "pass" and list(b["checks"]) == ["app"], b
    code, b = http_get(hp, "/health?verbose")
    assert code == 200 and list(b["checks"]) == ["app"], b
    # The deep path (not in paths, served because it is mapped) shows the failing db.
    code, b = http_get(hp, "/health/deep")
    assert code == 503 and b["status"] == "fail" and sorted(b["checks"]) == ["app", "db"], b
    # A check named but not registered counts as failing.
    code, b = http_get(hp, "/health/typo")
    assert code == 503 and b["status"] == "fail", b
    # Everything else as before.
    assert http_get(hp, "/livez")[0] == 200
    assert http_get(hp, "/readyz")[0] == 503
    assert http_get(hp, "/nope")[0] == 404
    assert d.stop() == 0


def test_per_path_default_unchanged(agentd_factory, port):
    hp = free_port()
    d = agentd_factory(health_yaml(hp, tcp_check("app", port.port)), core=CORE, env=ENV).start()
    wait_for(lambda: d.ctl("health")["checks"][0]["status"] == "fail", 10, what="app fails")
    assert http_get(hp, "/health")[0] == 503
    assert http_get(hp, "/health/deep")[0] == 404
    assert d.stop() == 0


def test_per_path_config_errors(tmp_path):
    from conftest import plugin_dir, run_agentd
    cfg = tmp_path / "agentd.yaml"
    cfg.write_text("""agentd:
  plugin_dir: "%s"
health:
  listen: ["127.0.0.1:1"]
  path_checks:
    health/deep: db
    /x: ", "
""" % plugin_dir(tmp_path))
    r = run_agentd("--check-config", "-c", str(cfg))
    assert r.returncode != 0
    assert re.search(r"agentd\.yaml:\d+:\d+: health\.path_checks: 'health/deep' must start with '/'",
                     r.stderr), r.stderr
    assert "health.path_checks: '/x' names no checks" in r.stderr, r.stderr

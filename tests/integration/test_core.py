"""The daemon core as a black box: config checking, the control socket,
signals, sd_notify, and the plugin host (test plugins probe, failstart and
badabi from tests/plugins)."""
import json
import os
import pathlib
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import AGENTD, AGENTCTL, BUILD, run_agentd, wait_for

PROBE = "probe:\n  message: \"one\"\n"


def write(path, text):
    path = pathlib.Path(path)
    path.write_text(text)
    return path


def core_yaml(tmp_path, extra=""):
    from conftest import plugin_dir
    return ("agentd:\n  plugin_dir: %s\n  state_dir: %s\n" % (plugin_dir(tmp_path), tmp_path / "state")
            + extra)


# ---- --check-config ---------------------------------------------------------

def test_check_config_good(tmp_path):
    cfg = write(tmp_path / "agentd.yaml", core_yaml(tmp_path) + PROBE)
    r = run_agentd("--check-config", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"


def test_check_config_bad_reports_every_error_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "agentd.yaml", core_yaml(tmp_path, "  stop_timeout: 5x\n  bogus: 1\n")
          + "prob:\n  message: x\n"
          + "probe:\n  stop_delay: \"later\"\n  mesage: hi\n")
    r = run_agentd("--check-config", "-c", "agentd.yaml")
    assert r.returncode == 78
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        'agentd.yaml:4:17: agentd.stop_timeout: "5x" is not a duration (e.g. 250ms, 5s, 2m, 1h)',
        "agentd.yaml:5:3: agentd.bogus: unknown option",
        "agentd.yaml:6:1: prob: unknown plugin 'prob' (did you mean 'probe'?)",
        'agentd.yaml:9:15: probe.stop_delay: "later" is not a duration (e.g. 250ms, 5s, 2m, 1h)',
        "agentd.yaml:10:3: probe.mesage: unknown option (did you mean 'message'?)",
    ]


def test_bad_config_starts_nothing(tmp_path):
    sock = tmp_path / "c.sock"
    cfg = write(tmp_path / "agentd.yaml", core_yaml(tmp_path, "  control_socket: %s\n" % sock)
                + "probe:\n  message: \"{nosuch}\"\n")
    r = run_agentd("-c", str(cfg), "--foreground", timeout=20)
    assert r.returncode == 78
    assert "probe.message: unknown template {nosuch}" in r.stderr
    assert "not starting" in r.stderr
    assert not sock.exists()


def test_dump_config_and_list_options(tmp_path):
    cfg = write(tmp_path / "agentd.yaml", core_yaml(tmp_path, "  metadata:\n    region: eu-west-1\n")
                + PROBE)
    r = run_agentd("--dump-config", "-c", str(cfg), env={"RUNTIME_DIRECTORY": "/run/x"})
    assert r.returncode == 0, r.stderr
    from conftest import plugin_dir
    assert r.stdout.startswith(
        "agentd:\n  plugin_dir: %s\n  state_dir: %s\n  control_socket: /run/x/control.sock\n"
        "  log_level: info\n  stop_timeout: 30s\n" % (plugin_dir(tmp_path), tmp_path / "state"))
    assert "\nprobe:\n  message: one\n  stop_delay: 0s\n" in r.stdout
    r = run_agentd("--list-options", "agentd", "-c", str(cfg))
    assert r.returncode == 0
    assert "stop_timeout (duration, default 30s" in r.stdout
    r = run_agentd("--list-plugins", "-c", str(cfg))
    assert r.returncode == 0
    assert "aws" in r.stdout and "probe" in r.stdout and "failstart" in r.stdout
    r = run_agentd("--version")
    assert r.returncode == 0 and r.stdout.startswith("agentd ")


def test_agentctl_check_config(tmp_path):
    good = write(tmp_path / "good.yaml", core_yaml(tmp_path) + PROBE)
    bad = write(tmp_path / "bad.yaml", core_yaml(tmp_path) + "probe:\n  can_reload: maybe\n")
    env = dict(os.environ, AGENTD_PLUGIN_DEV="1")
    r = subprocess.run([str(AGENTCTL), "check-config", str(good)], capture_output=True, text=True,
                       env=env, timeout=30)
    assert (r.returncode, r.stdout) == (0, "configuration OK\n")
    r = subprocess.run([str(AGENTCTL), "check-config", str(bad)], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 78
    assert "probe.can_reload" in r.stderr


# ---- agentctl and the control socket ----------------------------------------

def test_agentctl_not_running(tmp_path):
    sock = tmp_path / "nope.sock"
    r = subprocess.run([str(AGENTCTL), "--socket", str(sock), "status"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 3
    assert r.stderr == "agentd is not running (no socket at %s)\n" % sock


def test_status_and_plugins(agentd_factory):
    d = agentd_factory(PROBE).start()
    st = d.ctl("status")
    assert st["version"]
    assert isinstance(st["uptime_s"], int)
    assert st["config"] == str(d.config)
    assert st["reload"] == {"ok": True, "time": None, "errors": []}
    plugins = {p["name"]: p for p in st["plugins"]}
    assert plugins["probe"]["state"] == "running"
    assert plugins["probe"]["summary"] == "probing: one"
    assert plugins["probe"]["details"]["starts"] == 1
    assert plugins["aws"]["state"] == "running"
    names = [p["name"] for p in d.ctl("plugins")]
    assert names == ["aws", "probe"]
    assert oct(os.stat(d.socket).st_mode & 0o777) == "0o660"
    human = d.ctl_raw("status")
    assert human.returncode == 0
    assert human.stdout.startswith("agentd %s, up " % st["version"])
    assert "config: %s\n" % d.config in human.stdout
    assert "  probe          running   probing: one\n" in human.stdout
    human = d.ctl_raw("plugins")
    assert "  probe          running   test plugin exercising the host services\n" in human.stdout
    human = d.ctl_raw("health")
    assert human.stdout == "overall: pass\n  pass probe:main                   probe started\n"
    assert d.stop() == 0
    assert not d.socket.exists()


def test_bad_json_gets_error_and_connection_stays_usable(agentd_factory):
    d = agentd_factory(PROBE).start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(d.socket))
    f = s.makefile("rwb")
    for bad in (b"this is not json\n", b'{"cmd":"status"}\n', b'{"v":1,"cmd":"frobnicate"}\n',
                b"[1,2,3]\n"):
        f.write(bad)
        f.flush()
        reply = json.loads(f.readline())
        assert reply["v"] == 1 and reply["ok"] is False and reply["error"], reply
    f.write(b'{"v":1,"cmd":"status"}\n')
    f.flush()
    reply = json.loads(f.readline())
    assert reply["ok"] is True
    assert reply["result"]["plugins"][1]["name"] == "probe"
    # Requests pipelined in one write get their replies in order.
    f.write(b'{"v":1,"cmd":"plugins"}\n{"v":1,"cmd":"nope"}\n{"v":1,"cmd":"health"}\n')
    f.flush()
    replies = [json.loads(f.readline()) for _ in range(3)]
    assert [r["ok"] for r in replies] == [True, False, True]
    assert replies[1]["error"] == "unknown command 'nope'"
    assert replies[2]["result"]["status"] == "pass"
    s.close()
    assert d.request({"v": 1, "cmd": "plugins"})["ok"] is True


def test_oversized_request_refused_and_closed(agentd_factory):
    d = agentd_factory(PROBE).start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(d.socket))
    payload = b'{"v":1,"cmd":"status","pad":"' + b"x" * 70000 + b'"}\n'
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the daemon may close before we finish writing
    buf = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    s.close()
    reply = json.loads(buf.split(b"\n")[0])
    assert reply["ok"] is False
    assert reply["error"] == "request too large (limit 65536 bytes)"
    # The daemon is unaffected; a request of exactly the limit is still fine.
    assert d.ctl("status")["plugins"][1]["state"] == "running"
    line = b'{"v":1,"cmd":"plugins","pad":"'
    line += b"y" * (65536 - len(line) - 3) + b'"}\n'
    assert len(line) == 65536
    assert d.request(None, raw=line)["ok"] is True


def _connect_as(sock_path, uid, gid, groups=()):
    """Connects from a child that dropped to uid/gid; returns the reply."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(sock_path)
            try:
                s.sendall(b'{"v":1,"cmd":"status"}\n')
            except BrokenPipeError:
                pass  # refused peers may be cut off before they write; the reply is buffered
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            os.write(w, data or b"EOF\n")
        except BaseException as e:  # report anything to the parent
            os.write(w, ("EXC %r\n" % e).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return out.decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_peer_without_permission_denied(agentd_factory):
    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrgid(nobody.pw_gid)
    # A directory anyone can traverse, so that only agentd's check stands
    # between the unprivileged peer and the daemon.
    sockdir = pathlib.Path(tempfile.mkdtemp(prefix="agentd-sock-"))
    try:
        sockdir.chmod(0o755)
        sock = sockdir / "control.sock"
        d = agentd_factory(PROBE, core={"control_socket": str(sock)})
        d.socket = sock
        d.start()
        sock.chmod(0o666)
        out = _connect_as(str(sock), nobody.pw_uid, nobody.pw_gid)
        reply = json.loads(out)
        assert reply == {"v": 1, "ok": False, "error": "permission denied"}
        d.wait_log(r"control: permission denied for pid \d+ uid %d" % nobody.pw_uid)
        # The daemon serves on.
        assert d.ctl("status")["plugins"][1]["state"] == "running"
        assert d.stop() == 0

        # A member of admin_group is let in.
        d2 = agentd_factory(PROBE, core={"control_socket": str(sock),
                                         "admin_group": nogroup.gr_name})
        d2.socket = sock
        d2.start()
        assert grp.getgrgid(os.stat(sock).st_gid).gr_name == nogroup.gr_name
        sock.chmod(0o666)
        reply = json.loads(_connect_as(str(sock), nobody.pw_uid, nobody.pw_gid))
        assert reply["ok"] is True
        assert d2.stop() == 0
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


def test_plugin_verbs_health_metrics_state(agentd_factory):
    d = agentd_factory(PROBE).start()
    assert d.ctl("probe", "conf")["message"] == "one"
    h = d.ctl("health")
    assert h["status"] == "pass" and h["draining"] is False
    assert [c["name"] for c in h["checks"]] == ["probe:main"]
    assert d.ctl("probe", "health", "fail", "db down") == "fail"
    h = d.ctl("health")
    assert h["status"] == "fail"
    assert h["checks"][0]["output"] == "db down"
    assert h["checks"][0]["plugin"] == "probe"
    assert h["checks"][0]["critical"] is True
    d.wait_log(r"probe: check 'probe:main' is fail \(was pass\): db down")
    # health.changed reaches subscribers
    wait_for(lambda: "health.changed" in d.ctl("probe", "events"), what="health.changed")

    d.ctl("probe", "count")
    d.ctl("probe", "count")
    text = d.ctl("metrics")
    assert "# TYPE agentd_probe_calls_total counter\nagentd_probe_calls_total 2\n" in text
    assert 'agentd_plugin_up{plugin="probe"} 1' in text
    human = d.ctl_raw("metrics")
    assert human.returncode == 0 and "agentd_probe_calls_total 2" in human.stdout

    state_dir = d.ctl("probe", "state", "put", "cursor", "abc")
    assert state_dir == str(d.state_dir / "probe")
    assert (d.state_dir / "probe" / "cursor").read_text() == "abc"
    assert oct((d.state_dir / "probe").stat().st_mode & 0o777) == "0o700"
    assert d.ctl("probe", "state", "get", "cursor") == "abc"
    r = d.ctl_raw("probe", "state", "get", "../../etc/passwd")
    assert r.returncode == 1

    d.ctl("probe", "publish", "probe.ping")
    wait_for(lambda: "probe.ping" in d.ctl("probe", "events"), what="probe.ping delivered")

    r = d.ctl_raw("probe", "nosuchverb")
    assert r.returncode == 1
    assert "plugin 'probe' has no verb 'nosuchverb'" in r.stderr
    r = d.ctl_raw("nosuchplugin", "x")
    assert r.returncode == 1 and "no plugin 'nosuchplugin'" in r.stderr
    verbs = d.ctl("verbs")
    assert {"plugin": "probe", "verb": "conf", "help": "show the probe's config"} in verbs


# ---- reload -----------------------------------------------------------------

def test_sighup_with_bad_config_keeps_old(agentd_factory):
    d = agentd_factory(PROBE).start()
    d.write_config("probe:\n  message: \"two\"\n  stop_delay: soon\n")
    t0 = time.monotonic()
    d.send_signal(signal.SIGHUP)
    st = wait_for(lambda: (lambda s: s if s["reload"]["time"] else None)(d.ctl("status")),
                  what="reload recorded")
    assert st["reload"]["ok"] is False
    assert st["reload"]["errors"] == [
        '%s:8:15: probe.stop_delay: "soon" is not a duration (e.g. 250ms, 5s, 2m, 1h)' % d.config]
    assert d.ctl("probe", "conf")["message"] == "one"
    assert st["plugins"][1]["state"] == "running"
    d.wait_log(r"reload refused: the configuration is invalid; keeping the running one")
    d.notify.wait("RELOADING", "1", after=t0)
    d.notify.wait("READY", "1", after=t0)

    # agentctl reload returns the errors to the caller.
    r = d.ctl_raw("reload")
    assert r.returncode == 78
    assert "probe.stop_delay" in r.stderr

    # A good config is applied: probe's changed config goes through reload().
    d.write_config("probe:\n  message: \"two\"\n")
    st = d.ctl("reload")
    assert st["reload"]["ok"] is True and st["reload"]["errors"] == []
    conf = d.ctl("probe", "conf")
    assert (conf["message"], conf["reloads"], conf["starts"]) == ("two", 1, 1)
    wait_for(lambda: "agent.reloaded" in d.ctl("probe", "events"), what="agent.reloaded")
    assert d.stop() == 0


def test_reload_restarts_adds_and_removes(agentd_factory):
    d = agentd_factory("probe:\n  can_reload: false\n").start()
    d.write_config("probe:\n  can_reload: false\n  message: changed\nfailstart: {}\n")
    st = d.ctl("reload")
    assert st["reload"]["ok"] is False  # failstart failed to start, and says so
    assert st["reload"]["errors"] == ["failstart: failstart: refusing to start (test plugin)"]
    # probe cannot reload(): the host restarts it (a fresh instance, new config).
    d.wait_log(r"probe: configuration changed: restarting")
    d.wait_log(r"probe: restarted with the new configuration")
    conf = d.ctl("probe", "conf")
    assert (conf["message"], conf["reloads"], conf["starts"]) == ("changed", 0, 1)
    assert d.log().count("probe: stopping (draining=0)") == 1
    states = {p["name"]: p["state"] for p in d.ctl("status")["plugins"]}
    assert states == {"aws": "running", "probe": "running", "failstart": "failed"}

    d.write_config("")
    st = d.ctl("reload")
    wait_for(lambda: [p["name"] for p in d.ctl("status")["plugins"]] == ["aws"],
             what="probe and failstart removed")
    d.wait_log(r"probe: removed from the configuration: stopping")
    assert d.stop() == 0


# ---- signals, sd_notify -----------------------------------------------------

def test_sd_notify_ready_status_watchdog_stopping(agentd_factory):
    d = agentd_factory(PROBE + "failstart: {}\n", env={"WATCHDOG_USEC": "400000"})
    d.start()
    _, m = d.notify.wait("READY", "1")
    assert m["STATUS"] == "2 plugins running, 1 failed"
    # Pings at half the interval: several within two seconds.
    t0 = time.monotonic()
    wait_for(lambda: sum(1 for t, m in d.notify.messages if t >= t0 and "WATCHDOG" in m) >= 3,
             timeout=10, what="3 watchdog pings")
    assert d.stop() == 0
    d.notify.wait("STOPPING", "1")


def test_sigterm_stops_in_reverse_order_and_exits_0(agentd_factory):
    d = agentd_factory(PROBE).start()
    t0 = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 10
    log = d.log()
    # Subscribers hear agent.stopping, the host drains, and only then do
    # plugins stop: probe (started last) before aws.
    assert log.index("probe: heard agent.stopping (SIGTERM)") < log.index("probe: stopping")
    assert log.index("health: draining") < log.index("probe: stopping (draining=1)")
    assert log.index("probe: stopping (draining=1)") < log.index("debug: aws: stopping")
    assert "notice: stopped" in log


def test_sigint_exits_0(agentd_factory):
    d = agentd_factory(PROBE).start()
    assert d.stop(signal.SIGINT) == 0


def test_stop_timeout_bounds_a_slow_plugin(agentd_factory):
    d = agentd_factory("probe:\n  stop_delay: 1h\n", core={"stop_timeout": "500ms"}).start()
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 10
    assert "probe: did not stop within 500 ms; giving up on it" in d.log()


# ---- the plugin host --------------------------------------------------------

def test_failstart_marked_failed_daemon_serves_on(agentd_factory):
    d = agentd_factory("failstart: {}\n" + PROBE).start()
    plugins = {p["name"]: p for p in d.ctl("status")["plugins"]}
    assert plugins["failstart"]["state"] == "failed"
    assert plugins["failstart"]["error"] == "failstart: refusing to start (test plugin)"
    assert plugins["probe"]["state"] == "running"
    assert d.ctl("probe", "conf")["message"] == "one"
    assert "error: failstart: start failed: failstart: refusing to start" in d.log()
    assert d.stop() == 0


def _own_plugin_dir(tmp_path, *names):
    from conftest import plugin_dir
    (tmp_path / "all").mkdir()
    src = plugin_dir(tmp_path / "all")
    d = tmp_path / "myplugins"
    d.mkdir()
    for n in names:
        (d / n).symlink_to(src / n)
    return d


def test_wrong_abi_refused_with_file_named(agentd_factory, tmp_path):
    pdir = _own_plugin_dir(tmp_path, "probe.so")
    bad = pdir / "badabi.so"
    bad.symlink_to(BUILD / "tests/plugins/bad/.libs/badabi.so")
    d = agentd_factory(PROBE, core={"plugin_dir": str(pdir)}).start()
    d.wait_log(r"error: plugin %s: refused: ABI version 999, this agentd supports 1" % bad)
    assert d.ctl("probe", "conf")["message"] == "one"
    # Its name is not a plugin the config may use.
    cfg = write(tmp_path / "b.yaml", "agentd:\n  plugin_dir: %s\nbadabi: {}\n" % pdir)
    r = run_agentd("--check-config", "-c", str(cfg))
    assert r.returncode == 78
    assert "unknown plugin 'badabi'" in r.stderr


def test_duplicate_plugin_name_refused(tmp_path):
    pdir = _own_plugin_dir(tmp_path, "probe.so")
    (pdir / "probe-copy.so").symlink_to(BUILD / "tests/plugins/.libs/probe.so")
    r = run_agentd("--list-plugins", "-c", str(write(tmp_path / "a.yaml",
                                                     "agentd:\n  plugin_dir: %s\n" % pdir)))
    assert r.returncode == 0
    assert ("plugin %s/probe.so: refused: duplicate plugin name 'probe' (already loaded from "
            "%s/probe-copy.so)" % (pdir, pdir)) in r.stderr


def test_plugin_file_mode_checked_without_dev_mode(tmp_path):
    pdir = tmp_path / "strict"
    pdir.mkdir()
    so = pdir / "probe.so"
    shutil.copy(BUILD / "tests/plugins/.libs/probe.so", so)
    cfg = write(tmp_path / "a.yaml", "agentd:\n  plugin_dir: %s\nprobe: {}\n" % pdir)
    so.chmod(0o666)
    r = run_agentd("--check-config", "-c", str(cfg), env={"AGENTD_PLUGIN_DEV": "0"})
    assert r.returncode == 78
    assert "plugin %s: refused: writable by group or others" % so in r.stderr
    so.chmod(0o644)
    if os.geteuid() == 0:
        r = run_agentd("--check-config", "-c", str(cfg), env={"AGENTD_PLUGIN_DEV": "0"})
        assert (r.returncode, r.stdout) == (0, "configuration OK\n"), r.stderr


def test_runtime_and_state_directory_from_systemd(agentd_factory, tmp_path):
    run = tmp_path / "run"
    state = tmp_path / "var"
    run.mkdir()
    state.mkdir()
    d = agentd_factory(PROBE, env={"RUNTIME_DIRECTORY": str(run), "STATE_DIRECTORY": str(state)})
    del d.core["control_socket"], d.core["state_dir"]
    d.write_config(PROBE)
    d.socket = run / "control.sock"
    d.start()
    assert d.ctl("probe", "state", "put", "x", "1") == str(state / "probe")
    assert d.stop() == 0


def test_child_dies_with_agentd(agentd_factory):
    d = agentd_factory(PROBE).start()
    pid = d.ctl("probe", "spawn", "sleep", "300")
    assert isinstance(pid, int)
    os.kill(pid, 0)
    d.proc.kill()  # SIGKILL: agentd gets no chance to clean up
    d.proc.wait()

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie until someone reaps it counts as gone
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(") ")[1].startswith("Z")
        except FileNotFoundError:
            return True
    wait_for(gone, timeout=10, what="child killed by PR_SET_PDEATHSIG")


def test_child_output_and_exit(agentd_factory):
    d = agentd_factory(PROBE).start()
    d.ctl("probe", "spawn", "sh", "-c", "echo out-line; echo err-line >&2; exit 3")
    d.wait_log(r"probe: child stdout: out-line")
    d.wait_log(r"probe: child stderr: err-line")
    d.wait_log(r"probe: child exited: status 3 signal 0")

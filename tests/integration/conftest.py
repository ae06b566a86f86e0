"""Shared harness: runs the real agentd from the build tree as a black box.

Every test gets its own config file, state directory, control socket and
systemd notify socket under tmp_path, and ports picked free at run time.

    def test_x(agentd_factory):
        port = free_port()
        d = agentd_factory('''
    health:
      listen: ["127.0.0.1:%d"]
    ''' % port)
        d.start()                      # waits for READY=1
        assert d.ctl("status")["plugins"]...
        assert d.stop() == 0           # SIGTERM, waits for exit

AGENTD_BUILD_DIR names the build tree (default tests/.build/default).
"""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE.parent.parent
BUILD = pathlib.Path(os.environ.get("AGENTD_BUILD_DIR", SRC / "tests/.build/default")).resolve()
AGENTD = BUILD / "agentd/agentd"
AGENTCTL = BUILD / "agentd/agentctl/agentctl"
EMULATORS = SRC / "tests/emulators"
PYTHON = "/usr/bin/python3"


def _allowed_skips():
    out = []
    for line in (SRC / "tests/skip-allow.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            out.append(re.compile(line.split("\t", 1)[0]))
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip not on tests/skip-allow.txt is a failure: a test
    that cannot run in CI is a test CI does not have."""
    outcome = yield
    rep = outcome.get_result()
    if os.environ.get("CI") != "true" or not rep.skipped or hasattr(rep, "wasxfail"):
        return
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    if not any(p.search(reason) for p in _allowed_skips()):
        rep.outcome = "failed"
        rep.longrepr = "skipped under CI=true, and not in tests/skip-allow.txt: %s" % reason


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    """A port free right now on host (bind to 0 and release)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value; returns it or fails."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def plugin_dir(tmp):
    """A directory of symlinks to every plugin .so in the build tree."""
    d = pathlib.Path(tmp) / "plugins"
    d.mkdir(exist_ok=True)
    for so in list(BUILD.glob("plugins/*/.libs/*.so")) + list(BUILD.glob("tests/plugins/.libs/*.so")):
        link = d / so.name
        if not link.exists():
            link.symlink_to(so)
    return d


class NotifySocket:
    """A NOTIFY_SOCKET datagram socket recording every sd_notify message."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, {key: value})
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = {}
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            self.messages.append((time.monotonic(), fields))

    def wait(self, key, value=None, timeout=10.0, after=0.0):
        def find():
            for t, m in list(self.messages):
                if t >= after and key in m and (value is None or m[key] == value):
                    return (t, m)
            return None
        return wait_for(find, timeout, what="sd_notify %s=%s" % (key, value))

    def close(self):
        self._stop = True
        self.sock.close()


class Agentd:
    def __init__(self, tmp, body="", core=None, env=None, conf_d=None, args=None):
        self.tmp = pathlib.Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.tmp / "state"
        self.socket = self.tmp / "control.sock"
        self.config = self.tmp / "agentd.yaml"
        self.log_path = self.tmp / "agentd.log"
        core = dict(core or {})
        core.setdefault("plugin_dir", str(plugin_dir(self.tmp)))
        core.setdefault("state_dir", str(self.state_dir))
        core.setdefault("control_socket", str(self.socket))
        core.setdefault("log_level", "debug")
        self.core = core
        self.write_config(body, conf_d)
        self.env = dict(os.environ)
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("JOURNAL_STREAM", None)
        self.env["AGENTD_PLUGIN_DEV"] = "1"
        # No real AWS: without an explicit endpoint nothing may leave the box.
        self.env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        for k in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                  "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            self.env.pop(k, None)
        if env:
            self.env.update(env)
        self.args = list(args or [])
        self.proc = None
        self.notify = None
        self.started_at = None

    def write_config(self, body, conf_d=None):
        lines = ["agentd:"]
        for k, v in self.core.items():
            lines.append("  %s: %s" % (k, json.dumps(v)))
        self.config.write_text("\n".join(lines) + "\n" + (body or ""))
        if conf_d:
            d = self.tmp / "conf.d"
            d.mkdir(exist_ok=True)
            for name, text in conf_d.items():
                (d / name).write_text(text)

    def start(self, wait_ready=True, timeout=15.0):
        """Starts agentd (again, after a stop or a kill: state is kept)."""
        if self.notify:
            self.notify.close()
        sock = self.tmp / "notify.sock"
        if sock.exists():
            sock.unlink()
        self.notify = NotifySocket(sock)
        env = dict(self.env)
        env["NOTIFY_SOCKET"] = self.notify.path
        self.logf = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [str(AGENTD), "-c", str(self.config), "--foreground"] + self.args,
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        if wait_ready:
            def ready_or_dead():
                if any(m.get("READY") == "1" for _, m in list(self.notify.messages)):
                    return "ready"
                if self.proc.poll() is not None:
                    return "exited with %d" % self.proc.returncode
                return None
            try:
                how = wait_for(ready_or_dead, timeout, what="READY=1")
            except AssertionError:
                how = "not ready after %.0fs" % timeout
            if how != "ready":
                raise AssertionError("agentd %s; log:\n%s" % (how, self.log()))
        return self

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10.0):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log()), timeout, what="log /%s/" % pattern)

    def ctl_raw(self, *args, timeout=30):
        env = dict(self.env)
        return subprocess.run([str(AGENTCTL), "--socket", str(self.socket)] + list(args),
                              capture_output=True, text=True, timeout=timeout, env=env)

    def ctl(self, *args, timeout=30):
        """Runs agentctl --json ARGS; returns the parsed JSON; fails on a non-zero exit."""
        r = self.ctl_raw("--json", *args, timeout=timeout)
        assert r.returncode == 0, "agentctl %s: exit %d\n%s%s" % (args, r.returncode, r.stdout, r.stderr)
        return json.loads(r.stdout)

    def request(self, obj, raw=None, timeout=5.0):
        """Sends one raw line on the control socket and returns the parsed reply."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(str(self.socket))
        s.sendall(raw if raw is not None else (json.dumps(obj) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf) if buf else None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Signals agentd and waits for it to exit; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("agentd did not exit within %.0fs of %s; log:\n%s"
                                 % (timeout, sig, self.log()))
        return rc

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self.notify:
            self.notify.close()


def run_agentd(*args, env=None, timeout=30):
    """Runs agentd with args (e.g. --check-config) and returns CompletedProcess."""
    e = dict(os.environ)
    e["AGENTD_PLUGIN_DEV"] = "1"
    if env:
        e.update(env)
    return subprocess.run([str(AGENTD)] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=e)


SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


@pytest.fixture(autouse=True)
def no_sanitizer_reports(tmp_path):
    """Under ASan+UBSan, any report in any agentd log of the test fails it."""
    yield
    for log in tmp_path.rglob("agentd.log"):
        text = log.read_text(errors="replace")
        for marker in SANITIZER_MARKERS:
            assert marker not in text, "%s in %s:\n%s" % (marker, log, text[-4000:])


@pytest.fixture
def agentd_factory(tmp_path):
    """Makes Agentd instances. Each one still running when the test ends is
    stopped with SIGTERM and must exit 0 within 60 s: that is when ASan's
    leak check runs (exit 86 on a leak), so no daemon leaves unchecked. A
    test that means to end on kill -9 does so itself (d.stop(signal.SIGKILL))
    and is then exempt: the process is already gone."""
    made = []

    def make(body="", **kw):
        d = Agentd(tmp_path / ("agentd%d" % len(made)), body, **kw)
        made.append(d)
        return d

    yield make
    bad = []
    for d in made:
        if d.proc is not None and d.proc.poll() is None:
            try:
                rc = d.stop(timeout=60)
            except AssertionError as e:
                bad.append(str(e)[:2000])
                continue
            if rc != 0:
                bad.append("agentd %s exited %d on the teardown's SIGTERM; log tail:\n%s"
                           % (d.tmp.name, rc, d.log()[-3000:]))
    for d in made:
        d.cleanup()
    assert not bad, "\n".join(bad)


class Emulator:
    """Runs a python emulator from tests/emulators on a free port.

    The emulator must accept --host/--port and print "READY" on stdout once it
    listens. base_url is http://127.0.0.1:PORT."""

    def __init__(self, script, *args, host="127.0.0.1", env=None):
        self.port = free_port(host)
        self.host = host
        e = dict(os.environ)
        if env:
            e.update(env)
        self.proc = subprocess.Popen(
            [PYTHON, str(EMULATORS / script), "--host", host, "--port", str(self.port)] + list(args),
            stdout=subprocess.PIPE, stderr=None, text=True, env=e)
        line = self.proc.stdout.readline()
        if "READY" not in line:
            self.proc.kill()
            raise AssertionError("emulator %s did not start: %r" % (script, line))
        h = "[%s]" % host if ":" in host else host
        self.base_url = "http://%s:%d" % (h, self.port)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# Tests call d.signal(sig); defined after the class body, where a method
# named signal would shadow the module in default arguments.
Agentd.signal = Agentd.send_signal

"""The health plugin as a black box: its HTTP endpoint, its checks, its
config errors. Every port is picked free; every wait is bounded."""
import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import threading
import time

import pytest

from conftest import free_port, run_agentd, wait_for


def health_yaml(port, checks="", extra=""):
    return """
health:
  listen: ["127.0.0.1:%d"]
  paths: [/health, /my-devices/health.json]
%s  checks:%s
""" % (port, extra, checks if checks else " []")


def get(port, path="/health", method="GET", source=None, timeout=10.0):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def try_status(port, path="/health"):
    """The status of one request, or None if the connection failed."""
    try:
        return get(port, path, timeout=2)[0]
    except (OSError, http.client.HTTPException):
        return None


def body_json(port, path="/health?verbose"):
    st, hdr, body = get(port, path)
    assert hdr["content-type"] == "application/health+json"
    return st, json.loads(body)


def check_of(port, name):
    st, j = body_json(port)
    return st, j["checks"][name][0]


class Listener:
    """A TCP port the test opens and closes (accepts and drops connections)."""

    def __init__(self):
        self.port = free_port()
        self.sock = None

    def open(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.sock = s
        self._t = threading.Thread(target=self._accept, args=(s,), daemon=True)
        self._t.start()

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
                c.close()
            except OSError:
                return

    def close(self):
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None


@pytest.fixture
def listener():
    l = Listener()
    yield l
    l.close()


class Backend:
    """An HTTP server whose answer the test switches: ok, error, slow, body."""

    def __init__(self):
        self.mode = "ok"
        backend = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mode = backend.mode
                if mode == "slow":
                    time.sleep(3)
                status = 500 if mode == "error" else 200
                body = b"all good\n" if mode != "other-body" else b"something else\n"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.close()


# --- checks -----------------------------------------------------------------


def test_tcp_check_rise_and_fall(agentd_factory, listener):
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: db
      tcp: 127.0.0.1:%d
      interval: 400ms
      timeout: 300ms
      rise: 2
      fall: 3
""" % listener.port))
    d.start()
    # Nothing listens: fail from the start (the state before any result).
    st, c = check_of(port, "db")
    assert st == 503 and c["status"] == "fail"
    wait_for(lambda: "connection refused" in check_of(port, "db")[1]["output"], 10, what="refused")

    # Rise 2: one pass is not enough; the body says how far it is.
    listener.open()
    seen = wait_for(lambda: (lambda c: c if "1 of 2 to pass" in c[1]["output"] else None)(
        check_of(port, "db")), 10, interval=0.05, what="first pass")
    assert seen[0] == 503 and seen[1]["status"] == "fail"
    wait_for(lambda: get(port)[0] == 200, 10, what="200 after rise")
    assert check_of(port, "db")[1]["output"] == "tcp connect 127.0.0.1:%d: connected" % listener.port

    # Fall 3: still 200 after one and two failures.
    listener.close()
    for k in (1, 2):
        s = wait_for(lambda: (lambda c: c if "%d of 3 to fail" % k in c[1]["output"] else None)(
            check_of(port, "db")), 10, interval=0.05, what="failure %d" % k)
        assert s[0] == 200 and s[1]["status"] == "pass", s
    wait_for(lambda: get(port)[0] == 503, 10, what="503 after fall")
    d.wait_log(r"check 'db' is fail \(was pass\): tcp connect 127\.0\.0\.1:%d: connection refused"
               % listener.port)
    assert d.stop() == 0


def test_grace_period(agentd_factory, listener):
    listener.open()
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: db
      tcp: 127.0.0.1:%d
      interval: 300ms
      rise: 3
      fall: 1
      grace: 6s
""" % listener.port))
    d.start()
    # In the grace period one pass is enough: the first result is a pass.
    c = wait_for(lambda: (lambda c: c if c["output"] != "no result yet" else None)(
        check_of(port, "db")[1]), 10, interval=0.02, what="first result")
    assert c["status"] == "pass", c
    # ... and failures do not count until it ends.
    listener.close()
    c = wait_for(lambda: (lambda c: c if "not counted in the grace period" in c["output"]
                          else None)(check_of(port, "db")[1]), 5, what="ignored failure")
    assert c["status"] == "pass" and "connection refused" in c["output"]
    assert get(port)[0] == 200
    wait_for(lambda: get(port)[0] == 503, 15, what="fall after the grace period")
    assert d.stop() == 0


def test_first_passes_before_rise_are_not_logged_as_failures(agentd_factory, listener):
    listener.open()
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: db
      tcp: 127.0.0.1:%d
      interval: 300ms
      rise: 3
""" % listener.port))
    d.start()
    wait_for(lambda: get(port)[0] == 200, 10, what="pass after three runs")
    d.wait_log(r"check 'db' is pass \(was fail\): tcp connect 127\.0\.0\.1:%d: connected"
               % listener.port)
    assert "check 'db' is fail" not in d.log()
    assert d.stop() == 0


def test_tcp_check_timeout_names_host_and_time(agentd_factory):
    # A listener whose accept queue is full and never drained: Linux drops
    # further SYNs, so a connect can only time out.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(full.getsockname())
        fillers.append(c)
    time.sleep(0.2)
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: mariadb
      tcp: localhost:%d
      interval: 2s
      timeout: 300ms
""" % full.getsockname()[1]))
    d.start()
    d.wait_log(r"check 'mariadb' is fail \(was fail\): tcp connect localhost:%d timed out after "
               r"300ms" % full.getsockname()[1])
    assert d.stop() == 0
    for c in fillers:
        c.close()
    full.close()


def test_tcp_check_resolves_names(agentd_factory, listener):
    listener.open()
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: byname
      tcp: localhost:%d
      interval: 300ms
      rise: 1
    - name: nosuch
      tcp: no-such-host.invalid:80
      interval: 300ms
      critical: false
""" % listener.port))
    d.start()
    wait_for(lambda: check_of(port, "byname")[1]["status"] == "pass", 10, what="localhost pass")
    wait_for(lambda: "tcp resolve no-such-host.invalid" in check_of(port, "nosuch")[1]["output"],
             10, what="resolve failure")
    # Non-critical failure: the overall status is warn and the answer 200.
    st, j = body_json(port)
    assert st == 200 and j["status"] == "warn"


def test_http_check_ok_error_slow(agentd_factory, backend):
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: app
      http: http://user:secret@127.0.0.1:%d/my-devices/health.json?token=hunter2
      interval: 1s
      timeout: 1s
      rise: 1
      fall: 1
      expect_status: [200, 204]
      expect_body: good
""" % backend.port))
    d.start()
    wait_for(lambda: get(port)[0] == 200, 10, what="200 from a passing http check")
    out = check_of(port, "app")[1]["output"]
    assert out == "http GET http://127.0.0.1:%d/my-devices/health.json?…: status 200" % backend.port

    backend.mode = "error"
    wait_for(lambda: get(port)[0] == 503, 10, what="503 on a 500")
    assert "status 500, expected 200,204" in check_of(port, "app")[1]["output"]

    backend.mode = "other-body"
    wait_for(lambda: "does not contain 'good'" in check_of(port, "app")[1]["output"], 10,
             what="body mismatch")

    backend.mode = "slow"
    wait_for(lambda: "timed out after 1s" in check_of(port, "app")[1]["output"], 10,
             what="timeout")
    # Requests never wait on a check: answers stay fast while it hangs.
    t0 = time.monotonic()
    for _ in range(20):
        assert get(port)[0] == 503
    assert time.monotonic() - t0 < 5

    backend.mode = "ok"
    wait_for(lambda: get(port)[0] == 200, 15, what="recovery")
    # Credentials and query never show: not in bodies, not in logs.
    st, _, body = get(port, "/health?verbose")
    assert b"secret" not in body and b"hunter2" not in body
    assert d.stop() == 0
    assert "secret" not in d.log() and "hunter2" not in d.log()


def test_exec_check_statuses_and_timeout_kills_group(agentd_factory, tmp_path):
    port = free_port()
    pidfile = tmp_path / "child.pid"
    d = agentd_factory(health_yaml(port, """
    - name: ok
      exec: [sh, -c, "echo fine"]
      interval: 500ms
      rise: 1
    - name: degraded
      exec: [sh, -c, "echo half; exit 1"]
      interval: 500ms
      rise: 1
    - name: broken
      exec: [sh, -c, "echo bad >&2; exit 3"]
      interval: 500ms
      critical: false
    - name: hang
      exec: [sh, -c, "sleep 60 & echo $! > %s; wait"]
      interval: 3s
      timeout: 700ms
      critical: false
""" % pidfile))
    d.start()
    wait_for(lambda: check_of(port, "ok")[1]["status"] == "pass", 10, what="exit 0 pass")
    assert check_of(port, "ok")[1]["output"] == "exec sh: exit 0: fine"
    wait_for(lambda: check_of(port, "degraded")[1]["status"] == "warn", 10, what="exit 1 warn")
    wait_for(lambda: "exec sh: exit 3: bad" in check_of(port, "broken")[1]["output"], 10,
             what="exit 3 fail with its stderr")
    wait_for(lambda: "timed out after 700ms" in check_of(port, "hang")[1]["output"], 10,
             what="exec timeout")
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 5,
                       what="pidfile"))

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie is dead too: its parent (the killed shell) is gone.
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(")")[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
        return False
    wait_for(gone, 10, what="the timed-out check's grandchild killed with its group")
    assert d.stop() == 0


def test_file_check_and_max_age(agentd_factory, tmp_path):
    port = free_port()
    f = tmp_path / "heartbeat"
    d = agentd_factory(health_yaml(port, """
    - name: beat
      file: %s
      max_age: 1s
      interval: 300ms
      rise: 1
      fall: 1
""" % f))
    d.start()
    wait_for(lambda: "does not exist" in check_of(port, "beat")[1]["output"], 10, what="missing")
    f.write_text("x")
    wait_for(lambda: get(port)[0] == 200, 10, what="fresh file passes")
    wait_for(lambda: "more than max_age 1s" in check_of(port, "beat")[1]["output"], 10,
             what="stale file fails")
    assert get(port)[0] == 503


def test_systemd_check_without_a_bus_fails_cleanly(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: docker
      systemd: docker.service
      interval: 500ms
"""), env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bus"})
    d.start()
    wait_for(lambda: "systemd docker.service: cannot connect to the system bus" in
             check_of(port, "docker")[1]["output"], 10, what="bus error")
    assert get(port, "/livez")[0] == 200
    assert d.stop() == 0


BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

# A stand-in for systemd on a private bus: every unit's ActiveState is read
# from STATE_DIR/<unit> (absent: the unit is unknown).
FAKE_SYSTEMD = r"""
import os, re, sys
import dbus, dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib
DBusGMainLoop(set_as_default=True)
addr, state_dir = sys.argv[1], sys.argv[2]
bus = dbus.bus.BusConnection(addr)
name = dbus.service.BusName("org.freedesktop.systemd1", bus)

class Units(dbus.service.FallbackObject):
    @dbus.service.method("org.freedesktop.DBus.Properties", in_signature="ss",
                         out_signature="v", rel_path_keyword="rel")
    def Get(self, iface, prop, rel=None):
        unit = re.sub(r"_([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), rel.lstrip("/"))
        if iface != "org.freedesktop.systemd1.Unit" or prop != "ActiveState":
            raise dbus.exceptions.DBusException("no such property",
                                                name="org.freedesktop.DBus.Error.UnknownProperty")
        try:
            with open(os.path.join(state_dir, unit)) as f:
                return dbus.String(f.read().strip(), variant_level=1)
        except FileNotFoundError:
            raise dbus.exceptions.DBusException("Unit %s not found." % unit,
                                                name="org.freedesktop.systemd1.NoSuchUnit")

Units(bus, "/org/freedesktop/systemd1/unit")
print("READY", flush=True)
GLib.MainLoop().run()
"""


def test_systemd_check_over_a_private_bus(agentd_factory, tmp_path):
    sock = tmp_path / "bus"
    (tmp_path / "bus.conf").write_text(BUS_CONF % sock)
    states = tmp_path / "units"
    states.mkdir()
    (states / "docker.service").write_text("active")
    daemon = subprocess.Popen(["dbus-daemon", "--nofork", "--config-file=%s" % (tmp_path / "bus.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fake = None
    try:
        wait_for(sock.exists, 10, what="the bus socket")
        addr = "unix:path=%s" % sock
        fake = subprocess.Popen(["/usr/bin/python3", "-c", FAKE_SYSTEMD, addr, str(states)],
                                stdout=subprocess.PIPE, text=True)
        assert "READY" in fake.stdout.readline()
        port = free_port()
        d = agentd_factory(health_yaml(port, """
    - name: docker
      systemd: docker.service
      interval: 300ms
      rise: 1
      fall: 1
    - name: ghost
      systemd: ghost.service
      interval: 300ms
      critical: false
"""), env={"DBUS_SYSTEM_BUS_ADDRESS": addr})
        d.start()
        wait_for(lambda: check_of(port, "docker")[1]["status"] == "pass", 10, what="active unit")
        assert check_of(port, "docker")[1]["output"] == "systemd docker.service: active"
        wait_for(lambda: "Unit ghost.service not found" in check_of(port, "ghost")[1]["output"],
                 10, what="unknown unit")
        (states / "docker.service").write_text("failed")
        wait_for(lambda: get(port)[0] == 503, 10, what="failed unit")
        assert check_of(port, "docker")[1]["output"] == "systemd docker.service: failed"
        assert d.stop() == 0
    finally:
        for p in (fake, daemon):
            if p:
                p.terminate()
                p.wait(5)


def test_checks_of_other_plugins_are_served(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port) + "probe:\n  message: hi\n")
    d.start()
    d.ctl("probe", "health", "pass", "all fine")
    wait_for(lambda: check_of(port, "probe:main")[1]["output"] == "all fine", 5, what="probe")
    assert get(port)[0] == 200
    d.ctl("probe", "health", "fail", "tunnel down")
    wait_for(lambda: get(port)[0] == 503, 5, what="503 from another plugin's check")
    h = d.ctl("health")
    assert any(c.get("name") == "probe:main" for c in h["checks"]), h


def test_reload_keeps_listener_and_unchanged_checks(agentd_factory, tmp_path):
    port = free_port()
    beat = tmp_path / "beat"
    beat.write_text("x")
    d = agentd_factory(health_yaml(port, """
    - name: beat
      file: %s
      interval: 300ms
      rise: 1
    - name: old
      file: %s
      interval: 300ms
      rise: 1
""" % (beat, beat)))
    d.start()
    wait_for(lambda: get(port)[0] == 200, 10, what="pass")
    since = check_of(port, "beat")[1]["time"]
    keep = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    keep.request("GET", "/livez")
    keep.getresponse().read()

    d.write_config("""
health:
  listen: ["127.0.0.1:%d"]
  paths: [/status]
  request_timeout: 5s
  checks:
    - name: beat
      file: %s
      interval: 300ms
      rise: 1
    - name: new
      exec: [sh, -c, "echo added"]
      interval: 300ms
      rise: 1
""" % (port, beat))
    d.signal(signal.SIGHUP)
    d.wait_log(r"health: reloaded: 1 checks kept, 1 started, 1 stopped")
    # The unchanged check kept its state (same change time), the removed one
    # is gone, the new one runs; the kept-alive connection survived.
    st, j = body_json(port, "/status?verbose")
    assert j["checks"]["beat"][0]["status"] == "pass"
    assert j["checks"]["beat"][0]["time"] == since
    assert "old" not in j["checks"]
    wait_for(lambda: check_of_path(port, "/status?verbose", "new")["status"] == "pass", 10,
             what="new check")
    assert get(port, "/health")[0] == 404
    keep.request("GET", "/status")
    assert keep.getresponse().status == 200
    keep.close()

    # A changed listen address restarts the plugin on the new port.
    port2 = free_port()
    d.write_config(health_yaml(port2))
    d.signal(signal.SIGHUP)
    wait_for(lambda: try_status(port2) == 200, 10, what="new port")
    assert try_status(port) is None
    assert d.stop() == 0


def check_of_path(port, path, name):
    return body_json(port, path)[1]["checks"][name][0]


# --- the endpoint -------------------------------------------------------------


def test_paths_methods_head(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port))
    d.start()
    for p in ("/health", "/my-devices/health.json", "/readyz"):
        st, hdr, body = get(port, p)
        assert st == 200 and json.loads(body) == {"status": "pass", "checks": {}}, p
        assert hdr["cache-control"] == "no-store" and "date" in hdr
    st, hdr, body = get(port, "/health", "HEAD")
    assert st == 200 and body == b"" and int(hdr["content-length"]) > 0
    assert get(port, "/livez")[0] == 200
    assert get(port, "/nope")[0] == 404
    st, hdr, _ = get(port, "/health", "POST")
    assert st == 405 and hdr["allow"] == "GET, HEAD"
    assert get(port, "/health", "DELETE")[0] == 405


def test_fail_status_configurable(agentd_factory, listener):
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: db
      tcp: 127.0.0.1:%d
      interval: 300ms
""" % listener.port, extra="  fail_status: 500\n"))
    d.start()
    st, j = body_json(port, "/health")
    assert st == 500 and j["status"] == "fail" and j["checks"]["db"] == [{"status": "fail"}]


def test_draining_while_stopping(agentd_factory):
    port = free_port()
    # probe stops first (it started last) and takes 3s: health answers meanwhile.
    d = agentd_factory(health_yaml(port) + "probe:\n  stop_delay: 3s\n")
    d.start()
    assert get(port)[0] == 200
    d.signal(signal.SIGTERM)
    st, j = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(body_json(port, "/health")),
                     5, interval=0.05, what="draining")
    assert j["status"] == "draining" and j["output"] == "agentd is stopping"
    assert get(port, "/readyz")[0] == 503
    assert get(port, "/livez")[0] == 200
    assert d.stop() == 0


def test_allow_list_403_and_counted(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port, extra="  allow: [127.0.0.1/32]\n"))
    d.start()
    assert get(port)[0] == 200
    st, hdr, _ = get(port, source="127.0.0.2")
    assert st == 403 and hdr.get("connection") == "close"
    _, _, m = get(port, "/metrics")
    assert re.search(rb"^agentd_health_denied_total 1(\.0)?$", m, re.M), m


def test_default_allow_covers_loopback_not_others(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port))
    d.start()
    assert get(port, source="127.0.0.2")[0] == 200  # 127.0.0.0/8 is in the default


def test_ipv6_listener(agentd_factory):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    port = free_port()
    d = agentd_factory("""
health:
  listen: ["127.0.0.1:%d", "[::1]:%d"]
""" % (port, port))
    d.start()
    c = http.client.HTTPConnection("::1", port, timeout=5)
    c.request("GET", "/health")
    assert c.getresponse().status == 200
    c.close()
    assert get(port)[0] == 200


def test_port_in_use_fails_the_plugin_not_the_daemon(agentd_factory):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    d = agentd_factory(health_yaml(port, """
    - name: db
      tcp: 127.0.0.1:1
""") + "probe:\n  message: hi\n")
    d.start()
    st = d.ctl("status")
    text = json.dumps(st)
    assert "cannot listen on 127.0.0.1:%d" % port in text, text
    assert d.ctl("probe", "conf")  # the rest of agentd runs on
    busy.close()
    assert d.stop() == 0


def test_thousand_requests_one_connection(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port))
    d.start()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.connect()
    sock = c.sock
    for i in range(1000):
        c.request("HEAD" if i % 2 else "GET", "/health")
        r = c.getresponse()
        r.read()
        assert r.status == 200
        assert c.sock is sock, "the connection was not kept alive (request %d)" % i
    c.close()
    # Pipelined: 100 requests in one write, 100 answers in order.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % (b"livez" if i % 2 else b"nope")
                       for i in range(100)))
    buf = b""
    while buf.count(b"HTTP/1.1 ") < 100 or not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        assert chunk, "connection closed after %d answers" % buf.count(b"HTTP/1.1 ")
        buf += chunk
    codes = re.findall(rb"HTTP/1\.1 (\d+)", buf)
    assert codes == [b"404", b"200"] * 50
    s.close()


def raw_exchange(port, data, timeout=10.0):
    """Sends data and reads until the server closes: (bytes read, closed?)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return buf, True
            if not chunk:
                return buf, True
            buf += chunk
    finally:
        s.close()


def test_malformed_requests_and_daemon_unaffected(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port, extra="  request_timeout: 1s\n"))
    d.start()
    buf, closed = raw_exchange(port, b"\x16\x03\x01garbage\r\n\r\n")
    assert closed and buf.startswith(b"HTTP/1.1 400 ")
    buf, closed = raw_exchange(port, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * (100 * 1024)
                               + b"\r\n\r\n")
    assert closed and (buf == b"" or buf.startswith(b"HTTP/1.1 431 ")), buf[:100]
    buf, closed = raw_exchange(port, b"GET /" + b"u" * 5000 + b" HTTP/1.1\r\n\r\n")
    assert closed and buf.startswith(b"HTTP/1.1 414 ")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    buf, closed = raw_exchange(port, b"GET /health HTTP/1.1\r\n" + many + b"\r\n")
    assert closed and buf.startswith(b"HTTP/1.1 431 ")

    # Slowloris: a header dribbled byte by byte is cut off by request_timeout.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
    t0 = time.monotonic()
    closed = False
    while time.monotonic() - t0 < 8:
        try:
            s.sendall(b"a")
            s.settimeout(0.2)
            if s.recv(1) == b"":
                closed = True
                break
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    s.close()
    assert closed and time.monotonic() - t0 < 5
    # Many idle connections hold nothing: the daemon still answers, quickly.
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    assert get(port)[0] == 200 and get(port, "/livez")[0] == 200
    for s in idle:
        s.close()
    _, _, m = get(port, "/metrics")
    assert re.search(rb'^agentd_health_http_requests_total\{code="431"\} 2(\.0)?$', m, re.M), m
    assert re.search(rb"^agentd_health_timeouts_total [1-9]", m, re.M), m
    assert d.proc.poll() is None
    assert d.stop() == 0


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def test_memory_does_not_grow_with_misbehaving_clients(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port, extra="  idle_timeout: 30s\n"))
    d.start()
    for _ in range(50):
        assert get(port)[0] == 200
    before = rss_kib(d.proc.pid)

    # Pipelined requests that are never read: ~16 MiB offered in 3 s.
    hog = socket.create_connection(("127.0.0.1", port))
    hog.setblocking(False)
    chunk = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
    offered = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3 and offered < 16 << 20:
        try:
            offered += hog.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    # Fifty clients each sending a 100 KiB header.
    fat = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        try:
            s.send(b"GET /health HTTP/1.1\r\nX-Fat: " + b"f" * (100 << 10))
        except (BlockingIOError, ConnectionResetError, BrokenPipeError):
            pass
        fat.append(s)
    time.sleep(1)
    assert get(port, "/livez")[0] == 200
    grown = rss_kib(d.proc.pid) - before
    for s in fat + [hog]:
        s.close()
    # The hog stalled itself once the socket buffers filled; nothing it sent
    # was buffered beyond one read buffer per connection.
    print("offered %d bytes, grew %d KiB" % (offered, grown))
    assert offered > 1 << 20, "the test did not manage to misbehave (%d bytes)" % offered
    assert grown < 8 << 10, "agentd grew by %d KiB" % grown
    assert d.stop() == 0


def test_max_connections(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port, extra="  max_connections: 4\n"))
    d.start()
    held = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /livez HTTP/1.1\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        held.append(s)
    buf, closed = raw_exchange(port, b"GET /livez HTTP/1.1\r\n\r\n")
    assert closed and buf == b""
    held.pop().close()
    # The server learns of the close on its next loop turn: until then a
    # newcomer may still be turned away.
    wait_for(lambda: try_status(port, "/livez") == 200, 5, what="a slot frees up")
    for s in held:
        s.close()


def test_metrics_parse_strictly(agentd_factory, listener):
    from prometheus_client.parser import text_string_to_metric_families
    listener.open()
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: db
      tcp: 127.0.0.1:%d
      interval: 300ms
      rise: 1
""" % listener.port))
    d.start()
    wait_for(lambda: get(port)[0] == 200, 10, what="pass")
    st, hdr, body = get(port, "/metrics")
    assert st == 200 and hdr["content-type"].startswith("text/plain; version=0.0.4")
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    status = [s for s in fams["agentd_health_check_status"].samples if s.labels == {"check": "db"}]
    assert status and status[0].value == 2
    assert "agentd_health_http_requests" in fams  # the parser strips _total
    assert fams["agentd_health_http_requests"].type == "counter"
    assert get(port, "/metrics", "HEAD")[2] == b""


def test_agentctl_health_shows_state_since_and_output(agentd_factory, listener):
    listener.open()
    port = free_port()
    d = agentd_factory(health_yaml(port, """
    - name: db
      tcp: 127.0.0.1:%d
      interval: 300ms
      rise: 1
""" % listener.port))
    d.start()
    wait_for(lambda: get(port)[0] == 200, 10, what="pass")
    h = d.ctl("health")
    c = [c for c in h["checks"] if c["name"] == "db"][0]
    assert c["status"] == "pass" and "connected" in c["output"], c


# --- configuration errors -----------------------------------------------------


BAD_ROOT = """health:
  listen: ["localhost:80"]
  paths: [health, /livez]
"""

# Validation of the whole section runs only once its items are valid, so
# duplicate names get a config of their own.
BAD_DUP = """health:
  listen: ["127.0.0.1:1"]
  paths: [/health]
  checks:
    - name: both
      tcp: 127.0.0.1:1
    - name: both
      file: /etc/hostname
"""

EXPECT_DUP = [
    r"agentd\.yaml:9:13: health\.checks\[1\]\.name: 'both' is already used by health\.checks\[0\]",
]

EXPECT_ROOT = [
    r"agentd\.yaml:4:11: health\.listen: 'localhost:80' is not a numeric ip:port",
    r"agentd\.yaml:5:10: health\.paths: 'health' must start with '/'",
    r"agentd\.yaml:5:10: health\.paths: '/livez' is a fixed endpoint",
]

BAD = """health:
  checks:
    - name: both
      tcp: 127.0.0.1:1
      http: http://127.0.0.1/
    - name: none
      interval: 5s
    - name: slow
      tcp: 127.0.0.1:1
      interval: 1s
      timeout: 5s
    - name: badstatus
      http: http://127.0.0.1/
      expect_status: [200, "6xx", "300-200"]
    - name: misplaced
      tcp: 127.0.0.1:1
      max_age: 5m
      expect_body: ok
    - name: "has:colon"
      file: /etc/hostname
    - name: hb
      file: relative/path
"""

EXPECT = [
    r"agentd\.yaml:7:13: health\.checks\[0\]\.http: a check has exactly one of",
    r"agentd\.yaml:8:7: health\.checks\[1\]: a check needs one of tcp, http, exec, file, systemd",
    r"agentd\.yaml:13:16: health\.checks\[2\]\.timeout: must not be longer than interval",
    r"agentd\.yaml:16:22: health\.checks\[3\]\.expect_status: '6xx' is not a status",
    r"agentd\.yaml:16:22: health\.checks\[3\]\.expect_status: '300-200' is not a status",
    r"agentd\.yaml:19:16: health\.checks\[4\]\.max_age: applies only to file checks",
    r"agentd\.yaml:20:20: health\.checks\[4\]\.expect_body: applies only to http checks",
    r"agentd\.yaml:21:13: health\.checks\[5\]\.name: 'has:colon' is not a check name",
    r"agentd\.yaml:24:13: health\.checks\[6\]\.file: ",
]


@pytest.mark.parametrize("text,expect",
                         [(BAD, EXPECT), (BAD_ROOT, EXPECT_ROOT), (BAD_DUP, EXPECT_DUP)],
                         ids=["checks", "root", "duplicate"])
def test_bad_check_definitions_name_positions(tmp_path, text, expect):
    from conftest import plugin_dir
    cfg = tmp_path / "agentd.yaml"
    cfg.write_text("agentd:\n  plugin_dir: %s\n" % plugin_dir(tmp_path) + text)
    r = run_agentd("-c", str(cfg), "--check-config")
    assert r.returncode == 78, r
    out = r.stdout + r.stderr
    for rx in expect:
        assert re.search(rx, out), "missing /%s/ in:\n%s" % (rx, out)


def test_example_config_checks(tmp_path):
    from conftest import plugin_dir, SRC
    ex = (SRC / "plugins/health/README.md").read_text()
    m = re.search(r"```yaml\n(health:.*?)```", ex, re.S)
    assert m, "README has a health example"
    cfg = tmp_path / "agentd.yaml"
    cfg.write_text("agentd:\n  plugin_dir: %s\n" % plugin_dir(tmp_path) + m.group(1))
    r = run_agentd("-c", str(cfg), "--check-config")
    assert r.returncode == 0, r.stdout + r.stderr

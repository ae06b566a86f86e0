"""tunnel plugin against a real OpenSSH sshd on a free loopback port.

Each test runs its own sshd (own host key, AuthorizedKeysFile, StrictModes
no) and a small HTTP server that the tunnel's forwards carry traffic to.
Keepalives are short (1 s x 2) so that failures show within seconds.
"""
import getpass
import http.server
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import free_port, plugin_dir, run_agentd, wait_for

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"

pytestmark = pytest.mark.skipif(not (os.path.exists(SSHD) and shutil.which("ssh")),
                                reason="openssh-server/openssh-client not installed")


def keygen(path):
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "agentd-test", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    os.chmod(path, 0o600)


def descendants(pid):
    """pid's descendants, from /proc (children before grandchildren)."""
    kids = {}
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def procs_with(text):
    """Pids of live processes whose command line contains text."""
    found = []
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            found.append(int(d.name))
    return found


class Sshd:
    """An OpenSSH sshd on a free loopback port with its own keys, for the
    current user (root in CI: PermitRootLogin's default allows keys)."""

    def __init__(self, tmp, port=None):
        self.dir = pathlib.Path(tmp)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.host_key = self.dir / "host_key"
        self.identity = self.dir / "id_client"
        self.known_hosts = self.dir / "known_hosts"
        self.log_path = self.dir / "sshd.log"
        keygen(self.host_key)
        keygen(self.identity)
        (self.dir / "authorized_keys").write_text((self.dir / "id_client.pub").read_text())
        self.known_hosts.write_text("[127.0.0.1]:%d %s\n" % (
            self.port, " ".join((self.dir / "host_key.pub").read_text().split()[:2])))
        self.config = self.dir / "sshd_config"
        self.config.write_text("\n".join([
            "Port %d" % self.port,
            "ListenAddress 127.0.0.1",
            "HostKey %s" % self.host_key,
            "AuthorizedKeysFile %s" % (self.dir / "authorized_keys"),
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PidFile none",
            "UseDNS no",
            "LoginGraceTime 10",
            "MaxStartups 200",
            # Dead clients' sessions (and their forwarded ports) go away fast.
            "ClientAliveInterval 1",
            "ClientAliveCountMax 2",
            "LogLevel VERBOSE",
        ]) + "\n")
        self.proc = None
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    @property
    def destination(self):
        return "%s@127.0.0.1:%d" % (self.user, self.port)

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("sshd exited: " + self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        wait_for(listening, 15, what="sshd on port %d" % self.port)
        return self

    def sessions(self):
        return descendants(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def kill(self):
        """SIGKILL to the listener and every session process: a server crash."""
        if not self.proc or self.proc.poll() is not None:
            return
        pids = [self.proc.pid] + self.sessions()
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        wait_for(lambda: not any(procs_alive(pids)), 10, what="sshd processes gone")

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def procs_alive(pids):
    for p in pids:
        try:
            st = pathlib.Path("/proc/%d/stat" % p).read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if st != "Z":
            yield p


class Backend:
    """A local HTTP server answering every GET with a token: what the
    tunnels carry."""

    def __init__(self):
        self.token = "tunnel-ok-%d" % os.getpid()
        token = self.token.encode()

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(token)))
                self.end_headers()
                self.wfile.write(token)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def fetch(port, timeout=3):
    with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=timeout) as r:
        return r.read().decode()


def carries(port, token):
    try:
        return fetch(port) == token
    except OSError:
        return False


@pytest.fixture
def sshd(tmp_path):
    s = Sshd(tmp_path / "sshd")
    s.start()
    yield s
    s.kill()


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.close()


def tunnel_yaml(name, sshd, remote=(), local=(), identity=None, known_hosts=None, extra=""):
    lines = ["  - name: %s" % name,
             "    destination: %s" % sshd.destination,
             "    identity: %s" % (identity or sshd.identity)]
    if known_hosts is not False:
        lines.append("    known_hosts: %s" % (known_hosts or sshd.known_hosts))
    if remote:
        lines.append("    remote_forwards: [%s]" % ", ".join('"%s"' % r for r in remote))
    if local:
        lines.append("    local_forwards: [%s]" % ", ".join('"%s"' % r for r in local))
    lines.append("    keepalive: { interval: 1s, count: 2 }")
    lines.append("    connect_timeout: 3s")
    return "\n".join(lines) + "\n" + extra


def status(d, name):
    for t in d.ctl("tunnel", "status")["tunnels"]:
        if t["name"] == name:
            return t
    raise AssertionError("no tunnel %s in status" % name)


def wait_state(d, name, states, timeout=20):
    states = (states,) if isinstance(states, str) else states
    last = {}

    def check():
        last["s"] = status(d, name)
        return last["s"] if last["s"]["state"] in states else None
    try:
        return wait_for(check, timeout, interval=0.1, what="tunnel %s in %s" % (name, states))
    except AssertionError:
        raise AssertionError("tunnel %s not in %s; last status %r\nlog:\n%s"
                             % (name, states, last.get("s"), d.log()[-6000:]))


def health_check(d, name):
    for c in d.ctl("health")["checks"]:
        if c["name"] == name:
            return c
    raise AssertionError("no health check %s" % name)


def ssh_pids(sshd):
    """Our ssh clients: the only processes naming this test's known_hosts."""
    return [p for p in procs_with(str(sshd.known_hosts)) if p not in sshd.sessions()]


def test_forwards_carry_traffic(agentd_factory, sshd, backend):
    rport, lport = free_port(), free_port()
    d = agentd_factory("tunnel:\n" + tunnel_yaml(
        "web", sshd, remote=["127.0.0.1:%d:127.0.0.1:%d" % (rport, backend.port)],
        local=["127.0.0.1:%d:127.0.0.1:%d" % (lport, backend.port)]))
    d.start()
    st = wait_state(d, "web", "up")
    assert all(f["confirmed"] for f in st["forwards"]), st
    assert [f["type"] for f in st["forwards"]] == ["remote", "local"]
    assert st["restarts"] == 0 and st["last_error"] is None
    # Through sshd's listener back to the backend, and through ssh's own.
    assert fetch(rport) == backend.token
    assert fetch(lport) == backend.token
    check = health_check(d, "tunnel:web")
    assert check["status"] == "pass" and check["critical"] is False, check
    assert check["plugin"] == "tunnel"
    d.wait_log(r"tunnel: 'web': up: 2 forwards established")
    plugin = [p for p in d.ctl("status")["plugins"] if p["name"] == "tunnel"][0]
    assert plugin["summary"] == "1 of 1 tunnel up", plugin
    metrics = d.ctl("metrics")
    assert 'agentd_tunnel_up{tunnel="web"} 1' in metrics, metrics
    assert 'agentd_tunnel_attempts_total{tunnel="web"} 1' in metrics, metrics
    assert len(ssh_pids(sshd)) == 1
    assert d.stop() == 0


def test_server_down_and_back(agentd_factory, sshd, backend):
    rport = free_port()
    d = agentd_factory("tunnel:\n" + tunnel_yaml(
        "db", sshd, remote=["127.0.0.1:%d:127.0.0.1:%d" % (rport, backend.port)]))
    d.start()
    wait_state(d, "db", "up")
    assert carries(rport, backend.token)

    sshd.kill()
    t0 = time.monotonic()
    # keepalive 1 s x 2: down within interval x count (plus polling slack).
    st = wait_state(d, "db", ("down", "backoff", "connecting"), timeout=2 + 3)
    assert time.monotonic() - t0 <= 2 + 3
    assert not carries(rport, backend.token)
    assert st["last_error"], st
    assert st["error_permanent"] is False
    # Non-critical: the check fails, the overall status only warns.
    assert health_check(d, "tunnel:db")["status"] == "fail"
    assert d.ctl("health")["status"] == "warn"

    time.sleep(3)  # an outage of a few seconds, with attempts failing meanwhile
    restarted = time.monotonic()
    sshd.start()
    st = wait_state(d, "db", "up", timeout=5 + 10)
    restore = time.monotonic() - restarted
    assert st["restarts"] >= 1
    wait_for(lambda: carries(rport, backend.token), 10, what="traffic through the restored tunnel")
    assert health_check(d, "tunnel:db")["status"] == "pass"
    d.wait_log(r"'db': up again: 1 forward established to .* after \d+\.\d s down")
    print("restored %.2fs after sshd came back" % restore)
    assert d.stop() == 0


def test_silent_server_detected_by_keepalive(agentd_factory, sshd, backend):
    """A server that stops answering (SIGSTOP) is down within interval x
    count; while its stale session still holds the port, new attempts fail
    with "remote port forwarding failed" and are retried, not given up."""
    rport = free_port()
    d = agentd_factory("tunnel:\n" + tunnel_yaml(
        "quiet", sshd, remote=["127.0.0.1:%d:127.0.0.1:%d" % (rport, backend.port)]))
    d.start()
    wait_state(d, "quiet", "up")
    stale = sshd.sessions()
    assert stale
    for p in stale:
        os.kill(p, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_state(d, "quiet", ("down", "backoff", "connecting"), timeout=2 + 4)
        print("silent server detected after %.2fs" % (time.monotonic() - t0))
        assert time.monotonic() - t0 <= 2 + 4
        # The stale session keeps the port: the new session's forward fails.
        st = wait_for(lambda: (lambda s: s if s.get("error_class") == "forward" else None)(status(d, "quiet")),
                      20, interval=0.1, what="a forward failure in status")
        assert "remote port forwarding failed" in st["last_error"]
        assert st["error_permanent"] is False
    finally:
        for p in stale:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
    # The stale session notices its client is gone and frees the port.
    wait_state(d, "quiet", "up", timeout=30)
    wait_for(lambda: carries(rport, backend.token), 10, what="traffic after the port was freed")
    assert d.stop() == 0


def test_wrong_host_key_refused(agentd_factory, sshd, tmp_path):
    other = tmp_path / "other_key"
    keygen(other)
    kh = tmp_path / "wrong_known_hosts"
    kh.write_text("[127.0.0.1]:%d %s\n" % (sshd.port, " ".join((tmp_path / "other_key.pub").read_text().split()[:2])))
    rport = free_port()
    d = agentd_factory("tunnel:\n" + tunnel_yaml("pinned", sshd, remote=["127.0.0.1:%d:127.0.0.1:9" % rport],
                                                 known_hosts=kh, extra="    critical: true\n"))
    d.start()
    st = wait_for(lambda: (lambda s: s if s.get("error_class") else None)(status(d, "pinned")), 20,
                  interval=0.1, what="an error in status")
    assert st["error_class"] == "host-key", st
    assert st["error_permanent"] is True
    assert "host key verification failed" in st["last_error"]
    assert "has changed" in st["last_error"]
    assert st["state"] == "backoff"
    # Retried only at the slow cap (5 min by default).
    assert st["next_attempt_in_ms"] > 60000, st
    assert "Accepted publickey" not in sshd.log()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", rport), timeout=1).close()
    d.wait_log(r"host key verification failed")
    # critical: true makes the tunnel's failure fail the overall health.
    check = health_check(d, "tunnel:pinned")
    assert check["status"] == "fail" and check["critical"] is True
    assert "host key verification failed" in check["output"]
    assert d.ctl("health")["status"] == "fail"
    assert d.stop() == 0


def test_identity_0644_refused(agentd_factory, sshd, tmp_path):
    loose = tmp_path / "id_loose"
    shutil.copy(sshd.identity, loose)
    os.chmod(loose, 0o644)
    d = agentd_factory("tunnel:\n" + tunnel_yaml("loose", sshd, remote=["0:127.0.0.1:9"], identity=loose))
    d.start()
    st = wait_for(lambda: (lambda s: s if s.get("error_class") else None)(status(d, "loose")), 20,
                  interval=0.1, what="an error in status")
    assert st["error_class"] == "identity", st
    assert st["error_permanent"] is True
    assert "0644" in st["last_error"] and "too open" in st["last_error"], st
    assert "Accepted publickey" not in sshd.log()
    assert d.stop() == 0


def test_missing_identity_refused(agentd_factory, sshd, tmp_path):
    d = agentd_factory("tunnel:\n" + tunnel_yaml("nokey", sshd, remote=["0:127.0.0.1:9"],
                                                 identity=tmp_path / "does-not-exist"))
    d.start()
    st = wait_for(lambda: (lambda s: s if s.get("error_class") else None)(status(d, "nokey")), 20,
                  interval=0.1, what="an error in status")
    assert st["error_class"] == "identity", st
    assert "does-not-exist: No such file or directory" in st["last_error"], st
    assert st["error_permanent"] is True
    assert d.stop() == 0


def test_forward_port_taken_backs_off(agentd_factory, sshd, backend):
    rport = free_port()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", rport))
    holder.listen()
    d = agentd_factory("tunnel:\n" + tunnel_yaml(
        "taken", sshd, remote=["127.0.0.1:%d:127.0.0.1:%d" % (rport, backend.port)]))
    d.start()
    st = wait_for(lambda: (lambda s: s if s.get("error_class") else None)(status(d, "taken")), 20,
                  interval=0.1, what="an error in status")
    assert st["error_class"] == "forward", st
    assert "remote port forwarding failed for listen port %d" % rport in st["last_error"]
    assert st["error_permanent"] is False
    assert st["state"] in ("backoff", "connecting")
    # Transient: retried within the fast schedule, not at the slow cap.
    wait_for(lambda: status(d, "taken")["attempts"] >= 3, 20, what="retries")
    holder.close()
    wait_state(d, "taken", "up", timeout=15)
    assert carries(rport, backend.token)
    assert d.stop() == 0


def test_restart_verb(agentd_factory, sshd, backend):
    rport = free_port()
    d = agentd_factory("tunnel:\n" + tunnel_yaml(
        "r", sshd, remote=["127.0.0.1:%d:127.0.0.1:%d" % (rport, backend.port)]))
    d.start()
    wait_state(d, "r", "up")
    pid = status(d, "r")["pid"]
    res = d.ctl("tunnel", "restart", "r")
    assert res["restarted"] == "r"
    st = wait_for(lambda: (lambda s: s if s["state"] == "up" and s["pid"] != pid else None)(status(d, "r")),
                  15, interval=0.1, what="a new session")
    assert st["restarts"] == 1
    assert carries(rport, backend.token)
    bad = d.ctl_raw("--json", "tunnel", "restart", "nope")
    assert bad.returncode != 0 and "nope" in (bad.stdout + bad.stderr)
    assert d.stop() == 0


def test_reload_keeps_unchanged_tunnels(agentd_factory, sshd, backend):
    pa, pb, pc = free_port(), free_port(), free_port()

    def body(*names):
        ports = {"a": pa, "b": pb, "c": pc}
        return "tunnel:\n" + "".join(tunnel_yaml(n, sshd, remote=["127.0.0.1:%d:127.0.0.1:%d" % (ports[n], backend.port)])
                                     for n in names)
    d = agentd_factory(body("a", "b"))
    d.start()
    wait_state(d, "a", "up")
    wait_state(d, "b", "up")
    pid_a = status(d, "a")["pid"]
    pid_b = status(d, "b")["pid"]
    d.write_config(body("a", "c"))
    d.ctl("reload")
    wait_state(d, "c", "up")
    st = status(d, "a")
    # a's session was not touched; b is gone with its ssh; c is new.
    assert st["pid"] == pid_a and st["state"] == "up" and st["restarts"] == 0, st
    assert [t["name"] for t in d.ctl("tunnel", "status")["tunnels"]] == ["a", "c"]
    wait_for(lambda: not os.path.exists("/proc/%d" % pid_b) or
             pathlib.Path("/proc/%d/stat" % pid_b).read_text().rsplit(")", 1)[1].split()[0] == "Z",
             10, what="b's ssh gone")
    assert carries(pa, backend.token) and carries(pc, backend.token)
    assert not carries(pb, backend.token)
    names = [c["name"] for c in d.ctl("health")["checks"]]
    assert "tunnel:a" in names and "tunnel:c" in names and "tunnel:b" not in names
    assert len(ssh_pids(sshd)) == 2

    # A changed tunnel is restarted with its new config; the others stay.
    pid_c = status(d, "c")["pid"]
    d.write_config(body("a", "c").replace("count: 2", "count: 3"))
    d.ctl("reload")
    wait_for(lambda: (lambda s: s if s["state"] == "up" and s["pid"] != pid_c else None)(status(d, "c")),
             15, interval=0.1, what="c restarted")
    wait_for(lambda: (lambda s: s if s["state"] == "up" and s["pid"] != pid_a else None)(status(d, "a")),
             15, interval=0.1, what="a restarted")
    assert "ServerAliveCountMax=3" in pathlib.Path("/proc/%d/cmdline" % status(d, "c")["pid"]).read_bytes().decode()
    assert health_check(d, "tunnel:c")["status"] == "pass"
    assert d.stop() == 0


def test_server_allocated_port(agentd_factory, sshd, backend):
    d = agentd_factory("tunnel:\n" + tunnel_yaml("alloc", sshd, remote=["0:127.0.0.1:%d" % backend.port]))
    d.start()
    st = wait_state(d, "alloc", "up")
    port = st["forwards"][0].get("allocated_port")
    assert port, st
    assert carries(port, backend.token)
    assert d.stop() == 0


def test_accept_new_records_key(agentd_factory, sshd, backend, tmp_path):
    kh = tmp_path / "empty_known_hosts"
    kh.write_text("")
    d = agentd_factory("tunnel:\n" + tunnel_yaml("tofu", sshd, remote=["0:127.0.0.1:%d" % backend.port],
                                                 known_hosts=kh, extra="    host_key_checking: accept-new\n"))
    d.start()
    wait_state(d, "tofu", "up")
    assert "[127.0.0.1]:%d" % sshd.port in kh.read_text()
    assert d.stop() == 0


def test_duplicate_names_are_a_config_error(agentd_factory, sshd):
    d = agentd_factory("tunnel:\n" + tunnel_yaml("same", sshd, remote=["0:127.0.0.1:9"])
                       + tunnel_yaml("same", sshd, remote=["0:127.0.0.1:10"]))
    r = run_agentd("--check-config", "-c", str(d.config), env=d.env)
    assert r.returncode == 78, r
    assert re.search(r"agentd\.yaml:\d+:\d+: tunnel\[1\]\.name: 'same' is already used by tunnel\[0\]",
                     r.stdout + r.stderr), r
    d.start(wait_ready=False)
    assert d.proc.wait(timeout=30) == 78
    assert not ssh_pids(sshd)


def test_sigterm_leaves_no_ssh(agentd_factory, sshd, backend):
    d = agentd_factory("tunnel:\n" + tunnel_yaml("t", sshd, remote=["0:127.0.0.1:%d" % backend.port]))
    d.start()
    wait_state(d, "t", "up")
    assert len(ssh_pids(sshd)) == 1
    assert d.stop(signal.SIGTERM) == 0
    wait_for(lambda: not ssh_pids(sshd), 5, what="no ssh left after SIGTERM")


def test_ssh_runs_clean_in_own_group(agentd_factory, sshd, backend):
    d = agentd_factory("tunnel:\n" + tunnel_yaml("env", sshd, remote=["0:127.0.0.1:%d" % backend.port]),
                       env={"SSH_AUTH_SOCK": "/tmp/agentd-test-agent.sock", "AGENTD_TEST_MARKER": "leak"})
    d.start()
    st = wait_state(d, "env", "up")
    pid = st["pid"]
    environ = pathlib.Path("/proc/%d/environ" % pid).read_bytes().split(b"\0")
    assert not [e for e in environ if e.startswith((b"SSH_AUTH_SOCK=", b"AGENTD_TEST_MARKER="))], environ
    argv = pathlib.Path("/proc/%d/cmdline" % pid).read_bytes().decode().rstrip("\0").split("\0")
    for opt in ("BatchMode=yes", "ExitOnForwardFailure=yes", "StrictHostKeyChecking=yes",
                "IdentitiesOnly=yes", "UserKnownHostsFile=%s" % sshd.known_hosts,
                "ServerAliveInterval=1", "ServerAliveCountMax=2", "ConnectTimeout=3"):
        assert opt in argv, (opt, argv)
    assert argv[0] == "ssh" and "-N" in argv and argv[-2:] == ["--", "127.0.0.1"], argv
    assert os.getpgid(pid) == pid, "ssh must lead its own process group"
    assert os.getpgid(pid) != os.getpgid(d.proc.pid)
    assert d.stop() == 0


def test_stop_escalates_to_sigkill(agentd_factory, sshd, backend):
    """An ssh that does not act on SIGTERM (stopped here) is killed after
    the grace period, and agentd's stop still completes."""
    d = agentd_factory("tunnel:\n" + tunnel_yaml("stuck", sshd, remote=["0:127.0.0.1:%d" % backend.port]))
    d.start()
    pid = wait_state(d, "stuck", "up")["pid"]
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    took = time.monotonic() - t0
    assert 1.5 <= took <= 15, took
    assert "did not exit within 2000 ms of SIGTERM" in d.log()
    wait_for(lambda: not ssh_pids(sshd), 5, what="no ssh left")


def test_sigkill_leaves_no_ssh(agentd_factory, sshd, backend):
    d = agentd_factory("tunnel:\n" + tunnel_yaml("k", sshd, remote=["0:127.0.0.1:%d" % backend.port]))
    d.start()
    wait_state(d, "k", "up")
    pids = ssh_pids(sshd)
    assert len(pids) == 1
    # Only agentd itself: ssh must go because of die_with_agentd, not
    # because someone killed its process group.
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    wait_for(lambda: not ssh_pids(sshd), 5, what="no ssh left after SIGKILL of agentd")


def test_sigkill_during_backoff_leaves_no_ssh(agentd_factory, sshd, tmp_path):
    """Between attempts there is no ssh at all; and a stuck attempt is gone too."""
    d = agentd_factory("tunnel:\n" + tunnel_yaml("b", sshd, remote=["0:127.0.0.1:9"],
                                                 identity=tmp_path / "missing"))
    d.start()
    wait_for(lambda: status(d, "b")["state"] == "backoff", 15, what="backoff")
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    wait_for(lambda: not ssh_pids(sshd), 5, what="no ssh left")


def check_config_file(tmp_path, body):
    cfg = tmp_path / "agentd.yaml"
    cfg.write_text("agentd:\n  plugin_dir: %s\n%s" % (plugin_dir(tmp_path), body))
    return cfg


@pytest.mark.parametrize("body,expect", [
    ("""tunnel:
  - name: nokh
    destination: u@127.0.0.1
    identity: /k/id
    remote_forwards: ["1:h:2"]
""", "known_hosts is required"),
    ("""tunnel:
  - name: badfwd
    destination: u@127.0.0.1
    identity: /k/id
    known_hosts: /k/kh
    remote_forwards: ["1:h"]
""", "remote_forwards"),
    ("""tunnel:
  - name: baddest
    destination: "-oProxyCommand=x"
    identity: /k/id
    known_hosts: /k/kh
    remote_forwards: ["1:h:2"]
""", "destination"),
    ("""tunnel:
  - name: badopt
    destination: u@h
    identity: /k/id
    known_hosts: /k/kh
    remote_forwards: ["1:h:2"]
    ssh_options: { ProxyCommand: "nc %h %p" }
""", "not an allowed ssh option"),
    ("""tunnel:
  - name: nofwd
    destination: u@h
    identity: /k/id
    known_hosts: /k/kh
""", "at least one of remote_forwards"),
    ("""tunnel:
  - name: ka
    destination: u@h
    identity: /k/id
    known_hosts: /k/kh
    remote_forwards: ["1:h:2"]
    keepalive: { interval: 1500ms }
""", "whole seconds"),
])
def test_config_errors(tmp_path, body, expect):
    cfg = check_config_file(tmp_path, body)
    r = run_agentd("-c", str(cfg), "--check-config")
    assert r.returncode == 78, r
    out = r.stdout + r.stderr
    assert expect in out, out
    # Errors carry the position: file:line:col.
    assert "agentd.yaml:" in out, out


def test_config_ok(tmp_path):
    cfg = check_config_file(tmp_path, """tunnel:
  - name: chartio
    destination: tunnel15240@connect.chartio.com
    remote_forwards: ["15240:127.0.0.1:3306"]
    identity: /etc/agentd/keys/chartio
    known_hosts: /etc/agentd/keys/chartio.known_hosts
    keepalive: { interval: 10s, count: 3 }
    ssh_options: { Ciphers: "aes256-gcm@openssh.com" }
""")
    r = run_agentd("-c", str(cfg), "--check-config")
    assert r.returncode == 0, r.stdout + r.stderr

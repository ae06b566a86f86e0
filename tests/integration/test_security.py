"""A hostile neighbour against agentd: each test here reproduces one way a
process on the same network or the same box could hurt the instance, and
fails on a build without the defence it checks."""
import grp
import json
import os
import pathlib
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import PYTHON, free_port, plugin_dir, run_agentd, wait_for
from test_health import get, health_yaml


def raw(port, data, timeout=5.0):
    """Sends raw bytes on a fresh connection and returns the status code of
    the first response (None if the connection closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n" not in buf:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
    if not buf.startswith(b"HTTP/1."):
        return None
    return int(buf.split(b" ", 2)[1])


class Crowd:
    """Holds `n` connections from `source`, each having sent one byte, and
    (with churn) opens a new one whenever agentd closes one."""

    def __init__(self, port, source, n, churn=False):
        self.port, self.source, self.n, self.churn = port, source, n, churn
        self.socks = []
        self.opened = 0
        self.stop = threading.Event()
        for _ in range(n):
            self._open()
        if churn:
            self.t = threading.Thread(target=self._run, daemon=True)
            self.t.start()

    def _open(self):
        s = socket.socket()
        s.bind((self.source, 0))
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", self.port))
            s.sendall(b"G")
        except OSError:
            s.close()
            return
        s.setblocking(False)
        self.socks.append(s)
        self.opened += 1

    def alive(self):
        n = 0
        for s in self.socks:
            try:
                if s.recv(1, socket.MSG_PEEK) == b"":
                    continue
            except BlockingIOError:
                n += 1
                continue
            except OSError:
                continue
            n += 1
        return n

    def _run(self):
        while not self.stop.is_set():
            keep = []
            for s in self.socks:
                try:
                    gone = s.recv(1, socket.MSG_PEEK) == b""
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone:
                    s.close()
                else:
                    keep.append(s)
            self.socks = keep
            while len(self.socks) < self.n and not self.stop.is_set():
                self._open()
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        if self.churn:
            self.t.join(5)
        for s in self.socks:
            s.close()


def test_refused_sources_cannot_starve_the_load_balancer(agentd_factory):
    # 127.0.0.2 plays a neighbour outside `allow`: 300 connections, each
    # opened again as soon as agentd drops it. Before the fix these held all
    # 256 slots for the 10 s request timeout and allowed clients got resets.
    port = free_port()
    d = agentd_factory(health_yaml(port, extra="  allow: [127.0.0.1/32]\n"))
    d.start()
    crowd = Crowd(port, "127.0.0.2", 300, churn=True)
    try:
        lat = []
        for _ in range(20):
            t0 = time.monotonic()
            st, _, _ = get(port, timeout=10)
            lat.append(time.monotonic() - t0)
            assert st == 200
            time.sleep(0.1)
        lat.sort()
        # Each answer is a pre-rendered body on a loop that only accepts and
        # closes the crowd's connections; 2 s leaves room for two busy cores
        # (the client itself competes with the churning crowd for them).
        assert lat[-1] < 2.0, lat
        # A refused source holds at most 16 connections (REFUSED_MAX).
        assert crowd.alive() <= 16 + 5  # +5: closes agentd made but the crowd has not read yet
    finally:
        crowd.close()
    # Once the crowd is gone, a well-behaved refused client gets its 403.
    def refused_status():
        try:
            return get(port, source="127.0.0.2", timeout=2)[0]
        except OSError:
            return None
    assert wait_for(refused_status, 5, what="a 403 for the refused source") == 403
    assert d.stop() == 0


def test_one_allowed_source_cannot_take_every_slot(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port, extra="  allow: [127.0.0.0/8]\n  max_connections: 100\n"
                                   "  max_connections_per_source: 10\n"))
    d.start()
    crowd = Crowd(port, "127.0.0.3", 100)
    try:
        wait_for(lambda: crowd.alive() <= 10, 5, what="connections over the per-source cap closed")
        assert get(port, timeout=5)[0] == 200
    finally:
        crowd.close()
    assert d.stop() == 0


def test_silent_connection_closed_after_request_line_timeout(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port))
    d.start()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"GET /hea")
        t0 = time.monotonic()
        assert s.recv(100) == b""
        held = time.monotonic() - t0
    # request_line_timeout is 2 s (swept every 0.5 s); the request timeout,
    # which alone applied before, is 10 s.
    assert held < 6.0, held
    assert d.stop() == 0


def test_ambiguous_framing_is_refused(agentd_factory):
    port = free_port()
    d = agentd_factory(health_yaml(port))
    d.start()
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n"
    # The control: a well-formed chunked body is read, dropped and answered.
    assert raw(port, head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n") == 200
    assert raw(port, head + b"Content-Length: 5\r\n\r\nhello") == 200
    # Whitespace before the colon.
    assert raw(port, head + b"Content-Length : 5\r\n\r\nhello") == 400
    # An obsolete line folding of Transfer-Encoding.
    assert raw(port, head + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n") == 400
    assert raw(port, head + b"Transfer-Encoding: identity\r\n\tchunked\r\n\r\n0\r\n\r\n") == 400
    # Chunks ended by a bare LF.
    assert raw(port, head + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n") == 400
    assert raw(port, head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n") == 400
    # A bare LF in the header section.
    assert raw(port, b"GET /health HTTP/1.1\nHost: x\n\n") == 400
    assert get(port)[0] == 200
    assert d.stop() == 0


# --- the control socket -----------------------------------------------------

PROBE = "probe:\n  message: \"one\"\n"

HOLDER = r"""
import json, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks, refused = [], []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
time.sleep(0.5)
for s in socks:
    s.setblocking(False)
    try:
        data = s.recv(4096)
    except BlockingIOError:
        continue
    refused.append(json.loads(data)["error"] if data else "closed")
print(json.dumps(refused), flush=True)
sys.stdin.read()  # hold the connections until the test closes stdin
"""


def _control_sockdir():
    d = pathlib.Path(tempfile.mkdtemp(prefix="agentd-sock-"))
    d.chmod(0o755)
    return d


def test_control_socket_one_user_cannot_lock_out_root(agentd_factory):
    nobody = pwd.getpwnam("nobody")
    sockdir = _control_sockdir()
    holder = None
    try:
        sock = sockdir / "control.sock"
        d = agentd_factory(PROBE, core={"control_socket": str(sock),
                                        "admin_group": grp.getgrgid(nobody.pw_gid).gr_name})
        d.socket = sock
        d.start()
        # An authorized user opens 64 connections and keeps them idle: it
        # gets 16 (MAX_PER_UID), the rest are refused with a reason.
        holder = subprocess.Popen([PYTHON, "-c", HOLDER, str(sock), "64"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, user=nobody.pw_uid,
                                  group=nobody.pw_gid, extra_groups=[])
        refused = json.loads(holder.stdout.readline())
        assert len(refused) == 64 - 16, refused
        assert set(refused) == {"too many connections from this user"}
        # Root is served meanwhile.
        assert d.ctl("status")["plugins"][1]["state"] == "running"
        d.wait_log(r"control: too many connections from this user \(uid %d\)" % nobody.pw_uid)
        holder.stdin.close()
        holder.wait(10)
        assert d.stop() == 0
    finally:
        if holder and holder.poll() is None:
            holder.kill()
        shutil.rmtree(sockdir, ignore_errors=True)


def test_control_socket_root_admitted_past_64_idle_connections(agentd_factory):
    d = agentd_factory(PROBE).start()
    idle = []
    try:
        for _ in range(64):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(d.socket))
            idle.append(s)
        time.sleep(0.3)
        assert d.ctl("status")["plugins"][1]["state"] == "running"
        # An idle connection is closed after 30 s (checked every 5 s).
        idle[0].settimeout(45)
        t0 = time.monotonic()
        assert idle[0].recv(10) == b""
        assert 20 < time.monotonic() - t0 + 0.3 < 40
    finally:
        for s in idle:
            s.close()
    assert d.stop() == 0


def test_sigabrt_leaves_no_core_with_secrets(agentd_factory, tmp_path, monkeypatch):
    pattern = pathlib.Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip("core_pattern %r does not write into the process's directory" % pattern)
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("the hard RLIMIT_CORE is 0: no process here can dump core")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    try:
        d = agentd_factory(PROBE).start()
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    # The watchdog's way of ending a hung agentd.
    d.send_signal(signal.SIGABRT)
    assert d.proc.wait(10) == -signal.SIGABRT
    time.sleep(0.5)
    assert list(cwd.iterdir()) == [], "a core file was written"


# --- log sources and symbolic links -----------------------------------------

def test_planted_symlinks_are_not_shipped(agentd_factory):
    from test_logs import Cwl, pipeline_yaml, start
    nobody = pwd.getpwnam("nobody")
    base = pathlib.Path(tempfile.mkdtemp(prefix="agentd-links-"))
    cwl = Cwl()
    try:
        base.chmod(0o755)
        secret = base / "secret"
        secret.mkdir(mode=0o700)
        (secret / "shadow.log").write_text("SECRET root:$6$hash:19000:0:99999:7:::\n")
        watched = base / "watched"
        watched.mkdir()
        os.chown(watched, nobody.pw_uid, nobody.pw_gid)
        # The neighbour can write in the watched directory, nothing more.
        plant = ("import os\n"
                 "os.symlink(%r, 'x.log')\n"         # a file link to a secret
                 "os.symlink('../secret', 'sub')\n"   # a directory link, for '*' and '**'
                 "open('real.log', 'w').write('L00000001 an honest line\\n')\n"
                 % str(secret / "shadow.log"))
        subprocess.run([PYTHON, "-c", plant], cwd=watched, check=True, user=nobody.pw_uid,
                       group=nobody.pw_gid, extra_groups=[])
        files = [watched / "*.log", watched / "*" / "*.log", watched / "**" / "*.log"]
        d = start(agentd_factory, cwl, pipeline_yaml("p", files))
        wait_for(lambda: any("honest" in e["message"] for e in cwl.events()), 15,
                 what="the real file shipped")
        time.sleep(2.5)  # two more rescans (rescan_interval 1s)
        msgs = [e["message"] for e in cwl.events()]
        assert not [m for m in msgs if "SECRET" in m], msgs
        assert len(msgs) == 1, msgs
        d.wait_log(r"'%s' not read: it is a symbolic link" % re.escape(str(watched / "x.log")))
        d.wait_log(r"'%s' not read: it is a symbolic link" % re.escape(str(watched / "sub")))
        assert d.stop() == 0
    finally:
        cwl.close()
        shutil.rmtree(base, ignore_errors=True)


def test_follow_symlinks_reads_links_when_asked(agentd_factory):
    # With follow_symlinks: true the admin opted in: a link is read.
    from test_logs import Cwl, pipeline_yaml, start
    base = pathlib.Path(tempfile.mkdtemp(prefix="agentd-links-"))
    cwl = Cwl()
    try:
        (base / "elsewhere.log").write_text("L00000001 through a link\n")
        (base / "w").mkdir()
        os.symlink(base / "elsewhere.log", base / "w" / "app.log")
        d = start(agentd_factory, cwl, pipeline_yaml("p", [base / "w" / "*.log"],
                                                     extra="    follow_symlinks: true\n"))
        wait_for(lambda: any("through a link" in e["message"] for e in cwl.events()), 15,
                 what="the linked file shipped")
        assert d.stop() == 0
    finally:
        cwl.close()
        shutil.rmtree(base, ignore_errors=True)


# --- checkpoints ------------------------------------------------------------

def _numbers(cwl):
    from test_logs import numbers
    return set(numbers(cwl.events()))


def _write(path, lo, hi):
    from test_logs import line
    with open(path, "a") as f:
        for n in range(lo, hi + 1):
            f.write(line(n))


def test_bad_checkpoint_with_start_at_end_ships_what_was_written_while_down(agentd_factory, tmp_path):
    from test_logs import Cwl, pipeline_yaml, restart, start
    cwl = Cwl()
    try:
        app = tmp_path / "app.log"
        _write(app, 1, 10)  # before the very first start: skipped by start_at: end
        d = start(agentd_factory, cwl, pipeline_yaml("p", [app], extra="    start_at: end\n"))
        _write(app, 11, 20)
        wait_for(lambda: _numbers(cwl) >= set(range(11, 21)), 15, what="lines 11-20")
        assert d.stop() == 0
        _write(app, 21, 30)  # while agentd is down
        ck = d.state_dir / "logs" / "pipeline-p.json"
        assert ck.exists()
        ck.write_text('{"version": 1, "files": [{"path": ')  # cut short, as by a full disk
        restart(d)
        wait_for(lambda: _numbers(cwl) >= set(range(21, 31)), 15, what="lines written while down")
        d.wait_log(r"pipeline 'p': checkpoint is not valid: reading from the beginning")
        assert d.stop() == 0
    finally:
        cwl.close()


def test_fifo_at_the_checkpoint_path_does_not_block(agentd_factory, tmp_path):
    from test_logs import Cwl, pipeline_yaml, restart, start
    cwl = Cwl()
    try:
        app = tmp_path / "app.log"
        _write(app, 1, 5)
        d = start(agentd_factory, cwl, pipeline_yaml("p", [app]))
        wait_for(lambda: _numbers(cwl) >= set(range(1, 6)), 15, what="lines 1-5")
        assert d.stop() == 0
        ck = d.state_dir / "logs" / "pipeline-p.json"
        ck.unlink()
        os.mkfifo(ck)
        _write(app, 6, 10)
        restart(d)  # READY=1 within its timeout: open() did not block on the FIFO
        wait_for(lambda: _numbers(cwl) >= set(range(6, 11)), 15, what="lines 6-10")
        d.wait_log(r"pipeline 'p': checkpoint unreadable \(Invalid argument\)")
        assert d.stop() == 0
    finally:
        cwl.close()


# --- config: where credentials may be sent ----------------------------------

def _check(tmp_path, text):
    cfg = tmp_path / "agentd.yaml"
    # Two lines of core config first: the positions below count them.
    cfg.write_text("agentd:\n  plugin_dir: %s\n" % json.dumps(str(plugin_dir(tmp_path))) + text)
    r = run_agentd("--check-config", "-c", str(cfg))
    return r.returncode, r.stdout + r.stderr


ENDPOINT_CASES = [
    # (config, the error expected, or None for accepted)
    ("logs:\n  - name: p\n    files: [/var/log/x.log]\n    cloudwatch:\n      group: g\n"
     "      endpoint: http://10.0.0.5\n",
     "agentd.yaml:8:17: logs[0].cloudwatch.endpoint: \"http://10.0.0.5\": signed requests go "
     "over https://"),
    ("logs:\n  - name: p\n    files: [/var/log/x.log]\n    s3:\n      bucket: b\n"
     "      endpoint: http://s3.internal.example:9000\n",
     "agentd.yaml:8:17: logs[0].s3.endpoint: \"http://s3.internal.example:9000\": signed"),
    ("targetgroup:\n  groups: [arn:aws:elasticloadbalancing:us-east-1:123456789012:"
     "targetgroup/web/0123456789abcdef]\n  endpoint: http://[fd00::5]:8080\n",
     "agentd.yaml:5:13: targetgroup.endpoint: \"http://[fd00::5]:8080\": signed"),
    ("route53:\n  endpoint: http://10.0.0.9\n  records: []\n",
     "agentd.yaml:4:13: route53.endpoint: \"http://10.0.0.9\": signed"),
    ("imds:\n  endpoint: http://10.1.2.3\n",
     "agentd.yaml:4:13: imds.endpoint: \"http://10.1.2.3\" is not link-local or loopback"),
    ("logs:\n  - name: p\n    files: [/var/log/x.log]\n    cloudwatch:\n      group: g\n"
     "      endpoint: https://10.0.0.5\n", None),
    ("logs:\n  - name: p\n    files: [/var/log/x.log]\n    cloudwatch:\n      group: g\n"
     "      endpoint: http://127.0.0.1:4566\n", None),
    ("imds:\n  endpoint: http://169.254.169.254\n", None),
    ("imds:\n  endpoint: http://[fd00:ec2::254]\n", None),
    ("imds:\n  endpoint: http://10.1.2.3\n  allow_remote_imds: true\n", None),
]


@pytest.mark.parametrize("text,error", ENDPOINT_CASES)
def test_endpoint_rules_are_config_errors_with_positions(tmp_path, text, error):
    rc, out = _check(tmp_path, text)
    if error is None:
        assert rc == 0, out
    else:
        assert rc == 78 and error in out, out


# --- S3 keys from tag values -------------------------------------------------

@pytest.mark.parametrize("hostile", ["../../other-bucket/x", "", "two\nlines", "a/./b"])
def test_hostile_tag_in_s3_key_stalls_then_ships_after_reload(agentd_factory, tmp_path, hostile):
    from test_logs import ENV, line
    from test_logs_s3 import BUCKET, S3, S3RVER
    if not shutil.which("node") or not S3RVER.exists():
        pytest.skip("s3rver not installed: run tests/setup/logs.sh (needs node and npm)")
    s3 = S3(tmp_path)
    try:
        log = tmp_path / "app.log"
        log.write_text("".join(line(n) for n in range(100)))
        body = """
logs:
  - name: k
    files: [%s]
    checkpoint_interval: 100ms
    s3:
      bucket: %s
      key: "log/{tag:App}/obj-{seq}.log.gz"
      rotate: {size: 1MiB, age: 1s}
      endpoint: "%s"
""" % (log, BUCKET, s3.url)
        core = {"metadata": {"instance_id": "i-0123456789abcdef0", "tag:App": hostile}}
        d = agentd_factory(body, core=core, env=ENV)
        d.start()
        d.wait_log(r"pipeline 'k': S3 key 'log/.*' refused: it ")
        time.sleep(2.5)
        assert s3.keys() == []
        st = d.ctl("logs", "status")["pipelines"][0]
        assert "refused" in st["sink"]["last_error"], st
        # Nothing was dropped: the events wait in the queue.
        assert st["counters"]["events_shipped"] == 0, st
        d.core["metadata"]["tag:App"] = "web"
        d.write_config(body)
        assert d.ctl("reload")["reload"]["ok"] is True
        wait_for(lambda: len(s3.lines()[1]) == 100, 30, what="every line in S3 after the fix")
        keys, got = s3.lines()
        assert all(k.startswith("log/web/") for k in keys), keys
        assert got == [line(n)[:-1] for n in range(100)]
        d.wait_log(r"pipeline 'k': S3 key 'log/web/obj-\d+\.log\.gz' accepted again")
        assert d.stop() == 0
    finally:
        s3.close()


# --- what the health endpoint tells whom ------------------------------------

def test_check_details_and_metrics_only_to_detail_allow(agentd_factory):
    port = free_port()
    checks = """
    - name: secret-exec
      exec: ["/bin/sh", "-c", "echo PASSWORD=hunter2; exit 1"]
      interval: 1s
"""
    d = agentd_factory(health_yaml(port, checks=checks,
                                   extra="  allow: [127.0.0.0/8]\n  detail_allow: [127.0.0.1/32]\n"))
    d.start()
    wait_for(lambda: b"hunter2" in get(port, "/health?verbose")[2], 10, what="the check's output")
    # 127.0.0.2 is allowed to ask, but is not in detail_allow.
    st, hdr, body = get(port, "/health?verbose", source="127.0.0.2")
    assert b"hunter2" not in body and b"output" not in body, body
    assert json.loads(body)["checks"]["secret-exec"] == [{"status": "warn"}]  # exit 1: warn
    assert get(port, "/metrics", source="127.0.0.2")[0] == 403
    st, _, m = get(port, "/metrics")
    assert st == 200 and b"agentd_health_denied_total 1" in m
    assert d.stop() == 0


# --- a neighbour on another network, in a namespace of the test's own -------

NS_HOST, NS_PEER = "10.213.7.1", "10.213.7.2"


@pytest.fixture
def neighbour():
    """A network namespace holding NS_PEER, linked by a veth pair to
    NS_HOST on this side: a host of its own, reachable only from here.
    Yields a function that runs python code in it and returns its stdout."""
    ns = "agentd-t%d" % os.getpid()
    veth = "agt%d" % (os.getpid() % 100000)
    cmds = [["ip", "netns", "add", ns],
            ["ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p"],
            ["ip", "link", "set", veth + "p", "netns", ns],
            ["ip", "addr", "add", NS_HOST + "/24", "dev", veth],
            ["ip", "link", "set", veth, "up"],
            ["ip", "-n", ns, "addr", "add", NS_PEER + "/24", "dev", veth + "p"],
            ["ip", "-n", ns, "link", "set", veth + "p", "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"]]
    try:
        for c in cmds:
            subprocess.run(c, check=True, capture_output=True, text=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip("cannot make a network namespace here: %s" % e)

    def run(code, timeout=20):
        r = subprocess.run(["ip", "netns", "exec", ns, PYTHON, "-c", code], capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode == 0, r.stderr
        return r.stdout

    run.ns = ns
    yield run
    subprocess.run(["ip", "link", "del", veth], capture_output=True)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


ASK = r"""
import http.client, sys
c = http.client.HTTPConnection("%s", %d, timeout=5)
try:
    c.request("GET", "%s")
    r = c.getresponse()
    print(r.status, r.read().decode())
except OSError as e:
    print("error", e)
"""


def test_default_allow_is_loopback_and_the_vpc(agentd_factory, neighbour):
    from conftest import Emulator
    port = free_port(NS_HOST)
    # The VPC, as IMDS tells it, does not hold the neighbour's address.
    emu = Emulator("imds.py", "--vpc-cidr", "10.0.0.0/16", "--vpc-cidr", "172.31.0.0/16")
    try:
        d = agentd_factory("imds:\n  endpoint: %s\n" % emu.base_url +
                           "health:\n  listen: [\"%s:%d\", \"127.0.0.1:0\"]\n  checks: []\n"
                           % (NS_HOST, port))
        d.start()
        d.wait_log(r"allow \(automatic\): loopback and the VPC \(10\.0\.0\.0/16 172\.31\.0\.0/16\)")
        out = neighbour(ASK % (NS_HOST, port, "/health"))
        assert out.startswith("403 "), out
        assert d.stop() == 0
    finally:
        emu.close()
    # Its own VPC's address is let in, and gets the terse body only.
    emu = Emulator("imds.py", "--vpc-cidr", "10.213.7.0/24")
    try:
        d = agentd_factory("imds:\n  endpoint: %s\n" % emu.base_url +
                           "health:\n  listen: [\"%s:%d\"]\n  checks:\n"
                           "    - name: x\n      exec: [/bin/echo, PASSWORD=hunter2]\n"
                           % (NS_HOST, port))
        d.start()
        d.wait_log(r"allow \(automatic\): loopback and the VPC \(10\.213\.7\.0/24\)")
        out = wait_for(lambda: (lambda o: o if o.startswith("200 ") else None)(
            neighbour(ASK % (NS_HOST, port, "/health?verbose"))), 10, what="200 from the VPC")
        assert "hunter2" not in out and '"x":[{"status":"pass"}]' in out, out
        assert neighbour(ASK % (NS_HOST, port, "/metrics")).startswith("403 ")
        assert d.stop() == 0
    finally:
        emu.close()


def test_without_imds_the_default_allow_is_the_private_ranges(agentd_factory, neighbour):
    port = free_port(NS_HOST)
    d = agentd_factory("health:\n  listen: [\"%s:%d\"]\n  checks: []\n" % (NS_HOST, port))
    d.start()
    d.wait_log(r"allow \(automatic\): loopback and the private ranges")
    assert neighbour(ASK % (NS_HOST, port, "/health")).startswith("200 ")  # 10.0.0.0/8
    assert d.stop() == 0


def test_an_object_s3_keeps_refusing_does_not_block_the_ones_behind_it(agentd_factory, tmp_path):
    from test_logs import ENV, line
    from test_logs_s3 import BUCKET, S3, S3RVER
    if not shutil.which("node") or not S3RVER.exists():
        pytest.skip("s3rver not installed: run tests/setup/logs.sh (needs node and npm)")
    s3 = S3(tmp_path)
    try:
        log = tmp_path / "app.log"
        log.write_text("")
        body = """
logs:
  - name: q
    files: [%s]
    checkpoint_interval: 100ms
    flush_timeout: 3s
    s3:
      bucket: %s
      key: "log/obj-{seq}.log.gz"
      rotate: {size: 1MiB, age: 1s}
      endpoint: "%s"
""" % (log, BUCKET, s3.url)
        d = agentd_factory(body, core={"metadata": {"instance_id": "i-0123456789abcdef0"}},
                           env=ENV)
        d.start()
        assert d.stop() == 0
        # A pending object left by an earlier run that can never be sent (its
        # file is a directory, so every read fails), first in the queue.
        state = d.state_dir / "logs"
        (state / "s3-q-1.gz").mkdir()
        (state / "s3-q.json").write_text(json.dumps(
            {"seq": 1, "pending": [{"file": str(state / "s3-q-1.gz"), "key": "log/obj-1.log.gz"}]}))
        from test_logs import restart
        restart(d)
        with open(log, "a") as f:
            for n in range(50):
                f.write(line(n))
        wait_for(lambda: len(s3.lines()[1]) == 50, 30, what="the later object uploaded")
        keys, got = s3.lines()
        assert "log/obj-1.log.gz" not in keys and got == [line(n)[:-1] for n in range(50)]
        st = d.ctl("logs", "status")["pipelines"][0]["sink"]
        assert st["pending_uploads"] == 1, st
        # The stop's flush gives up on it after flush_timeout and says so.
        assert d.stop() == 0
        assert "1 S3 object not uploaded" in d.log(), d.log()[-2000:]
    finally:
        s3.close()


CROWD = r"""
import socket, time
socks, end = [], time.monotonic() + %f
while time.monotonic() < end:
    socks = [s for s in socks if s.fileno() >= 0]
    while len(socks) < 300:
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("%s", %d))
            s.sendall(b"G")
            s.setblocking(False)
        except OSError:
            s.close()
            break
        socks.append(s)
    for s in socks:
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                s.close()
        except BlockingIOError:
            pass
        except OSError:
            s.close()
    time.sleep(0.05)
print(len(socks))
"""


def test_refused_neighbour_on_another_network_cannot_starve_the_checker(agentd_factory, neighbour):
    # The neighbour (NS_PEER, outside allow) holds 300 one-byte connections,
    # opening a new one whenever agentd drops one, while the load balancer
    # (here a client on loopback, inside allow) keeps asking.
    port, lport = free_port(NS_HOST), free_port()
    d = agentd_factory("health:\n  listen: [\"%s:%d\", \"127.0.0.1:%d\"]\n  allow: [127.0.0.1/32]\n"
                       "  checks: []\n" % (NS_HOST, port, lport))
    d.start()
    crowd = subprocess.Popen(["ip", "netns", "exec", neighbour.ns, PYTHON, "-c",
                              CROWD % (8.0, NS_HOST, port)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # the crowd is in place
        lat = []
        for _ in range(20):
            t0 = time.monotonic()
            assert get(lport, timeout=10)[0] == 200
            lat.append(time.monotonic() - t0)
            time.sleep(0.1)
        lat.sort()
        # p95 and max under 2 s on two busy cores: each answer is a
        # pre-rendered body; before the fix most got resets or waited 10 s.
        assert lat[18] < 2.0 and lat[-1] < 2.0, lat
    finally:
        crowd.wait(30)
    assert neighbour(ASK % (NS_HOST, port, "/health")).startswith("403 ")
    assert d.stop() == 0

"""agentctl doctor: each plugin's checks, pass and fail, against the
emulators, a closed port, a port that accepts but never answers, a 0710
directory, AccessDenied, and tunnel key files."""
import json
import os
import socket
import subprocess
import urllib.request

import pytest

from conftest import Emulator, free_port, wait_for
from test_admin import CORE, ENV, blocked_dir, no_sanitizer_reports, unprivileged  # noqa: F401


def doctor(d, *extra):
    r = d.ctl_raw("doctor", *extra, timeout=60)
    return r


def doctor_json(d):
    r = d.ctl_raw("doctor", "--json", timeout=60)
    return r.returncode, {c["name"]: c for c in json.loads(r.stdout)["checks"]}


@pytest.fixture
def cwl():
    e = Emulator("cwlogs.py", "--quiet")
    yield e
    e.close()


def faults(cwl, **kw):
    req = urllib.request.Request(cwl.base_url + "/_admin/faults", data=json.dumps(kw).encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def logs_body(files, endpoint, name="app"):
    return """
logs:
  - name: %s
    files: %s
    # Several tests point the sink at a dead or silent endpoint: the stop's
    # flush then gives up after this instead of the default 60 s.
    flush_timeout: 2s
    cloudwatch:
      group: app-logs
      endpoint: %s
""" % (name, json.dumps([str(f) for f in files]), endpoint)


def start(agentd_factory, body):
    return agentd_factory(body, core=CORE, env=ENV).start()


def test_doctor_all_pass(agentd_factory, cwl, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("x\n")
    d = start(agentd_factory, logs_body([log], cwl.base_url))
    # The sink creates its group with its first batch; before that the group is
    # missing (a warning, see below).
    wait_for(lambda: d.ctl("logs", "status")["pipelines"][0]["counters"]["events_shipped"] == 1,
             20, what="the first line shipped")
    r = doctor(d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pass  logs:app sources     1 pattern(s) readable\n" in r.stdout, r.stdout
    assert "pass  logs:app cloudwatch  DescribeLogStreams on 'app-logs' answered\n" in r.stdout
    assert r.stdout.endswith("2 pass, 0 warn, 0 fail\n"), r.stdout
    rc, checks = doctor_json(d)
    assert rc == 0 and checks["logs:app cloudwatch"]["status"] == "pass"
    assert checks["logs:app cloudwatch"]["plugin"] == "logs"
    assert d.stop() == 0


def test_doctor_access_denied(agentd_factory, cwl, tmp_path):
    faults(cwl, deny=["DescribeLogStreams"])
    d = start(agentd_factory, logs_body([tmp_path / "app.log"], cwl.base_url))
    rc, checks = doctor_json(d)
    c = checks["logs:app cloudwatch"]
    assert rc == 1 and c["status"] == "fail", c
    assert "AccessDeniedException" in c["detail"], c
    assert c["cause"] == "the credentials are valid but the role lacks a permission"
    assert "logs:DescribeLogStreams" in c["fix"]
    # The missing file is a warning, not a failure, with its own cause.
    s = checks["logs:app sources"]
    assert s["status"] == "warn" and s["cause"] == "the path does not exist", s
    text = doctor(d).stdout
    assert "fail  logs:app cloudwatch  DescribeLogStreams on 'app-logs': AccessDeniedException" in text
    assert "cause: the credentials are valid but the role lacks a permission" in text
    assert "fix:   allow logs:DescribeLogStreams" in text
    d.wait_log(r"warning: logs: doctor: logs:app cloudwatch: .*AccessDeniedException.*; "
               r"likely cause: the credentials are valid but the role lacks a permission")
    assert d.stop() == 0


def test_doctor_group_missing_is_a_warning(agentd_factory, cwl, tmp_path):
    # The sink may not create the group (denied), so it stays missing.
    faults(cwl, deny=["CreateLogGroup"])
    log = tmp_path / "app.log"
    log.write_text("x\n")
    d = start(agentd_factory, logs_body([log], cwl.base_url))
    rc, checks = doctor_json(d)
    c = checks["logs:app cloudwatch"]
    assert rc == 0 and c["status"] == "warn" and "ResourceNotFoundException" in c["detail"], c
    assert "logs:CreateLogGroup" in c["fix"]
    # A missing group is normal at the first start: no warning line for it.
    assert "doctor:" not in d.log(), d.log()
    assert d.stop() == 0


def test_doctor_closed_port(agentd_factory, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("x\n")
    d = start(agentd_factory, logs_body([log], "http://127.0.0.1:%d" % free_port()))
    rc, checks = doctor_json(d)
    c = checks["logs:app cloudwatch"]
    assert rc == 1 and c["status"] == "fail", c
    assert c["cause"].startswith("the connection to the endpoint failed"), c
    assert d.stop() == 0


def test_doctor_black_hole_port(agentd_factory, tmp_path):
    # A socket that listens but never accepts or answers: the kernel completes
    # the handshake, the request is never answered, as behind a filtering hop.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    log = tmp_path / "app.log"
    log.write_text("x\n")
    try:
        d = start(agentd_factory, logs_body([log], "http://127.0.0.1:%d" % hole.getsockname()[1]))
        rc, checks = doctor_json(d)
        c = checks["logs:app cloudwatch"]
        assert rc == 1 and c["status"] == "fail", c
        assert "security group or NACL" in c["cause"] and "NAT gateway" in c["cause"], c
        assert "VPC endpoint" in c["fix"], c
        # The same check ran at start; its failure is a warning with cause and fix.
        d.wait_log(r"warning: logs: doctor: logs:app cloudwatch: DescribeLogStreams on 'app-logs'"
                   r": .*; likely cause: no answer from the endpoint in time: a security group",
                   timeout=15)
        assert d.stop() == 0
    finally:
        hole.close()


def test_doctor_blocked_directory(agentd_factory, cwl, tmp_path, unprivileged):  # noqa: F811
    d0 = blocked_dir(tmp_path)
    d = start(agentd_factory, logs_body([d0 / "app.log"], cwl.base_url))
    rc, checks = doctor_json(d)
    s = checks["logs:app sources"]
    assert rc == 0 and s["status"] == "warn", s
    assert s["detail"] == "cannot read '%s/app.log' (1 problem(s)): Permission denied" % d0, s
    assert s["cause"] == ("'%s' (mode 0710, owner 65534:65534) does not let agentd's user in"
                          % d0), s
    assert "setfacl" in s["fix"] and "ReadOnlyPaths" in s["fix"], s
    assert d.stop() == 0


def test_doctor_tunnel_key_files(agentd_factory, tmp_path):
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    key.chmod(0o644)
    good = tmp_path / "good"
    good.write_bytes(key.read_bytes())
    good.chmod(0o600)
    kh = tmp_path / "known_hosts"
    kh.write_text("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ5\n")
    body = """tunnel:
  - name: loose
    destination: agent@127.0.0.1:1
    identity: %s
    known_hosts: %s
    remote_forwards: ["0:127.0.0.1:9"]
  - name: ok
    destination: agent@127.0.0.1:1
    identity: %s
    known_hosts: %s
    remote_forwards: ["0:127.0.0.1:9"]
""" % (key, tmp_path / "missing_known_hosts", good, kh)
    d = start(agentd_factory, body)
    rc, checks = doctor_json(d)
    assert rc == 1
    c = checks["tunnel:loose identity"]
    assert c["status"] == "fail" and c["detail"] == "'%s' is mode 0644" % key, c
    assert "ssh refuses it" in c["cause"]
    c = checks["tunnel:loose known_hosts"]
    assert c["status"] == "fail" and "No such file" in c["detail"] and "ssh-keyscan" in c["fix"], c
    assert checks["tunnel:ok identity"]["status"] == "pass"
    assert checks["tunnel:ok known_hosts"]["status"] == "pass"
    assert d.stop() == 0


def test_doctor_not_running(tmp_path):
    from conftest import AGENTCTL
    r = subprocess.run([str(AGENTCTL), "--socket", str(tmp_path / "s"), "doctor"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 3


@pytest.fixture
def elb():
    from test_admin import emulib_post
    e = Emulator("elbv2.py")
    emulib_post(e.base_url + "/admin/instances", {"i-0123456789abcdef0": "127.0.0.1"})
    yield e
    e.close()


def tg_body(elb, arn, name=None):
    from test_admin import health_yaml
    group = '{name: "%s", port: 8000}' % name if name else '{arn: "%s", port: 8000}' % arn
    return health_yaml(free_port(), "    []\n").replace("  checks:\n    []\n", "  checks: []\n") + """
targetgroup:
  groups: [%s]
  poll_interval: 1s
  endpoint: %s
""" % (group, elb.base_url)


def test_doctor_targetgroup_pass_and_access_denied(agentd_factory, elb):
    from test_admin import emulib_post, tg_group
    arn = tg_group(elb, "web", free_port())
    d = start(agentd_factory, tg_body(elb, arn))
    rc, checks = doctor_json(d)
    c = checks["targetgroup:%s" % arn]
    assert rc == 0 and c["status"] == "pass" and c["detail"] == "DescribeTargetHealth answered", c
    emulib_post(elb.base_url + "/admin/faults", {"deny": ["DescribeTargetHealth"]})
    rc, checks = doctor_json(d)
    c = checks["targetgroup:%s" % arn]
    assert rc == 1 and c["status"] == "fail", c
    assert c["detail"].startswith("DescribeTargetHealth: AccessDenied: "), c
    assert "elasticloadbalancing:DescribeTargetHealth" in c["fix"], c
    emulib_post(elb.base_url + "/admin/faults", {})
    assert d.stop() == 0


def test_doctor_targetgroup_unknown_name(agentd_factory, elb):
    d = start(agentd_factory, tg_body(elb, None, name="nope"))
    rc, checks = doctor_json(d)
    c = checks["targetgroup:nope"]
    assert rc == 1 and c["status"] == "fail", c
    assert c["cause"] == "no such target group in this account and region", c
    assert d.stop() == 0

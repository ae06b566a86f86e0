"""targetgroup plugin against the ELBv2 emulator, which checks every request's
signature and parameters with botocore and health-checks the agent itself."""
import json
import signal
import socket
import sys
import threading
import time
import urllib.request

import pytest

from conftest import EMULATORS, Emulator, free_port, wait_for

sys.path.insert(0, str(EMULATORS))
import emulib  # noqa: E402

AKID = "AKIDTARGETGROUP01"
INSTANCE = "i-0123456789abcdef0"
CREDS = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": emulib.derive_secret(AKID),
         "AWS_REGION": "us-east-1"}


def post(url, obj):
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


class Elb:
    def __init__(self):
        self.emu = Emulator("elbv2.py")
        self.url = self.emu.base_url
        post(self.url + "/admin/instances", {INSTANCE: "127.0.0.1"})

    def group(self, name, health_port, delay=2, interval=0.5):
        return post(self.url + "/admin/target-groups", {
            "name": name, "port": 8000, "deregistration_delay": delay,
            "health_check": {"port": str(health_port), "path": "/health", "interval": interval,
                             "timeout": 1, "healthy": 2, "unhealthy": 2}})["arn"]

    def state(self):
        return get(self.url + "/admin/state")

    def requests(self, action=None):
        return [r for r in self.state()["requests"] if action is None or r["action"] == action]

    def target(self, arn):
        for g in self.state()["groups"]:
            if g["arn"] == arn:
                return g["targets"][0] if g["targets"] else None
        raise KeyError(arn)

    def close(self):
        self.emu.close()


@pytest.fixture
def elb():
    e = Elb()
    yield e
    e.close()


class App:
    """A TCP port the test opens and closes: the app the health check watches."""

    def __init__(self):
        self.port = free_port()
        self.sock = None

    def up(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        sock = self.sock

        def accept_forever():
            # Accept and close each health check's connection, or the
            # backlog fills and the check starts timing out.
            while True:
                try:
                    c, _ = sock.accept()
                except OSError:
                    return
                c.close()
        threading.Thread(target=accept_forever, daemon=True).start()

    def down(self):
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            except OSError:
                pass
            self.sock.close()
            self.sock = None


@pytest.fixture
def app():
    a = App()
    yield a
    a.down()


def config(elb, health_port, app_port, groups, extra=""):
    return """
health:
  listen: ["127.0.0.1:%d"]
  checks:
    - name: app
      tcp: 127.0.0.1:%d
      interval: 250ms
      timeout: 200ms
      rise: 1
      fall: 1
targetgroup:
  groups: %s
  poll_interval: 2s
  drain_poll_interval: 250ms
  endpoint: %s
%s""" % (health_port, app_port, json.dumps(groups), elb.url, extra)


def start(agentd_factory, elb, app, groups, extra="", env=None, body_extra=""):
    hp = free_port()
    e = dict(CREDS)
    e.update(env or {})
    d = agentd_factory(config(elb, hp, app.port, groups, extra) + body_extra,
                       core={"metadata": {"instance_id": INSTANCE, "region": "us-east-1"}}, env=e)
    d.start()
    return d, hp


def tg_status(d):
    return d.ctl("targetgroup", "status")["groups"]


def test_joins_only_when_healthy_and_leaves_drained_on_sigterm(agentd_factory, elb, app):
    hp = free_port()
    arn = elb.group("web", hp, delay=2)
    d = agentd_factory(config(elb, hp, app.port, [{"arn": arn, "port": 8000}]),
                       core={"metadata": {"instance_id": INSTANCE}}, env=CREDS)
    d.start()
    # The app is down: the instance must not join.
    wait_for(lambda: tg_status(d)[0]["state"] == "waiting-for-health", 10, what="waiting")
    time.sleep(1.5)
    assert elb.requests("RegisterTargets") == []
    assert tg_status(d)[0]["state"] == "waiting-for-health"
    # The app comes up: registered, and healthy by the load balancer's own checks
    # within rise x interval plus one poll.
    app.up()
    wait_for(lambda: elb.requests("RegisterTargets"), 10, what="RegisterTargets")
    reg = elb.requests("RegisterTargets")[0]
    assert reg["status"] == 200
    assert reg["params"]["Targets"] == [{"Id": INSTANCE, "Port": 8000}]
    wait_for(lambda: (elb.target(arn) or {}).get("state") == "healthy", 10, what="ELB healthy")
    wait_for(lambda: tg_status(d)[0].get("target_health", {}).get("state") == "healthy", 10,
             what="plugin sees healthy")
    # SIGTERM: deregistered and drained before agentd exits 0, within the drain timeout.
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    assert d.stop(timeout=30) == 0
    took = time.monotonic() - t0
    dereg = elb.requests("DeregisterTargets")
    assert len(dereg) >= 1 and dereg[0]["status"] == 200
    assert elb.target(arn) is None, "target still in the group after agentd exited"
    assert 1.5 <= took <= 2 + 5, "exit after %.1fs with a 2s deregistration delay" % took
    assert "drained and deregistered" in d.log()


def test_group_by_name_and_drain_undrain(agentd_factory, elb, app):
    app.up()
    hp = free_port()
    arn = elb.group("by-name", hp, delay=1)
    d = agentd_factory(config(elb, hp, app.port, [{"name": "by-name", "port": 8000}]),
                       core={"metadata": {"instance_id": INSTANCE}}, env=CREDS)
    d.start()
    wait_for(lambda: tg_status(d)[0]["state"] == "registered", 10, what="registered")
    assert tg_status(d)[0]["arn"] == arn
    # A plugin named alone means its status.
    assert d.ctl("targetgroup")["groups"][0]["arn"] == arn
    assert elb.requests("DescribeTargetGroups")[0]["params"] == {"Names": ["by-name"]}
    r = d.ctl("targetgroup", "drain")
    assert r["draining"] is True
    wait_for(lambda: tg_status(d)[0]["state"] == "deregistered", 10, what="deregistered")
    assert elb.target(arn) is None
    # While drained the health endpoint says so.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.1:%d/health" % hp, timeout=5)
    assert e.value.code == 503
    d.ctl("targetgroup", "undrain")
    wait_for(lambda: tg_status(d)[0]["state"] == "registered", 10, what="registered again")
    assert elb.target(arn) is not None
    assert d.stop() == 0


def test_registers_again_when_missing(agentd_factory, elb, app):
    app.up()
    hp = free_port()
    arn = elb.group("missing", hp, delay=0)
    d = agentd_factory(config(elb, hp, app.port, [{"arn": arn, "port": 8000}]),
                       core={"metadata": {"instance_id": INSTANCE}}, env=CREDS)
    d.start()
    wait_for(lambda: elb.target(arn) is not None, 10, what="registered")
    post(elb.url + "/admin/forget", {"arn": arn})
    wait_for(lambda: len(elb.requests("RegisterTargets")) >= 2, 10, what="registered again")
    d.wait_log(r"missing from the group")
    assert d.stop() == 0


def test_unknown_group_is_a_clear_error_and_health_keeps_serving(agentd_factory, elb, app):
    app.up()
    hp = free_port()
    elb.group("exists", hp)
    d = agentd_factory(config(elb, hp, app.port, [{"name": "nope", "port": 8000}]),
                       core={"metadata": {"instance_id": INSTANCE}}, env=CREDS)
    d.start()
    wait_for(lambda: tg_status(d)[0]["state"] == "error", 10, what="error state")
    st = tg_status(d)[0]
    assert "TargetGroupNotFound" in st["last_error"]
    d.wait_log(r"group 'nope': DescribeTargetGroups failed: TargetGroupNotFound")
    # Slow backoff, not a hot loop.
    n = len(elb.requests("DescribeTargetGroups"))
    time.sleep(3)
    assert len(elb.requests("DescribeTargetGroups")) - n <= 1
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % hp, timeout=5) as r:
        assert r.status == 200
    assert d.stop() == 0


def test_throttling_storm_during_stop_does_not_lose_the_deregistration(agentd_factory, elb, app):
    app.up()
    hp = free_port()
    arn = elb.group("storm", hp, delay=1)
    d = agentd_factory(config(elb, hp, app.port, [{"arn": arn, "port": 8000}]),
                       core={"metadata": {"instance_id": INSTANCE}}, env=CREDS)
    d.start()
    wait_for(lambda: elb.target(arn) is not None, 10, what="registered")
    post(elb.url + "/admin/faults", {"throttle": 8, "actions": ["DeregisterTargets"]})
    d.send_signal(signal.SIGTERM)
    assert d.stop(timeout=40) == 0
    dereg = elb.requests("DeregisterTargets")
    assert [r["error"] for r in dereg[:8]] == ["Throttling"] * 8
    assert dereg[-1]["status"] == 200
    assert elb.target(arn) is None


def imds_config(imds_url):
    return """
imds:
  endpoint: %s
  poll_interval: 1s
""" % imds_url


@pytest.mark.parametrize("notice", ["spot", "lifecycle"])
def test_interruption_notice_deregisters(agentd_factory, elb, app, notice):
    app.up()
    imds = Emulator("imds.py", "--instance-id", INSTANCE)
    try:
        hp = free_port()
        arn = elb.group("spot", hp, delay=2)
        d = agentd_factory(config(elb, hp, app.port, [{"arn": arn, "port": 8000}]) +
                           imds_config(imds.base_url),
                           env=dict(CREDS, AWS_EC2_METADATA_DISABLED="false"))
        d.start()
        wait_for(lambda: elb.target(arn) is not None, 15, what="registered")
        t0 = time.time()
        if notice == "spot":
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))
            post(imds.base_url + "/admin/spot", {"action": "terminate", "time": when})
        else:
            post(imds.base_url + "/admin/lifecycle", {"state": "Terminated"})
        wait_for(lambda: elb.requests("DeregisterTargets"), 5, what="DeregisterTargets")
        took = elb.requests("DeregisterTargets")[0]["time"] - t0
        assert took <= 1 + 1, "DeregisterTargets %.2fs after the notice" % took
        assert d.ctl("targetgroup", "status")["draining"] is True
        assert d.stop(timeout=60) == 0
    finally:
        imds.close()

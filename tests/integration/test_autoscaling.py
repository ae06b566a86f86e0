"""autoscaling plugin against the Auto Scaling emulator (lifecycle hooks, SigV4
and model checked), with ELBv2, CloudWatch Logs, S3 and IMDS emulators: a
termination drains, ships every line, and only then completes the hook."""
import sys
import time
import urllib.request
import json

import pytest

from conftest import EMULATORS, Emulator, free_port, wait_for

sys.path.insert(0, str(EMULATORS))
import emulib  # noqa: E402,F401

from test_lifecycle import (ENV, INSTANCE, App, Cwl, Elb, Writer, check_delivered,  # noqa: E402
                            logs_yaml, post, s3)  # noqa: F401  (the s3rver fixture)

GROUP = "web-asg"


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


class Asg:
    def __init__(self, imds_url, hooks):
        self.emu = Emulator("autoscaling.py")
        self.url = self.emu.base_url
        post(self.url + "/admin/groups", {"name": GROUP, "instances": [INSTANCE],
                                          "imds": imds_url, "hooks": hooks})

    def state(self):
        return get(self.url + "/admin/state")

    def requests(self, action=None):
        return [r for r in self.state()["requests"] if action is None or r["action"] == action]

    def close(self):
        self.emu.close()


@pytest.fixture
def cwl():
    c = Cwl()
    yield c
    c.close()


@pytest.fixture
def elb():
    e = Elb()
    yield e
    e.close()


@pytest.fixture
def app():
    a = App()
    yield a
    a.down()


@pytest.fixture
def imds():
    e = Emulator("imds.py", "--instance-id", INSTANCE)
    yield e
    e.close()


def body(elb, hp, app_port, arn, imds_url, asg_url, extra=""):
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
  groups: [{arn: "%s", port: 8000}]
  poll_interval: 2s
  drain_poll_interval: 250ms
  endpoint: %s
imds:
  endpoint: %s
  poll_interval: 1s
autoscaling:
  group: %s
  endpoint: %s
%s""" % (hp, app_port, arn, elb.url, imds_url, GROUP, asg_url, extra)


def test_terminate_hook_drains_ships_then_completes(agentd_factory, elb, app, cwl, s3, imds,
                                                    tmp_path):
    app.up()
    hp = free_port()
    arn = elb.group("asg-web", hp, delay=3)
    asg = Asg(imds.base_url, [{"name": "drain", "transition":
                               "autoscaling:EC2_INSTANCE_TERMINATING",
                               "heartbeat_timeout": 4, "default_result": "ABANDON"}])
    try:
        log = tmp_path / "app.log"
        log.touch()
        cfg = body(elb, hp, app.port, arn, imds.base_url, asg.url,
                   "  terminate_hook: drain\n  heartbeat_timeout: 4s\n") + logs_yaml(log, cwl, s3)
        d = agentd_factory(cfg, core={"metadata": {"instance_id": INSTANCE}},
                           env=dict(ENV, AWS_EC2_METADATA_DISABLED="false"))
        d.start()
        wait_for(lambda: elb.target(arn) is not None, 15, what="registered")
        w = Writer(log).start()
        time.sleep(1)
        post(asg.url + "/admin/terminate", {"instance": INSTANCE})
        wait_for(lambda: elb.target(arn) is None, 20, interval=0.1, what="drained")
        t_drained = time.time()
        total = w.stop()
        wait_for(lambda: asg.requests("CompleteLifecycleAction"), 30, interval=0.1,
                 what="CompleteLifecycleAction")
        comp = asg.requests("CompleteLifecycleAction")[0]
        assert comp["status"] == 200, comp
        assert comp["params"] == {"AutoScalingGroupName": GROUP, "InstanceId": INSTANCE,
                                  "LifecycleHookName": "drain",
                                  "LifecycleActionResult": "CONTINUE"}
        # agentd did not exit: the ASG terminates the instance.
        assert d.proc.poll() is None
        # Order: DeregisterTargets -> drain done -> final PutLogEvents -> Complete.
        dereg = elb.requests("DeregisterTargets")[0]["time"]
        events = cwl.events()
        last_ingest = max(e["ingestionTime"] for e in events) / 1000.0
        print("terminate hook: DeregisterTargets +0.00s, drained +%.2fs, last PutLogEvents "
              "+%.2fs, CompleteLifecycleAction +%.2fs" % (
                  t_drained - dereg, last_ingest - dereg, comp["time"] - dereg))
        assert dereg < t_drained <= last_ingest + 0.5
        assert last_ingest <= comp["time"]
        # Every line written up to the end of the drain is in CloudWatch and S3 already.
        check_delivered("terminate hook", cwl, s3, total)
        mods = [s3.client.head_object(Bucket="logs-bucket", Key=k)["LastModified"].timestamp()
                for k in s3.keys()]
        assert max(mods) <= comp["time"] + 1
        # The sequence outlasted half the 4 s heartbeat timeout: heartbeats were sent.
        beats = asg.requests("RecordLifecycleActionHeartbeat")
        assert beats and all(b["status"] == 200 for b in beats)
        assert beats[0]["time"] < comp["time"]
        assert asg.state()["instances"][INSTANCE]["state"] == "Terminating:Proceed"
        # The shutdown that follows completes nothing twice and exits 0.
        assert d.stop(timeout=60) == 0
        assert len(asg.requests("CompleteLifecycleAction")) == 1
    finally:
        asg.close()


@pytest.mark.parametrize("healthy", [True, False])
def test_launch_hook(agentd_factory, elb, app, imds, healthy):
    if healthy:
        app.up()
    hp = free_port()
    arn = elb.group("asg-launch", hp, delay=1)
    asg = Asg(imds.base_url, [{"name": "ready", "transition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                               "heartbeat_timeout": 30, "default_result": "ABANDON"}])
    try:
        post(asg.url + "/admin/launch", {"instance": INSTANCE})
        d = agentd_factory(body(elb, hp, app.port, arn, imds.base_url, asg.url,
                                "  launch_hook: ready\n  launch_timeout: 3s\n"),
                           core={"metadata": {"instance_id": INSTANCE}},
                           env=dict(ENV, AWS_EC2_METADATA_DISABLED="false"))
        t0 = time.time()
        d.start()
        wait_for(lambda: asg.requests("CompleteLifecycleAction"), 15, interval=0.1,
                 what="CompleteLifecycleAction")
        comp = asg.requests("CompleteLifecycleAction")[0]
        assert comp["status"] == 200
        if healthy:
            assert comp["params"]["LifecycleActionResult"] == "CONTINUE"
            assert comp["time"] - t0 < 3
            assert asg.state()["instances"][INSTANCE]["state"] == "InService"
        else:
            assert comp["params"]["LifecycleActionResult"] == "ABANDON"
            assert comp["time"] - t0 >= 3
        assert d.stop(timeout=30) == 0
    finally:
        asg.close()

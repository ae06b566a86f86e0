"""The stop sequence (announce, leave, flush, release, complete) end to end:
every line written up to SIGTERM, after a spot notice, or during a target
group's drain reaches CloudWatch Logs (the emulator) and S3 (s3rver), counted
line by line; Auto Scaling states Standby / Warmed:* / InService; and an S3
object left by a killed run is uploaded as soon as the restart's first tick."""
import collections
import pathlib
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import EMULATORS, Emulator, free_port, wait_for

sys.path.insert(0, str(EMULATORS))
import emulib  # noqa: E402,F401

from test_logs import CORE, ENV, Cwl, line, numbers, ranges, restart  # noqa: E402
from test_logs_s3 import BUCKET, s3  # noqa: E402,F401  (the s3rver fixture)
from test_targetgroup import App, Elb, INSTANCE, post  # noqa: E402

AKID = ENV["AWS_ACCESS_KEY_ID"]


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


class Writer:
    """Appends numbered lines, one write and flush each, until stopped."""

    def __init__(self, path, pause=0.002):
        self.path = path
        self.pause = pause
        self.n = 0
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        with open(self.path, "a") as f:
            while not self.halt.is_set():
                f.write(line(self.n))
                f.flush()
                self.n += 1
                time.sleep(self.pause)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.halt.set()
        self.thread.join(10)
        return self.n


def logs_yaml(log, cwl, s3, rotate="{size: 64MiB, age: 1h}"):
    """Two pipelines over the same file: one to CloudWatch, one to S3. The S3
    object never rotates on its own: only the stop (or a notice) closes it."""
    return """
logs:
  - name: tocw
    files: [%s]
    checkpoint_interval: 100ms
    cloudwatch:
      group: app-logs
      flush_interval: 200ms
      endpoint: "%s"
  - name: tos3
    files: [%s]
    checkpoint_interval: 100ms
    s3:
      bucket: %s
      key: "log/{instance_id}/%%Y%%m%%d-%%H%%M%%S-{seq}.log.gz"
      rotate: %s
      endpoint: "%s"
""" % (log, cwl.url, log, BUCKET, rotate, s3.url)


def count_lines(nums, total):
    got = collections.Counter(nums)
    missing = [n for n in range(total) if got[n] == 0]
    unknown = [n for n in got if n >= total]
    return len(set(nums) - set(unknown)), missing, unknown


def check_delivered(what, cwl, s3, total):
    """Every line 0..total-1 in CloudWatch and in S3; prints written vs delivered."""
    cw_nums = numbers(cwl.events())
    _, s3_lines = s3.lines()
    s3_nums = numbers([{"message": m} for m in s3_lines])
    cw_n, cw_missing, cw_unknown = count_lines(cw_nums, total)
    s3_n, s3_missing, s3_unknown = count_lines(s3_nums, total)
    print("%s: %d lines written; CloudWatch %d delivered (%d events), S3 %d delivered "
          "(%d lines)" % (what, total, cw_n, len(cw_nums), s3_n, len(s3_nums)))
    assert not cw_missing, "CloudWatch: %d lines lost: %s" % (len(cw_missing), ranges(cw_missing))
    assert not s3_missing, "S3: %d lines lost: %s" % (len(s3_missing), ranges(s3_missing))
    assert not cw_unknown and not s3_unknown
    return cw_nums, s3_nums


def start_agentd(agentd_factory, body, env=None):
    d = agentd_factory(body, core=CORE, env=dict(ENV, **(env or {})))
    d.start()
    return d


def sink_status(d, name):
    for p in d.ctl("logs", "status")["pipelines"]:
        if p["name"] == name:
            return p
    raise KeyError(name)


def test_sigterm_while_writing_loses_nothing(agentd_factory, cwl, s3, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    d = start_agentd(agentd_factory, logs_yaml(log, cwl, s3))
    w = Writer(log).start()
    time.sleep(3)
    d.send_signal(signal.SIGTERM)
    total = w.stop()  # every line written up to the moment of SIGTERM (and a few after)
    assert d.stop(timeout=90) == 0
    assert total > 500
    check_delivered("SIGTERM while writing", cwl, s3, total)
    # The flush phase ran once, after a leave phase with no plugin.
    log_text = d.log()
    assert log_text.count("stop phase flush done") == 1, log_text
    assert log_text.index("stop phase leave done") < log_text.index("stop phase flush done")
    assert "pipeline 'tos3': flushed" in log_text
    # The open object went up: nothing is left in the state directory.
    assert not list(pathlib.Path(d.state_dir).rglob("*.gz"))


def test_spot_notice_then_sigterm(agentd_factory, cwl, s3, imds, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    body = logs_yaml(log, cwl, s3) + "imds:\n  endpoint: %s\n  poll_interval: 1s\n" % (
        imds.base_url)
    d = start_agentd(agentd_factory, body, env={"AWS_EC2_METADATA_DISABLED": "false"})
    w = Writer(log).start()
    time.sleep(2)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))
    post(imds.base_url + "/admin/spot", {"action": "terminate", "time": when})
    # At the notice the open object (rotate age 1 h) is closed and uploaded.
    wait_for(lambda: sink_status(d, "tos3")["sink"]["objects_uploaded"] >= 1, timeout=5,
             what="the open object uploaded at the spot notice")
    time.sleep(2)
    d.send_signal(signal.SIGTERM)
    total = w.stop()
    assert d.stop(timeout=90) == 0
    check_delivered("spot notice then SIGTERM", cwl, s3, total)
    assert "spot interruption notice: uploading the open object now" in d.log()


def tg_logs_yaml(elb, hp, app_port, arn, log, cwl, s3):
    """targetgroup listed before logs: by config order logs would stop first."""
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
""" % (hp, app_port, arn, elb.url) + logs_yaml(log, cwl, s3)


def test_lines_written_during_a_10s_drain_are_shipped(agentd_factory, elb, app, cwl, s3,
                                                      tmp_path):
    app.up()
    hp = free_port()
    arn = elb.group("drain10", hp, delay=10)
    log = tmp_path / "app.log"
    log.touch()
    d = start_agentd(agentd_factory, tg_logs_yaml(elb, hp, app.port, arn, log, cwl, s3),
                     env={"AWS_REGION": "us-east-1"})
    wait_for(lambda: elb.target(arn) is not None, 15, what="registered")
    w = Writer(log).start()
    time.sleep(1)
    t_term = time.time()
    d.send_signal(signal.SIGTERM)
    # The app keeps writing through the whole drain, until the target is gone.
    wait_for(lambda: elb.target(arn) is None, 30, interval=0.1, what="drained out of the group")
    t_drained = time.time()
    total = w.stop()
    assert d.stop(timeout=90) == 0
    dereg = elb.requests("DeregisterTargets")
    assert dereg and dereg[0]["time"] >= t_term - 0.5
    assert t_drained - dereg[0]["time"] >= 9, "drain took %.1fs" % (t_drained - dereg[0]["time"])
    cw_nums, _ = check_delivered("10 s drain, logs after targetgroup", cwl, s3, total)
    # Order from the emulators' records: the last PutLogEvents was stored after
    # the drain had ended, and lines written during the drain are in it.
    last_ingest = max(e["ingestionTime"] for e in cwl.events()) / 1000.0
    assert last_ingest >= t_drained - 0.5, (last_ingest, t_drained)
    during = [n for n in cw_nums if n > total // 2]
    assert during, "no line written during the drain was shipped"
    log_text = d.log()
    assert log_text.index("stop phase leave done") < log_text.index("stop phase flush done")
    assert "(targetgroup)" in log_text.split("stop phase leave done", 1)[1].splitlines()[0]


def health_code(hp):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % hp, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError):
        return None  # not listening (yet)


def tg_imds_yaml(elb, hp, app_port, arn, imds_url):
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
  poll_interval: 1s
  drain_poll_interval: 250ms
  endpoint: %s
imds:
  endpoint: %s
  poll_interval: 1s
""" % (hp, app_port, arn, elb.url, imds_url)


TG_ENV = {"AWS_ACCESS_KEY_ID": "AKIDTARGETGROUP01",
          "AWS_SECRET_ACCESS_KEY": emulib.derive_secret("AKIDTARGETGROUP01"),
          "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "false"}


def test_warmed_running_then_inservice_rejoins(agentd_factory, elb, app, imds):
    app.up()
    hp = free_port()
    arn = elb.group("warm", hp, delay=1)
    post(imds.base_url + "/admin/lifecycle", {"state": "Warmed:Running"})
    d = agentd_factory(tg_imds_yaml(elb, hp, app.port, arn, imds.base_url), env=TG_ENV)
    d.start()
    d.wait_log(r"Auto Scaling lifecycle state Warmed:Running", timeout=10)
    time.sleep(2)
    assert elb.target(arn) is None
    assert health_code(hp) == 503
    post(imds.base_url + "/admin/lifecycle", {"state": "InService"})
    wait_for(lambda: elb.target(arn) is not None, 15, what="registered after InService")
    wait_for(lambda: health_code(hp) == 200, 10, what="/health 200 after InService")
    assert d.ctl("targetgroup", "status")["draining"] is False
    assert d.stop(timeout=30) == 0


def test_standby_is_not_registered_again(agentd_factory, elb, app, imds):
    app.up()
    hp = free_port()
    arn = elb.group("standby", hp, delay=1)
    d = agentd_factory(tg_imds_yaml(elb, hp, app.port, arn, imds.base_url), env=TG_ENV)
    d.start()
    wait_for(lambda: elb.target(arn) is not None, 15, what="registered")
    post(imds.base_url + "/admin/lifecycle", {"state": "Standby"})
    wait_for(lambda: elb.requests("DeregisterTargets"), 10, what="DeregisterTargets")
    wait_for(lambda: elb.target(arn) is None, 10, what="out of the group")
    n_reg = len(elb.requests("RegisterTargets"))
    time.sleep(4)  # four poll intervals
    assert len(elb.requests("RegisterTargets")) == n_reg, "re-registered while in Standby"
    assert elb.target(arn) is None
    # Out of Standby: back in.
    post(imds.base_url + "/admin/lifecycle", {"state": "InService"})
    wait_for(lambda: elb.target(arn) is not None, 15, what="registered after Standby")
    assert d.stop(timeout=30) == 0


def test_restart_uploads_a_killed_runs_object_within_one_tick(agentd_factory, cwl, s3,
                                                              tmp_path):
    log = tmp_path / "app.log"
    total = 2000
    log.write_text("".join(line(n) for n in range(total)))
    d = start_agentd(agentd_factory, logs_yaml(log, cwl, s3, rotate="{size: 64MiB, age: 3s}"))
    wait_for(lambda: sink_status(d, "tos3")["counters"]["events_shipped"] == total, timeout=30,
             what="every line in the open object")
    assert "open_object" in sink_status(d, "tos3")["sink"]
    d.stop(sig=signal.SIGKILL)
    assert s3.keys() == []
    time.sleep(3.5)  # older than the rotate age by now
    t0 = time.monotonic()
    restart(d)
    wait_for(lambda: s3.keys(), timeout=10, interval=0.05, what="the left object uploaded")
    took = time.monotonic() - t0
    print("object left by a killed run uploaded %.2f s after the restart" % took)
    # One S3 tick is 1 s; the agentd start itself is part of took.
    assert took < 2.5, "took %.2f s" % took
    assert d.stop(timeout=60) == 0
    check_delivered("restart after kill -9", cwl, s3, total)


def test_reload_of_unchanged_plugins_runs_no_phase(agentd_factory, cwl, s3, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("".join(line(n) for n in range(100)))
    hp = free_port()
    health = "health:\n  listen: [\"127.0.0.1:%d\"]\n" % hp
    d = start_agentd(agentd_factory, health + logs_yaml(log, cwl, s3))
    wait_for(lambda: sink_status(d, "tocw")["counters"]["events_shipped"] == 100, timeout=20,
             what="shipped")
    # The same config, then only the health port changed: logs is left alone.
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"reload", timeout=10)
    hp2 = free_port()
    d.write_config("health:\n  listen: [\"127.0.0.1:%d\"]\n" % hp2 + logs_yaml(log, cwl, s3))
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: health_code(hp2) == 200, 10, what="health on the new port")
    time.sleep(0.5)
    text = d.log()
    assert "stop phase" not in text, text
    assert "flushed in" not in text
    assert text.count("pipeline 'tos3': reading") == 1, text
    assert health_code(hp2) == 200  # no announce: not draining
    with open(log, "a") as f:
        f.write("".join(line(n) for n in range(100, 200)))
    assert d.stop(timeout=60) == 0
    check_delivered("reload then SIGTERM", cwl, s3, 200)
    assert d.log().count("stop phase flush done") == 1

"""route53 plugin against the Route 53 emulator, which checks every request's
signature (us-east-1, service route53) and its XML against botocore's model,
keeps Route 53's rules (exact DELETE, no CREATE over an existing set), and
records the order and time of every call."""
import json
import signal
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import EMULATORS, Emulator, free_port, wait_for

sys.path.insert(0, str(EMULATORS))
import emulib  # noqa: E402

AKID = "AKIDROUTE53TEST01"
INSTANCE = "i-0123456789abcdef0"
PUBLIC_IP = "203.0.113.7"
ZONE_ID = "ZTEST0123456789"
CREDS = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": emulib.derive_secret(AKID),
         "AWS_REGION": "eu-west-1"}
META = {"instance_id": INSTANCE, "public_ipv4": PUBLIC_IP, "local_ipv4": "10.0.0.7",
        "region": "eu-west-1", "tag:Stack": "blue"}


def post(url, obj):
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


class R53:
    def __init__(self, insync_delay=1.0):
        self.emu = Emulator("route53.py", "--insync-delay", str(insync_delay),
                            "--zone", "example.com=" + ZONE_ID)
        self.url = self.emu.base_url

    def state(self):
        return get(self.url + "/admin/state")

    def requests(self, op=None):
        return [r for r in self.state()["requests"] if op is None or r["op"] == op]

    def changes(self, action=None):
        out = []
        for r in self.requests("ChangeResourceRecordSets"):
            acts = [c["Action"] for c in ((r["params"] or {}).get("ChangeBatch") or {}).get("Changes", [])]
            if action is None or action in acts:
                out.append(r)
        return out

    def records(self, zone=ZONE_ID):
        for z in self.state()["zones"]:
            if z["id"] == zone:
                return z["records"]
        raise KeyError(zone)

    def record(self, name, rtype="A"):
        for r in self.records():
            if r["Name"] == name and r["Type"] == rtype:
                return r
        return None

    def close(self):
        self.emu.close()


@pytest.fixture
def r53():
    e = R53()
    yield e
    e.close()


class App:
    """A TCP port the health check watches, opened and closed by the test."""

    def __init__(self):
        import socket
        self.socket = socket
        self.port = free_port()
        self.sock = None

    def up(self):
        import threading
        s = self.socket.socket()
        s.setsockopt(self.socket.SOL_SOCKET, self.socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.sock = s

        def accept_forever():
            while True:
                try:
                    c, _ = s.accept()
                except OSError:
                    return
                c.close()
        threading.Thread(target=accept_forever, daemon=True).start()

    def down(self):
        if self.sock:
            try:
                self.sock.shutdown(self.socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None


@pytest.fixture
def app():
    a = App()
    yield a
    a.down()


def health_config(hp, app_port):
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
""" % (hp, app_port)


def route53_config(records, extra=""):
    return """
route53:
  records: %s
%s""" % (json.dumps(records), extra)


A_RECORD = {"zone_id": ZONE_ID, "name": "{tag:Stack}.example.com", "type": "A",
            "value": "{public_ipv4}", "ttl": 60}


def start(agentd_factory, r53, body, env=None, meta=None):
    e = dict(CREDS)
    # The plugin has no endpoint option set: the SDKs' variable must route it.
    e["AWS_ENDPOINT_URL_ROUTE_53"] = r53.url
    e.update(env or {})
    d = agentd_factory(body, core={"metadata": dict(META, **(meta or {}))}, env=e)
    d.start()
    return d


def status(d):
    return d.ctl("route53", "status")["records"]


def test_record_appears_after_health_insync_and_is_deleted_on_sigterm(agentd_factory, r53, app):
    hp = free_port()
    d = start(agentd_factory, r53, health_config(hp, app.port) + route53_config([A_RECORD]))
    wait_for(lambda: status(d)[0]["state"] == "waiting", 10, what="waiting for health")
    time.sleep(1.5)
    assert r53.changes() == [], "a record was written before the health checks passed"
    app.up()
    wait_for(lambda: r53.changes("UPSERT"), 10, what="UPSERT")
    up = r53.changes("UPSERT")[0]
    assert up["status"] == 200 and up["path"] == "/2013-04-01/hostedzone/%s/rrset/" % ZONE_ID
    change = up["params"]["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]
    assert change == {"Name": "blue.example.com.", "Type": "A", "TTL": 60,
                      "ResourceRecords": [{"Value": PUBLIC_IP}]}
    assert r53.record("blue.example.com.")["Values"] == [PUBLIC_IP]
    # PENDING, then INSYNC (the emulator takes 1 s), confirmed with GetChange.
    wait_for(lambda: status(d)[0]["state"] == "active", 15, what="active")
    st = status(d)[0]
    assert st["change_status"] == "INSYNC" and st["insync_ms"] > 0
    gets = r53.requests("GetChange")
    assert gets and gets[-1]["params"]["Id"] == st["change_id"]
    assert len(gets) <= 3, "GetChange polled too often: %d" % len(gets)
    d.wait_log(r"change \S+ is INSYNC after")
    assert d.ctl("route53")["records"][0]["written"]["value"] == PUBLIC_IP
    metrics = d.ctl_raw("metrics").stdout
    assert 'agentd_route53_record_active{record="0"} 1' in metrics
    assert "agentd_route53_changes_total 1" in metrics
    # SIGTERM: read back, then DELETE with exactly those values, before exit.
    d.send_signal(signal.SIGTERM)
    assert d.stop(timeout=30) == 0
    dels = r53.changes("DELETE")
    assert len(dels) == 1 and dels[0]["status"] == 200
    assert dels[0]["params"]["ChangeBatch"]["Changes"][0]["ResourceRecordSet"] == change
    ops = [r["op"] for r in r53.requests()]
    assert ops[-2:] == ["ListResourceRecordSets", "ChangeResourceRecordSets"]
    assert r53.record("blue.example.com.") is None
    assert "blue.example.com. A 203.0.113.7 deleted from zone" in d.log()


def test_record_changed_by_someone_else_is_not_deleted(agentd_factory, r53):
    rec = dict(A_RECORD, when="start")
    d = start(agentd_factory, r53, route53_config([rec]))
    wait_for(lambda: status(d)[0]["state"] == "active", 15, what="active")
    # An admin points the name elsewhere by hand.
    post(r53.url + "/admin/records", {"zone_id": ZONE_ID, "name": "blue.example.com", "type": "A",
                                      "ttl": 60, "values": ["198.51.100.9"]})
    d.send_signal(signal.SIGTERM)
    assert d.stop(timeout=30) == 0
    assert r53.changes("DELETE") == []
    assert r53.record("blue.example.com.")["Values"] == ["198.51.100.9"]
    assert "was changed by someone else (now 198.51.100.9" in d.log()
    assert "leaving it alone" in d.log()


def test_zone_by_name_weighted_record_restored_when_vanished(agentd_factory, r53):
    rec = {"zone": "example.com", "name": "app.example.com", "type": "A", "value": "{public_ipv4}",
           "ttl": 30, "weight": 10, "when": "start"}
    d = start(agentd_factory, r53,
              route53_config([rec], "  recheck_interval: 1s\n  health_check: true\n"))
    wait_for(lambda: status(d)[0]["state"] == "active", 15, what="active")
    check = [c for c in d.ctl("health")["checks"] if c["name"] == "route53:records"][0]
    assert check["status"] == "pass" and check["output"] == "1 of 1 records published"
    text = d.ctl_raw("route53", "status")
    assert text.returncode == 0 and "active" in text.stdout and "app.example.com." in text.stdout
    z = r53.requests("ListHostedZonesByName")
    assert len(z) == 1 and z[0]["params"] == {"DNSName": "example.com", "MaxItems": "2"}
    got = r53.record("app.example.com.")
    assert got["SetIdentifier"] == INSTANCE and got["Weight"] == 10 and got["TTL"] == 30
    assert status(d)[0]["zone_id"] == ZONE_ID
    post(r53.url + "/admin/records", {"zone_id": ZONE_ID, "name": "app.example.com", "type": "A",
                                      "set_identifier": INSTANCE, "action": "DELETE"})
    wait_for(lambda: len(r53.changes("UPSERT")) == 2, 10, what="restored")
    d.wait_log(r"vanished from zone %s; writing it again" % ZONE_ID)
    wait_for(lambda: r53.record("app.example.com.") is not None, 5, what="record back")
    # Re-checks follow the interval (1 s +-20%), not faster.
    lists = [r["time"] for r in r53.requests("ListResourceRecordSets")]
    gaps = [b - a for a, b in zip(lists, lists[1:])]
    assert all(g >= 0.75 for g in gaps), gaps
    assert d.stop() == 0
    assert r53.record("app.example.com.") is None


def test_throttled_changes_are_retried_with_jitter(agentd_factory, r53):
    post(r53.url + "/admin/faults", {"throttle": 5, "actions": ["ChangeResourceRecordSets"]})
    d = start(agentd_factory, r53, route53_config([dict(A_RECORD, when="start")]))
    wait_for(lambda: [r for r in r53.changes("UPSERT") if r["status"] == 200], 30, what="UPSERT ok")
    ups = r53.changes("UPSERT")
    assert [r["error"] for r in ups] == ["Throttling"] * 5 + [None]
    times = [r["time"] for r in ups]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Never a hot loop; the plugin's own backoff after the core's attempts is
    # at least a second; and the delays are jittered, not a fixed schedule.
    assert max(gaps) >= 1.0, gaps
    assert len(set(gaps)) == len(gaps), gaps
    assert times[-1] - times[0] < 20, gaps
    wait_for(lambda: status(d)[0]["state"] == "active", 15, what="active")
    assert d.stop() == 0


def test_bad_zone_id_is_a_clear_error_with_backoff(agentd_factory, r53, app):
    app.up()
    hp = free_port()
    rec = dict(A_RECORD, zone_id="ZDOESNOTEXIST1")
    d = start(agentd_factory, r53, health_config(hp, app.port) + route53_config([rec]))
    wait_for(lambda: status(d)[0]["state"] == "error", 10, what="error state")
    assert "NoSuchHostedZone" in status(d)[0]["last_error"]
    d.wait_log(r"record blue.example.com. \(zone ZDOESNOTEXIST1\): ChangeResourceRecordSets UPSERT "
               r"failed: NoSuchHostedZone: No hosted zone found with ID: ZDOESNOTEXIST1; retrying in "
               r"\d+ ms")
    n = len(r53.requests())
    time.sleep(4)
    assert len(r53.requests()) == n, "a permanent error was retried within seconds"
    # The rest of agentd keeps working.
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % hp, timeout=5) as r:
        assert r.status == 200
    assert d.ctl("status")["plugins"] is not None
    assert d.stop() == 0
    assert r53.changes("DELETE") == []


def test_spot_notice_removes_the_record(agentd_factory, r53):
    imds = Emulator("imds.py", "--instance-id", INSTANCE)
    try:
        body = route53_config([dict(A_RECORD, when="start", value="{instance_id}.test",
                                    type="CNAME")]) + """
imds:
  endpoint: %s
  poll_interval: 1s
""" % imds.base_url
        d = start(agentd_factory, r53, body, env={"AWS_EC2_METADATA_DISABLED": "false"})
        wait_for(lambda: r53.record("blue.example.com.", "CNAME") is not None, 15, what="CNAME")
        t0 = time.time()
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))
        post(imds.base_url + "/admin/spot", {"action": "terminate", "time": when})
        wait_for(lambda: r53.changes("DELETE"), 10, what="DELETE")
        took = r53.changes("DELETE")[0]["time"] - t0
        assert took <= 3, "DELETE %.2fs after the spot notice" % took
        assert r53.record("blue.example.com.", "CNAME") is None
        st = d.ctl("route53", "status")
        assert st["leaving"] is True and "spot interruption" in st["leave_reason"]
        wait_for(lambda: status(d)[0]["state"] == "removed", 5, what="removed")
        assert status(d)[0]["leave_result"] == "deleted"
        # Stopping afterwards deletes nothing more.
        assert d.stop(timeout=30) == 0
        assert len(r53.changes("DELETE")) == 1
    finally:
        imds.close()


def test_delete_comes_after_the_target_group_drained(agentd_factory, r53, app):
    elb = Emulator("elbv2.py")
    try:
        app.up()
        hp = free_port()
        post(elb.base_url + "/admin/instances", {INSTANCE: "127.0.0.1"})
        arn = post(elb.base_url + "/admin/target-groups", {
            "name": "web", "port": 8000, "deregistration_delay": 2,
            "health_check": {"port": str(hp), "path": "/health", "interval": 0.5, "timeout": 1,
                             "healthy": 2, "unhealthy": 2}})["arn"]
        # route53 is listed before targetgroup, so it stops after it (agentd
        # stops plugins in reverse order): DNS goes once the target drained.
        body = health_config(hp, app.port) + route53_config([A_RECORD]) + """
targetgroup:
  groups: [{"arn": "%s", "port": 8000}]
  poll_interval: 2s
  drain_poll_interval: 250ms
  endpoint: %s
""" % (arn, elb.base_url)
        d = start(agentd_factory, r53, body)
        wait_for(lambda: status(d)[0]["state"] == "active", 15, what="record active")
        wait_for(lambda: d.ctl("targetgroup", "status")["groups"][0]["state"] == "registered", 15,
                 what="registered")
        d.send_signal(signal.SIGTERM)
        assert d.stop(timeout=40) == 0
        elb_reqs = get(elb.base_url + "/admin/state")["requests"]
        dereg = [r["time"] for r in elb_reqs if r["action"] == "DeregisterTargets"]
        last_elb = max(r["time"] for r in elb_reqs)
        dels = r53.changes("DELETE")
        assert dereg and len(dels) == 1 and dels[0]["status"] == 200
        # The drain takes the group's 2 s delay; the DNS delete follows the
        # last ELBv2 call (the poll that saw the target gone).
        assert dels[0]["time"] >= dereg[0] + 2.0, (dereg, dels[0]["time"])
        assert dels[0]["time"] >= last_elb, (last_elb, dels[0]["time"])
        assert r53.record("blue.example.com.") is None
    finally:
        elb.close()


def test_bad_config_names_the_key(agentd_factory, r53):
    from conftest import run_agentd
    d = agentd_factory(route53_config([{"zone_id": "not-a-zone", "name": "x.example.com",
                                        "type": "A", "value": "{public_ipv4}"}]))
    r = run_agentd("--check-config", "-c", str(d.config))
    assert r.returncode != 0
    assert "route53.records[0].zone_id" in r.stderr + r.stdout
    assert "is not a hosted zone id" in r.stderr + r.stdout


def test_throttled_delete_during_stop_is_retried(agentd_factory, r53):
    d = start(agentd_factory, r53, route53_config([dict(A_RECORD, when="start")]))
    wait_for(lambda: status(d)[0]["state"] == "active", 15, what="active")
    # While agentd stops, the core does not retry: the plugin must, quickly.
    post(r53.url + "/admin/faults", {"throttle": 3, "prior_request": 0,
                                     "actions": ["ChangeResourceRecordSets"]})
    d.send_signal(signal.SIGTERM)
    assert d.stop(timeout=30) == 0
    dels = r53.changes("DELETE")
    assert [r["error"] for r in dels] == ["Throttling"] * 3 + [None]
    gaps = [b["time"] - a["time"] for a, b in zip(dels, dels[1:])]
    assert all(0.1 <= g <= 1.5 for g in gaps), gaps
    assert r53.record("blue.example.com.") is None


def test_keep_multivalue_aaaa_and_txt(agentd_factory, r53):
    recs = [
        {"zone_id": ZONE_ID, "name": "mv.example.com", "type": "A", "value": "{local_ipv4}",
         "multivalue": True, "when": "start"},
        {"zone_id": ZONE_ID, "name": "info.example.com", "type": "TXT",
         "value": 'id={instance_id} "x"', "when": "start"},
        {"zone_id": ZONE_ID, "name": "eip.example.com", "type": "A", "value": "{public_ipv4}",
         "on_stop": "keep", "when": "start"},
    ]
    d = start(agentd_factory, r53, route53_config(recs))
    wait_for(lambda: all(r["state"] == "active" for r in status(d)), 15, what="all active")
    mv = r53.record("mv.example.com.")
    assert mv["MultiValueAnswer"] is True and mv["SetIdentifier"] == INSTANCE
    assert mv["Values"] == ["10.0.0.7"]
    assert r53.record("info.example.com.", "TXT")["Values"] == ['"id=%s \\"x\\""' % INSTANCE]
    assert d.stop() == 0
    assert r53.record("mv.example.com.") is None
    assert r53.record("info.example.com.", "TXT") is None
    assert r53.record("eip.example.com.")["Values"] == [PUBLIC_IP]
    assert len(r53.changes("DELETE")) == 2
    assert "eip.example.com. A kept (on_stop: keep)" in d.log()


def test_lifecycle_standby_leaves_and_inservice_returns(agentd_factory, r53):
    imds = Emulator("imds.py", "--instance-id", INSTANCE)
    try:
        body = route53_config([dict(A_RECORD, when="start", value="{instance_id}.test",
                                    type="CNAME")]) + """
imds:
  endpoint: %s
  poll_interval: 1s
""" % imds.base_url
        d = start(agentd_factory, r53, body, env={"AWS_EC2_METADATA_DISABLED": "false"})
        wait_for(lambda: r53.record("blue.example.com.", "CNAME") is not None, 15, what="CNAME")
        post(imds.base_url + "/admin/lifecycle", {"state": "Standby"})
        wait_for(lambda: r53.record("blue.example.com.", "CNAME") is None, 10, what="deleted")
        post(imds.base_url + "/admin/lifecycle", {"state": "InService"})
        wait_for(lambda: r53.record("blue.example.com.", "CNAME") is not None, 10, what="back")
        wait_for(lambda: status(d)[0]["state"] == "active", 15, what="active again")
        assert d.ctl("route53", "status")["leaving"] is False
        assert d.stop(timeout=30) == 0
        assert r53.record("blue.example.com.", "CNAME") is None
        assert len(r53.changes("DELETE")) == 2
    finally:
        imds.close()


def test_refused_update_then_stop_deletes_what_is_in_the_zone(agentd_factory, r53):
    rec = dict(A_RECORD, when="start")
    d = start(agentd_factory, r53, route53_config([rec]))
    wait_for(lambda: status(d)[0]["state"] == "active", 15, what="active")
    # A reload changes the TTL in place; Route 53 refuses the UPSERT (throttled
    # through the core's attempts), so the zone keeps the first version.
    post(r53.url + "/admin/faults", {"throttle": 3, "actions": ["ChangeResourceRecordSets"]})
    d.write_config(route53_config([dict(rec, ttl=120)]))
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: len(r53.changes("UPSERT")) == 4, 20, what="three refused UPSERTs")
    assert [r["error"] for r in r53.changes("UPSERT")] == [None] + ["Throttling"] * 3
    assert r53.record("blue.example.com.")["TTL"] == 60
    d.send_signal(signal.SIGTERM)
    assert d.stop(timeout=30) == 0
    dels = r53.changes("DELETE")
    assert len(dels) == 1 and dels[0]["status"] == 200
    assert dels[0]["params"]["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["TTL"] == 60
    assert r53.record("blue.example.com.") is None


def test_refused_change_batch_is_a_permanent_error_and_foreign_record_stays(agentd_factory, r53):
    # Someone's A record holds the name: Route 53 refuses a CNAME beside it.
    post(r53.url + "/admin/records", {"zone_id": ZONE_ID, "name": "blue.example.com", "type": "A",
                                      "ttl": 300, "values": ["198.51.100.1"]})
    rec = dict(A_RECORD, when="start", type="CNAME", value="{instance_id}.test")
    d = start(agentd_factory, r53, route53_config([rec]))
    wait_for(lambda: status(d)[0]["state"] == "error", 10, what="error")
    err = status(d)[0]["last_error"]
    assert err.startswith("ChangeResourceRecordSets UPSERT failed: InvalidChangeBatch: [RRSet of "
                          "type CNAME with DNS name blue.example.com. is not permitted"), err
    n = len(r53.requests())
    time.sleep(3)
    assert len(r53.requests()) == n
    assert d.stop() == 0
    assert r53.changes("DELETE") == []
    assert r53.record("blue.example.com.")["Values"] == ["198.51.100.1"]

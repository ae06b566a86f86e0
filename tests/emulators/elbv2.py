#!/usr/bin/python3
"""A local ELBv2 (Elastic Load Balancing v2) endpoint for agentd's tests and demo.

It speaks the Query protocol (API version 2015-12-01) like AWS: every request's
SigV4 signature is checked with botocore, its parameters are validated
against botocore's elbv2 service model, and answers and errors are the XML
AWS sends. Like an ALB it health-checks registered targets itself (HTTP GET
with User-Agent ELB-HealthChecker/2.0) at the group's interval, moving them
initial -> healthy/unhealthy by its thresholds, and keeps a deregistered
target draining for the group's deregistration delay before it is gone.

Admin endpoints (plain JSON, no signature):
  POST /admin/target-groups {"name", "port", "target_type": "instance"|"ip",
        "deregistration_delay": s, "health_check": {"port", "path", "interval",
        "timeout", "healthy", "unhealthy", "matcher"}}          -> {"arn"}
  POST /admin/instances {"i-...": "127.0.0.1"}   instance id -> address to check
  POST /admin/faults {"throttle": N, "error500": N, "latency_ms": M,
        "throttle_ratio": r, "actions": [..]}   the next N matching requests fail
        {"deny": [action, ...]}                 those actions answer AccessDenied (403)
  POST /admin/forget {"arn"}                    drop every target of the group
  GET  /admin/state                             groups, targets, request log
"""
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emulib  # noqa: E402

NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
ACCOUNT = "123456789012"
LOCK = threading.RLock()
GROUPS = {}      # arn -> group dict
INSTANCES = {}   # instance id -> address
FAULTS = {"throttle": 0, "error500": 0, "latency_ms": 0, "throttle_ratio": 0.0, "actions": None,
          "deny": []}
REQUESTS = []    # {"time", "action", "params", "status", "error"}
REGION = "us-east-1"


def now():
    return time.time()


def make_group(spec):
    name = spec["name"]
    arn = "arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%s" % (
        REGION, ACCOUNT, name, uuid.uuid4().hex[:16])
    hc = spec.get("health_check", {})
    g = {
        "arn": arn, "name": name, "port": int(spec.get("port", 80)),
        "target_type": spec.get("target_type", "instance"),
        "deregistration_delay": int(spec.get("deregistration_delay", 300)),
        "hc": {"port": str(hc.get("port", "traffic-port")), "path": hc.get("path", "/"),
               "interval": float(hc.get("interval", 30)), "timeout": float(hc.get("timeout", 5)),
               "healthy": int(hc.get("healthy", 5)), "unhealthy": int(hc.get("unhealthy", 2)),
               "matcher": str(hc.get("matcher", "200"))},
        "targets": {},  # (id, port) -> target dict
    }
    GROUPS[arn] = g
    return g


class ApiError(Exception):
    def __init__(self, code, message, status=400, kind="Sender"):
        super().__init__(message)
        self.code, self.message, self.status, self.kind = code, message, status, kind


def matcher_ok(matcher, status):
    for part in matcher.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            if int(lo) <= status <= int(hi):
                return True
        elif part.strip() and int(part) == status:
            return True
    return False


def check_target(g, t):
    addr = t["id"] if g["target_type"] == "ip" else INSTANCES.get(t["id"])
    if addr is None:
        return False, "Target.Timeout"
    port = t["port"] if g["hc"]["port"] == "traffic-port" else int(g["hc"]["port"])
    host = "[%s]" % addr if ":" in addr else addr
    req = urllib.request.Request("http://%s:%d%s" % (host, port, g["hc"]["path"]),
                                 headers={"User-Agent": "ELB-HealthChecker/2.0"})
    try:
        with urllib.request.urlopen(req, timeout=g["hc"]["timeout"]) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception:
        return False, "Target.Timeout"
    if matcher_ok(g["hc"]["matcher"], code):
        return True, None
    return False, "Target.ResponseCodeMismatch"


def health_loop():
    """One thread checks every registered target at its group's interval."""
    while True:
        time.sleep(0.05)
        with LOCK:
            work = []
            for g in GROUPS.values():
                for key, t in list(g["targets"].items()):
                    if t["state"] == "draining":
                        if now() >= t["drain_until"]:
                            del g["targets"][key]
                        continue
                    if now() >= t["next_check"]:
                        t["next_check"] = now() + g["hc"]["interval"]
                        work.append((g, t))
        for g, t in work:
            ok, reason = check_target(g, t)
            with LOCK:
                if t["state"] == "draining":
                    continue
                if ok:
                    t["ok_run"] += 1
                    t["fail_run"] = 0
                    if t["ok_run"] >= g["hc"]["healthy"] and t["state"] != "healthy":
                        t["state"], t["reason"] = "healthy", None
                else:
                    t["fail_run"] += 1
                    t["ok_run"] = 0
                    if t["fail_run"] >= g["hc"]["unhealthy"] and t["state"] != "unhealthy":
                        t["state"], t["reason"] = "unhealthy", reason
                    elif t["state"] == "unhealthy":
                        t["reason"] = reason


def group_for(params):
    arn = params.get("TargetGroupArn")
    g = GROUPS.get(arn)
    if g is None:
        raise ApiError("TargetGroupNotFound", "One or more target groups not found")
    return g


def target_key(g, tgt):
    return (tgt["Id"], int(tgt.get("Port", g["port"])))


def op_describe_target_groups(p):
    out = []
    if p.get("TargetGroupArns"):
        for arn in p["TargetGroupArns"]:
            if arn not in GROUPS:
                raise ApiError("TargetGroupNotFound", "One or more target groups not found")
            out.append(GROUPS[arn])
    elif p.get("Names"):
        for name in p["Names"]:
            found = [g for g in GROUPS.values() if g["name"] == name]
            if not found:
                raise ApiError("TargetGroupNotFound", "One or more target groups not found")
            out.extend(found)
    else:
        out = list(GROUPS.values())
    xml = "<TargetGroups>"
    for g in out:
        xml += ("<member><TargetGroupArn>%s</TargetGroupArn><TargetGroupName>%s</TargetGroupName>"
                "<Protocol>HTTP</Protocol><Port>%d</Port><VpcId>vpc-0emulator</VpcId>"
                "<HealthCheckProtocol>HTTP</HealthCheckProtocol><HealthCheckPort>%s</HealthCheckPort>"
                "<HealthCheckEnabled>true</HealthCheckEnabled>"
                "<HealthCheckIntervalSeconds>%d</HealthCheckIntervalSeconds>"
                "<HealthCheckTimeoutSeconds>%d</HealthCheckTimeoutSeconds>"
                "<HealthyThresholdCount>%d</HealthyThresholdCount>"
                "<UnhealthyThresholdCount>%d</UnhealthyThresholdCount>"
                "<HealthCheckPath>%s</HealthCheckPath><Matcher><HttpCode>%s</HttpCode></Matcher>"
                "<LoadBalancerArns/><TargetType>%s</TargetType></member>") % (
            escape(g["arn"]), escape(g["name"]), g["port"], escape(g["hc"]["port"]),
            max(1, int(g["hc"]["interval"])), max(1, int(g["hc"]["timeout"])), g["hc"]["healthy"],
            g["hc"]["unhealthy"], escape(g["hc"]["path"]), escape(g["hc"]["matcher"]), g["target_type"])
    return xml + "</TargetGroups>"


def validate_target(g, tgt):
    if g["target_type"] == "instance" and not tgt["Id"].startswith("i-"):
        raise ApiError("InvalidTarget", "The following targets are not valid instances: '%s'" % tgt["Id"])
    if g["target_type"] == "ip" and ":" not in tgt["Id"] and tgt["Id"].count(".") != 3:
        raise ApiError("InvalidTarget", "The IP address '%s' is not a valid IPv4 address" % tgt["Id"])


def op_register_targets(p):
    g = group_for(p)
    for tgt in p["Targets"]:
        validate_target(g, tgt)
    for tgt in p["Targets"]:
        key = target_key(g, tgt)
        t = g["targets"].get(key)
        if t is None or t["state"] == "draining":
            g["targets"][key] = {"id": key[0], "port": key[1], "state": "initial",
                                 "reason": "Elb.RegistrationInProgress", "ok_run": 0, "fail_run": 0,
                                 "next_check": now(), "registered_at": now()}
    return ""


def op_deregister_targets(p):
    g = group_for(p)
    for tgt in p["Targets"]:
        key = target_key(g, tgt)
        t = g["targets"].get(key)
        if t is not None and t["state"] != "draining":
            t["state"], t["reason"] = "draining", "Target.DeregistrationInProgress"
            t["drain_until"] = now() + g["deregistration_delay"]
    return ""


def op_describe_target_health(p):
    g = group_for(p)
    rows = []
    if p.get("Targets"):
        for tgt in p["Targets"]:
            key = target_key(g, tgt)
            t = g["targets"].get(key)
            if t is None:
                rows.append((key, "unused", "Target.NotRegistered",
                             "Target is not registered to the target group"))
            else:
                rows.append((key, t["state"], t["reason"], None))
    else:
        for key, t in g["targets"].items():
            rows.append((key, t["state"], t["reason"], None))
    xml = "<TargetHealthDescriptions>"
    for (tid, port), state, reason, desc in rows:
        xml += "<member><Target><Id>%s</Id><Port>%d</Port></Target>" % (escape(tid), port)
        xml += "<HealthCheckPort>%s</HealthCheckPort><TargetHealth><State>%s</State>" % (
            escape(str(port) if g["hc"]["port"] == "traffic-port" else g["hc"]["port"]), state)
        if reason:
            xml += "<Reason>%s</Reason>" % reason
            xml += "<Description>%s</Description>" % escape(desc or reason)
        xml += "</TargetHealth></member>"
    return xml + "</TargetHealthDescriptions>"


def op_describe_target_group_attributes(p):
    g = group_for(p)
    attrs = {"deregistration_delay.timeout_seconds": str(g["deregistration_delay"]),
             "stickiness.enabled": "false", "load_balancing.algorithm.type": "round_robin"}
    xml = "<Attributes>"
    for k, v in attrs.items():
        xml += "<member><Key>%s</Key><Value>%s</Value></member>" % (k, v)
    return xml + "</Attributes>"


OPS = {
    "DescribeTargetGroups": op_describe_target_groups,
    "RegisterTargets": op_register_targets,
    "DeregisterTargets": op_deregister_targets,
    "DescribeTargetHealth": op_describe_target_health,
    "DescribeTargetGroupAttributes": op_describe_target_group_attributes,
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype="text/xml"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def error(self, e):
        body = ("<ErrorResponse xmlns=\"%s\"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message>"
                "</Error><RequestId>%s</RequestId></ErrorResponse>") % (
            NS, e.kind, e.code, escape(e.message), uuid.uuid4())
        self.send(e.status, body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/admin/state":
            with LOCK:
                state = {"groups": [{k: v for k, v in g.items() if k != "targets"} |
                                    {"targets": [{k: v for k, v in t.items()} for t in g["targets"].values()]}
                                    for g in GROUPS.values()],
                         "requests": list(REQUESTS)}
            return self.send(200, json.dumps(state), "application/json")
        self.send(404, "not found", "text/plain")

    def admin(self, body):
        data = json.loads(body or b"{}")
        with LOCK:
            if self.path == "/admin/target-groups":
                g = make_group(data)
                return self.send(200, json.dumps({"arn": g["arn"]}), "application/json")
            if self.path == "/admin/instances":
                INSTANCES.update(data)
                return self.send(200, "{}", "application/json")
            if self.path == "/admin/forget":
                # The target vanishes from the group, as when someone deregisters it by hand.
                for g in GROUPS.values():
                    if not data.get("arn") or g["arn"] == data["arn"]:
                        g["targets"].clear()
                return self.send(200, "{}", "application/json")
            if self.path == "/admin/faults":
                FAULTS.update({"throttle": 0, "error500": 0, "latency_ms": 0, "throttle_ratio": 0.0,
                               "actions": None, "deny": []})
                FAULTS.update(data)
                return self.send(200, "{}", "application/json")
        self.send(404, "not found", "text/plain")

    def do_POST(self):
        body = self.body()
        if self.path.startswith("/admin/"):
            return self.admin(body)
        form = emulib.parse_form(body) if body else {}
        action = form.pop("Action", None)
        version = form.pop("Version", None)
        entry = {"time": now(), "action": action, "params": None, "status": 200, "error": None}
        try:
            try:
                emulib.verify_sigv4("POST", self.path, self.headers.items(), body, "elasticloadbalancing")
            except emulib.SigError as e:
                raise ApiError(e.code, str(e), 403)
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
                raise ApiError("InvalidAction", "Content-Type must be application/x-www-form-urlencoded")
            if action not in OPS:
                raise ApiError("InvalidAction", "Could not find operation %s for version %s" % (action, version))
            if version != "2015-12-01":
                raise ApiError("InvalidAction", "Could not find operation %s for version %s" % (action, version))
            params = emulib.query_to_params("elbv2", action, form)
            entry["params"] = params
            errors = emulib.validate("elbv2", action, params)
            if errors:
                raise ApiError("ValidationError", "; ".join(errors))
            with LOCK:
                applies = not FAULTS["actions"] or action in FAULTS["actions"]
                latency = FAULTS["latency_ms"] if applies else 0
            if latency:
                time.sleep(latency / 1000.0)
            with LOCK:
                if action in FAULTS["deny"]:  # IAM: the role lacks this permission
                    raise ApiError("AccessDenied", "User: arn:aws:sts::123456789012:assumed-role/"
                                   "agentd/i-0 is not authorized to perform: "
                                   "elasticloadbalancing:%s" % action, 403)
                if applies and FAULTS["throttle"] > 0:
                    FAULTS["throttle"] -= 1
                    raise ApiError("Throttling", "Rate exceeded")
                if applies and FAULTS["throttle_ratio"] and random.random() < FAULTS["throttle_ratio"]:
                    raise ApiError("Throttling", "Rate exceeded")
                if applies and FAULTS["error500"] > 0:
                    FAULTS["error500"] -= 1
                    raise ApiError("InternalFailure", "We encountered an internal error. Please try again.",
                                   500, "Receiver")
                result = OPS[action](params)
            xml = ("<%sResponse xmlns=\"%s\"><%sResult>%s</%sResult><ResponseMetadata><RequestId>%s"
                   "</RequestId></ResponseMetadata></%sResponse>") % (
                action, NS, action, result, action, uuid.uuid4(), action)
            self.send(200, xml)
        except ApiError as e:
            entry["status"], entry["error"] = e.status, e.code
            self.error(e)
        finally:
            with LOCK:
                REQUESTS.append(entry)


def setup(ap):
    ap.add_argument("--region", default="us-east-1")


if __name__ == "__main__":
    threading.Thread(target=health_loop, daemon=True).start()
    if "--region" in sys.argv:
        REGION = sys.argv[sys.argv.index("--region") + 1]
    emulib.serve(Handler, setup=setup)

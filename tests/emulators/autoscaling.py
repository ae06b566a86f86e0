#!/usr/bin/python3
"""A local Auto Scaling endpoint for agentd's tests: lifecycle hooks.

It speaks the Query protocol (API version 2011-01-01) like AWS: every request's
SigV4 signature (service "autoscaling") is checked with botocore, parameters
are validated against botocore's autoscaling model (unknown ones refused), and
answers and errors are AWS's XML. A hook state machine moves instances through
Pending:Wait / Terminating:Wait: a termination sets the IMDS emulator's
target-lifecycle-state to Terminated, heartbeats push the hook's deadline, a
missed deadline applies the hook's default result, and every call is recorded
with its time so tests can check the order.

Admin endpoints (plain JSON, no signature):
  POST /admin/groups {"name", "instances": ["i-..."], "imds": "http://...",
        "hooks": [{"name", "transition": "autoscaling:EC2_INSTANCE_TERMINATING",
                   "heartbeat_timeout": s, "default_result": "ABANDON"}]}
  POST /admin/terminate {"instance"}   scale-in: Terminating:Wait (or :Proceed)
  POST /admin/launch {"instance"}      Pending:Wait for the launch hooks
  GET  /admin/state                    instances, actions, request log
"""
import json
import os
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emulib  # noqa: E402

NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
LOCK = threading.RLock()
GROUPS = {}     # name -> {"hooks": [...], "imds": url}
INSTANCES = {}  # id -> {"group", "state", "actions": {hook: action}}
REQUESTS = []   # {"time", "action", "params", "status", "error"}
EVENTS = []     # {"time", "event", "instance", "hook", "result"}


class ApiError(Exception):
    def __init__(self, code, message, status=400, kind="Sender"):
        super().__init__(message)
        self.code, self.message, self.status, self.kind = code, message, status, kind


def event(kind, iid, hook=None, result=None):
    EVENTS.append({"time": time.time(), "event": kind, "instance": iid, "hook": hook,
                   "result": result})


def set_imds_state(group, state):
    url = GROUPS[group].get("imds")
    if not url:
        return
    req = urllib.request.Request(url + "/admin/lifecycle", data=json.dumps(
        {"state": state}).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def begin(iid, transition, wait_state, next_state):
    inst = INSTANCES[iid]
    hooks = [h for h in GROUPS[inst["group"]]["hooks"] if h["transition"] == transition]
    inst["state"] = wait_state if hooks else next_state
    inst["actions"] = {h["name"]: {"token": str(uuid.uuid4()), "hook": h,
                                   "deadline": time.time() + h.get("heartbeat_timeout", 3600),
                                   "result": None} for h in hooks}
    event(wait_state if hooks else next_state, iid)


def finish(iid, hook, result):
    """One hook's action ends; when none waits the instance moves on."""
    inst = INSTANCES[iid]
    act = inst["actions"].get(hook)
    act["result"] = result
    event("Completed", iid, hook, result)
    if any(a["result"] is None for a in inst["actions"].values()):
        return
    abandon = any(a["result"] == "ABANDON" for a in inst["actions"].values())
    if inst["state"] == "Terminating:Wait":
        inst["state"] = "Terminating:Proceed"
    elif inst["state"] == "Pending:Wait":
        inst["state"] = "Terminating" if abandon else "InService"
    event(inst["state"], iid)


def timeout_loop():
    while True:
        time.sleep(0.2)
        with LOCK:
            for iid, inst in INSTANCES.items():
                for name, act in list(inst.get("actions", {}).items()):
                    if act["result"] is None and time.time() >= act["deadline"]:
                        event("HeartbeatTimeout", iid, name)
                        finish(iid, name, act["hook"].get("default_result", "ABANDON"))


def waiting_action(p):
    inst = INSTANCES.get(p["InstanceId"])
    if not inst or inst["group"] != p["AutoScalingGroupName"]:
        raise ApiError("ValidationError", "No active Lifecycle Action found with instance ID %s"
                       % p["InstanceId"])
    act = inst["actions"].get(p["LifecycleHookName"])
    if not act or act["result"] is not None:
        raise ApiError("ValidationError", "No active Lifecycle Action found with instance ID %s"
                       % p["InstanceId"])
    if p.get("LifecycleActionToken") and p["LifecycleActionToken"] != act["token"]:
        raise ApiError("ValidationError", "Invalid lifecycle action token")
    return act


def op_complete(p):
    if "InstanceId" not in p and "LifecycleActionToken" not in p:
        raise ApiError("ValidationError", "InstanceId or LifecycleActionToken is required")
    if p["LifecycleActionResult"] not in ("CONTINUE", "ABANDON"):
        raise ApiError("ValidationError", "LifecycleActionResult must be CONTINUE or ABANDON")
    waiting_action(p)
    finish(p["InstanceId"], p["LifecycleHookName"], p["LifecycleActionResult"])
    return ""


def op_heartbeat(p):
    act = waiting_action(p)
    act["deadline"] = time.time() + act["hook"].get("heartbeat_timeout", 3600)
    event("Heartbeat", p["InstanceId"], p["LifecycleHookName"])
    return ""


def op_describe_hooks(p):
    g = GROUPS.get(p["AutoScalingGroupName"])
    if g is None:
        raise ApiError("ValidationError", "Group %s not found" % p["AutoScalingGroupName"])
    out = []
    for h in g["hooks"]:
        if p.get("LifecycleHookNames") and h["name"] not in p["LifecycleHookNames"]:
            continue
        out.append("<member><LifecycleHookName>%s</LifecycleHookName><AutoScalingGroupName>%s"
                   "</AutoScalingGroupName><LifecycleTransition>%s</LifecycleTransition>"
                   "<HeartbeatTimeout>%d</HeartbeatTimeout><DefaultResult>%s</DefaultResult>"
                   "</member>" % (escape(h["name"]), escape(p["AutoScalingGroupName"]),
                                  h["transition"], h.get("heartbeat_timeout", 3600),
                                  h.get("default_result", "ABANDON")))
    return "<LifecycleHooks>%s</LifecycleHooks>" % "".join(out)


OPS = {"CompleteLifecycleAction": op_complete, "RecordLifecycleActionHeartbeat": op_heartbeat,
       "DescribeLifecycleHooks": op_describe_hooks}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
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
        body = ("<ErrorResponse xmlns=\"%s\"><Error><Type>%s</Type><Code>%s</Code><Message>%s"
                "</Message></Error><RequestId>%s</RequestId></ErrorResponse>") % (
            NS, e.kind, e.code, escape(e.message), uuid.uuid4())
        self.send(e.status, body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/admin/state":
            with LOCK:
                state = {"instances": {i: {"group": v["group"], "state": v["state"],
                                           "actions": {h: {"token": a["token"],
                                                           "result": a["result"]}
                                                       for h, a in v["actions"].items()}}
                                       for i, v in INSTANCES.items()},
                         "requests": list(REQUESTS), "events": list(EVENTS)}
            return self.send(200, json.dumps(state), "application/json")
        self.send(404, "not found", "text/plain")

    def admin(self, body):
        data = json.loads(body or b"{}")
        with LOCK:
            if self.path == "/admin/groups":
                GROUPS[data["name"]] = {"hooks": data.get("hooks", []), "imds": data.get("imds")}
                for iid in data.get("instances", []):
                    INSTANCES[iid] = {"group": data["name"], "state": "InService", "actions": {}}
                return self.send(200, "{}", "application/json")
            if self.path == "/admin/terminate":
                iid = data["instance"]
                begin(iid, "autoscaling:EC2_INSTANCE_TERMINATING", "Terminating:Wait",
                      "Terminating:Proceed")
                group = INSTANCES[iid]["group"]
            elif self.path == "/admin/launch":
                begin(data["instance"], "autoscaling:EC2_INSTANCE_LAUNCHING", "Pending:Wait",
                      "InService")
                return self.send(200, "{}", "application/json")
            else:
                return self.send(404, "{}", "application/json")
        # Outside the lock: IMDS is another process.
        set_imds_state(group, "Terminated")
        self.send(200, "{}", "application/json")

    def do_POST(self):
        body = self.body()
        if self.path.startswith("/admin/"):
            return self.admin(body)
        form = emulib.parse_form(body) if body else {}
        action = form.pop("Action", None)
        version = form.pop("Version", None)
        entry = {"time": time.time(), "action": action, "params": None, "status": 200,
                 "error": None}
        try:
            try:
                emulib.verify_sigv4("POST", self.path, self.headers.items(), body, "autoscaling")
            except emulib.SigError as e:
                raise ApiError(e.code, str(e), 403)
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
            if ctype != "application/x-www-form-urlencoded":
                raise ApiError("InvalidAction", "Content-Type must be "
                               "application/x-www-form-urlencoded")
            if action not in OPS or version != "2011-01-01":
                raise ApiError("InvalidAction", "Could not find operation %s for version %s"
                               % (action, version))
            shape = emulib.service_model("autoscaling").operation_model(action).input_shape
            known = set(shape.members) if shape else set()
            unknown = sorted(k for k in form if k.split(".")[0] not in known)
            if unknown:
                raise ApiError("ValidationError", "Unknown parameter(s): %s" % ", ".join(unknown))
            params = emulib.query_to_params("autoscaling", action, form)
            entry["params"] = params
            errors = emulib.validate("autoscaling", action, params)
            if errors:
                raise ApiError("ValidationError", "; ".join(errors))
            with LOCK:
                result = OPS[action](params)
            xml = ("<%sResponse xmlns=\"%s\"><%sResult>%s</%sResult><ResponseMetadata>"
                   "<RequestId>%s</RequestId></ResponseMetadata></%sResponse>") % (
                action, NS, action, result, action, uuid.uuid4(), action)
            self.send(200, xml)
        except ApiError as e:
            entry["status"], entry["error"] = e.status, e.code
            self.error(e)
        finally:
            with LOCK:
                REQUESTS.append(entry)


if __name__ == "__main__":
    threading.Thread(target=timeout_loop, daemon=True).start()
    emulib.serve(Handler)

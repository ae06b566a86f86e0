#!/usr/bin/python3
"""A CloudWatch Logs emulator (JSON 1.1) for agentd's tests, demo and benchmark.

Every request's SigV4 signature is checked with botocore (emulib.verify_sigv4)
and its parameters validated against botocore's logs model; PutLogEvents
then gets the service's own rules: at most 10,000 events and 1,048,576 bytes
(message bytes + 26 per event), chronological order and a span of at most
24 hours (else InvalidParameterException for the whole call), and events too
new (> 2 h ahead), too old (> 14 days) or older than the retention rejected
one by one in rejectedLogEventsInfo. Events are stored per group and stream.

Admin endpoints (not signed), for tests:
  POST /_admin/faults {"throttle_rate":0.3,"error_rate":0,"reset_rate":0,
                       "latency_ms":0,"down":false,"seed":1,"deny":["Op",...]}
        throttling answers ThrottlingException (400); error_rate answers 500
        ServiceUnavailableException; reset_rate and down close the connection
        with a TCP reset instead of answering; deny answers the listed operations
        AccessDeniedException (400), as IAM does for a missing permission.
  GET  /_admin/events?group=G&stream=S   {"events":[{"timestamp","message"}]}
        (every stream of G without stream=; every group without group=)
  GET  /_admin/stats     counts of requests per operation and outcome, groups,
                         streams, creations, retention, distinct messages stored.
Options: --no-verify skips signature checks; --bench also skips the model
validation and only counts events (the benchmark measures agentd, not
botocore); --quiet.
"""
import json
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emulib  # noqa: E402

MAX_BATCH_BYTES = 1048576
EVENT_OVERHEAD = 26
MAX_EVENTS = 10000
MAX_SPAN_MS = 24 * 3600 * 1000
TOO_NEW_MS = 2 * 3600 * 1000
TOO_OLD_MS = 14 * 24 * 3600 * 1000
RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653}

LOCK = threading.Lock()
GROUPS = {}        # name -> {"retention": days or None, "streams": {name: [events]}}
STATS = {"requests": {}, "throttled": 0, "errors": 0, "resets": 0, "rejected": 0,
         "invalid": 0, "sig_errors": 0, "created_groups": {}, "created_streams": {},
         "put_events": 0, "denied": 0}
FAULTS = {"throttle_rate": 0.0, "error_rate": 0.0, "reset_rate": 0.0, "latency_ms": 0,
          "down": False, "deny": []}
RNG = random.Random(1)
BENCH = "--bench" in sys.argv


class AwsError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def count(key, op=None):
    with LOCK:
        if op is None:
            STATS[key] += 1
        else:
            STATS[key][op] = STATS[key].get(op, 0) + 1


def group_of(name):
    g = GROUPS.get(name)
    if g is None:
        raise AwsError("ResourceNotFoundException", "The specified log group does not exist.")
    return g


def op_create_log_group(p):
    with LOCK:
        if p["logGroupName"] in GROUPS:
            raise AwsError("ResourceAlreadyExistsException",
                           "The specified log group already exists")
        GROUPS[p["logGroupName"]] = {"retention": None, "streams": {}}
        STATS["created_groups"][p["logGroupName"]] = STATS["created_groups"].get(p["logGroupName"], 0) + 1
    return {}


def op_create_log_stream(p):
    with LOCK:
        g = group_of(p["logGroupName"])
        if p["logStreamName"] in g["streams"]:
            raise AwsError("ResourceAlreadyExistsException",
                           "The specified log stream already exists")
        g["streams"][p["logStreamName"]] = []
        key = p["logGroupName"] + "/" + p["logStreamName"]
        STATS["created_streams"][key] = STATS["created_streams"].get(key, 0) + 1
    return {}


def op_put_retention_policy(p):
    if p["retentionInDays"] not in RETENTION_DAYS:
        raise AwsError("InvalidParameterException",
                       "1 validation error detected: Value '%s' at 'retentionInDays' failed to "
                       "satisfy constraint" % p["retentionInDays"])
    with LOCK:
        group_of(p["logGroupName"])["retention"] = p["retentionInDays"]
    return {}


def op_put_log_events(p):
    events = p["logEvents"]
    if BENCH:
        # The benchmark measures agentd: count, and keep only the cheap
        # whole-batch limits.
        if len(events) > MAX_EVENTS or sum(len(e["message"]) + EVENT_OVERHEAD
                                            for e in events) > MAX_BATCH_BYTES:
            raise AwsError("InvalidParameterException", "batch too large")
        with LOCK:
            STATS["put_events"] += len(events)
        return {}
    if len(events) > MAX_EVENTS:
        raise AwsError("InvalidParameterException",
                       "Log event count exceeds the maximum of %d" % MAX_EVENTS)
    size = 0
    for e in events:
        n = len(e["message"].encode("utf-8"))
        if n > MAX_BATCH_BYTES - EVENT_OVERHEAD:
            raise AwsError("InvalidParameterException", "Log event too large")
        size += n + EVENT_OVERHEAD
    if size > MAX_BATCH_BYTES:
        raise AwsError("InvalidParameterException",
                       "Upload too large: %d bytes exceeds limit of %d" % (size, MAX_BATCH_BYTES))
    for a, b in zip(events, events[1:]):
        if b["timestamp"] < a["timestamp"]:
            raise AwsError("InvalidParameterException",
                           "Log events in a single PutLogEvents request must be in "
                           "chronological order.")
    if events and events[-1]["timestamp"] - events[0]["timestamp"] > MAX_SPAN_MS:
        raise AwsError("InvalidParameterException",
                       "The batch of log events in a single PutLogEvents request cannot span "
                       "more than 24 hours.")
    now = int(time.time() * 1000)
    with LOCK:
        g = group_of(p["logGroupName"])
        stream = g["streams"].get(p["logStreamName"])
        if stream is None:
            raise AwsError("ResourceNotFoundException", "The specified log stream does not exist.")
        info = {}
        expire_ms = g["retention"] * 86400000 if g["retention"] else None
        for i, e in enumerate(events):
            ts = e["timestamp"]
            if ts > now + TOO_NEW_MS:
                info.setdefault("tooNewLogEventStartIndex", i)
            elif ts < now - TOO_OLD_MS:
                info["tooOldLogEventEndIndex"] = i
            elif expire_ms is not None and ts < now - expire_ms:
                info["expiredLogEventEndIndex"] = i
            else:
                if not BENCH:
                    stream.append((ts, e["message"], now))
                STATS["put_events"] += 1
                continue
            STATS["rejected"] += 1
    out = {"nextSequenceToken": "%032d" % random.randrange(10 ** 30)}
    if info:
        out["rejectedLogEventsInfo"] = info
    return out


def all_events(group, stream):
    with LOCK:
        out = []
        for gname, g in GROUPS.items():
            if group and gname != group:
                continue
            for sname, evs in g["streams"].items():
                if stream and sname != stream:
                    continue
                out.extend({"timestamp": t, "message": m, "ingestionTime": it,
                            "group": gname, "stream": sname} for t, m, it in evs)
        return out


def op_get_log_events(p):
    evs = all_events(p["logGroupName"], p["logStreamName"])
    limit = p.get("limit", 10000)
    if p.get("startFromHead"):
        evs = evs[:limit]
    else:
        evs = evs[-limit:]
    return {"events": [{"timestamp": e["timestamp"], "message": e["message"],
                        "ingestionTime": e["ingestionTime"]} for e in evs],
            "nextForwardToken": "f/0", "nextBackwardToken": "b/0"}


def op_filter_log_events(p):
    evs = all_events(p["logGroupName"], None)
    limit = p.get("limit", 10000)
    return {"events": [{"logStreamName": e["stream"], "timestamp": e["timestamp"],
                        "message": e["message"], "ingestionTime": e["ingestionTime"],
                        "eventId": str(i)} for i, e in enumerate(evs[:limit])],
            "searchedLogStreams": []}


def op_describe_log_groups(p):
    with LOCK:
        return {"logGroups": [{"logGroupName": n, "retentionInDays": g["retention"],
                               "arn": "arn:aws:logs:us-east-1:123456789012:log-group:%s:*" % n}
                              for n, g in GROUPS.items()
                              if n.startswith(p.get("logGroupNamePrefix", ""))]}


def op_describe_log_streams(p):
    with LOCK:
        g = group_of(p["logGroupName"])
        return {"logStreams": [{"logStreamName": s, "storedBytes": sum(len(m) for _, m, _ in e)}
                               for s, e in g["streams"].items()]}


OPS = {
    "CreateLogGroup": op_create_log_group,
    "CreateLogStream": op_create_log_stream,
    "PutRetentionPolicy": op_put_retention_policy,
    "PutLogEvents": op_put_log_events,
    "GetLogEvents": op_get_log_events,
    "FilterLogEvents": op_filter_log_events,
    "DescribeLogGroups": op_describe_log_groups,
    "DescribeLogStreams": op_describe_log_streams,
}


class Handler(emulib.http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    args = None

    def log_message(self, fmt, *a):
        if not self.args.quiet:
            sys.stderr.write("cwlogs: " + (fmt % a) + "\n")

    def reply(self, status, obj, ctype="application/x-amz-json-1.1"):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "%08x" % random.getrandbits(32))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code, message):
        self.reply(status, {"__type": code, "message": message})

    def reset(self):
        """Closes the connection with a TCP RST instead of answering."""
        count("resets")
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def handle(self):
        # Clients that vanish mid-request (kill -9 in the tests) are normal here.
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/_admin/events":
            evs = all_events(q.get("group"), q.get("stream"))
            return self.reply(200, {"events": evs}, "application/json")
        if u.path == "/_admin/stats":
            with LOCK:
                s = json.loads(json.dumps(STATS))
                s["groups"] = {n: {"retention": g["retention"],
                                   "streams": {sn: len(e) for sn, e in g["streams"].items()}}
                               for n, g in GROUPS.items()}
                s["faults"] = dict(FAULTS)
                s["distinct_messages"] = len({m for g in GROUPS.values()
                                              for e in g["streams"].values() for _, m, _ in e})
            return self.reply(200, s, "application/json")
        self.error(404, "UnknownOperationException", "no such path")

    def do_POST(self):
        body = self.read_body()
        if self.path.startswith("/_admin/faults"):
            new = json.loads(body or b"{}")
            with LOCK:
                if "seed" in new:
                    RNG.seed(new.pop("seed"))
                FAULTS.update(new)
            return self.reply(200, dict(FAULTS), "application/json")
        with LOCK:
            f = dict(FAULTS)
            roll = RNG.random()
        if f["down"]:
            return self.reset()
        if f["latency_ms"]:
            time.sleep(f["latency_ms"] / 1000.0)
        target = self.headers.get("X-Amz-Target", "")
        prefix, _, op = target.partition(".")
        if prefix != "Logs_20140328" or op not in OPS:
            return self.error(400, "UnknownOperationException", "unknown target %r" % target)
        count("requests", op)
        if not (self.headers.get("Content-Type") or "").startswith("application/x-amz-json-1.1"):
            return self.error(400, "SerializationException", "bad Content-Type")
        if not (self.args.no_verify or self.args.bench):
            try:
                emulib.verify_sigv4("POST", self.path, self.headers.items(), body, "logs")
            except emulib.SigError as e:
                count("sig_errors")
                return self.error(400 if e.code != "InvalidSignatureException" else 403,
                                  e.code, str(e))
        # "deny": operations the caller's role may not call (any operation).
        if op in f["deny"]:
            count("denied")
            return self.error(400, "AccessDeniedException",
                              "User: arn:aws:sts::123456789012:assumed-role/agentd/%s is not "
                              "authorized to perform: logs:%s" % (self.headers.get("Host"), op))
        # Faults apply to the data path only, so setup calls stay predictable.
        if op == "PutLogEvents":
            if roll < f["reset_rate"]:
                return self.reset()
            roll -= f["reset_rate"]
            if roll < f["throttle_rate"]:
                count("throttled")
                return self.error(400, "ThrottlingException", "Rate exceeded")
            roll -= f["throttle_rate"]
            if roll < f["error_rate"]:
                count("errors")
                return self.error(500, "ServiceUnavailableException",
                                  "The service cannot complete the request.")
        if self.args.bench and op == "PutLogEvents":
            # Counting without parsing keeps the emulator far from being the
            # bottleneck of the benchmark (agentd's encoder is unit tested).
            if len(body) > 2 * MAX_BATCH_BYTES:
                return self.error(400, "InvalidParameterException", "batch too large")
            with LOCK:
                STATS["put_events"] += body.count(b'{"timestamp":')
            return self.reply(200, {})
        try:
            params = json.loads(body or b"{}")
        except ValueError as e:
            return self.error(400, "SerializationException", str(e))
        errs = [] if self.args.bench else emulib.validate("logs", op, params)
        if errs:
            count("invalid")
            return self.error(400, "InvalidParameterException", "; ".join(errs))
        try:
            out = OPS[op](params)
        except AwsError as e:
            if e.code == "InvalidParameterException":
                count("invalid")
            return self.error(e.status, e.code, e.message)
        self.reply(200, out)


def setup(ap):
    ap.add_argument("--no-verify", action="store_true", help="skip SigV4 checks (benchmark)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--bench", action="store_true",
                    help="benchmark: no SigV4 or model checks, events counted, not stored")


if __name__ == "__main__":
    emulib.serve(Handler, setup=setup)

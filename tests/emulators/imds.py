#!/usr/bin/python3
"""An EC2 instance metadata service (IMDSv2) emulator for agentd's tests and demo.

Behaves as ../shared/AWS-FACTS.md describes the real one:
  PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds 1..21600 gives
  a token (400 for a missing or invalid TTL, 403 if the PUT carries
  X-Forwarded-For); every GET needs X-aws-ec2-metadata-token (401 when missing
  unless --allow-v1, or when bad or expired); 404 for missing items; listings
  are newline separated, sub-directories end in "/".

Role credentials expire after --cred-ttl seconds; a fetch issues a new set
(a new temporary AccessKeyId from emulib.make_akid, secret derive_secret(akid),
token derive_token(akid)) once the current set has less
than --cred-rotate seconds left, as IMDS rotates them well before expiry.

Admin endpoints (never counted, never affected by an outage):
  POST /admin/spot        {"action":"terminate|stop|hibernate","time":"...Z"} or {"clear":true}
  POST /admin/rebalance   {"noticeTime":"...Z"} (default now) or {"clear":true}
  POST /admin/maintenance {"events":[...]} (default: one system-reboot event) or {"clear":true}
  POST /admin/lifecycle   {"state":"Terminated"} or {"clear":true}
  POST /admin/outage      {"seconds":N}: drop every IMDS connection for N seconds
  POST /admin/expire-tokens               every token issued so far becomes invalid
  POST /admin/tags        {"tags":{"Name":"x"}} replaces the instance tags
  POST /admin/meta        {"instance-type":"m7g.large",...} overrides meta-data items
  GET  /admin/requests    counts: {"total","token_puts","by_path":{...},"by_status":{...}}
  POST /admin/reset-requests
  GET  /admin/credentials every set issued: [{"AccessKeyId","Expiration","expires_at"}]

Example: curl -X POST http://127.0.0.1:PORT/admin/spot -d '{"action":"terminate"}'
"""
import argparse
import datetime
import json
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from emulib import derive_secret, derive_token, make_akid

MAX_TTL = 21600


def iso(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    def __init__(self, a):
        self.lock = threading.RLock()
        self.args = a
        self.tokens = {}  # token -> expiry (monotonic)
        self.outage_until = 0.0
        self.counts = {"total": 0, "token_puts": 0, "by_path": {}, "by_status": {}}
        self.spot = None
        self.rebalance = None
        self.maintenance = []
        self.lifecycle = None
        self.tags = dict(a.tags)
        self.creds = None  # current set
        self.issued = []
        self.meta_overrides = {}

    def meta(self):
        a = self.args
        m = {
            "ami-id": a.ami_id,
            "ami-launch-index": "0",
            "hostname": a.hostname,
            "instance-id": a.instance_id,
            "instance-type": a.instance_type,
            "local-hostname": a.hostname,
            "local-ipv4": a.local_ipv4,
            "mac": a.mac,
            "placement/availability-zone": a.az,
            "placement/region": a.region,
            "security-groups": "default",
            "network/interfaces/macs/%s/vpc-ipv4-cidr-blocks" % a.mac: "\n".join(a.vpc_cidrs),
            "network/interfaces/macs/%s/vpc-id" % a.mac: "vpc-0123456789abcdef0",
        }
        if a.public_ipv4:
            m["public-ipv4"] = a.public_ipv4
            m["public-hostname"] = "ec2-%s.compute-1.amazonaws.com" % a.public_ipv4.replace(".", "-")
        m.update(self.meta_overrides)
        return m

    def identity(self):
        a, m = self.args, self.meta()
        return {
            "accountId": a.account_id,
            "architecture": "x86_64",
            "availabilityZone": m["placement/availability-zone"],
            "billingProducts": None,
            "devpayProductCodes": None,
            "marketplaceProductCodes": None,
            "imageId": m["ami-id"],
            "instanceId": m["instance-id"],
            "instanceType": m["instance-type"],
            "kernelId": None,
            "pendingTime": "2026-01-01T00:00:00Z",
            "privateIp": m["local-ipv4"],
            "ramdiskId": None,
            "region": m["placement/region"],
            "version": "2017-09-30",
        }

    def credentials(self):
        """The current role credentials, rotated when they near expiry."""
        a = self.args
        now = time.time()
        if self.creds is None or self.creds["expires_at"] - now < a.cred_rotate:
            exp = now + a.cred_ttl
            # A temporary key carrying its expiry, so signature-checking
            # emulators refuse it once expired (tests/emulators/emulib.py).
            akid = make_akid(int(exp))
            self.creds = {
                "Code": "Success",
                "LastUpdated": iso(now),
                "Type": "AWS-HMAC",
                "AccessKeyId": akid,
                "SecretAccessKey": derive_secret(akid),
                "Token": derive_token(akid),
                "Expiration": iso(exp),
                "expires_at": exp,
            }
            self.issued.append({"AccessKeyId": akid, "Expiration": iso(exp), "expires_at": exp})
        return {k: v for k, v in self.creds.items() if k != "expires_at"}

    def items(self):
        """Every leaf under /latest as {path: (content_type, body)}."""
        a = self.args
        out = {}
        for k, v in self.meta().items():
            out["meta-data/" + k] = v
        if a.role:
            out["meta-data/iam/info"] = json.dumps({
                "Code": "Success", "LastUpdated": iso(time.time()),
                "InstanceProfileArn": "arn:aws:iam::%s:instance-profile/%s" % (a.account_id, a.role),
                "InstanceProfileId": "AIPATEST0000000000000"}, indent=2)
            out["meta-data/iam/security-credentials/" + a.role] = None  # computed on GET
        if not a.no_tags:
            for k, v in self.tags.items():
                out["meta-data/tags/instance/" + k] = v
        if self.spot:
            out["meta-data/spot/instance-action"] = json.dumps(self.spot)
        if self.rebalance:
            out["meta-data/events/recommendations/rebalance"] = json.dumps(self.rebalance)
        out["meta-data/events/maintenance/scheduled"] = json.dumps(self.maintenance, indent=2)
        if self.lifecycle:
            out["meta-data/autoscaling/target-lifecycle-state"] = self.lifecycle
        out["dynamic/instance-identity/document"] = json.dumps(self.identity(), indent=2)
        return out


STATE = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real IMDS
    server_version = "EC2ws"
    sys_version = ""

    def log_message(self, fmt, *args):
        if STATE.args.verbose:
            sys.stderr.write("imds: " + (fmt % args) + "\n")

    def reply(self, code, body=b"", ctype="text/plain", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if not self.path.startswith("/admin/"):
            with STATE.lock:
                s = STATE.counts["by_status"]
                s[str(code)] = s.get(str(code), 0) + 1

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return {}
        return json.loads(raw)

    def dropped(self):
        """During an outage the connection is closed without an answer."""
        with STATE.lock:
            out = time.monotonic() < STATE.outage_until
        if out:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return out

    def count(self):
        with STATE.lock:
            c = STATE.counts
            c["total"] += 1
            key = "%s %s" % (self.command, self.path)
            c["by_path"][key] = c["by_path"].get(key, 0) + 1
            if self.command == "PUT" and self.path == "/latest/api/token":
                c["token_puts"] += 1

    # -- IMDS ---------------------------------------------------------------

    def do_PUT(self):
        if self.path.startswith("/admin/"):
            return self.admin()
        if self.dropped():
            return
        self.count()
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path != "/latest/api/token" or STATE.args.no_token_api:
            return self.reply(405, "Method Not Allowed")
        if self.headers.get("X-Forwarded-For") is not None:
            return self.reply(403, "Forbidden")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        try:
            ttl_i = int(ttl)
            if str(ttl_i) != ttl.strip() or not 1 <= ttl_i <= MAX_TTL:
                raise ValueError
        except (TypeError, ValueError, AttributeError):
            return self.reply(400, "Bad Request")
        token = "AQAE" + secrets.token_urlsafe(40)
        with STATE.lock:
            STATE.counts["last_ttl"] = ttl_i
            STATE.tokens[token] = time.monotonic() + ttl_i
        self.reply(200, token, headers={"X-aws-ec2-metadata-token-ttl-seconds": str(ttl_i)})

    def do_GET(self):
        if self.path.startswith("/admin/"):
            return self.admin()
        if self.dropped():
            return
        self.count()
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token is None:
            if not STATE.args.allow_v1:
                return self.reply(401, "Unauthorized")
        else:
            with STATE.lock:
                exp = STATE.tokens.get(token)
            if exp is None or exp < time.monotonic():
                return self.reply(401, "Unauthorized")
        path = urllib.parse.unquote(self.path.split("?", 1)[0])
        if path in ("/", "/latest", "/latest/"):
            return self.reply(200, "dynamic\nmeta-data\nuser-data" if STATE.args.user_data else "dynamic\nmeta-data")
        if not path.startswith("/latest/"):
            return self.reply(404, "Not Found")
        rel = path[len("/latest/"):]
        if rel == "user-data" and STATE.args.user_data:
            return self.reply(200, STATE.args.user_data, "application/octet-stream")
        with STATE.lock:
            items = STATE.items()
            if rel in items:
                v = items[rel]
                if v is None:  # role credentials
                    return self.reply(200, json.dumps(STATE.credentials(), indent=2))
                ctype = "application/json" if v[:1] in "[{" else "text/plain"
                return self.reply(200, v, ctype)
            prefix = rel.rstrip("/") + "/" if rel else ""
            if prefix == "/":
                prefix = ""
            kids = []
            for k in items:
                if k.startswith(prefix) and k != prefix:
                    rest = k[len(prefix):]
                    kid = rest.split("/", 1)[0] + ("/" if "/" in rest else "")
                    if kid not in kids:
                        kids.append(kid)
        if not kids:
            return self.reply(404, "Not Found")
        self.reply(200, "\n".join(sorted(kids)))

    def do_POST(self):
        if self.path.startswith("/admin/"):
            return self.admin()
        if self.dropped():
            return
        self.count()
        self.reply(405, "Method Not Allowed")

    do_DELETE = do_POST

    # -- admin --------------------------------------------------------------

    def admin(self):
        try:
            req = self.body_json() if self.command in ("POST", "PUT") else {}
        except ValueError as e:
            return self.reply(400, json.dumps({"error": str(e)}), "application/json")
        what = self.path[len("/admin/"):].split("?", 1)[0]
        now = time.time()
        out = {"ok": True}
        with STATE.lock:
            if what == "requests":
                out = json.loads(json.dumps(STATE.counts))
            elif what == "reset-requests":
                STATE.counts = {"total": 0, "token_puts": 0, "by_path": {}, "by_status": {}}
            elif what == "credentials":
                out = list(STATE.issued)
            elif what == "spot":
                if req.get("clear"):
                    STATE.spot = None
                else:
                    STATE.spot = {"action": req.get("action", "terminate"),
                                  "time": req.get("time") or iso(now + 120)}
                    out = dict(STATE.spot)
            elif what == "rebalance":
                STATE.rebalance = None if req.get("clear") else {"noticeTime": req.get("noticeTime") or iso(now)}
                out = STATE.rebalance or out
            elif what == "maintenance":
                if req.get("clear"):
                    STATE.maintenance = []
                else:
                    STATE.maintenance = req.get("events") or [{
                        "NotBefore": datetime.datetime.fromtimestamp(now + 86400, datetime.timezone.utc).strftime("%d %b %Y %H:%M:%S GMT"),
                        "NotAfter": datetime.datetime.fromtimestamp(now + 7 * 86400, datetime.timezone.utc).strftime("%d %b %Y %H:%M:%S GMT"),
                        "Code": "system-reboot",
                        "Description": "scheduled reboot",
                        "EventId": "instance-event-0d59937288b749b32",
                        "State": "active"}]
                    out = {"events": STATE.maintenance}
            elif what == "lifecycle":
                STATE.lifecycle = None if req.get("clear") else req.get("state", "Terminated")
            elif what == "outage":
                STATE.outage_until = time.monotonic() + float(req.get("seconds", 10))
            elif what == "expire-tokens":
                STATE.tokens.clear()
            elif what == "tags":
                STATE.tags = dict(req.get("tags") or {})
            elif what == "meta":
                STATE.meta_overrides.update({k: str(v) for k, v in req.items()})
            else:
                return self.reply(404, json.dumps({"error": "no such admin endpoint"}), "application/json")
        self.reply(200, json.dumps(out), "application/json")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host, port):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)

    def handle_error(self, request, client_address):
        # A client that hung up (timeout, outage drop) is not the emulator's
        # error; anything else is printed as usual.
        if isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def tag_arg(s):
    if "=" not in s:
        raise argparse.ArgumentTypeError("expected KEY=VALUE")
    return tuple(s.split("=", 1))


def main():
    global STATE
    p = argparse.ArgumentParser(description="IMDSv2 emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--instance-id", default="i-0123456789abcdef0")
    p.add_argument("--instance-type", default="t3.micro")
    p.add_argument("--ami-id", default="ami-0abcdef1234567890")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--az", default=None, help="default REGION + 'a'")
    p.add_argument("--account-id", default="123456789012")
    p.add_argument("--local-ipv4", default="10.0.1.23")
    p.add_argument("--public-ipv4", default="", help="absent when empty")
    p.add_argument("--hostname", default=None)
    p.add_argument("--mac", default="0e:12:34:56:78:9a")
    p.add_argument("--vpc-cidr", dest="vpc_cidrs", action="append", default=None,
                   help="a CIDR block of the VPC (repeatable; default 10.0.0.0/16)")
    p.add_argument("--role", default="agentd-test-role", help="IAM role; empty: none")
    p.add_argument("--tag", dest="tags", type=tag_arg, action="append", default=[],
                   help="instance tag KEY=VALUE (repeatable)")
    p.add_argument("--no-tags", action="store_true", help="tags in metadata not enabled (404)")
    p.add_argument("--cred-ttl", type=float, default=6 * 3600, help="credentials lifetime, seconds")
    p.add_argument("--cred-rotate", type=float, default=None,
                   help="issue new credentials when fewer seconds are left (default ttl/2)")
    p.add_argument("--allow-v1", action="store_true", help="serve GETs without a token")
    p.add_argument("--no-token-api", action="store_true",
                   help="answer the token PUT with 405, as an IMDS without v2 (use with --allow-v1)")
    p.add_argument("--outage", type=float, default=0, help="start with an outage of N seconds")
    p.add_argument("--user-data", default="")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    if a.vpc_cidrs is None:
        a.vpc_cidrs = ["10.0.0.0/16"]
    if a.az is None:
        a.az = a.region + "a"
    if a.hostname is None:
        a.hostname = "ip-%s.ec2.internal" % a.local_ipv4.replace(".", "-")
    if a.cred_rotate is None:
        a.cred_rotate = a.cred_ttl / 2
    STATE = State(a)
    if a.outage:
        STATE.outage_until = time.monotonic() + a.outage
    srv = Server(a.host, a.port)
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

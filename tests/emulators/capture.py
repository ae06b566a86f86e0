#!/usr/bin/python3
"""A capture server for AWS requests: checks every request's SigV4 signature
with botocore (emulib.verify_sigv4), records it, and answers from a script.

Admin endpoints (not signed, under /_capture/):
  GET  /_capture/requests       -> JSON list of recorded requests
  POST /_capture/script         -> body: JSON list of answers for the next
                                   requests, each {"status", "body",
                                   "content_type", "headers"}; afterwards
                                   the default answer
  POST /_capture/default        -> body: one answer used when the script is
                                   empty (e.g. 503 forever: a dead endpoint)
  POST /_capture/reset          -> forget requests, script and default

A request whose signature does not verify is answered 403 with the AWS
error (JSON or XML like the request) and recorded with sig_ok false.

--skew SECONDS makes the server's clock (for signature times and its Date
header) run that far ahead of the real one.
"""
import datetime
import email.utils
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emulib  # noqa: E402

LOCK = threading.Lock()
STATE = {"requests": [], "script": [], "default": None}


def _error_body(is_json, code, message):
    if is_json:
        return "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message})
    return "text/xml", ("<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>"
                        "<Message>%s</Message></Error><RequestId>capture</RequestId>"
                        "</ErrorResponse>" % (code, message.replace("&", "&amp;")
                                              .replace("<", "&lt;")))


class Handler(emulib.http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def date_time_string(self, timestamp=None):
        return email.utils.formatdate(time.time() + self.args.skew, usegmt=True)

    def _reply(self, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "capture-%d" % len(STATE["requests"]))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _admin(self, body):
        path = self.path.split("?")[0]
        with LOCK:
            if self.command == "GET" and path == "/_capture/requests":
                return self._reply(200, json.dumps(STATE["requests"]))
            if self.command == "POST" and path == "/_capture/script":
                STATE["script"] = json.loads(body or b"[]")
                return self._reply(200, "{}")
            if self.command == "POST" and path == "/_capture/default":
                STATE["default"] = json.loads(body or b"null")
                return self._reply(200, "{}")
            if self.command == "POST" and path == "/_capture/reset":
                STATE.update(requests=[], script=[], default=None)
                return self._reply(200, "{}")
        return self._reply(404, "{}")

    def _handle(self):
        body = self._body()
        if self.path.startswith("/_capture/"):
            return self._admin(body)
        headers = list(self.headers.items())
        lower = {k.lower(): v for k, v in headers}
        auth = lower.get("authorization", "")
        service = "unknown"
        try:
            service = auth.split("Credential=")[1].split(",")[0].split("/")[3]
        except IndexError:
            pass
        is_json = "json" in lower.get("content-type", "")
        rec = {"time": time.time(), "method": self.command, "path": self.path,
               "headers": headers, "body": body.decode("utf-8", "replace"),
               "service": service, "sig_ok": False, "akid": None, "error": None}
        try:
            now = datetime.datetime.utcnow() + datetime.timedelta(seconds=self.args.skew)
            rec["akid"] = emulib.verify_sigv4(self.command, self.path, headers, body, service,
                                              now=now)
            rec["sig_ok"] = True
        except emulib.SigError as e:
            rec["error"] = "%s: %s" % (e.code, e)
        with LOCK:
            STATE["requests"].append(rec)
            answer = STATE["script"].pop(0) if STATE["script"] else STATE["default"]
        if not rec["sig_ok"]:
            ctype, text = _error_body(is_json, rec["error"].split(":")[0], rec["error"])
            return self._reply(403, text, ctype)
        if answer is None:
            if is_json:
                return self._reply(200, "{}", "application/x-amz-json-1.1")
            return self._reply(200, "<OkResponse><RequestId>capture</RequestId></OkResponse>",
                               "text/xml")
        return self._reply(answer.get("status", 200), answer.get("body", ""),
                           answer.get("content_type", "text/xml"), answer.get("headers"))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


if __name__ == "__main__":
    emulib.serve(Handler, setup=lambda ap: ap.add_argument("--skew", type=int, default=0))

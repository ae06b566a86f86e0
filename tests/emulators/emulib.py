"""Shared pieces of the local AWS emulators used by agentd's tests and demo.

- serve(Handler): command line (--host, --port), a threading HTTP server on
  IPv4 or IPv6, "READY" on stdout once listening.
- verify_sigv4(...): recomputes a request's SigV4 signature with botocore and
  raises SigError unless it matches (and the credentials are valid now).
- validate(service, operation, params): botocore's own parameter validation
  against the service model; returns a list of error strings.
- query_to_params(service, operation, form): the Query protocol's flattened
  form (Targets.member.1.Id=...) back into the model's nested parameters.

Test credentials carry no shared state: the secret of an access key id is
derive_secret(akid). Temporary keys made by make_akid(expiration) start with
ASIA and carry their expiry, so any emulator can refuse expired credentials;
their session token is derive_token(akid).
"""
import argparse
import datetime
import hashlib
import http.server
import os
import secrets
import socket
import sys
import threading
import urllib.parse

import botocore.session
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.validate import ParamValidator

MAX_SKEW = datetime.timedelta(minutes=15)


class SigError(Exception):
    """The request's signature or credentials are not acceptable.

    code is the AWS error code an endpoint answers with."""

    def __init__(self, message, code="SignatureDoesNotMatch"):
        super().__init__(message)
        self.code = code


def derive_secret(akid):
    return hashlib.sha256(("agentd-test-secret:" + akid).encode()).hexdigest()[:40]


def derive_token(akid):
    return "tok-" + hashlib.sha256(("agentd-test-token:" + akid).encode()).hexdigest()


def make_akid(expiration=None):
    """A fresh access key id. With an expiration (unix seconds) it is a
    temporary ASIA key whose expiry is readable by every emulator."""
    if expiration is None:
        return "AKID" + secrets.token_hex(8).upper()
    return "ASIA%08X%s" % (int(expiration), secrets.token_hex(4).upper())


def akid_expiration(akid):
    """The expiry (unix seconds) encoded in a temporary key, else None."""
    if akid.startswith("ASIA") and len(akid) >= 12:
        try:
            return int(akid[4:12], 16)
        except ValueError:
            return None
    return None


class _S3Auth(S3SigV4Auth):
    """S3's rule: the payload hash is the x-amz-content-sha256 header."""

    def payload(self, request):
        return request.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")


def _parse_authorization(value):
    if not value or not value.startswith("AWS4-HMAC-SHA256 "):
        raise SigError("missing or non-SigV4 Authorization header", "MissingAuthenticationToken")
    fields = {}
    for part in value[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        akid, date, region, service, term = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        sig = fields["Signature"]
    except (KeyError, ValueError):
        raise SigError("malformed Authorization header: %r" % value, "IncompleteSignature")
    if term != "aws4_request":
        raise SigError("credential scope must end in aws4_request", "IncompleteSignature")
    return akid, date, region, service, signed, sig


def verify_sigv4(method, raw_path, headers, body, service, region=None, now=None):
    """Checks a request's SigV4 signature with botocore.

    raw_path is the request target as received (path and query, still
    percent-encoded); headers a mapping or list of (name, value) as received;
    body bytes. Returns the access key id, or raises SigError."""
    if hasattr(headers, "items"):
        pairs = list(headers.items())
    else:
        pairs = list(headers)
    lower = {}
    for k, v in pairs:
        lk = k.lower()
        lower[lk] = lower[lk] + "," + v if lk in lower else v
    akid, date, cred_region, cred_service, signed, sig = _parse_authorization(lower.get("authorization"))
    if cred_service != service:
        raise SigError("credential scope names service %r, expected %r" % (cred_service, service))
    if region is not None and cred_region != region:
        raise SigError("credential scope names region %r, expected %r" % (cred_region, region))
    amzdate = lower.get("x-amz-date")
    if not amzdate:
        raise SigError("missing X-Amz-Date", "IncompleteSignature")
    try:
        t = datetime.datetime.strptime(amzdate, "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise SigError("bad X-Amz-Date %r" % amzdate, "IncompleteSignature")
    if date != amzdate[:8]:
        raise SigError("credential scope date %s differs from X-Amz-Date" % date)
    now = now or datetime.datetime.utcnow()
    if abs(now - t) > MAX_SKEW:
        raise SigError("Signature expired: %s is not within 15 minutes of %s"
                       % (amzdate, now.strftime("%Y%m%dT%H%M%SZ")), "InvalidSignatureException")
    for h in ("host", "x-amz-date"):
        if h not in signed:
            raise SigError("SignedHeaders must include %s" % h)
    if "x-amz-security-token" in lower and "x-amz-security-token" not in signed:
        raise SigError("X-Amz-Security-Token present but not signed")
    exp = akid_expiration(akid)
    token = None
    if exp is not None:
        if t.replace(tzinfo=datetime.timezone.utc).timestamp() >= exp:
            raise SigError("The security token included in the request is expired", "ExpiredToken")
        token = derive_token(akid)
        if lower.get("x-amz-security-token") != token:
            raise SigError("The security token included in the request is invalid",
                           "UnrecognizedClientException")
    if service == "s3" and "x-amz-content-sha256" in lower:
        declared = lower["x-amz-content-sha256"]
        if declared != "UNSIGNED-PAYLOAD" and declared != hashlib.sha256(body or b"").hexdigest():
            raise SigError("x-amz-content-sha256 does not match the body", "XAmzContentSHA256Mismatch")
    url = "http://%s%s" % (lower.get("host", "localhost"), raw_path)
    req_headers = {h: lower[h] for h in signed if h in lower}
    missing = [h for h in signed if h not in lower]
    if missing:
        raise SigError("signed header(s) not present: %s" % ", ".join(missing))
    req = AWSRequest(method=method, url=url, data=body or b"", headers=req_headers)
    req.context["timestamp"] = amzdate
    cls = _S3Auth if service == "s3" else SigV4Auth
    auth = cls(Credentials(akid, derive_secret(akid), token), service, cred_region)
    canonical = auth.canonical_request(req)
    expected = auth.signature(auth.string_to_sign(req, canonical), req)
    if expected != sig:
        raise SigError("The request signature we calculated does not match the signature you "
                       "provided. Canonical request:\n" + canonical)
    return akid


_session = None
_lock = threading.Lock()


def service_model(service):
    global _session
    with _lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session.get_service_model(service)


def validate(service, operation, params):
    """Validates params against the operation's input shape; returns errors."""
    op = service_model(service).operation_model(operation)
    report = ParamValidator().validate(params, op.input_shape)
    if report.has_errors():
        return [line for line in report.generate_report().splitlines() if line.strip()]
    return []


def _from_form(shape, prefix, form):
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            p = prefix + key if not prefix else prefix + "." + key
            v = _from_form(member, p, form)
            if v is not None:
                out[name] = v
        return out if out or not prefix else (out if any(k.startswith(prefix + ".") for k in form) else None)
    if t == "list":
        flat = shape.serialization.get("flattened")
        base = prefix if flat else prefix + ".member"
        items = []
        i = 1
        while True:
            p = "%s.%d" % (base, i)
            if p not in form and not any(k.startswith(p + ".") for k in form):
                break
            items.append(_from_form(shape.member, p, form))
            i += 1
        if not items and prefix in form and form[prefix] == "":
            return []
        return items if items else None
    if t == "map":
        out = {}
        i = 1
        while True:
            p = "%s.entry.%d" % (prefix, i)
            if p + ".key" not in form:
                break
            out[form[p + ".key"]] = _from_form(shape.value, p + ".value", form)
            i += 1
        return out if out else None
    if prefix not in form:
        return None
    v = form[prefix]
    if t in ("integer", "long"):
        try:
            return int(v)
        except ValueError:
            return v
    if t in ("float", "double"):
        try:
            return float(v)
        except ValueError:
            return v
    if t == "boolean":
        return {"true": True, "false": False}.get(v, v)
    return v


def query_to_params(service, operation, form):
    """Turns a Query-protocol form (dict of str → str, without Action and
    Version) into the nested parameters of the operation's input shape."""
    op = service_model(service).operation_model(operation)
    if op.input_shape is None:
        return {}
    return _from_form(op.input_shape, "", form) or {}


def parse_form(body):
    """A urlencoded body as a dict (last value wins, as AWS does)."""
    return dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(handler, host="127.0.0.1", port=0):
    cls = type("Server", (_Server,), {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
    return cls((host, port), handler)


def serve(handler, argv=None, setup=None):
    """Parses --host/--port (and options setup(parser) adds), starts the
    server, prints READY and serves until killed. Returns never."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    if setup:
        setup(ap)
    args = ap.parse_args(argv)
    handler.args = args
    srv = make_server(handler, args.host, args.port)
    print("READY port=%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    sys.exit(0)

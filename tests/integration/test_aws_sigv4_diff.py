"""Differential test of agentd's SigV4 signer against botocore.

Random requests (methods, paths with reserved and non-ASCII characters,
repeated and empty query parameters given in messy but equivalent encodings,
headers with odd whitespace and duplicates, bodies, S3 and other services,
session tokens, UNSIGNED-PAYLOAD) are signed at a fixed time by
tests/unit/sigv4-sign-tool (agentd's aws-sigv4.c) and by botocore's
SigV4Auth / S3SigV4Auth. The wire path, canonical query, canonical request
and Authorization header must be identical.
"""
import datetime
import json
import os
import random
import subprocess
import types
from urllib.parse import quote

import pytest

from botocore import auth as bauth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import BUILD

TOOL = BUILD / "tests/unit/sigv4-sign-tool"
CASES = int(os.environ.get("SIGV4_DIFF_CASES", "1500"))
SEED = int(os.environ.get("SIGV4_DIFF_SEED", "20261122"))

UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
PATH_CHARS = (list("abcXYZ019-_.~") + list("!$&'()*+,;=:@") + [" ", "%", "\"", "<", ">", "^",
              "`", "{", "|", "}", "[", "]", "?", "#", "\\"] + ["é", "ሴ", "日本", "💡", "ß"])
QUERY_CHARS = list("abcXYZ019-_.~") + list("!$'()*,;:@/?[] +\"") + ["é", "ሴ", "日本", "💡"]
SERVICES = ["elasticloadbalancing", "logs", "s3", "route53", "monitoring", "service"]
REGIONS = ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1", "ap-southeast-2"]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]
HEADER_NAMES = ["X-Amz-Target", "Content-Type", "X-Custom", "x-custom", "X-CUSTOM", "Range",
                "If-None-Match", "X-Amz-Meta-Data", "Content-MD5", "x-amz-server-side-encryption",
                "X-Aa", "X-A", "X-A-B", "X-Ab", "X-Amz-Meta-a", "Zeta", "Accept",
                # never signed by either side
                "User-Agent", "Expect", "X-Amzn-Trace-Id"]
FIXED = datetime.datetime(2026, 11, 22, 7, 53, 11)


def wire_path(raw):
    """Our wire rule, written independently: keep unreserved, '/' and valid
    %XX escapes; percent-encode every other UTF-8 byte."""
    b = raw.encode("utf-8")
    out = []
    i = 0
    hexd = b"0123456789abcdefABCDEF"
    while i < len(b):
        c = b[i]
        if c == 0x25 and i + 2 < len(b) + 0 and b[i + 1] in hexd and b[i + 2] in hexd:
            out.append(b[i:i + 3].decode())
            i += 3
            continue
        ch = chr(c)
        if ch in UNRESERVED or ch == "/":
            out.append(ch)
        else:
            out.append("%%%02X" % c)
        i += 1
    return "".join(out)


def rand_text(rng, chars, lo, hi):
    return "".join(rng.choice(chars) for _ in range(rng.randint(lo, hi)))


def rand_path(rng):
    segs = []
    for _ in range(rng.randint(0, 5)):
        r = rng.random()
        if r < 0.1:
            segs.append(rng.choice([".", "..", ""]))
        elif r < 0.2:
            segs.append("%" + rng.choice(["41", "2F", "2f", "zz", "E1%88%B4", "25", "2"]))
        else:
            segs.append(rand_text(rng, PATH_CHARS, 1, 8))
    path = "/" + "/".join(segs)
    if rng.random() < 0.2:
        path += "/"
    return path


def strict(s):
    return quote(s, safe="-_.~")


def messy(s, rng):
    """An equivalent encoding of s for agentd's query canonicaliser: some
    characters raw, some escaped with lower-case hex."""
    out = []
    for ch in s:
        if ch in "&=%+":
            out.append(strict(ch))
        elif ch in UNRESERVED:
            out.append("%%%02x" % ord(ch) if rng.random() < 0.2 else ch)
        elif rng.random() < 0.5:
            out.append(ch)
        else:
            out.append(quote(ch, safe="").lower() if rng.random() < 0.5 else quote(ch, safe=""))
    return "".join(out)


def rand_query(rng):
    """Returns (messy query for agentd, canonical-on-the-wire query for
    botocore), with repeated keys and empty values."""
    if rng.random() < 0.25:
        return None, ""
    pairs = []
    keys = [rand_text(rng, QUERY_CHARS, 1, 6) for _ in range(rng.randint(1, 4))]
    for _ in range(rng.randint(1, 6)):
        k = rng.choice(keys)
        r = rng.random()
        v = None if r < 0.15 else ("" if r < 0.3 else rand_text(rng, QUERY_CHARS, 1, 8))
        pairs.append((k, v))
    ours = "&".join(messy(k, rng) + ("" if v is None else "=" + messy(v, rng)) for k, v in pairs)
    if rng.random() < 0.1:
        ours += "&"  # an empty segment is dropped
    # agentd sends its canonical form: pairs sorted by encoded key, then value.
    wire = "&".join("%s=%s" % kv for kv in sorted((strict(k), strict(v or "")) for k, v in pairs))
    return ours, wire


def rand_value(rng):
    words = [rand_text(rng, list("abcXYZ0129-_.,;:/=+\"'()*"), 1, 6) for _ in range(rng.randint(0, 4))]
    seps = [" ", "  ", "\t", " \t ", "   "]
    v = ""
    for i, w in enumerate(words):
        v += (rng.choice(seps) if i else "") + w
    return rng.choice(["", " ", "\t", "  "]) + v + rng.choice(["", " ", "\t ", "   "])


class _Clock:
    class datetime:
        @staticmethod
        def utcnow():
            return FIXED


def botocore_sign(case, query_wire):
    host = case["host"]
    scheme = "https" if case["https"] else "http"
    url = "%s://%s%s" % (scheme, host, case["wire"])
    if query_wire:
        url += "?" + query_wire
    body = bytes.fromhex(case["body_hex"])
    req = AWSRequest(method=case["method"], url=url, data=body)
    for name, value in case["headers"]:
        if name.lower() != "host":
            req.headers[name] = value
    creds = Credentials(case["akid"], case["secret"], case.get("token"))
    if case["s3"]:
        signer = bauth.S3SigV4Auth(creds, case["service"], case["region"])
        req.context["client_config"] = types.SimpleNamespace(
            s3={"payload_signing_enabled": not case["unsigned"]})
    else:
        signer = bauth.SigV4Auth(creds, case["service"], case["region"])
    seen = {}
    orig = signer.canonical_request

    def capture(r):
        seen["cr"] = orig(r)
        return seen["cr"]

    signer.canonical_request = capture
    real = bauth.datetime
    bauth.datetime = _Clock
    try:
        signer.add_auth(req)
    finally:
        bauth.datetime = real
    return seen["cr"], req.headers["Authorization"]


def make_cases(n, seed):
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        service = rng.choice(SERVICES)
        s3 = service == "s3"
        method = rng.choice(METHODS)
        https = rng.random() < 0.7
        host = rng.choice(["example.amazonaws.com", "logs.eu-west-1.amazonaws.com",
                           "127.0.0.1:4566", "[::1]:9000", "bucket.s3.amazonaws.com"])
        raw = rand_path(rng)
        ours_q, wire_q = rand_query(rng)
        headers = [["Host", host]]
        for _ in range(rng.randint(0, 6)):
            headers.append([rng.choice(HEADER_NAMES), rand_value(rng)])
        if rng.random() < 0.2 and len(headers) > 1:
            # the same header twice, differently cased
            name, _ = rng.choice(headers[1:])
            headers.append([name.swapcase(), rand_value(rng)])
        body = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 0, 1, 17, 300])))
        if method in ("GET", "HEAD", "DELETE") and rng.random() < 0.7:
            body = b""
        akid = "AKID%08d" % i
        case = {
            "method": method, "path": raw, "query": ours_q, "headers": headers,
            "body_hex": body.hex(), "service": service, "region": rng.choice(REGIONS),
            "s3": s3, "unsigned": s3 and rng.random() < 0.3,
            "akid": akid, "secret": "secret/%d+%s" % (i, rng.random()),
            "now": int(FIXED.replace(tzinfo=datetime.timezone.utc).timestamp()),
        }
        if rng.random() < 0.4:
            case["token"] = "tok/%d==" % i
        case["https"] = https
        case["host"] = host
        case["wire"] = wire_path(raw)
        case["wire_q"] = wire_q
        cases.append(case)
    return cases


@pytest.fixture(scope="module")
def signed():
    if not TOOL.exists():
        pytest.fail("build tests/unit/sigv4-sign-tool first (make check builds it)")
    cases = make_cases(CASES, SEED)
    inp = "".join(json.dumps({k: v for k, v in c.items()
                              if k not in ("https", "host", "wire", "wire_q")}) + "\n"
                  for c in cases)
    r = subprocess.run([str(TOOL)], input=inp, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    outs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(outs) == len(cases)
    return cases, outs


def test_differential(signed):
    cases, outs = signed
    mismatches = []
    for case, ours in zip(cases, outs):
        assert "error" not in ours, (case, ours)
        cr, authz = botocore_sign(case, case["wire_q"])
        problems = []
        if ours["wire_path"] != case["wire"]:
            problems.append("wire path %r != %r" % (ours["wire_path"], case["wire"]))
        if ours["canonical_query"] != case["wire_q"]:
            problems.append("query %r != %r" % (ours["canonical_query"], case["wire_q"]))
        if ours["canonical_request"] != cr:
            problems.append("canonical request:\n--- agentd\n%s\n--- botocore\n%s"
                            % (ours["canonical_request"], cr))
        if ours["authorization"] != authz:
            problems.append("authorization %r != %r" % (ours["authorization"], authz))
        if problems:
            mismatches.append((case, problems))
    print("sigv4 differential: %d requests, %d identical" % (len(cases),
                                                              len(cases) - len(mismatches)))
    assert len(cases) >= 1000
    assert not mismatches, "%d of %d differ; first: %s\n%s" % (
        len(mismatches), len(cases), json.dumps(mismatches[0][0], ensure_ascii=False),
        "\n".join(mismatches[0][1]))


def test_cases_cover_the_hard_parts(signed):
    """The generator really produces what the differential test claims."""
    cases, _ = signed
    assert any("%" in c["wire"] and "%25" not in c["wire"] for c in cases)
    assert any(any(ord(ch) > 127 for ch in c["path"]) for c in cases)
    assert any(seg in (".", "..") for c in cases for seg in c["path"].split("/"))
    assert any(c["query"] and "&" in c["query"] and
               len({p.split("=")[0] for p in c["wire_q"].split("&")}) < c["wire_q"].count("&") + 1
               for c in cases)
    assert any(c["wire_q"] and "=&" in c["wire_q"] + "&" for c in cases)
    assert any(len({h[0].lower() for h in c["headers"]}) < len(c["headers"]) for c in cases)
    assert any("\t" in v or "  " in v for c in cases for _, v in c["headers"])
    assert any(c["body_hex"] for c in cases)
    assert any(c["s3"] and c["unsigned"] for c in cases)
    assert any(c.get("token") for c in cases)
    assert len({c["method"] for c in cases}) == len(METHODS)

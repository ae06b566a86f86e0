"""The AWS core end to end: requests fired through agentd_aws_request (by the
test plugin tests/plugins/awsprobe.c) reach tests/emulators/capture.py, which
checks every signature with botocore. Credentials from the environment and
from a profile file, the three protocols, error parsing, retries with
backoff, the retry quota against a dead endpoint, and secrets kept out of
status and logs."""
import json
import os
import re
import sys
import urllib.request

import pytest

from conftest import EMULATORS, Emulator, run_agentd, wait_for

sys.path.insert(0, str(EMULATORS))
import emulib  # noqa: E402


@pytest.fixture
def capture():
    e = Emulator("capture.py")
    yield e
    e.close()


def admin(emu, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(emu.base_url + "/_capture/" + path, data=data,
                                 method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def env_creds(region="us-east-1"):
    akid = emulib.make_akid()
    return akid, {"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": emulib.derive_secret(akid),
                  "AWS_REGION": region}


def send(d, **req):
    r = d.ctl("awsprobe", "send", json.dumps(req))
    assert "id" in r, r
    return r["id"]


def result(d, cid, timeout=30):
    def done():
        r = d.ctl("awsprobe", "result", str(cid))
        return r if r.get("done") else None
    return wait_for(done, timeout, what="AWS call %d" % cid)


def start(agentd_factory, body="awsprobe: {}\n", env=None, **kw):
    d = agentd_factory(body, env=env, **kw)
    d.start()
    return d


def test_env_credentials_json_protocol(agentd_factory, capture):
    akid, env = env_creds()
    env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = capture.base_url
    d = start(agentd_factory, env=env)
    cid = send(d, service="logs", endpoint_id="CLOUDWATCH_LOGS", protocol="json",
               target="Logs_20140328.PutLogEvents", body='{"logGroupName":"g"}')
    r = result(d, cid)
    assert (r["error"], r["status"], r["attempts"]) == (0, 200, 1), r
    reqs = admin(capture, "requests")
    assert len(reqs) == 1
    q = reqs[0]
    assert q["sig_ok"], q["error"]
    assert q["akid"] == akid
    h = {k.lower(): v for k, v in q["headers"]}
    assert h["x-amz-target"] == "Logs_20140328.PutLogEvents"
    assert h["content-type"] == "application/x-amz-json-1.1"
    assert re.fullmatch(r"agentd/\d+\.\d+\.\d+.*", h["user-agent"])
    assert q["body"] == '{"logGroupName":"g"}'
    # Where the credentials came from, never what they are.
    c = d.ctl("aws", "creds")
    assert c["source"] == "environment"
    assert c["access_key_id"] == "*" * 16 + akid[-4:]
    assert c["region"] == "us-east-1"
    aws = [p for p in d.ctl("status")["plugins"] if p["name"] == "aws"][0]
    assert aws["summary"] == "region us-east-1 (environment); credentials from environment"
    assert aws["details"]["credentials"]["source"] == "environment"
    assert aws["details"]["region_source"] == "environment"
    secret = env["AWS_SECRET_ACCESS_KEY"]
    for text in (json.dumps(d.ctl("status")), json.dumps(c), d.log()):
        assert secret not in text and akid not in text
    assert d.stop() == 0


def test_profile_credentials_query_protocol_and_errors(agentd_factory, capture, tmp_path):
    akid = emulib.make_akid()
    creds = tmp_path / "credentials"
    creds.write_text("# test\r\n[other]\r\naws_access_key_id = WRONG\r\n"
                     "[ops]\r\naws_access_key_id = %s\r\naws_secret_access_key=%s\r\n"
                     % (akid, emulib.derive_secret(akid)))
    config = tmp_path / "config"
    config.write_text("[default]\nregion = us-west-1\n[profile ops]\nregion = eu-central-1\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_CONFIG_FILE": str(config),
           "AWS_PROFILE": "ops"}
    for k in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        env[k] = ""
    d = start(agentd_factory, "aws:\n  credentials: profile\nawsprobe:\n  endpoint: %s\n"
              % capture.base_url, env=env)
    assert d.ctl("awsprobe", "region") == "eu-central-1"
    admin(capture, "script", [{"status": 400, "body":
        "<ErrorResponse><Error><Type>Sender</Type><Code>TargetGroupNotFound</Code>"
        "<Message>Target groups 'arn:x' not found</Message></Error>"
        "<RequestId>r</RequestId></ErrorResponse>"}])
    cid = send(d, service="elasticloadbalancing", protocol="query",
               body="Action=DescribeTargetHealth&Version=2015-12-01&TargetGroupArn=arn%3Ax")
    r = result(d, cid)
    # Not retryable: one attempt, the code and message parsed from XML.
    assert r["attempts"] == 1
    assert r["status"] == 400 and r["error"] == -5
    assert r["code"] == "TargetGroupNotFound"
    assert r["message"] == "Target groups 'arn:x' not found"
    reqs = admin(capture, "requests")
    assert [q["sig_ok"] for q in reqs] == [True]
    assert reqs[0]["akid"] == akid
    assert "/eu-central-1/elasticloadbalancing/aws4_request" in dict(reqs[0]["headers"])["Authorization"]
    h = {k.lower(): v for k, v in reqs[0]["headers"]}
    assert h["content-type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert d.ctl("aws", "creds")["source"] == "profile ops"
    assert d.stop() == 0


def test_retries_on_throttling_and_500_with_backoff(agentd_factory, capture):
    akid, env = env_creds()
    d = start(agentd_factory, "awsprobe:\n  endpoint: %s\n" % capture.base_url, env=env)
    admin(capture, "script", [
        {"status": 400, "body": "<ErrorResponse><Error><Code>Throttling</Code>"
                                "<Message>Rate exceeded</Message></Error></ErrorResponse>"},
        {"status": 500, "body": ""},
    ])
    cid = send(d, service="elasticloadbalancing", protocol="query", body="Action=X")
    r = result(d, cid)
    assert (r["error"], r["status"], r["attempts"]) == (0, 200, 3), r
    reqs = admin(capture, "requests")
    assert len(reqs) == 3 and all(q["sig_ok"] for q in reqs)
    # Each retry waited the delay it announced: full jitter below 1 s, then 2 s.
    delays = [int(m) for m in re.findall(r"attempt \d failed .*retrying in (\d+) ms", d.log())]
    assert len(delays) == 2, d.log()
    assert delays[0] <= 1000 and delays[1] <= 2000
    for i, delay in enumerate(delays):
        assert reqs[i + 1]["time"] - reqs[i]["time"] >= delay / 1000.0 - 0.05
    assert "Rate exceeded" in d.log()
    m = d.ctl("metrics")
    assert 'agentd_aws_retries_total{service="elasticloadbalancing"} 2' in m, m
    assert ('agentd_aws_requests_total{service="elasticloadbalancing",outcome="success"} 1'
            in m), m
    assert d.stop() == 0


def test_retry_quota_stops_a_storm(agentd_factory, capture):
    """A dead endpoint (503 for everything): the quota allows 100 retries
    (500 tokens, 5 each), then requests fail after one attempt."""
    akid, env = env_creds()
    d = start(agentd_factory, "awsprobe:\n  endpoint: %s\n" % capture.base_url, env=env)
    admin(capture, "default", {"status": 503, "body": "<Error><Code>ServiceUnavailable</Code>"
                                                      "<Message>down</Message></Error>"})
    n = 60
    ids = [send(d, service="elasticloadbalancing", protocol="query", body="Action=X")
           for _ in range(n)]
    results = [result(d, i, timeout=60) for i in ids]
    assert all(r["status"] == 503 and r["code"] == "ServiceUnavailable" for r in results)
    attempts = sum(r["attempts"] for r in results)
    assert attempts == n + 100, [r["attempts"] for r in results]
    assert len(admin(capture, "requests")) == n + 100
    # Exhausted: the next request is not retried at all.
    r = result(d, send(d, service="elasticloadbalancing", protocol="query", body="Action=X"))
    assert r["attempts"] == 1
    assert "retry quota" in d.log()
    assert d.stop() == 0


def test_s3_rest_xml(agentd_factory, capture):
    akid, env = env_creds("eu-west-1")
    env["AWS_ENDPOINT_URL_S3"] = capture.base_url
    d = start(agentd_factory, env=env)
    key = "/bucket/logs/2026/a b+ü=&?.gz"
    cid = send(d, service="s3", endpoint_id="S3", protocol="rest-xml", method="PUT", path=key,
               body="x" * 1000, headers=["x-amz-server-side-encryption: AES256",
                                         "If-None-Match: *"])
    assert result(d, cid)["status"] == 200
    cid = send(d, service="s3", endpoint_id="S3", protocol="rest-xml", method="PUT", path=key,
               body="y", unsigned=True)
    assert result(d, cid)["status"] == 200
    # CompleteMultipartUpload answers 200 with an error document: retried.
    admin(capture, "script", [{"status": 200, "body":
        "<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>try again</Message>"
        "</Error>"}])
    cid = send(d, service="s3", endpoint_id="S3", protocol="rest-xml", method="POST",
               path="/bucket/k", query="uploadId=abc", body="<CompleteMultipartUpload/>")
    r = result(d, cid)
    assert (r["status"], r["attempts"]) == (200, 2), r
    reqs = admin(capture, "requests")
    assert len(reqs) == 4 and all(q["sig_ok"] for q in reqs), [q["error"] for q in reqs]
    assert reqs[0]["path"] == "/bucket/logs/2026/a%20b%2B%C3%BC%3D%26%3F.gz"
    h0 = {k.lower(): v for k, v in reqs[0]["headers"]}
    assert h0["x-amz-content-sha256"] == emulib.hashlib.sha256(b"x" * 1000).hexdigest()
    assert "x-amz-server-side-encryption" in h0["authorization"]
    h1 = {k.lower(): v for k, v in reqs[1]["headers"]}
    assert h1["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert reqs[2]["path"] == "/bucket/k?uploadId=abc"
    assert d.stop() == 0


def test_session_token_and_json_error(agentd_factory, capture):
    import time
    akid = emulib.make_akid(int(time.time()) + 3600)
    env = {"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": emulib.derive_secret(akid),
           "AWS_SESSION_TOKEN": emulib.derive_token(akid), "AWS_REGION": "us-east-1"}
    d = start(agentd_factory, "awsprobe:\n  endpoint: %s\n" % capture.base_url, env=env)
    admin(capture, "script", [{"status": 400, "content_type": "application/x-amz-json-1.1",
                               "body": json.dumps({"__type": "com.amazonaws.logs#"
                                                   "ResourceNotFoundException",
                                                   "message": "no such group"})}])
    r = result(d, send(d, service="logs", protocol="json", target="Logs_20140328.X", body="{}"))
    assert (r["code"], r["message"], r["attempts"]) == ("ResourceNotFoundException",
                                                       "no such group", 1)
    q = admin(capture, "requests")[0]
    assert q["sig_ok"], q["error"]
    assert "x-amz-security-token" in dict(q["headers"])["Authorization"]
    assert emulib.derive_token(akid) not in d.log()
    assert d.stop() == 0


def test_no_credentials_and_refused_endpoints(agentd_factory, capture):
    env = {"AWS_REGION": "us-east-1", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_CONFIG_FILE": "/nonexistent"}
    d = start(agentd_factory, "aws:\n  credentials: env\nawsprobe:\n  endpoint: %s\n"
              % capture.base_url, env=env)
    r = result(d, send(d, service="logs", protocol="json", body="{}"))
    assert r["error"] == -126  # ENOKEY
    assert "AWS_ACCESS_KEY_ID" in r["message"]
    assert admin(capture, "requests") == []
    # Plain http only to loopback; credentials never leave unencrypted.
    r = d.ctl("awsprobe", "send", json.dumps({"service": "logs",
                                              "endpoint": "http://192.0.2.10:80"}))
    assert r["error"] == -1  # EPERM
    c = d.ctl("aws", "creds")
    assert c["source"] is None and "AWS_ACCESS_KEY_ID" in (c["last_error"] or "")
    aws = [p for p in d.ctl("status")["plugins"] if p["name"] == "aws"][0]
    assert aws["summary"] == "region us-east-1 (environment); credentials unavailable"
    assert aws["state"] == "degraded" or aws.get("degraded") is True, aws
    assert d.stop() == 0


def test_ipv6_loopback_endpoint(agentd_factory):
    cap = Emulator("capture.py", host="::1")
    try:
        akid, env = env_creds()
        d = start(agentd_factory, "awsprobe:\n  endpoint: %s\n" % cap.base_url, env=env)
        r = result(d, send(d, service="logs", target="Logs_20140328.X", body="{}"))
        assert (r["status"], r["attempts"]) == (200, 1), r
        q = admin(cap, "requests")[0]
        assert q["sig_ok"], q["error"]
        assert dict(q["headers"])["Host"] == "[::1]:%d" % cap.port
        assert d.stop() == 0
    finally:
        cap.close()


def test_https_is_verified(agentd_factory, tmp_path):
    """A loopback https endpoint with a self-signed certificate is refused:
    https is always verified, and nothing is retried or sent."""
    import socket
    import ssl
    import subprocess
    import threading

    key, crt = tmp_path / "key.pem", tmp_path / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    port = lsock.getsockname()[1]
    got = {"handshakes": 0, "requests": 0}

    def serve():
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            got["handshakes"] += 1
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    if tls.recv(65536):
                        got["requests"] += 1
            except (ssl.SSLError, OSError):
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        akid, env = env_creds()
        d = start(agentd_factory, "awsprobe:\n  endpoint: https://127.0.0.1:%d\n" % port, env=env)
        r = result(d, send(d, service="logs", body="{}"))
        assert r["error"] == -129, r  # EKEYREJECTED: certificate verification failed
        assert r["attempts"] == 1
        assert "certificate" in (r["message"] or "").lower(), r
        assert got["handshakes"] >= 1 and got["requests"] == 0
        assert d.stop() == 0
    finally:
        lsock.close()


def test_expired_token_refreshes_and_retries_once(agentd_factory, capture):
    akid, env = env_creds()
    d = start(agentd_factory, "awsprobe:\n  endpoint: %s\n" % capture.base_url, env=env)
    expired = {"status": 400, "content_type": "application/x-amz-json-1.1",
               "body": json.dumps({"__type": "ExpiredTokenException",
                                   "message": "The security token included in the request is "
                                              "expired"})}
    # One ExpiredToken: fresh credentials, one more attempt, success.
    admin(capture, "script", [expired])
    r = result(d, send(d, service="logs", body="{}", max_attempts=3))
    assert (r["status"], r["attempts"]) == (200, 2), r
    # Twice in a row: not retried again (no loop on credentials that stay bad).
    admin(capture, "script", [expired, expired, expired])
    r = result(d, send(d, service="logs", body="{}", max_attempts=3))
    assert (r["code"], r["attempts"]) == ("ExpiredTokenException", 2), r
    assert d.stop() == 0


def test_reload_changes_region_and_attempts(agentd_factory, capture):
    akid, env = env_creds()
    env["AWS_REGION"] = ""
    d = start(agentd_factory, "aws:\n  region: eu-west-1\n  max_attempts: 1\n"
              "awsprobe:\n  endpoint: %s\n" % capture.base_url, env=env)
    assert d.ctl("awsprobe", "region") == "eu-west-1"
    admin(capture, "default", {"status": 503, "body": ""})
    assert result(d, send(d, service="logs", body="{}"))["attempts"] == 1
    d.write_config("aws:\n  region: ap-northeast-1\n  max_attempts: 2\n"
                   "awsprobe:\n  endpoint: %s\n" % capture.base_url)
    assert d.ctl("reload")["reload"]["ok"] is True
    assert d.ctl("awsprobe", "region") == "ap-northeast-1"
    assert d.ctl("aws", "creds")["region"] == "ap-northeast-1"
    r = result(d, send(d, service="logs", body="{}"))
    assert r["attempts"] == 2
    reqs = admin(capture, "requests")
    assert "/ap-northeast-1/logs/aws4_request" in dict(reqs[-1]["headers"])["Authorization"]
    assert d.stop() == 0


def test_clock_skew_corrected_from_date_header(agentd_factory):
    """AWS's clock an hour ahead of ours: the first attempt is refused as
    expired, agentd learns the offset from the Date header, the retry and
    every later request are signed at AWS's time."""
    cap = Emulator("capture.py", "--skew", "3600")
    try:
        akid, env = env_creds()
        d = start(agentd_factory, "awsprobe:\n  endpoint: %s\n" % cap.base_url, env=env)
        r = result(d, send(d, service="logs", target="Logs_20140328.X", body="{}"))
        assert (r["status"], r["attempts"]) == (200, 2), r
        reqs = admin(cap, "requests")
        assert [q["sig_ok"] for q in reqs] == [False, True]
        assert "Signature expired" in reqs[0]["error"]
        d.wait_log(r"system clock is 3[56]\d\d s behind AWS's")
        r = result(d, send(d, service="elasticloadbalancing", protocol="query", body="Action=X"))
        assert (r["status"], r["attempts"]) == (200, 1), r
        assert d.stop() == 0
    finally:
        cap.close()


def test_bad_region_is_a_config_error_with_position(tmp_path):
    cfg = tmp_path / "agentd.yaml"
    cfg.write_text("aws:\n  region: EU_West-1\n")
    r = run_agentd("--check-config", "-c", str(cfg))
    assert r.returncode == 78, r
    assert "agentd.yaml:2:11: aws.region: 'EU_West-1' is not a region name" in r.stdout + r.stderr, r

"""The logs plugin's S3 sink against @20minutes/s3rver (SigV4 verified): the
objects, decompressed in {seq} order, hold exactly the lines written."""
import gzip
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import EMULATORS, SRC, free_port, wait_for

sys.path.insert(0, str(EMULATORS))
import emulib  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_logs import CORE, ENV, AKID, line, numbers, ranges, restart  # noqa: E402

S3RVER = SRC / "tests/.cache/s3rver/node_modules/@20minutes/s3rver/lib/s3rver.js"
BUCKET = "logs-bucket"
SEQ_RX = re.compile(r"-(\d+)\.log\.gz$")


class S3:
    def __init__(self, tmp):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["node", str(EMULATORS / "s3rver.js"), "--host", "127.0.0.1", "--port", str(self.port),
             "--directory", str(tmp / "s3data"), "--bucket", BUCKET,
             "--key", "%s:%s" % (AKID, emulib.derive_secret(AKID))],
            stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()
        assert "READY" in ready, "s3rver did not start: %r" % ready
        self.url = "http://127.0.0.1:%d" % self.port
        import botocore.session
        self.client = botocore.session.get_session().create_client(
            "s3", region_name="us-east-1", endpoint_url=self.url, aws_access_key_id=AKID,
            aws_secret_access_key=emulib.derive_secret(AKID))

    def keys(self):
        r = self.client.list_objects_v2(Bucket=BUCKET)
        return [o["Key"] for o in r.get("Contents", [])]

    def lines(self):
        """Every object decompressed, in {seq} order, split into lines."""
        keys = sorted(self.keys(), key=lambda k: int(SEQ_RX.search(k).group(1)))
        out = []
        for k in keys:
            body = self.client.get_object(Bucket=BUCKET, Key=k)["Body"].read()
            out.extend(gzip.decompress(body).decode().splitlines())
        return keys, out

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def s3(tmp_path):
    if not shutil.which("node") or not S3RVER.exists():
        pytest.skip("s3rver not installed: run tests/setup/logs.sh (needs node and npm)")
    s = S3(tmp_path)
    yield s
    s.close()


def s3_yaml(name, log, s3, rotate, extra=""):
    return """
logs:
  - name: %s
    files: [%s]
    checkpoint_interval: 100ms
%s    s3:
      bucket: %s
      key: "log/app/{instance_id}/%%Y/%%m/%%d/%%H%%M%%S-{seq}.log.gz"
      rotate: %s
      endpoint: "%s"
      sse: AES256
      storage_class: STANDARD_IA
""" % (name, log, extra, BUCKET, rotate, s3.url)


def start(agentd_factory, body):
    d = agentd_factory(body, core=CORE, env=ENV)
    d.start()
    return d


def status(d):
    return d.ctl("logs", "status")["pipelines"][0]


def test_s3_objects_hold_exactly_the_lines(agentd_factory, s3, tmp_path):
    log = tmp_path / "app.log"
    total = 30000
    log.write_text("".join(line(n) for n in range(total)))
    d = start(agentd_factory, s3_yaml("s3a", log, s3, "{size: 16KiB, age: 2s}"))
    wait_for(lambda: status(d)["counters"]["events_shipped"] == total, timeout=60,
             what="every line in an object")
    wait_for(lambda: (lambda s: s["pending_uploads"] == 0 and "open_object" not in s)(
        status(d)["sink"]), timeout=60, what="every object uploaded")
    keys, got = s3.lines()
    assert len(keys) > 2, keys  # rotated on size
    assert all(k.startswith("log/app/i-0123456789abcdef0/") for k in keys), keys
    assert got == [line(n)[:-1] for n in range(total)]
    # Uploaded objects leave the state directory.
    assert not list(pathlib.Path(d.state_dir).rglob("*.gz"))
    assert d.stop() == 0


def test_s3_multipart_and_kill9(agentd_factory, s3, tmp_path):
    log = tmp_path / "app.log"
    rng = random.Random(5)
    total = 6000
    # Incompressible lines (~2 KiB each): the 6 MiB object needs two parts.
    payload = ["L%08d %s" % (n, "%x" % rng.getrandbits(8192)) for n in range(total)]
    log.write_text("\n".join(payload[:3000]) + "\n")
    d = start(agentd_factory, s3_yaml("s3m", log, s3, "{size: 6MiB, age: 1h}"))
    wait_for(lambda: status(d)["counters"]["events_shipped"] == 3000, timeout=60,
             what="the first half written to the open object")
    # kill -9 while an object is open: the restart continues it.
    d.stop(sig=signal.SIGKILL)
    with open(log, "a") as f:
        f.write("\n".join(payload[3000:]) + "\n")
    restart(d)
    wait_for(lambda: status(d)["sink"]["objects_uploaded"] >= 1, timeout=90,
             what="the multipart object uploaded")
    d.stop()
    # What is left in the open object goes up after a restart with a short age.
    d.write_config(s3_yaml("s3m", log, s3, "{size: 6MiB, age: 1s}"))
    restart(d)
    wait_for(lambda: (lambda s: s["pending_uploads"] == 0 and "open_object" not in s)(
        status(d)["sink"]), timeout=60, what="every object uploaded")
    keys, got = s3.lines()
    # Above one 5 MiB part: this object went up as a multipart upload.
    sizes = [s3.client.head_object(Bucket=BUCKET, Key=k)["ContentLength"] for k in keys]
    assert max(sizes) > 5 * 1024 * 1024, sizes
    nums = numbers([{"message": g} for g in got])
    missing = sorted(set(range(total)) - set(nums))
    assert not missing, "%d lines lost: %s" % (len(missing), ranges(missing))
    dups = len(nums) - len(set(nums))
    print("s3 kill -9: %d lines, %d duplicates, %d objects" % (total, dups, len(keys)))
    assert dups <= 3000
    byn = {int(g[1:9]): g for g in got}
    assert all(byn[n] == payload[n] for n in range(total))
    assert d.stop() == 0

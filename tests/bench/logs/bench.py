#!/usr/bin/python3
"""Benchmark of the logs plugin (not a test).

    tests/bench/logs/bench.py [--build DIR] [--lines N] [--runs R] [cloudwatch|s3|emulator ...]

cloudwatch: N lines of 100-200 bytes are written to a file, then agentd
ships them to the CloudWatch Logs emulator (in --bench mode: no signature or
model checks, events counted); s3: the same to s3rver (gzip objects, rotated
on size). Measured per run: lines per second end to end (agentd's start to the
last event stored / the last object uploaded), agentd's CPU seconds
(user+sys, all its threads) per million lines, and its peak RSS (VmHWM).
emulator: the CloudWatch emulator alone, fed pre-built 10,000-event batches,
so that it is known not to be the bottleneck. Prints the median of R runs.
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE.parent.parent.parent
EMU = SRC / "tests/emulators"
sys.path.insert(0, str(EMU))
import emulib  # noqa: E402

AKID = "AKIDBENCHLOGS001"
MAX_MEMORY = "2MiB"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_lines(path, n):
    rng = random.Random(1)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "
    chunk = []
    total = 0
    with open(path, "w") as f:
        for i in range(n):
            body = "".join(rng.choices(alphabet, k=rng.randint(80, 180)))
            s = "2024-05-01T12:00:00Z INFO L%08d %s\n" % (i, body)
            chunk.append(s)
            total += len(s)
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    return total


def proc_stats(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return cpu, hwm


def start_agentd(build, tmp, body, env_extra):
    plugins = tmp / "plugins"
    plugins.mkdir(exist_ok=True)
    for so in build.glob("plugins/*/.libs/*.so"):
        (plugins / so.name).symlink_to(so)
    cfg = tmp / "agentd.yaml"
    cfg.write_text("""agentd:
  plugin_dir: %s
  state_dir: %s
  control_socket: %s
  log_level: notice
  metadata: {instance_id: i-bench}
%s""" % (plugins, tmp / "state", tmp / "ctl.sock", body))
    env = dict(os.environ, AGENTD_PLUGIN_DEV="1", AWS_EC2_METADATA_DISABLED="true",
               AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=emulib.derive_secret(AKID),
               AWS_REGION="us-east-1", **env_extra)
    env.pop("NOTIFY_SOCKET", None)
    log = open(tmp / "agentd.log", "wb")
    return subprocess.Popen([str(build / "agentd/agentd"), "-c", str(cfg), "--foreground"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def ctl(build, tmp, *args):
    r = subprocess.run([str(build / "agentd/agentd/agentctl/agentctl") if False else
                        str(build / "agentd/agentctl/agentctl"), "--socket",
                        str(tmp / "ctl.sock"), "--json"] + list(args),
                       capture_output=True, text=True, timeout=30)
    return json.loads(r.stdout) if r.returncode == 0 else None


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit("timed out waiting for " + what)


def run_cloudwatch(build, n, tmp):
    port = free_port()
    emu = subprocess.Popen([sys.executable, str(EMU / "cwlogs.py"), "--port", str(port), "--quiet",
                            "--bench"], stdout=subprocess.PIPE, text=True)
    emu.stdout.readline()
    url = "http://127.0.0.1:%d" % port
    log = tmp / "app.log"
    write_lines(log, n)
    body = """logs:
  - name: bench
    files: [%s]
    max_memory: %s
    cloudwatch: {group: bench, flush_interval: 1s}
""" % (log, MAX_MEMORY)
    t0 = time.monotonic()
    a = start_agentd(build, tmp, body, {"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": url})

    def stored():
        with urllib.request.urlopen(url + "/_admin/stats") as r:
            return json.load(r)["put_events"] >= n
    wait(stored, 600, "every event stored")
    t1 = time.monotonic()
    cpu, hwm = proc_stats(a.pid)
    a.send_signal(signal.SIGTERM)
    a.wait(30)
    emu.terminate()
    emu.wait()
    return n / (t1 - t0), cpu / n * 1e6, hwm


def run_s3(build, n, tmp):
    port = free_port()
    s3 = subprocess.Popen(["node", str(EMU / "s3rver.js"), "--port", str(port), "--directory",
                           str(tmp / "s3data"), "--bucket", "bench",
                           "--key", "%s:%s" % (AKID, emulib.derive_secret(AKID))],
                          stdout=subprocess.PIPE, text=True)
    s3.stdout.readline()
    log = tmp / "app.log"
    write_lines(log, n)
    body = """logs:
  - name: bench
    files: [%s]
    max_memory: %s
    s3:
      bucket: bench
      key: "log/{instance_id}/%%Y%%m%%d-{seq}.log.gz"
      rotate: {size: 16MiB, age: 2s}
      endpoint: "http://127.0.0.1:%d"
""" % (log, MAX_MEMORY, port)
    t0 = time.monotonic()
    a = start_agentd(build, tmp, body, {})

    def done():
        st = ctl(build, tmp, "logs", "status")
        if not st:
            return False
        p = st["pipelines"][0]
        return (p["counters"]["events_shipped"] >= n and p["sink"]["pending_uploads"] == 0
                and "open_object" not in p["sink"])
    wait(done, 600, "every object uploaded")
    t1 = time.monotonic()
    cpu, hwm = proc_stats(a.pid)
    a.send_signal(signal.SIGTERM)
    a.wait(30)
    s3.terminate()
    s3.wait()
    return n / (t1 - t0), cpu / n * 1e6, hwm


def run_emulator(build, n, tmp):
    port = free_port()
    emu = subprocess.Popen([sys.executable, str(EMU / "cwlogs.py"), "--port", str(port), "--quiet",
                            "--bench"], stdout=subprocess.PIPE, text=True)
    emu.stdout.readline()
    c = http.client.HTTPConnection("127.0.0.1", port)
    hdr = {"Content-Type": "application/x-amz-json-1.1"}
    for op, p in (("CreateLogGroup", {"logGroupName": "g"}),
                  ("CreateLogStream", {"logGroupName": "g", "logStreamName": "s"})):
        c.request("POST", "/", json.dumps(p), dict(hdr, **{"X-Amz-Target": "Logs_20140328." + op}))
        c.getresponse().read()
    now = int(time.time() * 1000)
    rng = random.Random(2)
    batch = json.dumps({"logGroupName": "g", "logStreamName": "s", "logEvents": [
        {"timestamp": now, "message": "L%08d %s" % (i, "x" * rng.randint(80, 180))}
        for i in range(10000)]})
    t0 = time.monotonic()
    for _ in range(n // 10000):
        c.request("POST", "/", batch, dict(hdr, **{"X-Amz-Target": "Logs_20140328.PutLogEvents"}))
        c.getresponse().read()
    t1 = time.monotonic()
    emu.terminate()
    emu.wait()
    return n / (t1 - t0), 0.0, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("AGENTD_BUILD_DIR",
                                                      str(SRC / "tests/.build/default")))
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-memory", default="2MiB", help="the pipeline's max_memory")
    ap.add_argument("what", nargs="*", default=["emulator", "cloudwatch", "s3"])
    args = ap.parse_args()
    build = pathlib.Path(args.build).resolve()
    global MAX_MEMORY
    MAX_MEMORY = args.max_memory
    fns = {"cloudwatch": run_cloudwatch, "s3": run_s3, "emulator": run_emulator}
    for what in args.what:
        res = []
        for _ in range(args.runs):
            tmp = pathlib.Path(tempfile.mkdtemp(prefix="agentd-bench-logs-"))
            try:
                res.append(fns[what](build, args.lines, tmp))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        rate = statistics.median(r[0] for r in res)
        cpu = statistics.median(r[1] for r in res)
        hwm = statistics.median(r[2] for r in res)
        if what == "emulator":
            print("%-10s %10.0f events/s (the CloudWatch emulator alone)" % (what, rate))
        else:
            print("%-10s %10.0f lines/s  %.2f CPU-s per 1M lines  peak RSS %.1f MiB  (median of %d)"
                  % (what, rate, cpu, hwm / 1048576, len(res)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()

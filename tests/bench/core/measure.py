#!/usr/bin/python3
"""Core footprint: idle RSS with no plugins after 5 s, exec -> READY=1 (median
of N), and wakeups per minute at idle (epoll_wait calls counted by strace).

    AGENTD_BUILD_DIR=/tmp/build-core tests/bench/core/measure.py [--runs 10] [--idle 60]
"""
import argparse
import os
import pathlib
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import time

BUILD = pathlib.Path(os.environ.get("AGENTD_BUILD_DIR", "tests/.build/default")).resolve()
AGENTD = BUILD / "agentd/agentd"


def config(tmp):
    (tmp / "plugins").mkdir(exist_ok=True)
    cfg = tmp / "agentd.yaml"
    cfg.write_text("agentd:\n  plugin_dir: %s\n  state_dir: %s\n  control_socket: %s\n"
                   % (tmp / "plugins", tmp / "state", tmp / "control.sock"))
    return cfg


def start(tmp, cfg, prefix=()):
    path = str(tmp / "notify.sock")
    if os.path.exists(path):
        os.unlink(path)
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.settimeout(30)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    t0 = time.monotonic()
    p = subprocess.Popen(list(prefix) + [str(AGENTD), "-c", str(cfg)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        msg = ns.recv(4096).decode()
        if "READY=1" in msg.split("\n"):
            break
    ready = time.monotonic() - t0
    ns.close()
    return p, ready


def stop(p):
    p.send_signal(signal.SIGTERM)
    return p.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--idle", type=int, default=60)
    a = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="agentd-bench-"))
    cfg = config(tmp)

    times = []
    for _ in range(a.runs):
        p, t = start(tmp, cfg)
        times.append(t * 1000)
        assert stop(p) == 0
    print("exec->READY=1: median %.1f ms (min %.1f, max %.1f, n=%d)"
          % (statistics.median(times), min(times), max(times), len(times)))

    p, _ = start(tmp, cfg)
    time.sleep(5)
    rss = re.search(r"VmRSS:\s+(\d+) kB", pathlib.Path("/proc/%d/status" % p.pid).read_text())
    print("idle VmRSS after 5 s, no plugins: %s kB" % rss.group(1))
    out = tmp / "strace.txt"
    st = subprocess.Popen(["strace", "-f", "-c", "-e", "trace=epoll_wait,epoll_pwait",
                           "-o", str(out), "-p", str(p.pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(a.idle)
    st.send_signal(signal.SIGINT)
    st.wait(30)
    calls = 0
    for line in out.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?epoll_p?wait", line)
        if m:
            calls += int(m.group(1))
    print("idle wakeups: %d epoll_wait calls in %d s = %.1f per minute"
          % (calls, a.idle, calls * 60.0 / a.idle))
    assert stop(p) == 0


if __name__ == "__main__":
    main()

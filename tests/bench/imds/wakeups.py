#!/usr/bin/python3
"""Idle cost of the imds plugin: wakeups per minute (epoll_wait calls counted
by strace), IMDS requests and TCP connects per minute, with the plugin polling
notices every 5 s against the emulator, next to a baseline agentd without it.

    AGENTD_BUILD_DIR=/tmp/build-imds tests/bench/imds/wakeups.py [--idle 60] [--poll 5s]
"""
import argparse
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE.parent.parent.parent
BUILD = pathlib.Path(os.environ.get("AGENTD_BUILD_DIR", SRC / "tests/.build/default")).resolve()
AGENTD = BUILD / "agentd/agentd"
AGENTCTL = BUILD / "agentd/agentctl/agentctl"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp, body):
    (tmp / "plugins").mkdir(exist_ok=True)
    so = BUILD / "plugins/imds/.libs/imds.so"
    link = tmp / "plugins/imds.so"
    if not link.exists():
        link.symlink_to(so)
    cfg = tmp / "agentd.yaml"
    cfg.write_text("agentd:\n  plugin_dir: %s\n  state_dir: %s\n  control_socket: %s\n%s"
                   % (tmp / "plugins", tmp / "state", tmp / "control.sock", body))
    env = dict(os.environ, AGENTD_PLUGIN_DEV="1", AWS_EC2_METADATA_DISABLED="false")
    p = subprocess.Popen([str(AGENTD), "-c", str(cfg), "--foreground"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = subprocess.run([str(AGENTCTL), "--socket", str(tmp / "control.sock"), "--json", "status"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            break
        time.sleep(0.1)
    return p


def imds_state(tmp):
    r = subprocess.run([str(AGENTCTL), "--socket", str(tmp / "control.sock"), "--json", "imds", "show"],
                       capture_output=True, text=True)
    return json.loads(r.stdout)["state"] if r.returncode == 0 else None


def count(pid, seconds):
    out = pathlib.Path(tempfile.mktemp(prefix="strace-"))
    st = subprocess.Popen(["strace", "-f", "-c", "-e", "trace=epoll_wait,epoll_pwait,connect",
                           "-o", str(out), "-p", str(pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    st.send_signal(signal.SIGINT)
    st.wait(30)
    calls = {"epoll": 0, "connect": 0}
    for line in out.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(epoll_p?wait|connect)$", line.rstrip())
        if m:
            calls["connect" if m.group(2) == "connect" else "epoll"] += int(m.group(1))
    return calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=60)
    ap.add_argument("--poll", default="5s")
    a = ap.parse_args()
    port = free_port()
    emu = subprocess.Popen(["/usr/bin/python3", str(SRC / "tests/emulators/imds.py"), "--port", str(port)],
                           stdout=subprocess.PIPE, text=True)
    assert "READY" in emu.stdout.readline()
    try:
        base = pathlib.Path(tempfile.mkdtemp(prefix="agentd-bench-imds-"))
        tmp0 = base / "baseline"
        tmp0.mkdir()
        p0 = start(tmp0, "")
        time.sleep(2)
        b = count(p0.pid, a.idle)
        p0.send_signal(signal.SIGTERM)
        p0.wait(30)

        tmp = base / "imds"
        tmp.mkdir()
        p = start(tmp, "imds:\n  endpoint: http://127.0.0.1:%d\n  poll_interval: %s\n" % (port, a.poll))
        deadline = time.monotonic() + 20
        while imds_state(tmp) != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        url = "http://127.0.0.1:%d/admin/requests" % port
        r0 = json.loads(urllib.request.urlopen(url).read())
        c = count(p.pid, a.idle)
        r1 = json.loads(urllib.request.urlopen(url).read())
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        per_min = 60.0 / a.idle
        print("baseline agentd (no plugins): %.1f wakeups/min" % (b["epoll"] * per_min))
        print("imds polling every %s: %.1f wakeups/min (%.1f above baseline), "
              "%.1f IMDS requests/min (%d token PUTs), %.1f TCP connects/min"
              % (a.poll, c["epoll"] * per_min, (c["epoll"] - b["epoll"]) * per_min,
                 (r1["total"] - r0["total"]) * per_min, r1["token_puts"] - r0["token_puts"],
                 c["connect"] * per_min))
    finally:
        emu.terminate()
        emu.wait(10)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Restore time of a reverse tunnel after an sshd outage: agentd vs autossh.

One real sshd on a free loopback port; agentd keeps one reverse tunnel to it
and autossh (-M 0, AUTOSSH_GATETIME=0, the same ssh options) keeps another,
both forwarding to one local HTTP server. For each outage length the sshd is
killed (listener and sessions), kept down, and started again; the restore
time is from sshd's return until an HTTP GET through each tunnel's remote
port succeeds (polled every 20 ms). Connection attempts during the outage
come from agentd's status (attempts) and autossh's log ("starting ssh").
Each run starts a fresh agentd and a fresh autossh (--mode fresh, the
default), waits until both carry traffic and --settle seconds more, and
then causes one outage: every run starts from a steady state. With --mode
sequence one agentd and one autossh live through all the outages back to
back, which measures a flapping server instead (autossh's restart counter
keeps growing; agentd resets its backoff after 30 s up).

    AGENTD_BUILD_DIR=/tmp/build-tunnel /usr/bin/python3 tests/bench/tunnel/bench.py \
        [--outages 1,5,30] [--repeat 3] [--long 120] [--settle 5] [--mode fresh|sequence]

Prints one line per run and a table of medians.
"""
import argparse
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "integration"))

from conftest import Agentd, free_port, wait_for  # noqa: E402
from test_tunnel import Backend, Sshd, carries  # noqa: E402

KEEPALIVE = (10, 3)  # the defaults, on both sides


def ssh_options(sshd):
    return ["-F", "none",
            "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
            "-o", "ServerAliveInterval=%d" % KEEPALIVE[0], "-o", "ServerAliveCountMax=%d" % KEEPALIVE[1],
            "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes", "-i", str(sshd.identity),
            "-o", "UserKnownHostsFile=%s" % sshd.known_hosts, "-o", "StrictHostKeyChecking=yes",
            "-p", str(sshd.port), "%s@127.0.0.1" % sshd.user]


class Autossh:
    def __init__(self, tmp, sshd, rport, backend_port):
        self.log = pathlib.Path(tmp) / "autossh.log"
        env = dict(os.environ, AUTOSSH_GATETIME="0", AUTOSSH_LOGFILE=str(self.log),
                   AUTOSSH_LOGLEVEL="7")
        self.proc = subprocess.Popen(
            ["autossh", "-M", "0", "-N", "-R", "127.0.0.1:%d:127.0.0.1:%d" % (rport, backend_port)]
            + ssh_options(sshd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)

    def starts(self):
        try:
            return self.log.read_text(errors="replace").count("starting ssh (count")
        except FileNotFoundError:
            return 0

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(10)


def agentd_attempts(d):
    return d.ctl("tunnel", "status")["tunnels"][0]["attempts"]


def one_outage(sshd, d, autossh, backend, ports, seconds, settle):
    a_port, s_port = ports
    wait_for(lambda: carries(a_port, backend.token) and carries(s_port, backend.token), 900,
             what="both tunnels up before the outage")
    time.sleep(settle)
    assert carries(a_port, backend.token) and carries(s_port, backend.token)
    a0, s0 = agentd_attempts(d), autossh.starts()
    sshd.kill()
    time.sleep(seconds)
    a1, s1 = agentd_attempts(d), autossh.starts()
    sshd.start()
    back = time.monotonic()
    restored = {}
    deadline = back + 900
    while len(restored) < 2 and time.monotonic() < deadline:
        for name, port in (("agentd", a_port), ("autossh", s_port)):
            if name not in restored and carries(port, backend.token):
                restored[name] = time.monotonic() - back
        time.sleep(0.02)
    return {"agentd": restored.get("agentd"), "autossh": restored.get("autossh"),
            "agentd_attempts": a1 - a0, "autossh_attempts": s1 - s0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--outages", default="1,5,30")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--long", type=int, default=120, help="one extra outage of this length (0: none)")
    ap.add_argument("--settle", type=float, default=5, help="seconds up before each outage")
    ap.add_argument("--mode", choices=("fresh", "sequence"), default="fresh")
    args = ap.parse_args()
    if not shutil.which("autossh"):
        sys.exit("autossh is not installed (apt-get install autossh)")

    # SIGTERM unwinds through the finally below, so nothing is left running.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    tmp = tempfile.mkdtemp(prefix="agentd-bench-tunnel.")
    sshd = Sshd(pathlib.Path(tmp) / "sshd").start()
    backend = Backend()
    a_port, s_port = free_port(), free_port()
    body = """tunnel:
  - name: bench
    destination: %s
    remote_forwards: ["127.0.0.1:%d:127.0.0.1:%d"]
    identity: %s
    known_hosts: %s
    keepalive: { interval: %ds, count: %d }
""" % (sshd.destination, a_port, backend.port, sshd.identity, sshd.known_hosts, KEEPALIVE[0],
       KEEPALIVE[1])
    pair = []
    results = {}

    def start_pair(n):
        d = Agentd(pathlib.Path(tmp) / ("agentd%d" % n), body, core={"log_level": "info"})
        pair[:] = [d, None]
        d.start()
        pair[1] = Autossh(pathlib.Path(tmp) / ("agentd%d" % n), sshd, s_port, backend.port)

    def stop_pair():
        d, autossh = pair
        if autossh:
            autossh.close()
        d.stop()
        d.cleanup()
        pair[:] = []

    try:
        plan = [int(x) for x in args.outages.split(",") if x] * args.repeat
        plan.sort()
        if args.long:
            plan.append(args.long)
        for n, secs in enumerate(plan):
            if not pair:
                start_pair(n)
            r = one_outage(sshd, pair[0], pair[1], backend, (a_port, s_port), secs, args.settle)
            if args.mode == "fresh":
                stop_pair()
            results.setdefault(secs, []).append(r)
            print("outage %4ds: restore agentd %s s, autossh %s s; attempts during outage agentd %d, autossh %d"
                  % (secs, fmt(r["agentd"]), fmt(r["autossh"]), r["agentd_attempts"], r["autossh_attempts"]),
                  flush=True)
    finally:
        if pair:
            stop_pair()
        sshd.kill()
        backend.close()

    print()
    print("| outage | runs | agentd restore (median, max) | autossh restore (median, max) | autossh/agentd | attempts during outage agentd / autossh (median) |")
    print("|---|---|---|---|---|---|")
    for secs in sorted(results):
        rs = results[secs]
        a = [r["agentd"] for r in rs if r["agentd"] is not None]
        s = [r["autossh"] for r in rs if r["autossh"] is not None]
        am, sm = (statistics.median(a) if a else None), (statistics.median(s) if s else None)
        ratio = "%.1fx" % (sm / am) if am and sm else "-"
        print("| %d s | %d | %s s (%s) | %s s (%s) | %s | %s / %s |" % (
            secs, len(rs), fmt(am), fmt(max(a) if a else None), fmt(sm), fmt(max(s) if s else None), ratio,
            fmt0(statistics.median(r["agentd_attempts"] for r in rs)),
            fmt0(statistics.median(r["autossh_attempts"] for r in rs))))


def fmt(v):
    return "n/a" if v is None else "%.2f" % v


def fmt0(v):
    return "%g" % v


if __name__ == "__main__":
    main()

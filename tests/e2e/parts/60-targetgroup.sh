# e2e part: an ELBv2 emulator on the shared loopback with one target group
# whose health check (like an ALB's) asks agentd's health endpoint. agentd
# must join the group once healthy, and on stop deregister and wait for the
# drain before it exits. Needs the health (10) and imds (20) parts.
e2e_has_plugin targetgroup || return 0
[ -n "${E2E_INSTANCE_ID:-}" ] || { say "part 60-targetgroup: needs the imds part"; return 0; }
ELB_PORT=$(e2e_port)
e2e_bg elbv2 "$PY" "$SRC/tests/emulators/elbv2.py" --host 127.0.0.1 --port "$ELB_PORT" --region "$E2E_REGION"
e2e_wait_port "$ELB_PORT"
"$PY" - "$ELB_PORT" "$HEALTH_PORT" "$E2E_INSTANCE_ID" <<'PY' || { say "FAIL: setting up the ELBv2 emulator"; exit 1; }
import json, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
def post(path, obj):
    req = urllib.request.Request(base + path, data=json.dumps(obj).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()
post("/admin/target-groups", {"name": "e2e-web", "port": 8000, "deregistration_delay": 3,
     "health_check": {"port": sys.argv[2], "path": "/health", "interval": 2, "timeout": 1,
                      "healthy": 2, "unhealthy": 2}})
post("/admin/instances", {sys.argv[3]: "127.0.0.1"})
PY
e2e_config "targetgroup:
  groups:
    - name: e2e-web
      port: 8000
  join_when: healthy
  poll_interval: 30s
  endpoint: http://127.0.0.1:$ELB_PORT"

# The instance's target in the group, as the load balancer sees it: its
# state, or "absent".
tg_target_state() {
    curl -fsS --max-time 5 "http://127.0.0.1:$ELB_PORT/admin/state" | "$PY" -c '
import json, sys
s = json.load(sys.stdin)
t = [t for g in s["groups"] for t in g["targets"] if t["id"] == sys.argv[1]]
print(t[0]["state"] if t else "absent")' "$E2E_INSTANCE_ID"
}
export -f tg_target_state
export ELB_PORT E2E_INSTANCE_ID

targetgroup_check() {
    check "the instance joined its target group and the load balancer sees it healthy" \
        bash -c 'wait_until 60 bash -c "[ \"\$(tg_target_state)\" = healthy ]"'
}
targetgroup_stop_check() {
    check "stop deregistered the instance and waited for the drain before exiting" \
        bash -c 's=$(tg_target_state); [ "$s" = absent ] || { echo "target state right after stop: $s"; exit 1; }
            curl -fsS "http://127.0.0.1:$ELB_PORT/admin/state" | grep -q DeregisterTargets'
}

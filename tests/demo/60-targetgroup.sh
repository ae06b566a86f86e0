# Demo part of the targetgroup plugin: an ELBv2 emulator on loopback with one
# target group, "demo-web", whose health check (like an ALB's) calls the
# health plugin's endpoint. The instance joins once its checks pass and leaves,
# drained, on Ctrl-C. Needs the health (30) and imds (20) parts before it.
ELB_PORT=$(demo_port)
demo_bg elbv2 /usr/bin/python3 "$SRC/tests/emulators/elbv2.py" --host 127.0.0.1 --port "$ELB_PORT" \
    --region eu-west-1
demo_wait_port "$ELB_PORT"
/usr/bin/python3 - "$ELB_PORT" "${HEALTH_DEMO_PORT:?the health demo part must run first}" <<'PY'
import json, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
def post(path, obj):
    req = urllib.request.Request(base + path, data=json.dumps(obj).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()
post("/admin/target-groups", {"name": "demo-web", "port": 8000, "deregistration_delay": 10,
     "health_check": {"port": sys.argv[2], "path": "/health", "interval": 5, "timeout": 2,
                      "healthy": 2, "unhealthy": 2}})
post("/admin/instances", {"i-0de30a9e4f5d1b2c3": "127.0.0.1"})
PY
cat >"$DEMO_DIR/conf.d/targetgroup.yaml" <<YAML
targetgroup:
  groups:
    - name: demo-web
      port: 8000
  join_when: healthy
  poll_interval: 30s
  endpoint: http://127.0.0.1:$ELB_PORT
YAML
demo_hint "targetgroup: 'agentctl targetgroup status' shows the instance join demo-web once its checks pass;
  the load balancer's view: curl -s http://127.0.0.1:$ELB_PORT/admin/state | python3 -m json.tool
  'agentctl targetgroup drain' / 'undrain'; a spot notice (above) or Ctrl-C deregisters and drains (10 s delay)."

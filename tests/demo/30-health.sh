# Demo part of the health plugin (sourced by tests/demo/run): a stand-in app
# (python's http.server) that the checks watch over tcp and http, a heartbeat
# file, and an exec check; the endpoint listens on a free loopback port.
# HEALTH_DEMO_PORT is exported for later parts (e.g. a target group emulator
# that health-checks the instance like an ALB).
HEALTH_DEMO_PORT=$(demo_port)
HEALTH_DEMO_APP_PORT=$(demo_port)
export HEALTH_DEMO_PORT
mkdir -p "$DEMO_DIR/health-app/my-devices"
printf '{"status":"ok"}\n' >"$DEMO_DIR/health-app/my-devices/health.json"
touch "$DEMO_DIR/health-app/heartbeat"
demo_bg health-app /usr/bin/python3 -m http.server --bind 127.0.0.1 "$HEALTH_DEMO_APP_PORT" \
    --directory "$DEMO_DIR/health-app"
demo_wait_port "$HEALTH_DEMO_APP_PORT"
cat >"$DEMO_DIR/conf.d/health.yaml" <<YAML
health:
  listen: ["127.0.0.1:$HEALTH_DEMO_PORT"]
  paths: [/health, /my-devices/health.json]
  checks:
    - name: app
      http: http://127.0.0.1:$HEALTH_DEMO_APP_PORT/my-devices/health.json
      expect_body: ok
      interval: 5s
    - name: app-port
      tcp: 127.0.0.1:$HEALTH_DEMO_APP_PORT
      interval: 5s
    - name: heartbeat
      file: $DEMO_DIR/health-app/heartbeat
      max_age: 10m
      interval: 5s
    - name: disk
      exec: [sh, -c, "df -P / | awk 'NR==2 {print \$5\" used\"; exit (\$5+0 > 95)}'"]
      interval: 30s
      rise: 1
      critical: false
YAML
demo_hint "curl -si 'http://127.0.0.1:$HEALTH_DEMO_PORT/health?verbose'   # the health endpoint (also /livez, /readyz, /metrics)"
demo_hint "rm $DEMO_DIR/health-app/heartbeat   # then watch check 'heartbeat' fall to fail (503) after 2 runs"

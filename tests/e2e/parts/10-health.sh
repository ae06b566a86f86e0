# e2e part: the health endpoint, on the loopback the container shares with
# the host, so the host asks it like a load balancer would.
e2e_has_plugin health || return 0
HEALTH_PORT=$(e2e_port)
e2e_config "health:
  listen: [\"127.0.0.1:$HEALTH_PORT\"]
  paths: [/health]"

health_check() {
    check "health answers 200 on 127.0.0.1:$HEALTH_PORT/health" \
        bash -c "wait_until 20 bash -c '[ \"\$(http_status http://127.0.0.1:$HEALTH_PORT/health)\" = 200 ]'"
}
# A reload must apply a changed config: a new path starts answering.
health_reload_prepare() {
    inside sed -i 's|^  paths: \[/health\]$|  paths: [/health, /e2e-reloaded]|' /etc/agentd/agentd.yaml
}
health_reload_check() {
    check "after reload the new health path answers" \
        bash -c "wait_until 20 bash -c '[ \"\$(http_status http://127.0.0.1:$HEALTH_PORT/e2e-reloaded)\" = 200 ]'"
}
health_stop_check() {
    check "after stop nothing listens on the health port" \
        bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$HEALTH_PORT) 2>/dev/null"
}

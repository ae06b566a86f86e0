# e2e part: a log file inside the container shipped to the CloudWatch Logs
# emulator on the shared loopback. Each check writes a new line and waits for
# it to arrive; at the end, every line written arrived (none lost across the
# reload, the watchdog kill, the upgrade and the stop).
e2e_has_plugin logs || return 0
[ -n "${E2E_REGION:-}" ] || { say "part 70-logs: needs the imds part (region, credentials)"; return 0; }
CW_PORT=$(e2e_port)
e2e_bg cwlogs "$PY" "$SRC/tests/emulators/cwlogs.py" --host 127.0.0.1 --port "$CW_PORT"
e2e_wait_port "$CW_PORT"
# The app's log exists before agentd starts (start_at: beginning ships it).
e2e_file /var/log/e2e-app/app.log "e2e: first line, written by cloud-init
"
e2e_config "logs:
  - name: e2e-app
    files: [/var/log/e2e-app/*.log]
    rescan_interval: 1s
    cloudwatch:
      group: e2e-group
      stream: \"{instance_id}\"
      endpoint: http://127.0.0.1:$CW_PORT
      flush_interval: 200ms"
LOGS_N=0
export CW_PORT

logs_arrived() { # logs_arrived LINE: the line is among the stored events
    curl -fsS --max-time 5 "http://127.0.0.1:$CW_PORT/_admin/events?group=e2e-group" |
        "$PY" -c 'import json,sys; e=json.load(sys.stdin)["events"]; sys.exit(0 if any(x["message"]==sys.argv[1] for x in e) else 1)' "$1"
}
export -f logs_arrived

logs_check() {
    if [ $LOGS_N = 0 ]; then
        check "the line cloud-init wrote arrived in CloudWatch Logs" \
            wait_until 30 logs_arrived "e2e: first line, written by cloud-init"
    fi
    LOGS_N=$((LOGS_N + 1))
    local line="e2e: line $LOGS_N $(date +%s%N)"
    inside sh -c "echo '$line' >>/var/log/e2e-app/app.log"
    echo "$line" >>"$WORK/logs-written"
    check "a new log line arrives in CloudWatch Logs ($LOGS_N)" wait_until 30 logs_arrived "$line"
}
logs_stop_check() {
    check "no log line was lost" bash -c 'while IFS= read -r l; do logs_arrived "$l" || { echo "lost: $l"; exit 1; }; done <"$WORK/logs-written"'
}

# Demo part of the logs plugin (sourced by tests/demo/run): a CloudWatch Logs
# emulator and S3 (s3rver) on loopback, a log file written once a second, and
# two pipelines shipping it to both.
LOGS_CWL_PORT=$(demo_port)
demo_bg cwlogs /usr/bin/python3 "$SRC/tests/emulators/cwlogs.py" --host 127.0.0.1 --port "$LOGS_CWL_PORT" --quiet
demo_wait_port "$LOGS_CWL_PORT"
# Every emulator here accepts a key whose secret is derive_secret(key id);
# s3rver is told the pair explicitly.
if [ -z "${AWS_ACCESS_KEY_ID:-}" ]; then
    export AWS_ACCESS_KEY_ID=AKIDDEMOLOGS0001
    AWS_SECRET_ACCESS_KEY=$(/usr/bin/python3 -c "import sys; sys.path.insert(0, '$SRC/tests/emulators'); import emulib; print(emulib.derive_secret('$AWS_ACCESS_KEY_ID'))")
    export AWS_SECRET_ACCESS_KEY
fi
export AWS_REGION=${AWS_REGION:-us-east-1}

demo_bg logs-writer bash -c 'i=0; while :; do i=$((i+1)); echo "$(date -u +%FT%TZ) INFO demo request $i served in $((RANDOM % 90 + 10)) ms"; sleep 1; done >>"$DEMO_DIR/app.log"'

cat >"$DEMO_DIR/conf.d/40-logs.yaml" <<YAML
logs:
  - name: demo-cloudwatch
    files: [$DEMO_DIR/app.log]
    cloudwatch:
      group: demo-app
      stream: demo-node
      retention: 7d
      flush_interval: 2s
      endpoint: "http://127.0.0.1:$LOGS_CWL_PORT"
YAML
demo_hint "logs → CloudWatch: curl -s 'http://127.0.0.1:$LOGS_CWL_PORT/_admin/events?group=demo-app' | /usr/bin/python3 -m json.tool | tail -20"
demo_hint "logs: $BUILD/agentd/agentctl/agentctl --socket $DEMO_DIR/control.sock logs status"

if command -v node >/dev/null && [ -d "$SRC/tests/.cache/s3rver/node_modules/@20minutes/s3rver" ]; then
    LOGS_S3_PORT=$(demo_port)
    demo_bg s3rver node "$SRC/tests/emulators/s3rver.js" --host 127.0.0.1 --port "$LOGS_S3_PORT" \
        --directory "$DEMO_DIR/s3data" --bucket demo-logs --key "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
    demo_wait_port "$LOGS_S3_PORT"
    cat >>"$DEMO_DIR/conf.d/40-logs.yaml" <<YAML
  - name: demo-s3
    files: [$DEMO_DIR/app.log]
    s3:
      bucket: demo-logs
      key: "log/demo-app/demo-node/%Y/%m/%d/%H%M%S-{seq}.log.gz"
      rotate: {size: 1MiB, age: 30s}
      endpoint: "http://127.0.0.1:$LOGS_S3_PORT"
YAML
    demo_hint "logs → S3 (an object every 30 s): find $DEMO_DIR/s3data/demo-logs -name '*.log.gz._S3rver_object' | xargs -r zcat | tail"
else
    demo_hint "logs → S3 skipped: run tests/setup/logs.sh (needs node and npm) for s3rver"
fi

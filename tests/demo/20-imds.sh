# Demo part: an IMDS emulator on loopback that looks like a spot instance in
# a CloudFormation stack, and the imds plugin pointed at it. Sourced by
# tests/demo/run (bash) with DEMO_DIR, SRC, BUILD, demo_port, demo_bg,
# demo_hint available.
IMDS_PORT=$(demo_port)
demo_bg imds /usr/bin/python3 "$SRC/tests/emulators/imds.py" --host 127.0.0.1 --port "$IMDS_PORT" \
    --instance-id i-0de30a9e4f5d1b2c3 --instance-type c7g.large --region eu-west-1 \
    --az eu-west-1b --account-id 123456789012 --public-ipv4 203.0.113.10 \
    --role agentd-demo-role --cred-ttl 900 \
    --tag Name=media-node-1 --tag aws:cloudformation:stack-name=demo-stack --tag env=demo
demo_wait_port "$IMDS_PORT"
# The SDKs' variable, so the AWS core and anything else reading IMDS agree;
# the plugin's endpoint option says the same explicitly.
export AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$IMDS_PORT"
export AWS_EC2_METADATA_DISABLED=false
mkdir -p "$DEMO_DIR/conf.d"
cat > "$DEMO_DIR/conf.d/imds.yaml" <<YAML
imds:
  endpoint: http://127.0.0.1:$IMDS_PORT
  poll_interval: 5s
YAML
demo_hint "imds: '$BUILD/agentd/agentctl/agentctl --socket $DEMO_DIR/control.sock imds show' shows the instance (i-0de30a9e4f5d1b2c3, tags, role). Inject a spot interruption notice with:
    curl -X POST http://127.0.0.1:$IMDS_PORT/admin/spot -d '{\"action\":\"terminate\"}'
  within 5 s agentd logs it at warning, publishes instance.interruption, and 'agentctl imds show' lists it.
  Also: /admin/rebalance, /admin/maintenance, /admin/lifecycle -d '{\"state\":\"Terminated\"}', /admin/outage -d '{\"seconds\":20}'."

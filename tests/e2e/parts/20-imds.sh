# e2e part: instance metadata and role credentials from the IMDS emulator on
# the shared loopback, as on a spot instance in a CloudFormation stack.
e2e_has_plugin imds || return 0
IMDS_PORT=$(e2e_port)
E2E_INSTANCE_ID=i-0e2e5eed0000000a1
E2E_REGION=eu-west-1
e2e_bg imds "$PY" "$SRC/tests/emulators/imds.py" --host 127.0.0.1 --port "$IMDS_PORT" \
    --instance-id "$E2E_INSTANCE_ID" --region "$E2E_REGION" --az "${E2E_REGION}b" \
    --role agentd-e2e-role --tag Name=e2e-node --tag aws:cloudformation:stack-name=e2e-stack
e2e_wait_port "$IMDS_PORT"
# The SDKs' variables, so the AWS core and the plugin agree (the later
# Environment= wins over the runner's AWS_EC2_METADATA_DISABLED=true).
e2e_env AWS_EC2_METADATA_DISABLED=false
e2e_env "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$IMDS_PORT"
e2e_config "imds:
  endpoint: http://127.0.0.1:$IMDS_PORT
  poll_interval: 5s"

imds_check() {
    check "agentctl imds show has the instance id from IMDS" \
        bash -c "wait_until 20 bash -c 'inside agentctl imds show | grep -q $E2E_INSTANCE_ID'"
}

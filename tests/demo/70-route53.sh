# Demo part of the route53 plugin: a Route 53 emulator on loopback with one
# hosted zone, demo.example.com. Once the health checks pass the instance
# publishes a weighted A record {tag:Name}.demo.example.com -> {local_ipv4}
# and a TXT record naming the instance; Ctrl-C deletes both before agentd
# exits (after the target group drained: conf.d/route53.yaml sorts before
# targetgroup.yaml, and agentd stops plugins in reverse order).
R53_PORT=$(demo_port)
demo_bg route53 /usr/bin/python3 "$SRC/tests/emulators/route53.py" --host 127.0.0.1 --port "$R53_PORT" \
    --insync-delay 3 --zone demo.example.com=ZDEMO0EXAMPLE0ZONE
demo_wait_port "$R53_PORT"
cat >"$DEMO_DIR/conf.d/route53.yaml" <<YAML
route53:
  records:
    - zone: demo.example.com
      name: "{tag:Name}.demo.example.com"
      type: A
      value: "{local_ipv4}"
      ttl: 60
      weight: 10
    - zone_id: ZDEMO0EXAMPLE0ZONE
      name: "{tag:Name}.demo.example.com"
      type: TXT
      value: "instance={instance_id}"
      ttl: 300
  recheck_interval: 5m
  endpoint: http://127.0.0.1:$R53_PORT
YAML
demo_hint "route53: 'agentctl route53 status' shows the records written, PENDING then INSYNC;
  the zone as Route 53 holds it: curl -s http://127.0.0.1:$R53_PORT/admin/state | python3 -m json.tool
  Ctrl-C (or a spot notice) deletes the records with exactly the values written."

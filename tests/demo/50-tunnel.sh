# shellcheck shell=bash
# Demo part of the tunnel plugin (sourced by tests/demo/run): an OpenSSH sshd
# on a free loopback port with its own host key and authorized key, a small
# web server, and a reverse tunnel through the sshd that publishes the web
# server on another port, as a vendor would reach a private service.
TUNNEL_DIR=$DEMO_DIR/tunnel
mkdir -p "$TUNNEL_DIR/www"
# sshd insists on its privilege separation directory when run as root.
[ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -C agentd-demo-host -f "$TUNNEL_DIR/host_key" </dev/null
ssh-keygen -q -t ed25519 -N '' -C agentd-demo-tunnel -f "$TUNNEL_DIR/id_tunnel" </dev/null
cp "$TUNNEL_DIR/id_tunnel.pub" "$TUNNEL_DIR/authorized_keys"
TUNNEL_SSHD_PORT=$(demo_port)
TUNNEL_WEB_PORT=$(demo_port)
TUNNEL_PUBLIC_PORT=$(demo_port)
# The pinned host key: StrictHostKeyChecking=yes needs it before the first
# connection.
printf '[127.0.0.1]:%s %s\n' "$TUNNEL_SSHD_PORT" "$(cut -d' ' -f1,2 "$TUNNEL_DIR/host_key.pub")" \
    >"$TUNNEL_DIR/known_hosts"
cat >"$TUNNEL_DIR/sshd_config" <<CONF
Port $TUNNEL_SSHD_PORT
ListenAddress 127.0.0.1
HostKey $TUNNEL_DIR/host_key
AuthorizedKeysFile $TUNNEL_DIR/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PidFile none
ClientAliveInterval 5
ClientAliveCountMax 2
CONF
echo "hello from behind the tunnel ($(hostname))" >"$TUNNEL_DIR/www/index.html"
demo_bg tunnel-sshd /usr/sbin/sshd -D -e -f "$TUNNEL_DIR/sshd_config"
demo_bg tunnel-web /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$TUNNEL_DIR/www" "$TUNNEL_WEB_PORT"
demo_wait_port "$TUNNEL_SSHD_PORT"
demo_wait_port "$TUNNEL_WEB_PORT"
cat >"$DEMO_DIR/conf.d/tunnel.yaml" <<CONF
# A reverse tunnel: the sshd listens on 127.0.0.1:$TUNNEL_PUBLIC_PORT and
# forwards to the web server on 127.0.0.1:$TUNNEL_WEB_PORT, through ssh.
tunnel:
  - name: demo-web
    destination: $(id -un)@127.0.0.1:$TUNNEL_SSHD_PORT
    remote_forwards: ["127.0.0.1:$TUNNEL_PUBLIC_PORT:127.0.0.1:$TUNNEL_WEB_PORT"]
    identity: $TUNNEL_DIR/id_tunnel
    known_hosts: $TUNNEL_DIR/known_hosts
    keepalive: { interval: 5s, count: 2 }
CONF
demo_hint "tunnel: curl http://127.0.0.1:$TUNNEL_PUBLIC_PORT/   (sshd :$TUNNEL_SSHD_PORT -> reverse tunnel -> web :$TUNNEL_WEB_PORT)"
demo_hint "tunnel: $BUILD/agentd/agentctl/agentctl --socket $DEMO_DIR/control.sock tunnel status  (and: tunnel restart demo-web)"

# e2e part: a reverse SSH tunnel from agentd inside the container to an sshd
# on the shared loopback, publishing agentd's own health endpoint on another
# port, as a vendor would reach a private service. The key and the pinned
# known_hosts are written by cloud-init before the package exists; the
# package's tmpfiles entry must hand them to group agentd. Needs the health
# part (10).
e2e_has_plugin tunnel || return 0
[ -n "${HEALTH_PORT:-}" ] || { say "part 50-tunnel: needs the health part"; return 0; }
command -v sshd >/dev/null 2>&1 || command -v /usr/sbin/sshd >/dev/null 2>&1 ||
    { say "part 50-tunnel: openssh-server is not installed, part not run"; return 0; }
TUNNEL_DIR=$WORK/tunnel
mkdir -p "$TUNNEL_DIR" /run/sshd
ssh-keygen -q -t ed25519 -N '' -C agentd-e2e-host -f "$TUNNEL_DIR/host_key" </dev/null
ssh-keygen -q -t ed25519 -N '' -C agentd-e2e-tunnel -f "$TUNNEL_DIR/id_tunnel" </dev/null
cp "$TUNNEL_DIR/id_tunnel.pub" "$TUNNEL_DIR/authorized_keys"
TUNNEL_SSHD_PORT=$(e2e_port)
TUNNEL_PUBLIC_PORT=$(e2e_port)
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
e2e_bg tunnel-sshd /usr/sbin/sshd -D -e -f "$TUNNEL_DIR/sshd_config"
e2e_wait_port "$TUNNEL_SSHD_PORT"
e2e_file /etc/agentd/keys/e2e "$(cat "$TUNNEL_DIR/id_tunnel")
"
e2e_file /etc/agentd/keys/e2e.known_hosts \
    "$(printf '[127.0.0.1]:%s %s' "$TUNNEL_SSHD_PORT" "$(cut -d' ' -f1,2 "$TUNNEL_DIR/host_key.pub")")
"
e2e_config "tunnel:
  - name: e2e
    destination: $(id -un)@127.0.0.1:$TUNNEL_SSHD_PORT
    remote_forwards: [\"127.0.0.1:$TUNNEL_PUBLIC_PORT:127.0.0.1:$HEALTH_PORT\"]
    identity: /etc/agentd/keys/e2e
    known_hosts: /etc/agentd/keys/e2e.known_hosts
    keepalive: { interval: 5s, count: 2 }"
export TUNNEL_PUBLIC_PORT

tunnel_checked=0
tunnel_check() {
    if [ $tunnel_checked = 0 ]; then
        tunnel_checked=1
        check "the tunnel key written before the package is root:agentd 0640 (tmpfiles)" \
            bash -c '[ "$(inside stat -c "%U:%G %a" /etc/agentd/keys/e2e)" = "root:agentd 640" ]'
    fi
    check "the reverse tunnel publishes the health endpoint on 127.0.0.1:$TUNNEL_PUBLIC_PORT" \
        bash -c 'wait_until 30 bash -c "[ \"\$(http_status http://127.0.0.1:$TUNNEL_PUBLIC_PORT/health)\" = 200 ]"'
}
tunnel_stop_check() {
    check "after stop the tunnel is closed (ssh ended with agentd)" \
        bash -c 'wait_until 10 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$TUNNEL_PUBLIC_PORT) 2>/dev/null"'
}

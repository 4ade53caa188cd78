#!/usr/bin/env bash
# The main job, step by step: two network namespaces joined by a veth pair,
# a WireGuard tunnel between two wgd daemons, a ping and a short iperf3 run
# across it, `wgd show` on both sides, then everything taken down again
# (also on Ctrl-C). Addresses come from 198.18.0.0/15 and fd00::/8 only.
set -euo pipefail
cd "$(dirname "$0")/.."
WGD=${WGD:-$PWD/bin/wgd}
A=wgd-demo-a
B=wgd-demo-b
umask 077
tmp=$(mktemp -d)

bold=$(tput bold 2>/dev/null || true); reset=$(tput sgr0 2>/dev/null || true)
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
show() { printf '$ %s\n' "$*"; "$@"; }

cleanup() {
  set +e
  step "tear down"
  [ -f "$tmp/wga.conf" ] && ip netns exec $A "$WGD" down "$tmp/wga.conf" 2>/dev/null
  [ -f "$tmp/wgb.conf" ] && ip netns exec $B "$WGD" down "$tmp/wgb.conf" 2>/dev/null
  ip netns pids $B 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del $A 2>/dev/null
  ip netns del $B 2>/dev/null
  rm -rf "$tmp"
  rm -f /run/wgd/wga.lock /run/wgd/wgb.lock # wgd up/down's per-interface locks
  echo "namespaces $A and $B removed"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then echo "make demo needs root (network namespaces, TUN)" >&2; exit 1; fi
ip netns del $A 2>/dev/null || true
ip netns del $B 2>/dev/null || true

step "1. two network namespaces, $A and $B, joined by a veth pair (underlay 198.18.0.0/24)"
show ip netns add $A
show ip netns add $B
show ip link add veth-a netns $A type veth peer name veth-b netns $B
show ip -n $A addr add 198.18.0.1/24 dev veth-a
show ip -n $B addr add 198.18.0.2/24 dev veth-b
for ns in $A $B; do ip -n $ns link set lo up; done
show ip -n $A link set veth-a up
show ip -n $B link set veth-b up

step "2. keys for both sides"
show sh -c "$WGD genkey > $tmp/a.key && $WGD pubkey < $tmp/a.key > $tmp/a.pub"
show sh -c "$WGD genkey > $tmp/b.key && $WGD pubkey < $tmp/b.key > $tmp/b.pub"
echo "a: $(cat $tmp/a.pub)"; echo "b: $(cat $tmp/b.pub)"

step "3. a wg-quick style config for each side (tunnel 198.19.0.0/24, fd00:2::/64)"
# write_conf SIDE N OTHER OTHER_N: the config of side SIDE (tunnel address
# .N) with the other side as its one peer.
write_conf() {
  cat > "$tmp/wg$1.conf" <<CONF
[Interface]
PrivateKey = $(cat "$tmp/$1.key")
Address = 198.19.0.$2/24, fd00:2::$2/64
ListenPort = 51820

[Peer]
PublicKey = $(cat "$tmp/$3.pub")
Endpoint = 198.18.0.$4:51820
AllowedIPs = 198.19.0.$4/32, fd00:2::$4/128
CONF
}
write_conf a 1 b 2
write_conf b 2 a 1
chmod 600 "$tmp"/*.conf
sed 's/^PrivateKey = .*/PrivateKey = (hidden)/' "$tmp/wga.conf"

step "4. wgd up on both sides (daemon, keys and peers over the UAPI, addresses, MTU, routes)"
show ip netns exec $A "$WGD" up "$tmp/wga.conf"
show ip netns exec $B "$WGD" up "$tmp/wgb.conf"

step "5. ping across the tunnel, IPv4 and IPv6"
show ip netns exec $A ping -c 3 -i 0.2 198.19.0.2
show ip netns exec $A ping -6 -c 3 -i 0.2 fd00:2::2

step "6. a 3-second iperf3 TCP run across the tunnel"
ip netns exec $B iperf3 -s -1 -B 198.19.0.2 >/dev/null 2>&1 &
sleep 0.5
show ip netns exec $A iperf3 -c 198.19.0.2 -t 3 -f m

step "7. wgd show on both sides"
show ip netns exec $A "$WGD" show wga
show ip netns exec $B "$WGD" show wgb

step "8. wgd down"
show ip netns exec $A "$WGD" down "$tmp/wga.conf"
show ip netns exec $B "$WGD" down "$tmp/wgb.conf"
rm -f "$tmp/wga.conf" "$tmp/wgb.conf"

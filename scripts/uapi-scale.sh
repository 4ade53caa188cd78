#!/usr/bin/env bash
# UAPI scale benchmark (issue 6): configure N peers with `wg setconf` on a
# daemon that owns a real TUN in a throwaway network namespace, then report
# the setconf time, the daemon's RSS (VmRSS, VmHWM), the time of
# `wg show IF dump`, and the daemon's CPU time while idle. Each peer has one
# /32 (198.18.0.0/15, then /128s from fd00::/8 past 131072 peers); every
# second peer has an endpoint in 198.18.0.0/15. No keepalive is set and the
# link stays down, so nothing is ever sent: the endpoints are never
# contacted. Every command is bounded in time and everything started is
# taken down on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<EOF
usage: $0 [options]            (as root)
  --sizes LIST     peer counts, comma-separated (default 1000,10000,100000,1000000)
  --impls LIST     wgd,wireguard-go (default both; wireguard-go skips N > 65536,
                   its MaxPeers)
  --idle S         seconds of idle CPU measurement (default 10)
  --timeout S      bound on each wg setconf / wg show (default 600)
  --wgd PATH       wgd binary (default bin/wgd, built if missing)
  --wireguard-go PATH  (default \$WIREGUARD_GO or \$(go env GOPATH)/bin/wireguard)
  --profile DIR    write a CPU profile of each wgd run to DIR (WGD_CPUPROFILE)
  --dumps K        time K dumps and K raw gets, report the fastest (default 3)
EOF
}

SIZES=1000,10000,100000,1000000 IMPLS=wgd,wireguard-go IDLE=10 TMO=600 DUMPS=3
WGD=$PWD/bin/wgd PROFILE=
WGGO=${WIREGUARD_GO:-$(go env GOPATH 2>/dev/null)/bin/wireguard}
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --impls) IMPLS=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --timeout) TMO=$2; shift 2 ;;
    --wgd) WGD=$2; shift 2 ;;
    --wireguard-go) WGGO=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --dumps) DUMPS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "uapi-scale: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then echo "uapi-scale: needs root (netns, TUN)" >&2; exit 1; fi
for tool in ip wg go timeout python3; do
  command -v $tool >/dev/null || { echo "uapi-scale: $tool not found (make deps)" >&2; exit 1; }
done
[ -x "$WGD" ] || go build -o "$WGD" ./cmd/wgd

TMP=$(mktemp -d /tmp/uapi-scale.XXXXXX)
NS=wgds-$$
IFACE=wgds$$
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && sleep 0.5
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
  rm -f "/var/run/wireguard/$IFACE.sock"
  pkill -f "/var/run/wireguard/wgdsf$$.sock" 2>/dev/null || true
  rm -f "/var/run/wireguard/wgdsf$$.sock"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# gen writes a setconf file with N peers: random 32-byte public keys (wg
# does not check that a key is a curve point; our engine computes the
# static-static DH with each one, as it would for a real key).
cat >"$TMP/gen.go" <<'EOF'
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	var priv [32]byte
	rand.Read(priv[:])
	fmt.Fprintf(w, "[Interface]\nPrivateKey = %s\nListenPort = 0\n", base64.StdEncoding.EncodeToString(priv[:]))
	var k [32]byte
	for i := 0; i < n; i++ {
		rand.Read(k[:])
		fmt.Fprintf(w, "\n[Peer]\nPublicKey = %s\n", base64.StdEncoding.EncodeToString(k[:]))
		if i < 1<<17 {
			fmt.Fprintf(w, "AllowedIPs = 198.%d.%d.%d/32\n", 18+i>>16, i>>8&255, i&255)
		} else {
			fmt.Fprintf(w, "AllowedIPs = fd00::%x:%x/128\n", i>>16, i&0xffff)
		}
		if i%2 == 0 {
			j := i % (1 << 17)
			fmt.Fprintf(w, "Endpoint = 198.%d.%d.%d:51820\n", 18+j>>16, j>>8&255, j&255)
		}
	}
}
EOF

# rawget prints the milliseconds a bare `get=1` takes on the UAPI socket,
# up to the end of the reply (the daemon's side of a dump, without wg's
# parsing and printing).
# With a file argument it also saves the reply there.
rawget() { # [file]
  timeout "$TMO" python3 - "/var/run/wireguard/$IFACE.sock" "${1:-}" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
t = time.monotonic_ns()
s.sendall(b"get=1\n\n")
tail = b""
parts = []
while not tail.endswith(b"\n\n") or b"errno=" not in tail:
    b = s.recv(1 << 20)
    if not b:
        break
    if sys.argv[2]:
        parts.append(b)
    tail = (tail + b)[-64:]
print((time.monotonic_ns() - t) // 1000000)
if sys.argv[2]:
    with open(sys.argv[2], "wb") as f:
        f.write(b"".join(parts))
PY
}

# fastest_dump prints the milliseconds of the fastest of $DUMPS runs of
# `wg show IFNAME dump`.
fastest_dump() { # ifname
  local best= d t
  for _ in $(seq "$DUMPS"); do
    t=$(now_ns)
    timeout "$TMO" wg show "$1" dump >/dev/null
    d=$(ms_since "$t")
    [ -z "$best" ] || [ "$d" -lt "$best" ] && best=$d
  done
  echo "$best"
}

# floor_dump prints the fastest of $DUMPS `wg show dump` runs against a
# stand-in UAPI server that answers every get=1 with a reply recorded from
# the daemon, held in memory and written at once: the cost of the wg binary
# itself (connect, parse, print) with no daemon work at all, the floor any
# daemon's dump time sits on.
floor_dump() { # reply-file
  local name=wgdsf$$ sock=/var/run/wireguard/wgdsf$$.sock fpid best
  timeout "$TMO" python3 - "$sock" "$1" <<'PY' &
import os, socket, sys
sock, reply = sys.argv[1], open(sys.argv[2], "rb").read()
try:
    os.unlink(sock)
except FileNotFoundError:
    pass
old = os.umask(0o077)
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(sock)
os.umask(old)
l.listen(8)
while True:
    c, _ = l.accept()
    buf = b""
    while b"\n\n" not in buf:
        b = c.recv(4096)
        if not b:
            break
        buf += b
    if buf.startswith(b"get=1\n"):
        c.sendall(reply)
    c.close()
PY
  fpid=$!
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  best=$(fastest_dump "$name")
  kill "$fpid" 2>/dev/null || true
  wait "$fpid" 2>/dev/null || true
  rm -f "$sock"
  echo "$best"
}

now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
kib() { awk -v k="$1" '$1==k":"{print $2}' "/proc/$PID/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$PID/stat"; }

# start IMPL runs the daemon in the foreground inside $NS and waits for its
# UAPI socket.
start() {
  ip netns add "$NS"
  local env=()
  if [ "$1" = wgd ]; then
    [ -n "$PROFILE" ] && env=(WGD_CPUPROFILE="$PROFILE/wgd-$N.pprof")
    env "${env[@]}" LOG_LEVEL=error ip netns exec "$NS" "$WGD" -f "$IFACE" 2>"$TMP/daemon.log" &
  else
    LOG_LEVEL=error ip netns exec "$NS" "$WGGO" -f "$IFACE" 2>"$TMP/daemon.log" &
  fi
  PID=$!
  for _ in $(seq 100); do
    [ -S "/var/run/wireguard/$IFACE.sock" ] && return 0
    sleep 0.1
  done
  echo "uapi-scale: $1 did not open its UAPI socket" >&2
  cat "$TMP/daemon.log" >&2
  exit 1
}

stop() {
  kill "$PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
  ip netns del "$NS" 2>/dev/null || true
  rm -f "/var/run/wireguard/$IFACE.sock"
}

HZ=$(getconf CLK_TCK)
printf '%-13s %8s %10s %9s %9s %9s %10s %9s %9s %9s %9s %11s %10s\n' impl peers setconf_ms us/peer rss_MiB hwm_MiB KiB/peer dump_ms us/peer net_us/p get_ms idle_cpu_ms wg_floor/p
IFS=, read -r -a sizes <<<"$SIZES"
IFS=, read -r -a impls <<<"$IMPLS"
for N in "${sizes[@]}"; do
  gen_start=$(now_ns)
  (cd "$TMP" && go run gen.go "$N") >"$TMP/peers.conf"
  echo "# generated $N peers in $(ms_since "$gen_start") ms" >&2
  for impl in "${impls[@]}"; do
    if [ "$impl" = wireguard-go ] && [ "$N" -gt 65536 ]; then
      printf '%-13s %8s %10s\n' "$impl" "$N" "n/a (MaxPeers 65536)"
      continue
    fi
    if [ "$impl" = wireguard-go ] && [ ! -x "$WGGO" ]; then
      echo "# wireguard-go not found at $WGGO (make tools)" >&2; continue
    fi
    start "$impl"
    rss0=$(kib VmRSS)
    # The fixed cost of one `wg show` (process start, connect, an empty
    # reply), so that the per-peer cost can be given without it too.
    empty_ms=$(fastest_dump "$IFACE")
    t=$(now_ns)
    if ! timeout "$TMO" ip netns exec "$NS" wg setconf "$IFACE" "$TMP/peers.conf" 2>"$TMP/setconf.err"; then
      printf '%-13s %8s %10s\n' "$impl" "$N" "setconf failed: $(head -c 200 "$TMP/setconf.err" | tr '\n' ' ')"
      stop; continue
    fi
    set_ms=$(ms_since "$t")
    dump_ms= get_ms=
    for _ in $(seq "$DUMPS"); do
      t=$(now_ns)
      timeout "$TMO" wg show "$IFACE" dump >"$TMP/dump"
      d=$(ms_since "$t")
      [ -z "$dump_ms" ] || [ "$d" -lt "$dump_ms" ] && dump_ms=$d
      g=$(rawget "$TMP/reply")
      [ -z "$get_ms" ] || [ "$g" -lt "$get_ms" ] && get_ms=$g
    done
    floor_ms=$(floor_dump "$TMP/reply")
    lines=$(( $(wc -l <"$TMP/dump") - 1 ))
    [ "$lines" -eq "$N" ] || echo "# $impl: dump has $lines peers, want $N" >&2
    sleep 2
    c0=$(cpu_ticks)
    sleep "$IDLE"
    idle_ms=$(( ($(cpu_ticks) - c0) * 1000 / HZ ))
    rss=$(kib VmRSS) hwm=$(kib VmHWM)
    awk -v impl="$impl" -v n="$N" -v s="$set_ms" -v r="$rss" -v r0="$rss0" -v h="$hwm" -v d="$dump_ms" -v e="$empty_ms" -v g="$get_ms" -v i="$idle_ms" -v f="$floor_ms" 'BEGIN {
      printf "%-13s %8d %10d %9.1f %9.1f %9.1f %10.2f %9d %9.2f %9.2f %9d %11d %10.2f\n",
        impl, n, s, s*1000/n, r/1024, h/1024, (r-r0)/n, d, d*1000/n, (d-e)*1000/n, g, i, f*1000/n }'
    stop
  done
done

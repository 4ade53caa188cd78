#!/usr/bin/env bash
# The tunnel benchmark users can rerun: plain veth, wgd and wireguard-go side
# by side on the same machine, in the same run, interleaved and repeated so
# that drift in the machine's load hits every contender alike. Two network
# namespaces joined by a veth pair (underlay 198.18.0.0/24, tunnel
# 198.19.0.0/24, tunnel MTU 1420); iperf3 server in B, client in A. Every
# command is bounded in time, the whole run is bounded too, and everything
# the script started is taken down again on any exit.
#
# Raw results go to a temporary directory; scripts/benchchart turns them
# into the table (stdout), the JSON (--out) and the SVG chart (--svg).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<EOF
usage: $0 [options]            (as root)
  --rounds N       rounds, each running every contender once (default 3)
  --time S         seconds per iperf3 run (default 5)
  --only LIST      contenders, comma-separated: veth,wgd,wireguard-go (default all)
  --out FILE       JSON results (default bench-results.json)
  --svg FILE       SVG chart (default: --out with .svg)
  --max-total S    abort when the run takes longer than S seconds (default 1800)
  --keep-raw DIR   keep the raw iperf3/ping/proc output in DIR
  --wgd PATH       wgd binary (default bin/wgd, built if missing)
environment: WG_GO_VERSION (wireguard-go module version), WGD_BENCH_CACHE
EOF
}

ROUNDS=3 TIME=5 ONLY=veth,wgd,wireguard-go OUT=bench-results.json SVG=
MAX_TOTAL=1800 KEEP_RAW= WGD=$PWD/bin/wgd
WG_GO_VERSION=${WG_GO_VERSION:-v0.0.0-20260522210424-ecfc5a8d5446}
CACHE=${WGD_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wgd-bench}
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --time) TIME=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --svg) SVG=$2; shift 2 ;;
    --max-total) MAX_TOTAL=$2; shift 2 ;;
    --keep-raw) KEEP_RAW=$2; shift 2 ;;
    --wgd) WGD=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$SVG" ] || SVG=${OUT%.json}.svg
for v in ROUNDS TIME MAX_TOTAL; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer" >&2; exit 2; }
done
IFS=, read -r -a IMPLS <<<"$ONLY"
for i in "${IMPLS[@]}"; do
  case $i in veth|wgd|wireguard-go) ;; *) echo "bench: unknown contender $i" >&2; exit 2 ;; esac
done
if [ "$(id -u)" -ne 0 ]; then echo "bench: needs root (network namespaces, TUN)" >&2; exit 1; fi
for tool in ip wg iperf3 ping ss timeout go; do
  command -v $tool >/dev/null || { echo "bench: $tool not found (make deps)" >&2; exit 1; }
done

NSA=wgdb-$$-a NSB=wgdb-$$-b IFA=wgba$$ IFB=wgbb$$ PORT=5201
TUNNEL_MTU=1420 PING_COUNT=50
tmp=$(mktemp -d /tmp/wgd-bench.XXXXXX)
raw=$tmp/raw
mkdir -p "$raw" "$tmp/log"
PIDS=()

cleanup() {
  local rc=$?
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  ip netns del $NSA 2>/dev/null
  ip netns del $NSB 2>/dev/null
  rm -f /var/run/wireguard/$IFA.sock /var/run/wireguard/$IFB.sock
  if [ -n "$KEEP_RAW" ]; then mkdir -p "$KEEP_RAW" && cp -r "$raw"/. "$tmp/log" "$KEEP_RAW"/; fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# forget drops a finished process from the list cleanup kills.
forget() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# check_budget aborts the whole run once it has taken longer than --max-total.
check_budget() {
  [ "$SECONDS" -le "$MAX_TOTAL" ] || die "run took longer than --max-total ${MAX_TOTAL}s, aborting"
}

# build_contenders makes sure bin/wgd exists and wireguard-go is in the cache.
build_contenders() {
  if [[ " ${IMPLS[*]} " == *" wgd "* ]] && [ ! -x "$WGD" ]; then
    say "building wgd"
    go build -o "$WGD" ./cmd/wgd
  fi
  WGGO=$CACHE/wireguard-go-$WG_GO_VERSION/wireguard-go
  if [[ " ${IMPLS[*]} " == *" wireguard-go "* ]] && [ ! -x "$WGGO" ]; then
    say "building wireguard-go $WG_GO_VERSION into $CACHE"
    local dir=$CACHE/wireguard-go-$WG_GO_VERSION
    mkdir -p "$dir"
    (cd "$tmp" && GOBIN=$dir GOFLAGS=-mod=mod go install "golang.zx2c4.com/wireguard@$WG_GO_VERSION")
    mv "$dir/wireguard" "$WGGO"
  fi
}

# setup_netns creates the two namespaces and the veth pair between them.
setup_netns() {
  ip netns add $NSA
  ip netns add $NSB
  ip link add veth-a netns $NSA type veth peer name veth-b netns $NSB
  ip -n $NSA addr add 198.18.0.1/24 dev veth-a
  ip -n $NSB addr add 198.18.0.2/24 dev veth-b
  local ns
  for ns in $NSA $NSB; do ip -n $ns link set lo up; done
  ip -n $NSA link set veth-a up
  ip -n $NSB link set veth-b up
  (umask 077; wg genkey >"$tmp/a.key"; wg genkey >"$tmp/b.key")
  wg pubkey <"$tmp/a.key" >"$tmp/a.pub"
  wg pubkey <"$tmp/b.key" >"$tmp/b.pub"
}

# start_daemon runs one userspace daemon in the foreground inside a namespace
# (ip netns exec and env both exec, so $! is the daemon itself) and waits
# for its UAPI socket; a daemon that does not come up fails the run loudly.
start_daemon() { # impl ns ifname log -> DAEMON_PID
  local impl=$1 ns=$2 ifname=$3 log=$4 bin
  case $impl in wgd) bin=$WGD ;; wireguard-go) bin=$WGGO ;; esac
  ip netns exec "$ns" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 LOG_LEVEL=error \
    "$bin" -f "$ifname" >"$log" 2>&1 &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
  local i
  for i in $(seq 50); do
    [ -S /var/run/wireguard/$ifname.sock ] && ip -n "$ns" link show "$ifname" >/dev/null 2>&1 && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "--- $log:" >&2; tail -n 20 "$log" >&2
  die "$impl daemon did not come up on $ifname in $ns"
}

# configure_side gives one end its key, peer, tunnel address and MTU.
configure_side() { # ns ifname self(1|2) mykey peerpub
  local ns=$1 ifname=$2 me=$3 key=$4 pub=$5 peer=$(( 3 - $3 ))
  ip netns exec "$ns" wg set "$ifname" private-key "$key" listen-port 51820 \
    peer "$(cat "$pub")" endpoint 198.18.0.$peer:51820 allowed-ips 198.19.0.$peer/32
  ip -n "$ns" addr add 198.19.0.$me/24 dev "$ifname"
  ip -n "$ns" link set "$ifname" mtu $TUNNEL_MTU up
}

# tunnel_up starts both daemons of one contender and waits for a handshake.
tunnel_up() { # impl round
  start_daemon "$1" $NSA $IFA "$tmp/log/$1-r$2-a.log"; PID_A=$DAEMON_PID
  start_daemon "$1" $NSB $IFB "$tmp/log/$1-r$2-b.log"; PID_B=$DAEMON_PID
  configure_side $NSA $IFA 1 "$tmp/a.key" "$tmp/b.pub"
  configure_side $NSB $IFB 2 "$tmp/b.key" "$tmp/a.pub"
  local i
  for i in $(seq 10); do
    ip netns exec $NSA ping -c 1 -W 1 -q 198.19.0.2 >/dev/null 2>&1 && return 0
  done
  die "$1: no traffic through the tunnel after 10 pings"
}

# tunnel_down stops both daemons; their TUN devices go with them.
tunnel_down() {
  local p
  for p in $PID_A $PID_B; do
    kill "$p" 2>/dev/null || true
    timeout 5 tail --pid="$p" -f /dev/null || kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    forget "$p"
  done
  ip -n $NSA link del $IFA 2>/dev/null || true
  ip -n $NSB link del $IFB 2>/dev/null || true
  rm -f /var/run/wireguard/$IFA.sock /var/run/wireguard/$IFB.sock
}

# cpu_ticks prints utime+stime of the running daemons, summed (0 for veth).
cpu_ticks() {
  local sum=0 p rest f
  for p in $DAEMONS; do
    rest=$(cat /proc/$p/stat) || die "daemon $p is gone"
    rest=${rest##*) }                  # the fields after "(comm) "
    read -r -a f <<<"$rest"            # f[0] is field 3 (state)
    sum=$(( sum + f[11] + f[12] ))     # fields 14 utime and 15 stime
  done
  echo $sum
}

# peak_rss records VmHWM (KiB) of each daemon.
peak_rss() { # file
  local p out=""
  for p in $DAEMONS; do out+="$(awk '/^VmHWM:/ {print $2}' /proc/$p/status) "; done
  echo "$out" >"$1"
}

# run_iperf runs one bounded iperf3 test and records the CPU ticks the
# daemons spent over it; a failed run leaves an error file, not a hang.
run_iperf() { # dir name dst iperf3-args...
  local dir=$1 name=$2 dst=$3; shift 3
  check_budget
  ip netns exec $NSB timeout $(( TIME + 30 )) iperf3 -s -1 -B "$dst" -p $PORT >/dev/null 2>&1 &
  local spid=$! i
  PIDS+=("$spid")
  for i in $(seq 50); do
    ip netns exec $NSB ss -Hltn "sport = :$PORT" | grep -q . && break
    sleep 0.05
  done
  local c0 c1
  c0=$(cpu_ticks)
  if ! ip netns exec $NSA timeout $(( TIME + 20 )) iperf3 -c "$dst" -p $PORT -t "$TIME" --json "$@" \
      >"$dir/$name.json" 2>"$dir/$name.err"; then
    say "  $name failed (see raw output)"
  fi
  c1=$(cpu_ticks)
  echo "$c0 $c1 $CLK_TCK" >"$dir/$name.cpu"
  timeout 5 tail --pid="$spid" -f /dev/null || kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  forget "$spid"
}

# run_contender runs every test once against one contender.
run_contender() { # impl round
  local impl=$1 r=$2 dst=198.19.0.2 dir=$raw/$1/r$2
  mkdir -p "$dir"
  say "round $r: $impl"
  DAEMONS=
  if [ "$impl" = veth ]; then dst=198.18.0.2; else tunnel_up "$impl" "$r"; DAEMONS="$PID_A $PID_B"; fi
  check_budget
  ip netns exec $NSA timeout 20 ping -c $PING_COUNT -i 0.01 -W 1 "$dst" >"$dir/ping.txt" 2>&1 || true
  run_iperf "$dir" tcp1 $dst
  run_iperf "$dir" tcp1r $dst -R
  run_iperf "$dir" tcp4 $dst -P 4
  [ -z "$DAEMONS" ] || peak_rss "$dir/rss_tcp.txt"
  run_iperf "$dir" udp1g $dst -u -b 1G -l 1392
  run_iperf "$dir" udpmax $dst -u -b 0 -l 1392
  [ -z "$DAEMONS" ] || peak_rss "$dir/rss_all.txt"
  if [ "$impl" != veth ]; then tunnel_down; fi
}

write_meta() {
  {
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo -dirty)"
    echo "kernel=$(uname -r)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "cpus=$(nproc)"
    echo "iperf3=$(iperf3 --version | head -1)"
    echo "go=$(go env GOVERSION)"
    echo "wireguard_go=$WG_GO_VERSION"
    echo "wgd_binary=$WGD"
    echo "rounds=$ROUNDS"
    echo "time=$TIME"
    echo "mtu=$TUNNEL_MTU"
    echo "impls=$ONLY"
  } >"$raw/meta.txt"
}

CLK_TCK=$(getconf CLK_TCK)
build_contenders
setup_netns
write_meta
for (( r = 1; r <= ROUNDS; r++ )); do
  n=${#IMPLS[@]}
  for (( k = 0; k < n; k++ )); do          # rotate the order every round
    run_contender "${IMPLS[$(( (k + r - 1) % n ))]}" "$r"
  done
done
say "done in ${SECONDS}s"
go run ./scripts/benchchart -raw "$raw" -json "$OUT" -svg "$SVG" -bars

#!/usr/bin/env bash
# A real-time soak of wgd against wireguard-go (or wgd): WireGuard's timers
# as they run on the wall clock (persistent keepalive, rekey after 120 s
# under traffic, session expiry after 180 s idle and the handshake on the
# next packet) and leaks over minutes (RSS, threads, fds), in two network
# namespaces. Addresses come from 198.18.0.0/15 and fd00::/8 only.
set -euo pipefail

usage() {
  cat <<EOF
usage: scripts/soak.sh [options]

Runs wgd in network namespace soa and wireguard-go (or wgd) in sob, tunnel
wgsoa (198.19.0.1, fd00:5a::1) <-> wgsob (198.19.0.2, fd00:5a::2) over a
veth pair (198.18.0.1 <-> 198.18.0.2), and checks, in real time:

  phase K (--kcheck S, 55 s) no traffic; persistent-keepalive 25 on A (wgd):
          the keepalive brings the session up and repeats every 25 s
  phase 1 (the rest)         ping A->B every 0.2 s, a v6 ping every 1 s and a
          3 s iperf3 TCP burst every 30 s (alternating direction), each
          followed by an 8 MiB TCP transfer whose sha256 is compared (with
          python3); the initiator must rekey every ~120 s without losses
  phase 2 (--idle S, 200 s)  keepalive 0 on both sides, no traffic: the
          session passes REJECT_AFTER_TIME (180 s); then a ping must get
          through on a fresh handshake

Every second both sides' 'wg show IFACE dump' peer line is polled (handshake
times, counters); every 10 s the full dump and RSS/threads/fds/CPU of both
daemons are recorded. A summary follows at the end.

options:
  --minutes N          total run time in minutes (default 7); phase 1 gets
                       N*60 - idle - kcheck seconds
  --impl-b IMPL        daemon in sob: wireguard-go (default) or wgd
  --idle S             phase 2 idle seconds (default 200; below 190 the
                       expiry is not tested, only for trying the script)
  --kcheck S           phase K seconds (default 55)
  --max-loss N         ping losses tolerated per address family (default 3)
  --iperf-rate R       iperf3 -b of the bursts (default 300M; 0 = unlimited)
  --wgd PATH           wgd binary (default: go build ./cmd/wgd into --out)
  --wireguard-go PATH  default: ~/.cache/wgd-bench/wireguard-go-*/wireguard-go
  --out DIR            output directory (default /tmp/soak/run-DATE-IMPL)
  -h, --help

Exit status: 0 every check passed, 1 a check failed, 2 usage or setup error.
Needs root, ip, wg, ping, iperf3, jq. Everything is removed on exit.
EOF
}

die() { echo "soak: $*" >&2; exit 2; }

MINUTES=7 IMPL_B=wireguard-go IDLE=200 KCHECK=55 MAXLOSS=3 RATE=300M
WGD= WGGO= OUT=
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) MINUTES=${2:?}; shift 2 ;;
    --impl-b) IMPL_B=${2:?}; shift 2 ;;
    --idle) IDLE=${2:?}; shift 2 ;;
    --kcheck) KCHECK=${2:?}; shift 2 ;;
    --max-loss) MAXLOSS=${2:?}; shift 2 ;;
    --iperf-rate) RATE=${2:?}; shift 2 ;;
    --wgd) WGD=${2:?}; shift 2 ;;
    --wireguard-go) WGGO=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
case $IMPL_B in wgd|wireguard-go) ;; *) die "--impl-b: wgd or wireguard-go" ;; esac
for v in MINUTES IDLE KCHECK MAXLOSS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "--${v,,}: a whole number"
done
P1=$((MINUTES * 60 - IDLE - KCHECK))
[ "$P1" -ge 30 ] || die "phase 1 would be ${P1} s: raise --minutes"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, TUN)"
for c in ip wg ping iperf3 jq; do command -v $c >/dev/null || die "$c not found"; done

NSA=soa NSB=sob IFA=wgsoa IFB=wgsob
UA=198.18.0.1 UB=198.18.0.2 TA=198.19.0.1 TB=198.19.0.2 T6A=fd00:5a::1 T6B=fd00:5a::2
PORTA=51820 PORTB=51821
SOCKDIR=/var/run/wireguard
for ns in $NSA $NSB; do
  ! ip netns list | grep -qw "^$ns" || die "network namespace $ns exists; remove it first"
done
for i in $IFA $IFB; do [ ! -e $SOCKDIR/$i.sock ] || die "$SOCKDIR/$i.sock exists; is a daemon running?"; done

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/soak/run-$(date +%Y%m%d-%H%M%S)-$IMPL_B}
mkdir -p "$OUT"
if [ -z "$WGD" ]; then
  (cd "$REPO" && go build -o "$OUT/wgd" ./cmd/wgd) || die "go build failed"
  WGD=$OUT/wgd
fi
[ -x "$WGD" ] || die "wgd binary $WGD not executable"
if [ "$IMPL_B" = wireguard-go ]; then
  if [ -z "$WGGO" ]; then
    for f in "$HOME"/.cache/wgd-bench/wireguard-go-*/wireguard-go; do [ -x "$f" ] && WGGO=$f; done
  fi
  [ -n "$WGGO" ] && [ -x "$WGGO" ] || die "wireguard-go binary not found (--wireguard-go PATH)"
  BINB=$WGGO
else
  BINB=$WGD
fi

# --- cleanup: only what this run created ---------------------------------
PIDS=() MADE_NS=()
cleanup() {
  set +e
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for ns in "${MADE_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -f $SOCKDIR/$IFA.sock $SOCKDIR/$IFB.sock
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0US=0
rel() { # seconds since T0, one decimal
  local us=$((${EPOCHREALTIME/./} - T0US))
  printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}
say() { echo "[$(rel)s] $*" | tee -a "$OUT/events.txt"; }

# --- setup ---------------------------------------------------------------
umask 077
wg genkey > "$OUT/a.key"; wg genkey > "$OUT/b.key"
PUBA=$(wg pubkey < "$OUT/a.key"); PUBB=$(wg pubkey < "$OUT/b.key")
ip netns add $NSA; MADE_NS+=($NSA)
ip netns add $NSB; MADE_NS+=($NSB)
ip link add veth-soa netns $NSA type veth peer name veth-sob netns $NSB
ip -n $NSA addr add $UA/24 dev veth-soa
ip -n $NSB addr add $UB/24 dev veth-sob
for ns in $NSA $NSB; do ip -n $ns link set lo up; done
ip -n $NSA link set veth-soa up; ip -n $NSB link set veth-sob up

LOG_LEVEL=verbose ip netns exec $NSA "$WGD" -f $IFA > "$OUT/a.log" 2>&1 &
PIDA=$!; PIDS+=($PIDA)
LOG_LEVEL=verbose ip netns exec $NSB "$BINB" -f $IFB > "$OUT/b.log" 2>&1 &
PIDB=$!; PIDS+=($PIDB)
for _ in $(seq 100); do
  [ -S $SOCKDIR/$IFA.sock ] && [ -S $SOCKDIR/$IFB.sock ] && break; sleep 0.1
done
[ -S $SOCKDIR/$IFA.sock ] && [ -S $SOCKDIR/$IFB.sock ] || die "daemons did not open their UAPI sockets (see $OUT/*.log)"
echo "A: wgd pid $PIDA ($(cat /proc/$PIDA/comm)); B: $IMPL_B pid $PIDB ($(cat /proc/$PIDB/comm))" > "$OUT/pids.txt"

wg set $IFA private-key "$OUT/a.key" listen-port $PORTA \
  peer "$PUBB" endpoint $UB:$PORTB allowed-ips $TB/32,$T6B/128
wg set $IFB private-key "$OUT/b.key" listen-port $PORTB \
  peer "$PUBA" endpoint $UA:$PORTA allowed-ips $TA/32,$T6A/128
ip -n $NSA addr add $TA/24 dev $IFA; ip -n $NSA addr add $T6A/64 dev $IFA nodad
ip -n $NSB addr add $TB/24 dev $IFB; ip -n $NSB addr add $T6B/64 dev $IFB nodad
ip -n $NSA link set $IFA mtu 1420 up; ip -n $NSB link set $IFB mtu 1420 up

ip netns exec $NSB iperf3 -s -B $TB > "$OUT/iperf-server.log" 2>&1 &
PIDS+=($!)

# xfer: an 8 MiB random file sent through the tunnel, its sha256 compared
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
if [ -n "$PY" ]; then
  head -c 8388608 /dev/urandom > "$OUT/blob"
  BLOBSUM=$(sha256sum "$OUT/blob" | cut -d' ' -f1)
  cat > "$OUT/xfer.py" <<'PYEOF'
import hashlib, socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "recv":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(1); s.settimeout(20)
    c, _ = s.accept(); c.settimeout(20)
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        h.update(b); n += len(b)
    print(n, h.hexdigest())
else:
    for _ in range(40):
        try:
            c = socket.create_connection((host, port), timeout=20); break
        except ConnectionRefusedError:
            time.sleep(0.05)
    with open(sys.argv[4], "rb") as f:
        c.sendall(f.read())
    c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
PYEOF
fi
# xfer DIR: fwd = soa -> sob, rev = sob -> soa; appends "t dir bytes ok" to xfer.tsv
xfer() {
  local t rns sns addr out
  t=$(rel)
  if [ "$1" = fwd ]; then rns=$NSB sns=$NSA addr=$TB; else rns=$NSA sns=$NSB addr=$TA; fi
  ip netns exec $rns timeout 30 "$PY" "$OUT/xfer.py" recv $addr 5301 > "$OUT/xfer.out" 2>&1 &
  local rp=$!
  ip netns exec $sns timeout 30 "$PY" "$OUT/xfer.py" send $addr 5301 "$OUT/blob" >> "$OUT/xfer.err" 2>&1 || true
  wait $rp || true
  out=$(cat "$OUT/xfer.out")
  if [ "$out" = "8388608 $BLOBSUM" ]; then ok=ok; else ok="BAD(${out:-nothing})"; fi
  printf '%s\t%s\t%s\t%s\n' "$t" "$1" "${out%% *}" "$ok" >> "$OUT/xfer.tsv"
}

# --- samplers ------------------------------------------------------------
# poll.tsv: t side latest-handshake rx tx keepalive (every second)
# res.tsv:  t side rss_kib threads fds cpu_ticks (every 10 s)
resources() { # side pid
  local k v rest rss=0 thr=0 f
  [ -r /proc/$2/status ] || return 0
  while read -r k v rest; do
    case $k in VmRSS:) rss=$v ;; Threads:) thr=$v ;; esac
  done < /proc/$2/status
  f=(/proc/$2/fd/*)
  read -r rest < /proc/$2/stat; rest=${rest##*) }
  read -ra st <<< "$rest"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(rel)" "$1" "$rss" "$thr" "${#f[@]}" $((st[11] + st[12]))
}
sampler() {
  local n=0 side iface pid t line
  while :; do
    t=$(rel)
    for side in a b; do
      if [ $side = a ]; then iface=$IFA pid=$PIDA; else iface=$IFB pid=$PIDB; fi
      line=$(wg show $iface dump 2>/dev/null | sed -n 2p) || true
      # peer line: pub psk endpoint allowed handshake rx tx keepalive
      [ -n "$line" ] && awk -v t="$t" -v s=$side '{print t "\t" s "\t" $5 "\t" $6 "\t" $7 "\t" $8}' <<< "$line" >> "$OUT/poll.tsv"
      if [ $((n % 10)) -eq 0 ]; then
        { echo "## t=$t"; wg show $iface dump 2>&1 || true; } >> "$OUT/dump-$side.txt"
        resources $side $pid >> "$OUT/res.tsv"
      fi
    done
    n=$((n + 1))
    sleep 1
  done
}

T0US=${EPOCHREALTIME/./}
T0=$(awk -v u="$T0US" 'BEGIN{printf "%.6f", u/1e6}')
echo "$T0" > "$OUT/t0"
sampler &
SAMPLER=$!; PIDS+=($SAMPLER)
say "setup done: A=wgd in $NSA, B=$IMPL_B in $NSB; phase K ${KCHECK}s, phase 1 ${P1}s, phase 2 ${IDLE}s; output $OUT"

# --- phase K: persistent keepalive brings the session up ----------------
say "phase K: wg set $IFA peer B persistent-keepalive 25, no traffic"
wg set $IFA peer "$PUBB" persistent-keepalive 25
sleep "$KCHECK"

# --- phase 1: traffic -----------------------------------------------------
P1START=$(rel)
say "phase 1: ping 0.2 s, ping6 1 s, iperf3 3 s every 30 s for ${P1}s"
ip netns exec $NSA ping -D -n -i 0.2 -W 2 -c $((P1 * 5)) $TB > "$OUT/ping4.txt" 2>&1 &
PING4=$!; PIDS+=($PING4)
ip netns exec $NSA ping -6 -D -n -i 1 -W 2 -c $P1 $T6B > "$OUT/ping6.txt" 2>&1 &
PING6=$!; PIDS+=($PING6)
k=0
: > "$OUT/iperf.tsv"; : > "$OUT/xfer.tsv"
while :; do
  off=$((5 + 30 * k))
  [ $((off + 5)) -lt "$P1" ] || break
  now=$(awk -v a="$(rel)" -v b="$P1START" 'BEGIN{print a-b}')
  sleep "$(awk -v o=$off -v n="$now" 'BEGIN{d=o-n; print (d>0?d:0)}')"
  dir=fwd; rflag=(); [ $((k % 2)) -eq 1 ] && { dir=rev; rflag=(-R); }
  t=$(rel)
  if ip netns exec $NSA timeout 20 iperf3 -c $TB -t 3 -b "$RATE" --connect-timeout 3000 "${rflag[@]}" -J \
       > "$OUT/iperf-$k.json" 2>&1; then rc=0; else rc=$?; fi
  jq -r --arg t "$t" --arg d "$dir" --arg rc "$rc" \
    '[$t, $d, $rc, (.end.sum_sent.bytes // 0), (.end.sum_received.bytes // 0),
      ((.end.sum_received.bits_per_second // 0) / 1e6 | floor), (.end.sum_sent.retransmits // 0),
      (.error // "-")] | @tsv' "$OUT/iperf-$k.json" >> "$OUT/iperf.tsv" 2>/dev/null \
    || printf '%s\t%s\t%s\t0\t0\t0\t0\tbad-json\n' "$t" "$dir" "$rc" >> "$OUT/iperf.tsv"
  [ -z "$PY" ] || xfer $dir
  k=$((k + 1))
done
wait $PING4 || true
wait $PING6 || true
say "phase 1 done"

# --- phase 2: idle past REJECT_AFTER_TIME, then one ping -----------------
wg set $IFA peer "$PUBB" persistent-keepalive 0
wg set $IFB peer "$PUBA" persistent-keepalive 0
P2START=$(rel)
resources a $PIDA > "$OUT/idle-start.tsv"; resources b $PIDB >> "$OUT/idle-start.tsv"
say "phase 2: keepalive 0 on both sides, idle ${IDLE}s"
sleep "$IDLE"
resources a $PIDA > "$OUT/idle-end.tsv"; resources b $PIDB >> "$OUT/idle-end.tsv"
HSA_BEFORE=$(wg show $IFA latest-handshakes | awk '{print $2}')
HSB_BEFORE=$(wg show $IFB latest-handshakes | awk '{print $2}')
say "first ping after idle (session age $(( $(date +%s) - HSA_BEFORE ))s on A)"
t1=${EPOCHREALTIME/./}
if ip netns exec $NSA ping -n -c 1 -W 10 $TB > "$OUT/ping-after-idle.txt" 2>&1; then FIRST_OK=1; else FIRST_OK=0; fi
t2=${EPOCHREALTIME/./}
FIRST_WALL_MS=$(( (t2 - t1) / 1000 ))
FIRST_RTT=$(grep -o 'time=[0-9.]* ms' "$OUT/ping-after-idle.txt" | head -1 || true)
ip netns exec $NSA ping -n -c 5 -i 0.2 -W 2 $TB > "$OUT/ping-after-idle2.txt" 2>&1 || true
sleep 2
HSA_AFTER=$(wg show $IFA latest-handshakes | awk '{print $2}')
HSB_AFTER=$(wg show $IFB latest-handshakes | awk '{print $2}')
say "done"
sleep 1
kill $SAMPLER 2>/dev/null || true; wait $SAMPLER 2>/dev/null || true
resources a $PIDA >> "$OUT/res.tsv"; resources b $PIDB >> "$OUT/res.tsv"
ALIVE_A=0 ALIVE_B=0
kill -0 $PIDA 2>/dev/null && ALIVE_A=1
kill -0 $PIDB 2>/dev/null && ALIVE_B=1

# --- summary --------------------------------------------------------------
FAIL=()
fail() { FAIL+=("$*"); }
{
set +e
echo
echo "=== soak summary: A=wgd  B=$IMPL_B  (t in s from setup; phase K 0-$P1START, phase 1 $P1START-$P2START, idle $P2START-)"

# handshakes: distinct latest-handshake values per side, from the 1 s poll
echo "--- handshakes (latest-handshake as polled each second, t = handshake time)"
for s in a b; do
  hs=$(awk -v s=$s -v t0="$T0" '$2==s && $3>0 && !seen[$3]++ {v=$3-t0; printf "%d ", (v < 0 ? 0 : int(v + 0.5))}' "$OUT/poll.tsv")
  n=$(wc -w <<< "$hs")
  gaps=$(awk -v l="$hs" 'BEGIN{n=split(l,a," "); for(i=2;i<=n;i++) printf "%d ", a[i]-a[i-1]}')
  echo "$s: $n handshakes at: $hs (gaps: ${gaps:-none})"
  eval "HS_$s=\"\$hs\""
done
# initiations and responses from the logs
ca=$(grep -c 'sending handshake initiation' "$OUT/a.log" || true)
cr=$(grep -c 'received handshake initiation' "$OUT/a.log" || true)
cs=$(grep -c 'session up' "$OUT/a.log" || true)
echo "a log (wgd): $ca initiations sent, $cs responses consumed, $cr initiations answered"
if [ "$IMPL_B" = wgd ]; then
  ca=$(grep -c 'sending handshake initiation' "$OUT/b.log" || true)
  cr=$(grep -c 'received handshake initiation' "$OUT/b.log" || true)
  cs=$(grep -c 'session up' "$OUT/b.log" || true)
  echo "b log (wgd): $ca initiations sent, $cs responses consumed, $cr initiations answered"
else
  ca=$(grep -c 'Sending handshake initiation' "$OUT/b.log" || true)
  cr=$(grep -c 'Received handshake initiation' "$OUT/b.log" || true)
  cs=$(grep -c 'Received handshake response' "$OUT/b.log" || true)
  ck=$(grep -c 'Receiving keepalive packet' "$OUT/b.log" || true)
  echo "b log (wireguard-go): $ca initiations sent, $cs responses received, $cr initiations received, $ck keepalives received"
fi
# a handshake starts a session at most every ~120 s under traffic; the
# phase-1 gaps on the initiating side must be REKEY_AFTER_TIME (+ <= 1 s poll, jitter)
bad=$(awk -v l="$HS_a" -v p1="$P1START" -v p2="$P2START" 'BEGIN{n=split(l,a," ");
  for(i=2;i<=n;i++) if (a[i] > p1+5 && a[i] < p2 && a[i-1] > 0) { g=a[i]-a[i-1]; if (g < 115 || g > 130) printf "%d(gap %d) ", a[i], g } }')
[ -z "$bad" ] || fail "handshakes on A in phase 1 not ~120 s apart: $bad"
idlehs=$(awk -v l="$HS_a $HS_b" -v p2="$P2START" -v idle="$IDLE" 'BEGIN{n=split(l,a," "); for(i=1;i<=n;i++) if (a[i] > p2+1 && a[i] < p2+idle-1) printf "%d ", a[i]}')
echo "handshakes during the idle phase (expected none): ${idlehs:-none}"
[ -z "$idlehs" ] || fail "handshakes while idle with keepalive off: $idlehs"

# phase K: A's tx counter steps (handshake + keepalive at ~0, keepalives every 25 s)
echo "--- phase K (persistent keepalive 25 on A, no traffic)"
steps=$(awk -v kc="$P1START" '$2=="a" && $1 < kc { if (prev != "" && $5 != prev) printf "%s(+%d) ", $1, $5-prev; prev=$5 }' "$OUT/poll.tsv")
echo "A tx counter steps at t(bytes): ${steps:-none}"
ka=$(awk -v l="$steps" 'BEGIN{n=split(l,a," "); for(i=1;i<=n;i++){split(a[i],b,"("); if (b[1]+0 >= 20) c++}; print c+0}')
[ -n "$HS_a$HS_b" ] && [ "$(awk -v l="$HS_a $HS_b" -v kc="$P1START" 'BEGIN{n=split(l,a," "); for(i=1;i<=n;i++) if (a[i] < kc) c++; print c+0}')" -gt 0 ] \
  || fail "no handshake in phase K: persistent keepalive did not start a session"
if [ "$KCHECK" -ge 30 ] && [ "$ka" -lt 1 ]; then fail "no persistent keepalive seen 20+ s into phase K"; fi

# pings
echo "--- ping (phase 1)"
for fam in 4 6; do
  f=$OUT/ping$fam.txt
  sum=$(grep -E 'packets transmitted' "$f" || echo "no summary")
  rtt=$(grep -E '^rtt' "$f" | sed 's/^rtt //' || true)
  echo "v$fam: $sum; ${rtt:-}"
  tx=$(awk '/packets transmitted/{print $1}' "$f"); rx=$(awk '/packets transmitted/{print $4}' "$f")
  lost=$(( ${tx:-0} - ${rx:-0} ))
  [ -n "${tx:-}" ] || { fail "ping v$fam produced no summary"; continue; }
  if [ "$lost" -gt 0 ]; then
    awk -v t0="$T0" -v hs="$HS_a $HS_b" -v n="$tx" '
      /icmp_seq=/ { ts=substr($1,2,length($1)-2); match($0,/icmp_seq=[0-9]+/); s=substr($0,RSTART+9,RLENGTH-9)+0; got[s]=ts-t0 }
      END { m=split(hs,h," "); c=0
        for (s=1; s<=n; s++) if (!(s in got)) {
          p=s-1; while (p>0 && !(p in got)) p--; q=s+1; while (q<=n && !(q in got)) q++
          if (p>0 && q<=n) t=got[p]+(got[q]-got[p])*(s-p)/(q-p); else if (p>0) t=got[p]+(s-p)*0.2; else t=got[q]-(q-s)*0.2
          best=""; for (i=1;i<=m;i++) { d=t-h[i]; if (best=="" || (d<0?-d:d) < (best<0?-best:best)) best=d }
          if (c++ < 20) printf "  lost seq %d at ~t=%.1f (%+.1f s from nearest handshake)\n", s, t, best }
        if (c > 20) printf "  ... %d lost in all\n", c }' "$f"
  fi
  [ "$lost" -le "$MAXLOSS" ] || fail "ping v$fam lost $lost (> $MAXLOSS)"
done

echo "--- iperf3 bursts (t dir rc sent received Mbit/s retransmits error; a -t test's receiver"
echo "    stops counting with up to a few 128 KiB blocks in flight, so received < sent is normal)"
column -t "$OUT/iperf.tsv" 2>/dev/null || cat "$OUT/iperf.tsv"
while IFS=$'\t' read -r t d rc sent recv mbps retr err; do
  if [ "$rc" != 0 ] || [ "$recv" -eq 0 ] || [ "$err" != "-" ]; then fail "iperf3 at t=$t ($d) failed: rc=$rc $err"
  elif [ $((recv * 100)) -lt $((sent * 95)) ]; then fail "iperf3 at t=$t ($d): received $recv of $sent bytes"; fi
done < "$OUT/iperf.tsv"
if [ -n "$PY" ]; then
  echo "--- 8 MiB sha256 transfers after each burst: $(grep -c 'ok$' "$OUT/xfer.tsv") of $(wc -l < "$OUT/xfer.tsv") intact"
  grep -v 'ok$' "$OUT/xfer.tsv" | sed 's/^/  /'
  bad=$(grep -vc 'ok$' "$OUT/xfer.tsv")
  [ "$bad" -eq 0 ] || fail "$bad sha256 transfers corrupted or incomplete"
else
  echo "--- no python3: sha256 transfers skipped"
fi

echo "--- after ${IDLE}s idle"
echo "first ping: $( [ $FIRST_OK = 1 ] && echo "answered, ${FIRST_RTT:-?}" || echo "NOT answered within 10 s"), wall ${FIRST_WALL_MS} ms"
echo "next 5 pings: $(grep -E 'packets transmitted' "$OUT/ping-after-idle2.txt" || echo none)"
echo "latest-handshake A: $HSA_BEFORE -> $HSA_AFTER; B: $HSB_BEFORE -> $HSB_AFTER (epoch s)"
[ "$FIRST_OK" = 1 ] || fail "traffic not restored after idle (first ping unanswered)"
if [ "$IDLE" -ge 190 ]; then
  [ "$HSA_AFTER" -gt "$HSA_BEFORE" ] || fail "no fresh handshake after the session expired"
fi

echo "--- resources (t side rss_kib threads fds cpu_ticks): first, at 1/3, last"
for s in a b; do
  awk -v s=$s '$2==s' "$OUT/res.tsv" > "$OUT/res-$s.tsv"
  n=$(wc -l < "$OUT/res-$s.tsv")
  [ "$n" -ge 3 ] || { fail "too few resource samples for $s"; continue; }
  first=$(sed -n 1p "$OUT/res-$s.tsv"); third=$(sed -n "$((n / 3 + 1))p" "$OUT/res-$s.tsv"); last=$(sed -n "${n}p" "$OUT/res-$s.tsv")
  printf '%s\n%s\n%s\n' "$first" "$third" "$last" | sed 's/^/  /'
  read -r _ _ r3 th3 fd3 _ <<< "$third"; read -r _ _ rl thl fdl _ <<< "$last"
  [ "$fdl" -le $((fd3 + 2)) ] || fail "$s: fds grew $fd3 -> $fdl"
  [ "$thl" -le $((th3 + 3)) ] || fail "$s: threads grew $th3 -> $thl"
  if [ "$rl" -gt $((r3 * 3 / 2)) ] && [ "$rl" -gt $((r3 + 8192)) ]; then echo "  WARN $s: RSS grew $r3 -> $rl KiB"; fi
  mx=$(awk '{if($5>m)m=$5} END{print m}' "$OUT/res-$s.tsv"); mt=$(awk '{if($4>m)m=$4} END{print m}' "$OUT/res-$s.tsv")
  echo "  $s: max fds $mx, max threads $mt"
done
read -r _ _ _ _ _ ia < <(sed -n 1p "$OUT/idle-start.tsv"); read -r _ _ _ _ _ ea < <(sed -n 1p "$OUT/idle-end.tsv")
read -r _ _ _ _ _ ib < <(sed -n 2p "$OUT/idle-start.tsv"); read -r _ _ _ _ _ eb < <(sed -n 2p "$OUT/idle-end.tsv")
echo "CPU ticks (1/100 s) during the idle phase: a $((ea - ia)), b $((eb - ib))"

echo "--- logs"
for s in a b; do
  e=$(grep -ciE 'level=(ERROR|WARN)|^ERROR' "$OUT/$s.log" || true)
  d=$(grep -c 'dropped packet' "$OUT/$s.log" || true)
  echo "$s.log: $e error/warn lines, $d 'dropped packet' lines"
  grep -o 'dropped packet" reason=[^ ]*' "$OUT/$s.log" 2>/dev/null | sort | uniq -c | sed 's/^/  /' || true
done
[ "$ALIVE_A" = 1 ] || fail "wgd (A) exited during the run"
[ "$ALIVE_B" = 1 ] || fail "$IMPL_B (B) exited during the run"

if [ ${#FAIL[@]} -eq 0 ]; then echo "=== PASS"; else printf '=== FAIL: %s\n' "${FAIL[@]}"; fi
} 2>&1 | tee "$OUT/summary.txt"
grep -q '^=== PASS' "$OUT/summary.txt"

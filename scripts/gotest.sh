#!/usr/bin/env bash
# Runs the whole Go test suite under the race detector. The log keeps -v
# output so that every skipped test prints its reason here: root-only
# end-to-end tests never skip silently.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ "$(id -u)" -ne 0 ]; then
  echo "NOTE: not running as root: end-to-end tests in network namespaces will skip"
elif [ ! -c /dev/net/tun ]; then
  echo "NOTE: /dev/net/tun is missing: end-to-end tests will skip"
fi
go test -race -count=1 -timeout 20m -v ./... >"$log" 2>&1
rc=$?
# go test -v prints a test's skip reason on the line before its SKIP line.
awk '/^[[:space:]]*--- SKIP/ { sub(/^[[:space:]]*/, "", prev); printf "%s  (%s)\n", $0, prev } { prev = $0 }' "$log"
grep -E '^\s*--- FAIL' "$log" && { echo; echo "failures in detail:"; grep -E -B2 -A30 -- '--- FAIL' "$log" | head -400; }
grep -E '^(ok|FAIL|panic|\?)\s' "$log"
passed=$(grep -cE '^\s*--- PASS' "$log"); failed=$(grep -cE '^\s*--- FAIL' "$log"); skipped=$(grep -cE '^\s*--- SKIP' "$log")
echo "go test: $passed passed, $failed failed, $skipped skipped"
[ $rc -ne 0 ] && tail -50 "$log"
exit $rc

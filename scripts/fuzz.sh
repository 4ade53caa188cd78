#!/usr/bin/env bash
# Runs every native Go fuzz target for FUZZTIME each (default 3s in
# `make test`, longer in `make fuzz`).
set -euo pipefail
FUZZTIME=${FUZZTIME:-3s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# run_target runs one target. The Go fuzzer sometimes ends a timed run with
# a bare "context deadline exceeded" (the deadline hits while it is still
# coordinating workers, with no failing input); that case, and only that
# one, is reported as retryable. A real failure (a failing input written to
# testdata/fuzz) is never retried.
run_target() {
  go test -run='^$' -fuzz="^${2}\$" -fuzztime="$FUZZTIME" "$1" >"$log" 2>&1 && return 0
  if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input' "$log"; then
    echo "  $2: the fuzzer's deadline flake (no failing input); running it once more"
    return 1
  fi
  cat "$log"
  exit 1
}

for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
    echo "fuzz $pkg $f ($FUZZTIME)"
    run_target "$pkg" "$f" || run_target "$pkg" "$f" || { cat "$log"; exit 1; }
  done
done
echo "fuzz: all targets passed"

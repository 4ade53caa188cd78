#!/usr/bin/env bash
# Runs every native Go fuzz target for FUZZTIME each (default 3s in
# `make test`, longer in `make fuzz`).
set -euo pipefail
FUZZTIME=${FUZZTIME:-3s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
    echo "fuzz $pkg $f ($FUZZTIME)"
    go test -run='^$' -fuzz="^${f}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1 || { cat "$log"; exit 1; }
  done
done
echo "fuzz: all targets passed"

#!/usr/bin/env bash
# Fuzzes every decoder for FUZZTIME each (default 30s): every `func FuzzXxx` in the
# repository, one target at a time (go test allows one -fuzz target per run). The
# regular test run already replays each target's seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./.cache/' | sort | while read -r file; do
  pkg=./$(dirname "${file#./}")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "== $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done

#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts the storage
# emulators the tests need (on 127.0.0.1 only) and the tools test/deploy judges the
# deployment files with, checks formatting and vet, then runs
# `go test -race` over every package. Emulators are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Emulators (Azurite for Azure; S3 and GCS run in process inside the tests).
source scripts/emulators.sh
start_emulators
trap stop_emulators EXIT
# systemd-analyze, systemd-sysusers and strace for test/deploy, from Debian's packages.
bash scripts/deploy-tools.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 25m "$@" ./...
# Heavy tests shrink under the race detector; run them once at full size without it.
echo "== full-size heavy tests (no race detector)"
go test -count=1 -timeout 10m -run 'TestReopenKeepsRootsAndProofs' ./ledgerdb/

# Sourced by scripts/test.sh: installs and starts the storage emulators on 127.0.0.1.
# Azurite (Azure Blob) comes from npm into .cache/azurite; S3 (gofakes3) and GCS
# (fake-gcs-server) run inside the Go tests and need nothing here.

AZURITE_VERSION=3.37.0
AZURITE_PID=""

start_emulators() {
  local dir="$root/.cache/azurite"
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: Azure tests will skip (fail under CI=true)" >&2
    return 0
  fi
  if [ ! -x "$dir/node_modules/.bin/azurite-blob" ]; then
    echo "== installing azurite@$AZURITE_VERSION from npm"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
  fi
  local port
  port=$(python3 - <<'PY' 2>/dev/null || echo 10000
import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()
PY
)
  # --inMemoryPersistence and --location are mutually exclusive (Azurite exits).
  "$dir/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
    --inMemoryPersistence --disableTelemetry --silent --skipApiVersionCheck \
    >"$dir/azurite.log" 2>&1 &
  AZURITE_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      export LEDGERVAULT_TEST_AZURITE="http://127.0.0.1:$port/devstoreaccount1"
      echo "== azurite ready on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "azurite did not start; log:" >&2; cat "$dir/azurite.log" >&2
  return 1
}

stop_emulators() {
  if [ -n "$AZURITE_PID" ]; then
    kill "$AZURITE_PID" 2>/dev/null || true
    wait "$AZURITE_PID" 2>/dev/null || true
  fi
}

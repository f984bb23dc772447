#!/usr/bin/env bash
# Checks `hookline serve` against its own OpenAPI document with schemathesis
# (every check, every operation, bounded examples; scripts/schemathesis.toml).
# Needs target/debug/hookline (built by `cargo test`); installs schemathesis
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v schemathesis >/dev/null 2>&1; then
  echo "== installing schemathesis"
  python3 -m pip install --quiet schemathesis
  hash -r
fi

work="$(mktemp -d)"
key="conformance-admin-key-$(date +%s%N)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
HOOKLINE_ADMIN_KEY="$key" target/debug/hookline serve --listen "127.0.0.1:$port" \
  --data-dir "$work/data" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -sf "$base/health" >/dev/null && break
  sleep 0.1
done

auth="Authorization: Bearer $key"
post() { curl -sf -H "$auth" -H 'Content-Type: application/json' -d "$2" "$base$1"; }
id_of() { python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'; }
list="$(post /v1/lists '{"name": "Conformance"}' | id_of)"
HOOKLINE_TRIGGER="$(post /v1/triggers "{\"name\": \"Conformance\", \"actions\": [{\"type\": \"add_to_list\", \"list_id\": \"$list\"}]}" | id_of)"
export HOOKLINE_TRIGGER

# One worker: two at once trip a schemathesis error of its own here. Run
# from the scratch directory, where its caches are left.
config="$PWD/scripts/schemathesis.toml"
if ! (cd "$work" && schemathesis --config-file "$config" run "$base/openapi.json" \
    --checks all -H "$auth" --seed "${CONFORMANCE_SEED:-1}" --workers 1 \
    >"$work/report.txt" 2>&1); then
  cat "$work/report.txt"
  echo "schemathesis found the server and its document apart (above)"
  exit 1
fi
grep -A1 '^Test cases:' "$work/report.txt" | tr -s ' ' || true
if grep -qiE 'panicked' "$work/server.log"; then
  grep -iE -m5 'panicked' "$work/server.log"
  echo "the server panicked during the run"
  exit 1
fi

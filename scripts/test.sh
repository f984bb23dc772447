#!/usr/bin/env bash
# The test command (see README). Installs what the tests need when it is
# missing, then runs every check CI runs. Works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pip() { # command, pip requirement
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "== installing $2 (for $1)"
    python3 -m pip install --quiet "$2"
    hash -r
  fi
}
need_pip moto_server 'moto[server]'
need_pip cfn-lint cfn-lint
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# The console's browser tests: Debian's Chromium and Node.js, and
# playwright-core from npm at the version tests/browser/package-lock.json pins.
as_root=""
[ "$(id -u)" = 0 ] || as_root="sudo"
need_apt() { # command, package
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "== installing $2 (for $1)"
    $as_root apt-get update -q
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q "$2"
    hash -r
  fi
}
need_apt chromium chromium
need_apt node nodejs
need_apt npm npm
CHROMIUM="$(command -v chromium)"
export CHROMIUM
if ! (cd tests/browser && npm ls --silent playwright-core >/dev/null 2>&1); then
  echo "== installing playwright-core"
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

# A fresh clone gains nothing from incremental compilation but its disk
# use (many gigabytes for this workspace): CI builds without it.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cfn-lint template.yaml"
cfn-lint template.yaml
echo "== fuzz: replay each corpus, then fuzz each target briefly"
# cargo fuzz needs unstable flags: RUSTC_BOOTSTRAP lets the stable
# toolchain take them (no nightly to install); no sanitizer, for the same reason.
(
  cd fuzz
  export RUSTC_BOOTSTRAP=1
  cargo fuzz build -s none
  for target in transform ingest_body admin_router queue_log campaign; do
    log="$(mktemp)"
    if ! cargo fuzz run -s none "$target" "corpus/$target" -- \
        -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
      tail -60 "$log"
      echo "fuzz target $target failed"
      exit 1
    fi
    echo "$target: $(grep -E '^Done' "$log")"
    rm -f "$log"
  done
)
echo "== cargo test"
# Built first, then run with a bound: a test that hangs fails the run
# here, with libtest's "running for over 60 seconds" naming it, rather
# than holding CI until its own limit.
cargo test --workspace --no-run
timeout --kill-after=30s "${TEST_MINUTES:-25}m" cargo test --workspace
echo "== browser: the console in headless Chromium (screenshots in target/browser/)"
node tests/browser/console.mjs
echo "== browser: the console's first view, weighed and timed (a brief run; README's figures: 20 runs)"
BENCH_RUNS=5 node tests/browser/bench.mjs
echo "== conformance: hookline serve against its OpenAPI document (schemathesis)"
scripts/conformance.sh
echo "== lambda: sam validate --lint, every function built for arm64, zip sizes (scripts/lambda.sh)"
scripts/lambda.sh
echo "== lambda: each zip's arm64 bootstrap against a local Runtime API and moto (qemu-aarch64)"
need_apt qemu-aarch64 qemu-user
if [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  echo "== installing libc6-arm64-cross (the bootstraps' C library, for qemu)"
  $as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q libc6-arm64-cross
fi
unpacked="$(mktemp -d)"
trap 'rm -rf "$unpacked"' EXIT
for f in ingest admin apply deliver campaigns; do
  python3 -m zipfile -e "${HOOKLINE_LAMBDA_TARGET:-$HOME/.cache/hookline/lambda-target}/lambda/$f/bootstrap.zip" "$unpacked/$f"
  chmod +x "$unpacked/$f/bootstrap"
done
# The same test binaries as `cargo test --workspace` above (built, then run
# with a bound).
cargo test --workspace --test runtime --no-run
HOOKLINE_LAMBDA_BIN_DIR="$unpacked" HOOKLINE_LAMBDA_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
  timeout --kill-after=30s 10m cargo test --workspace --test runtime

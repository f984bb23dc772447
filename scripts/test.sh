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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cfn-lint template.yaml"
cfn-lint template.yaml
echo "== cargo test"
cargo test --workspace

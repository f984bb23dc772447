#!/usr/bin/env bash
# Builds what `sam deploy` ships, on a fresh machine too: installs the AWS
# SAM CLI, cargo-lambda and zig (pinned, in a virtualenv of their own) and
# the aarch64 target when missing, checks the template with
# `sam validate --lint`, builds every function for arm64 with
# `cargo lambda build --release`, and reports each zip's size.
# No AWS account is needed (nothing is deployed). The release build goes to
# its own target directory, kept between runs ($HOOKLINE_LAMBDA_TARGET).
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
ZIG_VERSION=0.13.0.post1
tools="${HOOKLINE_LAMBDA_TOOLS:-$HOME/.cache/hookline/lambda-tools}"
target="${HOOKLINE_LAMBDA_TARGET:-$HOME/.cache/hookline/lambda-target}"

pins="aws-sam-cli==$SAM_CLI_VERSION cargo-lambda==$CARGO_LAMBDA_VERSION ziglang==$ZIG_VERSION"
if [ "$(cat "$tools/pins" 2>/dev/null)" != "$pins" ]; then
  echo "== installing $pins (in $tools)"
  rm -rf "$tools"
  if ! python3 -m venv "$tools" >/dev/null 2>&1; then
    # Debian's Python keeps venv apart.
    as_root=""
    [ "$(id -u)" = 0 ] || as_root="sudo"
    $as_root apt-get update -q
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q python3-venv
    rm -rf "$tools"
    python3 -m venv "$tools"
  fi
  "$tools/bin/pip" install --quiet --upgrade pip
  # shellcheck disable=SC2086 # the pins are words
  "$tools/bin/pip" install --quiet $pins
  echo "$pins" >"$tools/pins"
fi
export PATH="$tools/bin:$PATH"
export SAM_CLI_TELEMETRY=0
if ! rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$'; then
  echo "== adding the aarch64-unknown-linux-gnu target"
  rustup target add aarch64-unknown-linux-gnu
fi
echo "== $(sam --version), $(cargo lambda --version), zig $("$tools/bin/python" -m ziglang version)"

echo "== sam validate --lint"
# A region is all it needs (no credentials: the template is checked here).
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" sam validate --lint --template template.yaml

echo "== cargo lambda build --release --arm64 (into $target)"
start=$(date +%s)
CARGO_TARGET_DIR="$target" cargo lambda build --release --arm64 --output-format zip \
  --bin ingest --bin admin --bin apply --bin deliver --bin campaigns
echo "built in $(($(date +%s) - start)) s"

echo "== zips (target: at most 5 MB, 5,000,000 bytes, each)"
over=0
for f in ingest admin apply deliver campaigns; do
  zip="$target/lambda/$f/bootstrap.zip"
  bytes=$(wc -c <"$zip")
  awk -v f="$f" -v b="$bytes" 'BEGIN { printf "%-10s %9d bytes  %5.2f MB\n", f, b, b / 1e6 }'
  if [ "$bytes" -gt 5000000 ]; then
    echo "$f: its zip is over 5 MB" >&2
    over=1
  fi
done
exit "$over"

#!/usr/bin/env bash
# The README's first command: build buildr, make the busybox base image the
# fixtures build FROM (FROM scratch + Debian's busybox-static), build the
# two-stage demo image from fixtures/demo, and run it with buildr's own
# executor: its CMD prints the greeting the build made. On the way it installs
# the shell completions and man pages for this user (scripts/install-shell-files.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --quiet -p buildr-cli
buildr=./target/release/buildr
bash scripts/install-shell-files.sh "$buildr"
root="${BUILDR_ROOT:-$(mktemp -d /tmp/buildr-demo.XXXXXX)}"
export BUILDR_ROOT="$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bash fixtures/base/busybox-rootfs.sh "$work/busybox.tar"
"$buildr" import "$work/busybox.tar" buildr-fixtures/busybox:latest >/dev/null
"$buildr" build --progress plain -t demo:latest fixtures/demo
"$buildr" images demo
echo "--- buildr run --rm demo:latest"
"$buildr" run --rm demo:latest
echo "(store: $root)"

#!/usr/bin/env bash
# The README's first command: build buildr and run its main job on the demo
# fixture. Today the main job is `buildr check` (the parser is what has
# landed); it grows into `buildr build` + `buildr run` as those issues land.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p buildr-cli
./target/release/buildr check fixtures/demo

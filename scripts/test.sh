#!/usr/bin/env bash
# The README's second command: install what the tests check against, then run
# the whole test suite. Under CI=true a missing prerequisite fails a test
# instead of skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Unit, integration and doc tests of every crate (benches are run by hand).
cargo test --workspace --no-fail-fast

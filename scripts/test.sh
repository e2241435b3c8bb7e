#!/usr/bin/env bash
# The whole test suite: installs what it needs (see ensure-deps.sh), then
# builds once and runs every test. The integration tests start their own
# throw-away PostgreSQL; nothing needs to be running beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
# The library's documentation builds without a warning (broken links, bad HTML).
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --lib --document-private-items --quiet
cargo test --locked --no-fail-fast

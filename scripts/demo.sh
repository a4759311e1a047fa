#!/usr/bin/env bash
# The main job on the bundled sample library, with the built-in model and a catalog of its own in
# target/demo/: scan the photos, describe them, propose locations for the untagged ones.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --quiet
pinpoint="target/release/pinpoint --catalog target/demo/catalog.sqlite"
$pinpoint library add assets/sample-library >/dev/null
$pinpoint update
echo
$pinpoint photos list

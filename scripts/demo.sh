#!/usr/bin/env bash
# The main job on the bundled sample library, with the built-in model and a catalog of its own in
# target/demo/: scan the photos, describe them, propose locations for the untagged ones — then
# open the desktop app on that catalog to review the proposals on the map.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --quiet -p pinpoint -p pinpoint-desktop
catalog=target/demo/catalog.sqlite
pinpoint="target/release/pinpoint --catalog $catalog"
$pinpoint library add assets/sample-library >/dev/null
$pinpoint update
echo
$pinpoint photos list
echo
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "opening Pinpoint (review the proposals under Review)…"
  PINPOINT_CATALOG="$catalog" exec target/release/pinpoint-desktop
else
  echo "no display for the desktop app; in a desktop session run:"
  echo "  PINPOINT_CATALOG=$catalog target/release/pinpoint-desktop"
fi

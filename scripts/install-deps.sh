#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test Pinpoint. Idempotent and quick
# when everything is already there.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian packages: a C toolchain (SQLite is compiled in), ExifTool (the reference reader the tests
# compare against).
packages=(build-essential pkg-config libimage-exiftool-perl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rust: the machine's rustup toolchain (cargo, rustc). Debian's own cargo is too old for the
# dependencies, so it is not a fallback.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "error: cargo not found: install the stable Rust toolchain with rustup first" >&2
  exit 2
fi

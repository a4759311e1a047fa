#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test Pinpoint. Idempotent and quick
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian packages: a C toolchain (SQLite is compiled in), the mold linker, libheif (HEIC and
# AVIF pixels, with its HEVC and AV1 codecs), ffmpeg (videos' poster frames), ExifTool (the reference reader the tests
# compare against), Python with pip (the tests' NumPy reference).
# The desktop app: WebKitGTK and friends for Tauri, Node.js for the front end's build and unit
# tests, Xvfb and WebKitWebDriver for its end-to-end tests.
packages=(build-essential pkg-config mold libimage-exiftool-perl libheif-dev ffmpeg
  file libssl-dev libxdo-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev
  xvfb xauth webkit2gtk-driver)
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
command -v python3 >/dev/null 2>&1 || packages+=(python3 python3-pip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python packages for the test suite's independent NumPy reference and test-image writers.
if ! python3 -c "import numpy, PIL" >/dev/null 2>&1; then
  echo "installing Python packages: numpy pillow"
  python3 -m pip install -q --disable-pip-version-check numpy pillow
fi

# Rust: the machine's rustup toolchain (cargo, rustc). Debian's own cargo is too old for the
# dependencies, so it is not a fallback.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "error: cargo not found: install the stable Rust toolchain with rustup first" >&2
  exit 2
fi

# tauri-driver (WebDriver for Tauri apps), built once into the cached target folder.
if [ ! -x target/tools/bin/tauri-driver ]; then
  echo "installing tauri-driver into target/tools"
  PATH="$HOME/.cargo/bin:$PATH" cargo install -q tauri-driver --version '^2' --locked --root target/tools
fi

# The front end: its npm packages (Leaflet, world-atlas, ...) and its build into ui/dist.
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  npm --prefix ui ci --no-audit --no-fund --loglevel=error
fi
npm --prefix ui run --silent build

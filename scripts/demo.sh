#!/usr/bin/env bash
# The main job: set up a fresh machine, build, and run the sample video through DTFSal on the
# embedded demo model (CPU only). Output in out/demo/ (or the first argument):
#   overlay.mp4   the video with its saliency heat map blended in (dtfsal predict)
#   sheet.png     a contact sheet: 12 overlay frames sampled over the video
#   maps/         one 8-bit saliency PNG per frame (what `dtfsal eval` scores)
#   map.mp4       the saliency map as a video, straight from a gst-launch pipeline (pipelines/file-map.sh)
#   bench.json    engine vs PyTorch speed on the tiny config
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-out/demo}
MEDIA=media/bigbuckbunny.mp4
"$ROOT/scripts/setup.sh"
cargo build --release --workspace
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
BIN=target/release/dtfsal

echo "== model (embedded; models/README.md is its model card)"
"$BIN" info

echo "== dtfsal predict: $MEDIA -> overlay mp4 + contact sheet, and per-frame maps"
"$BIN" predict "$MEDIA" --out "$OUT/overlay.mp4" --contact-sheet "$OUT/sheet.png"
"$BIN" predict "$MEDIA" --out "$OUT/maps"

echo "== gst-launch: the same file through the dtfsal element -> saliency-map mp4"
MEDIA="$(realpath "$MEDIA")" DTFSAL_BUILD=release OUT="$OUT/map.mp4" pipelines/file-map.sh

echo "== speed: engine vs PyTorch on the tiny config"
"$BIN" bench --config tiny --runs 3 --json "$OUT/bench.json"

echo "demo outputs in $OUT: overlay.mp4, sheet.png, maps/, map.mp4, bench.json"

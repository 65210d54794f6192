#!/usr/bin/env bash
# The main job: set up, build, and run the demo on the bundled model and the sample media.
# Output: out/demo/ (override with the first argument).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-out/demo}
MODEL=${DTFSAL_MODEL:-tests/data/tiny-av.weights.safetensors}
MEDIA=media/bigbuckbunny.mp4
"$ROOT/scripts/setup.sh"
cargo build --release --workspace
mkdir -p "$OUT"
BIN=target/release/dtfsal

echo "== model"
"$BIN" info --weights "$MODEL"

echo "== audio front end: $MEDIA -> 16 kHz mono -> log-mel slices of the clip centred at 2.0 s"
gst-launch-1.0 -q filesrc location="$MEDIA" ! qtdemux name=d d.audio_0 ! queue ! avdec_aac ! audioconvert \
  ! audioresample ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! wavenc ! filesink location="$OUT/audio16k.wav"
"$BIN" mel --input "$OUT/audio16k.wav" --center 2.0 --output "$OUT/mel.safetensors"

echo "== engine: one forward pass on the bundled parity clip"
"$BIN" forward --weights "$MODEL" --input tests/data/tiny-av.case.safetensors --output "$OUT/sal.safetensors"

echo "== element: $MEDIA through dtfsal -> overlay mp4, saliency-map mp4, one overlay PNG per second"
export MODEL="$(realpath "$MODEL")" MEDIA="$(realpath "$MEDIA")" INTERVAL="${INTERVAL:-2}" DTFSAL_BUILD=release
OUT="$ROOT/$OUT/overlay.mp4" pipelines/file-overlay-mp4.sh
OUT="$ROOT/$OUT/map.mp4" pipelines/file-map.sh
(
  source pipelines/common.sh
  gst-launch-1.0 -q -e $(decode_media) ! dtfsal name=s model="$MODEL" interval="$INTERVAL" output=overlay \
    ! videorate ! video/x-raw,framerate=1/1 ! videoconvert ! pngenc ! multifilesink location="$ROOT/$OUT/overlay-%02d.png"
)

echo "== speed: engine vs PyTorch on the tiny config"
"$BIN" bench --config tiny --runs 3 --json "$OUT/bench.json"

echo "demo outputs in $OUT"

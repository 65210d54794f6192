#!/usr/bin/env bash
# File -> GRAY8 saliency map video (input resolution) -> MP4, or a PNG sequence with PNG=1.
#   OUT  output file (default: map.mp4; with PNG=1: map-%05d.png)
set -euo pipefail
source "$(dirname "$0")/common.sh"
ENC="$(mp4_encoder 2000000)"
if [ "${PNG:-0}" = 1 ]; then
  SINK="pngenc ! multifilesink location=${OUT:-map-%05d.png}"
else
  SINK="videoconvert ! video/x-raw,format=I420 ! $ENC ! mp4mux ! filesink location=${OUT:-map.mp4}"
fi
set -x
gst-launch-1.0 -e $(decode_media) \
  ! dtfsal name=s $MODEL_ARG $SYNC_ARGS interval="$INTERVAL" mode=sync output=map \
  ! $SINK

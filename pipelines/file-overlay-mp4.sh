#!/usr/bin/env bash
# File -> saliency heat-map overlay -> MP4 (video only).
#   OUT       output file (default: overlay.mp4)
#   COLORMAP  jet | turbo | inferno | gray (default jet);  ALPHA  0..1 (default 0.5)
# Encoder: x264enc when installed, else openh264enc (H.264 in MP4), else avenc_mpeg4 (MPEG-4 part 2).
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT="${OUT:-overlay.mp4}"
ENC="$(mp4_encoder 4000000)"
set -x
gst-launch-1.0 -e $(decode_media) \
  ! dtfsal name=s $MODEL_ARG $SYNC_ARGS interval="$INTERVAL" mode=sync output=overlay \
      colormap="${COLORMAP:-jet}" alpha="${ALPHA:-0.5}" \
  ! videoconvert ! video/x-raw,format=I420 ! $ENC ! mp4mux ! filesink location="$OUT"

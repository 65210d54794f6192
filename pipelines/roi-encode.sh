#!/usr/bin/env bash
# ROI-guided encoding: dtfsal attaches the ROI-COUNT most salient regions as
# GstVideoRegionOfInterestMeta (type "saliency", parameter "score"); ROI-aware encoders spend
# more bits there. x264enc (gst-plugins-ugly), vaapih264enc/vah264enc and nvh264enc read the meta
# (x264enc: the "roi/x264enc" parameter or its default delta-qp); encoders without ROI support
# ignore it, so the script still produces a file here when only openh264enc is installed.
#   OUT  output (default: roi.mp4);  ROI_COUNT  regions per frame (default 4)
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT="${OUT:-roi.mp4}"
ENC="$(mp4_encoder 2000000)"
case "$ENC" in x264enc*) ;; *) echo "note: $ENC ignores ROI meta; install x264enc (gst-plugins-ugly) for ROI-guided rate control" >&2 ;; esac
set -x
gst-launch-1.0 -e $(decode_media) \
  ! dtfsal name=s $MODEL_ARG $SYNC_ARGS interval="$INTERVAL" mode=sync \
      output=passthrough-with-meta roi-count="${ROI_COUNT:-4}" \
  ! videoconvert ! video/x-raw,format=I420 ! $ENC ! mp4mux ! filesink location="$OUT"

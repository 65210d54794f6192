#!/usr/bin/env bash
# Live test source -> saliency overlay -> display, in live mode (never blocks on inference:
# frames pass at the source rate with the latest map).
#   SINK       video sink (default autovideosink; fakesink sync=true on a headless machine)
#   ALIGNMENT  last (default: causal, no added latency) | centre (adds T/2 frames of latency)
#   FRAMES     stop after N frames (default: run until interrupted)
#
# Camera + microphone variant (V4L2 webcam, default audio input):
#   gst-launch-1.0 v4l2src ! videoconvert ! video/x-raw,format=I420 \
#     ! dtfsal name=s model=$MODEL mode=live alignment=last ! videoconvert ! autovideosink \
#     autoaudiosrc ! audioconvert ! audioresample ! s.audio_sink
# (Add `! videoscale ! video/x-raw,width=640,height=360` after v4l2src to cut the overlay cost.)
set -euo pipefail
source "$(dirname "$0")/common.sh"
NUM=""
[ -n "${FRAMES:-}" ] && NUM="num-buffers=$FRAMES"
set -x
gst-launch-1.0 -e \
  videotestsrc is-live=true pattern=ball $NUM ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! dtfsal name=s $MODEL_ARG $ENGINE_ARGS interval="$INTERVAL" mode=live alignment="${ALIGNMENT:-last}" \
  ! videoconvert ! ${SINK:-autovideosink} \
  audiotestsrc is-live=true wave=ticks ! audioconvert ! audioresample ! s.audio_sink

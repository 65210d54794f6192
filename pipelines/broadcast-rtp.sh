#!/usr/bin/env bash
# Broadcast chain: file (or live test source with LIVE=1) -> dtfsal overlay (live mode) -> H.264
# -> RTP/UDP to 127.0.0.1:$PORT, and a receiver that depayloads and decodes it.
#   PORT           UDP port (default 5004)
#   RECEIVER_SINK  sink of the receiver (default autovideosink; fakesink on a headless machine)
#   SECONDS_TO_RUN receiver run time in seconds (default 10)
# For SRT instead of RTP: replace `rtph264pay ! udpsink ...` with
#   `h264parse ! mpegtsmux ! srtsink uri=srt://:8888` and receive with
#   `srtsrc uri=srt://127.0.0.1:8888 ! tsdemux ! h264parse ! avdec_h264 ! videoconvert ! autovideosink`.
set -euo pipefail
source "$(dirname "$0")/common.sh"
PORT="${PORT:-5004}"
ENC="$(h264_encoder)"
[ -n "$ENC" ] || { echo "no H.264 encoder (x264enc/openh264enc) installed" >&2; exit 1; }
CAPS="application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96"

gst-launch-1.0 -q udpsrc port="$PORT" caps="$CAPS" ! rtpjitterbuffer latency=200 ! rtph264depay \
  ! h264parse ! avdec_h264 ! videoconvert ! ${RECEIVER_SINK:-autovideosink} &
RECEIVER=$!
trap 'kill $RECEIVER 2>/dev/null || true' EXIT

if [ "${LIVE:-0}" = 1 ]; then
  SOURCE="videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=25/1 \
    ! dtfsal name=s $MODEL_ARG $ENGINE_ARGS interval=$INTERVAL mode=live alignment=last"
  AUDIO="audiotestsrc is-live=true ! audioconvert ! audioresample ! s.audio_sink"
  set -x
  timeout "${SECONDS_TO_RUN:-10}" gst-launch-1.0 -e $SOURCE ! videoconvert ! video/x-raw,format=I420 ! $ENC \
    ! rtph264pay config-interval=1 pt=96 ! udpsink host=127.0.0.1 port="$PORT" $AUDIO || true
else
  set -x
  # A file is not live: identity sync=true plays it at its own rate, as a broadcast would.
  gst-launch-1.0 -e $(decode_media) \
    ! dtfsal name=s $MODEL_ARG $ENGINE_ARGS interval="$INTERVAL" mode=live alignment=last \
    ! identity sync=true ! videoconvert ! video/x-raw,format=I420 ! $ENC \
    ! rtph264pay config-interval=1 pt=96 ! udpsink host=127.0.0.1 port="$PORT"
fi

#!/usr/bin/env bash
# Throughput of the dtfsal element on the bundled sample media (132 frames, 5.28 s, 25 fps):
# sync mode as fast as possible (fakesink sync=false), live mode at playback speed (fakesink sync=true).
# Usage: scripts/measure-element.sh [MODEL] (default: the bundled model); needs a release build.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export GST_PLUGIN_PATH="$ROOT/target/release"
MODEL=${1:+$(realpath "$1")}  # empty: the embedded demo model
MODEL_ARG=${MODEL:+model=\"$MODEL\"}
FRAMES=132
run() { # mode sink-sync alignment
  local t0 t1
  t0=$(date +%s.%N)
  gst-launch-1.0 -q filesrc location=media/bigbuckbunny.mp4 ! qtdemux name=d \
    d.audio_0 ! queue ! avdec_aac ! audioconvert ! audioresample ! s.audio_sink \
    d.video_0 ! queue ! avdec_h264 ! videoconvert \
    ! dtfsal name=s $MODEL_ARG mode="$1" alignment="$3" threads=2 output=overlay ! fakesink sync="$2" >/dev/null
  t1=$(date +%s.%N)
  python3 -c "w=$t1-$t0; print(f'$1 mode, alignment=$3: {w:.2f} s wall for $FRAMES frames = {$FRAMES/w:.1f} fps (input 25 fps, 5.28 s)')"
}
run sync false centre
run live true centre
run live true last

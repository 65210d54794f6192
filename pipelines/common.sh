# Shared settings of the pipeline scripts (sourced, not run).
#   DTFSAL_BUILD  cargo profile directory holding libgstdtfsal.so (default: release;
#                 build it with `cargo build -p gst-dtfsal --release`)
#   CARGO_TARGET_DIR  cargo's target directory, as for cargo (default: target/ of the repository)
#   MODEL         DTFSal weight file (default: empty = the element's embedded demo model)
#   MEDIA         input file (default: media/bigbuckbunny.mp4, bundled)
#   INTERVAL      run the model every N frames (default 1)
#   THREADS       engine threads (0: one per core)
#   BACKEND       cpu (default), cuda or cuda-fp16 (the CPU engine, with a warning, without a GPU)
#   DEVICE_ID     GPU index (default 0)
#   CUDA_GRAPHS   false: launch every kernel of every clip (default true: CUDA graph replays)
#   BATCH         mode=sync scripts: clips per pass, 1-8 (default 1; cuda runs them at once)
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DTFSAL_BUILD="${DTFSAL_BUILD:-release}"
TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$REPO/target}")"
export GST_PLUGIN_PATH="$TARGET_DIR/$DTFSAL_BUILD${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
MODEL="${MODEL:-}"
# the element property, only when a model is given (an empty `model=` would swallow the next property)
MODEL_ARG=${MODEL:+model=\"$MODEL\"}
MEDIA="${MEDIA:-$REPO/media/bigbuckbunny.mp4}"
INTERVAL="${INTERVAL:-1}"
THREADS="${THREADS:-0}"
# the engine's element properties, shared by every script
ENGINE_ARGS="backend=${BACKEND:-cpu} device-id=${DEVICE_ID:-0} cuda-graphs=${CUDA_GRAPHS:-true} threads=$THREADS"
# and for mode=sync
SYNC_ARGS="$ENGINE_ARGS batch=${BATCH:-1}"

if [ ! -e "$TARGET_DIR/$DTFSAL_BUILD/libgstdtfsal.so" ]; then
  echo "libgstdtfsal.so not found in $TARGET_DIR/$DTFSAL_BUILD: run cargo build -p gst-dtfsal --release (or set DTFSAL_BUILD=debug)" >&2
  exit 1
fi
if ! gst-inspect-1.0 dtfsal >/dev/null 2>&1; then
  echo "GStreamer cannot load the dtfsal plugin from $GST_PLUGIN_PATH" >&2
  exit 1
fi

have() { gst-inspect-1.0 "$1" >/dev/null 2>&1; }

# H.264 encoder available here: x264enc (honours ROI meta), else openh264enc, else none.
h264_encoder() {
  if have x264enc; then echo "x264enc tune=zerolatency speed-preset=veryfast"
  elif have openh264enc; then echo "openh264enc"
  else echo ""; fi
}

# Encoder chain ending in something mp4mux takes: H.264 (+ h264parse) or MPEG-4 part 2.
mp4_encoder() {
  local enc; enc="$(h264_encoder)"
  if [ -n "$enc" ]; then echo "$enc ! h264parse"; else echo "avenc_mpeg4 bitrate=${1:-4000000}"; fi
}

# Demuxes and decodes $MEDIA: emits the video branch on the left (ends in raw video) and the
# audio branch linked to the element named `s` (audioconvert ! audioresample negotiate 16 kHz mono).
# Queues let the single demuxer thread feed both pads of the aggregator.
decode_media() {
  echo "filesrc location=\"$MEDIA\" ! qtdemux name=d \
    d.audio_0 ! queue max-size-time=3000000000 max-size-bytes=0 max-size-buffers=0 ! avdec_aac ! audioconvert ! audioresample ! s.audio_sink \
    d.video_0 ! queue max-size-time=3000000000 max-size-bytes=0 max-size-buffers=0 ! avdec_h264 ! videoconvert"
}

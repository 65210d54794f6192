#!/usr/bin/env bash
# 1. `dtfsal bench-triton`: model round trips (no decoding), local CPU engine vs Triton, and 4 clients at once.
# 2. Triton backend vs the local engine on the sample media (embedded tiny AV demo model, every frame analysed,
# sync mode, decode included): per-clip wall time of one `dtfsal predict` each with --backend cpu, onnx
# (ONNX Runtime in process) and triton (the same ONNX file served by the local CPU Triton of
# scripts/setup.sh, python backend), then four `dtfsal predict --backend triton` at once sharing one server.
#   scripts/bench-triton.sh            (THREADS=2, OUT=out/bench-triton; needs a release build of dtfsal-cli)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
THREADS=${THREADS:-2}
OUT=${OUT:-out/bench-triton}
DTFSAL=${DTFSAL:-${CARGO_TARGET_DIR:-target}/release/dtfsal}
PY=${DTFSAL_PYTHON:-python/.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")   # absolute, venv symlink kept
MEDIA=media/bigbuckbunny.mp4
FRAMES=132
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -f "$OUT/demo.onnx" ] || (cd python && "$PY" -m dtfsal.export_onnx --weights ../models/dtfsal-tiny-av-synth.safetensors --out "$OUT/demo.onnx" >/dev/null)
"$DTFSAL" triton-repo --onnx "$OUT/demo.onnx" --out "$OUT/repo" --platform python --threads "$THREADS" --instances 1
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$(ls "$ROOT"/python/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -1)}
line=$(TRITON_LOG="$OUT/tritonserver.log" scripts/triton-server.sh "$OUT/repo")
PID=$(sed 's/.*pid=\([0-9]*\).*/\1/' <<<"$line"); URL=$(sed 's/.*grpc=\([^ ]*\).*/\1/' <<<"$line")
trap 'kill $PID 2>/dev/null || true' EXIT
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
t() { local s e; s=$(date +%s.%N); "$@" >"$OUT/last.log" 2>&1 || { cat "$OUT/last.log" >&2; exit 1; }; e=$(date +%s.%N); calc "$e - $s" 3; }
per_clip() { calc "$1 * 1000 / $FRAMES" 1; }
# model round trips only (no decoding): local CPU engine vs Triton, then --streams clients at once
"$DTFSAL" bench-triton --server-url "$URL" --threads "$THREADS" --runs "${RUNS:-10}" --streams 4 --json "$OUT/bench-roundtrip.json"
# whole pipelines (decode included); warm-up first (page cache)
"$DTFSAL" predict "$MEDIA" --backend triton --server-url "$URL" --interval 8 --out "$OUT/warm" >/dev/null 2>&1
cpu=$(t "$DTFSAL" predict "$MEDIA" --backend cpu --threads "$THREADS" --out "$OUT/maps-cpu")
onnx=$(t "$DTFSAL" predict "$MEDIA" --backend onnx --weights "$OUT/demo.onnx" --threads "$THREADS" --out "$OUT/maps-onnx")
tri=$(t "$DTFSAL" predict "$MEDIA" --backend triton --server-url "$URL" --max-in-flight 1 --out "$OUT/maps-triton")
tri2=$(t "$DTFSAL" predict "$MEDIA" --backend triton --server-url "$URL" --max-in-flight 2 --out "$OUT/maps-triton2")
s=$(date +%s.%N)
for i in 1 2 3 4; do
  "$DTFSAL" predict "$MEDIA" --backend triton --server-url "$URL" --max-in-flight 2 --out "$OUT/maps-4x-$i" >/dev/null 2>&1 &
done
wait
four=$(calc "$(date +%s.%N) - $s" 3)
printf '{"frames": %d, "threads": %d,\n' $FRAMES "$THREADS" | tee "$OUT/bench.json"
printf ' "cpu_ms_per_clip": %s, "onnx_ms_per_clip": %s, "triton_ms_per_clip": %s, "triton_inflight2_ms_per_clip": %s,\n' \
  "$(per_clip "$cpu")" "$(per_clip "$onnx")" "$(per_clip "$tri")" "$(per_clip "$tri2")" | tee -a "$OUT/bench.json"
printf ' "four_pipelines_s": %.1f, "four_pipelines_clips_per_s": %.2f, "one_pipeline_clips_per_s": %.2f}\n' \
  "$four" "$(calc "4 * $FRAMES / $four")" "$(calc "$FRAMES / $tri2")" | tee -a "$OUT/bench.json"

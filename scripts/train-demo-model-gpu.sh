#!/usr/bin/env bash
# The demo model's GPU recipe (models/README.md): generate the synthetic data with all cores,
# pre-train the VGGish trunk on its sound events (python -m dtfsal.pretrain_vggish, the stand-in
# for AudioSet weights), train the tiny AV model on it (trunk frozen) and, with RUN_V=1, the V-only
# model side by side, then check on the test split that the AV model uses its sound
# (python -m dtfsal.audio_ablation).
# Runs where python3 has torch with CUDA (no Rust, no espeak-ng needed: the words come from a speech
# bank written beforehand with `python -m dtfsal.synth --write-speech-bank .devdata/speech-bank.npz`).
# Usage: scripts/train-demo-model-gpu.sh OUT_DIR
#   env: TRAIN videos (360), EPOCHS (8), MINUTES per training run (4), PRE_EPOCHS (20), RUN_V (0), JOBS
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:?usage: train-demo-model-gpu.sh OUT_DIR}
DATA=${DATA:-/tmp/dtfsal-synth}
TRAIN=${TRAIN:-360} EPOCHS=${EPOCHS:-8} MINUTES=${MINUTES:-4} PRE_EPOCHS=${PRE_EPOCHS:-20}
RUN_V=${RUN_V:-0} JOBS=${JOBS:-$(nproc)}
BANK=${BANK:-$ROOT/.devdata/speech-bank.npz}
PY=${PY:-python3}
export PYTHONPATH="$ROOT/python" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
t0=$(date +%s)
"$PY" -m dtfsal.synth --out "$DATA" --db SYNTH --train "$TRAIN" --val 8 --test 16 --frames 100 --seed 0 \
  --jobs "$JOBS" --speech-bank "$BANK" >/dev/null
echo "data: $TRAIN/8/16 videos in $(( $(date +%s) - t0 )) s"
LOGS=$(mktemp -d)
"$PY" -m dtfsal.pretrain_vggish --root "$DATA" --db SYNTH --config tiny --epochs "$PRE_EPOCHS" --stride 4 \
  --batch-size 64 --device cuda --jobs "$JOBS" --out "$LOGS/vggish.safetensors"
echo "vggish pre-trained at $(( $(date +%s) - t0 )) s"
workers=$(( RUN_V == 1 ? JOBS / 2 : JOBS ))
train() {  # name variant [extra args]
  "$PY" -m dtfsal.train --root "$DATA" --db SYNTH --config tiny --variant "$2" "${@:3}" --device cuda --cache \
    --epochs "$EPOCHS" --batch-size 16 --lr 1e-3 --lr-step 6 --warmup 100 --clip-grad 1.0 --stride 8 \
    --patience 5 --workers "$workers" --max-minutes "$MINUTES" --seed 0 --dtype f16 \
    --out "$OUT/$1.safetensors" >"$LOGS/$1.log" 2>&1
}
names=(av)
train av av --init-vggish "$LOGS/vggish.safetensors" & pids=($!)
if [ "$RUN_V" = 1 ]; then train v v & pids+=($!); names+=(v); fi
wait "${pids[@]}" || true
for n in "${names[@]}"; do echo "== $n"; cat "$LOGS/$n.log"; done
echo "training done at $(( $(date +%s) - t0 )) s"
echo "== ablation av"
"$PY" -m dtfsal.audio_ablation --root "$DATA" --db SYNTH --split test_1 --weights "$OUT/av.safetensors" \
  --stride 16 --device cuda
echo "all done at $(( $(date +%s) - t0 )) s"

#!/usr/bin/env bash
# The demo model's recipe on a CPU machine (models/README.md; the shipped model came from its GPU twin,
# scripts/train-demo-model-gpu.sh, with 3x the videos and more epochs):
#   1. generate the synthetic audio-visual dataset (python -m dtfsal.synth, seeded);
#   2. pre-train the VGGish trunk on the synthetic sound events (python -m dtfsal.pretrain_vggish, the
#      stand-in for AudioSet weights), then train the tiny AV model on it (trunk frozen, as the spec
#      keeps it) and the V-only model side by side, one CPU thread each (python -m dtfsal.train);
#   3. evaluate AV, V and a centre-bias baseline on the held-out test split (dtfsal eval), and whether
#      the AV model uses its sound (python -m dtfsal.audio_ablation).
# Usage: scripts/train-demo-model.sh [DATA_DIR] [OUT_DIR]   (defaults: /tmp/dtfsal-synth, out/demo-model)
# Takes about an hour on 2 cores. Copy OUT_DIR/tiny-av.safetensors to models/ to ship it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${1:-/tmp/dtfsal-synth}
OUT=${2:-$ROOT/out/demo-model}
EPOCHS=${EPOCHS:-4}
"$ROOT/scripts/setup.sh"
PY="$ROOT/python/.venv/bin/python"
export PYTHONPATH="$ROOT/python"
mkdir -p "$OUT"

if [ ! -f "$DATA/fold_lists/SYNTH_list_test_1_fps.txt" ]; then
  "$PY" -m dtfsal.synth --out "$DATA" --db SYNTH --train 120 --val 8 --test 16 --frames 100 --seed 0
fi

"$PY" -m dtfsal.pretrain_vggish --root "$DATA" --db SYNTH --config tiny --epochs 5 --stride 8 --threads 2 \
  --out "$OUT/vggish.safetensors" | tee "$OUT/pretrain-vggish.log"

train() {  # variant [extra args]
  "$PY" -m dtfsal.train --root "$DATA" --db SYNTH --config tiny --variant "$1" "${@:2}" \
    --epochs "$EPOCHS" --batch-size 4 --lr 5e-4 --lr-step 3 --stride 16 --threads 1 --seed 0 \
    --dtype f16 --out "$OUT/tiny-$1.safetensors" >"$OUT/train-$1.log" 2>&1
}
train av --init-vggish "$OUT/vggish.safetensors" --cache --workers 1 & pav=$!
train v & pv=$!
wait $pav $pv

cargo build --release -p dtfsal-cli
BIN="$ROOT/target/release/dtfsal"
for m in av v; do
  "$BIN" eval --layout stavis --root "$DATA" --db SYNTH --split test_1 --weights "$OUT/tiny-$m.safetensors" \
    --json "$OUT/eval-$m.json" --csv "$OUT/eval-$m.csv" --figure "$OUT/eval-$m.png" | tee "$OUT/eval-$m.txt"
done
"$BIN" eval --layout stavis --root "$DATA" --db SYNTH --split test_1 --baseline centre \
  --json "$OUT/eval-centre.json" | tee "$OUT/eval-centre.txt"
"$PY" -m dtfsal.audio_ablation --root "$DATA" --db SYNTH --split test_1 --weights "$OUT/tiny-av.safetensors" \
  | tee "$OUT/audio-ablation.txt"
echo "models, curves and scores in $OUT"

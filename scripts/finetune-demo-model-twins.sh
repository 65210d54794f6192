#!/usr/bin/env bash
# Stage 3 of the demo model (models/README.md), on a 2-core CPU: teach the GPU-trained AV model which
# object its sound belongs to, with audio twins.
#   1. generate the synthetic data with 2 audio twins per training and validation video (the same frames,
#      another object sounding: python -m dtfsal.synth --twins), the test split without twins (the model
#      card's test_1), and a twin test set (test_1 and one twin of each video: only the sound tells a
#      video from its twin);
#   2. fine-tune the shipped AV model with its visual trunk frozen (python -m dtfsal.train --freeze-trunk:
#      trunk features computed once per distinct clip, an epoch runs only enhancement, AMFBs, decoders);
#      The V-only model goes through the same stage, as the control;
#   3. evaluate AV and V-only (before and after) and a centre-bias baseline on both test sets (dtfsal eval),
#      AV against V paired per video (python -m dtfsal.paired_eval), and whether the AV model uses its sound
#      (python -m dtfsal.audio_ablation).
# Usage: scripts/finetune-demo-model-twins.sh [OUT_DIR]   (default out/demo-model-twins)
#   env: DATA (/tmp/dtfsal-synth-twins), TWIN_TEST (/tmp/dtfsal-synth-twin-test), TRAIN videos (240),
#        MINUTES per fine-tuning run (35), EPOCHS (4), BASE / BASE_V (the AV and V-only models to fine-tune:
#        stage 2's, models/training/tiny-av-stage2.safetensors and tiny-v.safetensors), TRUNK_CACHE (a
#        folder: keep the trunk features there, ~3 GB per model at TRAIN=240 (0.65 MB per distinct clip +
#        0.25 MB per clip, trunk_cache.py), so a rerun on the same data skips the
#        13-minute trunk pass; unset: recomputed every run)
# Copy OUT_DIR/tiny-av.safetensors to models/dtfsal-tiny-av-synth.safetensors to ship it. Takes ~2 hours on 2 cores.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/out/demo-model-twins}
DATA=${DATA:-/tmp/dtfsal-synth-twins}
TWIN_TEST=${TWIN_TEST:-/tmp/dtfsal-synth-twin-test}
TRAIN=${TRAIN:-240} MINUTES=${MINUTES:-35} EPOCHS=${EPOCHS:-4}
BASE=${BASE:-$ROOT/models/training/tiny-av-stage2.safetensors}
BASE_V=${BASE_V:-$ROOT/models/training/tiny-v.safetensors}
"$ROOT/scripts/setup.sh"
PY="$ROOT/python/.venv/bin/python"
export PYTHONPATH="$ROOT/python" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
cp "$BASE" "$OUT/base-av.safetensors"  # BASE may be the file this run replaces
cp "$BASE_V" "$OUT/base-v.safetensors"

if [ ! -f "$DATA/fold_lists/SYNTH_list_test_1_fps.txt" ]; then
  "$PY" -m dtfsal.synth --out "$DATA" --db SYNTH --train "$TRAIN" --val 16 --test 16 --frames 100 --seed 0 \
    --twins 2 --twin-splits train,val --jobs "$(nproc)" >/dev/null
fi
if [ ! -f "$TWIN_TEST/fold_lists/SYNTH_list_test_1_fps.txt" ]; then
  "$PY" -m dtfsal.synth --out "$TWIN_TEST" --db SYNTH --train 0 --val 0 --test 16 --frames 100 --seed 0 \
    --twins 1 --jobs "$(nproc)" >/dev/null
fi

finetune() {  # variant base-model
  "$PY" -m dtfsal.train --root "$DATA" --db SYNTH --config tiny --variant "$1" --init "$2" --freeze-trunk \
    ${TRUNK_CACHE:+--trunk-cache "$TRUNK_CACHE"} \
    --epochs "$EPOCHS" --batch-size 16 --lr 3e-4 --lr-step 8 --warmup 50 --clip-grad 1.0 --stride 8 --patience 4 \
    --threads "$(nproc)" --max-minutes "$MINUTES" --seed 0 --dtype f16 --out "$OUT/tiny-$1.safetensors" \
    | tee "$OUT/train-$1.log"
}
finetune av "$OUT/base-av.safetensors"
# the control: the V-only model through the same stage (it cannot hear which twin it sees)
finetune v "$OUT/base-v.safetensors"

cargo build --release -p dtfsal-cli
BIN="$ROOT/target/release/dtfsal"
score() {  # set root every model-name [weights]
  local args=(--weights "${5:-}")
  [ "$4" = centre ] && args=(--baseline centre)
  "$BIN" eval --layout stavis --root "$2" --db SYNTH --split test_1 --every "$3" "${args[@]}" --threads "$(nproc)" \
    --json "$OUT/eval-$1-$4.json" --csv "$OUT/eval-$1-$4.csv" | tee "$OUT/eval-$1-$4.txt"
}
# the model card's test split, every frame; the twin test set, every 2nd frame
score test "$DATA" 1 av "$OUT/tiny-av.safetensors"
score test "$DATA" 1 v "$OUT/tiny-v.safetensors"
for m in av:"$OUT/tiny-av.safetensors" base-av:"$OUT/base-av.safetensors" v:"$OUT/tiny-v.safetensors" \
         base-v:"$OUT/base-v.safetensors" centre:; do
  score twins "$TWIN_TEST" 2 "${m%%:*}" "${m#*:}"
done
for set in test twins; do
  echo "== $set: AV - V (paired per video)"
  "$PY" -m dtfsal.paired_eval "$OUT/eval-$set-av.csv" "$OUT/eval-$set-v.csv" | tee "$OUT/paired-$set-av-v.txt"
done
"$PY" -m dtfsal.audio_ablation --root "$DATA" --db SYNTH --split test_1 --weights "$OUT/tiny-av.safetensors" \
  --stride 8 --threads "$(nproc)" | tee "$OUT/audio-ablation.txt"
echo "models, curves and scores in $OUT"

#!/usr/bin/env bash
# ARC post-training of the tiny model of scripts/train_tiny.sh, with and without the contrastive loss, then the
# paper's table in miniature (scripts/arc_table.py). Resumable like every arcaudio run.
#
#   bash scripts/arc_tiny.sh [OUT_DIR]    # the train_tiny.sh folder, default runs/tiny
#   environment overrides: SEED, ARC_STEPS, ARC_LR, ARC_BATCH, STYLE (train | heldout captions)
set -euo pipefail
OUT=${1:-runs/tiny}
SEED=${SEED:-0}
ARC_STEPS=${ARC_STEPS:-600}
ARC_LR=${ARC_LR:-3e-5}
ARC_BATCH=${ARC_BATCH:-16}
STYLE=${STYLE:-train}
A=${ARCAUDIO:-.venv/bin/arcaudio}
PY=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1

for variant in arc arc_nolc; do
  extra=()
  [ "$variant" = arc_nolc ] && extra=(--set arc.contrastive=false)
  $A arc "$OUT/flow/model.safetensors" --data "$OUT/latents" --out "$OUT/$variant" --seed "$SEED" \
    --steps "$ARC_STEPS" --batch-size "$ARC_BATCH" --set arc.generator_lr="$ARC_LR" --set arc.discriminator_lr="$ARC_LR" \
    --set log_every=50 --set checkpoint_every=200 --no-progress "${extra[@]}"
done
$PY scripts/arc_table.py "$OUT/flow/model.safetensors" "$OUT/arc/model.safetensors" \
  "$OUT/arc_nolc/model.safetensors" --prompts 32 --per-prompt 4 --style "$STYLE" --json "$OUT/arc_table.json"

#!/usr/bin/env bash
# Train arcaudio's built-in default model from nothing, on the CPU: the procedural set, the spectral autoencoder,
# the rectified flow (scripts/train_tiny.sh), ARC post-training with the contrastive loss, then the export that
# ships as arcaudio/weights/default.safetensors. Same seed, same machine type -> the same weights (the
# determinism test, tests/test_recipe.py, runs this script twice at a few steps and compares the bytes).
#
#   bash scripts/train_default.sh [OUT_DIR]     # default runs/default; about 35 minutes on 2 CPU cores
#   environment overrides: those of train_tiny.sh and SEED, ARC_STEPS, ARC_LR, ARC_BATCH, EXPORT (the
#   destination of the exported weights; default: OUT_DIR/default.safetensors), SKIP_EVAL=1 (no adherence runs)
#
# Each stage is resumable: re-running after an interruption continues where it stopped. Threads are pinned (2) so
# that the reductions, and so the weights, do not depend on the core count.
set -euo pipefail
OUT=${1:-runs/default}
SEED=${SEED:-0}
ARC_STEPS=${ARC_STEPS:-600}
ARC_LR=${ARC_LR:-3e-5}
ARC_BATCH=${ARC_BATCH:-16}
EXPORT=${EXPORT:-$OUT/default.safetensors}
A=${ARCAUDIO:-.venv/bin/arcaudio}
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-2}
export SEED
HERE=$(cd "$(dirname "$0")" && pwd)
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

# the flow draws a fresh caption for every clip at every step (flow.recaption), so that the model follows captions
# phrased in ways it never saw, not only the 2000 stored ones
SKIP_EVAL=1 RECAPTION=${RECAPTION:-true} bash "$HERE/train_tiny.sh" "$OUT"

stamp "ARC post-training ($ARC_STEPS steps, relativistic + contrastive)"
$A arc "$OUT/flow/model.safetensors" --data "$OUT/latents" --out "$OUT/arc" --seed "$SEED" \
  --steps "$ARC_STEPS" --batch-size "$ARC_BATCH" --set arc.generator_lr="$ARC_LR" --set arc.discriminator_lr="$ARC_LR" \
  --set log_every=50 --set checkpoint_every=200 --no-progress

stamp "export -> $EXPORT"
$A convert "$OUT/arc/model.safetensors" "$EXPORT"
sha256sum "$EXPORT"
stamp "done"

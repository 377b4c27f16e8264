#!/usr/bin/env bash
# Train arcaudio's built-in models from nothing, on the CPU: the procedural set, its latents under the harmonic
# codec (no weights to train), the DiT and the word-level text encoder as a rectified flow (the `default-rf`
# model), ARC post-training with the contrastive loss (the `default` model), and the two exported files that ship
# in arcaudio/weights/ (default-rf.safetensors holds only the DiT, the rest is shared with default.safetensors).
# Measured on a 2-core AMD EPYC (avx512_bf16, avx512_vnni): flow 70-79 min (16000 steps, 3.4-3.8 steps/s), ARC
# 1.7 min, encoding ~2 min, synthesis ~1 min.
# Same seed, same machine type -> the same weights (tests/test_recipe.py runs this twice at a few steps per stage).
#
#   bash scripts/train_default.sh [OUT_DIR]     # default runs/default; about 80 minutes on 2 CPU cores
#   environment overrides: PRESET (small-harmonic; or small-partials, the codec before it), SEED, N_CLIPS,
#   FLOW_STEPS, FLOW_BATCH, FLOW_LR, SHORT_SHARE, ARC_STEPS, ARC_LR, ARC_HEAD_LR, ARC_BATCH, EXPORT_DIR (where
#   default.safetensors and default-rf.safetensors go; default OUT_DIR)
#
# Each stage is resumable: re-running after an interruption continues where it stopped, and a finished stage is
# skipped. Threads are pinned (2) so that the reductions, and so the weights, do not depend on the core count.
# Wall time per stage goes to OUT_DIR/recipe.log.
set -euo pipefail
OUT=${1:-runs/default}
SEED=${SEED:-0}
PRESET=${PRESET:-small-harmonic}
N_CLIPS=${N_CLIPS:-4000}
FLOW_STEPS=${FLOW_STEPS:-16000}
FLOW_BATCH=${FLOW_BATCH:-16}
FLOW_LR=${FLOW_LR:-8e-4}
SHORT_SHARE=${SHORT_SHARE:-0.5}
ARC_STEPS=${ARC_STEPS:-150}
ARC_LR=${ARC_LR:-1e-5}
ARC_HEAD_LR=${ARC_HEAD_LR:-1e-3}
ARC_BATCH=${ARC_BATCH:-16}
EXPORT_DIR=${EXPORT_DIR:-$OUT}
A=${ARCAUDIO:-.venv/bin/arcaudio}
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-2}
mkdir -p "$OUT"
LOG="$OUT/recipe.log"
stage() {  # stage NAME COMMAND...: run it, log its wall time
  local name=$1 t0
  shift
  t0=$(date +%s)
  echo "[$(date -u +%FT%TZ)] $name" | tee -a "$LOG"
  "$@"
  echo "[$(date -u +%FT%TZ)] $name: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
}

[ -f "$OUT/synth/manifest.jsonl" ] || stage "synthesise $N_CLIPS procedural clips" \
  $A synth "$OUT/synth" -n "$N_CLIPS" --seed "$SEED"

# the partials codec has no weights to train (arcaudio/models/partials_autoencoder.py): the set goes straight to
# latents
[ -f "$OUT/latents/index.json" ] || stage "encode the set to latents (the $PRESET codec)" \
  $A encode "$PRESET" "$OUT/synth/manifest.jsonl" "$OUT/latents" --batch-size 8

# a fresh caption for every clip at every step, half of them naming only some of its attributes (short prompts);
# uniform flow times (with logit-normal ones the DiT barely used the prompt near t = 1); CFG dropout for RF + CFG
stage "train the DiT and the word-level text encoder as a rectified flow ($FLOW_STEPS steps)" \
  $A train --stage flow --model "$PRESET" --data "$OUT/latents" --out "$OUT/flow" --seed "$SEED" \
  --steps "$FLOW_STEPS" --batch-size "$FLOW_BATCH" --set optim.lr="$FLOW_LR" --set optim.warmup_steps=200 \
  --set optim.schedule=cosine --set flow.time_sampler=uniform --set flow.cfg_dropout=0.1 --set flow.recaption=true \
  --set flow.short_caption_share="$SHORT_SHARE" --set log_every=50 --set checkpoint_every=500 --no-progress

# the contrastive term's wrong prompts contradict each clip (a shorter caption is often still true of it). The
# discriminator's fresh conv head learns at ARC_HEAD_LR: at the trunk's 1e-5 it still scored real and generated
# latents, and right and wrong prompts, alike after 150 steps (L_R 0.72, L_C 0.66; chance 0.69), so the generator
# trained against noise (and, run longer, drifted the chord's interval channels: a major triad at 3.4 + 3.0
# semitones after 600 steps). 150 steps is the setting measured on six seeds (README: "ARC runs 150 steps")
stage "ARC post-training ($ARC_STEPS steps, relativistic + contrastive)" \
  $A arc "$OUT/flow/model.safetensors" --data "$OUT/latents" --out "$OUT/arc" --seed "$SEED" \
  --steps "$ARC_STEPS" --batch-size "$ARC_BATCH" --set arc.generator_lr="$ARC_LR" --set arc.discriminator_lr="$ARC_LR" \
  --set arc.discriminator_head_lr="$ARC_HEAD_LR" --set arc.recaption=true --set arc.short_caption_share="$SHORT_SHARE" \
  --set arc.contrastive_shuffle=conflicting --set log_every=50 --set checkpoint_every=250 --no-progress

mkdir -p "$EXPORT_DIR"
stage "export -> $EXPORT_DIR/default.safetensors, default-rf.safetensors" bash -c "
  $A convert '$OUT/arc/model.safetensors' '$EXPORT_DIR/default.safetensors' &&
  $A convert '$OUT/flow/model.safetensors' '$EXPORT_DIR/default-rf.safetensors' --base '$EXPORT_DIR/default.safetensors'"
sha256sum "$EXPORT_DIR/default.safetensors" "$EXPORT_DIR/default-rf.safetensors" | tee -a "$LOG"

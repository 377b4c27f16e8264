#!/usr/bin/env bash
# Train the `tiny` text-to-audio model from nothing on the CPU, on the procedural set, then measure its prompt
# adherence with the analytic probes. Every stage is an ordinary arcaudio command; each is resumable, so the
# script can be re-run after an interruption and continues where it stopped.
#
#   bash scripts/train_tiny.sh [OUT_DIR]    # default runs/tiny
#   environment overrides: SEED, N_CLIPS, AE_STEPS, AE_BATCH, AE_LR, AE_KL, FLOW_STEPS, CFG, SKIP_EVAL=1 (train only),
#   RECAPTION=true (a fresh caption per clip and step: see flow.recaption)
#
# The model is the `tiny-spectral` preset: its STFT-domain autoencoder learns smooth latents and keeps stereo
# position, loudness and envelope in CPU minutes, where the waveform (Oobleck) one of `tiny` does not
# (see arcaudio/models/spectral_autoencoder.py). The flow trains on uniform times: with logit-normal ones, the
# DiT barely used the prompt near t = 1, where a sample's overall character is decided.
# fp32 on purpose: at these widths, bf16 autocast on this CPU made a flow step ~8x slower, not faster.
set -euo pipefail
OUT=${1:-runs/tiny}
SEED=${SEED:-0}
N_CLIPS=${N_CLIPS:-2000}
AE_STEPS=${AE_STEPS:-1000}
AE_BATCH=${AE_BATCH:-8}
AE_LR=${AE_LR:-5e-4}
AE_KL=${AE_KL:-1e-5}
FLOW_STEPS=${FLOW_STEPS:-4500}
RECAPTION=${RECAPTION:-false}
CFG=${CFG:-4}
A=${ARCAUDIO:-.venv/bin/arcaudio}
export HF_HUB_OFFLINE=1
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

stamp "synthesise $N_CLIPS procedural clips"
[ -f "$OUT/synth/manifest.jsonl" ] || $A synth "$OUT/synth" -n "$N_CLIPS" --seed "$SEED" 2>/dev/null

stamp "train the autoencoder ($AE_STEPS steps)"
$A train --stage autoencoder --model tiny-spectral --data "$OUT/synth/manifest.jsonl" --out "$OUT/ae" \
  --seed "$SEED" --steps "$AE_STEPS" --batch-size "$AE_BATCH" --set autoencoder.crop_samples=32768 \
  --set autoencoder.kl_weight="$AE_KL" --set autoencoder.envelope_weight=1.0 --set optim.lr="$AE_LR" \
  --set optim.warmup_steps=50 --set optim.schedule=cosine --set "optim.betas=[0.8,0.99]" --set optim.grad_clip=10.0 \
  --set log_every=50 --set checkpoint_every=300 --no-progress

stamp "encode the set to latents"
$A encode "$OUT/ae/model.safetensors" "$OUT/synth/manifest.jsonl" "$OUT/latents" --batch-size 8 2>/dev/null

stamp "train the DiT and the byte-level T5 as a rectified flow ($FLOW_STEPS steps)"
$A train --stage flow --model "$OUT/ae/model.safetensors" --data "$OUT/latents" --out "$OUT/flow" --seed "$SEED" \
  --steps "$FLOW_STEPS" --batch-size 16 --set optim.lr=1e-3 --set optim.warmup_steps=100 \
  --set optim.schedule=cosine --set flow.time_sampler=uniform --set flow.cfg_dropout=0.1 --set flow.recaption="$RECAPTION" \
  --set log_every=25 \
  --set checkpoint_every=250 --no-progress
stamp "training done"
[ "${SKIP_EVAL:-0}" = 1 ] && exit 0

$A adherence "$OUT/ae/model.safetensors" --reconstruction --n 100
$A adherence "$OUT/flow/model.safetensors" --n 100 --style train --steps 50 --sampler euler --cfg-scale "$CFG"
$A adherence "$OUT/flow/model.safetensors" --n 100 --style heldout --steps 50 --sampler euler --cfg-scale "$CFG"
stamp "all done"

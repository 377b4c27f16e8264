"""The default model's recipe (scripts/train_default.sh) is reproducible: run twice from nothing with the same seed,
at a few steps per stage, it writes byte-identical weights at every stage."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("bash") is None, reason="the recipe is a bash script")
def test_recipe_twice_gives_identical_weights(tmp_path):
    arcaudio = Path(sys.executable).parent / "arcaudio"
    env = {**os.environ, "ARCAUDIO": str(arcaudio), "N_CLIPS": "24", "FLOW_STEPS": "2", "ARC_STEPS": "2",
           "ARC_BATCH": "4", "SEED": "3"}
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        subprocess.run(["bash", str(ROOT / "scripts" / "train_default.sh"), str(out)], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        files = ["latents/shard-00000.safetensors", "flow/model.safetensors", "arc/model.safetensors",
                 "default.safetensors", "default-rf.safetensors"]
        digests.append({f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in files})
    assert digests[0] == digests[1]
    from safetensors import safe_open

    with safe_open(str(tmp_path / "a" / "default-rf.safetensors"), framework="pt") as f:
        assert f.keys() and all(k.startswith("dit.") for k in f.keys())  # the rest is default.safetensors'
    from arcaudio import load

    assert load(tmp_path / "a" / "default-rf.safetensors").config.objective == "rectified_flow"

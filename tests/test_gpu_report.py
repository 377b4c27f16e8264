"""scripts/gpu_report.py, the one-run GPU check, smoke-tested on CPU at the tiny preset (nothing is captured off
CUDA; the script's sections and their JSON are what is checked, so that a GPU's scarce minutes are not spent on a
broken script)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_report.py"


def test_unknown_sections_are_refused_by_name(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--json", str(tmp_path / "r.json"), "--device", "cpu",
                          "--sections", "agreement,speed"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "--sections takes a comma-separated selection of ['agreement', 'eager', 'captured', 'compiled', " \
           "'levers'], got 'agreement,speed'" in run.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_the_levers_section_runs_every_lever_on_cpu(tmp_path):
    out = tmp_path / "levers.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--json", str(out), "--device", "cpu", "--preset", "tiny",
                          "--sections", "levers", "--budget-s", "100000"], capture_output=True, text=True,
                         timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["sections"] == ["levers"] and "agreement_sao_small" not in report
    failed = {key: value for key, value in report.items() if isinstance(value, str) and value.startswith("failed")}
    assert not failed
    times = report["decoder_layer_times"]
    depth = len(times["layers"])
    assert all(times[f"b1,{i},{layout}"] > 0 for i in range(depth) for layout in ("ncl", "channels_last_2d"))
    layout = report["lever_decoder_layout_per_layer"]["layout"]
    assert layout == [min(("channels_last_2d", "ncl"), key=lambda name, i=i: times[f"b1,{i},{name}"])
                      for i in range(depth)]
    assert report["lever_text_encoder_compiled"]["parts"] == ["text_encoder", "dit", "decoder"]
    assert report["lever_max_autotune"]["mode"] == "max-autotune-no-cudagraphs"
    for key in ("lever_baseline", "lever_decoder_layout_per_layer", "lever_text_encoder_compiled",
                "lever_max_autotune", "lever_all"):
        assert report[key]["device"]["end_to_end"]["median_ms"] > 0

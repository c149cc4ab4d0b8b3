import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgessl.recipe import RecipeError, load_recipe
from edgessl.train.pretrain import pretrain

ROOT = Path(__file__).resolve().parents[2]


def test_two_gloo_processes_under_torchrun_stay_in_sync(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "edgessl", "pretrain", "--recipe", "recipes/smoke.yaml",
           "--out", str(tmp_path / "run"), "--no-probe", "threads=1", "optim.epochs=1"]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "run" / "distributed.json").read_text())
    assert report["world_size"] == 2
    assert report["steps"] == 8  # 512 synthetic images / global batch 64: the step count does not depend on the world size
    first, second = report["parameter_checksums"]
    assert first == second
    assert (tmp_path / "run" / "encoder.pt").is_file()
    assert done.stdout.count("pretrained 8 steps on 2 processes") == 1  # rank 0 alone reports


def test_bf16_autocast_trains_on_cpu(tmp_path):
    recipe = load_recipe(ROOT / "recipes" / "smoke.yaml", ["precision=bf16", "optim.epochs=1", "optim.batch_size=32"])
    result = pretrain(recipe, tmp_path)
    assert result.steps == 16 and result.encoder_path.is_file()


def test_unknown_precision_and_missing_gpu_are_clear_errors(tmp_path):
    with pytest.raises(RecipeError, match="known: fp32, bf16"):
        pretrain(load_recipe(ROOT / "recipes" / "smoke.yaml", ["precision=fp16"]), tmp_path)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RecipeError, match="no CUDA device"):
            pretrain(load_recipe(ROOT / "recipes" / "smoke.yaml", ["device=cuda"]), tmp_path)

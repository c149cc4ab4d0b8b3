import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from edgessl.recipe import RecipeError, load_recipe
from edgessl.ssl.losses import vicreg_loss
from edgessl.train.distributed import check_device, gather_batches
from edgessl.train.pretrain import pretrain

ROOT = Path(__file__).resolve().parents[2]


def test_two_gloo_processes_under_torchrun_stay_in_sync(tmp_path):
    done = _torchrun_smoke(tmp_path / "run", "optim.epochs=1")
    report = json.loads((tmp_path / "run" / "distributed.json").read_text())
    assert report["world_size"] == 2
    assert report["steps"] == 8  # 512 synthetic images / global batch 64: the step count does not depend on the world size
    first, second = report["parameter_checksums"]
    assert first == second
    assert (tmp_path / "run" / "encoder.pt").is_file()
    assert done.stdout.count("pretrained 8 steps on 2 processes") == 1  # rank 0 alone reports


def _torchrun_smoke(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "edgessl", "pretrain", "--recipe", "recipes/smoke.yaml",
           "--out", str(out), "--no-probe", "threads=1", *overrides]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_a_time_budget_stops_every_torchrun_rank_at_the_same_step(tmp_path):
    # 1.2 s: over after a few of the 16 steps (~1.2-1.6 s each on this host, ~0.5 s on a fast day). A 6-ms budget
    # was over before the first step whenever a loaded machine held rank 0 back that long (11 of 50 runs in two loops at once).
    done = _torchrun_smoke(tmp_path / "run", "optim.max_minutes=0.02")
    report = json.loads((tmp_path / "run" / "distributed.json").read_text())
    assert 1 <= report["steps"] < 16
    first, second = report["parameter_checksums"]
    assert first == second  # a rank that stopped a step later would differ (or hang in the next all-reduce)
    assert done.stdout.count(f"stopped by optim.max_minutes=0.02 at step {report['steps']}/16") == 1


def _vicreg_on_gathered_batch(rank: int, world: int, init_file: str, z: torch.Tensor, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    local = z.chunk(world, dim=1)[rank].clone().requires_grad_(True)
    gathered = gather_batches(local, dim=1)
    loss = vicreg_loss(gathered[0], gathered[1], 25.0, 25.0, 1.0)
    loss.backward()
    torch.save({"loss": loss.detach(), "grad": local.grad / world}, out)  # / world: what DDP's gradient averaging does
    dist.destroy_process_group()


def test_gather_batches_gives_every_rank_the_single_process_vicreg_loss_and_gradient(tmp_path):
    z = torch.randn(2, 16, 8, generator=torch.Generator().manual_seed(0))  # two views, batch 16, 8 dims
    whole = z.clone().requires_grad_(True)
    expected = vicreg_loss(whole[0], whole[1], 25.0, 25.0, 1.0)
    expected.backward()
    outs = [str(tmp_path / f"rank{r}.pt") for r in range(2)]
    ctx = torch.multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_vicreg_on_gathered_batch, args=(r, 2, str(tmp_path / "init"), z, outs[r])) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    for rank, out in enumerate(outs):
        got = torch.load(out)
        assert torch.allclose(got["loss"], expected.detach())
        assert torch.allclose(got["grad"], whole.grad.chunk(2, dim=1)[rank], atol=1e-6)


def test_bf16_autocast_trains_on_cpu(tmp_path):
    # two steps: on a CPU without bf16 instructions (AVX2 here) a bf16 step takes ~3.5 s at batch 16 (16 steps took 124 s)
    recipe = load_recipe(ROOT / "recipes" / "smoke.yaml", ["precision=bf16", "optim.epochs=1", "optim.batch_size=16", "data.train_limit=32"])
    result = pretrain(recipe, tmp_path)
    assert result.steps == 2 and result.encoder_path.is_file()


def test_unknown_precision_and_missing_gpu_are_clear_errors(tmp_path):
    with pytest.raises(RecipeError, match="known: fp32, bf16"):
        pretrain(load_recipe(ROOT / "recipes" / "smoke.yaml", ["precision=fp16"]), tmp_path)
    with pytest.raises(RecipeError, match="known: adamw, lbfgs"):  # before pretraining, not at its final probe
        pretrain(load_recipe(ROOT / "recipes" / "smoke.yaml", ["probe.solver=sgd"]), tmp_path)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RecipeError, match="no CUDA device"):
            pretrain(load_recipe(ROOT / "recipes" / "smoke.yaml", ["device=cuda"]), tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a CPU-only torch gives")
def test_a_cuda_device_on_a_cpu_build_is_refused_with_what_to_use_instead(tmp_path):
    check_device("cpu")
    with pytest.raises(ValueError, match=r"device 'cuda:1' asked for, but this torch \(.*\) sees no CUDA device; use cpu"):
        check_device("cuda:1")
    with pytest.raises(RecipeError, match="sees no CUDA device"):
        pretrain(load_recipe(ROOT / "recipes" / "smoke.yaml", ["device=cuda"]), tmp_path / "run")

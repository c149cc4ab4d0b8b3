"""How the benchmark tables name the device and the command that reproduces them."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import _common  # noqa: E402  (a script folder, not a package)


def test_device_text_names_threads_and_torchrun_processes() -> None:
    assert _common.device_text({"device": "cpu", "cpu_threads": 2}) == "cpu (2 threads)"  # stored before `processes` existed
    assert _common.device_text({"device": "cpu", "cpu_threads": 1, "processes": 2}) == "cpu (2 processes x 1 thread)"
    assert _common.device_text({"device": "NVIDIA H200", "cpu_threads": 16, "processes": 1}) == "NVIDIA H200"


def test_command_line_names_the_torchrun_launch(monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["benchmarks/ssl_protocol.py", "--data", "../shared/data/cifar10", "threads=1"])
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert _common.command_line() == "python benchmarks/ssl_protocol.py --data ../shared/data/cifar10 threads=1"
    monkeypatch.setenv("RANK", "0")  # torchrun sets RANK beside WORLD_SIZE
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert _common.command_line() == "torchrun --nproc_per_node 2 benchmarks/ssl_protocol.py --data ../shared/data/cifar10 threads=1"
    assert _common.environment()["processes"] == 2
    monkeypatch.setenv("WORLD_SIZE", "16")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert _common.command_line().startswith("torchrun --nnodes 2 --nproc_per_node 8 benchmarks/ssl_protocol.py")


def test_command_line_leaves_out_the_flags_asked_to_drop(monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["benchmarks/ablation.py", "--resume", "--data", "../shared/data/cifar10-resume"])
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert _common.command_line(drop=("--resume",)) == "python benchmarks/ablation.py --data ../shared/data/cifar10-resume"


def test_environment_names_the_cpu_its_torch_kernels_and_the_data_path_libraries() -> None:
    env = _common.environment()
    assert "torch kernels " in env["cpu"] and env["cpu"].split("torch kernels ")[1].rstrip(")")  # e.g. AVX2, AVX512
    assert env["numpy"][0].isdigit() and env["pillow"][0].isdigit()
    assert _common.host_text(env) == f"{_common.device_text(env)} on {env['cpu']}"
    assert _common.host_text({"device": "cpu", "cpu_threads": 1}) == "cpu (1 thread)"  # stored before `cpu` existed

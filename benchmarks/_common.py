"""Shared by the benchmark scripts: environment facts and JSON + Markdown result files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import PIL
import torch

from edgessl.train.distributed import launch_context

RESULTS = Path(__file__).parent / "results"


def environment() -> dict:
    return {
        "device": device_name(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processes": world_size(),
        "platform": platform.platform(),
        "cpu": cpu_text(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,  # decodes the JPEG shards
        "date": utc_now(),
    }


def device_name() -> str:
    return "cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name(0)


def utc_now() -> str:
    """The time a result is stamped with: rows of one file may come from different days (and machine states)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def cpu_text() -> str:
    """The host CPU and the kernels torch picks for it. Rounding, and so the training trajectory, follows the kernel
    set, and the day-to-day speed may follow the CPU: session 59's run left ten earlier runs' trajectory within its
    first 50 steps on a freshly set-up machine, and no record said what had changed (benchmarks/results/README.md)."""
    info = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in _cpuinfo_lines() if ":" in line)}
    name = info.get("model name") or platform.processor() or "unknown CPU"
    model = f"family {info['cpu family']} model {info['model']}; " if "cpu family" in info and "model" in info else ""
    return f"{name} ({model}torch kernels {torch.backends.cpu.get_cpu_capability()})"


def _cpuinfo_lines() -> list[str]:
    """The first processor's block of /proc/cpuinfo (none off Linux)."""
    path = Path("/proc/cpuinfo")
    return path.read_text().split("\n\n", 1)[0].splitlines() if path.is_file() else []


def world_size() -> int:
    """Processes of a torchrun launch (1 for a plain run)."""
    return launch_context().world_size


def device_text(env: dict) -> str:
    """The device as the Markdown tables name it: the thread count matters as much as the chip on a CPU."""
    if env["device"] != "cpu":
        return env["device"]
    processes = env.get("processes", 1)
    threads = f"{env['cpu_threads']} thread{'s' if env['cpu_threads'] > 1 else ''}"
    return f"cpu ({processes} processes x {threads})" if processes > 1 else f"cpu ({threads})"


def host_text(env: dict) -> str:
    """device_text, and the host CPU where the record names it (results written from session 60 on)."""
    return device_text(env) + (f" on {env['cpu']}" if "cpu" in env else "")


def command_line(drop: tuple[str, ...] = ()) -> str:
    """How this script was started, to print in its results; `drop` leaves out flags that only this run needed."""
    launcher, world = "python", world_size()
    if world > 1:
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        nodes = world // per_node
        launcher = "torchrun" + (f" --nnodes {nodes}" if nodes > 1 else "") + f" --nproc_per_node {per_node}"
    return f"{launcher} " + shlex.join([Path(sys.argv[0]).as_posix(), *(a for a in sys.argv[1:] if a not in drop)])


def read_results(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_results(name: str, payload: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(f"wrote {RESULTS / name}.json and .md")

"""Shared by the benchmark scripts: environment facts and JSON + Markdown result files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from edgessl.train.distributed import launch_context

RESULTS = Path(__file__).parent / "results"


def environment() -> dict:
    return {
        "device": "cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processes": world_size(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


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

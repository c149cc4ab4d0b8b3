from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the array cache per test and the thread count small: tests run beside long benchmarks."""
    monkeypatch.setenv("EDGESSL_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)


pytest_plugins = ["tests.deploy_fixtures"]

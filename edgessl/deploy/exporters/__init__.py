"""Exporters: one file per format, each `export_*(model or file, path, ...) -> Path`, plus metadata sidecars."""

from __future__ import annotations

import json
from pathlib import Path

from edgessl.runtimes import package_version

TOOLS = ("edgessl", "torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "onnx", "onnxruntime", "nncf", "tflite-micro")


def tool_versions() -> dict[str, str]:
    return {t: package_version(t) for t in TOOLS}


def metadata_path(artefact: Path) -> Path:
    """Where `write_metadata` puts an artefact's sidecar."""
    return artefact.with_name(artefact.name + ".json")


def read_metadata(artefact: Path) -> dict | None:
    """The sidecar `write_metadata` wrote beside an artefact; None when there is none (a model made elsewhere)."""
    path = metadata_path(artefact)
    return json.loads(path.read_text()) if path.is_file() else None


def write_metadata(artefact: Path, meta: dict) -> Path:
    """`<artefact>.json` beside every artefact: where it came from and with which tools."""
    path = metadata_path(artefact)
    path.write_text(json.dumps({"artefact": artefact.name, "bytes": artefact.stat().st_size, **meta, "tools": tool_versions()}, indent=2))
    return path

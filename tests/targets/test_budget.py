import json
import re
from pathlib import Path

from typer.testing import CliRunner

from edgessl.cli import app
from edgessl.deploy.exporters.c_array import export_c_array, firmware_arena_bytes
from edgessl.targets.budget import budget
from edgessl.targets.catalogue import resolve

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_budget_measures_the_arena_and_bounds_it_by_tensor_lifetimes(int8_model):
    report = budget(int8_model, resolve("cortex-m7"))
    assert report.arena["head"] >= report.arena_lower_bound * 0.9  # the planner cannot beat true liveness by much
    assert report.arena["head"] <= 1.25 * report.arena_lower_bound
    assert any("measured" in line.how for line in report.sram_lines) and any(line.how == "estimated" for line in report.flash_lines)
    model_line = report.flash_lines[0]  # the flatbuffer as the firmware embeds it, smaller than the file given
    assert model_line.bytes < int8_model.stat().st_size and f"{int8_model.stat().st_size:,} B as given" in model_line.how
    d = report.to_dict()
    assert {"schema_version", "flash_total", "sram_total", "fits", "layers", "arena_explanation"} <= d.keys()
    assert sum(layer["macs"] for layer in d["layers"]) > 20e6
    f746 = resolve("cortex-m7", "stm32f746")
    moved = report.against(f746)
    assert (moved.board, moved.flash_limit, moved.sram_limit) == ("stm32f746", f746.flash, f746.sram)
    assert (moved.flash_total, moved.sram_total, moved.arena) == (report.flash_total, report.sram_total, report.arena)
    assert not moved.fits  # over the F746's SRAM, as `edgessl budget --board stm32f746` reports below


def test_sram_counts_the_arena_the_exported_firmware_reserves(int8_model, tmp_path):
    report = budget(int8_model, resolve("cortex-m7"))
    _, header = export_c_array(int8_model, tmp_path, ["a"], firmware_arena_bytes(report.arena["minimum_arena_size"]), name="net")
    defines = dict(re.findall(r"#define NET_(ARENA_\w+) (\d+)", header.read_text()))
    assert "EDGESSL_MODEL_ARENA_SIZE + EDGESSL_MODEL_ARENA_MARGIN" in (ROOT / "export" / "main.cc").read_text()
    arena_lines = [line.bytes for line in report.sram_lines if "arena" in line.item]
    assert sum(arena_lines) == int(defines["ARENA_SIZE"]) + int(defines["ARENA_MARGIN"]) >= report.arena["minimum_arena_size"] + 8192


def test_cli_exit_codes_follow_the_fit(int8_model, tmp_path):
    fits = runner.invoke(app, ["budget", str(int8_model), "--target", "cortex-m7", "--board", "stm32h743", "--json", str(tmp_path / "h7.json")])
    assert fits.exit_code == 0, fits.output
    assert json.loads((tmp_path / "h7.json").read_text())["fits"] is True
    too_big = runner.invoke(app, ["budget", str(int8_model), "--target", "cortex-m7", "--board", "stm32f746"])
    assert too_big.exit_code == 1 and "DOES NOT FIT" in too_big.output
    unknown = runner.invoke(app, ["budget", str(int8_model), "--target", "cortex-m99"])
    assert unknown.exit_code == 2

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from edgessl.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_help_lists_the_commands():
    out = runner.invoke(app, ["--help"]).output
    for cmd in ("pretrain", "probe", "info"):
        assert cmd in out


def test_version_names_edgessl_and_the_toolchain_it_runs_on():
    from edgessl import __version__
    from edgessl.runtimes import package_version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == f"edgessl {__version__}"
    assert f"  torch {package_version('torch')}" in lines and f"  tflite-micro {package_version('tflite-micro')}" in lines


def test_info_prints_parameters_and_macs():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    assert "32x32" in result.output and "64x64" in result.output and "MACs" in result.output
    assert "4x4" in result.output


def test_missing_data_path_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgessl.cli",
            "pretrain",
            "--recipe",
            str(ROOT / "recipes" / "smoke.yaml"),
            "--data",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "does not exist" in lines[0] and "expected" in lines[0]


def test_smoke_recipe_end_to_end_with_probe(tmp_path):
    result = runner.invoke(app, ["pretrain", "--recipe", str(ROOT / "recipes" / "smoke.yaml"), "--out", str(tmp_path), "optim.batch_size=64"])
    assert result.exit_code == 0, result.output
    assert "linear probe top-1" in result.output
    probe = json.loads((tmp_path / "probe.json").read_text())
    assert probe["label_fraction"] == 0.2 and probe["top1"] > 25
    assert json.loads((tmp_path / "label_indices.json").read_text())["count"] == probe["train_images"]
    args = ["--stages", "stage3,stage4", "--weight-decays", "0.0005,0.2", "--augment-copies", "2", "--out", str(tmp_path / "p2")]
    probed = runner.invoke(app, ["probe", "--checkpoint", str(tmp_path / "encoder.pt"), *args])
    assert probed.exit_code == 0, probed.output
    second = json.loads((tmp_path / "p2" / "probe.json").read_text())
    assert second["stages"] == ["stage3", "stage4"] and set(second["held_out_top1"]) == {"0.0005", "0.2"} and second["augment_copies"] == 2
    refused = runner.invoke(app, ["probe", "--checkpoint", str(tmp_path / "encoder.pt"), "--stages", "stage9"])
    assert refused.exit_code != 0 and "stage1, stage2, stage3, stage4" in refused.output
    refused = runner.invoke(app, ["probe", "--checkpoint", str(tmp_path / "encoder.pt"), "--weight-decays", "0.1,x"])
    assert refused.exit_code != 0 and "--weight-decays: expected comma-separated non-negative numbers" in refused.output
    refused = runner.invoke(app, ["probe", "--checkpoint", str(tmp_path / "encoder.pt"), "--augment-copies", "-1"])
    assert refused.exit_code != 0 and "--augment-copies must be 0 or more" in refused.output


def test_export_names_the_known_range_methods_before_loading_anything(tmp_path):
    result = runner.invoke(app, ["export", "--checkpoint", str(tmp_path / "missing"), "--int8", "--ranges", "entropy"])
    assert result.exit_code == 2 and "unknown activation ranges 'entropy'; known: minmax, mse" in result.output


def test_finetune_refuses_a_frozen_encoder_without_qat_and_names_the_missing_probe(tmp_path):
    frozen = runner.invoke(app, ["finetune", "--checkpoint", str(tmp_path), "--freeze-encoder"])
    assert frozen.exit_code == 2 and "--freeze-encoder applies to --qat" in frozen.output
    empty = runner.invoke(app, ["finetune", "--checkpoint", str(tmp_path)])
    assert empty.exit_code == 2 and "has no probe.pt (edgessl probe / pretrain)" in empty.output
    for_qat = runner.invoke(app, ["finetune", "--checkpoint", str(tmp_path), "--qat"])
    assert for_qat.exit_code == 2 and "has no finetuned.pt (edgessl finetune) or probe.pt" in for_qat.output


def test_probe_and_finetune_check_the_device_before_loading_anything(tmp_path):
    missing = str(tmp_path / "missing")
    for command in (["probe", "--checkpoint", f"{missing}/encoder.pt"], ["finetune", "--checkpoint", missing]):
        bad = runner.invoke(app, [*command, "--device", "cuda:x"])
        assert bad.exit_code == 2 and "device 'cuda:x': Invalid device string" in bad.output
    qat = runner.invoke(app, ["finetune", "--checkpoint", missing, "--qat", "--device", "cuda"])
    assert qat.exit_code == 2 and "--device applies to the fp32 fine-tune; --qat runs on the CPU" in qat.output

"""The int8 fidelity gate: top-1 drop overall and per class and argmax agreement, each failing the export with the table
that shows why."""

import numpy as np
import pytest

from edgessl.deploy.fidelity import MIN_CLASS_IMAGES, FidelityError, FidelityGate, FidelityReport, check_fidelity, evaluate_runtimes, layer_errors, pooled_error

REFERENCE = "pytorch-fp32"


def _report(int8_top1: float, agreement: float) -> FidelityReport:
    layers = [{"op_index": 3, "op": "FULLY_CONNECTED", "tensor": "attn/proj", "cosine": 0.894, "rmse": 0.2}]
    return FidelityReport(10000, {REFERENCE: 74.34, "tflite-int8-tflm": int8_top1}, {REFERENCE: 100.0, "tflite-int8-tflm": agreement},
                          {REFERENCE: "torch", "tflite-int8-tflm": "tflm"}, layers)  # fmt: skip


def test_a_small_drop_with_high_agreement_passes():
    check_fidelity(_report(74.29, 96.4), FidelityGate(max_drop=2.0, min_agreement=90.0))


def test_top1_that_holds_while_many_answers_flip_fails_on_agreement_and_names_the_weakest_layer():
    with pytest.raises(FidelityError) as err:
        check_fidelity(_report(74.29, 85.0), FidelityGate(max_drop=2.0, min_agreement=90.0))
    text = str(err.value)
    assert "argmax agrees with pytorch-fp32 on 85.00 %" in text and "floor 90.0 %" in text
    assert "dropped more than" not in text  # the top-1 bound held
    assert "| tflite-int8-tflm | 74.29 | 85.00 |" in text and "attn/proj" in text and "0.8940" in text
    assert err.value.report.agreement_with_fp32["tflite-int8-tflm"] == 85.0  # the numbers travel with the refusal


def test_a_top1_drop_over_the_bound_fails_even_when_agreement_is_high():
    with pytest.raises(FidelityError, match=r"tflite-int8-tflm: top-1 3.34 points below pytorch-fp32 \(dropped more than 2.0 points\)"):
        check_fidelity(_report(71.0, 95.0), FidelityGate(max_drop=2.0, min_agreement=90.0))


def test_layer_cosine_pools_the_images_so_an_all_zero_output_does_not_read_as_unrelated():
    sparse = np.array([0.0, 1.3, 0.0, 0.2])  # a squeeze-excite reduction after ReLU: all zero on one image
    error = pooled_error([(np.zeros(4), np.zeros(4)), (sparse, sparse + 0.01)])
    assert error["cosine"] > 0.999 and error["rmse"] == pytest.approx(0.01 / np.sqrt(2))
    assert pooled_error([(sparse, -sparse)])["cosine"] == pytest.approx(-1.0)
    assert pooled_error([(np.zeros(4), np.zeros(4))]) == {"cosine": 1.0, "rmse": 0.0}  # zero in both graphs: identical
    assert pooled_error([(np.zeros(4), sparse)])["cosine"] == 0.0  # int8 invents values where fp32 has none


def test_layer_errors_cover_the_int8_graph_ops(int8_model):
    fp32 = int8_model.with_name("m_fp32.tflite")
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    rows = layer_errors(fp32, int8_model, images)
    assert len(rows) > 100 and {"CONV_2D", "BATCH_MATMUL", "FULLY_CONNECTED"} <= {r["op"] for r in rows}
    assert all(-1.0 <= r["cosine"] <= 1.0 + 1e-9 and r["rmse"] >= 0 for r in rows)
    assert np.median([r["cosine"] for r in rows]) > 0.9


class _Answers:
    """A runtime that answers fixed classes, to test the report's arithmetic (the export test runs the real ones)."""

    def __init__(self, name: str, classes: list[int]) -> None:
        self.name, self.classes = name, classes

    def run(self, images: np.ndarray) -> np.ndarray:
        return np.eye(3)[self.classes]

    def version(self) -> str:
        return "fixed"


def test_the_table_names_the_class_that_int8_loses_most():
    labels = np.array([0, 0, 1, 1, 2, 2])
    runtimes = [_Answers(REFERENCE, [0, 0, 1, 1, 2, 0]), _Answers("tflite-int8-tflm", [0, 0, 1, 0, 2, 2])]
    report = evaluate_runtimes(runtimes, np.zeros((6, 1)), labels, REFERENCE, ["cat", "dog", "frog"])
    assert report.top1 == {REFERENCE: pytest.approx(500 / 6), "tflite-int8-tflm": pytest.approx(500 / 6)}  # same top-1 overall
    assert report.per_class["tflite-int8-tflm"] == {"cat": 100.0, "dog": 50.0, "frog": 100.0}
    assert "| tflite-int8-tflm | 83.33 | 66.67 | dog -50.00 | fixed |" in report.table()
    assert f"| {REFERENCE} | 83.33 | 100.00 |  | fixed |" in report.table() and report.to_dict()["per_class_top1"] == report.per_class
    report.per_class["tflite-int8-tflm"]["dog"] = 100.0
    assert report.worst_class("tflite-int8-tflm") == "none"  # no class below fp32


def _per_class_report(int8_cat: float, cats: int) -> FidelityReport:
    report = _report(74.0, 95.0)
    report.per_class = {REFERENCE: {"cat": 60.0, "dog": 70.0}, "tflite-int8-tflm": {"cat": int8_cat, "dog": 71.0}}
    report.class_images = {"cat": cats, "dog": 1000}
    return report


def test_one_collapsed_class_fails_the_gate_while_the_overall_top1_holds():
    with pytest.raises(FidelityError, match=r"tflite-int8-tflm: class 'cat' top-1 12.50 points below pytorch-fp32 \(1000 test images; dropped more than 10.0"):
        check_fidelity(_per_class_report(47.5, 1000), FidelityGate())
    check_fidelity(_per_class_report(47.5, 1000), FidelityGate(max_class_drop=-1))  # off
    check_fidelity(_per_class_report(52.0, 1000), FidelityGate())  # 8 points: within the default bound


def test_a_class_with_too_few_test_images_is_not_judged():
    check_fidelity(_per_class_report(40.0, MIN_CLASS_IMAGES - 1), FidelityGate())
    assert "no class more than 10 points" in FidelityGate().describe() and "class" not in FidelityGate(max_class_drop=-1).describe()

import numpy as np
import pytest
import torch
from torch import nn

from edgessl.data.splits import label_fraction_indices
from edgessl.data.synthetic import synthetic_split
from edgessl.eval.probe import HELD_OUT, ProbeHead, augmented_copies, linear_probe, probe_with, select_weight_decay, train_linear
from edgessl.models import create_encoder
from edgessl.recipe import ProbeConfig


def test_probe_on_synthetic_classes_beats_chance_and_uses_the_fraction():
    torch.manual_seed(0)
    train, test = synthetic_split("train"), synthetic_split("test")
    result, head, indices = linear_probe(create_encoder("tinynext_t", 32), train, test, 0.25, epochs=30)
    assert len(indices) == 128 and result.train_images == 128
    assert result.top1 > 50  # 4 classes: chance is 25 %
    assert "label fraction 0.25" in result.protocol()
    assert head.linear.in_features == 192 and head.linear.out_features == 4


def test_probe_with_a_config_is_the_linear_probe_on_its_fields_with_named_departures():
    train, test = synthetic_split("train"), synthetic_split("test")
    encoder = create_encoder("tinynext_t", 32)
    config = ProbeConfig(label_fraction=0.25, epochs=3, seed=1, stages=("stage3", "stage4"), weight_decays=(0.1, 5e-4), solver="lbfgs")
    torch.manual_seed(0)
    result, _, indices = probe_with(encoder, train, test, config, seed=2, stages=("stage4",))
    torch.manual_seed(0)
    expected, _, expected_indices = linear_probe(encoder, train, test, 0.25, 3, 2, "cpu", ("stage4",), (0.1, 5e-4), 0, "lbfgs")
    assert result == expected and np.array_equal(indices, expected_indices)
    assert result.seed == 2 and result.stages == ("stage4",) and result.solver == "lbfgs"
    with pytest.raises(TypeError, match="unexpected keyword argument 'seeds'"):
        probe_with(encoder, train, test, config, seeds=3)


def test_probe_head_standardises_then_applies_the_linear_layer():
    linear = nn.Linear(6, 3)
    mean, std = torch.randn(6), torch.rand(6) + 0.5
    x = torch.randn(10, 6)
    torch.testing.assert_close(ProbeHead.from_linear(linear, mean, std)(x), linear((x - mean) / std), rtol=1e-5, atol=1e-5)


def test_probe_on_two_stages_widens_the_head_and_says_so():
    torch.manual_seed(0)
    train, test = synthetic_split("train"), synthetic_split("test")
    result, head, _ = linear_probe(create_encoder("tinynext_t", 32), train, test, 0.25, epochs=5, stages=("stage3", "stage4"))
    assert head.linear.in_features == 96 + 192
    assert "pooled stage3 + stage4 features" in result.protocol() and result.stages == ("stage3", "stage4")


def test_weight_decay_is_chosen_on_held_out_labelled_images_and_reported():
    torch.manual_seed(0)
    train, test = synthetic_split("train"), synthetic_split("test")
    result, _, _ = linear_probe(create_encoder("tinynext_t", 32), train, test, 0.25, epochs=20, weight_decays=(0.2, 5e-4))
    scores = result.held_out_top1
    assert set(scores) == {"0.2", "0.0005"}
    assert result.weight_decay == float(max(scores, key=scores.get))  # the best held-out score, the earlier on a tie
    assert f"weight decay {result.weight_decay:g} chosen from 0.2 / 0.0005 on a held-out 20% of the labelled images" in result.protocol()
    assert result.top1 > 50


def test_without_candidates_the_probe_keeps_the_fixed_weight_decay():
    torch.manual_seed(0)
    train, test = synthetic_split("train"), synthetic_split("test")
    result, _, _ = linear_probe(create_encoder("tinynext_t", 32), train, test, 0.25, epochs=2)
    assert result.weight_decay == 5e-4 and result.held_out_top1 is None and "chosen" not in result.protocol()


def test_augmented_copies_are_a_mirror_then_seeded_shifts_within_an_eighth_of_the_side():
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    assert augmented_copies(images, 0, seed=0) == []
    copies = augmented_copies(images, 3, seed=0)
    assert len(copies) == 3 and all(c.shape == images.shape and c.dtype == np.uint8 for c in copies)
    assert np.array_equal(copies[0], images[:, :, ::-1])
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")
    for copy in copies[1:]:
        for img, pad in zip(copy, padded, strict=True):  # each is some window of the padded image, mirrored or not
            windows = [pad[dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
            assert any(np.array_equal(img, w) or np.array_equal(img, w[:, ::-1]) for w in windows)
    assert all(np.array_equal(a, b) for a, b in zip(copies, augmented_copies(images, 3, seed=0), strict=True))
    assert not np.array_equal(copies[2], augmented_copies(images, 3, seed=1)[2])


def test_probe_on_augmented_copies_says_so_and_keeps_the_deployable_head():
    torch.manual_seed(0)
    train, test = synthetic_split("train"), synthetic_split("test")
    result, head, indices = linear_probe(create_encoder("tinynext_t", 32), train, test, 0.25, epochs=10, weight_decays=(0.2, 5e-4), augment_copies=2)
    assert result.augment_copies == 2 and result.train_images == len(indices) == 128  # labelled images, not feature rows
    assert "trained on each labelled image and 2 augmented copies" in result.protocol() and set(result.held_out_top1) == {"0.2", "0.0005"}
    assert head.linear.in_features == 192 and result.top1 > 50


def test_a_held_out_images_augmented_copies_stay_out_of_the_fit():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 40)
    clean = torch.from_numpy(np.eye(4)[labels] * 3 + rng.normal(size=(160, 4))).float()
    views = torch.stack([clean, clean.clone()])
    held = np.zeros(160, dtype=bool)
    held[label_fraction_indices(labels, HELD_OUT, 1)] = True  # the share select_weight_decay holds out with seed 0
    views[1, torch.from_numpy(held)] = float("nan")  # a fit that read these would train on NaN and score at chance
    _, scores = select_weight_decay(views, labels, 4, 300, 0, (5e-4,))
    assert scores["0.0005"] > 90


def _objective(head: nn.Linear, feats: torch.Tensor, labels: torch.Tensor, l2: float) -> torch.Tensor:
    return nn.functional.cross_entropy(head(feats), labels) + l2 * head.weight.square().sum()


def test_lbfgs_head_ends_at_the_optimum_of_the_l2_regularised_logistic_loss():
    gen = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(300, 8, generator=gen), torch.randint(0, 3, (300,), generator=gen)
    feats[:, :3] += 2 * nn.functional.one_hot(labels, 3)  # separable enough that only the penalty bounds the weights
    heads = {l2: train_linear(feats, labels, 3, epochs=1, seed=0, weight_decay=l2, solver="lbfgs") for l2 in (1e-4, 1e-1)}
    for l2, head in heads.items():
        loss = _objective(head, feats, labels, l2)
        grads = torch.autograd.grad(loss, list(head.parameters()))
        assert max(g.abs().max().item() for g in grads) < 1e-4  # a stationary point of a convex loss: its minimum
    assert heads[1e-1].weight.norm() < heads[1e-4].weight.norm() / 2


def test_probe_with_the_lbfgs_solver_says_so_and_chooses_its_l2_penalty_on_held_out_images():
    torch.manual_seed(0)
    train, test = synthetic_split("train"), synthetic_split("test")
    result, head, _ = linear_probe(create_encoder("tinynext_t", 32), train, test, 0.25, weight_decays=(1e-4, 1e-2), solver="lbfgs")
    assert result.solver == "lbfgs" and set(result.held_out_top1) == {"0.0001", "0.01"}
    assert "L-BFGS logistic regression (up to 500 iterations)" in result.protocol() and "L2 penalty" in result.protocol()
    assert result.top1 > 50 and head.linear.out_features == 4


def test_unknown_probe_solver_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: adamw, lbfgs"):
        train_linear(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), 2, epochs=1, seed=0, solver="sgd")

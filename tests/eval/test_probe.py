import torch
from torch import nn

from edgessl.data.synthetic import synthetic_split
from edgessl.eval.probe import ProbeHead, linear_probe
from edgessl.models import create_encoder


def test_probe_on_synthetic_classes_beats_chance_and_uses_the_fraction():
    torch.manual_seed(0)
    train, test = synthetic_split("train"), synthetic_split("test")
    result, head, indices = linear_probe(create_encoder("tinynext_t", 32), train, test, 0.25, epochs=30)
    assert len(indices) == 128 and result.train_images == 128
    assert result.top1 > 50  # 4 classes: chance is 25 %
    assert "label fraction 0.25" in result.protocol()
    assert head.linear.in_features == 192 and head.linear.out_features == 4


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

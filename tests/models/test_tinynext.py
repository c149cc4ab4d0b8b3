import pytest
import torch

from edgessl.models import ENCODER_LIMIT_PARAMS, count_params, create_encoder, list_models, use_fused_backward
from edgessl.models.profile import count_macs
from edgessl.models.tinynext import QuickGELU, _QuickGELUFunction


def test_tinynext_t_parameter_budget_and_feature_dim():
    model = create_encoder("tinynext_t", 32)
    assert 900_000 <= count_params(model) <= ENCODER_LIMIT_PARAMS
    assert model.feature_dim == 192


def test_small_inputs_keep_a_4x4_token_grid_with_the_same_parameters():
    counts = set()
    for size in (32, 64):
        model = create_encoder("tinynext_t", size).eval()
        tokens = model.forward_tokens(torch.zeros(2, 3, size, size))
        assert tokens.shape == (2, 192, 4, 4)
        counts.add(count_params(model))
    assert len(counts) == 1


def test_macs_are_counted_per_image():
    macs = count_macs(create_encoder("tinynext_t", 32), 32)
    assert 20e6 < macs < 40e6


def test_quick_gelu_is_x_sigmoid_1702x():
    x = torch.linspace(-6, 6, 101)
    torch.testing.assert_close(QuickGELU()(x), x * torch.sigmoid(1.702 * x))


def test_fused_backward_gives_the_autograd_gradient():
    x = torch.randn(2, 4, 5, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_QuickGELUFunction.apply, (x,))
    model = create_encoder("tinynext_t", 32).double()  # float64: compare gradients, not rounding
    images = torch.randn(4, 3, 32, 32, dtype=torch.double)
    grads = []
    for fused in (False, True):
        use_fused_backward(model, fused)
        model.zero_grad()
        model(images).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[1], grads[0])
    assert all(m.fused_backward for m in model.modules() if isinstance(m, QuickGELU))


def test_registry_lists_and_rejects_names():
    assert {"tinynext_t", "tinynext_s", "tinynext_m"} <= set(list_models())
    try:
        create_encoder("resnet50")
    except ValueError as err:
        assert "tinynext_t" in str(err)
    else:
        raise AssertionError("unknown encoder accepted")


def test_pooled_stages_concatenate_in_network_order_and_unknown_names_are_refused():
    model = create_encoder("tinynext_t", 32).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        both = model.pooled_stages(x, ("stage3", "stage4"))
        torch.testing.assert_close(both[:, 96:], model(x))  # stage4 alone is the encoder's output
        torch.testing.assert_close(both[:, :96], model.stage3(model.tokens_before_mixing(x)).mean(dim=(2, 3)))
    assert both.shape == (2, model.pooled_dim(("stage3", "stage4"))) == (2, 288)
    with pytest.raises(ValueError, match="stage1, stage2, stage3, stage4"):
        model.pooled_stages(x, ("stage5",))

import torch

from edgessl.models import create_encoder
from edgessl.recipe import load_recipe
from edgessl.ssl.dual_corruption import DualCorruptionSSL
from edgessl.ssl.losses import grad_reverse, patch_targets, vicreg_loss


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.ones(3, requires_grad=True)
    (grad_reverse(x, 0.5) * 2).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), -1.0))


def test_patch_targets_are_standardised_per_patch():
    t = patch_targets(torch.randn(2, 3, 32, 32), 8)
    assert t.shape == (2, 16, 192)
    torch.testing.assert_close(t.mean(-1), torch.zeros(2, 16), atol=1e-5, rtol=0)


def test_vicreg_prefers_matching_diverse_views():
    z = torch.randn(64, 32)
    assert vicreg_loss(z, z, 25, 25, 1) < vicreg_loss(z, torch.randn(64, 32), 25, 25, 1)
    collapsed = torch.zeros(64, 32)
    assert vicreg_loss(collapsed, collapsed, 25, 25, 1) > vicreg_loss(z, z, 25, 25, 1)


def test_every_site_and_target_gives_finite_losses_and_gradients():
    for site in ("stage3", "output"):
        for target in ("pixels", "ema"):
            recipe = load_recipe(None, [f"corruption.site={site}", f"corruption.target={target}", "loss.view_invariance=1"])
            method = DualCorruptionSSL(create_encoder("tinynext_t", 32), recipe)
            x = torch.randn(8, 3, 32, 32)
            losses = method([x, x.flip(-1)], 0.3, 0.2)
            assert {"rec", "rot", "dis", "vic"} <= losses.keys()
            total = method.total_loss(losses, 1.0, 1.0)
            total.backward()
            assert torch.isfinite(total)
            assert method.encoder.stem[0][0].weight.grad.abs().sum() > 0

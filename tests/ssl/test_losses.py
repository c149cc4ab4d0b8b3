import pytest
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


def test_vicreg_covariance_term_matches_the_explicit_covariance_matrix():
    z = torch.randn(48, 96) + torch.randn(48, 1)  # a shared component gives real off-diagonal covariance
    c = torch.cov(z.T)
    explicit = (c - torch.diag(torch.diag(c))).pow(2).sum() / z.shape[1]
    torch.testing.assert_close(vicreg_loss(z, z, 0, 0, 1), 2 * explicit)


def test_every_site_target_and_rotation_gives_finite_losses_and_gradients():
    combos = [(site, target, "roll") for site in ("stage3", "output") for target in ("pixels", "ema")]
    for site, target, rotation in [*combos, ("stage3", "pixels", "rot90"), ("output", "ema", "rot90")]:
        shifts = 3 if rotation == "rot90" else 4
        overrides = [f"corruption.site={site}", f"corruption.target={target}", f"corruption.rotation={rotation}", f"corruption.num_shifts={shifts}"]
        recipe = load_recipe(None, [*overrides, "loss.view_invariance=1"])
        method = DualCorruptionSSL(create_encoder("tinynext_t", 32), recipe)
        x = torch.randn(8, 3, 32, 32)
        losses = method([x, x.flip(-1)], 0.3, 0.2)
        assert {"rec", "rot", "dis", "vic"} <= losses.keys()
        total = method.total_loss(losses, 1.0, 1.0)
        total.backward()
        assert torch.isfinite(total)
        assert method.encoder.stem[0][0].weight.grad.abs().sum() > 0


def test_multi_crop_adds_local_pairs_and_trains_the_encoder_through_them():
    recipe = load_recipe(None, ["loss.view_invariance=1", "augment.local_crops=2"])
    method = DualCorruptionSSL(create_encoder("tinynext_t", 32), recipe)
    x = torch.randn(8, 3, 32, 32)
    locals_ = torch.randn(16, 3, 16, 16)  # two 16x16 crops of each of the 8 images, stacked
    with_locals = method([x, x.flip(-1), locals_], 0.3, 0.2, torch.Generator().manual_seed(0))
    without = method([x, x.flip(-1)], 0.3, 0.2, torch.Generator().manual_seed(0))
    assert not torch.allclose(with_locals["vic"], without["vic"])
    with_locals["vic"].backward()
    assert method.encoder.stem[0][0].weight.grad.abs().sum() > 0


def test_disabled_corruption_is_view_invariance_alone_with_no_decoder():
    recipe = load_recipe(None, ["loss.view_invariance=1", "corruption.enabled=false"])
    method = DualCorruptionSSL(create_encoder("tinynext_t", 32), recipe)
    assert method.decoder is None and method.mask_embedding is None
    x = torch.randn(8, 3, 32, 32)
    losses = method([x, x.flip(-1)], 0.3, 0.2)
    assert losses["rec"] == 0 and losses["rot"] == 0 and losses["vic"] > 0
    method.total_loss(losses, 1.0, 1.0).backward()
    assert all(p.grad is not None for p in method.encoder.parameters() if p.requires_grad)


def test_rot90_with_another_class_count_is_refused():
    recipe = load_recipe(None, ["corruption.rotation=rot90", "corruption.num_shifts=4"])
    with pytest.raises(ValueError, match="num_shifts=3"):
        DualCorruptionSSL(create_encoder("tinynext_t", 32), recipe)


def test_nothing_to_learn_is_refused():
    recipe = load_recipe(None, ["loss.view_invariance=0", "corruption.enabled=false"])
    with pytest.raises(ValueError, match="view_invariance"):
        DualCorruptionSSL(create_encoder("tinynext_t", 32), recipe)


@pytest.mark.parametrize("rotation", ["roll", "rot90"])
def test_clean_invariance_gives_view_invariance_the_uncorrupted_features(rotation):
    shifts = 3 if rotation == "rot90" else 4
    base = ["loss.view_invariance=1", f"corruption.rotation={rotation}", f"corruption.num_shifts={shifts}"]
    x = torch.randn(8, 3, 32, 32)
    pooled, clean_features = {}, {}
    for clean in (True, False):
        method = DualCorruptionSSL(create_encoder("tinynext_t", 32), load_recipe(None, [*base, f"corruption.clean_invariance={clean}"])).eval()
        _, pooled[clean] = method.pretext(x, 0.3, 0.3, torch.Generator().manual_seed(0))
        clean_features[clean] = method.encoder(x)  # eval mode: BatchNorm's running statistics, so the stacked pass matches
    torch.testing.assert_close(pooled[True], clean_features[True], atol=1e-5, rtol=1e-4)
    assert (pooled[False] - clean_features[False]).norm() > 0.01 * clean_features[False].norm()


def test_smaller_global_views_get_a_smaller_token_grid_and_resampled_positions():
    recipe = load_recipe(None, ["loss.view_invariance=1", "augment.global_size=24"])
    method = DualCorruptionSSL(create_encoder("tinynext_t", 32), recipe)
    assert method.decoder.position(16) is method.decoder.pos  # the native grid is the learned table itself
    assert method.decoder.position(9).shape == (1, 9, 192)
    x = torch.randn(8, 3, 24, 24)
    losses = method([x, x.flip(-1)], 0.3, 0.3, torch.Generator().manual_seed(0))
    method.total_loss(losses, 1.0, 1.0).backward()
    assert torch.isfinite(losses["rec"]) and losses["rec"] > 0
    assert method.decoder.pos.grad.abs().sum() > 0  # the table learns through its resampled copy


def test_global_size_off_the_token_grid_is_refused():
    with pytest.raises(ValueError, match="multiple of the encoder's total stride 8"):
        DualCorruptionSSL(create_encoder("tinynext_t", 32), load_recipe(None, ["augment.global_size=20"]))

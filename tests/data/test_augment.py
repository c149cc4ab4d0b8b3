import torch

from edgessl.data.augment import AugmentConfig, eval_view, hue_jitter, ssl_view


def test_views_keep_shape_and_differ():
    imgs = torch.randint(0, 255, (8, 32, 32, 3), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    a, b = ssl_view(imgs, AugmentConfig(), g), ssl_view(imgs, AugmentConfig(), g)
    assert a.shape == (8, 3, 32, 32) and torch.isfinite(a).all()
    assert not torch.allclose(a, b)
    assert eval_view(imgs).shape == (8, 3, 32, 32)


def test_local_crops_come_out_at_the_requested_size():
    imgs = torch.randint(0, 255, (4, 32, 32, 3), dtype=torch.uint8)
    local = ssl_view(imgs, AugmentConfig(crop_scale=(0.05, 0.3)), torch.Generator().manual_seed(0), size=16)
    assert local.shape == (4, 3, 16, 16) and torch.isfinite(local).all()


def test_hue_jitter_turns_colour_but_keeps_luma_and_greys():
    g = torch.Generator().manual_seed(0)
    colour = torch.rand(6, 3, 8, 8) * 0.2 + 0.4  # far from 0 and 1: no clamping
    turned = hue_jitter(colour, 0.5, 1.0, g)
    assert not torch.allclose(turned, colour, atol=1e-3)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close((turned * luma).sum(1), (colour * luma).sum(1), atol=1e-4, rtol=0)
    grey = torch.rand(6, 1, 8, 8).expand(6, 3, 8, 8)
    torch.testing.assert_close(hue_jitter(grey, 0.5, 1.0, g), grey, atol=1e-4, rtol=0)
    torch.testing.assert_close(hue_jitter(colour, 0.5, 0.0, g), colour, atol=1e-5, rtol=0)

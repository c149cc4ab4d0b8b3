import torch

from edgessl.data.augment import AugmentConfig, eval_view, ssl_view


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

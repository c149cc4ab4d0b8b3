import torch

from edgessl.ssl.corruption import IGNORE, apply_corruption, roll_tokens, rotate_patches, sample_corruption


def test_mask_and_roll_subsets_are_disjoint_with_the_requested_sizes():
    c = sample_corruption(64, 16, 0.25, 0.25, 4, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert not (c.mask & c.rotated).any()
    assert (c.mask.sum(1) == 4).all() and (c.rotated.sum(1) == 4).all()
    assert (c.shift_class[c.mask] == IGNORE).all()
    assert set(c.shift_class[c.rotated].unique().tolist()) <= {1, 2, 3, 4}
    assert (c.shift_class[~c.mask & ~c.rotated] == 0).all()


def test_roll_is_cyclic_along_features():
    x = torch.arange(10.0).view(1, 1, 10)
    rolled = roll_tokens(x, torch.tensor([[1]]), num_shifts=4, normalize=False)
    torch.testing.assert_close(rolled, torch.roll(x, 2, dims=-1))


def test_normalised_roll_keeps_each_tokens_mean_and_scale():
    x = torch.randn(2, 5, 12) * 3 + 1
    shifts = torch.tensor([[1, 2, 0, 3, 4], [0, 0, 1, 1, 2]])
    rolled = roll_tokens(x, shifts, num_shifts=4, normalize=True)
    torch.testing.assert_close(rolled.mean(-1), x.mean(-1))
    torch.testing.assert_close(rolled.std(-1), x.std(-1), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(rolled[0, 2], x[0, 2])


def test_masked_tokens_become_the_mask_embedding():
    grid = torch.randn(3, 8, 4, 4)
    c = sample_corruption(3, 16, 0.5, 0.0, 4, torch.device("cpu"))
    emb = torch.full((8,), 7.0)
    out = apply_corruption(grid, c, emb, 4, True).flatten(2).transpose(1, 2)
    assert (out[c.mask] == 7.0).all()
    torch.testing.assert_close(out[~c.mask], grid.flatten(2).transpose(1, 2)[~c.mask])


def test_rot90_turns_only_the_chosen_patches():
    images = torch.randn(2, 3, 16, 16)
    shift_class = torch.tensor([[0, 1, 2, 3], [IGNORE, 0, 0, 1]])  # 2x2 grid of 8x8 patches
    out = rotate_patches(images, shift_class, 8)
    patch = lambda t, b, n: t[b, :, (n // 2) * 8 : (n // 2 + 1) * 8, (n % 2) * 8 : (n % 2 + 1) * 8]  # noqa: E731
    for b in range(2):
        for n in range(4):
            turns = max(int(shift_class[b, n]), 0)
            torch.testing.assert_close(patch(out, b, n), torch.rot90(patch(images, b, n), turns, dims=(-2, -1)))

"""Losses: reconstruction, rotation, gradient-reversal disentanglement and VICReg view invariance."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgessl.ssl.corruption import IGNORE


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; gradient multiplied by -scale backward."""
    return _GradReverse.apply(x, scale)


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE on masked tokens only (B N D)."""
    if not mask.any():
        return pred.sum() * 0
    return F.mse_loss(pred[mask], target[mask])


def rotation_loss(logits: torch.Tensor, shift_class: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), shift_class.flatten(), ignore_index=IGNORE)


def disentanglement_loss(rec_probe_logits: torch.Tensor, shift_class: torch.Tensor, rot_probe_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Probes behind a GRL: one reads rotation labels from the reconstruction branch, the other the
    mask pattern from the rotation branch. The probes minimise this; the branches, through the
    reversed gradient, maximise it, so each branch sheds the other's information."""
    leak_rot = F.cross_entropy(rec_probe_logits.flatten(0, 1), shift_class.flatten(), ignore_index=IGNORE)
    leak_mask = F.binary_cross_entropy_with_logits(rot_probe_logits.squeeze(-1), mask.float())
    return leak_rot + leak_mask


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, sim: float, var: float, cov: float) -> torch.Tensor:
    n, d = z1.shape
    inv = F.mse_loss(z1, z2)

    def variance(z: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - torch.sqrt(z.var(dim=0) + 1e-4)).mean()

    def covariance(z: torch.Tensor) -> torch.Tensor:
        # sum of squared off-diagonal covariances through the n x n Gram matrix (||Z^T Z||_F = ||Z Z^T||_F), so
        # the d x d matrix is never built: at n=128, d=1024 forward + backward took 1.6 ms instead of 20 ms
        # on one CPU thread, and the default step calls it ten times
        z = z - z.mean(dim=0)
        squares = (z @ z.T).pow(2).sum() - z.pow(2).sum(dim=0).pow(2).sum()
        return squares / ((n - 1) ** 2 * d)

    return sim * inv + var * (variance(z1) + variance(z2)) + cov * (covariance(z1) + covariance(z2))


def patch_targets(images: torch.Tensor, patch: int) -> torch.Tensor:
    """B 3 H W -> B N (p*p*3), each patch standardised (MAE's normalised-pixel target)."""
    p = F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)  # B N 3pp
    mean = p.mean(-1, keepdim=True)
    var = p.var(-1, keepdim=True)
    return (p - mean) / (var + 1e-6).sqrt()

"""Dual-corruption pretraining: one module that turns a batch of views into named losses."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from edgessl.models.decoder import DualTaskDecoder, Projector
from edgessl.models.tinynext import TinyNeXt
from edgessl.recipe import Recipe
from edgessl.ssl.corruption import ROT90_CLASSES, ROTATIONS, Corruption, apply_corruption, rotate_patches, sample_corruption
from edgessl.ssl.losses import disentanglement_loss, patch_targets, reconstruction_loss, rotation_loss, vicreg_loss
from edgessl.train.distributed import gather_batches

SITES = ("stage3", "output")
TARGETS = ("pixels", "ema")


class DualCorruptionSSL(nn.Module):
    def __init__(self, encoder: TinyNeXt, recipe: Recipe) -> None:
        super().__init__()
        c, lc = recipe.corruption, recipe.loss
        if c.site not in SITES:
            raise ValueError(f"corruption.site {c.site!r}; known: {', '.join(SITES)}")
        if c.target not in TARGETS:
            raise ValueError(f"corruption.target {c.target!r}; known: {', '.join(TARGETS)}")
        if c.rotation not in ROTATIONS:
            raise ValueError(f"corruption.rotation {c.rotation!r}; known: {', '.join(ROTATIONS)}")
        if c.rotation == "rot90" and c.num_shifts != ROT90_CLASSES:
            raise ValueError(f"corruption.rotation=rot90 has {ROT90_CLASSES} turns; set corruption.num_shifts={ROT90_CLASSES}")
        self.cfg, self.loss_cfg = c, lc
        self.encoder = encoder
        grid = encoder.grid_size(recipe.data.image_size)
        if c.site == "stage3" and encoder.total_stride != recipe.data.image_size // encoder.grid_size(recipe.data.image_size):
            raise ValueError("corruption.site=stage3 needs a stage-4 stride of 1; use site=output for this input size")
        self.tokens = grid * grid
        self.patch = encoder.total_stride
        global_size = recipe.augment.global_size
        if c.enabled and global_size and global_size % self.patch:
            raise ValueError(f"augment.global_size={global_size} must be a multiple of the encoder's total stride {self.patch} (the pretext's token grid)")
        if not c.enabled and lc.view_invariance <= 0:
            raise ValueError("corruption.enabled=false leaves nothing to learn; set loss.view_invariance > 0")
        if recipe.augment.local_crops and lc.view_invariance <= 0:
            raise ValueError("augment.local_crops needs the view-invariance term; set loss.view_invariance > 0")
        site_dim = encoder.token_dim if c.site == "stage3" else encoder.feature_dim
        rec_dim = 3 * self.patch * self.patch if c.target == "pixels" else encoder.feature_dim
        # Parts a disabled pretext would leave without gradients (DDP refuses those) are not built.
        self.mask_embedding = nn.Parameter(nn.init.trunc_normal_(torch.zeros(site_dim), std=0.02)) if c.enabled else None
        self.decoder = DualTaskDecoder(encoder.feature_dim, self.tokens, rec_dim, c.num_shifts) if c.enabled else None
        self.projector = Projector(encoder.feature_dim, lc.projector_dim) if lc.view_invariance > 0 else None
        self.teacher = copy.deepcopy(encoder).requires_grad_(False) if c.enabled and c.target == "ema" else None

    def views_needed(self) -> int:
        return 2 if self.projector is not None else 1

    def _encode(self, x: torch.Tensor, corruption: Corruption) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (pooled features for view invariance B D, tokens fed to the decoder B N D).

        The pooled features come from the corrupted pass, or from a clean one when
        `corruption.clean_invariance` is set: with site=stage3 and roll the clean pass shares the stem to
        stage 2 and runs stages 3-4 on the same batch twice (clean and corrupted stacked)."""
        c = self.cfg
        roll = c.rotation == "roll"
        clean_pooled = self.encoder(x) if c.clean_invariance and not roll else None  # turned pixels: a full clean pass
        if not roll:
            x = rotate_patches(x, corruption.shift_class, self.patch)
        t = self.encoder.tokens_before_mixing(x)
        if c.site == "stage3":
            corrupted = apply_corruption(t, corruption, self.mask_embedding, c.num_shifts, c.normalize_before_roll, roll)
            if c.clean_invariance and roll:
                out, clean = self.encoder.tokens_after_mixing(torch.cat([corrupted, t])).chunk(2)
                clean_pooled = clean.mean(dim=(2, 3))
            else:
                out = self.encoder.tokens_after_mixing(corrupted)
            dec_in = out
        else:
            out = self.encoder.tokens_after_mixing(t)  # clean already: the corruption comes after the encoder
            dec_in = apply_corruption(out, corruption, self.mask_embedding, c.num_shifts, c.normalize_before_roll, roll)
        pooled = clean_pooled if clean_pooled is not None else out.mean(dim=(2, 3))
        return pooled, dec_in.flatten(2).transpose(1, 2)

    @torch.no_grad()
    def _targets(self, x: torch.Tensor) -> torch.Tensor:
        if self.teacher is None:
            return patch_targets(x, self.patch)
        t = self.teacher.forward_tokens(x).flatten(2).transpose(1, 2)
        return F.layer_norm(t, t.shape[-1:])

    def pretext(self, x: torch.Tensor, mask_ratio: float, rot_ratio: float, gen: torch.Generator | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        corruption = sample_corruption(x.shape[0], (x.shape[-1] // self.patch) ** 2, mask_ratio, rot_ratio, self.cfg.num_shifts, x.device, gen)
        pooled, dec_in = self._encode(x, corruption)
        out = self.decoder(dec_in, self.loss_cfg.grl_scale)
        losses = {
            "rec": reconstruction_loss(out["rec"], self._targets(x), corruption.mask),
            "rot": rotation_loss(out["rot"], corruption.shift_class),
            "dis": disentanglement_loss(out["rec_probe"], corruption.shift_class, out["rot_probe"], corruption.mask),
        }
        with torch.no_grad():
            valid = corruption.shift_class >= 0
            losses["rot_acc"] = (out["rot"].argmax(-1)[valid] == corruption.shift_class[valid]).float().mean()
        return losses, pooled

    def forward(self, views: list[torch.Tensor], mask_ratio: float, rot_ratio: float, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """views: [first global view, second global view (view invariance), local crops stacked (multi-crop)]."""
        losses, pooled = self._first_view(views[0], mask_ratio, rot_ratio, gen)
        if self.projector is None:
            return losses
        if self.cfg.enabled and self.cfg.corrupt_both_views:
            second, pooled2 = self.pretext(views[1], mask_ratio, rot_ratio, gen)
            losses = {k: (v + second[k]) / 2 for k, v in losses.items()}
        else:
            pooled2 = self.encoder(views[1])
        z = [self.projector(pooled), self.projector(pooled2)]
        if len(views) > 2:
            z += self.projector(self.encoder(views[2])).chunk(views[2].shape[0] // views[0].shape[0])
        # under DDP the variance and covariance terms see the global batch, as in a single process
        z = list(gather_batches(torch.stack(z), dim=1).unbind(0))
        pairs = [(z[0], z[1])] + [(zl, zg) for zl in z[2:] for zg in z[:2]]
        lc = self.loss_cfg
        losses["vic"] = sum(vicreg_loss(a, b, lc.vicreg_sim, lc.vicreg_var, lc.vicreg_cov) for a, b in pairs) / len(pairs)
        return losses

    def _first_view(self, x: torch.Tensor, mask_ratio: float, rot_ratio: float, gen: torch.Generator | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if self.cfg.enabled:
            return self.pretext(x, mask_ratio, rot_ratio, gen)
        pooled = self.encoder(x)
        zero = pooled.new_zeros(())
        return {"rec": zero, "rot": zero, "dis": zero, "rot_acc": zero}, pooled

    def total_loss(self, losses: dict[str, torch.Tensor], lambda_rec: float, lambda_rot: float) -> torch.Tensor:
        total = lambda_rec * losses["rec"] + lambda_rot * losses["rot"] + self.loss_cfg.lambda_dis * losses["dis"]
        if "vic" in losses:
            total = total + self.loss_cfg.view_invariance * losses["vic"]
        return total

    @torch.no_grad()
    def update_teacher(self) -> None:
        if self.teacher is None:
            return
        m = self.loss_cfg.ema_momentum
        for pt, ps in zip(self.teacher.parameters(), self.encoder.parameters(), strict=True):
            pt.mul_(m).add_(ps.detach(), alpha=1 - m)
        for bt, bs in zip(self.teacher.buffers(), self.encoder.buffers(), strict=True):
            bt.copy_(bs)

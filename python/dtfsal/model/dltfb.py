"""DLTFB: dynamic learnable token fusion block with UNeXt axial shifts, level 4 [spec 6]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DTFSalConfig
from .tokens import AdaptiveTokens

SHIFT_GROUPS = 5


def axial_shift(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Split channels into 5 chunks (torch.chunk sizes); chunk g moves by g-2 along `dim`, zero fill.

    Positive shifts move content to larger indices. Equals UNeXt's pad / roll / crop.
    """
    pad = SHIFT_GROUPS // 2
    n = x.shape[dim]
    out = []
    for g, chunk in enumerate(torch.chunk(x, SHIFT_GROUPS, dim=1)):
        s = g - pad
        padding = [0, 0] * (x.dim() - dim - 1) + [pad, pad]  # F.pad lists the last dim first
        padded = F.pad(chunk, padding)
        out.append(padded.narrow(dim, pad - s, n))
    return torch.cat(out, dim=1)


class DLTFB(nn.Module):
    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        d = cfg.neck_dim
        self.prompt = AdaptiveTokens(cfg)  # independent token branch
        self.fc1 = nn.Conv3d(d, d, 1)
        self.dw = nn.Conv3d(d, d, 3, padding=1, groups=d)
        self.norm = nn.LayerNorm(d)  # over channels, eps 1e-5
        self.fc2 = nn.Conv3d(d, d, 1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        # f [B, D, T, h, w]
        x = axial_shift(f, dim=4)  # shift along W
        x = self.dw(F.gelu(self.fc1(x)))  # Eq. 9 order: conv -> GELU -> DWconv
        x = axial_shift(x, dim=3)  # shift along H
        x = self.norm(x.movedim(1, -1)).movedim(-1, 1)
        f_sh = f + self.fc2(x)  # Eq. 10
        return f * self.prompt(f) + f_sh  # Eq. 11

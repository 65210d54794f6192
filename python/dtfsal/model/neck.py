"""Feature enhancement neck (TMFI-Net DecoderConvUp) [spec 4]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DTFSalConfig


def up(x: torch.Tensor, s: int) -> torch.Tensor:
    """Trilinear (1, s, s) upsampling, align_corners=False."""
    return F.interpolate(x, scale_factor=(1, s, s), mode="trilinear", align_corners=False)


class FeatureNeck(nn.Module):
    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        d = cfg.neck_dim
        # Eq. 2: channel + temporal reduction, T/2 -> T/4 (16 -> 8)
        self.reduce = nn.ModuleList(nn.Conv3d(c, d, (2, 1, 1), stride=(2, 1, 1)) for c in cfg.stage_dims)
        self.refine = nn.ModuleList(nn.Conv3d(d, d, (1, 3, 3), padding=(0, 1, 1), bias=False) for _ in range(3))

    def forward(self, f: list[torch.Tensor]) -> list[torch.Tensor]:
        # f: four encoder maps -> four [B, D, 8, h_i, w_i]
        r4 = self.reduce[3](f[3])
        t3 = self.reduce[2](f[2]) + up(r4, 2)
        t2 = self.reduce[1](f[1]) + up(t3, 2) + up(r4, 4)
        t1 = self.reduce[0](f[0]) + up(t2, 2) + up(r4, 8)
        return [self.refine[0](t1), self.refine[1](t2), self.refine[2](t3), r4]

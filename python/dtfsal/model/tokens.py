"""Adaptive token computation shared by LTEB and DLTFB (TMFI gate + PromptIR prompt generation) [spec 5]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DTFSalConfig


class AdaptiveTokens(nn.Module):
    """F [B,D,T,h,w] -> P'' [B,D,T,h,w]: per-slice softmax mixture of N learnable tokens, resized and projected."""

    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        d, n = cfg.neck_dim, cfg.token_count
        self.tokens = nn.Parameter(torch.rand(n, d, *cfg.token_size))  # PromptIR init
        self.gate = nn.Conv3d(d, d, (1, 3, 3), padding=(0, 1, 1))  # Eq. 4
        self.linear = nn.Linear(d, n)  # Eq. 5
        self.proj = nn.Conv3d(d, d, (1, 3, 3), padding=(0, 1, 1), bias=False)  # Eq. 7

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        _, _, t, h, w = f.shape
        g = torch.sigmoid(self.gate(f))  # [B, D, T, h, w]
        e = g.mean(dim=(3, 4)).transpose(1, 2)  # [B, T, D]: one embedding per temporal slice
        wts = torch.softmax(self.linear(e), dim=-1)  # [B, T, N]
        k = torch.einsum("btn,ndhw->bdthw", wts, self.tokens)  # [B, D, T, th, tw]
        k = F.interpolate(k, size=(t, h, w), mode="trilinear", align_corners=False)
        return self.proj(k)

"""LTEB: learnable token enhancement block, levels 1-3 [spec 5]."""

from __future__ import annotations

import torch
from torch import nn

from ..config import DTFSalConfig
from .tokens import AdaptiveTokens


class LTEB(nn.Module):
    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        self.prompt = AdaptiveTokens(cfg)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f * self.prompt(f) + f  # Eq. 8

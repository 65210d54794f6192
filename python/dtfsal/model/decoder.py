"""Hierarchical multi-decoder (TMFI-Net convtsp1..4) and fusion [spec 9]."""

from __future__ import annotations

from torch import nn

from ..config import DTFSalConfig


def _up(s: int) -> nn.Upsample:
    return nn.Upsample(scale_factor=(1, s, s), mode="trilinear", align_corners=False)


def _tc(a: int, b: int) -> nn.Conv3d:
    return nn.Conv3d(a, b, (2, 3, 3), stride=(2, 1, 1), padding=(0, 1, 1), bias=False)


def make_decoder(cfg: DTFSalConfig, level: int) -> nn.Sequential:
    """Level 0 (stride 4) .. 3 (stride 32); every decoder ends at the input resolution, 8 -> 1 frames."""
    d0 = cfg.neck_dim
    d1, d2, d3 = cfg.decoder_dims
    layers = [_tc(d0, d1), nn.ReLU(), _up(2), _tc(d1, d2), nn.ReLU(), _up(2), _tc(d2, d3), nn.ReLU()]
    if level >= 1:
        layers.append(_up(2))
    layers.append(nn.Conv3d(d3, 1, (1, 3, 3), padding=(0, 1, 1), bias=False))
    if level == 2:
        layers.append(_up(2))
    elif level == 3:
        layers.append(_up(4))
    layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)

"""AMFB: audio-visual multi-stream fusion block, one per level [spec 8]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from ..config import DTFSalConfig
from .deform import deform_conv2d_sampled


def conv_bn_relu(d: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(d, d, (1, k, k), padding=(0, k // 2, k // 2)), nn.BatchNorm3d(d), nn.ReLU())


class DeformConv2d(nn.Module):
    """DCNv1 3x3 with its own offset predictor (torchvision deform_conv2d semantics)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.offset = nn.Conv2d(cin, 18, 3, padding=1)  # (ky, kx) x (dy, dx)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            # the same maths (test_train.py: 1e-9 in f64); torchvision's CPU backward took 80 % of a frozen-trunk
            # training step (py-spy), autograd through grid_sample is several times faster (python -m dtfsal.bench_deform)
            return deform_conv2d_sampled(x, self.offset(x), self.weight, self.bias, padding=(1, 1))
        return deform_conv2d(x, self.offset(x), self.weight, self.bias, padding=(1, 1))


class AMFB(nn.Module):
    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        d = cfg.neck_dim
        self.concat = cfg.amfb_audio_mode == "concat"
        self.local = conv_bn_relu(d, 3)
        self.glob = conv_bn_relu(d, 5)
        self.audio_proj = nn.Conv3d(cfg.audio_dim, d, 1)
        self.deform = DeformConv2d(2 * d if self.concat else d, d)
        self.adapt_post = nn.Sequential(nn.BatchNorm3d(d), nn.ReLU())
        self.score = nn.Linear(3 * d, 3)

    def forward(self, f: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        # f [B, D, T, h, w]; a [B, Ca, S, ha, wa]
        b, d, t, h, w = f.shape
        a_i = F.interpolate(self.audio_proj(a), size=(t, h, w), mode="trilinear", align_corners=False)
        x = torch.cat([f, a_i], dim=1) if self.concat else f + a_i
        x2 = x.transpose(1, 2).flatten(0, 1)  # [B*T, D', h, w]: per temporal slice
        y = self.deform(x2).unflatten(0, (b, t)).transpose(1, 2)  # [B, D, T, h, w]
        f_l, f_g, f_a = self.local(f), self.glob(f), self.adapt_post(y)
        pooled = torch.cat([s.mean(dim=(2, 3, 4)) for s in (f_l, f_g, f_a)], dim=1)  # [B, 3D]
        wts = torch.sigmoid(self.score(pooled))  # [B, 3]  Eq. 12-13
        wv = wts[:, :, None, None, None, None]
        return wv[:, 0] * f_l + wv[:, 1] * f_g + wv[:, 2] * f_a  # Eq. 14

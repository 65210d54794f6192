"""Audio branch: frozen VGGish conv trunk + DiffSal temporal enhancement (AudioAttnNet) [spec 7]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DTFSalConfig


def vggish_features(channels: tuple[int, ...]) -> nn.Sequential:
    """torchvggish `features` with its layer indices (conv at 0, 3, 6, 8, 11, 13)."""
    c = channels
    return nn.Sequential(
        nn.Conv2d(1, c[0], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Conv2d(c[0], c[1], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c[4], c[5], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
    )  # fmt: skip


class VGGishTrunk(nn.Module):
    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        self.features = vggish_features(cfg.vggish_channels)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # audio [B, S, 1, Ha, Wa] -> [B, C, S, Ha/16, Wa/16]
        b, s = audio.shape[:2]
        x = self.features(audio.flatten(0, 1))  # [B*S, C, h, w]
        return x.unflatten(0, (b, s)).transpose(1, 2)


class TEAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x [B, N, C]
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))  # [B, h, N, d]
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)
        return self.to_out((attn @ v).transpose(1, 2).flatten(2))


class TEFeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class TemporalEnhancement(nn.Module):
    """One pre-norm transformer layer over all (slice, h, w) audio tokens."""

    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        dim = cfg.audio_dim
        self.use_patch_embed = cfg.te_use_patch_embed
        self.pos = nn.Parameter(torch.zeros(1, 1, cfg.audio_slices, 1, 1))
        self.embed_norm1 = nn.LayerNorm(dim)
        self.embed_fc = nn.Linear(dim, dim)
        self.embed_norm2 = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(
            [nn.ModuleList([TEAttention(dim, cfg.te_heads, cfg.te_dim_head), TEFeedForward(dim, cfg.te_mlp_dim)])]
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        # a [B, C, S, h, w] -> [B, C, S, h, w]
        shape = a.shape
        x = a.flatten(2).transpose(1, 2)  # [B, S*h*w, C]
        if self.use_patch_embed:  # DiffSal computes this and then discards it (te_use_patch_embed=False)
            x = self.embed_norm2(self.embed_fc(self.embed_norm1(x)))
            x = (x.transpose(1, 2).reshape(shape) + self.pos).flatten(2).transpose(1, 2)
        for attn, ff in self.layers:
            x = x + attn(x)
            x = x + ff(x)
        return self.norm(x).transpose(1, 2).reshape(shape)


class AudioBranch(nn.Module):
    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        self.vggish = VGGishTrunk(cfg)
        self.te = TemporalEnhancement(cfg)
        for p in self.vggish.parameters():  # frozen (AudioSet weights)
            p.requires_grad_(False)

    def forward(self, audio: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        a0 = self.vggish(audio)
        a = self.te(a0)
        if trace is not None:
            trace["audio/vggish"] = a0
            trace["audio/te"] = a
        return a

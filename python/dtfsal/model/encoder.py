"""MViTv2 video encoder with DiffSal/mmaction2 stage taps [spec 3].

torchvision's `MViT` modules live under ``encoder.mvit`` so Kinetics-400 weights load unchanged, but the
block loop is ours: torchvision's forward hard-codes the (T, H, W) grid of its training input.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.video.mvit import MSBlockConfig, MViT

from ..config import DTFSalConfig


def block_settings(cfg: DTFSalConfig) -> list[MSBlockConfig]:
    """torchvision mvit_v2_s block settings, generalised to any widths/depths.

    Stage s: width embed_dim*2^s, kv stride 8/2^s spatially; the first block of stages 1..3 widens and
    pools q by (1,2,2).
    """
    dims = cfg.stage_dims
    out = []
    for s, depth in enumerate(cfg.stage_depths):
        kv = 8 >> s
        for b in range(depth):
            first = b == 0 and s > 0
            out.append(
                MSBlockConfig(
                    num_heads=cfg.stage_heads[s],
                    input_channels=dims[s - 1] if first else dims[s],
                    output_channels=dims[s],
                    kernel_q=[3, 3, 3],
                    kernel_kv=[3, 3, 3],
                    stride_q=[1, 2, 2] if first else [1, 1, 1],
                    stride_kv=[1, kv, kv],
                )
            )
    return out


class VideoEncoder(nn.Module):
    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mvit = MViT(
            spatial_size=tuple(cfg.mvit_spatial_size),
            temporal_size=cfg.mvit_temporal_size,
            block_setting=block_settings(cfg),
            residual_pool=True,
            residual_with_cls_embed=False,
            rel_pos_embed=True,
            proj_after_attn=True,
            stochastic_depth_prob=cfg.drop_path,
        )
        self.mvit.head = nn.Identity()  # classification head dropped (no weights)
        # stage norms after stages 0..2; stage 3 uses the pretrained final `mvit.norm`
        self.stage_norms = nn.ModuleList(nn.LayerNorm(d, eps=cfg.stage_norm_eps) for d in cfg.stage_dims[:3])

    def forward(self, video: torch.Tensor, trace: dict | None = None) -> list[torch.Tensor]:
        # video [B, 3, T, H, W] -> four maps [B, C_s, T/2, H/(4*2^s), W/(4*2^s)]
        x = self.mvit.conv_proj(video)  # [B, C0, T/2, H/4, W/4]
        b, _, t, h, w = x.shape
        x = self.mvit.pos_encoding(x.flatten(2).transpose(1, 2))  # [B, 1 + T*H*W, C0], class token first
        if trace is not None:
            trace["encoder/embed"] = x
        thw = (t, h, w)
        taps = self.cfg.tap_blocks
        feats = []
        for i, block in enumerate(self.mvit.blocks):
            x, thw = block(x, thw)
            if i in taps:
                s = taps.index(i)
                # the normalised tensor replaces x and continues into the next block (mmaction2/DiffSal)
                x = self.stage_norms[s](x) if s < 3 else self.mvit.norm(x)
                feats.append(x[:, 1:].transpose(1, 2).reshape(b, -1, *thw))
            if trace is not None:
                trace[f"encoder/block{i}"] = x
        return feats

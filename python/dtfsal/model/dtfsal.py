"""DTFSal: the whole model, AV and V variants [spec 3-9]."""

from __future__ import annotations

import torch
from torch import nn

from ..config import DTFSalConfig
from .amfb import AMFB
from .audio import AudioBranch
from .decoder import make_decoder
from .dltfb import DLTFB
from .encoder import VideoEncoder
from .lteb import LTEB
from .neck import FeatureNeck


class DTFSal(nn.Module):
    def __init__(self, cfg: DTFSalConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = VideoEncoder(cfg)
        self.fe = FeatureNeck(cfg)
        self.enhance = nn.ModuleList([LTEB(cfg), LTEB(cfg), LTEB(cfg), DLTFB(cfg)])
        if cfg.variant == "av":
            self.audio = AudioBranch(cfg)
            self.amfb = nn.ModuleList(AMFB(cfg) for _ in range(4))
        self.decoders = nn.ModuleList(make_decoder(cfg, i) for i in range(4))
        self.fuse = nn.Conv3d(4, 1, (1, 3, 3), padding=(0, 1, 1))

    def check_inputs(self, video: torch.Tensor, audio: torch.Tensor | None) -> None:
        c = self.cfg
        want_v = (3, c.clip_len, c.height, c.width)
        if video.dim() != 5 or tuple(video.shape[1:]) != want_v:
            raise ValueError(f"input/video: expected [B, {', '.join(map(str, want_v))}], got {list(video.shape)}")
        if c.variant == "av":
            want_a = (c.audio_slices, 1, c.audio_height, c.audio_width)
            if audio is None:
                raise ValueError("input/audio: required by the audio-visual variant, got None")
            if audio.dim() != 5 or tuple(audio.shape[1:]) != want_a or audio.shape[0] != video.shape[0]:
                raise ValueError(
                    f"input/audio: expected [{video.shape[0]}, {', '.join(map(str, want_a))}], got {list(audio.shape)}"
                )

    def forward(
        self, video: torch.Tensor, audio: torch.Tensor | None = None, trace: dict | None = None
    ) -> torch.Tensor:
        """video [B,3,32,H,W] (normalised), audio [B,9,1,112,192] (AV only) -> saliency [B,H,W] in (0,1).

        With `trace` (a dict), every block-boundary tensor is stored under its parity name.
        """
        self.check_inputs(video, audio)
        neck = self.trunk(video, trace)
        a = self.audio(audio, trace) if self.cfg.variant == "av" else None
        return self.head(neck, a, trace)

    def trunk(self, video: torch.Tensor, trace: dict | None = None) -> list[torch.Tensor]:
        """The visual trunk (encoder + neck): video -> 4 levels [B, D, T, h, w]. It sees no audio, so a
        training run that freezes it computes it once per clip (`train --freeze-trunk`)."""
        feats = self.encoder(video, trace)
        neck = self.fe(feats)
        if trace is not None:
            for i in range(4):
                trace[f"encoder/f{i + 1}"] = feats[i]
                trace[f"neck/f{i + 1}"] = neck[i]
        return neck

    def head(self, neck: list[torch.Tensor], a: torch.Tensor | None, trace: dict | None = None) -> torch.Tensor:
        """Token enhancement, audio-visual fusion (`a`: the audio branch's output, AV only) and decoders."""
        enhanced = [blk(x) for blk, x in zip(self.enhance, neck)]  # LTEB x3, DLTFB
        fused = enhanced
        if self.cfg.variant == "av":
            fused = [m(x, a) for m, x in zip(self.amfb, enhanced)]
        maps = [dec(x) for dec, x in zip(self.decoders, fused)]  # 4 x [B, 1, 1, H, W]
        sal = torch.sigmoid(self.fuse(torch.cat(maps, dim=1)))  # [B, 1, 1, H, W]
        if trace is not None:
            for i in range(4):
                trace[f"enhance/f{i + 1}"] = enhanced[i]
                if self.cfg.variant == "av":
                    trace[f"amfb/f{i + 1}"] = fused[i]
                trace[f"decoder/s{i + 1}"] = maps[i]
        return sal.flatten(1, 2).squeeze(1)

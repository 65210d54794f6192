"""A split's frozen-trunk features, computed once (`python -m dtfsal.train --freeze-trunk`).

With the visual trunk (encoder + neck) and the VGGish trunk frozen, what they compute for a clip never
changes during training, and it is most of the model's cost. This cache runs them once per clip and
keeps, per clip:

  neck   4 levels [D, T, h, w] (f16), shared by every clip with the same frames: an audio twin
         (`synth --twins`, its frames a link to the original's) costs no second trunk pass
  vggish [C, S, ha, wa] (f32), the audio trunk's output for the clip's own log-mel window
  sal    [H, W], the map

so an epoch runs only the trained part (token enhancement, audio temporal transformer, AMFBs,
decoders): ~9 minutes for 6,480 tiny AV clips on 2 cores (models/README.md, stage 3). Memory, tiny
config: 0.65 MB per distinct clip (trunk features) and 0.25 MB per clip (audio features, map).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch

from .data import StavisClips


class TrunkCache:
    def __init__(self, model, ds: StavisClips, batch_size: int = 8) -> None:
        """Features of every clip of `ds`, on the model's device."""
        cfg = model.cfg
        device = next(model.parameters()).device
        index = ds.index
        # clips with the same frames (a video and its audio twins) share one trunk pass
        key_of = [(os.path.realpath(ds.root / "video_frames" / ds.db / v.name), start) for v, start in index]
        distinct: dict[tuple[str, int], int] = {}
        for k in key_of:
            distinct.setdefault(k, len(distinct))
        first = {f: i for i, f in reversed(list(enumerate(key_of)))}  # a clip index for each distinct key
        self.feature_of = torch.tensor([distinct[k] for k in key_of], device=device)
        was_training = model.training
        model.eval()
        levels: list[list[torch.Tensor]] = [[] for _ in range(4)]
        keys = list(distinct)
        with torch.no_grad():
            for b in range(0, len(keys), batch_size):
                video = torch.stack([ds.clip_video(*index[first[k]]) for k in keys[b : b + batch_size]]).to(device)
                for lv, x in zip(levels, model.trunk(video)):
                    lv.append(x.half())
            self.neck = [torch.cat(lv) for lv in levels]  # 4 x [N_distinct, D, T, h, w]
            sal, vggish = [], []
            for i, (v, start) in enumerate(index):
                t = ds.targets(v, start)
                sal.append(t["sal"].to(device))
                if cfg.variant == "av":
                    vggish.append(model.audio.vggish(t["audio"][None].to(device))[0])
        model.train(was_training)
        self.sal = torch.stack(sal)  # [N, H, W]
        self.vggish = torch.stack(vggish) if vggish else None  # [N, C, S, ha, wa]
        self.distinct = len(keys)

    def __len__(self) -> int:
        return len(self.sal)

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None = None) -> Iterator[dict]:
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        order = order.to(self.sal.device)
        for k in range(0, len(order), batch_size):
            ids = order[k : k + batch_size]
            f = self.feature_of[ids]
            batch = {"neck": [lv[f].float() for lv in self.neck], "sal": self.sal[ids]}
            if self.vggish is not None:
                batch["vggish"] = self.vggish[ids]
            yield batch

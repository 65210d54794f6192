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

`TrunkCache.open(model, ds, folder)` (`train --trunk-cache DIR`) keeps the features on disk, named by a
fingerprint of everything they depend on: the config, the frozen trunks' weights, the split's clips and
the size and modification time of every file they read. A run on the same model and data loads them
instead of recomputing (13 minutes for stage 3); any change makes a new file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

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

    _SAVED = ("feature_of", "neck", "sal", "vggish", "distinct")

    @classmethod
    def open(cls, model, ds: StavisClips, folder: str | Path, batch_size: int = 8) -> TrunkCache:
        """The features of `ds` from `folder` when a run on the same model and data saved them there,
        else computed and saved (written to a temporary name, then renamed into place)."""
        folder = Path(folder)
        path = folder / f"trunk-{fingerprint(model, ds)[:24]}.pt"
        device = next(model.parameters()).device
        if path.exists():
            saved = torch.load(path, map_location=device, weights_only=True)
            cache = cls.__new__(cls)
            for k in cls._SAVED:
                setattr(cache, k, saved[k])
            cache.path, cache.loaded = path, True
            return cache
        cache = cls(model, ds, batch_size)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({k: getattr(cache, k) for k in cls._SAVED}, tmp)
        tmp.replace(path)
        cache.path, cache.loaded = path, False
        return cache

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


def trunk_modules(model) -> list[tuple[str, torch.nn.Module]]:
    """The modules `train --freeze-trunk` freezes and this cache computes once: the visual trunk (encoder +
    neck) and, for AV models, the VGGish trunk; with their name prefixes."""
    mods = [("encoder", model.encoder), ("fe", model.fe)]
    if model.cfg.variant == "av":
        mods.append(("audio.vggish", model.audio.vggish))
    return mods


def fingerprint(model, ds: StavisClips) -> str:
    """sha256 of what a split's trunk features depend on: the config, the frozen trunks' parameters and
    buffers, the split's clips (video, start) with the real frame folder each reads, and the size and
    mtime of every frame, map and soundtrack file of its videos. Rewriting a file in place with the same
    size within the file system's timestamp resolution would go unnoticed: delete the cache then."""
    h = hashlib.sha256()
    h.update(repr(sorted(vars(model.cfg).items())).encode())
    for prefix, module in trunk_modules(model):
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            h.update(f"{prefix}.{name}{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    for v, start in ds.index:
        h.update(f"{v.name}/{start}/{v.frames}/{v.fps}".encode())
    for v in ds.videos:
        for sub in ("video_frames", "annotations", "video_audio"):
            top = ds.root / sub / ds.db / v.name
            h.update(f"{sub}:{os.path.realpath(top)}".encode())
            for dirpath, _, files in sorted(os.walk(top, followlinks=True)):
                for f in sorted(files):
                    st = os.stat(os.path.join(dirpath, f))
                    h.update(f"{dirpath}/{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()

"""A whole STAViS split decoded once and kept on the training device (`python -m dtfsal.train --cache`).

`StavisClips` decodes 32 JPEGs and recomputes a log-mel window for every sample of every epoch; on a
GPU machine that, not the model, bounds training. This cache builds the same samples once, with
worker processes, from `StavisClips` itself (so they are bit-identical to what the DataLoader gives):

  frames [V][3, F, H, W]  normalised video of each video, every frame once
  clips  (video, start) pairs; audio [N, 9, 1, 112, 192] and maps [N, H, W] per clip

and assembles batches on the device by slicing. Memory: 4 x 3 x H x W bytes per frame plus
0.8 MB (audio) per clip: about 9 GB + 3.5 GB for 480 tiny-config videos at stride 8.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import torch

from .config import DTFSalConfig
from .data import StavisClips, load_rgb

_worker_set: StavisClips | None = None


def _init(root: str, db: str, split: str, cfg: DTFSalConfig, stride: int) -> None:
    global _worker_set
    torch.set_num_threads(1)
    _worker_set = StavisClips(root, db, split, cfg, stride=stride)


def _video(v_index: int) -> tuple[int, torch.Tensor, list[tuple[int, torch.Tensor, torch.Tensor | None]]]:
    ds = _worker_set
    assert ds is not None
    v = ds.videos[v_index]
    c = ds.cfg
    fdir = ds.root / "video_frames" / ds.db / v.name
    frames = torch.stack([load_rgb(fdir / f"img_{j + 1:05d}.jpg", c.height, c.width) for j in range(v.frames)], dim=1)
    frames = (frames - ds.mean) / ds.std  # [3, F, H, W], as StavisClips normalises each clip
    clips = []
    for entry, start in ds.index:
        if entry.name == v.name:
            t = ds.targets(v, start)
            clips.append((start, t["sal"], t.get("audio")))
    return v_index, frames, clips


class ClipCache:
    """Every clip of one split, resident on `device`; `batches()` replaces a DataLoader."""

    def __init__(self, root: str | Path, db: str, split: str, cfg: DTFSalConfig, stride: int, device: str,
                 jobs: int = 1, max_clips: int = 0) -> None:
        ds = StavisClips(root, db, split, cfg, stride=stride)
        self.cfg, self.device = cfg, device
        args = (str(root), db, split, cfg, stride)
        results = [None] * len(ds.videos)
        if jobs > 1:
            with multiprocessing.get_context("fork").Pool(jobs, initializer=_init, initargs=args) as pool:
                for r in pool.imap_unordered(_video, range(len(ds.videos))):
                    results[r[0]] = r
        else:
            _init(*args)
            results = [_video(i) for i in range(len(ds.videos))]
        self.frames, self.starts, self.video_of, sal, audio = [], [], [], [], []
        for v_index, frames, clips in results:
            self.frames.append(frames.to(device))
            for start, s, a in clips:
                self.video_of.append(v_index)
                self.starts.append(start)
                sal.append(s)
                if a is not None:
                    audio.append(a)
        if max_clips:
            self.video_of, self.starts, sal, audio = (x[:max_clips] for x in (self.video_of, self.starts, sal, audio))
        self.sal = torch.stack(sal).to(device)  # [N, H, W]
        self.audio = torch.stack(audio).to(device) if audio else None  # [N, 9, 1, 112, 192]
        self.lengths = [f.shape[1] for f in self.frames]

    def __len__(self) -> int:
        return len(self.starts)

    def clip(self, i: int) -> torch.Tensor:
        """Video of clip i, [3, T, H, W]: frames past the end repeat the last one (as StavisClips)."""
        f, start, t = self.frames[self.video_of[i]], self.starts[i], self.cfg.clip_len
        idx = torch.tensor([min(start + k, self.lengths[self.video_of[i]] - 1) for k in range(t)], device=f.device)
        return f.index_select(1, idx)

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None = None) -> Iterator[dict]:
        order = torch.randperm(len(self), generator=generator).tolist() if shuffle else list(range(len(self)))
        for k in range(0, len(order), batch_size):
            ids = order[k : k + batch_size]
            batch = {"video": torch.stack([self.clip(i) for i in ids]), "sal": self.sal[ids]}
            if self.audio is not None:
                batch["audio"] = self.audio[ids]
            yield batch

"""Training data in the STAViS audio-visual layout.

  video_frames/<DB>/<vid>/img_%05d.jpg          (1-based)
  video_audio/<DB>/<vid>/<vid>.wav              (any rate; mono or stereo)
  annotations/<DB>/<vid>/maps/eyeMap_%05d.jpg   (fixation density)
  fold_lists/<DB>_list_<split>_fps.txt          lines "name nframes fps"

A sample is a clip of `clip_len` consecutive frames; its map is that of frame `label_frame` of the clip (the
centre frame for full/tiny), its audio the 1.6 s log-mel window centred on that frame (audio_frontend).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from . import audio_frontend
from .config import DTFSalConfig


@dataclass(frozen=True)
class VideoEntry:
    name: str
    frames: int
    fps: float


def read_fold_list(root: Path, db: str, split: str) -> list[VideoEntry]:
    path = root / "fold_lists" / f"{db}_list_{split}_fps.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: fold list not found")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ValueError(f"{path}:{n}: expected 'name nframes fps', got {line!r}")
        out.append(VideoEntry(parts[0], int(parts[1]), float(parts[2])))
    return out


def read_wav_16k_mono(path: Path) -> np.ndarray:
    """PCM WAV -> float32 mono at 16 kHz (mean of channels; polyphase resampling if needed)."""
    with wave.open(str(path), "rb") as w:
        rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        raw = w.readframes(n)
    if width != 2:
        raise ValueError(f"{path}: only 16-bit PCM WAV is supported, got {8 * width}-bit")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32).reshape(-1, ch).mean(axis=1) / 32768.0
    if rate != audio_frontend.SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(rate, audio_frontend.SAMPLE_RATE)
        x = resample_poly(x, audio_frontend.SAMPLE_RATE // g, rate // g).astype(np.float32)
    return x


def load_rgb(path: Path, h: int, w: int) -> torch.Tensor:
    """Image -> [3, h, w] float on 0..255, bilinear resize (align_corners=False, no antialias)."""
    img = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)).permute(2, 0, 1)
    return F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False)[0]


def load_map(path: Path, h: int, w: int) -> torch.Tensor:
    m = torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32))
    m = F.interpolate(m[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    return m / max(float(m.max()), 1e-6)


class StavisClips(Dataset):
    """Clips of one STAViS-layout database split, `stride` frames apart."""

    def __init__(self, root: str | Path, db: str, split: str, cfg: DTFSalConfig, stride: int = 8) -> None:
        self.root, self.db, self.cfg = Path(root), db, cfg
        self.videos = read_fold_list(self.root, db, split)
        self.index = [
            (v, start) for v in self.videos for start in range(0, max(v.frames - cfg.clip_len, 0) + 1, stride)
        ]
        self._audio: dict[str, np.ndarray] = {}
        self.mean = torch.tensor(cfg.video_mean).view(3, 1, 1, 1)
        self.std = torch.tensor(cfg.video_std).view(3, 1, 1, 1)

    def __len__(self) -> int:
        return len(self.index)

    def audio_of(self, name: str) -> np.ndarray:
        if name not in self._audio:
            self._audio[name] = read_wav_16k_mono(self.root / "video_audio" / self.db / name / f"{name}.wav")
        return self._audio[name]

    def frame_numbers(self, v: VideoEntry, start: int) -> list[int]:
        """1-based frame numbers of the clip starting at `start`; frames past the end repeat the last one."""
        return [min(start + k, v.frames - 1) + 1 for k in range(self.cfg.clip_len)]

    def targets(self, v: VideoEntry, start: int) -> dict[str, torch.Tensor]:
        """The clip's map `sal` [H, W] and, for AV, its audio slices [9, 1, 112, 192]."""
        c = self.cfg
        label = self.frame_numbers(v, start)[c.label_frame]
        sal = load_map(self.root / "annotations" / self.db / v.name / "maps" / f"eyeMap_{label:05d}.jpg", c.height, c.width)
        out = {"sal": sal}
        if c.variant == "av":
            center = (label - 1) / v.fps
            out["audio"] = torch.from_numpy(audio_frontend.clip_audio(self.audio_of(v.name), center))
        return out

    def clip_video(self, v: VideoEntry, start: int) -> torch.Tensor:
        """The clip's normalised frames [3, T, H, W]."""
        c = self.cfg
        fdir = self.root / "video_frames" / self.db / v.name
        video = torch.stack([load_rgb(fdir / f"img_{j:05d}.jpg", c.height, c.width) for j in self.frame_numbers(v, start)], dim=1)
        return (video - self.mean) / self.std

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        v, start = self.index[i]
        return {"video": self.clip_video(v, start)} | self.targets(v, start)

"""Does an AV model use the sound? Score it with each clip's own audio, another video's, and silence.

  python -m dtfsal.audio_ablation --root DATA --db SYNTH --split test_1 --weights W.safetensors [--stride 32]

For every clip (`stride` frames apart) the map is predicted three times with the same frames: the
clip's own log-mel window, the window at the same position of the next video in the split (a
different soundtrack), and the window of digital silence. Prints the mean CC against the GT for
each, the paired per-clip gain of the own audio over the other two (mean, 95 % t-interval), and the mean
largest change of the map. A model that ignores its audio scores the same three times and its maps do
not move.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from . import audio_frontend
from .data import StavisClips
from .weights import load_model


def cc(p: torch.Tensor, g: torch.Tensor) -> float:
    p, g = p - p.mean(), g - g.mean()
    return float((p * g).sum() / (p.norm() * g.norm() + 1e-12))


def ablate(root: str, db: str, split: str, weights: str, stride: int = 32, device: str = "cpu") -> dict[str, float]:
    model = load_model(weights).eval().to(device)
    cfg = model.cfg
    if cfg.variant != "av":
        raise ValueError(f"{weights}: a visual-only model has no audio to ablate")
    ds = StavisClips(root, db, split, cfg, stride=stride)
    per_video = len(ds) // len(ds.videos)
    silence = torch.from_numpy(audio_frontend.clip_audio(np.zeros(audio_frontend.SAMPLE_RATE * 4, np.float32), 2.0)).to(device)
    scores: dict[str, list[float]] = {"own": [], "other": [], "silence": []}
    moved: list[float] = []
    with torch.no_grad():
        for i in range(len(ds)):
            s = {k: v.to(device) for k, v in ds[i].items()}
            other = ds[(i + per_video) % len(ds)]["audio"].to(device)
            maps = {}
            for name, a in (("own", s["audio"]), ("other", other), ("silence", silence)):
                maps[name] = model(s["video"][None], a[None])[0]
                scores[name].append(cc(maps[name], s["sal"]))
            moved.append(float((maps["own"] - maps["other"]).abs().max()))
    out = {f"cc_{k}": float(np.mean(v)) for k, v in scores.items()}
    # paired per clip (same frames, same GT): own audio minus the other two, with a 95 % t-interval
    for name in ("other", "silence"):
        d = np.asarray(scores["own"]) - np.asarray(scores[name])
        half = 1.96 * float(d.std(ddof=1)) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        out[f"gain_vs_{name}"], out[f"gain_vs_{name}_ci"] = float(d.mean()), half
    out["max_map_change"] = float(np.mean(moved))
    out["clips"] = len(ds)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.audio_ablation", description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--split", default="test_1")
    p.add_argument("--weights", required=True)
    p.add_argument("--stride", type=int, default=32)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    r = ablate(a.root, a.db, a.split, a.weights, a.stride, a.device)
    print(f"{r['clips']} clips: CC with own audio {r['cc_own']:.3f}, another video's audio {r['cc_other']:.3f}, "
          f"silence {r['cc_silence']:.3f}; mean max |map change| own vs other {r['max_map_change']:.4f}")
    print(f"paired CC gain of the own audio: vs another video's {r['gain_vs_other']:+.4f} +- {r['gain_vs_other_ci']:.4f}, "
          f"vs silence {r['gain_vs_silence']:+.4f} +- {r['gain_vs_silence_ci']:.4f} (95 % interval)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

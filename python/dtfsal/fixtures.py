"""Parity fixtures: a weight file and a case file the Rust engine is checked against.

  python -m dtfsal.fixtures --config tiny --variant av --seed 0 --out-dir ../tests/data

writes `<config>-<variant>.weights.safetensors` (the project weight file, f16 storage) and `<config>-<variant>.case.safetensors`:
  input/video     [1,3,T,H,W] normalised video
  input/waveform  [25600] 16 kHz mono, the 1.6 s audio window the clip's audio slices come from (AV only)
  input/audio     [1,9,1,112,192] log-mel slices of input/waveform (AV only)
  <block>/<name>  named intermediates at each block boundary (see `DTFSal.forward(trace=...)`); encoder
                  blocks that end a stage are stored once, as encoder/f1..f4 (stage-normed, class token dropped)
  output/sal      [1,H,W] saliency map
Every affine and BatchNorm parameter and statistic is randomised and the deformable offsets are non-zero, so a
wrong op cannot hide behind an identity. The reference runs in float64 (weights are f32 values) and is stored
as f32, so the case carries no float32 accumulation error of its own.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from . import audio_frontend
from .config import DTFSalConfig, get_config
from .model import DTFSal
from .weights import save_weights

SAMPLE_RATE = 16000
OFFSET_STD = 0.8  # target std of the deformable offsets, in pixels


@torch.no_grad()
def randomize_for_parity(model: DTFSal, seed: int) -> None:
    """Give every parameter and statistic a non-trivial value (f32)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(t: torch.Tensor, std: float, mean: float = 0.0) -> torch.Tensor:
        return torch.randn(t.shape, generator=g) * std + mean

    for mod in model.modules():
        if isinstance(mod, (nn.LayerNorm, nn.BatchNorm3d)):
            mod.weight.copy_(rnd(mod.weight, 0.2, 1.0))
            mod.bias.copy_(rnd(mod.bias, 0.1))
        if isinstance(mod, nn.BatchNorm3d):
            mod.running_mean.copy_(rnd(mod.running_mean, 0.1))
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
        if isinstance(mod, (nn.Linear, nn.Conv3d, nn.Conv2d)) and mod.bias is not None:
            mod.bias.copy_(rnd(mod.bias, 0.05))
    for name, p in model.named_parameters():
        if "rel_pos" in name:
            p.copy_(rnd(p, 0.2))
        elif name.endswith("te.pos"):
            p.copy_(rnd(p, 0.2))
        elif name.endswith("deform.offset.bias"):
            p.copy_(rnd(p, OFFSET_STD))
        elif name.endswith("bias") and not p.any():  # e.g. the deformable conv's own bias
            p.copy_(rnd(p, 0.05))
    # default inits shrink activations through ReLU stacks; restore a useful dynamic range so the maps vary
    for seq, gain in ((model.decoders, 3.0), (model.fuse, 4.0), (getattr(model, "audio", None), 1.6)):
        if seq is None:
            continue
        for mod in seq.modules():
            if isinstance(mod, (nn.Conv3d, nn.Conv2d)):
                mod.weight.mul_(gain)


@torch.no_grad()
def calibrate_offsets(model: DTFSal, video: torch.Tensor, audio: torch.Tensor | None, seed: int) -> None:
    """Scale each offset predictor's weights so its data-dependent part has std ~OFFSET_STD pixels."""
    if model.cfg.variant != "av":
        return
    g = torch.Generator().manual_seed(seed + 1)
    stats, hooks = {}, []
    for i, m in enumerate(model.amfb):
        conv = m.deform.offset
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        hooks.append(conv.register_forward_hook(lambda mod, inp, out, i=i: stats.__setitem__(i, (out - mod.bias[None, :, None, None]).std().item())))
    model(video, audio)
    for h in hooks:
        h.remove()
    for i, m in enumerate(model.amfb):
        m.deform.offset.weight.mul_(OFFSET_STD / max(stats[i], 1e-12))


def synth_waveform(seconds: float, seed: int) -> np.ndarray:
    """Tones, a chirp, noise bursts and a silent gap: a speech-free but varied test signal."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = 0.3 * np.sin(2 * math.pi * 440 * t) + 0.2 * np.sin(2 * math.pi * (200 + 900 * t) * t)
    x += 0.1 * rng.standard_normal(t.shape) * (np.sin(2 * math.pi * 3 * t) > 0)
    x[(t > 0.9) & (t < 1.1)] = 0.0
    return x.astype(np.float32)


def make_case(cfg: DTFSalConfig, seed: int) -> tuple[DTFSal, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    model = DTFSal(cfg).eval()
    randomize_for_parity(model, seed)
    g = torch.Generator().manual_seed(seed + 2)
    video = torch.randn(1, 3, cfg.clip_len, cfg.height, cfg.width, generator=g)
    inputs = {"input/video": video}
    audio = None
    if cfg.variant == "av":
        wave = synth_waveform(3.0, seed)
        center = 1.5
        window = audio_frontend.clip_window(wave, center)  # [25600]
        audio = torch.from_numpy(audio_frontend.clip_audio(wave, center))[None]  # [1, 9, 1, 112, 192]
        inputs["input/waveform"] = torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))
        inputs["input/audio"] = audio
    calibrate_offsets(model, video, audio, seed)
    # weights are stored as f16 (the shipped format): the reference uses exactly those values
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())

    # reference in float64
    ref = DTFSal(cfg).eval()
    ref.load_state_dict(model.state_dict())
    ref = ref.double()
    trace: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        sal = ref(video.double(), None if audio is None else audio.double(), trace=trace)
    case = dict(inputs)
    taps = {f"encoder/block{i}" for i in cfg.tap_blocks}  # equal to encoder/f1..f4 plus the class token
    case.update({k: v.float().contiguous() for k, v in trace.items() if k not in taps})
    case["output/sal"] = sal.float().contiguous()
    return model, case


def write_case(cfg: DTFSalConfig, seed: int, out_dir: str | Path) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, case = make_case(cfg, seed)
    stem = f"{cfg.name}-{cfg.variant}"
    wpath, cpath = out_dir / f"{stem}.weights.safetensors", out_dir / f"{stem}.case.safetensors"
    save_weights(model.state_dict(), cfg, wpath, dtype="f16")
    meta = {"config": cfg.to_json(), "seed": str(seed), "reference_dtype": "float64",
            "tensors": json.dumps(sorted(case))}  # fmt: skip
    save_file(case, str(cpath), metadata=meta)
    return wpath, cpath


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.fixtures", description="write a parity case")
    p.add_argument("--config", default="tiny")
    p.add_argument("--variant", default="av", choices=["av", "v"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="tests/data")
    a = p.parse_args(argv)
    w, c = write_case(get_config(a.config, a.variant), a.seed, a.out_dir)
    print(f"wrote {w} and {c}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Convert checkpoints into the project's weight file.

  python -m dtfsal.convert dtfsal CKPT.pt --config full --variant av --out W.safetensors [--dtype f16]
  python -m dtfsal.convert mvit   MVIT.pth --config full --out mvit.safetensors      (torchvision mvit_v2_s)
  python -m dtfsal.convert vggish VGGISH.pth --config full --out vggish.safetensors  (torchvggish VGGish)

Inputs are plain state dicts (`torch.save(model.state_dict())`); a dict wrapping one under 'state_dict' or
'model', and DataParallel's 'module.' prefix, are unwrapped. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .config import get_config
from .weights import WeightFileError, save_weights


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightFileError(f"{path}: no such checkpoint") from None
    except Exception as e:  # torch raises many types for corrupt pickles/zips
        raise WeightFileError(f"{path}: not a readable torch checkpoint ({e})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightFileError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def from_torchvision_mvit(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision mvit_v2_s keys -> encoder.mvit.*, classification head dropped."""
    return {f"encoder.mvit.{k}": v for k, v in sd.items() if not k.startswith("head.")}


def from_torchvggish(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvggish VGGish keys -> audio.vggish.features.*; FC embeddings and PCA post-processor dropped."""
    return {f"audio.vggish.{k}": v for k, v in sd.items() if k.startswith("features.")}


def convert(kind: str, src: str | Path, out: str | Path, config: str, variant: str, dtype: str) -> None:
    cfg = get_config(config, variant)
    sd = load_state_dict(src)
    if kind == "dtfsal":
        save_weights(sd, cfg, out, dtype=dtype, part="model")
    elif kind == "mvit":
        save_weights(from_torchvision_mvit(sd), cfg, out, dtype=dtype, part="mvit")
    elif kind == "vggish":
        save_weights(from_torchvggish(sd), cfg, out, dtype=dtype, part="vggish")
    else:
        raise ValueError(f"unknown kind {kind!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.convert", description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=["dtfsal", "mvit", "vggish"])
    p.add_argument("checkpoint")
    p.add_argument("--config", default="full", help="model config the weights belong to (full | tiny)")
    p.add_argument("--variant", default="av", choices=["av", "v"])
    p.add_argument("--dtype", default="f32", choices=["f32", "f16"], help="storage dtype")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    try:
        convert(a.kind, a.checkpoint, a.out, a.config, a.variant, a.dtype)
    except (WeightFileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

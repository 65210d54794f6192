"""The project's weight file: safetensors, the model config as JSON in its metadata, f32 or f16 storage.

Tensor names are the state-dict keys of `DTFSal` (equal to spec/weights-dtfsal-av.tsv for full AV);
BatchNorm `num_batches_tracked` is never stored. Metadata keys:
  format = "dtfsal-weights", format_version = "1", part = "model" | "mvit" | "vggish", config = JSON.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .config import DTFSalConfig

FORMAT = "dtfsal-weights"
FORMAT_VERSION = "1"
PARTS = ("model", "mvit", "vggish")
# prefix of the tensors each partial file holds
PART_PREFIX = {"model": "", "mvit": "encoder.mvit.", "vggish": "audio.vggish."}
DTYPES = {"f32": torch.float32, "f16": torch.float16}


class WeightFileError(ValueError):
    """A weight file that cannot be used; the message names the path, tensor or field."""


def expected_tensors(cfg: DTFSalConfig, part: str = "model") -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor a weight file of this config and part must hold."""
    from .model import DTFSal

    with torch.device("meta"):
        model = DTFSal(cfg)
    prefix = PART_PREFIX[part]
    return {
        k: tuple(v.shape)
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked") and k.startswith(prefix)
    }


def check_tensors(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]], what: str) -> None:
    """Raise WeightFileError naming every missing, unexpected and mis-shaped tensor."""
    problems = [f"missing tensor {k!r} {list(s)}" for k, s in expected.items() if k not in found]
    problems += [f"unexpected tensor {k!r} {list(s)}" for k, s in found.items() if k not in expected]
    problems += [
        f"tensor {k!r}: expected shape {list(s)}, found {list(found[k])}"
        for k, s in expected.items()
        if k in found and tuple(found[k]) != tuple(s)
    ]
    if problems:
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise WeightFileError(f"{what}: " + "; ".join(problems[:20]) + more)


def save_weights(
    state: dict[str, torch.Tensor], cfg: DTFSalConfig, path: str | Path, dtype: str = "f32", part: str = "model"
) -> None:
    """Write `state` (checked against the config) as a project weight file."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    tensors = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    check_tensors({k: tuple(v.shape) for k, v in tensors.items()}, expected_tensors(cfg, part), str(path))
    out = {k: v.detach().to(DTYPES[dtype]).cpu().contiguous() for k, v in tensors.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "part": part, "config": cfg.to_json()}
    save_file(out, str(path), metadata=meta)


def read_weights(path: str | Path, part: str | None = None) -> tuple[DTFSalConfig, dict[str, torch.Tensor], str]:
    """Read and validate a weight file -> (config, float32 tensors, part)."""
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f"{path}: no such weight file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightFileError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != FORMAT:
        raise WeightFileError(f"{path}: metadata 'format' is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise WeightFileError(f"{path}: unsupported format_version {meta.get('format_version')!r}")
    if "config" not in meta:
        raise WeightFileError(f"{path}: metadata has no 'config'")
    try:
        cfg = DTFSalConfig.from_json(meta["config"])
    except (ValueError, TypeError) as e:
        raise WeightFileError(f"{path}: bad config metadata ({e})") from None
    file_part = meta.get("part", "model")
    if part is not None and file_part != part:
        raise WeightFileError(f"{path}: holds part {file_part!r}, expected {part!r}")
    for k, v in tensors.items():
        if not v.is_floating_point():
            raise WeightFileError(f"{path}: tensor {k!r} has dtype {v.dtype}, expected a float type")
    check_tensors({k: tuple(v.shape) for k, v in tensors.items()}, expected_tensors(cfg, file_part), str(path))
    return cfg, {k: v.float() for k, v in tensors.items()}, file_part


def load_model(path: str | Path):
    """Build a DTFSal from a full weight file, in eval mode."""
    from .model import DTFSal

    cfg, tensors, _ = read_weights(path, part="model")
    model = DTFSal(cfg)
    model.load_state_dict(tensors, strict=False)  # strictness checked above; BN counters are not stored
    return model.eval()

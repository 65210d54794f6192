"""Export DTFSal (any config, AV or V) to ONNX for ONNX Runtime and TensorRT.

    python -m dtfsal.export_onnx --weights W.safetensors --out M.onnx [--opset 18] [--check]

Inputs `video` [1,3,T,H,W] (normalised) and, for the AV model, `audio` [1,9,1,112,192]; output `sal`
[1,H,W]. Static shapes, batch 1, float32, one self-contained file (no external data). The model's config
JSON is stored in the ONNX metadata (key `dtfsal_config`, beside `dtfsal_format=dtfsal-onnx`,
`dtfsal_format_version=1`), so a runtime knows the input sizes without the weight file.

Export path: `torch.onnx.export(dynamo=True)`. torchvision's `deform_conv2d` has no ONNX form, so for the
export it is replaced by an exact decomposition into standard ops (`deform_conv2d_sampled`: one bilinear
GridSample of the nine kernel taps + one MatMul), which ONNX Runtime and TensorRT (>= 8.6) both run.
`--check` runs the file in ONNX Runtime (CPU) and compares it with the PyTorch model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .model.deform import deform_conv2d_sampled  # the export's stand-in for torchvision's op

ONNX_FORMAT = "dtfsal-onnx"
ONNX_FORMAT_VERSION = "1"
DEFAULT_OPSET = 18


def _rel_pos_features(q, q_thw, k_thw, rel_pos_h, rel_pos_w, rel_pos_t):
    """torchvision `mvit._add_rel_pos` as one extra block of the attention product.

    torchvision adds rel_t[i, kt(j)] + rel_h[i, kh(j)] + rel_w[i, kw(j)] to attn[1 + i, 1 + j] in place
    (`attn[:, :, 1:, 1:] += rel_pos`), which exports as Transpose + ScatterND + Transpose over the whole
    attention matrix (ORT's slowest ops in the first profile; a Pad + Add instead still costs three passes
    over it). The same sum is a dot product: query i carries u_i = [rel_t[i], rel_h[i], rel_w[i]] (zeros
    for the class token) and key j the one-hot e_j = [kt(j), kh(j), kw(j)] (zeros for the class token), so
    `[s*q, u] @ [k, e]^T` is the biased attention in one MatMul. Returns (u [B, heads, Nq, kt+kh+kw],
    e [Nk, kt+kh+kw]).
    """
    from torchvision.models.video.mvit import _interpolate

    q_t, q_h, q_w = q_thw
    k_t, k_h, k_w = k_thw

    def table(rel, qn, kn):
        d = int(2 * max(qn, kn) - 1)
        q_ratio, k_ratio = max(kn / qn, 1.0), max(qn / kn, 1.0)
        dist = torch.arange(qn)[:, None] * q_ratio - (torch.arange(kn)[None, :] + (1.0 - kn)) * k_ratio
        return _interpolate(rel, d)[dist.long()]  # [qn, kn, dim]

    rh, rw, rt = table(rel_pos_h, q_h, k_h), table(rel_pos_w, q_w, k_w), table(rel_pos_t, q_t, k_t)
    b, n_head, _, dim = q.shape
    r_q = q[:, :, 1:].reshape(b, n_head, q_t, q_h, q_w, dim)
    u = torch.cat(
        [
            torch.einsum("bnthwc,tkc->bnthwk", r_q, rt),
            torch.einsum("bnthwc,hkc->bnthwk", r_q, rh),
            torch.einsum("bnthwc,wkc->bnthwk", r_q, rw),
        ],
        dim=-1,
    ).reshape(b, n_head, q_t * q_h * q_w, k_t + k_h + k_w)
    u = F.pad(u, (0, 0, 1, 0))  # class-token query: no bias
    jt, jh, jw = torch.meshgrid(torch.arange(k_t), torch.arange(k_h), torch.arange(k_w), indexing="ij")
    e = torch.cat(
        [F.one_hot(jt.flatten(), k_t), F.one_hot(jh.flatten(), k_h), F.one_hot(jw.flatten(), k_w)], dim=-1
    ).to(q.dtype)
    e = F.pad(e, (0, 0, 1, 0))  # class-token key: no bias
    return u, e


def _mvit_attention_forward(self, x, thw):
    """torchvision `MultiscaleAttention.forward`: same maths, no in-place slice updates (see above)."""
    b, n, _ = x.shape
    q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    k_thw = thw
    if self.pool_k is not None:
        k, k_thw = self.pool_k(k, thw)
    if self.pool_v is not None:
        v = self.pool_v(v, thw)[0]
    if self.pool_q is not None:
        q, thw = self.pool_q(q, thw)
    qs = self.scaler * q
    if self.rel_pos_h is not None:
        u, e = _rel_pos_features(q, thw, k_thw, self.rel_pos_h, self.rel_pos_w, self.rel_pos_t)
        qs = torch.cat([qs, u], dim=-1)
        k = torch.cat([k, e.expand(k.shape[0], k.shape[1], -1, -1)], dim=-1)
    attn = torch.matmul(qs, k.transpose(2, 3))
    x = torch.matmul(attn.softmax(dim=-1), v)
    if self.residual_pool:
        if self.residual_with_cls_embed:
            x = x + q
        else:  # torchvision: x[:, :, 1:, :] += q[:, :, 1:, :]
            x = x + F.pad(q[:, :, 1:], (0, 0, 1, 0))
    x = x.transpose(1, 2).reshape(b, -1, self.output_dim)
    return self.project(x), thw


@contextlib.contextmanager
def export_ops():
    """Within: ONNX-friendly forms of the ops the exporters cannot take or ONNX Runtime runs badly.

    - the AMFB deformable convolution runs as `deform_conv2d_sampled` (no ONNX form otherwise);
    - torchvision's MViT attention adds its relative-position bias and pooled residual without in-place
      slice updates (`_mvit_attention_forward`).
    Both are the same maths as the eager model (checked by python/tests/test_export_onnx.py).
    """
    from torchvision.models.video import mvit

    from .model import amfb

    saved = amfb.deform_conv2d, mvit.MultiscaleAttention.forward
    amfb.deform_conv2d = deform_conv2d_sampled
    mvit.MultiscaleAttention.forward = _mvit_attention_forward
    try:
        yield
    finally:
        amfb.deform_conv2d, mvit.MultiscaleAttention.forward = saved


class _AV(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.model(video, audio)


class _V(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.model(video)


def example_inputs(cfg, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {"video": torch.randn(1, 3, cfg.clip_len, cfg.height, cfg.width, generator=g)}
    if cfg.variant == "av":
        out["audio"] = torch.randn(1, cfg.audio_slices, 1, cfg.audio_height, cfg.audio_width, generator=g)
    return out


def metadata(cfg) -> dict[str, str]:
    return {
        "dtfsal_format": ONNX_FORMAT,
        "dtfsal_format_version": ONNX_FORMAT_VERSION,
        "dtfsal_config": cfg.to_json(),
    }


def export(model: nn.Module, path: str | Path, opset: int = DEFAULT_OPSET) -> None:
    """Write `model` (a DTFSal in eval mode) as a self-contained ONNX file at `path`."""
    if opset < 18:
        raise ValueError(f"opset must be >= 18, got {opset}")
    cfg = model.cfg
    model = model.eval()
    inputs = example_inputs(cfg)
    wrapper = (_AV(model) if cfg.variant == "av" else _V(model)).eval()
    names = list(inputs)
    with export_ops(), torch.no_grad():
        prog = torch.onnx.export(
            wrapper,
            tuple(inputs.values()),
            dynamo=True,
            opset_version=opset,
            input_names=names,
            output_names=["sal"],
            optimize=True,
            verbose=False,
        )
    prog.model.metadata_props.update(metadata(cfg))
    prog.model.doc_string = f"DTFSal {cfg.name} {cfg.variant.upper()}: inputs {', '.join(names)}; output sal [1,H,W]"
    prog.save(str(path), external_data=False)


def run_ort(path: str | Path, inputs: dict[str, torch.Tensor], threads: int = 2) -> torch.Tensor:
    """One ONNX Runtime CPU forward pass of an exported file -> `sal` as a torch tensor."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {k: v.detach().float().contiguous().numpy() for k, v in inputs.items()}
    (out,) = sess.run(["sal"], feed)
    return torch.from_numpy(out)


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.export_onnx", description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="project weight file (part=model)")
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= 18, default {DEFAULT_OPSET})")
    p.add_argument("--check", action="store_true", help="compare ONNX Runtime (CPU) with PyTorch on a random clip")
    p.add_argument("--threads", type=int, default=2, help="threads for --check (torch and ONNX Runtime)")
    a = p.parse_args(argv)
    if a.opset < 18:
        p.error("--opset must be >= 18")

    import logging
    import warnings

    from .weights import WeightFileError, load_model

    torch.set_num_threads(a.threads)
    try:
        model = load_model(a.weights)
    except WeightFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export(model, a.out, a.opset)
    size = Path(a.out).stat().st_size
    cfg = model.cfg
    result = {"out": a.out, "bytes": size, "opset": a.opset, "config": cfg.name, "variant": cfg.variant}
    if a.check:
        inputs = example_inputs(cfg, seed=1)
        with torch.inference_mode():
            ref = model(*inputs.values())
        got = run_ort(a.out, inputs, a.threads)
        result["max_abs_diff"] = float((got - ref).abs().max())
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

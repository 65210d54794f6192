"""DCNv1 as standard ops: the exact decomposition of torchvision's `deform_conv2d` used where its own
kernel does not fit: the ONNX export (no ONNX form) and training (its CPU backward is several times
slower: python -m dtfsal.bench_deform)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def deform_conv2d_sampled(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: tuple[int, int] | int = (1, 1),
    padding: tuple[int, int] | int = (0, 0),
    dilation: tuple[int, int] | int = (1, 1),
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """torchvision `deform_conv2d` (DCNv1: stride 1, dilation 1, 'same' padding, one offset group) from
    GridSample + MatMul.

    Tap k = (ky, kx) of output pixel (y, x) reads x bilinearly at (y + ky - pad_h + dy_k, x + kx - pad_w +
    dx_k), zero outside the image (torchvision's rule: corners outside contribute 0). All nine taps are
    sampled by one GridSample over a [N, K*H, W] grid; the samples [N, C*K, H*W] are then one matrix
    product with the weight [Cout, C*K].
    """
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    n, c, h, w = x.shape
    cout, cin, kh, kw = weight.shape
    if stride != (1, 1) or dilation != (1, 1) or padding != (kh // 2, kw // 2) or mask is not None:
        raise NotImplementedError("deform_conv2d_sampled: only stride 1, dilation 1, same padding, no mask")
    if cin != c or offset.shape[1] != 2 * kh * kw:
        raise NotImplementedError("deform_conv2d_sampled: one weight group and one offset group only")
    k = kh * kw
    off = offset.reshape(n, k, 2, h, w)
    ky = (torch.arange(kh, dtype=x.dtype) - padding[0]).repeat_interleave(kw).reshape(1, k, 1, 1)
    kx = (torch.arange(kw, dtype=x.dtype) - padding[1]).repeat(kh).reshape(1, k, 1, 1)
    ys = torch.arange(h, dtype=x.dtype).reshape(1, 1, h, 1) + ky + off[:, :, 0]  # [N, K, H, W] pixel rows
    xs = torch.arange(w, dtype=x.dtype).reshape(1, 1, 1, w) + kx + off[:, :, 1]
    # align_corners=False: pixel p <-> (2p + 1) / size - 1 (defined for size 1 too)
    gy = (2.0 * ys + 1.0) / h - 1.0
    gx = (2.0 * xs + 1.0) / w - 1.0
    grid = torch.stack([gx, gy], dim=-1).reshape(n, k * h, w, 2)
    s = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # [N, C, K*H, W]
    cols = s.reshape(n, c * k, h * w)  # (c, ky, kx) order = weight.reshape(Cout, C*K)
    out = torch.matmul(weight.reshape(cout, c * k), cols)
    if bias is not None:
        out = out + bias.reshape(1, cout, 1)
    return out.reshape(n, cout, h, w)

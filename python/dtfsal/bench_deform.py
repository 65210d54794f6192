"""Forward + backward time of the AMFB deformable conv: torchvision's op against the grid_sample decomposition
(`model/deform.py`, what training runs), on the tiny AV model's level-1 and level-2 shapes, batch 16 x 8 slices.

  python -m dtfsal.bench_deform [--threads 2] [--runs 3]

Prints the best time of each, their ratio, and how closely their outputs agree (the gradients are checked
in python/tests/test_train.py).
"""

from __future__ import annotations

import argparse
import time

import torch
from torchvision.ops import deform_conv2d

from .model.deform import deform_conv2d_sampled


def step(f, x, off, wt, b) -> float:
    t = time.perf_counter()
    f(x, off, wt, b, padding=(1, 1)).square().sum().backward()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.bench_deform", description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    for n, c, h, w in ((128, 32, 24, 40), (128, 32, 12, 20)):
        x = torch.randn(n, c, h, w, generator=g).requires_grad_()
        off = (0.7 * torch.randn(n, 18, h, w, generator=g)).requires_grad_()
        wt = torch.randn(c, c, 3, 3, generator=g).requires_grad_()
        b = torch.randn(c, generator=g).requires_grad_()
        best = {}
        for name, f in (("torchvision", deform_conv2d), ("grid_sample", deform_conv2d_sampled)):
            best[name] = min(step(f, x, off, wt, b) for _ in range(a.runs))
        with torch.no_grad():
            outs = [f(x, off, wt, b, padding=(1, 1)) for f in (deform_conv2d, deform_conv2d_sampled)]
        diff = float((outs[0] - outs[1]).abs().max() / outs[0].abs().max())
        print(f"[{n}, {c}, {h}, {w}]: torchvision {1e3 * best['torchvision']:.0f} ms, grid_sample "
              f"{1e3 * best['grid_sample']:.0f} ms ({best['torchvision'] / best['grid_sample']:.1f}x), "
              f"outputs agree to {diff:.1e} (relative)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

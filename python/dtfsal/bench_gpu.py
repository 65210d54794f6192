"""PyTorch-on-GPU side of `scripts/gpu-check`: time the reference model (eager, optionally torch.compile)
on a CUDA device at batch 1 and 8, fp32 and fp16 autocast, on the weight and input files that
`dtfsal-gpu-check` wrote: the forward pass on device tensors, and (mode `eager-e2e`, batch 1) the clip
copied from host memory, the forward pass and the map copied back, as the Rust engine's ms/clip counts
it. Prints one JSON line per setting and a final summary line.

    python -m dtfsal.bench_gpu --weights full-av.safetensors --input full-av.input.safetensors \
        [--batches 1 8] [--runs 10] [--compile]

Runs with or without the `safetensors` package (a minimal reader is built in).
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import time


def read_safetensors(path: str):
    """(tensors, metadata) of a safetensors file, without the safetensors package."""
    import torch

    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64, "I64": torch.int64}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        t = torch.frombuffer(data[a:b], dtype=dtypes[info["dtype"]]) if b > a else torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta


def load(weights: str):
    from .config import DTFSalConfig
    from .model import DTFSal

    tensors, meta = read_safetensors(weights)
    cfg = DTFSalConfig.from_json(meta["config"])
    model = DTFSal(cfg)
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
    return model.eval()


def time_it(fn, runs: int, warmup: int = 3) -> list[float]:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.bench_gpu")
    p.add_argument("--weights", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--compile", action="store_true", help="also torch.compile (batch 1; slow to compile)")
    a = p.parse_args(argv)
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    model = load(a.weights).to(dev)
    inputs, _ = read_safetensors(a.input)
    video = inputs["input/video"].float().to(dev)
    audio = inputs.get("input/audio")
    audio = audio.float().to(dev) if audio is not None and model.cfg.variant != "v" else None
    results = []
    settings = [("eager", m, b) for m in ("fp32", "fp16") for b in a.batches] + [("eager-e2e", m, 1) for m in ("fp32", "fp16")]
    host_video, host_audio = video.cpu(), audio.cpu() if audio is not None else None
    if a.compile:
        settings += [("compile", m, 1) for m in ("fp32", "fp16")]
    compiled = None
    for mode, prec, b in settings:
        v = video.expand(b, *video.shape[1:]).contiguous()
        au = audio.expand(b, *audio.shape[1:]).contiguous() if audio is not None else None
        net = model
        if mode == "compile":
            if compiled is None:
                t0 = time.perf_counter()
                compiled = torch.compile(model)
                compile_start = t0
            net = compiled
        row = {"mode": mode, "precision": prec, "batch": b, "torch": torch.__version__, "device": torch.cuda.get_device_name()}
        try:
            def run():
                with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=prec == "fp16"):
                    if mode == "eager-e2e":
                        return net(host_video.to(dev), host_audio.to(dev) if host_audio is not None else None).cpu()
                    return net(v, au)

            if mode == "compile":
                run()
                torch.cuda.synchronize()
                row["compile_s"] = time.perf_counter() - compile_start
            times = time_it(run, a.runs)
            med = statistics.median(times)
            row.update({"median_ms_per_batch": med, "ms_per_clip": med / b, "clips_per_s": 1e3 * b / med, "min_ms_per_batch": min(times), "runs": a.runs})
        except Exception as e:  # noqa: BLE001 - reported, the other settings still run
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        print(json.dumps(row), flush=True)
        results.append(row)
    print(json.dumps({"summary": results}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

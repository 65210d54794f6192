"""PyTorch side of `dtfsal bench`: time the reference model on one clip, print one JSON line.

    python -m dtfsal.bench --weights W.safetensors --input IN.safetensors --threads 2 --runs 5 --warmup 1

`IN` holds `input/video` [1,3,32,H,W] and, for the audio-visual model, `input/audio` [1,9,1,112,192]
(the `dtfsal forward` input format). The last line on stdout is a JSON object:
``{"median_ms", "min_ms", "runs", "warmup", "times_ms", "cpu_median_ms", "cpu_ms", "load_ms", "threads",
"peak_rss_kib", "torch"}`` (`cpu_ms`: process CPU time per clip, all threads).
`peak_rss_kib` is this process's peak resident set (getrusage ru_maxrss, KiB on Linux), torch import
included.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dtfsal.bench", description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="project weight file (part=model)")
    p.add_argument("--input", required=True, help="safetensors with input/video [1,3,T,H,W] (+ input/audio)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (torch.set_num_threads)")
    p.add_argument("--runs", type=int, default=5, help="timed forward passes")
    p.add_argument("--warmup", type=int, default=1, help="untimed forward passes first")
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error("--threads must be >= 1")
    if a.runs < 1:
        p.error("--runs must be >= 1")
    if a.warmup < 0:
        p.error("--warmup must be >= 0")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(a.threads)
    try:  # only allowed before any inter-op parallel work has started in this process
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    from .weights import load_model

    t0 = time.perf_counter()
    model = load_model(a.weights)
    load_ms = (time.perf_counter() - t0) * 1e3
    inputs = load_file(a.input)
    if "input/video" not in inputs:
        print(f"{a.input}: tensor 'input/video' not found", file=sys.stderr)
        return 2
    video = inputs["input/video"].float().contiguous()
    audio = inputs.get("input/audio")
    if audio is not None:
        audio = audio.float().contiguous()
    if model.cfg.variant == "v":  # the visual-only model takes no audio
        audio = None

    times: list[float] = []
    cpu: list[float] = []
    with torch.inference_mode():
        for _ in range(a.warmup):
            model(video, audio)
        for _ in range(a.runs):
            t, c = time.perf_counter(), time.process_time()
            out = model(video, audio)
            times.append((time.perf_counter() - t) * 1e3)
            cpu.append((time.process_time() - c) * 1e3)
    sal = out[0] if isinstance(out, (tuple, list)) else out
    result = {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "runs": a.runs,
        "warmup": a.warmup,
        "times_ms": times,
        "cpu_median_ms": statistics.median(cpu),
        "cpu_ms": cpu,
        "load_ms": load_ms,
        "threads": torch.get_num_threads(),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "torch": torch.__version__,
        "output_shape": list(sal.shape),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

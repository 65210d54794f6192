"""`python -m dtfsal.bench` (the PyTorch side of `dtfsal bench`) on the committed tiny weights."""

import json

from dtfsal import bench


def test_bench_prints_one_json_line(repo, capsys):
    data = repo / "tests" / "data"
    # threads 2: conftest's setting (bench.main changes torch's thread count process-wide)
    rc = bench.main(
        [
            "--weights", str(data / "tiny-av.weights.safetensors"),
            "--input", str(data / "tiny-av.case.safetensors"),
            "--threads", "2", "--runs", "1", "--warmup", "0",
        ]
    )  # fmt: skip
    assert rc == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    r = json.loads(lines[0])
    assert r["median_ms"] > 0 and r["min_ms"] > 0 and r["min_ms"] <= r["median_ms"]
    assert r["runs"] == 1 and len(r["times_ms"]) == 1
    assert r["peak_rss_kib"] > 0 and isinstance(r["torch"], str)
    assert r["output_shape"] == [1, 96, 160]


def test_bench_deform_times_both_paths_and_they_agree(capsys):
    import re

    from dtfsal import bench_deform

    assert bench_deform.main(["--threads", "2", "--runs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line in lines:
        m = re.search(r"torchvision (\d+) ms, grid_sample (\d+) ms \(([\d.]+)x\), outputs agree to ([\d.e+-]+)", line)
        assert m, line
        assert int(m[1]) > 0 and int(m[2]) > 0 and float(m[4]) < 1e-4

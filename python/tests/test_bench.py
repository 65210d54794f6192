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

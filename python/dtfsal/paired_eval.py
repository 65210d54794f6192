"""Is model A better than model B on the same videos? Paired per-video differences of `dtfsal eval --csv`.

  python -m dtfsal.paired_eval A.csv B.csv [--metrics cc,nss,auc_j,sim,kld,sauc]

Both files score the same videos (rows matched by name). Prints, per metric, the mean of A - B over
videos with a 95 % t-interval (for KLD lower is better, so a negative difference favours A). The
per-video means are what `dtfsal eval` averages, so the mean difference is the difference of its scores.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from scipy import stats

METRICS = ("cc", "nss", "auc_j", "sim", "kld", "sauc")


def read_rows(path: str | Path) -> dict[str, dict[str, float]]:
    with open(path, newline="") as f:
        return {r["video"]: {k: float(v) if v else float("nan") for k, v in r.items() if k in METRICS} for r in csv.DictReader(f)}


def paired(a: str | Path, b: str | Path, metrics=METRICS) -> dict[str, dict[str, float]]:
    ra, rb = read_rows(a), read_rows(b)
    if set(ra) != set(rb):
        raise ValueError(f"{a} and {b} score different videos: {sorted(set(ra) ^ set(rb))[:5]}")
    out = {}
    for m in metrics:
        d = np.array([ra[v][m] - rb[v][m] for v in sorted(ra)])
        d = d[np.isfinite(d)]
        half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        out[m] = {"mean": float(d.mean()), "ci95": half, "videos": len(d), "a_better": int((d > 0).sum())}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.paired_eval", description=__doc__.split("\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--metrics", default=",".join(METRICS))
    args = p.parse_args(argv)
    r = paired(args.a, args.b, [m for m in args.metrics.split(",") if m])
    for m, s in r.items():
        print(f"{m:6} A - B {s['mean']:+.4f} +- {s['ci95']:.4f} (95 %, {s['videos']} videos; A higher in {s['a_better']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

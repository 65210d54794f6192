"""Golden values for the saliency metrics (``engine/src/metrics``), read by ``engine/tests/metrics.rs``.

    python -m dtfsal.metrics_fixtures [OUT]     # default: engine/tests/data/metrics_ref.json

A numpy port of the MIT saliency benchmark's MATLAB code (``CC.m``, ``NSS.m``, ``similarity.m``,
``KLdiv.m``, ``AUC_Judd.m`` with ``jitter = 0``, ``AUC_shuffled.m`` in its deterministic variant:
all the other-map locations as negatives, one split; ``sauc_random`` is MIT's random-split
original, not stored in the fixture) and of MATLAB ``imresize(.., 'bicubic')``,
run on small deterministic synthetic cases: smooth maps, ties in the prediction, a constant
prediction, an all-zero prediction, a frame with no fixations, a prediction of another size
(resized to the GT's size, then clamped to [0, 1]).

Deliberate choices, mirrored by the Rust code:
- a constant map (max == min) gives NaN for CC and NSS (MATLAB's result there depends on the
  rounding of the mean);
- sAUC thresholds are ``k * 0.1`` for ``k = 0 .. floor(max / 0.1 + 1e-9)``, descending.

Checks run while generating (the script fails if one does not hold):
- the resize port agrees with Pillow's bicubic (same kernel, a = -0.5, same antialiasing) away
  from the borders, where only the edge handling differs (MATLAB mirrors, Pillow renormalises);
- when pysaliency is importable (it is not in the project venv: it needs numpy < 2.4 and pulls
  torch at import, so this script loads its ``metrics.py``/``numba_utils.py`` files directly),
  its CC, MIT_KLDiv (with its eps, 2.2204e-16, rounded from MATLAB's 2^-52 that this port
  and the Rust code use) and AUC-Judd (``general_roc`` on fixated vs unfixated values, judd mode)
  agree with the port on the cases where the conventions coincide (no ties in the fixated
  values; a non-constant prediction). pysaliency's NSS (std with N) and SIM (no min-max
  normalisation) follow other conventions and are not compared. Its values are stored under
  ``pysaliency`` in the fixture when available.

NaN is written as ``null``.
"""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

EPS = np.finfo(np.float64).eps  # MATLAB eps = 2.2204e-16
SAUC_STEP = 0.1


# ---------------------------------------------------------------- MATLAB imresize, bicubic
def _cubic(x):
    a = np.abs(x)
    a2, a3 = a * a, a * a * a
    return (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1) + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((1 < a) & (a <= 2))


def _contributions(in_len, out_len):
    scale = out_len / in_len
    if scale < 1:
        h = lambda x: scale * _cubic(scale * x)  # noqa: E731
        width = 4.0 / scale
    else:
        h = _cubic
        width = 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    p = int(math.ceil(width)) + 2
    ind = left[:, None] + np.arange(p)[None, :]
    w = h(u[:, None] - ind)
    w = w / w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    ind = aux[np.mod(ind.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)
    return w[:, keep], ind[:, keep]


def _resize_axis(a, out_len, axis):
    w, ind = _contributions(a.shape[axis], out_len)
    a = np.moveaxis(a, axis, 0)
    out = np.einsum("ok,ok...->o...", w, a[ind])
    return np.moveaxis(out, 0, axis)


def imresize_bicubic(a, shape):
    """MATLAB ``imresize(a, shape, 'bicubic')`` on a double image (antialiasing on)."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape == tuple(shape):
        return a.copy()
    scale = [shape[0] / a.shape[0], shape[1] / a.shape[1]]
    order = [0, 1] if scale[0] <= scale[1] else [1, 0]
    for d in order:
        a = _resize_axis(a, shape[d], d)
    return a


def prepare_prediction(pred, shape):
    out = imresize_bicubic(pred, shape)
    if out.shape != pred.shape:
        out = np.clip(out, 0.0, 1.0)
    return out


# ---------------------------------------------------------------- MIT metrics
def _constant(m):
    return m.max() == m.min()


def _minmax(m):
    with np.errstate(invalid="ignore", divide="ignore"):
        return (m - m.min()) / (m.max() - m.min())


def cc(pred, gt):
    if _constant(pred) or _constant(gt):
        return math.nan
    a = (pred - pred.mean()) / pred.std(ddof=1)
    b = (gt - gt.mean()) / gt.std(ddof=1)
    a, b = a - a.mean(), b - b.mean()  # corr2
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def nss(pred, fix):
    if not fix.any() or _constant(pred):
        return math.nan
    z = (pred - pred.mean()) / pred.std(ddof=1)
    return float(z[fix > 0].mean())


def sim(pred, gt):
    def norm(m):
        if m.any():
            m = _minmax(m)
            m = m / m.sum()
        return m

    a, b = norm(pred), norm(gt)
    if np.isnan(a).any() or np.isnan(b).any():
        return math.nan
    return float(np.minimum(a, b).sum())


def kld(pred, gt, eps=EPS):
    p = pred / pred.sum() if pred.any() else pred
    q = gt / gt.sum() if gt.any() else gt
    return float((q * np.log(eps + q / (p + eps))).sum())


def _trapz(x, y):
    x, y = np.asarray(x), np.asarray(y)
    return float(((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2).sum())


def auc_judd(pred, fix):
    if not fix.any():
        return math.nan
    s = _minmax(pred).ravel()
    if np.isnan(s).all():
        return math.nan
    f = fix.ravel()
    sth = s[f > 0]
    nfix, npix = len(sth), len(s)
    th = np.sort(sth)[::-1]
    tp = np.zeros(nfix + 2)
    fp = np.zeros(nfix + 2)
    tp[-1] = fp[-1] = 1
    for i in range(nfix):
        above = (s >= th[i]).sum()
        tp[i + 1] = (i + 1) / nfix
        fp[i + 1] = (above - (i + 1)) / (npix - nfix)
    return _trapz(fp, tp)


def sauc(pred, fix, other, step=SAUC_STEP):
    if not fix.any() or not other.any():
        return math.nan
    s = _minmax(pred).ravel()
    if np.isnan(s).all():
        return math.nan
    sth = s[fix.ravel() > 0]
    oth = s[other.ravel() > 0]
    n = int(math.floor(max(sth.max(), oth.max()) / step + 1e-9))
    th = np.arange(n, -1, -1) * step
    tp = [0.0] + [float((sth >= t).sum()) / len(sth) for t in th] + [1.0]
    fp = [0.0] + [float((oth >= t).sum()) / len(oth) for t in th] + [1.0]
    return _trapz(fp, tp)


def sauc_random(pred, fix, other, nsplits=100, step=SAUC_STEP, rng=None):
    """``AUC_shuffled.m`` as MIT wrote it: ``nsplits`` splits, each with ``min(Nfix, Nother)``
    negatives taken from a random permutation of the other map's locations (numpy's RNG stands
    in for MATLAB's ``randperm``), the mean of the split AUCs. Not stored in the fixture (the RNGs
    differ); ``engine/tests/metrics.rs`` compares the Rust variant with it within a tolerance."""
    if not fix.any() or not other.any():
        return math.nan
    s = _minmax(pred).ravel()
    if np.isnan(s).all():
        return math.nan
    rng = np.random.default_rng(0) if rng is None else rng
    sth = s[fix.ravel() > 0]
    ind = np.flatnonzero(other.ravel() > 0)
    k = min(len(sth), len(ind))
    aucs = []
    for _ in range(nsplits):
        cur = s[ind[rng.permutation(len(ind))[:k]]]
        n = int(math.floor(max(sth.max(), cur.max()) / step + 1e-9))
        th = np.arange(n, -1, -1) * step
        tp = [0.0] + [float((sth >= t).sum()) / len(sth) for t in th] + [1.0]
        fp = [0.0] + [float((cur >= t).sum()) / k for t in th] + [1.0]
        aucs.append(_trapz(fp, tp))
    return float(np.mean(aucs))


# ---------------------------------------------------------------- cases
def _gauss(h, w, cy, cx, s):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))


def _fixmap(h, w, pts):
    m = np.zeros((h, w))
    for x, y in pts:
        m[y, x] = 1
    return m


def cases():
    h, w = 9, 12
    gt = _gauss(h, w, 4, 5, 2.0) + 0.5 * _gauss(h, w, 2, 9, 1.5)
    gt = gt / gt.max()
    fix = [(5, 4), (4, 4), (6, 5), (9, 2), (8, 2), (3, 6)]
    other = [(1, 1), (10, 7), (5, 4), (6, 3), (2, 8), (11, 0), (7, 6)]
    smooth = _gauss(h, w, 4.5, 6, 2.5) + 0.3 * _gauss(h, w, 1, 2, 1.0)
    smooth = smooth / smooth.max()
    # Ties: the prediction quantised to 4 levels.
    ties = np.floor(smooth * 4) / 4
    rng = np.random.default_rng(7)
    noise = rng.random((h, w))
    out = [
        dict(name="smooth", pred=smooth, gt=gt, fix=fix, other=other),
        dict(name="perfect", pred=gt.copy(), gt=gt, fix=fix, other=other),
        dict(name="ties", pred=ties, gt=gt, fix=fix, other=other),
        dict(name="noise", pred=noise, gt=gt, fix=fix, other=other),
        dict(name="constant", pred=np.full((h, w), 0.4), gt=gt, fix=fix, other=other),
        dict(name="zeros", pred=np.zeros((h, w)), gt=gt, fix=fix, other=other),
        dict(name="no_fixations", pred=smooth, gt=gt, fix=[], other=other),
        dict(name="no_other", pred=smooth, gt=gt, fix=fix, other=[]),
        dict(name="upsampled", pred=imresize_bicubic(smooth, (5, 7)).clip(0, 1), gt=gt, fix=fix, other=other),
        dict(name="downsampled", pred=_gauss(18, 20, 8, 11, 4.0), gt=gt, fix=fix, other=other),
    ]
    return out


def _num(v):
    return None if (isinstance(v, float) and math.isnan(v)) else float(v)


def _map(m):
    return {"height": int(m.shape[0]), "width": int(m.shape[1]), "data": [float(v) for v in m.ravel()]}


# ---------------------------------------------------------------- cross-checks
def _check_resize_vs_pillow():
    from PIL import Image

    rng = np.random.default_rng(3)
    src = rng.random((20, 24))
    for shape in [(37, 41), (9, 11), (20, 50), (45, 10)]:
        ours = imresize_bicubic(src, shape)
        img = Image.fromarray(src.astype(np.float32), mode="F")
        pil = np.asarray(img.resize((shape[1], shape[0]), Image.BICUBIC), dtype=np.float64)
        # Interior: the taps of MATLAB and Pillow are the same there.
        my = int(math.ceil(2 * max(1.0, shape[0] / src.shape[0]))) + 2
        mx = int(math.ceil(2 * max(1.0, shape[1] / src.shape[1]))) + 2
        d = np.abs(ours - pil)[my:-my, mx:-mx]
        assert d.size and d.max() < 1e-5, (shape, d.max())


def _load_pysaliency():
    spec = importlib.util.find_spec("pysaliency")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    mods = {}
    for name in ("metrics", "numba_utils"):
        s = importlib.util.spec_from_file_location(f"_pysal_{name}", root / f"{name}.py")
        m = importlib.util.module_from_spec(s)
        s.loader.exec_module(m)
        mods[name] = m
    return mods


def _pysaliency_values(ps, pred, gt, fix):
    met, nu = ps["metrics"], ps["numba_utils"]
    out = {"cc": _num(float(met.CC(pred, gt))), "kld": _num(float(met.MIT_KLDiv(pred, gt)))}
    if fix.any() and not _constant(pred):
        s = _minmax(pred)
        pos = s[fix > 0].astype(float)
        neg = s[fix == 0].astype(float)
        out["auc_j"] = _num(float(nu.general_roc_numba(pos, neg, judd=1)[0]))
    return out


def main(argv):
    out_path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "engine/tests/data/metrics_ref.json"
    _check_resize_vs_pillow()
    ps = _load_pysaliency()
    print("pysaliency:", "found, cross-checking" if ps else "not importable, skipped")
    doc = {"generator": "python -m dtfsal.metrics_fixtures", "kld_eps": EPS, "sauc_step": SAUC_STEP, "cases": [], "resize": []}
    for c in cases():
        gt = c["gt"]
        fix = _fixmap(*gt.shape, c["fix"])
        other = _fixmap(*gt.shape, c["other"])
        pred = prepare_prediction(c["pred"], gt.shape)
        exp = {
            "cc": cc(pred, gt), "nss": nss(pred, fix), "auc_j": auc_judd(pred, fix),
            "sim": sim(pred, gt), "kld": kld(pred, gt), "sauc": sauc(pred, fix, other),
        }
        entry = {
            "name": c["name"], "pred": _map(c["pred"]), "gt": _map(gt),
            "fix": [list(p) for p in c["fix"]], "other": [list(p) for p in c["other"]],
            "prepared": _map(pred), "expect": {k: _num(v) for k, v in exp.items()},
        }
        if ps:
            pv = _pysaliency_values(ps, pred, gt, fix)
            entry["pysaliency"] = pv
            ties = len(np.unique(pred[fix > 0])) < int(fix.sum())
            # pysaliency's MIT_KLDiv rounds eps to 2.2204e-16: compare with the same eps (the
            # two differ where the prediction has zeros).
            ref = dict(exp, kld=kld(pred, gt, eps=2.2204e-16))
            for k, v in pv.items():
                # Skipped: AUC-Judd with tied fixated values (MIT counts ties into fp), KLD of an
                # all-zero prediction (pysaliency makes it uniform, MIT keeps the zeros).
                if (k == "auc_j" and ties) or (k == "kld" and not pred.any()):
                    continue
                if not math.isnan(exp[k]):
                    assert v is not None and abs(v - ref[k]) < 1e-9, (c["name"], k, v, ref[k])
        doc["cases"].append(entry)
        print(f"{c['name']:>14}: " + " ".join(f"{k}={v:.6f}" for k, v in exp.items()))
    rng = np.random.default_rng(11)
    for src_shape, dst in [((6, 8), (13, 17)), ((13, 17), (6, 8)), ((7, 9), (7, 20)), ((10, 4), (3, 9)), ((5, 5), (5, 5))]:
        src = rng.random(src_shape)
        doc["resize"].append({"src": _map(src), "out": _map(imresize_bicubic(src, dst))})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv)

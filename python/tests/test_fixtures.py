"""The committed tiny parity case is reproducible and exercises every op non-trivially."""

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from dtfsal.config import DTFSalConfig
from dtfsal.fixtures import make_case
from dtfsal.weights import load_model, read_weights


@pytest.fixture(scope="module")
def committed(repo):
    w = repo / "tests" / "data" / "tiny-av.weights.safetensors"
    c = repo / "tests" / "data" / "tiny-av.case.safetensors"
    with safe_open(str(c), framework="pt") as f:
        meta = f.metadata()
    return w, load_file(str(c)), meta


def test_committed_case_is_small(repo):
    d = repo / "tests" / "data"
    size = sum((d / f"tiny-av.{k}.safetensors").stat().st_size for k in ("weights", "case"))
    assert size < 20e6


def test_regenerating_gives_the_committed_case(committed):
    _, case, meta = committed
    cfg = DTFSalConfig.from_json(meta["config"])
    _, fresh = make_case(cfg, int(meta["seed"]))
    assert sorted(fresh) == sorted(case)
    for k in case:
        torch.testing.assert_close(fresh[k], case[k], rtol=1e-5, atol=1e-6, msg=k)


def test_committed_weights_reproduce_the_output(committed):
    w, case, _ = committed
    model = load_model(w)
    with torch.no_grad():
        sal = model(case["input/video"], case["input/audio"])
    # f32 forward vs the float64 reference
    torch.testing.assert_close(sal, case["output/sal"], rtol=1e-4, atol=2e-5)
    assert float(case["output/sal"].std()) > 0.01  # a map, not a constant


def test_every_affine_and_statistic_is_randomised(committed):
    w, case, _ = committed
    _, t, _ = read_weights(w)
    for k, v in t.items():
        if k.endswith(("norm1.weight", "running_var", "adapt_post.0.weight")):
            assert not torch.allclose(v, torch.ones_like(v)), k
        if k.endswith(("running_mean", ".bias")):
            assert v.abs().max() > 0, k


def test_deformable_offsets_are_nonzero_and_fractional(committed):
    w, case, _ = committed
    model = load_model(w)
    seen = {}
    hooks = [m.deform.offset.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, o)) for n, m in enumerate(model.amfb)]
    with torch.no_grad():
        model(case["input/video"], case["input/audio"])
    for h in hooks:
        h.remove()
    for n, off in seen.items():
        assert 0.3 < float(off.std()) < 3.0, n
        frac = (off - off.round()).abs()
        assert float(frac.mean()) > 0.1, n

"""The model's weights and shapes follow the spec exactly."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from dtfsal.config import full, tiny
from dtfsal.model import DTFSal


def read_tsv(path):
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line.strip()]
    return {name: (shape, dtype) for name, shape, dtype in rows}


def test_full_av_state_dict_equals_spec_weight_list(repo):
    spec = read_tsv(repo / "spec" / "weights-dtfsal-av.tsv")
    with torch.device("meta"):
        sd = DTFSal(full("av")).state_dict()
    mine = {k: (str(list(v.shape)), str(v.dtype).removeprefix("torch.")) for k, v in sd.items()}
    assert [k for k in spec if k not in mine] == []
    assert [k for k in mine if k not in spec] == []
    assert {k: v for k, v in mine.items() if spec[k] != v} == {}
    assert list(mine) == list(spec)  # same order too


def test_repo_copy_of_weight_list_matches_shared(repo):
    shared = repo.parent / "shared" / "spec" / "weights-dtfsal-av.tsv"
    if shared.is_file():
        assert shared.read_text() == (repo / "spec" / "weights-dtfsal-av.tsv").read_text()


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts():
    with torch.device("meta"):
        assert n_params(DTFSal(full("av"))) == 52_750_518
        assert n_params(DTFSal(full("v"))) == 40_584_537
        m = DTFSal(full("av"))
    assert n_params(m.audio.vggish) == 4_499_712
    assert n_params(m.audio.te) == 793_353
    assert n_params(m.amfb[0]) == 1_718_229
    assert n_params(m.enhance[0]) == 745_349
    assert n_params(m.enhance[3]) == 825_221
    assert all(not p.requires_grad for p in m.audio.vggish.parameters())


def test_variant_v_has_no_audio_and_no_amfb():
    with torch.device("meta"):
        keys = DTFSal(full("v")).state_dict().keys()
    assert not any(k.startswith(("audio.", "amfb.")) for k in keys)


def test_tiny_budget_and_shapes():
    cfg = tiny("av")
    model = DTFSal(cfg).eval()
    video = torch.randn(1, 3, 32, cfg.height, cfg.width)
    audio = torch.randn(1, 9, 1, 112, 192)
    trace = {}
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        sal = model(video, audio, trace=trace)
    gmacs = fc.get_total_flops() / 2e9
    assert gmacs <= 5.0, gmacs
    assert sal.shape == (1, cfg.height, cfg.width)
    assert 0.0 < float(sal.min()) and float(sal.max()) < 1.0
    dims = cfg.stage_dims
    for i, (h, w) in enumerate(cfg.level_sizes):
        assert trace[f"encoder/f{i + 1}"].shape == (1, dims[i], 16, h, w)
        assert trace[f"neck/f{i + 1}"].shape == (1, cfg.neck_dim, 8, h, w)
        assert trace[f"amfb/f{i + 1}"].shape == (1, cfg.neck_dim, 8, h, w)
        assert trace[f"decoder/s{i + 1}"].shape == (1, 1, 1, cfg.height, cfg.width)
    assert trace["audio/te"].shape == (1, cfg.audio_dim, 9, 7, 12)


def test_full_forward_shapes_follow_spec_tables():
    """Spec 3 and 4: F1E..F4E and F1R..F4R of the 32x224x384 model (one real forward, ~15 s)."""
    model = DTFSal(full("av")).eval()
    trace = {}
    with torch.no_grad():
        sal = model(torch.randn(1, 3, 32, 224, 384), torch.randn(1, 9, 1, 112, 192), trace=trace)
    assert sal.shape == (1, 224, 384)
    assert trace["encoder/f1"].shape == (1, 96, 16, 56, 96)
    assert trace["encoder/f2"].shape == (1, 192, 16, 28, 48)
    assert trace["encoder/f3"].shape == (1, 384, 16, 14, 24)
    assert trace["encoder/f4"].shape == (1, 768, 16, 7, 12)
    for name, hw in zip(("f1", "f2", "f3", "f4"), ((56, 96), (28, 48), (14, 24), (7, 12))):
        assert trace[f"neck/{name}"].shape == (1, 192, 8, *hw)
    assert trace["audio/vggish"].shape == (1, 512, 9, 7, 12)
    assert torch.isfinite(sal).all()

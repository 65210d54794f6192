"""The converter turns torchvision / torchvggish / DTFSal state dicts into project weight files."""

import importlib.util
from pathlib import Path

import pytest
import torch
import torchvision

from dtfsal.config import full, tiny
from dtfsal.convert import main as convert_main
from dtfsal.model import DTFSal
from dtfsal.weights import read_weights


def test_torchvision_mvit_v2_s_converts_and_loads(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.video.mvit_v2_s()  # random init: the K400 weights are never downloaded
    src = tmp_path / "mvit.pth"
    torch.save(tv.state_dict(), src)
    out = tmp_path / "mvit.safetensors"
    assert convert_main(["mvit", str(src), "--config", "full", "--out", str(out)]) == 0
    cfg, t, part = read_weights(out)
    assert part == "mvit" and cfg.name == "full"
    assert all(k.startswith("encoder.mvit.") for k in t) and not any(".head." in k for k in t)
    assert torch.equal(t["encoder.mvit.blocks.14.attn.rel_pos_h"], tv.blocks[14].attn.rel_pos_h.detach())
    # loading into DTFSal reproduces torchvision's trunk on its own input grid
    model = DTFSal(full("v")).eval()
    model.load_state_dict(t, strict=False)
    x = torch.randn(1, 3, 16, 224, 224)
    with torch.no_grad():
        ours = model.encoder.mvit.conv_proj(x).flatten(2).transpose(1, 2)
        ours = model.encoder.mvit.pos_encoding(ours)
        theirs = tv.pos_encoding(tv.conv_proj(x).flatten(2).transpose(1, 2))
    assert torch.equal(ours, theirs)


def _torchvggish_module():
    """torchvggish's model file, imported alone: its package __init__ pulls resampy/soundfile."""
    spec = importlib.util.find_spec("torchvggish")
    if spec is None:
        pytest.skip("torchvggish not installed")
    path = Path(spec.submodule_search_locations[0]) / "torchvggish.py"
    mod_spec = importlib.util.spec_from_file_location("torchvggish_model", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def test_torchvggish_converts_and_matches_features(tmp_path):
    tvg = _torchvggish_module()
    torch.manual_seed(0)
    vgg = tvg._vgg(postprocess=False).eval()  # random init; AudioSet weights are never downloaded
    src = tmp_path / "vggish.pth"
    torch.save(vgg.state_dict(), src)
    out = tmp_path / "vggish.safetensors"
    assert convert_main(["vggish", str(src), "--config", "full", "--out", str(out)]) == 0
    _, t, part = read_weights(out)
    assert part == "vggish" and len(t) == 12
    model = DTFSal(full("av")).eval()
    model.load_state_dict(t, strict=False)
    x = torch.randn(2, 1, 112, 192)
    with torch.no_grad():
        assert torch.equal(model.audio.vggish.features(x), vgg.features(x))


def test_dtfsal_checkpoint_converts(tmp_path):
    torch.manual_seed(1)
    model = DTFSal(tiny("av")).eval()
    src = tmp_path / "ckpt.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, src)
    out = tmp_path / "w.safetensors"
    assert convert_main(["dtfsal", str(src), "--config", "tiny", "--variant", "av", "--out", str(out)]) == 0
    _, t, _ = read_weights(out)
    assert torch.equal(t["encoder.mvit.conv_proj.weight"], model.encoder.mvit.conv_proj.weight.detach())


def test_full_checkpoint_with_spec_keys_converts(tmp_path):
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in DTFSal(full("av")).state_dict().items()}
    sd = {k: torch.zeros(s, dtype=torch.int64 if k.endswith("num_batches_tracked") else torch.float32) for k, s in shapes.items()}
    src = tmp_path / "full.pt"
    torch.save(sd, src)
    out = tmp_path / "full.safetensors"
    assert convert_main(["dtfsal", str(src), "--config", "full", "--variant", "av", "--dtype", "f16", "--out", str(out)]) == 0
    assert out.stat().st_size < 110e6  # 52.75 M params in f16


def test_wrong_checkpoint_fails_naming_the_tensor(tmp_path, capsys):
    model = DTFSal(tiny("v"))
    sd = model.state_dict()
    sd.pop("fe.refine.1.weight")
    src = tmp_path / "ckpt.pt"
    torch.save(sd, src)
    rc = convert_main(["dtfsal", str(src), "--config", "tiny", "--variant", "v", "--out", str(tmp_path / "o.safetensors")])
    assert rc == 2
    assert "missing tensor 'fe.refine.1.weight'" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert convert_main(["mvit", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "j.safetensors")]) == 2

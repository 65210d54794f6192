"""The project weight file: round trips, f16 storage, and errors that name the tensor."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from dtfsal.config import tiny
from dtfsal.model import DTFSal
from dtfsal.weights import WeightFileError, load_model, read_weights, save_weights


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DTFSal(tiny("av")).eval()


def test_round_trip_f32_gives_identical_outputs(model, tmp_path):
    p = tmp_path / "w.safetensors"
    save_weights(model.state_dict(), model.cfg, p)
    loaded = load_model(p)
    assert loaded.cfg == model.cfg
    v, a = torch.randn(1, 3, 32, 96, 160), torch.randn(1, 9, 1, 112, 192)
    with torch.no_grad():
        assert torch.equal(loaded(v, a), model(v, a))


def test_f16_storage_halves_size_and_rounds(model, tmp_path):
    p32, p16 = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_weights(model.state_dict(), model.cfg, p32)
    save_weights(model.state_dict(), model.cfg, p16, dtype="f16")
    assert p16.stat().st_size < 0.55 * p32.stat().st_size
    _, t, _ = read_weights(p16)
    w = model.state_dict()["fuse.weight"]
    assert torch.equal(t["fuse.weight"], w.half().float())
    assert "amfb.0.local.1.num_batches_tracked" not in load_file(str(p16))


def test_metadata_carries_config(model, tmp_path):
    p = tmp_path / "w.safetensors"
    save_weights(model.state_dict(), model.cfg, p)
    from safetensors import safe_open

    with safe_open(str(p), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "dtfsal-weights" and meta["part"] == "model"
    assert json.loads(meta["config"])["name"] == "tiny"


def _rewrite(src, dst, edit):
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    t = load_file(str(src))
    edit(t, meta)
    save_file(t, str(dst), metadata=meta)


def test_missing_tensor_is_named(model, tmp_path):
    p = tmp_path / "w.safetensors"
    save_weights(model.state_dict(), model.cfg, p)
    _rewrite(p, tmp_path / "m.safetensors", lambda t, m: t.pop("amfb.2.score.weight"))
    with pytest.raises(WeightFileError, match=r"missing tensor 'amfb.2.score.weight'"):
        read_weights(tmp_path / "m.safetensors")


def test_unexpected_and_misshaped_tensors_are_named(model, tmp_path):
    p = tmp_path / "w.safetensors"
    save_weights(model.state_dict(), model.cfg, p)

    def edit(t, m):
        t["extra.weight"] = torch.zeros(2)
        t["fuse.weight"] = torch.zeros(1, 4, 3, 3)

    _rewrite(p, tmp_path / "x.safetensors", edit)
    with pytest.raises(WeightFileError) as e:
        read_weights(tmp_path / "x.safetensors")
    assert "unexpected tensor 'extra.weight'" in str(e.value)
    assert "tensor 'fuse.weight': expected shape [1, 4, 1, 3, 3], found [1, 4, 3, 3]" in str(e.value)


def test_saving_a_wrong_state_dict_is_refused(model, tmp_path):
    sd = dict(model.state_dict())
    sd.pop("decoders.1.9.weight")
    with pytest.raises(WeightFileError, match="decoders.1.9.weight"):
        save_weights(sd, model.cfg, tmp_path / "w.safetensors")


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WeightFileError, match="not a readable safetensors file"):
        read_weights(bad)
    with pytest.raises(WeightFileError, match="no such weight file"):
        read_weights(tmp_path / "absent.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"a": torch.zeros(1)}, str(foreign))
    with pytest.raises(WeightFileError, match="metadata 'format'"):
        read_weights(foreign)


def test_truncated_file_is_an_error(model, tmp_path):
    p = tmp_path / "w.safetensors"
    save_weights(model.state_dict(), model.cfg, p)
    data = p.read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match="not a readable safetensors file"):
        read_weights(tmp_path / "t.safetensors")

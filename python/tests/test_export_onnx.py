"""ONNX export (`python -m dtfsal.export_onnx`): exact op replacements, tiny AV and V through ONNX Runtime."""

import json

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from safetensors.torch import load_file  # noqa: E402
from torchvision.ops import deform_conv2d  # noqa: E402

from dtfsal import export_onnx  # noqa: E402
from dtfsal.config import get_config  # noqa: E402
from dtfsal.model import DTFSal  # noqa: E402
from dtfsal.weights import load_model  # noqa: E402


@pytest.mark.parametrize("hw", [(1, 4), (3, 5), (7, 12), (24, 40)])
def test_deform_conv_decomposition_equals_torchvision(hw):
    g = torch.Generator().manual_seed(sum(hw))
    h, w = hw
    x = torch.randn(2, 6, h, w, generator=g, dtype=torch.float64)
    off = 2.5 * torch.randn(2, 18, h, w, generator=g, dtype=torch.float64)
    off[0, 0, 0, 0], off[0, 1, 0, 0] = -1.0, 0.5  # a tap exactly on the zero border
    wt = torch.randn(5, 6, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    ref = deform_conv2d(x, off, wt, b, padding=(1, 1))
    got = export_onnx.deform_conv2d_sampled(x, off, wt, b, padding=(1, 1))
    assert (got - ref).abs().max().item() < 1e-12


def test_export_ops_keep_every_intermediate():
    """Within export_ops (deform decomposition, MViT attention without in-place updates) every traced
    tensor equals the eager model's, in float64, with non-zero relative-position tables."""
    torch.manual_seed(0)
    model = DTFSal(get_config("tiny", "av")).eval().double()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "rel_pos" in n:
                p.normal_(0, 0.5)
            if n.endswith("deform.offset.weight"):
                p.normal_(0, 0.1)
    x = {k: v.double() for k, v in export_onnx.example_inputs(model.cfg).items()}
    ref, got = {}, {}
    with torch.no_grad():
        model(*x.values(), trace=ref)
        with export_onnx.export_ops():
            model(*x.values(), trace=got)
    assert ref.keys() == got.keys()
    worst = max((ref[k] - got[k]).abs().max().item() for k in ref)
    assert worst < 1e-10, worst
    # and the patch is undone
    from torchvision.models.video import mvit

    assert mvit.MultiscaleAttention.forward is not export_onnx._mvit_attention_forward


@pytest.fixture(scope="module")
def tiny_av_onnx(repo, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny-av.onnx"
    rc = export_onnx.main(
        ["--weights", str(repo / "tests/data/tiny-av.weights.safetensors"), "--out", str(path)]
    )
    assert rc == 0
    return path


def test_tiny_av_onnx_runtime_equals_pytorch(repo, tiny_av_onnx):
    import onnx

    case = load_file(str(repo / "tests/data/tiny-av.case.safetensors"))
    inputs = {"video": case["input/video"], "audio": case["input/audio"]}
    model = load_model(repo / "tests/data/tiny-av.weights.safetensors")
    with torch.inference_mode():
        ref = model(*inputs.values())
    got = export_onnx.run_ort(tiny_av_onnx, inputs)
    assert got.shape == (1, 96, 160)
    assert (got - ref).abs().max().item() < 1e-4
    assert (got - case["output/sal"].float()).abs().max().item() < 1e-4  # the float64 reference

    m = onnx.load(str(tiny_av_onnx))
    onnx.checker.check_model(m)
    assert any(o.domain in ("", "ai.onnx") and o.version >= 18 for o in m.opset_import)
    assert [i.name for i in m.graph.input] == ["video", "audio"]
    assert [o.name for o in m.graph.output] == ["sal"]
    meta = export_onnx.read_metadata(tiny_av_onnx)
    assert meta["dtfsal_format"] == "dtfsal-onnx"
    assert json.loads(meta["dtfsal_config"]) == model.cfg.to_dict()
    # every op is a standard ONNX op (no custom domains: ONNX Runtime and TensorRT both run them)
    assert {n.domain for n in m.graph.node} <= {""}
    assert "ScatterND" not in {n.op_type for n in m.graph.node}


def test_tiny_v_onnx_runtime_equals_pytorch(tmp_path):
    torch.manual_seed(3)
    model = DTFSal(get_config("tiny", "v")).eval()
    path = tmp_path / "tiny-v.onnx"
    export_onnx.export(model, path)
    inputs = export_onnx.example_inputs(model.cfg, seed=5)
    assert list(inputs) == ["video"]
    with torch.inference_mode():
        ref = model(*inputs.values())
    got = export_onnx.run_ort(path, inputs)
    assert (got - ref).abs().max().item() < 1e-4
    assert json.loads(export_onnx.read_metadata(path)["dtfsal_config"])["variant"] == "v"


def test_export_rejects_old_opset(tmp_path):
    model = DTFSal(get_config("tiny", "v")).eval()
    with pytest.raises(ValueError, match="opset"):
        export_onnx.export(model, tmp_path / "x.onnx", opset=17)

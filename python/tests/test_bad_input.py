"""Wrong shapes raise errors that name the tensor."""

import pytest
import torch

from dtfsal.config import DTFSalConfig, tiny
from dtfsal.model import DTFSal


@pytest.fixture(scope="module")
def model():
    return DTFSal(tiny("av")).eval()


def test_wrong_video_shape_names_input_video(model):
    with pytest.raises(ValueError, match="input/video"):
        model(torch.zeros(1, 3, 16, 96, 160), torch.zeros(1, 9, 1, 112, 192))


def test_missing_audio_names_input_audio(model):
    with pytest.raises(ValueError, match="input/audio"):
        model(torch.zeros(1, 3, 32, 96, 160), None)


def test_wrong_audio_shape_names_input_audio(model):
    with pytest.raises(ValueError, match="input/audio"):
        model(torch.zeros(1, 3, 32, 96, 160), torch.zeros(1, 8, 1, 112, 192))


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="multiples of 32"):
        DTFSalConfig(height=100)
    with pytest.raises(ValueError, match="variant"):
        DTFSalConfig(variant="x")


def test_config_json_round_trip():
    cfg = tiny("v")
    assert DTFSalConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown DTFSal config fields"):
        DTFSalConfig.from_dict({**cfg.to_dict(), "bogus": 1})

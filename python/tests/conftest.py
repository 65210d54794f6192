import sys
from pathlib import Path

import pytest
import torch

PY_ROOT = Path(__file__).resolve().parents[1]
REPO = PY_ROOT.parent
sys.path.insert(0, str(PY_ROOT))

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO

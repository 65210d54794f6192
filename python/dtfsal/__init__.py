"""dtfsal: the PyTorch definition of DTFSal (training, export, parity reference for the Rust engine)."""

from .config import DTFSalConfig, full, get_config, tiny  # noqa: F401

__version__ = "0.1.0"

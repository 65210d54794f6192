"""DTFSal modules, one file per concept (spec sections in brackets)."""
from .dtfsal import DTFSal  # noqa: F401

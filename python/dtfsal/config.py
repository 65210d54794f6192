"""Model configuration: the `full` (paper) and `tiny` (real-time CPU demo) DTFSal configs.

The config travels inside every weight file (safetensors metadata, key ``config``), so the Rust engine
and this package always agree on shapes. Field names are part of the weight-file format: keep them stable.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

# STAViS audio-visual loader normalisation, on 0..255 values (spec 2.1).
STAVIS_MEAN = (114.7748, 107.7354, 99.475)
STAVIS_STD = (38.7568578, 37.88248729, 40.02898126)


@dataclass(frozen=True)
class DTFSalConfig:
    name: str = "full"
    variant: str = "av"  # "av" (audio-visual) | "v" (visual only: no audio branch, no AMFB)
    # video clip [3, clip_len, height, width]
    clip_len: int = 32
    height: int = 224
    width: int = 384
    # MViTv2 encoder (torchvision block semantics); stage s has width embed_dim * 2**s
    embed_dim: int = 96
    stage_depths: tuple[int, ...] = (1, 2, 11, 2)
    stage_heads: tuple[int, ...] = (1, 2, 4, 8)
    # the (H, W) / T the MViT was built for: sizes its rel-pos tables (Kinetics: 224x224, 16 frames)
    mvit_spatial_size: tuple[int, int] = (224, 224)
    mvit_temporal_size: int = 16
    stage_norm_eps: float = 1e-6
    # neck, LTEB/DLTFB, AMFB, decoders
    neck_dim: int = 192
    token_count: int = 5
    token_size: tuple[int, int] = (7, 12)
    decoder_dims: tuple[int, int, int] = (96, 48, 24)
    # audio input [audio_slices, 1, audio_height, audio_width] and branch
    audio_slices: int = 9
    audio_height: int = 112
    audio_width: int = 192
    vggish_channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512)
    te_heads: int = 2
    te_dim_head: int = 64
    te_mlp_dim: int = 256
    te_use_patch_embed: bool = True
    amfb_audio_mode: str = "add"  # "add" | "concat"
    # input normalisation (on 0..255) and which clip frame the map labels (0-based)
    video_mean: tuple[float, float, float] = STAVIS_MEAN
    video_std: tuple[float, float, float] = STAVIS_STD
    label_frame: int = 16
    # training only (no weights)
    drop_path: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        problems = []
        if self.variant not in ("av", "v"):
            problems.append(f"variant must be 'av' or 'v', got {self.variant!r}")
        if self.clip_len != 32:
            problems.append(f"clip_len must be 32 (decoder temporal strides 16->8->4->2->1), got {self.clip_len}")
        if self.height % 32 or self.width % 32:
            problems.append(f"height and width must be multiples of 32, got {self.height}x{self.width}")
        if len(self.stage_depths) != 4 or len(self.stage_heads) != 4:
            problems.append("stage_depths and stage_heads need 4 entries")
        if len(self.vggish_channels) != 6:
            problems.append("vggish_channels needs 6 entries")
        if self.amfb_audio_mode not in ("add", "concat"):
            problems.append(f"amfb_audio_mode must be 'add' or 'concat', got {self.amfb_audio_mode!r}")
        if problems:
            raise ValueError("invalid DTFSal config: " + "; ".join(problems))

    # derived -----------------------------------------------------------------------------------
    @property
    def stage_dims(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2**s for s in range(4))

    @property
    def tap_blocks(self) -> tuple[int, ...]:
        """Indices of the last block of each stage (0, 2, 13, 15 for full)."""
        out, acc = [], 0
        for d in self.stage_depths:
            acc += d
            out.append(acc - 1)
        return tuple(out)

    @property
    def level_sizes(self) -> tuple[tuple[int, int], ...]:
        """Spatial grid (h, w) of the four feature levels (strides 4, 8, 16, 32)."""
        return tuple((self.height // s, self.width // s) for s in (4, 8, 16, 32))

    @property
    def audio_dim(self) -> int:
        return self.vggish_channels[-1]

    # serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("drop_path")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "DTFSalConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown DTFSal config fields: {sorted(unknown)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)

    @classmethod
    def from_json(cls, s: str) -> "DTFSalConfig":
        return cls.from_dict(json.loads(s))

    def with_variant(self, variant: str) -> "DTFSalConfig":
        return dataclasses.replace(self, variant=variant)


def full(variant: str = "av") -> DTFSalConfig:
    """The paper's model: 32x224x384 clips, MViTv2-S, 192-wide neck."""
    return DTFSalConfig(name="full", variant=variant)


def tiny(variant: str = "av") -> DTFSalConfig:
    """Same architecture, narrower and shallower at 96x160: the real-time CPU demo model."""
    return DTFSalConfig(
        name="tiny",
        variant=variant,
        height=96,
        width=160,
        embed_dim=24,
        stage_depths=(1, 1, 2, 1),
        stage_heads=(1, 1, 2, 4),
        # mirrors full: the h table is built for the input, w and t tables are resized at run time
        mvit_spatial_size=(96, 96),
        mvit_temporal_size=16,
        neck_dim=32,
        token_size=(3, 5),
        decoder_dims=(16, 8, 4),
        vggish_channels=(8, 16, 32, 32, 64, 64),
        te_heads=2,
        te_dim_head=16,
        te_mlp_dim=64,
    )


CONFIGS = {"full": full, "tiny": tiny}


def get_config(name: str, variant: str = "av") -> DTFSalConfig:
    try:
        return CONFIGS[name](variant)
    except KeyError:
        raise ValueError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}") from None

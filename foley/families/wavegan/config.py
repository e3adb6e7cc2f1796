"""A WaveGAN folder's configuration (``foley.json``), readable without torch (the onnx backend needs none)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ...errors import ModelError

WEIGHTS = "generator.safetensors"
KERNEL, STRIDE = 25, 4  # WaveGAN's filter length and up/down-sampling factor


@dataclass
class WaveGANConfig:
    """The networks' shapes (the ``net`` entry of ``foley.json``)."""

    sample_rate: int = 16000
    latent_dim: int = 100
    cond_dim: int = 384          # the text vector (MiniLM's pooled sentence embedding)
    cond_proj: int = 128         # its projection, fed to the dense layer and the FiLM layers
    width: int = 16              # WaveGAN's model size d: channels 16d, 8d, ..., d, 1 (the paper: d = 64)
    layers: int = 5              # transposed convolutions; samples = base_length * 4**layers
    base_length: int = 16
    disc_width: int = 16
    phase_shuffle: int = 2       # discriminator: shift by -n..n samples after each layer but the last

    @property
    def samples(self) -> int:
        return self.base_length * STRIDE ** self.layers

    def channels(self, width: int) -> list[int]:
        return [width * 2 ** (self.layers - 1 - i) for i in range(self.layers)]

    @classmethod
    def from_dict(cls, d: dict) -> WaveGANConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelError(f"WaveGAN config: unknown keys {', '.join(unknown)}")
        return cls(**d)


@dataclass
class FolderConfig:
    """``foley.json`` of a WaveGAN folder."""

    net: WaveGANConfig
    max_duration: float = 1.0
    text_encoder: str = "all-MiniLM-L6-v2"
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        from ...formats import FORMATS

        return {"family": "wavegan", "format": FORMATS["wavegan"], "sample_rate": self.net.sample_rate,
                "channels": 1, "max_duration": self.max_duration, "text_encoder": self.text_encoder,
                "net": asdict(self.net), "extra": self.extra}

    @classmethod
    def read(cls, folder: str | Path) -> FolderConfig:
        from ...formats import check_format
        from ...generator import read_foley_json

        d = read_foley_json(folder)
        check_format(Path(folder) / "foley.json", "wavegan", d)
        try:
            net = WaveGANConfig.from_dict(d["net"])
            return cls(net=net, max_duration=float(d.get("max_duration", 1.0)),
                       text_encoder=str(d.get("text_encoder", "all-MiniLM-L6-v2")), extra=dict(d.get("extra") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{folder}/foley.json: not a WaveGAN config ({type(e).__name__}: {e})") from None

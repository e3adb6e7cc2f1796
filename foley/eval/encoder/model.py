"""The foley audio encoder: a small CNN over 16 kHz mono log-mel with an embedding and class heads.

Input: log-mel ``[B, n_mels, T]`` (:func:`foley.features.log_mel` with the config's :class:`MelConfig`).
Layers: a per-mel-bin BatchNorm, then one 3x3 conv + BatchNorm + ReLU per entry of ``channels``, with
2x2 average pooling after every block but the last (so ``T`` shrinks by ``2 ** (len(channels) - 1)``);
mean over frequency, then mean and max over time, concatenated ``[B, 2 C]`` -> Linear -> GELU =
the embedding ``[B, embed_dim]``; dropout; a Linear head per label set (``main`` and each auxiliary head).

On disk (a plain, diffusers-like folder): ``config.json`` (format, version, architecture, MelConfig,
labels) and ``model.safetensors``, whose metadata embeds the same config, so the sha256 of the weights
file alone identifies weights, labels and mel settings. Loading is strict: any key or shape mismatch, or
a config.json that disagrees with the weights file, raises :class:`~foley.errors.ModelError` naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ...errors import ModelError
from ...features import MelConfig
from ...formats import FORMATS, check_format
from ...fsutil import atomic_path, write_json_atomic
from ...weights import file_sha256, read_strict

FORMAT = "foley-encoder"
MODEL_TYPE = "foley_encoder"  # config.json's model_type for transformers' AutoConfig/AutoModel (foley.hf)
VERSION = FORMATS["encoder"]
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class EncoderConfig:
    """Architecture, mel settings and label lists of a :class:`FoleyEncoder` (its ``config.json``)."""

    labels: list[str]
    aux: dict[str, list[str]] = field(default_factory=dict)
    mel: MelConfig = field(default_factory=MelConfig)
    channels: list[int] = field(default_factory=lambda: [16, 64, 128, 256, 256])
    embed_dim: int = 128
    dropout: float = 0.2
    info: dict = field(default_factory=dict)  # training provenance (data, steps, held-out accuracy)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mel"] = self.mel.to_dict()
        return {"format": FORMAT, "version": VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict, what: str = "config") -> EncoderConfig:
        if d.get("format") != FORMAT:
            raise ModelError(f"{what}: not a {FORMAT} config (format={d.get('format')!r})")
        check_format(what, "encoder", d, key="version")
        try:
            return cls(labels=list(d["labels"]), aux={k: list(v) for k, v in d.get("aux", {}).items()},
                       mel=MelConfig.from_dict(d.get("mel", {})), channels=[int(c) for c in d["channels"]],
                       embed_dim=int(d["embed_dim"]), dropout=float(d.get("dropout", 0.0)),
                       info=dict(d.get("info", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{what}: invalid {FORMAT} config ({type(e).__name__}: {e})") from None

    @property
    def downsample(self) -> int:
        """Time (and frequency) reduction of the conv stack: the minimum number of input frames."""
        return 2 ** (len(self.channels) - 1)


class FoleyEncoder(nn.Module):
    """``forward(mel [B, n_mels, T]) -> {"embedding": [B, D], "main": logits [B, K], <aux>: [B, K_h]}``.

    ``T`` must be at least ``config.downsample`` frames (:meth:`pad_frames` pads with silence).
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.norm = nn.BatchNorm1d(config.mel.n_mels)
        blocks, cin = [], 1
        for i, c in enumerate(config.channels):
            layers = [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if i < len(config.channels) - 1:
                layers.append(nn.AvgPool2d(2))
            blocks.append(nn.Sequential(*layers))
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.embed = nn.Linear(2 * cin, config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({"main": nn.Linear(config.embed_dim, len(config.labels))})
        for name, labels in config.aux.items():
            self.heads[name] = nn.Linear(config.embed_dim, len(labels))

    def pad_frames(self, mel: torch.Tensor) -> torch.Tensor:
        """Pad ``[B, n_mels, T]`` at the end with silence (log floor) up to ``config.downsample`` frames."""
        short = self.config.downsample - mel.shape[-1]
        if short <= 0:
            return mel
        floor = float(torch.log(torch.tensor(self.config.mel.log_floor)))
        return nn.functional.pad(mel, (0, short), value=floor)

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, embed_dim]`` of log-mel ``[B, n_mels, T]``."""
        x = self.norm(self.pad_frames(mel))[:, None]          # [B, 1, F, T]
        x = self.blocks(x).mean(dim=2)                        # [B, C, T']
        pooled = torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)
        return nn.functional.gelu(self.embed(pooled))

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        emb = self.features(mel)
        h = self.dropout(emb)
        return {"embedding": emb, **{name: head(h) for name, head in self.heads.items()}}


def save_encoder(model: FoleyEncoder, folder: str | os.PathLike) -> str:
    """Write ``config.json`` and ``model.safetensors`` (float32, config in its metadata) atomically.

    Returns the sha256 of the weights file.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    cfg = model.config.to_dict()
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"config": json.dumps(cfg, sort_keys=True)})
    write_json_atomic(folder / CONFIG_FILE, {"model_type": MODEL_TYPE, **cfg})  # model_type: transformers' AutoModel
    return file_sha256(folder / WEIGHTS_FILE)


def load_encoder(folder: str | os.PathLike) -> tuple[FoleyEncoder, str]:
    """Load an encoder folder strictly -> (model in eval mode, sha256 of ``model.safetensors``).

    Raises ModelError (one line) for a missing file, a bad config, a config.json that differs from the
    config embedded in the weights, or any missing, unexpected or reshaped key (named).
    """
    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise ModelError(f"{p}: foley-encoder file not found; train one with `python -m "
                             f"foley.eval.encoder.train` or point FOLEY_ENCODER at an encoder folder")
    try:
        cfg_json = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{cfg_path}: not valid JSON ({e})") from None
    config = EncoderConfig.from_dict(cfg_json, str(cfg_path))
    model = FoleyEncoder(config)
    state = read_strict(w_path, cfg_path, config.to_dict(), model.state_dict())
    model.load_state_dict(state, strict=True)
    return model.eval(), file_sha256(w_path)

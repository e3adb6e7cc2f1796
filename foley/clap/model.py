"""foley-clap: a contrastive audio-text model trained here (CLAP; seed 002's AudioLDM conditions on one).

Audio tower: per-bin BatchNorm over two log-mel planes of 16 kHz audio — the mid (L+R)/2 and the left-right
log level difference, so "from left to right" is visible — then the foley-encoder's conv stack (its weights
initialise the mid plane), mean over frequency, a small transformer over time with learned positions (so
"rising" is told from "falling", "fading out" from "in"), mean ‖ max pooling and a linear map to the shared
space. Text tower: the frozen all-MiniLM-L6-v2 sentence vector through a two-layer MLP. Both outputs are
L2-normalised; the score of a pair is their cosine.

A clip longer than ``window_seconds`` is embedded per window (hop = window, at most ``max_windows``) and the
normalised mean is the clip's embedding; shorter clips are embedded whole (silence-padded to the conv stack's
minimum).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio import Audio
from ..errors import ModelError
from ..features import MelConfig, log_mel_np
from ..fsutil import atomic_path, write_json_atomic
from ..weights import file_sha256, read_strict

WEIGHTS_FILE, CONFIG_FILE, MODEL_TYPE = "model.safetensors", "config.json", "foley_clap"
SIDE_LIMIT = 5.0  # |log level difference| is clipped here (natural log: about 43 dB)


@dataclass
class ClapConfig:
    mel: MelConfig = field(default_factory=MelConfig)
    channels: list[int] = field(default_factory=lambda: [16, 64, 128, 256, 256])
    width: int = 256
    heads: int = 4
    layers: int = 1
    max_positions: int = 64
    embed_dim: int = 256
    text_encoder: str = "all-MiniLM-L6-v2"
    text_dim: int = 384
    text_hidden: int = 512
    window_seconds: float = 5.0
    max_windows: int = 6
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mel"] = self.mel.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, what: str = "config") -> ClapConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        try:
            known["mel"] = MelConfig.from_dict(d.get("mel") or {})
            return cls(**known)
        except TypeError as e:
            raise ModelError(f"{what}: not a foley-clap config ({e})") from None

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.channels) - 1)


def clap_features(audio: Audio, cfg: MelConfig) -> np.ndarray:
    """``[2, n_mels, T]`` float32: log-mel of the mid signal and the clipped L-R log-mel difference."""
    a = audio.resample(cfg.sample_rate) if audio.sample_rate != cfg.sample_rate else audio
    x = a.samples.astype(np.float32)
    if x.shape[1] < cfg.n_fft:  # shorter than one STFT frame: silence-padded
        x = np.pad(x, ((0, 0), (0, cfg.n_fft - x.shape[1])))
    if x.shape[0] == 1:
        x = np.concatenate([x, x])
    elif x.shape[0] > 2:
        x = x[:2]
    mels = log_mel_np(np.stack([x.mean(0), x[0], x[1]]), cfg)
    side = np.clip(mels[1] - mels[2], -SIDE_LIMIT, SIDE_LIMIT)
    return np.stack([mels[0], side]).astype(np.float32)


class AudioTower(nn.Module):
    def __init__(self, c: ClapConfig):
        super().__init__()
        self.config = c
        self.norm = nn.BatchNorm1d(2 * c.mel.n_mels)
        blocks, cin = [], 2
        for i, ch in enumerate(c.channels):
            layers = [nn.Conv2d(cin, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
            if i < len(c.channels) - 1:
                layers.append(nn.AvgPool2d(2))
            blocks.append(nn.Sequential(*layers))
            cin = ch
        self.blocks = nn.Sequential(*blocks)
        self.proj_in = nn.Linear(cin, c.width)
        self.pos = nn.Parameter(torch.zeros(1, c.max_positions, c.width))
        layer = nn.TransformerEncoderLayer(c.width, c.heads, 2 * c.width, dropout=0.1, batch_first=True,
                                           norm_first=True)
        self.temporal = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.out = nn.Linear(2 * c.width, c.embed_dim)

    def pad(self, feats: torch.Tensor) -> torch.Tensor:
        short = self.config.downsample - feats.shape[-1]
        if short <= 0:
            return feats
        floor = float(np.log(self.config.mel.log_floor))
        mid = nn.functional.pad(feats[:, :1], (0, short), value=floor)
        side = nn.functional.pad(feats[:, 1:], (0, short), value=0.0)
        return torch.cat([mid, side], 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``[B, 2, n_mels, T]`` -> unnormalised ``[B, embed_dim]``."""
        feats = self.pad(feats)
        b, _, f, t = feats.shape
        x = self.norm(feats.reshape(b, 2 * f, t)).reshape(b, 2, f, t)
        x = self.blocks(x).mean(dim=2).transpose(1, 2)           # [B, T', C]
        x = self.proj_in(x)
        n = x.shape[1]
        if n > self.pos.shape[1]:  # longer than trained: positions are interpolated
            pos = nn.functional.interpolate(self.pos.transpose(1, 2), size=n, mode="linear").transpose(1, 2)
        else:
            pos = self.pos[:, :n]
        x = self.temporal(x + pos)
        return self.out(torch.cat([x.mean(1), x.amax(1)], dim=1))


class TextHead(nn.Module):
    def __init__(self, c: ClapConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(c.text_dim, c.text_hidden), nn.GELU(), nn.Dropout(0.1),
                                 nn.Linear(c.text_hidden, c.embed_dim))

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        return self.net(sentence)


class ClapNet(nn.Module):
    """``audio(feats) -> [B, D]`` and ``text(sentence_vectors) -> [M, D]``, both L2-normalised."""

    def __init__(self, config: ClapConfig):
        super().__init__()
        self.config = config
        self.audio_tower = AudioTower(config)
        self.text_head = TextHead(config)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def audio(self, feats: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.audio_tower(feats), dim=-1)

    def text(self, sentence: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text_head(sentence), dim=-1)

    def forward(self, feats: torch.Tensor, sentence: torch.Tensor):
        """Training: (audio embeddings, text embeddings, log of the logit scale)."""
        return self.audio(feats), self.text(sentence), self.logit_scale


def init_from_encoder(net: ClapNet, encoder_weights: str | os.PathLike) -> list[str]:
    """Start the conv stack from a foley-encoder ``model.safetensors``: its mono weights go to the mid plane
    (the level-difference plane starts at zero). Returns the names of the tensors taken."""
    from safetensors.torch import load_file

    src = load_file(str(encoder_weights))
    own = net.audio_tower.state_dict()
    taken = []
    for k, v in src.items():
        if not k.startswith(("blocks.", "norm.")) or k not in own:
            continue
        dst = own[k]
        if dst.shape == v.shape:
            dst.copy_(v)
        elif k == "blocks.0.0.weight" and v.shape[1] == 1:   # [C, 1, 3, 3] -> mid plane of [C, 2, 3, 3]
            dst.zero_()
            dst[:, :1].copy_(v)
        elif k.startswith("norm.") and dst.ndim == 1 and dst.shape[0] == 2 * v.shape[0]:
            dst[: v.shape[0]].copy_(v)
        else:
            continue
        taken.append(k)
    net.audio_tower.load_state_dict(own)
    return taken


def save_clap(net: ClapNet, folder: str | os.PathLike, dtype: torch.dtype = torch.float16) -> str:
    """``config.json`` + ``model.safetensors`` (config embedded in its metadata), atomically; returns the sha256.
    Floating tensors are stored as ``dtype`` (BatchNorm counters stay integers)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = net.config.to_dict()
    state = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().clone()
             for k, v in net.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"config": json.dumps(cfg, sort_keys=True)})
    write_json_atomic(folder / CONFIG_FILE, {"model_type": MODEL_TYPE, **cfg})
    return file_sha256(folder / WEIGHTS_FILE)


def load_clap_net(folder: str | os.PathLike) -> tuple[ClapNet, str]:
    """Strict load of a foley-clap folder -> (float32 model in eval mode, sha256 of the weights); one-line
    ModelError naming what is wrong otherwise."""
    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise ModelError(f"{p}: foley-clap file not found; train one with `foley train clap` "
                             "(recipe: recipes/foley-clap.sh) or set FOLEY_CLAP to a foley-clap folder")
    try:
        cfg_json = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{cfg_path}: not valid JSON ({e})") from None
    if cfg_json.get("model_type") != MODEL_TYPE:
        raise ModelError(f"{cfg_path}: model_type is {cfg_json.get('model_type')!r}, not {MODEL_TYPE!r}")
    config = ClapConfig.from_dict(cfg_json, str(cfg_path))
    net = ClapNet(config)
    state = read_strict(w_path, cfg_path, config.to_dict(), net.state_dict())
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    return net.eval(), file_sha256(w_path)


TEXT_HEAD_TYPE = "foley_clap_text"


def save_text_head(net: ClapNet, folder: str | os.PathLike, clap_sha256: str) -> None:
    """The text tower's trained head alone (a model conditioned on CLAP text embeddings carries it): config.json
    names the sentence encoder, the dimensions and the foley-clap it came from."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c = net.config
    cfg = {"model_type": TEXT_HEAD_TYPE, "text_encoder": c.text_encoder, "text_dim": c.text_dim,
           "text_hidden": c.text_hidden, "embed_dim": c.embed_dim, "clap_sha256": clap_sha256}
    state = {k: v.detach().float().contiguous().clone() for k, v in net.text_head.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"config": json.dumps(cfg, sort_keys=True)})
    write_json_atomic(folder / CONFIG_FILE, cfg)


class ClapTextHead(nn.Module):
    """Sentence vectors -> L2-normalised foley-clap text embeddings (the head saved by :func:`save_text_head`)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.head = TextHead(ClapConfig(text_dim=cfg["text_dim"], text_hidden=cfg["text_hidden"],
                                        embed_dim=cfg["embed_dim"], text_encoder=cfg["text_encoder"]))

    @property
    def dim(self) -> int:
        return int(self.cfg["embed_dim"])

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.head(sentence), dim=-1)


def load_text_head(folder: str | os.PathLike) -> ClapTextHead:
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        cfg = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        state = load_file(str(folder / WEIGHTS_FILE))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{folder}: cannot read the CLAP text head ({e})") from None
    if cfg.get("model_type") != TEXT_HEAD_TYPE:
        raise ModelError(f"{folder / CONFIG_FILE}: not a foley-clap text head")
    head = ClapTextHead(cfg)
    try:
        head.head.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelError(f"{folder / WEIGHTS_FILE}: does not match its config ({str(e).splitlines()[0]})") from None
    return head.eval()

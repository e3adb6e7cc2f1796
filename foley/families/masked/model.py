"""The masked-token model: a bidirectional transformer over codec tokens, loaded from a model folder.

A model folder::

    foley.json           {"family": "masked", ...}: rate, channels, frame rate, window, sampling defaults
    codec/               the codec whose tokens it models (a copy of starter-lm's mel codec for starter-masked)
    transformer/         config.json + model.safetensors: :class:`MaskedTransformer` (text projection included)

Token layout: codes int64 [K, F] with K = channels x n_q rows interleaved L0, R0, L1, R1, ... (the token LM's
layout, delay-free), F frames at ``frame_rate``. Each frame is one transformer position: the sum of K embeddings
(row k has its own table of ``vocab + 1`` entries, the last one being row k's MASK token), so both channels and
all codebooks of a frame share a position (stereo is modelled jointly, like MusicGen's summed codebook embeddings,
without a delay pattern). The body is ``torch.nn.TransformerDecoder`` with no causal mask — bidirectional
self-attention over the frames plus cross-attention on projected MiniLM token states — and K output heads.
A learned "null" text slot is always attended, so a dropped condition (guidance's unconditional branch) is the
null slot alone, never an all-masked softmax.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...audio import Audio
from ...codec.loaders import load_folder
from ...codec.storage import load_state_strict
from ...errors import ModelError
from ...formats import check_format
from ...fsutil import atomic_path, write_json_atomic
from ...hashing import folder_hash
from ...text import MINILM, get_text_encoder

FORMAT = 1  # foley.json "format" of a masked-token folder
# steps: MaskGIT passes per window; choice_temperature: the confidence noise (annealed to 0 over the passes);
# strength/period: the variation and loop tasks' defaults
SAMPLING_DEFAULTS = {"steps": 12, "guidance_scale": 3.0, "temperature": 1.0, "top_k": 250,
                     "choice_temperature": 4.5, "strength": 0.5, "period": 0.5}
MAX_STEPS = 64


class MaskedTransformer(nn.Module):
    """Codes [B, K, F] (``vocab`` = MASK) + text states -> logits [B, K, F, vocab]."""

    def __init__(self, codebooks: int, vocab: int, channels: int, hidden_size: int = 256, layers: int = 4,
                 heads: int = 4, ffn_dim: int = 1024, max_frames: int = 256, text_dim: int = 384,
                 dropout: float = 0.1):
        super().__init__()
        if codebooks % channels:
            raise ModelError(f"{codebooks} token rows do not split into {channels} channels")
        self.config = {"codebooks": codebooks, "vocab": vocab, "channels": channels, "hidden_size": hidden_size,
                       "layers": layers, "heads": heads, "ffn_dim": ffn_dim, "max_frames": max_frames,
                       "text_dim": text_dim, "dropout": dropout}
        self.codebooks, self.vocab, self.channels, self.max_frames = codebooks, vocab, channels, max_frames
        self.embed = nn.Embedding(codebooks * (vocab + 1), hidden_size)
        self.register_buffer("offsets", torch.arange(codebooks) * (vocab + 1), persistent=False)
        self.positions = nn.Embedding(max_frames, hidden_size)
        self.text_projection = nn.Linear(text_dim, hidden_size)
        self.null = nn.Parameter(torch.zeros(1, 1, hidden_size))
        layer = nn.TransformerDecoderLayer(hidden_size, heads, ffn_dim, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.body = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(hidden_size))
        self.head = nn.Linear(hidden_size, codebooks * vocab)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)

    @property
    def n_q(self) -> int:
        return self.codebooks // self.channels

    def memory(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MiniLM token states [B, L, D] + mask [B, L] (all zero = no condition) -> the cross-attention's keys
        [B, 1 + L, d] and their padding mask (True = ignored), the null slot first and always attended."""
        b = states.shape[0]
        mem = torch.cat([self.null.expand(b, 1, -1), self.text_projection(states)], dim=1)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=mask.device), mask == 0], dim=1)
        return mem, pad

    def hidden(self, codes: torch.Tensor, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The body's output [B, F, d] for codes [B, K, F]."""
        f = codes.shape[-1]
        if f > self.max_frames:
            raise ModelError(f"{f} frames are over the transformer's {self.max_frames} positions")
        x = self.embed(codes + self.offsets[:, None]).sum(1)                      # [B, F, d]
        x = x + self.positions(torch.arange(f, device=codes.device))[None]
        mem, pad = self.memory(states, mask)
        return self.body(x, mem, memory_key_padding_mask=pad)

    def forward(self, codes: torch.Tensor, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, k, f = codes.shape
        h = self.hidden(codes, states, mask)
        return self.head(h).view(b, f, k, self.vocab).transpose(1, 2)            # [B, K, F, V]

    def row_logits(self, h: torch.Tensor, row: int, frames: torch.Tensor) -> torch.Tensor:
        """Logits [B, n, V] of token row ``row`` at ``frames`` [n] only (sampling skips the known tokens)."""
        v = self.vocab
        return torch.nn.functional.linear(h[:, frames], self.head.weight[row * v:(row + 1) * v],
                                          self.head.bias[row * v:(row + 1) * v])


@dataclass
class MaskedConfig:
    """What foley.json holds besides the weights."""

    sample_rate: int
    channels: int
    frame_rate: float
    window_seconds: float
    max_duration: float = 60.0
    context_seconds: float | None = None   # long-form/continuation: known frames in front of each new window
    text_encoder: str = MINILM
    defaults: dict = field(default_factory=lambda: dict(SAMPLING_DEFAULTS))
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> MaskedConfig:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            check_format(path.parent, "masked", d)
            return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except (OSError, json.JSONDecodeError, TypeError, KeyError) as e:
            raise ModelError(f"{path}: invalid foley.json ({e})") from None

    def to_dict(self) -> dict:
        return {"family": "masked", "format": FORMAT, **asdict(self)}


QUIET_NATS = 2.0  # log-mel (natural log of magnitude) above the floor under which a code counts as near-silent


class MaskedTokenModel:
    """Loaded parts of a masked-token folder and the operations between text, audio and codes."""

    def __init__(self, codec, net: MaskedTransformer, cfg: MaskedConfig, folder: Path | None = None):
        self.codec, self.net, self.cfg = codec, net.eval(), cfg
        self.folder = Path(folder) if folder is not None else None
        if codec.sample_rate != cfg.sample_rate:
            raise ModelError(f"codec rate {codec.sample_rate} Hz differs from the model's {cfg.sample_rate} Hz")
        if net.channels != cfg.channels or net.vocab != codec.codebook_size or net.n_q > codec.num_quantizers:
            raise ModelError("the transformer's channels, vocabulary or codebook count do not match the codec "
                             "and foley.json")
        self._hash: str | None = None
        self._quiet: torch.Tensor | None = None

    # --- sizes -----------------------------------------------------------------------------------
    @property
    def n_q(self) -> int:
        return self.net.n_q

    @property
    def mask_id(self) -> int:
        return self.net.vocab

    def frames(self, seconds: float) -> int:
        return math.ceil(seconds * self.cfg.frame_rate - 1e-9)

    @property
    def window_frames(self) -> int:
        return min(self.net.max_frames, self.frames(self.cfg.window_seconds))

    @property
    def context_frames(self) -> int:
        ctx = self.cfg.context_seconds if self.cfg.context_seconds is not None else self.cfg.window_seconds / 3
        return max(1, min(self.window_frames - 1, self.frames(ctx)))

    # --- folders ---------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, folder: str | Path) -> MaskedTokenModel:
        folder = Path(folder)
        if not (folder / "foley.json").is_file():
            raise ModelError(f"{folder}: not a foley masked-token folder (no foley.json)")
        cfg = MaskedConfig.load(folder / "foley.json")
        codec = load_folder(folder / "codec")
        return cls(codec, load_transformer(folder / "transformer"), cfg, folder)

    def save(self, folder: str | Path, dtype: str = "float32") -> Path:
        folder = Path(folder)
        self.codec.save(folder / "codec", dtype)
        save_transformer(self.net, folder / "transformer", dtype)
        write_json_atomic(folder / "foley.json", self.cfg.to_dict())  # last: a folder with it is complete
        return folder

    def weight_hash(self) -> str:
        if self._hash is None:
            self._hash = folder_hash(self.folder) if self.folder else "unsaved"
        return self._hash

    # --- text ------------------------------------------------------------------------------------
    @torch.no_grad()
    def condition(self, prompt: str, negative: str | None, guided: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """MiniLM states [b, L, D] and mask [b, L]; guided: b = 2, the second row the guidance's other branch
        (the negative prompt, or no condition: an all-zero mask, as the training's dropped captions)."""
        emb = get_text_encoder(self.cfg.text_encoder)([prompt, negative or ""])
        states, mask = emb.tokens.clone(), emb.mask.clone()
        if not negative:
            states[1], mask[1] = 0.0, 0
        return (states, mask) if guided else (states[:1], mask[:1])

    @torch.no_grad()
    def quiet_codes(self) -> torch.Tensor | None:
        """bool [vocab]: the first codebook's codes that decode (alone, held) to a near-silent log-mel, within
        ``QUIET_NATS`` of the codec's floor (sampling fixes them after the sounding ones: ``quiet_penalty``)."""
        if self._quiet is None:
            net = getattr(self.codec, "net", None)
            if not hasattr(net, "mel"):  # not a mel codec: no order by loudness
                return None
            codes = torch.arange(self.net.vocab)[:, None, None].expand(-1, 1, 8)
            level = net.denormalise(net.mel(codes)).mean(dim=(1, 2))
            floor = math.log(net.mel_config.log_floor)
            self._quiet = level < floor + QUIET_NATS
        return self._quiet

    # --- audio <-> codes -------------------------------------------------------------------------
    def audio_codes(self, audio: Audio) -> torch.Tensor:
        """Audio -> codes [K, F] at the model's rate and channels (rows interleaved L0, R0, L1, ...)."""
        a = audio.to_channels(self.cfg.channels) if audio.channels != self.cfg.channels else audio
        if a.sample_rate != self.cfg.sample_rate:
            a = a.resample(self.cfg.sample_rate)
        x = torch.from_numpy(np.ascontiguousarray(a.samples))[:, None]        # [C, 1, T]
        codes = self.codec.encode_tensor(x, self.n_q)                         # [C, n_q, F]
        return codes.transpose(0, 1).reshape(self.net.codebooks, -1)

    def per_channel(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [K, F] -> [C, n_q, F] (the codec decodes each channel as a batch item)."""
        return codes.reshape(self.n_q, self.cfg.channels, -1).transpose(0, 1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, samples: int) -> np.ndarray:
        """Codes [K, F] -> float32 samples [C, samples] (whole-clip decoding: no chunk seams)."""
        wave = self.codec.decode_tensor(self.per_channel(codes.long()))[:, 0].numpy()
        wave = np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
        if wave.shape[-1] < samples:
            wave = np.pad(wave, ((0, 0), (0, samples - wave.shape[-1])))
        return np.ascontiguousarray(wave[:, :samples], np.float32)


def save_transformer(net: MaskedTransformer, folder: Path, dtype: str = "float32") -> Path:
    from safetensors.torch import save_file

    if dtype not in ("float32", "float16"):
        raise ModelError(f"cannot store weights as '{dtype}'; use float32 or float16")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if dtype == "float16" and v.is_floating_point() else v).detach().contiguous().clone()
             for k, v in net.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json_atomic(folder / "config.json", {"model_type": "foley_masked_transformer", **net.config})
    return folder


def load_transformer(folder: Path) -> MaskedTransformer:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        cfg.pop("model_type", None)
        net = MaskedTransformer(**cfg)
    except (OSError, json.JSONDecodeError, TypeError, ValueError):
        raise ModelError(f"{folder}: missing or invalid config.json of the masked transformer") from None
    load_state_strict(net, folder / "model.safetensors")
    return net.eval()

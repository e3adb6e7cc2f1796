"""A mel-domain RVQ codec: waveform -> log-mel -> causal conv encoder -> ResidualVQ -> causal conv decoder ->
log-mel -> our trained neural vocoder -> waveform.

Why: the waveform codec (:class:`~foley.codec.model.FoleyCodec`, a transformers ``EncodecModel``) does not learn
on 2 CPU cores (held-out SI-SDR -42 dB after 45 min, and it loses to mel + Griffin-Lim at the same bit rate),
while mel-domain models and the neural vocoder train fine here. This codec only learns log-mels (an L1 + L2
loss on normalised log-mel frames); waveforms come from the frozen vocoder shipped in the folder.

Same API as :class:`FoleyCodec` (it is a subclass): codes int64 [B, n_q, F] at ``frame_rate`` = mel frame
rate / ``stride``, ``hop_length`` = mel hop x stride samples per code frame. A folder::

    config.json          MelCodecNet settings (mel settings, widths, codebooks, log-mel mean/std, look-ahead)
    model.safetensors    encoder + ResidualVQ codebooks (with their EMA statistics) + decoder
    vocoder/             the neural vocoder (a copy of the folder it was trained with)
    foley_codec.json     {"kind": "mel", ...}: the marker :func:`~foley.codec.model.load_codec` dispatches on

It is not a transformers ``EncodecModel``: :meth:`TokenLM.composite` (transformers' MusicGen over the same
parts) needs one and refuses this codec; everything else in the LM only uses encode/decode and the sizes.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from ..features import MelConfig, log_mel
from ..formats import FORMATS, check_format
from .model import CODEC_META, FoleyCodec
from .storage import WEIGHTS, load_state_strict

MEL_KIND = "mel"
MEL_MODEL_TYPE = "foley_mel_codec"  # config.json's model_type: transformers' AutoConfig/AutoModel (foley.hf)
CONFIG = "config.json"
VOCODER_DIR = "vocoder"
NET_DEFAULTS = {"stride": 2, "hidden": 128, "latent_dim": 64, "blocks": 3, "kernel_size": 3, "codebook_size": 1024,
                "n_q": 4, "codebook_decay": 0.99, "kmeans_iters": 10, "dead_code_threshold": 0.05,
                "mean": 0.0, "std": 1.0, "lookahead_frames": 6}


class CausalConv1d(nn.Conv1d):
    """Conv1d padded on the left only: output frame t sees inputs up to t (x stride)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__(cin, cout, kernel_size, stride=stride, dilation=dilation)
        self.left = (kernel_size - 1) * dilation + 1 - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, (self.left, 0)))


class ResBlock(nn.Module):
    """x + conv1x1(GELU(causal dilated conv(GELU(x))))."""

    def __init__(self, dim: int, kernel_size: int, dilation: int):
        super().__init__()
        self.conv = CausalConv1d(dim, dim, kernel_size, dilation=dilation)
        self.proj = nn.Conv1d(dim, dim, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(self.act(self.conv(self.act(x))))


def _blocks(dim: int, n: int, k: int) -> list[nn.Module]:
    return [ResBlock(dim, k, 2 ** (i % 3)) for i in range(n)]


class MelCodecNet(nn.Module):
    """Normalised log-mel [B, n_mels, N] (N a multiple of ``stride``) <-> latents [B, D, N / stride] <-> codes."""

    def __init__(self, mel: dict | None = None, **cfg):
        super().__init__()
        unknown = set(cfg) - set(NET_DEFAULTS)
        if unknown:
            raise ModelError(f"unknown mel codec settings: {', '.join(sorted(unknown))}")
        self.mel_config = MelConfig.from_dict(mel) if mel is not None else MelConfig()
        self.config = {**NET_DEFAULTS, **cfg, "mel": self.mel_config.to_dict()}
        c = self.config
        size, stride = int(c["codebook_size"]), int(c["stride"])
        if size & (size - 1) or stride not in (1, 2):
            raise ModelError(f"mel codec: codebook_size {size} must be a power of two and stride 1 or 2")
        h, d, k, nb, m = int(c["hidden"]), int(c["latent_dim"]), int(c["kernel_size"]), int(c["blocks"]), \
            self.mel_config.n_mels
        down = [CausalConv1d(h, h, 2 * stride, stride=stride)] if stride > 1 else []
        self.encoder = nn.Sequential(CausalConv1d(m, h, k), *_blocks(h, nb, k), *down, *_blocks(h, nb, k),
                                     nn.GELU(), nn.Conv1d(h, d, 1))
        up = [nn.ConvTranspose1d(h, h, stride, stride=stride)] if stride > 1 else []  # frame f -> 2f, 2f + 1 only
        self.decoder = nn.Sequential(CausalConv1d(d, h, k), *_blocks(h, nb, k), *up, *_blocks(h, nb, k),
                                     nn.GELU(), nn.Conv1d(h, m, 1))
        from vector_quantize_pytorch import ResidualVQ

        from .vq import quiet_vq

        quiet_vq()
        self.rvq = ResidualVQ(dim=d, num_quantizers=int(c["n_q"]), codebook_size=size,
                              decay=float(c["codebook_decay"]), kmeans_init=True, kmeans_iters=int(c["kmeans_iters"]),
                              threshold_ema_dead_code=float(c["dead_code_threshold"]), quantize_dropout=True,
                              commitment_weight=1.0)

    @property
    def stride(self) -> int:
        return int(self.config["stride"])

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - float(self.config["mean"])) / float(self.config["std"])

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * float(self.config["std"]) + float(self.config["mean"])

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised log-mel [B, M, N] -> (reconstruction [B, M, N], codes [B, N / stride, n_q], commitment)."""
        z = self.encoder(mel)
        q, codes, commit = self.rvq(z.transpose(1, 2))
        return self.decoder(q.transpose(1, 2)), codes, commit.sum()

    def codes(self, mel: torch.Tensor, n_q: int) -> torch.Tensor:
        """Normalised log-mel [B, M, N] -> codes int64 [B, n_q, N / stride] (eval mode: no codebook updates)."""
        _, codes, _ = self.rvq(self.encoder(mel).transpose(1, 2))
        return codes[..., :n_q].transpose(1, 2).long()

    def mel(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, n, F] (the first n codebooks) -> normalised log-mel [B, M, F * stride]."""
        # the codebook look-up by hand: ResidualVQ.get_output_from_indices (einx) compiles itself anew for each
        # chunk shape, ~0.9 s apiece on a cold start; this is the same gather and sum (tested equal)
        books, idx = self.rvq.codebooks, codes.long()                                # [Q, C, D], [B, n, F]
        q = torch.stack([books[k][idx[:, k]] for k in range(idx.shape[1])]).sum(0)   # [B, F, D]
        return self.decoder(self.rvq.project_out(q).transpose(1, 2))


def is_mel_folder(folder: Path) -> bool:
    """True when ``folder`` holds a mel codec (its foley_codec.json says ``"kind": "mel"``)."""
    meta = Path(folder) / CODEC_META
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("kind") == MEL_KIND
    except (OSError, json.JSONDecodeError):
        raise ModelError(f"{meta}: unreadable JSON") from None


def load_mel_vocoder(spec: str | Path, mel: MelConfig, gl_iters: int = 32):
    """A neural vocoder folder (its mel settings must equal ``mel``), or ``"griffin-lim"`` when asked for."""
    from ..vocoder import load_vocoder

    if str(spec) == "griffin-lim":
        return load_vocoder("griffin-lim", mel_config=mel, n_iter=gl_iters)
    return load_vocoder(Path(spec), mel_config=mel)


class MelCodec(FoleyCodec):
    """Mel-domain RVQ codec + neural vocoder behind :class:`FoleyCodec`'s API (see the module docstring)."""

    kind = MEL_KIND

    def __init__(self, net: MelCodecNet, vocoder, folder: Path | None = None, name: str | None = None,
                 meta: dict | None = None, vocoder_folder: str | Path | None = None):
        self.net = net.eval()
        self.vocoder = vocoder
        self.vocoder_folder = Path(vocoder_folder) if vocoder_folder is not None else None
        mel = net.mel_config
        if vocoder.mel_config != mel:
            raise ModelError(f"vocoder mel settings {vocoder.mel_config} differ from the codec's {mel}")
        self.folder = Path(folder) if folder is not None else None
        self.meta = dict(meta or {})
        self.sample_rate = int(mel.sample_rate)
        self.channels = 1
        self.hop_length = int(mel.hop_length) * net.stride
        self.codebook_size = int(net.config["codebook_size"])
        self.num_quantizers = int(net.config["n_q"])
        per_q = self.frame_rate * math.log2(self.codebook_size)
        self.bandwidths = [round(n * per_q / 1000, 6) for n in range(1, self.num_quantizers + 1)]
        self.causal = True  # encoder and decoder; the vocoder looks ``lookahead_frames`` ahead when streaming
        self.lookahead_frames = int(net.config["lookahead_frames"])
        self.card = self._card(name, "mel-codec", "foley mel codec (log-mel RVQ + neural vocoder)")
        self._hash: str | None = None

    # --- folders ---------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, folder: str | Path, name: str | None = None, vocoder: str | Path | None = None) -> MelCodec:
        """Load a mel codec folder strictly; ``vocoder="griffin-lim"`` (or another folder) overrides its vocoder."""
        folder = Path(folder)
        if not is_mel_folder(folder):
            raise ModelError(f"{folder}: not a foley mel codec folder (no {CODEC_META} with \"kind\": \"mel\")")
        meta = json.loads((folder / CODEC_META).read_text(encoding="utf-8"))
        check_format(folder, "codec", meta)
        try:
            cfg = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
            cfg.pop("_class_name", None)
            cfg.pop("model_type", None)  # transformers' name of this config (foley.hf.models.MelCodecConfig)
            net = MelCodecNet(**cfg)
        except (OSError, json.JSONDecodeError, TypeError, ValueError):
            raise ModelError(f"{folder / CONFIG}: missing or invalid mel codec config") from None
        load_state_strict(net, folder / WEIGHTS)
        source = vocoder if vocoder is not None else meta.get("vocoder", VOCODER_DIR)
        if str(source) != "griffin-lim" and vocoder is None:
            source = folder / source
        voc = load_mel_vocoder(source, net.mel_config)
        return cls(net, voc, folder, name, meta, None if str(source) == "griffin-lim" else source)

    def save(self, folder: str | Path, dtype: str = "float32") -> Path:
        """config.json + model.safetensors + vocoder/ (copied) + foley_codec.json (written last)."""
        from safetensors.torch import save_file

        from ..fsutil import atomic_path, write_json_atomic

        if dtype not in ("float32", "float16"):
            raise ModelError(f"cannot store weights as '{dtype}'; use float32 or float16")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / CONFIG, {"_class_name": "MelCodecNet", "model_type": MEL_MODEL_TYPE,
                                            **self.net.config})
        state = {k: (v.half() if dtype == "float16" and v.is_floating_point() else v).detach().contiguous().clone()
                 for k, v in self.net.state_dict().items()}
        with atomic_path(folder / WEIGHTS) as tmp:
            save_file(state, str(tmp))
        kind = "griffin-lim" if getattr(self.vocoder, "name", None) == "griffin-lim" else VOCODER_DIR
        if kind == VOCODER_DIR:
            dest = folder / VOCODER_DIR
            src = self.vocoder_folder
            if src is not None and src.is_dir() and src.resolve() != dest.resolve():
                shutil.copytree(src, dest, dirs_exist_ok=True)
            elif src is None or src.resolve() != dest.resolve():
                self.vocoder.save_pretrained(dest)
        meta = {k: v for k, v in self.meta.items() if k not in ("format", "kind", "vocoder")}
        write_json_atomic(folder / CODEC_META, {"format": FORMATS["codec"], "kind": MEL_KIND, **meta, "vocoder": kind,
                                                "frame_rate": self.frame_rate, "bandwidths_kbps": self.bandwidths})
        return folder

    # --- tensors ---------------------------------------------------------------------------------
    def mel_of(self, x: torch.Tensor) -> torch.Tensor:
        """Waves [B, 1, T] (T a multiple of ``hop_length``) -> raw log-mel [B, M, T / mel hop]."""
        mel, wave = self.net.mel_config, x[:, 0].float()
        frames = wave.shape[-1] // mel.hop_length
        if wave.shape[-1] <= mel.n_fft // 2:  # too short for the STFT's reflect padding: zero-pad first
            wave = nn.functional.pad(wave, (0, mel.n_fft // 2 + 1 - wave.shape[-1]))
        return log_mel(wave, mel)[..., :frames]

    @torch.no_grad()
    def encode_tensor(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Waves [B, 1, T] -> codes int64 [B, n_q, ceil(T / hop)] (zero-padded to whole frames)."""
        n = self.n_q_for(n_q=n_q)
        pad = self.frames_for(x.shape[-1]) * self.hop_length - x.shape[-1]
        x = nn.functional.pad(x, (0, pad))
        return self.net.codes(self.net.normalise(self.mel_of(x)), n)

    @torch.no_grad()
    def decode_mel(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, n, F] -> raw log-mel [B, M, F * stride]."""
        return self.net.denormalise(self.net.mel(codes))

    @torch.no_grad()
    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, n, F] (any n <= n_q: the first n codebooks) -> waves [B, 1, F * hop]."""
        if codes.shape[-1] == 0:
            return torch.zeros(codes.shape[0], 1, 0)
        return self.vocoder(self.decode_mel(codes))[:, None]

    def chunk_decoder(self, chunk_frames: int, context_frames: int, batch: int = 1,
                      max_chunk_frames: int | None = None):
        """As :meth:`FoleyCodec.chunk_decoder`; each chunk is decoded with ``lookahead_frames`` of later codes
        (when they exist) because the vocoder is not causal, so a chunk's audio waits for them."""
        from .model import ChunkDecoder

        return ChunkDecoder(self, chunk_frames, context_frames, batch, max_chunk_frames,
                            lookahead=self.lookahead_frames)


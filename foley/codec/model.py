"""Our trained codec behind the same API as the public codec wrappers, plus chunked (streaming) decoding.

Shapes: audio tensors are [B, 1, T] at ``sample_rate``; codes are int64 [B, n_q, F] (tensors) or
[n_q, F] (numpy, one channel) with ``F = ceil(T / hop_length)``. The codec is mono: multichannel audio is
coded one channel at a time (as MusicGen's stereo models do).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..audio import Audio
from ..errors import ModelError, RequestError
from ..formats import FORMATS, check_format
from ..generator import ModelCard
from ..hashing import folder_hash
from .protocol import CODEC_META, DEFAULT_KIND, read_meta
from .storage import load_model, save_model


class FoleyCodec:
    """A transformers ``EncodecModel`` trained by ``foley train codec``.

    Attributes: ``card``, ``sample_rate``, ``channels`` (1), ``hop_length``, ``frame_rate`` (frames/s),
    ``codebook_size``, ``num_quantizers``, ``bandwidths`` (kbps for 1..n_q codebooks, ascending).
    """

    family = "codec"
    kind = DEFAULT_KIND  # MelCodec (foley.codec.melcodec): "mel"; foley.codec.LOADERS maps kinds to loaders

    def __init__(self, net, folder: Path | None = None, name: str | None = None, meta: dict | None = None):
        self.net = net.eval()
        cfg = net.config
        self.folder = Path(folder) if folder is not None else None
        self.meta = dict(meta or {})
        self.sample_rate = int(cfg.sampling_rate)
        self.channels = 1
        self.hop_length = int(np.prod(cfg.upsampling_ratios))
        self.codebook_size = int(cfg.codebook_size)
        self.num_quantizers = int(cfg.num_quantizers)
        self.bandwidths = [float(b) for b in cfg.target_bandwidths]
        self.causal = bool(cfg.use_causal_conv)
        self.card = self._card(name, "codec", "foley codec (transformers EncodecModel)")
        self._hash: str | None = None

    def _card(self, name: str | None, default: str, description: str) -> ModelCard:
        """The registry card of a codec (set ``folder``, ``meta`` and ``sample_rate`` first)."""
        return ModelCard(name=name or (self.folder.name if self.folder else default), family="codec",
                         weights=str(self.folder or ""), sample_rate=self.sample_rate, channels=1,
                         max_duration=math.inf, tasks=("encode", "decode"),
                         licence=self.meta.get("licence", "unknown"), description=description)

    # --- folders ---------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, folder: str | Path, name: str | None = None) -> FoleyCodec:
        from transformers import EncodecConfig, EncodecModel

        folder = Path(folder)
        meta = read_meta(folder)
        check_format(folder, "codec", meta)
        kind = meta.get("kind", DEFAULT_KIND)
        if kind != cls.kind:
            raise ModelError(f"{folder}: a '{kind}' codec folder, not a '{cls.kind}' one; load it with "
                             f"foley.codec.load_folder")
        net = load_model(EncodecConfig, EncodecModel, folder)
        if net.config.audio_channels != 1 or net.config.chunk_length_s is not None:
            raise ModelError(f"{folder}: foley codecs are mono and unchunked")
        return cls(net, folder, name, meta)

    def save(self, folder: str | Path, dtype: str = "float32") -> Path:
        """Write the transformers folder (config.json + model.safetensors) and ``foley_codec.json``."""
        from ..fsutil import write_json_atomic

        folder = save_model(self.net, Path(folder), dtype)
        write_json_atomic(folder / CODEC_META, {**self.meta, "format": FORMATS["codec"], "kind": self.kind,
                                                "frame_rate": self.frame_rate, "bandwidths_kbps": self.bandwidths})
        return folder

    def weight_hash(self) -> str:
        if self._hash is None:
            self._hash = folder_hash(self.folder) if self.folder else "unsaved"
        return self._hash

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def frames_for(self, samples: int) -> int:
        return math.ceil(samples / self.hop_length)

    def n_q_for(self, bandwidth: float | None = None, n_q: int | None = None) -> int:
        """Codebooks for a bandwidth (kbps, one of ``bandwidths``) or a count; default: all."""
        if bandwidth is not None and n_q is not None:
            raise RequestError("give a bandwidth or a number of codebooks, not both")
        if n_q is not None:
            if not 1 <= n_q <= self.num_quantizers:
                raise RequestError(f"'{self.card.name}' has {self.num_quantizers} codebooks; --n-q {n_q} is outside "
                                   f"1..{self.num_quantizers}")
            return int(n_q)
        if bandwidth is None:
            return self.num_quantizers
        for i, b in enumerate(self.bandwidths):
            if math.isclose(bandwidth, b, rel_tol=1e-3):
                return i + 1
        raise RequestError(f"'{self.card.name}' offers {', '.join(f'{b:.3g}' for b in self.bandwidths)} kbps, "
                           f"not {bandwidth:g}")

    # --- tensors ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_tensor(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Waves [B, 1, T] -> codes int64 [B, n_q, ceil(T / hop)] (zero-padded to whole frames)."""
        n = self.n_q_for(n_q=n_q)
        pad = self.frames_for(x.shape[-1]) * self.hop_length - x.shape[-1]
        x = torch.nn.functional.pad(x, (0, pad))
        codes = self.net.encode(x, bandwidth=self.bandwidths[n - 1]).audio_codes  # [1, B, n, F]
        return codes[0]

    @torch.no_grad()
    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, n, F] (any n <= n_q: the first n codebooks) -> waves [B, 1, F * hop]."""
        return self.net.decode(codes[None], [None]).audio_values

    # --- the public-codec API --------------------------------------------------------------------
    def _prepare(self, audio: Audio) -> tuple[torch.Tensor, int]:
        x = audio.to_mono() if audio.channels != 1 else audio
        if x.sample_rate != self.sample_rate:
            x = x.resample(self.sample_rate)
        return torch.from_numpy(np.ascontiguousarray(x.samples))[None], x.frames

    def encode(self, audio: Audio, bandwidth: float | None = None, n_q: int | None = None) -> np.ndarray:
        """Audio (any rate; mixed to mono) -> int64 codes [n_q, frames] at ``bandwidth`` kbps (None = all)."""
        x, _ = self._prepare(audio)
        return self.encode_tensor(x, self.n_q_for(bandwidth, n_q))[0].numpy().astype(np.int64)

    def check_codes(self, codes) -> torch.Tensor:
        c = np.asarray(codes)
        if c.ndim != 2 or not np.issubdtype(c.dtype, np.integer):
            raise RequestError(f"codes must be an integer array [codebooks, frames], got {c.dtype} {c.shape}")
        if not 1 <= c.shape[0] <= self.num_quantizers:
            raise RequestError(f"{c.shape[0]} codebooks given; '{self.card.name}' has {self.num_quantizers}")
        if c.size and (c.min() < 0 or c.max() >= self.codebook_size):
            raise RequestError(f"codes outside 0..{self.codebook_size - 1}: not made by '{self.card.name}'")
        return torch.from_numpy(c.astype(np.int64))

    def decode(self, codes, frames: int | None = None) -> Audio:
        """int codes [n, F] -> mono Audio at the codec rate, ``frames`` samples long (default F * hop)."""
        c = self.check_codes(codes)
        wave = self.decode_tensor(c[None])[0].numpy()
        n = frames if frames is not None else c.shape[1] * self.hop_length
        wave = wave[:, :n] if wave.shape[1] >= n else np.pad(wave, ((0, 0), (0, n - wave.shape[1])))
        return Audio(np.ascontiguousarray(wave, np.float32), self.sample_rate)

    def reconstruct(self, audio: Audio, bandwidth: float | None = None, n_q: int | None = None) -> Audio:
        """Encode then decode; the result has the input's length at the codec rate."""
        _, n = self._prepare(audio)
        return self.decode(self.encode(audio, bandwidth, n_q), frames=n)

    def chunk_decoder(self, chunk_frames: int, context_frames: int, batch: int = 1,
                      max_chunk_frames: int | None = None) -> ChunkDecoder:
        return ChunkDecoder(self, chunk_frames, context_frames, batch, max_chunk_frames)


class ChunkDecoder:
    """Decode a growing code stream chunk by chunk, each chunk decoded with up to ``context_frames`` of earlier
    codes in front (then dropped). Chunks start at ``chunk_frames`` and double up to ``max_chunk_frames``
    (small first chunks for a quick start, larger ones for less re-decoded context).

    With a causal codec the output at a sample depends only on codes up to its frame, so a chunk decoded with
    enough history approximates the whole-stream decode closely and chunk borders do not click. Pushing
    frames one by one or all at once gives bit-identical audio (same chunk borders): streaming and
    non-streaming generation share this class.

    ``lookahead`` (frames, for a codec whose decoder is not causal, e.g. the mel codec's vocoder): a chunk is
    decoded only once ``lookahead`` later frames exist (or at ``flush``), with them behind it, then dropped.
    """

    def __init__(self, codec: FoleyCodec, chunk_frames: int, context_frames: int, batch: int = 1,
                 max_chunk_frames: int | None = None, lookahead: int = 0):
        if chunk_frames < 1 or context_frames < 0 or lookahead < 0:
            raise ValueError("chunk_frames must be >= 1, context_frames and lookahead >= 0")
        self.codec, self.chunk, self.context = codec, int(chunk_frames), int(context_frames)
        self.lookahead = int(lookahead)
        self.max_chunk = max(self.chunk, int(max_chunk_frames or chunk_frames))
        self.codes: torch.Tensor | None = None  # [B, n, F so far]
        self.batch = batch
        self.done = 0  # frames already decoded
        self.chunks = 0

    def _decode(self, end: int) -> np.ndarray:
        start = max(0, self.done - self.context)
        stop = min(end + self.lookahead, self.codes.shape[-1])
        wave = self.codec.decode_tensor(self.codes[..., start:stop])[:, 0]  # [B, (stop - start) * hop]
        hop = self.codec.hop_length
        out = wave[:, (self.done - start) * hop:(end - start) * hop].numpy()
        self.done, self.chunks = end, self.chunks + 1
        return out

    @property
    def next_chunk(self) -> int:
        return min(self.chunk << min(self.chunks, 30), self.max_chunk)

    def prime(self, codes: torch.Tensor) -> None:
        """Append codes [B, n, f] whose audio is not wanted: only the decoding context of what follows."""
        self.codes = codes if self.codes is None else torch.cat([self.codes, codes], dim=-1)
        self.done = self.codes.shape[-1]

    def push(self, codes: torch.Tensor) -> np.ndarray:
        """Append codes [B, n, f] -> samples [B, k * chunk * hop] of the chunks completed now (k >= 0)."""
        self.codes = codes if self.codes is None else torch.cat([self.codes, codes], dim=-1)
        outs = []
        while self.codes.shape[-1] - self.done >= self.next_chunk + self.lookahead:
            outs.append(self._decode(self.done + self.next_chunk))
        return np.concatenate(outs, axis=-1) if outs else np.zeros((self.batch, 0), np.float32)

    def flush(self) -> np.ndarray:
        """Decode what is left (a last, shorter chunk) -> samples [B, r * hop]."""
        if self.codes is None or self.codes.shape[-1] == self.done:
            return np.zeros((self.batch, 0), np.float32)
        return self._decode(self.codes.shape[-1])


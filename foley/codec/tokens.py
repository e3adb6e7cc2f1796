"""The token file written by ``foley codec encode`` (``.foley``): versioned, self-describing, bit-packed.

Layout (little-endian)::

    8 bytes   magic b"FOLEYTOK"
    uint16    format version (FORMAT_VERSION; a reader refuses versions it does not know)
    uint32    header length in bytes
    header    UTF-8 JSON: codec (name), codec_hash, sample_rate, channels, frame_rate, n_q, codebook_size,
              frames (code frames), length (samples of the original at the codec rate), extra
    payload   codes [channels, n_q, frames], each stored in log2(codebook_size) bits, row-major, MSB first

so the payload is exactly the bitrate times the duration (rounded up to a byte). Imports numpy only.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FoleyError

MAGIC = b"FOLEYTOK"
FORMAT_VERSION = 1
_FIXED = struct.Struct("<8sHI")
MAX_CHANNELS = 64          # as foley.audio
MAX_CODEBOOKS = 256
MAX_CODEBOOK_SIZE = 2**24


@dataclass
class TokenFile:
    """Codes int64 [channels, n_q, frames] and everything needed to decode them to ``length`` samples."""

    codes: np.ndarray
    codec: str
    codec_hash: str
    sample_rate: int
    frame_rate: float
    codebook_size: int
    length: int
    extra: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_q(self) -> int:
        return int(self.codes.shape[1])

    @property
    def frames(self) -> int:
        return int(self.codes.shape[2])

    @property
    def bits_per_code(self) -> int:
        return int(math.ceil(math.log2(self.codebook_size)))

    @property
    def bitrate(self) -> float:
        """Bits per second of the codes (all channels)."""
        return self.channels * self.n_q * self.frame_rate * self.bits_per_code

    def header(self) -> dict:
        h = {k: v for k, v in asdict(self).items() if k != "codes"}
        h.update(channels=self.channels, n_q=self.n_q, frames=self.frames)
        return h

    def usage(self) -> list[dict]:
        """Per codebook (over channels): share of the codebook used and perplexity (2**entropy) in codes."""
        out = []
        for q in range(self.n_q):
            counts = np.bincount(self.codes[:, q].ravel(), minlength=self.codebook_size)
            p = counts[counts > 0] / max(1, counts.sum())
            out.append({"codebook": q, "used": float((counts > 0).mean()),
                        "perplexity": float(2 ** -(p * np.log2(p)).sum()) if p.size else 0.0})
        return out


def _pack(codes: np.ndarray, bits: int) -> bytes:
    flat = codes.astype(np.uint32).ravel()
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    return np.packbits(((flat[:, None] >> shifts) & 1).astype(np.uint8)).tobytes()


def _unpack(data: bytes, count: int, bits: int) -> np.ndarray:
    b = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits).astype(np.int64)
    return b @ (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))


def dumps(tf: TokenFile) -> bytes:
    codes = np.asarray(tf.codes)
    if codes.ndim != 3 or not np.issubdtype(codes.dtype, np.integer):
        raise FoleyError(f"codes must be integers [channels, n_q, frames], got {codes.dtype} {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= tf.codebook_size):
        raise FoleyError(f"codes outside 0..{tf.codebook_size - 1}")
    header = json.dumps(tf.header(), sort_keys=True).encode()
    return _FIXED.pack(MAGIC, FORMAT_VERSION, len(header)) + header + _pack(codes, tf.bits_per_code)


def loads(data: bytes, name: str = "token file") -> TokenFile:
    """Parse a token file; anything malformed or of an unknown version is one-line FoleyError."""
    if len(data) < _FIXED.size or data[:8] != MAGIC:
        raise FoleyError(f"{name}: not a foley token file (made by `foley codec encode`)")
    _, version, hlen = _FIXED.unpack_from(data)
    if version != FORMAT_VERSION:
        raise FoleyError(f"{name}: token format version {version} is not supported (this foley reads version "
                         f"{FORMAT_VERSION}); use the foley version that wrote it")
    try:
        h = json.loads(data[_FIXED.size:_FIXED.size + hlen].decode())
        shape = (int(h["channels"]), int(h["n_q"]), int(h["frames"]))
        tf = TokenFile(codes=np.zeros((0, 0, 0), np.int64), codec=str(h["codec"]), codec_hash=str(h["codec_hash"]),
                       sample_rate=int(h["sample_rate"]), frame_rate=float(h["frame_rate"]),
                       codebook_size=int(h["codebook_size"]), length=int(h["length"]), extra=dict(h.get("extra", {})))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError, AttributeError):
        raise FoleyError(f"{name}: damaged token file header") from None
    _check_header(name, shape, tf)  # before anything is allocated from the header's numbers
    count = shape[0] * shape[1] * shape[2]
    payload = data[_FIXED.size + hlen:]
    if len(payload) != math.ceil(count * tf.bits_per_code / 8):
        raise FoleyError(f"{name}: token file is truncated or damaged ({len(payload)} payload bytes, expected "
                         f"{math.ceil(count * tf.bits_per_code / 8)})")
    tf.codes = _unpack(payload, count, tf.bits_per_code).reshape(shape)
    if count and tf.codes.max() >= tf.codebook_size:
        raise FoleyError(f"{name}: damaged token file (a code is outside 0..{tf.codebook_size - 1})")
    return tf


def _check_header(name: str, shape: tuple[int, int, int], tf: TokenFile) -> None:
    """The header's numbers are in range and agree with each other (the payload size is checked next)."""
    channels, n_q, frames = shape
    problems = []
    if not 1 <= channels <= MAX_CHANNELS:
        problems.append(f"channels {channels} (expected 1..{MAX_CHANNELS})")
    if not 1 <= n_q <= MAX_CODEBOOKS:
        problems.append(f"n_q {n_q} (expected 1..{MAX_CODEBOOKS})")
    if not 2 <= tf.codebook_size <= MAX_CODEBOOK_SIZE:
        problems.append(f"codebook_size {tf.codebook_size} (expected 2..{MAX_CODEBOOK_SIZE})")
    if not 1 <= tf.sample_rate <= 1_000_000:
        problems.append(f"sample_rate {tf.sample_rate}")
    if not (math.isfinite(tf.frame_rate) and 0 < tf.frame_rate <= max(tf.sample_rate, 1)):
        problems.append(f"frame_rate {tf.frame_rate}")
    if frames < 0:
        problems.append(f"frames {frames}")
    if not problems:
        most = math.ceil(frames * tf.sample_rate / tf.frame_rate)  # whole frames of hop samples
        if not 0 <= tf.length <= most:
            problems.append(f"length {tf.length} samples (expected 0..{most} for {frames} frames)")
    if problems:
        raise FoleyError(f"{name}: damaged token file header ({'; '.join(problems)})")


def check_against_codec(tf: TokenFile, codec, name: str = "token file") -> None:
    """The codes fit ``codec`` (frame rate, number of codebooks), checked before decoding."""
    rate = float(getattr(codec, "frame_rate", tf.frame_rate))
    if abs(rate - tf.frame_rate) > 1e-6 * max(1.0, rate):
        raise FoleyError(f"{name}: codes are {tf.frame_rate:g} frames/s but the codec runs at {rate:g}; pass the "
                         "codec that encoded it with --codec")
    most = getattr(codec, "num_quantizers", None)
    if most is not None and tf.n_q > int(most):
        raise FoleyError(f"{name}: {tf.n_q} codebooks but the codec has {most}; pass the codec that encoded it "
                         "with --codec")


def write_tokens(path: str | Path, tf: TokenFile) -> Path:
    from ..fsutil import write_bytes_atomic

    write_bytes_atomic(path, dumps(tf))
    return Path(path)


def read_tokens(path: str | Path) -> TokenFile:
    path = Path(path)
    if not path.is_file():
        raise FoleyError(f"{path}: token file not found")
    return loads(path.read_bytes(), str(path))

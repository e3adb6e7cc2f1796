"""What a codec is to the rest of foley: the :class:`Codec` protocol and the folder marker (no torch here).

Ours (:class:`~foley.codec.model.FoleyCodec`, :class:`~foley.codec.melcodec.MelCodec`) and the public wrappers
(EnCodec, DAC in :mod:`foley.families.public.codecs`) all follow it; callers ask it, never a class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import ModelError

CODEC_META = "foley_codec.json"  # marks our codec folders (model files + this)
DEFAULT_KIND = "encodec"  # folders written before "kind" existed hold a transformers EncodecModel


@runtime_checkable
class Codec(Protocol):
    """Audio <-> integer codes [codebooks, frames], one channel at a time.

    ``bandwidths`` are kbps for 1..n codebooks, ascending; ``frame_rate`` = ``sample_rate / hop_length``.
    """

    card: object
    sample_rate: int
    channels: int
    hop_length: int
    codebook_size: int
    num_quantizers: int
    bandwidths: list[float]

    @property
    def frame_rate(self) -> float: ...

    def encode(self, audio, bandwidth: float | None = None): ...

    def decode(self, codes, frames: int | None = None): ...

    def weight_hash(self) -> str: ...


def read_meta(folder: str | Path) -> dict:
    """A codec folder's ``foley_codec.json``; a one-line ModelError when it is missing or unreadable."""
    path = Path(folder) / CODEC_META
    if not path.is_file():
        raise ModelError(f"{folder}: not a foley codec folder (no {CODEC_META})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise ModelError(f"{path}: unreadable JSON") from None


def codec_kind(folder: str | Path) -> str:
    """The kind a codec folder declares (``"encodec"``, ``"mel"``...): the key of :data:`foley.codec.LOADERS`."""
    return str(read_meta(folder).get("kind", DEFAULT_KIND))

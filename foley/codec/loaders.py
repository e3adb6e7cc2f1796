"""The codec loader table: a folder's kind (``foley_codec.json`` ``"kind"``) -> the function that loads it.

A new codec kind adds one entry (:func:`register_loader`); the classes themselves never know each other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import ModelError
from .protocol import Codec, codec_kind


def _encodec(folder: Path, name: str | None) -> Codec:
    from .model import FoleyCodec

    return FoleyCodec.from_folder(folder, name=name)


def _mel(folder: Path, name: str | None) -> Codec:
    from .melcodec import MelCodec

    return MelCodec.from_folder(folder, name=name)


LOADERS: dict[str, Callable[[Path, str | None], Codec]] = {"encodec": _encodec, "mel": _mel}


def register_loader(kind: str, loader: Callable[[Path, str | None], Codec]) -> None:
    LOADERS[kind] = loader


def load_folder(folder: str | Path, name: str | None = None) -> Codec:
    """Load one of our codec folders by the kind it declares."""
    folder = Path(folder)
    kind = codec_kind(folder)
    if kind not in LOADERS:
        raise ModelError(f"{folder}: codec kind '{kind}' is unknown here (known: {', '.join(sorted(LOADERS))}); "
                         f"update foley")
    return LOADERS[kind](folder, name)

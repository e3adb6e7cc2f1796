"""JSONL manifests, one clip per line, compatible with AudioCraft.

A line is an AudioCraft ``AudioMeta`` (``path``, ``duration``, ``sample_rate``, and AudioCraft's own
``amplitude``, ``weight``, ``info_path``...) plus optional fields of ours: ``description``,
``keywords``, ``channels``, ``captions`` (more phrasings), ``attributes`` (ground truth of rendered
clips, or a sidecar's title/genre/bpm...), ``source`` and ``licence``. Any other field is kept and
written back unchanged, and a field that a line did not have is not added on write.

Paths: ``clip.path`` is stored exactly as written. A relative path means "relative to the
manifest's folder" (AudioCraft resolves against the working directory; we chose the manifest's
folder so a dataset folder can be moved or shared). :meth:`Clip.resolved_path` gives the file to
open; :func:`read_manifest` records each clip's manifest folder for it.

AudioCraft writes ``data.jsonl`` or gzip'd ``data.jsonl.gz``; both are read, and written when the
output name ends in ``.gz``. AudioCraft's sidecar ``<audio stem>.json`` (``description``,
``keywords``, ``title``, ``artist``, ``genre``, ``moods``, ``bpm``, ``key``, ``instrument``...) is read
unchanged by :func:`read_sidecar`.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ..errors import ManifestError
from ..fsutil import atomic_path


class Clip(BaseModel):
    """One audio clip of a manifest (one JSONL line). Unknown fields are allowed and preserved."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    path: str
    duration: float = Field(gt=0, description="seconds")
    sample_rate: int = Field(gt=0, description="frames per second of the file")
    channels: int | None = Field(default=None, ge=1)
    description: str | None = None
    keywords: list[str] | str | None = None  # AudioCraft writes both forms
    captions: list[str] = Field(default_factory=list, description="more phrasings of the description")
    attributes: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None
    licence: str | None = None

    _base_dir: Path | None = PrivateAttr(default=None)  # the folder of the manifest it was read from
    _line: int | None = PrivateAttr(default=None)  # its line number in that manifest

    @property
    def manifest_line(self) -> int | None:
        """The line number in the manifest this clip was read from (None for a clip built in code)."""
        return self._line

    def resolved_path(self, base_dir: str | os.PathLike | None = None) -> Path:
        """The audio file: ``path`` if absolute, else joined to ``base_dir``, or to the folder of the
        manifest it was read from, or (for a clip built in code) to the working directory."""
        p = Path(os.path.expanduser(self.path))
        if p.is_absolute():
            return p
        base = Path(base_dir) if base_dir is not None else self._base_dir
        return (base / p) if base is not None else p.absolute()

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this line: the fields it was read or built with, plus unknown ones."""
        return self.model_dump(mode="json", exclude_unset=True)


def _open_text(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")


def _validation_reason(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ())) or "line"
    return f"field '{where}': {err.get('msg', 'invalid')}"


def read_manifest(path: str | os.PathLike) -> list[Clip]:
    """Read a JSONL (or gzip'd JSONL) manifest. Blank lines are skipped.

    Each clip remembers the manifest's folder, against which :meth:`Clip.resolved_path` resolves a
    relative ``path``. Raises ManifestError (one line: file, line number, problem).
    """
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: manifest not found")
    if path.is_dir():
        raise ManifestError(f"{path}: is a folder; give the manifest file (.jsonl or .jsonl.gz)")
    base = path.resolve().parent
    clips: list[Clip] = []
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ManifestError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(obj, dict):
                    raise ManifestError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                try:
                    clip = Clip.model_validate(obj)
                except ValidationError as e:
                    raise ManifestError(f"{path}:{lineno}: {_validation_reason(e)}") from None
                clip._base_dir, clip._line = base, lineno
                clips.append(clip)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read manifest ({e})") from None
    return clips


def write_manifest(path: str | os.PathLike, clips: Iterable[Clip | dict]) -> Path:
    """Write clips as JSONL atomically (gzip'd when ``path`` ends in ``.gz``, as AudioCraft does)."""
    path = Path(path)
    lines = []
    for c in clips:
        obj = c.to_json() if isinstance(c, Clip) else Clip.model_validate(c).to_json()
        lines.append(json.dumps(obj, ensure_ascii=False) + "\n")
    data = "".join(lines).encode("utf-8")
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            with gzip.open(tmp, "wb") as f:
                f.write(data)
        else:
            tmp.write_bytes(data)
    return path


def sidecar_path(audio_path: str | os.PathLike) -> Path:
    """AudioCraft's sidecar: the audio file's path with the suffix replaced by ``.json``."""
    return Path(audio_path).with_suffix(".json")


def read_sidecar(audio_path: str | os.PathLike) -> dict[str, Any]:
    """The AudioCraft sidecar ``.json`` of an audio file, unchanged; ``{}`` when there is none."""
    p = sidecar_path(audio_path)
    if not p.is_file():
        return {}
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ManifestError(f"{p}: sidecar is not valid JSON (line {e.lineno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{p}: cannot read sidecar ({e})") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"{p}: sidecar must be a JSON object, got {type(obj).__name__}")
    return obj


def _keywords_text(keywords: Any) -> str:
    if isinstance(keywords, str):
        return keywords.strip()
    if isinstance(keywords, list):
        return ", ".join(str(k).strip() for k in keywords if str(k).strip())
    return ""


def captions_in(meta: dict[str, Any]) -> list[str]:
    """``description`` then ``captions`` of a clip or sidecar dict: stripped, non-empty, deduplicated."""
    texts = [meta.get("description")] + list(meta.get("captions") or [])
    return list(dict.fromkeys(t.strip() for t in texts if isinstance(t, str) and t.strip()))


def clip_captions(clip: Clip, use_sidecar: bool = True) -> list[str]:
    """The clip's captions, first the ``description``, then ``captions``; stripped, deduplicated.

    When the clip itself has none and ``use_sidecar`` is true, the AudioCraft sidecar's
    ``description`` (and ``captions``) are used, as AudioCraft does. Keywords ("dog, bark") are the
    last resort. An empty list means the clip has no text at all.
    """
    texts = captions_in({"description": clip.description, "captions": clip.captions})
    sidecar: dict = {}
    if not texts and use_sidecar:
        sidecar = read_sidecar(clip.resolved_path())
        texts = captions_in(sidecar)
    if not texts:
        kw = _keywords_text(clip.keywords) or _keywords_text(sidecar.get("keywords"))
        texts = [kw] if kw else []
    return list(dict.fromkeys(texts))

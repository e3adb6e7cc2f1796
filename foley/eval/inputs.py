"""What is evaluated: a folder of audio files (recursive) or a JSONL manifest, and how two sets pair up."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..audio import LOAD_FORMATS, Audio
from ..errors import AudioError, FoleyError, ManifestError

MANIFEST_SUFFIXES = (".jsonl", ".json")


@dataclass
class EvalItem:
    """One file to evaluate. ``name`` is its path relative to the set's root without the suffix."""

    path: Path
    name: str
    index: int
    id: str | None = None
    description: str | None = None
    expected_duration: float | None = None
    content_hash: str = ""


@dataclass
class ItemSet:
    source: Path
    kind: str                      # "folder" or "manifest"
    items: list[EvalItem] = field(default_factory=list)

    def describe(self) -> dict:
        h = hashlib.sha256("\n".join(sorted(i.content_hash for i in self.items)).encode()).hexdigest()
        return {"source": str(self.source), "kind": self.kind, "n_items": len(self.items),
                "content_hash": h}


def file_hash(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 hex of a file's bytes (the cache key; never the folder or file name)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _sidecar(path: Path) -> dict:
    """Caption/provenance sidecar beside an audio file (``x.json`` or ``x.wav.json``), if any."""
    for cand in (path.with_suffix(".json"), path.with_name(path.name + ".json")):
        if cand.is_file():
            try:
                d = json.loads(cand.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            return d if isinstance(d, dict) else {}
    return {}


def _facts(meta: dict) -> tuple[str | None, float | None]:
    """(description, expected duration) from a manifest row or sidecar (foley provenance or AudioCraft)."""
    req = meta.get("request") if isinstance(meta.get("request"), dict) else {}
    desc = meta.get("description") or meta.get("prompt") or req.get("prompt")
    dur = meta.get("expected_duration", req.get("duration"))
    return (str(desc) if desc else None), (float(dur) if isinstance(dur, int | float) else None)


def collect(source: str | Path) -> ItemSet:
    """Read a folder (all audio files, recursively, hidden files skipped) or a JSONL manifest.

    Raises a one-line FoleyError for a missing path, an empty folder or a bad manifest.
    """
    src = Path(source).expanduser()
    if not src.exists():
        raise FoleyError(f"{src}: not found; give a folder of audio files or a JSONL manifest")
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in LOAD_FORMATS
                       and not any(part.startswith(".") for part in p.relative_to(src).parts))
        if not files:
            raise FoleyError(f"{src}: no audio files found (looked for {', '.join(sorted(LOAD_FORMATS))})")
        items = []
        for i, p in enumerate(files):
            desc, dur = _facts(_sidecar(p))
            items.append(EvalItem(p, str(p.relative_to(src).with_suffix("")), i, None, desc, dur))
        out = ItemSet(src, "folder", items)
    elif src.suffix.lower() in MANIFEST_SUFFIXES:
        out = ItemSet(src, "manifest", _read_manifest(src))
    else:
        raise FoleyError(f"{src}: not a folder or a .jsonl manifest")
    for it in out.items:
        it.content_hash = file_hash(it.path)
    return out


def _read_manifest(path: Path) -> list[EvalItem]:
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read manifest ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ManifestError(f"{path}:{n}: not valid JSON; each line must be one JSON object") from None
        if not isinstance(row, dict) or not isinstance(row.get("path"), str):
            raise ManifestError(f"{path}:{n}: each line needs a \"path\" string")
        p = Path(row["path"]).expanduser()
        p = p if p.is_absolute() else path.parent / p
        if not p.is_file():
            raise ManifestError(f"{path}:{n}: audio file {p} not found")
        desc, dur = _facts(row)
        if desc is None or dur is None:
            side_desc, side_dur = _facts(_sidecar(p))
            desc, dur = desc or side_desc, dur if dur is not None else side_dur
        rid = row.get("id")
        name = str(Path(row["path"]).with_suffix(""))
        items.append(EvalItem(p, name, len(items), None if rid is None else str(rid), desc, dur))
    if not items:
        raise ManifestError(f"{path}: manifest has no entries")
    return items


def pair(gen: ItemSet, ref: ItemSet) -> tuple[list[tuple[int, int]], str | None]:
    """Pairs (generated index, reference index) and the rule used, or ([], None) when nothing pairs.

    Rules, first that applies: shared manifest ``id``s; shared relative names (path without suffix);
    shared unique file stems; two manifests of equal length in order.
    """
    def unique(keys):
        c = Counter(keys)
        return {k: i for i, k in enumerate(keys) if k is not None and c[k] == 1}

    rules = (("id", lambda it: it.id), ("relative name", lambda it: it.name),
             ("file stem", lambda it: Path(it.name).name))
    for rule, key in rules:
        g, r = unique([key(i) for i in gen.items]), unique([key(i) for i in ref.items])
        common = [k for k in g if k in r]
        if common:
            return [(g[k], r[k]) for k in common], rule
    if gen.kind == ref.kind == "manifest" and len(gen.items) == len(ref.items):
        return [(i, i) for i in range(len(gen.items))], "manifest order"
    return [], None


def has_nonfinite(path: Path) -> bool:
    """True if the file decodes but holds NaN or infinite samples."""
    import numpy as np
    import soundfile as sf

    try:
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # undecodable: reported as unreadable, not as NaN
        return False
    return not bool(np.isfinite(data).all())


def load(item: EvalItem) -> tuple[Audio | None, str | None]:
    """(audio at its native rate and channels, None) or (None, one-line reason it is unusable)."""
    try:
        return Audio.load(item.path), None
    except AudioError as e:
        return None, str(e)

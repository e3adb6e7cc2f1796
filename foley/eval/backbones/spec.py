"""Backbone specs: the official weight files, where they live, and how their checksums are checked.

This module imports neither torch nor transformers, so the metric registry and the CLI can ask
which backbones are available (and what to download) without paying for a model import.

Checksum policy (decided here, documented in docs/eval_backbones.md):

- Every file is hashed (sha256) when it is loaded. ``Backbone.hash`` is the first 12 hex digits of
  the weight file's sha256, so a metric name always says exactly which weights produced it.
- Where the publisher gives a digest (a sha256 prefix in a torch.hub file name, Zenodo's md5), the
  file must match it, or loading stops with a :class:`~foley.errors.ModelError` naming the file,
  both digests and the download URL.
- Where no digest is published, the file loads, and the backbone reports ``checksum="unverified"``
  next to its sha256; nothing is skipped silently.
- ``checksums={"file name": "sha256 hex or prefix"}`` replaces the published digest for a file you
  use on purpose (a re-export, a fine-tuned copy); the status is then ``"user"``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ModelError

HASH_CHARS = 12          # hex digits of sha256 that name a backbone's weights in metric names
MIN_DIGEST_PREFIX = 8    # shortest sha256 prefix accepted as a checksum (torch.hub's file-name rule)


@dataclass(frozen=True)
class WeightFile:
    """One file a backbone needs.

    Attributes:
        name: the official file name (what to save the download as).
        url: where to download it.
        sha256: published sha256 (full, or a prefix of at least 8 hex digits), if any.
        md5: published md5, if any.
        alternatives: other accepted names for the same role (e.g. ``pytorch_model.bin``).
        weights: True for files holding model parameters (they make up ``Backbone.hash``).
        optional: loaded when present, never required.
    """

    name: str
    url: str
    sha256: str | None = None
    md5: str | None = None
    alternatives: tuple[str, ...] = ()
    weights: bool = True
    optional: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.alternatives)


@dataclass(frozen=True)
class BackboneSpec:
    """A real (pre-trained, third-party) backbone and the files it loads.

    Attributes:
        name: registry key, e.g. ``"panns-cnn14-16k"``.
        factory: ``"module:Class"`` that builds the backbone from resolved files.
        folder: sub-folder of ``$FOLEY_HOME/weights`` searched when no path is given.
        sample_rate: rate the network expects (Hz); inputs are resampled to it.
        dim: embedding size.
        files: the files to load.
        licence: licence of the weights (and the architecture's code) as published.
        reference: which published evaluation this backbone reproduces.
        options: constructor options passed to ``factory`` (sample-rate-specific front-end, ...).
    """

    name: str
    factory: str
    folder: str
    sample_rate: int
    dim: int
    files: tuple[WeightFile, ...]
    licence: str
    reference: str
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedFile:
    """A located, hashed weight file. ``status`` is "verified", "user" or "unverified"."""

    spec: WeightFile
    path: Path
    sha256: str
    status: str


def foley_home() -> Path:
    """``$FOLEY_HOME`` (default ``~/.cache/foley``)."""
    return Path(os.environ.get("FOLEY_HOME") or "~/.cache/foley").expanduser()


def default_folder(spec: BackboneSpec) -> Path:
    """Where ``load_backbone(name)`` looks when no path is given: ``$FOLEY_HOME/weights/<folder>/``."""
    return foley_home() / "weights" / spec.folder


def get_spec(name: str, registry: Mapping[str, BackboneSpec]) -> BackboneSpec:
    if name not in registry:
        raise ModelError(f"unknown backbone '{name}'; use one of {', '.join(sorted(registry))}")
    return registry[name]


def _fetch_hint(spec: BackboneSpec, missing: list[WeightFile], folder: Path) -> str:
    listed = ", ".join(f"{f.name} ({f.url})" for f in missing)
    return (f"{spec.name} weights not found: download {listed} into {folder}/ "
            f"(or pass the folder/file as weights=...); nothing is fetched automatically")


def locate(spec: BackboneSpec, weights: str | os.PathLike | None = None) -> dict[str, Path]:
    """Find the spec's files; returns {official name: path} (optional files only when present).

    ``weights`` may be the folder holding the official files, or the path of the (first) weight file,
    whose folder is then searched for the others. ``None`` means the cache folder. Raises
    :class:`ModelError` at once, with the file names, URLs and folder, when a required file is missing.
    """
    if weights is None:
        folder, given = default_folder(spec), None
    else:
        path = Path(weights).expanduser()
        if not path.exists():
            raise ModelError(f"{path}: not found; pass the folder holding "
                             f"{', '.join(f.name for f in spec.files if not f.optional)} or one of those files")
        folder, given = (path, None) if path.is_dir() else (path.parent, path)
    found: dict[str, Path] = {}
    missing: list[WeightFile] = []
    for i, wf in enumerate(spec.files):
        if given is not None and (given.name in wf.names or (i == 0 and not _names_another(spec, given))):
            found[wf.name] = given
            continue
        path = next((folder / n for n in wf.names if (folder / n).is_file()), None)
        if path is not None:
            found[wf.name] = path
        elif not wf.optional:
            missing.append(wf)
    if missing:
        raise ModelError(_fetch_hint(spec, missing, folder))
    return found


def _names_another(spec: BackboneSpec, path: Path) -> bool:
    """True when ``path`` carries the official name of one of the spec's files."""
    return any(path.name in wf.names for wf in spec.files)


def unavailable_reason(spec: BackboneSpec, weights: str | os.PathLike | None = None) -> str | None:
    """The one-line reason the backbone cannot load (missing files and where to get them), or None."""
    try:
        locate(spec, weights)
    except ModelError as e:
        return str(e)
    return None


def file_digests(path: Path, md5: bool = False) -> tuple[str, str | None]:
    """(sha256 hex, md5 hex or None) of a file, read once in 1 MiB blocks."""
    sha = hashlib.sha256()
    m = hashlib.md5(usedforsecurity=False) if md5 else None
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
            if m is not None:
                m.update(block)
    return sha.hexdigest(), (m.hexdigest() if m is not None else None)


def verify(spec: BackboneSpec, paths: Mapping[str, Path],
           checksums: Mapping[str, str] | None = None) -> dict[str, CheckedFile]:
    """Hash every located file and compare it with its published (or user-given) digest.

    Raises:
        ModelError: a digest does not match (names the file, both digests and the URL), or a
            user-given checksum is not a hex string of at least 8 digits.
    """
    checksums = dict(checksums or {})
    unknown = sorted(set(checksums) - {wf.name for wf in spec.files})
    if unknown:
        raise ModelError(f"checksums given for {', '.join(unknown)}, which {spec.name} does not use; "
                         f"its files are {', '.join(wf.name for wf in spec.files)}")
    checked: dict[str, CheckedFile] = {}
    for wf in spec.files:
        if wf.name not in paths:
            continue
        path = paths[wf.name]
        user = checksums.get(wf.name)
        if user is not None:
            user = _normalise_hex(user, wf.name)
        use_md5 = user is None and wf.md5 is not None
        sha, md5 = file_digests(path, md5=use_md5)
        if user is not None:
            _compare(spec, wf, path, "sha256", sha, user, "the checksum you passed")
            status = "user"
        elif wf.sha256 is not None or wf.md5 is not None:
            if wf.sha256 is not None:
                _compare(spec, wf, path, "sha256", sha, wf.sha256, "the published")
            if wf.md5 is not None:
                _compare(spec, wf, path, "md5", md5, wf.md5, "the published")
            status = "verified"
        else:
            status = "unverified"
        checked[wf.name] = CheckedFile(wf, path, sha, status)
    return checked


def _normalise_hex(value: str, name: str) -> str:
    value = value.strip().lower()
    if len(value) < MIN_DIGEST_PREFIX or any(c not in "0123456789abcdef" for c in value):
        raise ModelError(f"checksum for {name} must be a sha256 hex string (at least "
                         f"{MIN_DIGEST_PREFIX} digits), got '{value}'")
    return value


def _compare(spec: BackboneSpec, wf: WeightFile, path: Path, kind: str, got: str | None,
             expected: str, source: str) -> None:
    if got is None or not got.startswith(expected.lower()):
        raise ModelError(
            f"{path}: {kind} {(got or '')[:16]}... does not match {source} {kind} {expected[:16]}... of "
            f"{spec.name}'s {wf.name}; the file is truncated, corrupt or a different checkpoint: "
            f"re-download it from {wf.url}, or pass checksums={{'{wf.name}': '<sha256>'}} to use it on purpose")


def combined_hash(checked: Mapping[str, CheckedFile]) -> str:
    """``Backbone.hash``: sha256[:12] of the one weight file, or of the sorted ``name=sha256`` lines of several."""
    weights = sorted((c for c in checked.values() if c.spec.weights), key=lambda c: c.spec.name)
    if len(weights) == 1:
        return weights[0].sha256[:HASH_CHARS]
    text = "".join(f"{c.spec.name}={c.sha256}\n" for c in weights)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def checksum_status(checked: Mapping[str, CheckedFile]) -> str:
    """The weakest status among the weight files: "unverified" < "user" < "verified"."""
    order = {"unverified": 0, "user": 1, "verified": 2}
    return min((c.status for c in checked.values() if c.spec.weights), key=order.__getitem__,
               default="unverified")

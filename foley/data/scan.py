"""Scan a folder of audio files into manifest clips, and validate a manifest against its files.

Captions come from the first of these that gives text (see :func:`scan_folder`):

1. an AudioCraft sidecar ``<stem>.json`` (its ``description``; ``keywords`` and the other fields,
   such as ``title``, ``genre`` or ``bpm``, are kept as ``keywords`` and ``attributes``) -- or, for
   sounds foley generated, the prompt in their provenance sidecar (``request.prompt``);
2. a sidecar ``<stem>.txt`` (first non-empty line is the description, further lines more captions);
3. a manifest inside the scanned folder (``*.jsonl`` / ``*.jsonl.gz``, e.g. the ``manifest.jsonl`` that
   ``foley data synth`` and ``foley data music`` write): the clip's line, with its captions and attributes;
4. the rows of a captions CSV (columns ``path``, ``caption``; several rows per file allowed);
5. the file and folder names, see :func:`caption_from_name`.

:data:`SOURCE_NAMES` says each source in words (the CLI reports how many captions came from each).

Headers are read with :func:`foley.audio.info` (no decoding). Hidden files and folders (".name") are
not looked at; every other file that is not used becomes a :class:`Skipped` with its reason.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..audio import LOAD_FORMATS, info
from ..errors import AudioError, ManifestError
from .manifest import Clip, captions_in, clip_captions, read_manifest, read_sidecar

SIDECAR_SUFFIXES = (".json", ".txt")
MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz")
SOURCE_NAMES = {"json": "sidecar .json", "provenance": "generation sidecar (its prompt)", "txt": "sidecar .txt",
                "manifest": "manifest in the folder", "csv": "captions CSV", "name": "file names"}
# Words that say nothing about a sound: file-type and library jargon.
NOISE_WORDS = {"sfx", "fx", "snd", "se", "wav", "wave", "ogg", "mp3", "flac", "aif", "aiff", "final", "edit"}
# Folder names that only say "this is audio" and add nothing to a caption.
GENERIC_FOLDERS = NOISE_WORDS | {"sound", "sounds", "audio", "sample", "samples", "effects", "effect",
                                 "misc", "other", "others", "data", "files", "assets", "raw", "clips"}
TAKE_WORDS = {"take", "tk", "var", "variation", "version", "ver", "alt", "no", "nr"}
_TAKE_TOKEN = re.compile(r"^(?:take|tk|var|ver|v|alt|t|no|nr|x)?\d+[a-z]?$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s_\-.,+()\[\]{}#&=~']+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


@dataclass
class Skipped:
    path: Path
    reason: str


@dataclass
class ScanResult:
    clips: list[Clip]
    skipped: list[Skipped]
    caption_sources: Counter = field(default_factory=Counter)  # a SOURCE_NAMES key -> clips
    warnings: list[str] = field(default_factory=list)


def _words(name: str) -> list[str]:
    """Lower-case words of one name: split on separators and camelCase, take markers and numbers out."""
    parts = [p for p in _SEPARATORS.split(name) if p]
    words: list[str] = []
    for i, part in enumerate(parts):
        if _TAKE_TOKEN.match(part):
            continue
        nxt = parts[i + 1] if i + 1 < len(parts) else ""
        if part.lower() in TAKE_WORDS and (nxt.isdigit() or not nxt):
            continue
        for w in _CAMEL.split(part):
            w = w.lower()
            if len(w) > 1 and not w.isdigit() and w not in NOISE_WORDS:
                words.append(w)
    return [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]


def _singular(word: str) -> str:
    for end in ("ies", "es", "s"):
        if word.endswith(end) and len(word) > len(end) + 2:
            return word[: -len(end)] + ("y" if end == "ies" else "")
    return word


def caption_from_name(rel_path: str | PurePath) -> str:
    """A caption from a file's name and its immediate folder, e.g.
    ``sfx/doors/door_creak_heavy.ogg`` -> ``door creak heavy``.

    The stem is split on ``_ - .`` spaces and camelCase; numbers, take markers (``01``, ``take2``,
    ``v3``, ``tk_4``), single letters and file-type jargon (``sfx``, ``wav``) are dropped. The
    immediate folder's words are appended only when they add a word not already there (singular and
    plural count as the same word: ``doors`` adds nothing to ``door``), and generic folders
    (``sounds``, ``audio``, ``misc``...) never add. Returns "" when nothing is left.
    """
    rel = PurePath(rel_path)
    words = _words(rel.stem)
    folder = rel.parent.name
    if folder and folder.lower() not in GENERIC_FOLDERS:
        have = {_singular(w) for w in words}
        extra = [w for w in _words(folder) if _singular(w) not in have and w not in GENERIC_FOLDERS]
        words += extra
    return " ".join(words)


def _key(p: str | os.PathLike) -> str:
    return os.path.normpath(os.path.abspath(p))


def read_captions_csv(csv_path: str | os.PathLike, root: str | os.PathLike) -> dict[str, list[str]]:
    """Rows ``path, caption`` (header row required) -> {absolute normalised path: [captions]}.

    A relative path is relative to ``root`` (the scanned folder).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: captions CSV not found")
    out: dict[str, list[str]] = {}
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            cols = {(c or "").strip().lower(): c for c in (reader.fieldnames or [])}
            if "path" not in cols or "caption" not in cols:
                raise ManifestError(f"{csv_path}: needs a header row with columns 'path' and 'caption'")
            for row in reader:
                p, cap = (row.get(cols["path"]) or "").strip(), (row.get(cols["caption"]) or "").strip()
                if p and cap:
                    full = p if os.path.isabs(p) else os.path.join(root, p)
                    out.setdefault(_key(full), []).append(cap)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ManifestError(f"{csv_path}: cannot read captions CSV ({e})") from None
    return out


def list_files(root: str | os.PathLike) -> list[Path]:
    """All non-hidden files under ``root``, sorted; hidden folders are not entered."""
    root = Path(root)
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files += [Path(dirpath) / n for n in sorted(filenames) if not n.startswith(".")]
    return files


def _sidecar_captions(audio: Path) -> tuple[str, list[str], dict]:
    """(source, captions, extra clip fields) from the .json, else the .txt sidecar; raises ManifestError."""
    meta = read_sidecar(audio)
    texts = captions_in(meta)
    if texts:
        extra: dict = {}
        if meta.get("keywords"):
            extra["keywords"] = meta["keywords"]
        skip = {"description", "captions", "keywords", "self_wav", "joint_embed"}
        attrs = {k: v for k, v in meta.items() if k not in skip and v is not None}
        if attrs:
            extra["attributes"] = attrs
        return "json", texts, extra
    request = meta.get("request")
    if isinstance(request, dict) and isinstance(request.get("prompt"), str) and request["prompt"].strip():
        model = meta.get("model") if isinstance(meta.get("model"), dict) else {}
        attrs = {"generated_by": model.get("name"), "seed": meta.get("seed"), "task": request.get("task")}
        return "provenance", [request["prompt"].strip()], {"attributes": {k: v for k, v in attrs.items()
                                                                          if v is not None}}
    txt = audio.with_suffix(".txt")
    if txt.is_file():
        try:
            lines = [ln.strip() for ln in txt.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as e:
            raise ManifestError(f"{txt}: cannot read caption file ({e})") from None
        texts = list(dict.fromkeys(ln for ln in lines if ln))
        if texts:
            return "txt", texts, {}
    return "", [], {}


def _is_manifest(f: Path) -> bool:
    return f.name.lower().endswith(MANIFEST_SUFFIXES)


def _manifest_clips(manifests: list[Path], warnings: list[str]) -> dict[str, Clip]:
    """{absolute normalised audio path: clip} of the manifests found in the folder (first one wins)."""
    out: dict[str, Clip] = {}
    for m in manifests:
        try:
            clips = read_manifest(m)
        except ManifestError as e:
            warnings.append(f"{e} (its captions are not used)")
            continue
        for c in clips:
            out.setdefault(_key(c.resolved_path()), c)
    return out


def _manifest_fields(clip: Clip) -> tuple[list[str], dict]:
    """The captions of a manifest clip and the fields to carry over (keywords, attributes, source...)."""
    texts = captions_in({"description": clip.description, "captions": clip.captions})
    skip = {"path", "duration", "sample_rate", "channels", "description", "captions"}
    return texts, {k: v for k, v in clip.to_json().items() if k not in skip}


def scan_folder(root: str | os.PathLike, captions_csv: str | os.PathLike | None = None,
                relative_to: str | os.PathLike | None = None, exclude: Iterable[str | os.PathLike] = (),
                on_file: Callable[[Path], None] | None = None) -> ScanResult:
    """Scan ``root`` recursively into clips (see the module docstring for caption precedence).

    ``relative_to``: write each clip's ``path`` relative to this folder (the manifest's folder), or
    absolute when None. ``exclude``: files not to look at (the output manifest, the captions CSV).
    ``on_file`` is called once per file examined (for a progress bar).
    """
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: not a folder; give the folder of audio files to scan")
    csv_caps = read_captions_csv(captions_csv, root) if captions_csv is not None else {}
    excluded = {_key(p) for p in exclude} | ({_key(captions_csv)} if captions_csv is not None else set())
    files = [f for f in list_files(root) if _key(f) not in excluded]
    audio_stems = {f.with_suffix("") for f in files if f.suffix.lower() in LOAD_FORMATS}
    result = ScanResult(clips=[], skipped=[])
    manifests = [f for f in files if _is_manifest(f)]
    listed = _manifest_clips(manifests, result.warnings)
    used_csv: set[str] = set()
    for f in files:
        if on_file is not None:
            on_file(f)
        suffix = f.suffix.lower()
        if suffix not in LOAD_FORMATS:
            if f in manifests:
                continue
            if not (suffix in SIDECAR_SUFFIXES and f.with_suffix("") in audio_stems):
                result.skipped.append(Skipped(f, f"not an audio file ('{f.suffix or '(no suffix)'}')"))
            continue
        try:
            head = info(f)
            source, texts, extra = _sidecar_captions(f)
        except (AudioError, ManifestError) as e:
            msg = str(e)
            result.skipped.append(Skipped(f, msg[len(f"{f}: "):] if msg.startswith(f"{f}: ") else msg))
            continue
        if not texts and _key(f) in listed:
            texts, extra = _manifest_fields(listed[_key(f)])
            source = "manifest" if texts else source
        if not texts and _key(f) in csv_caps:
            source, texts = "csv", list(dict.fromkeys(csv_caps[_key(f)]))
            used_csv.add(_key(f))
        if not texts:
            name = caption_from_name(f.relative_to(root))
            source, texts = "name", [name] if name else []
        if not texts:
            result.skipped.append(Skipped(f, "no caption: no sidecar or CSV row, and the name has no words"))
            continue
        path = os.path.relpath(f, relative_to) if relative_to is not None else _key(f)
        clip = Clip(path=PurePath(path).as_posix(), duration=head["duration"],
                    sample_rate=head["sample_rate"], channels=head["channels"],
                    description=texts[0], **extra)
        if len(texts) > 1:
            clip.captions = texts[1:]
        result.clips.append(clip)
        result.caption_sources[source] += 1
    unused = [k for k in csv_caps if k not in used_csv and k not in {_key(f) for f in files}]
    if unused:
        result.warnings.append(f"{captions_csv}: {len(unused)} row path(s) match no audio file in {root} "
                               f"(first: {unused[0]})")
    return result


@dataclass
class Problem:
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.path}: {self.message}"


def validate_manifest(manifest: str | os.PathLike, tolerance: float = 0.05) -> tuple[int, list[Problem]]:
    """Check every clip: the file exists and reads, duration within ``tolerance`` seconds of the
    file's, same sample rate and channels (when given), at least one caption, no duplicate path.

    Returns (number of clips, problems). Raises ManifestError when the manifest itself is unreadable.
    """
    clips = read_manifest(manifest)
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for clip in clips:
        line = clip.manifest_line or 0
        where = clip.resolved_path()
        if str(where) in seen:
            problems.append(Problem(line, clip.path, f"duplicate of line {seen[str(where)]}"))
        seen.setdefault(str(where), line)
        try:
            head = info(where)
        except AudioError as e:
            msg = str(e)
            problems.append(Problem(line, clip.path, msg[len(f"{where}: "):] if msg.startswith(f"{where}: ")
                                    else msg))
            continue
        if abs(head["duration"] - clip.duration) > tolerance:
            problems.append(Problem(line, clip.path, f"duration {clip.duration:.3f} s in the manifest, "
                                    f"{head['duration']:.3f} s in the file"))
        if head["sample_rate"] != clip.sample_rate:
            problems.append(Problem(line, clip.path, f"sample rate {clip.sample_rate} Hz in the manifest, "
                                    f"{head['sample_rate']} Hz in the file"))
        if clip.channels is not None and head["channels"] != clip.channels:
            problems.append(Problem(line, clip.path, f"{clip.channels} channels in the manifest, "
                                    f"{head['channels']} in the file"))
        try:
            if not clip_captions(clip):
                problems.append(Problem(line, clip.path, "no caption (description, captions or sidecar)"))
        except ManifestError as e:
            problems.append(Problem(line, clip.path, str(e)))
    return len(clips), problems

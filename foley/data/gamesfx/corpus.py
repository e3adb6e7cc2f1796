"""Build the real game sound-effects corpus: walk the packages, caption, deduplicate, read headers, write.

Plain files are referenced where Debian installed them (no copies); members of archives (0 A.D.'s
public.zip, Warzone 2100's base.wz, UFO:AI's 0snd.pk3, OpenTTD's opensfx.cat, GCompris' .rcc bundles,
X-Moto's xmoto.bin) are extracted once into ``<out>/extracted/`` because a manifest path must be a
readable file.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ...audio import info
from ...errors import AudioError, FoleyError
from ...fsutil import atomic_path, write_json_atomic, write_text_atomic
from .archives import Archive, open_archive
from .captions import describe
from .games import EVALUATION_ONLY, GAMES, PACKAGES, Candidate, dpkg_files, find_audio, licence_exception
from .licence import parse_copyright

MANIFEST_NAME = "manifest.jsonl"
REPORT_NAME = "report.json"


@dataclass
class PackageReport:
    found: int = 0  # audio files and archive members
    kept: int = 0
    seconds: float = 0.0
    archives: list[str] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    licences: Counter = field(default_factory=Counter)
    categories: Counter = field(default_factory=Counter)
    installed: bool = True


def _read(c: Candidate, archives: dict[str, Archive]) -> bytes:
    if c.archive is None:
        return Path(c.original_path).read_bytes()
    if c.archive not in archives:
        archives[c.archive] = open_archive(c.archive)
    return archives[c.archive].read(c.member)


def _place(c: Candidate, data: bytes, out_dir: Path) -> tuple[Path, str]:
    """(readable file, manifest path): the original file, or the member extracted under out_dir."""
    if c.archive is None:
        return Path(c.original_path), c.original_path
    rel = f"extracted/{c.package}/{c.member}"
    dest = out_dir / rel
    if not (dest.exists() and dest.stat().st_size == len(data)):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(data)
    return dest, rel


def build_corpus(out_dir: str | Path, packages: tuple[str, ...] = PACKAGES, doc_root: str | Path = "/usr/share/doc",
                 progress: bool = False, files_of: Callable[[str], list[str]] = dpkg_files
                 ) -> dict[str, PackageReport]:
    """Write ``out_dir/manifest.jsonl`` and ``out_dir/report.json``; return the per-package report.

    ``files_of(package)`` lists a package's installed files (``dpkg -L`` by default; tests pass their own).

    Reads audio headers only (duration, rate, channels); files whose header cannot be read are dropped
    with the reason "unreadable audio". Identical files (same SHA-1) are kept once.
    """
    reserved = [p for p in packages if p in EVALUATION_ONLY]
    if reserved:
        raise FoleyError(f"{', '.join(reserved)}: reserved for independent evaluation; its audio may not be used "
                         f"for training or tuning")
    unknown = [p for p in packages if p not in GAMES]
    if unknown:
        raise FoleyError(f"{', '.join(unknown)}: not one of the game packages this corpus may use "
                         f"({', '.join(PACKAGES)})")
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    report: dict[str, PackageReport] = {}
    seen: dict[str, str] = {}
    archives: dict[str, Archive] = {}
    for pkg in packages:
        rep = report[pkg] = PackageReport()
        files = files_of(pkg)
        if not files:
            rep.installed = False
            continue
        found = find_audio(pkg, files)
        rep.found, rep.archives = len(found.candidates), found.archives
        copyright_file = Path(doc_root) / pkg / "copyright"
        copyright = parse_copyright(copyright_file.read_text(encoding="utf-8", errors="replace")) \
            if copyright_file.exists() else None
        for c in tqdm(found.candidates, desc=pkg, unit="file", disable=not progress):
            hint = found.hints.get(c.logical_path)
            d = describe(c, hint)
            if isinstance(d, str):
                rep.dropped[d] += 1
                continue
            data = _read(c, archives)
            digest = hashlib.sha1(data).hexdigest()
            if digest in seen:
                rep.dropped["duplicate of another file"] += 1
                continue
            try:
                path, manifest_path = _place(c, data, out_dir)
                head = info(path)
            except AudioError:
                rep.dropped["unreadable audio"] += 1
                continue
            seen[digest] = c.original_path
            lic = _licence(copyright, c)
            rep.kept += 1
            rep.seconds += head["duration"]
            rep.licences[lic.name] += 1
            rep.categories[d.category] += 1
            rows.append({
                "path": manifest_path, "duration": round(head["duration"], 4), "sample_rate": head["sample_rate"],
                "channels": head["channels"], "description": d.description, "captions": d.captions,
                "keywords": d.keywords, "category": d.category, "source": "real_sfx", "package": pkg,
                "game": GAMES[pkg].name, "original_path": c.original_path, "licence": lic.name,
                "licence_files": lic.files, "language": d.language, "spoken": d.spoken,
                "caption_source": hint.source if hint is not None and hint.source else "file and folder names",
                "sha1": digest,
                **({"credit": hint.credit} if hint is not None and hint.credit else {}),
            })
    for archive in archives.values():
        archive.close()
    write_text_atomic(out_dir / MANIFEST_NAME, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_json_atomic(out_dir / REPORT_NAME, {k: _report_dict(v) for k, v in report.items()})
    return report


def _licence(copyright, c: Candidate):
    """The clip's licence: a package's hand-read exception first, else its copyright file's stanza (an
    archive's own folder, e.g. UFO:AI's "0snd", is not part of the source tree the stanzas name)."""
    from .licence import TRANSPARENT, Licence, licence_for

    special = licence_exception(c.package, c.logical_path)
    if special is not None:
        return special
    if copyright is None:
        return Licence("unknown", "(no copyright file)")
    transparent = TRANSPARENT + ((PurePosixPath(c.archive).stem,) if c.archive else ())
    return licence_for(copyright, c.logical_path, transparent)


def _report_dict(r: PackageReport) -> dict:
    return {"installed": r.installed, "found": r.found, "kept": r.kept, "hours": round(r.seconds / 3600, 3),
            "archives": r.archives, "dropped": dict(r.dropped.most_common()),
            "licences": dict(r.licences.most_common()), "categories": dict(r.categories.most_common())}


def markdown_report(report: dict[str, PackageReport]) -> str:
    """Tables for docs/data.md: per package, per category, and the dropped files by reason."""
    lines = ["| package | game | audio files | kept | hours | licences (clips) |", "|---|---|---:|---:|---:|---|"]
    total_kept, total_s = 0, 0.0
    cats: Counter = Counter()
    drops: Counter = Counter()
    for pkg, r in report.items():
        lic = ", ".join(f"{k} ({v})" for k, v in r.licences.most_common()) or "-"
        state = "" if r.installed else " (not installed)"
        lines.append(f"| {pkg}{state} | {GAMES[pkg].name} | {r.found} | {r.kept} | {r.seconds / 3600:.2f} | {lic} |")
        total_kept += r.kept
        total_s += r.seconds
        cats.update(r.categories)
        drops.update(r.dropped)
    found = sum(r.found for r in report.values())
    lines.append(f"| **total** | | {found} | {total_kept} | {total_s / 3600:.2f} | |")
    lines += ["", "| category | clips |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in cats.most_common()]
    lines += ["", "| dropped because | files |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in drops.most_common()]
    return "\n".join(lines) + "\n"

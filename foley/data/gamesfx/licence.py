"""Licences from Debian copyright files: machine-readable (DEP-5) stanzas, or free-form text.

Hand-written: python-debian parses DEP-5 but is not a dependency here, and Debian's own matching is on
source-tree paths, which we have to map onto installed paths anyway (see `pattern_matches`).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Stanza:
    files: tuple[str, ...]
    licence: str


@dataclass
class Copyright:
    """A parsed copyright file: Files stanzas in file order, or one free-form licence."""

    machine_readable: bool
    stanzas: list[Stanza] = field(default_factory=list)
    free_form: str | None = None  # the licence named by a free-form file


@dataclass(frozen=True)
class Licence:
    name: str  # short name as the copyright file spells it ("GPL-2+", "CC-BY-SA-3.0")
    files: str  # the Files: pattern that decided it, or "(free-form)"


def _paragraphs(text: str) -> list[dict[str, str]]:
    """RFC-822-style paragraphs: {field: value}, continuation lines joined with newlines."""
    paras, cur, key = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                paras.append(cur)
            cur, key = {}, None
        elif line[0] in " \t" and key is not None:
            cur[key] += "\n" + line.strip()
        else:
            m = re.match(r"^([A-Za-z][A-Za-z0-9-]*):\s*(.*)$", line)
            if m:
                key = m.group(1).lower()
                cur[key] = m.group(2).strip()
            else:
                key = None
    if cur:
        paras.append(cur)
    return paras


# (regex over free-form text, SPDX-like name), checked in this order.
_FREE_FORM = (
    (r"GNU (?:General Public License|GPL)[^.]{0,120}?version 2[^.]{0,160}?(?:any later|later version)", "GPL-2+"),
    (r"GNU (?:General Public License|GPL)[^.]{0,120}?version 3[^.]{0,160}?(?:any later|later version)", "GPL-3+"),
    (r"GNU (?:General Public License|GPL)[^.]{0,120}?version 2", "GPL-2"),
    (r"GNU (?:General Public License|GPL)[^.]{0,120}?version 3", "GPL-3"),
    (r"Creative Commons Attribution[- ]Share ?Alike 3\.0|CC[- ]BY[- ]SA[- ]3\.0", "CC-BY-SA-3.0"),
    (r"Creative Commons Attribution 3\.0|CC[- ]BY[- ]3\.0", "CC-BY-3.0"),
    (r"\bMIT license\b|Permission is hereby granted, free of charge", "MIT"),
    (r"public domain", "public-domain"),
)


def parse_copyright(text: str) -> Copyright:
    """Parse a Debian copyright file (machine-readable format 1.0 or free-form)."""
    paras = _paragraphs(text)
    if paras and "format" in paras[0] and "copyright-format" in paras[0]["format"]:
        stanzas = []
        for p in paras:
            if "files" in p and "license" in p:
                name = p["license"].split("\n", 1)[0].strip()
                stanzas.append(Stanza(tuple(p["files"].split()), name or "unnamed"))
        return Copyright(True, stanzas)
    # free-form: the licence text that follows the first "License:" line, else the whole file
    m = re.search(r"^License:?", text, re.MULTILINE | re.IGNORECASE)
    body = " ".join((text[m.end():m.end() + 2000] if m else text).split())
    for pattern, name in _FREE_FORM:
        if re.search(pattern, body, re.IGNORECASE):
            return Copyright(False, free_form=name)
    return Copyright(False, free_form="unknown")


TRANSPARENT = ("games",)  # Debian's /usr/share/games/<game> has no counterpart in a source tree


def pattern_matches(pattern: str, path: str, transparent: tuple[str, ...] = TRANSPARENT) -> str | None:
    """Does a DEP-5 Files pattern (relative to the source tree) match an installed path?

    The source tree's root is unknown, so the pattern may match any tail of the path. The installed
    layout may add folders the source tree does not have: ``transparent`` names them ("games" by default;
    the corpus adds the folder an archive's members are placed in, UFO:AI's "0snd"), and the pattern may
    match the path with any of them left out ("share/hedgewars/Data/Sounds/*" matches
    "/usr/share/games/hedgewars/Data/Sounds/x.ogg"). "-" and "_" count as the same character (GCompris's
    "align4-2players" is installed as "align4_2players"). Returns the pattern when it matches, else None.
    """
    if pattern == "*":
        return pattern
    used = pattern.strip("/")
    want = used.replace("-", "_")
    parts = path.replace("-", "_").split("/")
    skippable = [i for i, c in enumerate(parts) if c in {t.replace("-", "_") for t in transparent}]
    for mask in range(2 ** len(skippable)):
        drop = {i for k, i in enumerate(skippable) if mask >> k & 1}
        candidate = "/".join(c for i, c in enumerate(parts) if i not in drop)
        if fnmatch.fnmatchcase(candidate, "*/" + want) or fnmatch.fnmatchcase(candidate, want):
            return used
    return None


def licence_for(copyright: Copyright, path: str, transparent: tuple[str, ...] = TRANSPARENT) -> Licence:
    """The licence covering ``path``: the most specific matching Files stanza (most literal characters in
    the matched pattern; the later stanza on ties, as in DEP-5; debian/* ignored), else "Files: *"."""
    if not copyright.machine_readable:
        return Licence(copyright.free_form or "unknown", "(free-form)")
    best: tuple[int, Licence] | None = None
    default: Licence | None = None
    for st in copyright.stanzas:
        if "*" in st.files and default is None:
            default = Licence(st.licence, "*")
        for pat in st.files:
            if pat == "*" or pat.startswith("debian/"):
                continue
            used = pattern_matches(pat, path, transparent)
            if used is not None:
                score = len(re.sub(r"[*?]", "", used))
                if best is None or score >= best[0]:
                    best = (score, Licence(st.licence, pat))
    if best is not None:
        return best[1]
    if default is not None:
        return default
    first = copyright.stanzas[0] if copyright.stanzas else None
    return Licence(first.licence, first.files[0]) if first else Licence("unknown", "(none)")


def package_licence(package: str, path: str, doc_root: str | Path = "/usr/share/doc") -> Licence:
    """Licence of an installed file of ``package`` from /usr/share/doc/<package>/copyright."""
    f = Path(doc_root) / package / "copyright"
    if not f.exists():
        return Licence("unknown", "(no copyright file)")
    return licence_for(parse_copyright(f.read_text(encoding="utf-8", errors="replace")), path)

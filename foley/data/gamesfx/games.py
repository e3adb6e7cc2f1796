"""The ten game-data packages: where their audio is (files and zip archives) and what their own data
files say about it (0 A.D. sound groups, Warzone 2100's audio.cfg, KLettres and KTuberling sound lists).
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

PACKAGES = ("0ad-data", "wesnoth-1.16-data", "hedgewars-data", "warzone2100-data", "ufoai-sound",
            "scorched3d-data", "widelands-data", "megaglest-data", "ktuberling-data", "klettres-data")
AUDIO_EXTENSIONS = (".ogg", ".oga", ".wav", ".flac", ".mp3")
ARCHIVE_EXTENSIONS = (".zip", ".pk3", ".wz")


@dataclass(frozen=True)
class Game:
    name: str
    genre: str  # used in one caption variant: "from a fantasy turn-based strategy game"


GAMES = {
    "0ad-data": Game("0 A.D.", "historical real-time strategy game"),
    "wesnoth-1.16-data": Game("The Battle for Wesnoth", "fantasy turn-based strategy game"),
    "hedgewars-data": Game("Hedgewars", "cartoon artillery game"),
    "warzone2100-data": Game("Warzone 2100", "science-fiction real-time strategy game"),
    "ufoai-sound": Game("UFO: Alien Invasion", "science-fiction tactics game"),
    "scorched3d-data": Game("Scorched 3D", "tank artillery game"),
    "widelands-data": Game("Widelands", "settlement-building strategy game"),
    "megaglest-data": Game("MegaGlest", "fantasy real-time strategy game"),
    "ktuberling-data": Game("KTuberling", "children's game"),
    "klettres-data": Game("KLettres", "children's alphabet-learning program"),
}
# Locale codes used by KLettres and KTuberling folders. Hand-written: the stdlib has no language names.
LANGUAGES = {
    "ar": "Arabic", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "en_GB": "British English", "es": "Spanish", "fi": "Finnish", "fr": "French",
    "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
    "lt": "Lithuanian", "ml": "Malayalam", "nb": "Norwegian Bokmål", "nds": "Low German", "nl": "Dutch",
    "nn": "Norwegian Nynorsk", "pt": "Portuguese", "pt_BR": "Brazilian Portuguese", "ro": "Romanian",
    "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian", "sr@latin": "Serbian",
    "sr@ijekavian": "Serbian", "sr@ijekavianlatin": "Serbian", "sv": "Swedish", "tn": "Setswana",
    "uk": "Ukrainian", "wa": "Walloon",
}


@dataclass(frozen=True)
class Candidate:
    """One audio file of a package: a real file, or a member of a zip archive.

    ``original_path`` is "/usr/share/.../x.ogg" or "/usr/share/.../public.zip!/audio/x.ogg";
    ``logical_path`` places an archive member in the archive's folder ("/usr/share/.../public/audio/x.ogg")
    and is what names, hints and licences are matched against. ``root`` is the folder all of the package's
    audio shares; only folders below it describe a sound.
    """

    package: str
    original_path: str
    logical_path: str
    archive: str | None = None
    member: str | None = None
    root: str = "/"


@dataclass
class Hint:
    """What a game's own data files say about one audio file."""

    words: list[str] | None = None  # the name the game gives the sound ("cattle death")
    spoken: str | None = None  # the text a voice says ("Research Stolen", "B")
    kind: str | None = None  # "letter", "syllable", "word", "line"
    speaker: str | None = None  # "male", "female", "robot", ...
    language: str | None = None
    source: str = ""  # the data file the hint came from


@dataclass
class PackageAudio:
    candidates: list[Candidate] = field(default_factory=list)
    hints: dict[str, Hint] = field(default_factory=dict)  # by logical_path
    archives: list[str] = field(default_factory=list)


def dpkg_files(package: str) -> list[str]:
    """Installed regular files of a Debian package (empty when it is not installed)."""
    proc = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    if proc.returncode != 0:
        return []
    return [p for p in proc.stdout.splitlines() if p.startswith("/") and Path(p).is_file()]


def find_audio(package: str, files: list[str]) -> PackageAudio:
    """Audio files and archive members of a package, and the hints from its data files."""
    out = PackageAudio()
    for f in sorted(files):
        low = f.lower()
        if low.endswith(AUDIO_EXTENSIONS):
            out.candidates.append(Candidate(package, f, f))
        elif low.endswith(ARCHIVE_EXTENSIONS):
            out.archives.append(f)
            with zipfile.ZipFile(f) as zf:
                folder = str(PurePosixPath(f).parent / PurePosixPath(f).stem)
                for m in sorted(zf.namelist()):
                    if m.lower().endswith(AUDIO_EXTENSIONS):
                        out.candidates.append(Candidate(package, f"{f}!/{m}", f"{folder}/{m}", f, m))
                out.hints.update(_archive_hints(package, zf, folder))
    out.hints.update(_file_hints(package, files))
    if out.candidates:
        root = os.path.commonpath([str(PurePosixPath(c.logical_path).parent) for c in out.candidates])
        out.candidates = [replace(c, root=root) for c in out.candidates]
    return out


def _archive_hints(package: str, zf: zipfile.ZipFile, folder: str) -> dict[str, Hint]:
    if package == "0ad-data":
        return zero_ad_sound_groups({m: zf.read(m) for m in zf.namelist()
                                     if m.startswith("audio/") and m.endswith(".xml")}, folder)
    if package == "warzone2100-data" and "audio/audio.cfg" in zf.namelist():
        members = [m for m in zf.namelist() if m.lower().endswith(AUDIO_EXTENSIONS)]
        return warzone_audio_cfg(zf.read("audio/audio.cfg").decode("utf-8", "replace"), members, folder)
    return {}


def _file_hints(package: str, files: list[str]) -> dict[str, Hint]:
    hints: dict[str, Hint] = {}
    if package == "klettres-data":
        for f in files:
            if f.endswith("/sounds.xml"):
                hints.update(klettres_sounds(Path(f).read_bytes(), str(Path(f).parent.parent)))
    elif package == "ktuberling-data":
        for f in files:
            if f.endswith(".soundtheme"):
                hints.update(ktuberling_theme(Path(f).read_bytes(), str(Path(f).parent)))
    return hints


def zero_ad_sound_groups(xml_files: dict[str, bytes], folder: str) -> dict[str, Hint]:
    """0 A.D. <SoundGroup> files: a sound referenced by exactly one group gets the group's name."""
    groups: dict[str, set[str]] = defaultdict(set)
    for name, data in xml_files.items():
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            continue
        if root.tag != "SoundGroup":
            continue
        base = (root.findtext("Path") or "").strip().strip("/")
        for s in root.findall("Sound"):
            if s.text and s.text.strip():
                groups[f"{base}/{s.text.strip()}"].add(PurePosixPath(name).stem)
    return {f"{folder}/{member}": Hint(words=_words_of(next(iter(g))), source=f"sound group {next(iter(g))}.xml")
            for member, g in groups.items() if len(g) == 1}


def warzone_audio_cfg(text: str, members: list[str], folder: str) -> dict[str, Hint]:
    """Warzone 2100's audio.cfg: `audio "pcv453.ogg" ... /*Research Stolen*/` lines under section comments."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for m in members:
        by_name[PurePosixPath(m).name.lower()].append(m)
    hints, section = {}, ""
    for line in text.splitlines():
        sec = re.match(r"^\s*/\*\s*(.+?)\s*\*/\s*$", line)
        if sec:
            section = sec.group(1)
            continue
        m = re.match(r'^\s*audio\s+"([^"]+)"[^/]*(?:/\*\s*(.+?)\s*\*/)?', line)
        if not m or not m.group(2):
            continue
        paths = by_name.get(m.group(1).lower(), [])
        if len(paths) != 1:
            continue
        comment = m.group(2).strip()
        speaker = "female" if "female" in section.lower() else ("male" if "male" in section.lower() else None)
        is_speech = not paths[0].startswith("audio/sfx/")  # everything else in audio/ is voice messages
        hints[f"{folder}/{paths[0]}"] = Hint(words=_words_of(comment), spoken=comment if is_speech else None,
                                            kind="line" if is_speech else None, speaker=speaker,
                                            source=f"audio.cfg ({section or 'no section'})")
    return hints


def klettres_sounds(xml: bytes, root: str) -> dict[str, Hint]:
    """KLettres sounds.xml: letters of the alphabet and syllables, with the language code."""
    hints = {}
    tree = ET.fromstring(xml)
    for lang in tree.iter("language"):
        code = lang.get("code", "")
        for kind, tag in (("letter", "alphabet"), ("syllable", "syllables")):
            for block in lang.iter(tag):
                for s in block.iter("sound"):
                    if s.get("file") and s.get("name"):
                        hints[f"{root}/{s.get('file')}"] = Hint(
                            spoken=s.get("name"), kind=kind, language=LANGUAGES.get(code, code),
                            source=f"{code}/sounds.xml")
    return hints


def ktuberling_theme(xml: bytes, root: str) -> dict[str, Hint]:
    """KTuberling <lang>.soundtheme: the English name of the object each recorded word names."""
    tree = ET.fromstring(xml)
    code = tree.get("code", "")
    hints = {}
    for s in tree.iter("sound"):
        if s.get("file") and s.get("name"):
            # "egypt_camel": the playground ("egypt") before the underscore, the object after it
            obj = _words_of(s.get("name").split("_", 1)[-1])
            hints[f"{root}/{s.get('file')}"] = Hint(words=obj, spoken=" ".join(obj), kind="word",
                                                   language=LANGUAGES.get(code, code), source=f"{code}.soundtheme")
    return hints


def _words_of(name: str) -> list[str]:
    from .names import clean_words

    return clean_words(name)

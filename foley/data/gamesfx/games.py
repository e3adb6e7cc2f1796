"""The game-data packages: where their audio is (files and archives) and what their own data files say
about it (0 A.D. sound groups, Warzone 2100's audio.cfg, KLettres and KTuberling sound lists, OpenSFX's
catalogue titles, X-Moto's and Pingus's sound names).
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from .archives import ARCHIVE_EXTENSIONS, Archive, open_archive
from .licence import Licence

PACKAGES = ("0ad-data", "wesnoth-1.16-data", "hedgewars-data", "warzone2100-data", "ufoai-sound",
            "scorched3d-data", "widelands-data", "megaglest-data", "ktuberling-data", "klettres-data",
            "supertuxkart-data", "neverball-data", "xmoto-data", "pingus-data", "openttd-opensfx",
            "gcompris-qt-data", "warmux-data", "redeclipse-data", "kobodeluxe-data", "tuxtype-data", "ri-li-data")
# reserved for independent evaluation (DEVELOPERS.md): their audio never enters a training or tuning corpus
EVALUATION_ONLY = ("extremetuxracer-data", "sound-theme-freedesktop", "supertux-data")
AUDIO_EXTENSIONS = (".ogg", ".oga", ".wav", ".flac", ".mp3")


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
    "supertuxkart-data": Game("SuperTuxKart", "cartoon kart-racing game"),
    "neverball-data": Game("Neverball", "ball-rolling puzzle game"),
    "xmoto-data": Game("X-Moto", "motorbike trial game"),
    "pingus-data": Game("Pingus", "penguin puzzle game"),
    "openttd-opensfx": Game("OpenTTD", "transport business simulation game"),
    "gcompris-qt-data": Game("GCompris", "children's educational software"),
    "warmux-data": Game("Warmux", "cartoon artillery game"),
    "redeclipse-data": Game("Red Eclipse", "science-fiction first-person shooter"),
    "kobodeluxe-data": Game("Kobo Deluxe", "space shoot-'em-up game"),
    "tuxtype-data": Game("Tux Typing", "children's typing tutor game"),
    "ri-li-data": Game("Ri-li", "toy-train arcade game"),
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
    credit: str | None = None  # author (and licence) the game's data gives for this one file
    category: str | None = None  # a category the game's data states (a SuperTuxKart .music file: "music")
    drop: str | None = None  # the reason to leave the file out ("empty placeholder ...")


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
            archive = open_archive(f)
            if archive is None:
                continue
            try:
                members = [m for m in sorted(archive.members()) if m.lower().endswith(AUDIO_EXTENSIONS)]
                if not members:
                    continue
                out.archives.append(f)
                folder = str(PurePosixPath(f).parent / PurePosixPath(f).stem)
                for m in members:
                    out.candidates.append(Candidate(package, f"{f}!/{m}", f"{folder}/{m}", f, m))
                out.hints.update(_archive_hints(package, archive, folder))
            finally:
                archive.close()
    out.hints.update(_file_hints(package, files))
    out.hints.update({k: v for k, v in _name_hints(out.candidates).items() if k not in out.hints})
    if out.candidates:
        root = os.path.commonpath([str(PurePosixPath(c.logical_path).parent) for c in out.candidates])
        out.candidates = [replace(c, root=root) for c in out.candidates]
    return out


def _archive_hints(package: str, archive: Archive, folder: str) -> dict[str, Hint]:
    names = archive.members()
    if package == "0ad-data":
        return zero_ad_sound_groups({m: archive.read(m) for m in names
                                     if m.startswith("audio/") and m.endswith(".xml")}, folder)
    if package == "warzone2100-data" and "audio/audio.cfg" in names:
        members = [m for m in names if m.lower().endswith(AUDIO_EXTENSIONS)]
        return warzone_audio_cfg(archive.read("audio/audio.cfg").decode("utf-8", "replace"), members, folder)
    if package == "openttd-opensfx":
        return opensfx_titles(archive.notes, folder)
    if package == "xmoto-data":
        root = str(PurePosixPath(archive.path).parent)
        return {k: v for m in names if m.lower().endswith((".xml", ".dtheme"))
                for k, v in xmoto_theme(archive.read(m).decode("utf-8", "replace"), root, folder).items()}
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
    elif package == "supertuxkart-data":
        for f in files:
            if f.endswith(".music"):
                hints.update(supertuxkart_music(Path(f).read_bytes(), str(Path(f).parent)))
    return hints


def _name_hints(candidates: list[Candidate]) -> dict[str, Hint]:
    """Hints from hand-read file names (SKIPPED, MUSIC_FILES, VOICE_LINES), for files and archive members."""
    hints = {}
    for c in candidates:
        stem = PurePosixPath(c.logical_path).stem.lower()
        if stem in SKIPPED.get(c.package, {}):
            hints[c.logical_path] = Hint(drop=SKIPPED[c.package][stem], source="file name")
        elif stem in MUSIC_FILES.get(c.package, ()):
            hints[c.logical_path] = Hint(words=_words_of(stem), category="music", source="file name")
        elif stem in VOICE_LINES.get(c.package, {}):
            lang = next((LANGUAGES[code] for theme, code in THEME_LANGUAGES.items()
                         if f"/themes/{theme}/" in c.logical_path), None)
            hints[c.logical_path] = Hint(spoken=VOICE_LINES[c.package][stem], kind="line", language=lang,
                                         source="file name")
    return hints


# Spoken lines whose file names say the words (run-together): package -> {file stem: words}.
VOICE_LINES = {
    "pingus-data": {"goodidea": "good idea", "letsgo": "let's go", "ohno": "oh no", "yipee": "yippee"},
    "tuxtype-data": {"excuseme": "excuse me"},
    "gcompris-qt-data": {"youcannot": "you cannot"},
}
# Music outside a music folder: Tux Typing's two menu pieces (40-46 s) in sounds/.
MUSIC_FILES = {"tuxtype-data": {"amidst_the_raindrops", "chiptune2"}}
THEME_LANGUAGES = {"dansk": "da", "lithuanian": "lt"}  # Tux Typing's localised themes/<name>/sounds
OPAQUE = "name does not say what it sounds like"
# Files left out by name: labels that are the game's internal names, not what a file sounds like (Ri-li's
# French "etire" and "reduit" are the train stretching and shrinking; tuxi.ogg is a 2-minute piece by
# Emmett Plant; Red Eclipse's tonatiuh.ogg and original.ogg are 2-3 minute pieces named after a map),
# and a silent file. package -> {lower-case file stem: reason}.
SKIPPED = {
    "gcompris-qt-data": {"tuxok": OPAQUE, "apert": OPAQUE, "realrainbow": OPAQUE, "lrlapause_short": OPAQUE,
                         "silence": "silence (the pause between Morse signs)"},
    "tuxtype-data": {"tuxi": OPAQUE},
    "ri-li-data": {"etire": OPAQUE, "reduit": OPAQUE, "live": OPAQUE},
    "redeclipse-data": {"tonatiuh": OPAQUE, "original": OPAQUE},
}
# Licences that a free-form copyright file gives to single files, read by hand from that file:
# package -> ((path pattern, licence, where the copyright file says it), ...), first match wins.
LICENCE_EXCEPTIONS = {
    "tuxtype-data": (
        ("*/sounds/tuxi.ogg", "public-domain", "tuxi.ogg: \"released it in the public domain\" (README_SOUNDS)"),
        ("*/sounds/win.wav", "royalty-free",
         "win.wav: \"from a CD with copyright-free stuff\" (README_SOUNDS)"),
        ("*/sounds/winfinal.wav", "royalty-free",
         "winfinal.wav: \"from a CD with copyright-free stuff\" (README_SOUNDS)"),
        ("*", "GPL-2", "(free-form: \"licensed under the GNU Public License version 2\")"),
    ),
}


def licence_exception(package: str, path: str) -> Licence | None:
    """The hand-read licence of a file of a package with a free-form copyright file (LICENCE_EXCEPTIONS)."""
    for pattern, name, where in LICENCE_EXCEPTIONS.get(package, ()):
        if fnmatch.fnmatchcase(path, pattern):
            return Licence(name, where)
    return None


def supertuxkart_music(xml: bytes, folder: str) -> dict[str, Hint]:
    """A SuperTuxKart .music file: the title and composer of an .ogg (and of its fast variant)."""
    try:
        m = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    title, composer = (m.get("title") or "").strip(), (m.get("composer") or "").strip()
    if m.tag != "music" or not title:
        return {}
    credit = f"composed by {composer}" if composer else None
    hints = {}
    for attr, extra in (("file", []), ("fast-filename", ["fast"])):
        if m.get(attr):
            hints[f"{folder}/{m.get(attr)}"] = Hint(words=_title_words(title) + extra, category="music",
                                                    credit=credit, source=".music file")
    return hints


def xmoto_theme(text: str, root: str, folder: str) -> dict[str, Hint]:
    """X-Moto's theme: <music name="rideALong" file="ridealong.ogg"/> names the installed music files
    (Textures/Musics/ next to xmoto.bin); <sound name=... file=...> the packed sounds."""
    hints = {}
    for kind, name, file in re.findall(r'<(music|sound)\s+name="([^"]+)"\s+file="([^"]+)"', text):
        where = f"{root}/Textures/Musics/{file}" if kind == "music" else f"{folder}/Textures/Sounds/{file}"
        hints[where] = Hint(words=_words_of(name), category="music" if kind == "music" else None,
                            source="xmoto.bin theme")
    return hints


def _title_words(title: str) -> list[str]:
    """Words of a human-written title ("Steam train station departure"): split, lower-cased, kept."""
    return [w.lower() for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9'.+-]*", title)]


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


def opensfx_titles(notes: dict[str, str], folder: str) -> dict[str, Hint]:
    """OpenSFX catalogue entries: '"Factory Whistle". By Janis Lukss. License: ...' -> the quoted title as
    the sound's name ("Toyland: Sugar mine (1)" -> sugar mine, toyland), the rest as its credit."""
    hints = {}
    for member, note in notes.items():
        m = re.match(r'^"([^"]+)"\.?\s*(.*)$', note.strip())
        if not m:
            continue
        title = re.sub(r"\(\d+\)|\|.*$", " ", m.group(1))
        place, _, what = title.rpartition(":")
        drop = "empty placeholder in the game's sound list" if title.lower().startswith("unused") else None
        hints[f"{folder}/{member}"] = Hint(words=_title_words(what) + _title_words(place), drop=drop,
                                           source="opensfx.cat titles", credit=m.group(2).strip() or None)
    return hints

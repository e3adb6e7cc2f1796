"""Captions for one game audio file, from its name, its folders and the game's own data (a `Hint`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from .games import GAMES, Candidate, Hint
from .names import GENERIC, category_of, clean_words, folder_words, informative, is_word

CATEGORY_NOUNS = {"footsteps": "footsteps", "fire": "fire sound", "water": "water sound",
                  "explosion": "explosion", "door": "door sound", "bird/animal": "animal sound",
                  "weapon/sword": "weapon sound", "engine/vehicle": "vehicle sound", "voice": "voice",
                  "ambience": "ambience", "music": "music", "ui": "interface sound", "magic": "magic sound",
                  "impact": "impact sound"}
# MegaGlest unit sounds are named <unit>_<event><n>; the events as words.
MEGAGLEST_EVENTS = {"ack": "acknowledging an order", "select": "responding when selected", "die": "dying",
                    "attack": "attacking", "hit": "being hit", "walk": "walking", "build": "building",
                    "mine": "mining", "work": "working", "prod": "producing", "fly": "flying",
                    "standing": "standing idle", "move": "moving"}
HEDGEWARS_NONVERBAL = {"laugh": "laughing", "poison cough": "coughing from poison",
                       "poison moan": "moaning from poison", "ow": "crying out 'ow'", "ouch": "crying 'ouch'",
                       "ooff": "grunting 'ooff'", "hmm": "going 'hmm'", "jump": "grunting as it jumps",
                       "fire punch": "shouting as it punches"}
MEGAGLEST_VOICE_EVENTS = {"ack", "select", "die"}
# Packages whose files are all recordings of words listed in the game's own sound lists.
SPOKEN_WORD_PACKAGES = {"klettres-data", "ktuberling-data"}
MAX_CONTEXT_FOLDERS = 2
# Asset-name conventions of one package, removed before the name is read: GCompris' memory-sound files
# are "LR<Name>_<n>_LA[_cut]" (left/right channel and take marks); "_son<n>" is French for "sound <n>".
STEM_REWRITES = {"gcompris-qt-data": ((r"^LR", ""), (r"_?LA(_?cut)?$", ""), (r"_son\d*$", ""))}


@dataclass
class Described:
    description: str
    captions: list[str]
    keywords: list[str]
    category: str
    language: str | None = None
    spoken: str | None = None


def describe(c: Candidate, hint: Hint | None = None) -> Described | str:
    """Captions of a candidate, or the reason (a short string) for dropping it."""
    path = PurePosixPath(c.logical_path)
    stem = path.stem
    for pattern, repl in STEM_REWRITES.get(c.package, ()):
        stem = re.sub(pattern, repl, stem, flags=re.IGNORECASE)
    if hint is not None and hint.drop:
        return hint.drop
    folders = list(path.parent.relative_to(c.root).parts) if path.is_relative_to(c.root) else \
        [p for p in path.parent.parts if p != "/"]
    if hint is not None and hint.kind in ("letter", "syllable", "word"):
        return _spoken_unit(c, hint, folders)
    if c.package in SPOKEN_WORD_PACKAGES:
        return "not in the game's sound list"
    if c.package == "hedgewars-data" and "voices" in folders:
        return _hedgewars_voice(c, stem, folders)
    if c.package == "0ad-data" and "voice" in folders and re.match(r"civ_(fe)?male_", stem):
        return _zero_ad_voice(c, stem, folders)
    if hint is not None and hint.spoken:
        return _voice_line(c, hint, folders)
    if hint is not None and hint.words:
        words = hint.words
    else:
        words, reason = informative(stem)
        if reason:
            return reason
    event = None
    if c.package == "megaglest-data":
        words, event = _megaglest(words)
    context = _context(folders, words)
    category = hint.category if hint is not None and hint.category else category_of(words + context, folders)
    if event in MEGAGLEST_VOICE_EVENTS and category != "bird/animal":
        category = "voice"  # a unit's reply to orders and selection, and its death cry
    return _sound(c, words, context, category)


def _context(folders: list[str], words: list[str]) -> list[str]:
    """Words of the nearest informative folders (at most two), outermost first, minus the name's words."""
    seen = {w.lower() for w in words}
    picked: list[list[str]] = []
    for f in reversed(folders):
        if f.lower() in GENERIC or f.lower() in ("music", "voices", "sounds", "library"):
            continue
        fw = [w for w in folder_words(f) if w.lower() not in seen and is_word(w)]
        if fw:
            picked.append(fw)
            seen |= {w.lower() for w in fw}
        if len(picked) == MAX_CONTEXT_FOLDERS:
            break
    return [w for group in reversed(picked) for w in group]


def _megaglest(words: list[str]) -> tuple[list[str], str | None]:
    """"archer acknowledge" -> (archer acknowledging an order, "ack"): the last word is the unit's event."""
    events = {"acknowledge": "ack", **{k: k for k in MEGAGLEST_EVENTS}}
    if len(words) >= 2 and words[-1] in events:
        event = events[words[-1]]
        return words[:-1] + MEGAGLEST_EVENTS[event].split(), event
    return words, None


def _sound(c: Candidate, words: list[str], context: list[str], category: str) -> Described:
    game = GAMES[c.package]
    phrase = " ".join(words)
    full = " ".join(context + words)
    if category == "music":
        description = f"game music: {phrase}" if "music" not in words else phrase
        variants = [f"{phrase} music", f"background music, {phrase}", f"music from a {game.genre}: {phrase}",
                    f"instrumental game soundtrack, {phrase}"]
    else:
        description = full
        noun = CATEGORY_NOUNS.get(category)
        variants = [phrase, f"{full} sound effect", f"{full}, from a {game.genre}"]
        if noun and noun.split()[0] not in full.split():
            variants.append(f"{noun}: {full}")
    keywords = _unique(words + context + [category])
    return Described(description, _unique([description] + variants), keywords, category)


def _spoken_unit(c: Candidate, hint: Hint, folders: list[str]) -> Described | str:
    """KLettres letters and syllables, KTuberling words: a voice saying one letter, syllable or word."""
    text = (hint.spoken or "").strip()
    if not text:
        return "no name in the game's sound list"
    lang = hint.language or "an unknown language"
    stem = PurePosixPath(c.logical_path).stem
    if hint.kind == "letter":
        shown = f"{text} ({stem})" if not text.isascii() and stem.isascii() and stem.isalpha() else text
        description = f"a voice saying the letter {shown} in {lang}"
        variants = [f"the letter {shown} spoken in {lang}", f"{lang} pronunciation of the letter {shown}",
                    f"spoken letter {shown}, {lang}"]
    elif hint.kind == "syllable":
        t = text.lower()
        description = f"a voice saying the syllable \"{t}\" in {lang}"
        variants = [f"the {lang} syllable \"{t}\", spoken", f"spoken syllable {t} ({lang})",
                    f"someone pronouncing \"{t}\" in {lang}"]
    else:
        description = f"a voice saying the {lang} word for \"{text}\""
        variants = [f"\"{text}\" said in {lang}", f"the word for {text}, spoken in {lang}",
                    f"a spoken {lang} word: {text}"]
    return Described(description, _unique([description] + variants),
                     _unique(["voice", "speech", hint.kind or "word", lang]), "voice", hint.language, text)


def _voice_line(c: Candidate, hint: Hint, folders: list[str]) -> Described:
    text = hint.spoken or ""
    who = f"a {hint.speaker} voice" if hint.speaker else "a voice"
    description = f"{who} saying \"{text}\""
    if hint.language and hint.language != "English":  # we know the meaning, not the words
        description = f"{who} saying a phrase meaning \"{text}\" in {hint.language}"
    variants = [f"voice line: {text}", f"{who} announcing \"{text}\"", f"spoken: \"{text}\"",
                f"{text}, spoken by {who} in a {GAMES[c.package].genre}"]
    keywords = _unique(["voice", "speech"] + ([hint.speaker] if hint.speaker else []) + clean_words(text))
    return Described(description, _unique([description] + variants), keywords, "voice", hint.language, text)


def _zero_ad_voice(c: Candidate, stem: str, folders: list[str]) -> Described | str:
    """0 A.D. unit voices: voice/<civilisation>/civ/civ_<gender>_<meaning>_<n>.ogg, spoken in the
    civilisation's language; the file name gives the meaning."""
    gender = "female" if stem.startswith("civ_female_") else "male"
    words, reason = informative(stem.split("_", 2)[2])
    if reason:
        return reason
    civ = folders[folders.index("voice") + 1] if folders.index("voice") + 1 < len(folders) else ""
    civ = civ.capitalize() if is_word(civ) else ""
    line = " ".join(words)
    unit = f"{civ} unit" if civ else "unit"
    description = f"a {gender} voice of a {unit} saying a word meaning \"{line}\""
    variants = [f"{gender} {unit} voice line meaning \"{line}\"", f"a {gender} voice answering an order: {line}",
                f"{civ} {gender} voice, \"{line}\" in the game's {civ} language" if civ else f"{gender} voice: {line}"]
    keywords = _unique(["voice", "speech", gender] + ([civ] if civ else []) + words)
    return Described(description, _unique([description] + variants), keywords, "voice", None, line)


def _hedgewars_voice(c: Candidate, stem: str, folders: list[str]) -> Described | str:
    """Hedgewars voice packs: voices/<Pack>/<Line>.ogg, e.g. voices/Pirate/Youllregretthat.ogg."""
    words, reason = informative(stem)
    if reason:
        return reason
    pack = folders[-1] if folders else ""
    style = " ".join(w.lower() for w in clean_words(pack) if is_word(w))
    who = f"a {style}-style cartoon voice" if style else "a cartoon voice"
    line = " ".join(words)
    if line.lower() in HEDGEWARS_NONVERBAL:
        description = f"{who} {HEDGEWARS_NONVERBAL[line.lower()]}"
        variants = [f"cartoon character {HEDGEWARS_NONVERBAL[line.lower()]}", f"voice: {line}"]
    else:
        description = f"{who} saying \"{line}\""
        variants = [f"cartoon character exclaiming \"{line}\"", f"voice line: {line}", f"\"{line}\", shouted"]
    keywords = _unique(["voice", "cartoon"] + ([style] if style else []) + words)
    return Described(description, _unique([description] + variants), keywords, "voice", None, line)


def _unique(items: list[str]) -> list[str]:
    seen, out = set(), []
    for s in items:
        s = " ".join(s.split())
        if s and s.lower() not in seen:
            seen.add(s.lower())
            out.append(s)
    return out

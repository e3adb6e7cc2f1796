"""Captions for music clips: the same ground truth said many ways (synonyms, word order, short and long).

Mood words follow the usual convention (minor and slow reads as sad, major and fast as happy); they
are derived from mode and tempo only, never invented.
"""

from __future__ import annotations

import numpy as np

from .instruments import DRUM_STYLES_BY_KEY, INSTRUMENTS_BY_KEY, KEY_NAMES
from .phrase import ClipSpec

TEMPO_WORDS = {"slow": ("slow", "unhurried", "leisurely"),
               "moderate": ("moderate", "mid-tempo", "medium-paced"),
               "fast": ("fast", "quick", "brisk")}
MOODS = {("minor", "slow"): ("sad", "melancholic", "mournful"),
         ("minor", "moderate"): ("wistful", "brooding", "dark"),
         ("minor", "fast"): ("tense", "dramatic", "urgent"),
         ("major", "slow"): ("calm", "peaceful", "gentle"),
         ("major", "moderate"): ("warm", "pleasant", "easygoing"),
         ("major", "fast"): ("happy", "cheerful", "joyful")}
TEMPO_PHRASES = {"slow": ("slow tempo", "unhurried pace", "leisurely pace"),
                 "moderate": ("moderate tempo", "mid-tempo", "medium pace"),
                 "fast": ("fast tempo", "quick pace", "brisk pace")}
FAMILY_WORDS = {"keys": "keyboard", "organ": "organ", "woodwinds": "woodwind", "mallets": "mallet percussion",
                "plucked": "plucked string", "guitar": "guitar", "bass": "bass", "strings": "string",
                "percussion": "percussion", "voices": "vocal", "brass": "brass", "synth": "synthesizer"}
REGISTER_PHRASES = {"low": ("a low register", "the low range", "a deep register"),
                    "mid": ("a middle register", "the mid range", "a medium register"),
                    "high": ("a high register", "the upper range", "a high register")}
REGISTER_ADJ = {"low": ("low", "deep", "low-pitched"),
                "mid": ("mid-range", "middle-register", "medium-pitched"),
                "high": ("high", "high-pitched", "bright high")}
SHAPE_NOUNS = {
    "ascending": ("rising line", "ascending melody", "scale going up", "climbing phrase"),
    "descending": ("falling line", "descending melody", "scale going down", "falling phrase"),
    "arch": ("melody that rises then falls", "arching phrase", "up-and-down melodic arc"),
    "valley": ("melody that falls then rises", "dipping phrase", "down-then-up line"),
    "repeated": ("repeated note", "single note played over and over", "repeating pitch"),
    "arpeggio": ("arpeggio", "sequence of broken chords", "arpeggiated chord pattern"),
    "chords": ("chord progression", "series of block chords", "sequence of chords"),
    "sustained": ("held chord", "sustained chord", "long sustained pad"),
    "melody": ("melody", "short tune", "wandering melodic line"),
}
SHAPE_ADJ = {"ascending": "rising", "descending": "falling", "arch": "rising then falling",
             "valley": "falling then rising", "repeated": "repeated notes", "arpeggio": "arpeggiated",
             "chords": "chordal", "sustained": "sustained", "melody": "melodic"}
DYNAMIC_PHRASES = {"soft": ("played softly", "quiet", "gentle touch"), "medium": ("",),
                   "loud": ("played loudly", "loud", "forceful")}
KIT_NAMES = {"standard": "standard drum kit", "room": "room drum kit", "power": "power drum kit",
             "electronic": "electronic drum kit", "TR-808": "TR-808 drum machine", "jazz": "jazz drum kit",
             "brush": "drum kit played with brushes"}
N_CAPTIONS = 6


def tempo_class(bpm: int) -> str:
    return "slow" if bpm <= 80 else ("moderate" if bpm <= 115 else "fast")


def key_name(root: int, mode: str, spoken: bool = False) -> str:
    """'D minor', 'Bb major'; spoken=True gives 'B flat major'."""
    name = KEY_NAMES[mode][root]
    if spoken and len(name) == 2:
        name = name[0] + (" flat" if name[1] == "b" else " sharp")
    return f"{name} {mode}"


def _a(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def describe(spec: ClipSpec) -> dict:
    """Description (canonical long caption), several other captions and keywords for a clip."""
    rng = np.random.default_rng([spec.seed, spec.index, 2])
    tc = tempo_class(spec.tempo_bpm)
    if spec.instrument is None:
        return _describe_drums(spec, tc, rng)
    inst = INSTRUMENTS_BY_KEY[spec.instrument]
    t = lambda: _pick(rng, TEMPO_WORDS[tc])  # noqa: E731
    tp = lambda: _pick(rng, TEMPO_PHRASES[tc])  # noqa: E731
    m = lambda: _pick(rng, MOODS[(spec.mode, tc)])  # noqa: E731
    name = lambda: _pick(rng, inst.names)  # noqa: E731
    shape = lambda: _pick(rng, SHAPE_NOUNS[spec.shape])  # noqa: E731
    reg_p, reg_a = (lambda: _pick(rng, REGISTER_PHRASES[spec.register])), (
        lambda: _pick(rng, REGISTER_ADJ[spec.register]))
    key, skey, bpm = key_name(spec.root, spec.mode), key_name(spec.root, spec.mode, True), spec.tempo_bpm
    dyn = _pick(rng, DYNAMIC_PHRASES[spec.dynamics])
    drums = _pick(rng, DRUM_STYLES_BY_KEY[spec.drums].names) if spec.drums else None
    with_drums = (lambda s: f"{s} over {_a(drums)}") if drums else (lambda s: s)
    main_shape = "melody" if spec.shape in ("melody", "arch", "valley") else SHAPE_NOUNS[spec.shape][0]
    register_word = {"low": "low", "mid": "middle", "high": "high"}[spec.register]
    description = with_drums(f"{_a(tc)} {inst.names[0]} {main_shape} in a {register_word} register, "
                             f"{key}, {bpm} bpm")
    candidates = [
        f"{name()}, {reg_a()}, {t()} and {m()}, {key}" + (f", with {_a(drums)}" if drums else ""),
        with_drums(f"solo {name()} playing {_a(shape())} in {skey} at {bpm} BPM"),
        f"{_a(m())} {shape()} on {name()}, {reg_a()}, {tp()}" + (f", {drums}" if drums else ""),
        with_drums(f"{key} {name()} phrase, {SHAPE_ADJ[spec.shape]}, around {bpm} beats per minute"),
        f"{reg_a()} {name()} notes, {SHAPE_ADJ[spec.shape]}, {m()} mood" + (f", {dyn}" if dyn else ""),
        "; ".join([name(), shape(), key, f"{bpm} bpm", t(), f"{spec.register} register"]
                  + ([f"drums: {drums}"] if drums else [])),
        with_drums(f"{t()}, {m()} {name()} {shape()} in {reg_p()}, key of {skey}"),
        f"{FAMILY_WORDS[inst.family]} music: {_a(name())} {shape()}, {t()}, {key}"
        + (f" with {drums}" if drums else ""),
    ]
    if dyn:
        candidates.append(with_drums(f"{name()}, {dyn}, {_a(shape())} in {key}, {bpm} bpm"))
    keywords = [inst.names[0], inst.family, f"{spec.register} register", tc, MOODS[(spec.mode, tc)][0], key,
                spec.mode, spec.shape] + (["drums", DRUM_STYLES_BY_KEY[spec.drums].names[0]] if drums else [])
    return _finish(description, candidates, keywords, rng)


def _describe_drums(spec: ClipSpec, tc: str, rng) -> dict:
    style = DRUM_STYLES_BY_KEY[spec.drums]
    kit, bpm = KIT_NAMES[spec.kit], spec.tempo_bpm
    d = lambda: _pick(rng, style.names)  # noqa: E731
    t = lambda: _pick(rng, TEMPO_WORDS[tc])  # noqa: E731
    dyn = _pick(rng, DYNAMIC_PHRASES[spec.dynamics])
    description = f"{_a(tc)} {style.names[0]} on a {kit}, {bpm} bpm"
    candidates = [
        f"{_a(t())} {d()} at {bpm} bpm",
        f"drums: {d()}, {bpm} bpm, {kit}",
        f"{kit} playing {_a(d())}",
        f"{t()} {d()}, {kit}" + (f", {dyn}" if dyn else ""),
        f"solo drums, {d()}, {_pick(rng, TEMPO_PHRASES[tc])}",
        f"percussion loop: {d()}, {bpm} beats per minute",
        f"{_a(d())} with no other instruments, {t()}",
    ]
    keywords = ["drums", style.names[0], kit, tc, "percussion"]
    return _finish(description, candidates, keywords, rng)


def _finish(description: str, candidates: list[str], keywords: list[str], rng) -> dict:
    seen, captions = {description.lower()}, [description]
    for i in rng.permutation(len(candidates)):
        c = " ".join(candidates[int(i)].split())
        if c.lower() not in seen and len(captions) < N_CAPTIONS:
            seen.add(c.lower())
            captions.append(c)
    return {"description": description, "captions": captions, "keywords": list(dict.fromkeys(keywords))}

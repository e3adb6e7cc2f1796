"""Measured captions: attribute words that DSP measurements show to be true of a clip, in varied phrasings.

A clip's name-derived description says *what* it is ("sword attack"); this module adds *how it sounds*,
but only what :mod:`foley.analyzers` measures confidently: each word has a threshold on one side of a
measurement, chosen on the procedural corpus whose ground truth is known (``bench/caption_agreement.py``
prints each word's precision there; docs/data.md has the table), and the middle stays unlabelled.

    measure_file(path) -> [measurements per analysed window]
    attribute_words(measurements, duration) -> {"brightness": "bright", "pitch": "falling", ...}
    phrase_variants(description, words, rng, n) -> ["a short bright sword attack", ...]
    caption_manifest(manifest, output, variants=4) -> adds ``captions`` variants, ``measured``, ``measured_words``

Clips up to :data:`WHOLE_MAX_SECONDS` are measured whole. Longer ones (music tracks, ambience loops) are
measured on :data:`EXCERPTS` excerpts and get only the steady-state words (brightness, texture, rate)
that all excerpts agree on, plus "long": a training crop of a long clip need not show the clip's overall
pitch glide, fade or pan. Phrases come from the procedural corpus' phrase banks
(:data:`foley.data.synth.captions.PHRASES`), so one word means one thing across corpora, and never use the
control test's held-out words (:data:`foley.data.synth.control.HELDOUT_PHRASES`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..analyzers import ANALYZERS, pitch_track
from ..audio import Audio
from ..errors import AudioError, ManifestError
from .synth.captions import PHRASES

MEASURES = ("spectral_centroid", "pitch_slope", "onset_rate", "spectral_flatness", "stereo_direction",
            "stereo_motion", "impulsiveness", "loudness_trend")
WHOLE_MAX_SECONDS = 12.0     # longer clips are analysed in excerpts
EXCERPT_SECONDS = 8.0
EXCERPTS = 3
SOUNDING_FRAME = 0.020       # s; "sounding" = frames within SOUNDING_DB of the loudest
SOUNDING_DB = 20.0

# Thresholds, chosen on the procedural corpus (corpora/synth, 6,000 clips of 4 s; see docs/data.md).
SHORT_FILE_SECONDS = 1.0     # a file this short is "short"
SHORT_SOUNDING_SECONDS = 0.5  # ... as is one event sounding for at most this long
LONG_SECONDS = 10.0          # a file this long (and sounding for at least half of it) is "long"
DEEP_HZ = 200.0              # centroid below: "deep"
DARK_HZ = 400.0              # centroid DEEP_HZ..DARK_HZ: "dark"
BRIGHT_HZ = 3000.0           # centroid above: "bright"
GLIDE_STEP_ST = 1.5          # each third of the voiced frames this many semitones above (below) the last
GLIDE_TOTAL_ST = 3.0         # ... and this far from the first third overall: "rising" ("falling")
GLIDE_VOICED_SECONDS = 1.0   # ... over at least this much voiced sound
FADE_DB_PER_S = 5.0          # loudness trend beyond -+ this, over the clip and over its sounding span
                             # (see sounding_trend): "fading out" / "getting louder"
FADE_SOUNDING_SECONDS = 0.6  # a fade must last (a single short hit decays, it does not "fade out")
FADE_MIN_SPAN = 0.15         # s; the trend of the sounding span is measured when it is twice this long
RAPID_PER_S = 6.0            # onsets per second from here: "rapid"
REPEATED_PER_S = (1.0, 3.0)  # onsets per second in this range, and at least REPEATED_MIN onsets: "repeated"
REPEATED_MIN = 3
NOISY_FLATNESS = 0.1         # spectral flatness from here: "noisy"
TONAL_FLATNESS = 0.001       # below, with TONAL_VOICED of the sounding time voiced: "tonal"
TONAL_VOICED = 0.8
TONAL_MIN_VOICED = 0.5       # s; and at least this much voiced sound (a wood knock's ringing tail is not a tone)
TONAL_MIN_SOUNDING = 0.2     # s; of a sound lasting at least this long
PAN_DB_PER_S = 5.0           # level-difference slope beyond -+ this, with
PAN_LINEARITY = 0.9          # ... a straight-line sweep (see _linearity): "moving from left to right" ...
HIT_IMPULSIVENESS = 0.9      # energy share of the loudest 5 % of 10 ms frames from here, with
HIT_MAX_ONSETS = 2           # ... at most this many onsets: "a sharp hit"

GROUPS = ("length", "attack", "rate", "brightness", "texture", "pitch", "loudness", "motion")
STEADY_GROUPS = ("brightness", "texture", "rate")  # the groups long clips can get, from agreeing excerpts
WORDS = {"length": ("short", "long"), "attack": ("sharp hit",), "rate": ("rapid", "repeated"),
         "brightness": ("deep", "dark", "bright"), "texture": ("noisy", "tonal"), "pitch": ("rising", "falling"),
         "loudness": ("fading out", "getting louder"), "motion": ("left to right", "right to left")}


# --- measuring ---------------------------------------------------------------------------------
def sounding_seconds(audio: Audio) -> float:
    """Seconds of 20 ms frames within 20 dB of the loudest one: how long the sound itself lasts."""
    x = audio.samples.astype(np.float64).mean(axis=0)
    n = max(1, int(round(SOUNDING_FRAME * audio.sample_rate)))
    frames = len(x) // n
    if frames == 0:
        return 0.0
    p = (x[: frames * n].reshape(frames, n) ** 2).mean(axis=1)
    peak = p.max(initial=0.0)
    if peak <= 0:
        return 0.0
    return float(np.count_nonzero(p >= peak * 10 ** (-SOUNDING_DB / 10)) * n / audio.sample_rate)


def sounding_span(audio: Audio) -> tuple[float, float]:
    """(start, end) in seconds of the part from the first to the last 20 ms frame within SOUNDING_DB of the
    loudest one (0, 0 for silence)."""
    x = audio.samples.astype(np.float64).mean(axis=0)
    n = max(1, int(round(SOUNDING_FRAME * audio.sample_rate)))
    frames = len(x) // n
    if frames == 0:
        return 0.0, 0.0
    p = (x[: frames * n].reshape(frames, n) ** 2).mean(axis=1)
    loud = np.flatnonzero(p >= p.max(initial=0.0) * 10 ** (-SOUNDING_DB / 10)) if p.max(initial=0.0) > 0 else []
    if len(loud) == 0:
        return 0.0, 0.0
    return loud[0] * n / audio.sample_rate, (loud[-1] + 1) * n / audio.sample_rate


def sounding_trend(audio: Audio) -> float:
    """:func:`foley.analyzers.loudness_trend` of the sounding span only (dB/s): a phrase that plays at an
    even level and then stops has a steep trend over the whole clip (the silence after it) but none here."""
    start, end = sounding_span(audio)
    if end - start < 2 * FADE_MIN_SPAN:
        return 0.0
    a, b = int(start * audio.sample_rate), int(end * audio.sample_rate)
    return ANALYZERS["loudness_trend"](Audio(audio.samples[:, a:b], audio.sample_rate))


def pitch_thirds(audio: Audio) -> tuple[float, list[float]]:
    """(seconds of voiced frames, median pitch of the first, middle and last third of the voiced frames in
    semitones relative to the first third); the list is empty when fewer than 9 frames are voiced.

    Medians of thirds, not a fitted slope: a fitted line follows the fast pitch drop at the start of every
    thump of a train of thumps, while the thirds of such a clip sit at the same pitch."""
    t, f0, w = pitch_track(audio)
    voiced = np.flatnonzero(w > 0)
    hop = float(t[1] - t[0]) if len(t) > 1 else 0.0
    if len(voiced) < 9:
        return len(voiced) * hop, []
    p = 12.0 * np.log2(f0[voiced])
    m = [float(np.median(part)) for part in np.array_split(p, 3)]
    return len(voiced) * hop, [0.0, m[1] - m[0], m[2] - m[0]]


def measure(audio: Audio) -> dict:
    """The analyzers of MEASURES plus ``seconds``, ``sounding_s``, ``sounding_trend``, ``voiced_s`` and
    ``pitch_thirds``."""
    out: dict = {"seconds": audio.duration, "sounding_s": sounding_seconds(audio)}
    out.update({k: ANALYZERS[k](audio) for k in MEASURES})
    out["sounding_trend"] = sounding_trend(audio)
    out["voiced_s"], thirds = pitch_thirds(audio)
    out = {k: round(float(v), 4) for k, v in out.items()}
    out["pitch_thirds"] = [round(x, 3) for x in thirds]
    return out


def _read(path: str | os.PathLike, start: float = 0.0, seconds: float | None = None) -> Audio:
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            if start:
                f.seek(int(start * f.samplerate))
            data = f.read(-1 if seconds is None else int(seconds * f.samplerate), dtype="float32", always_2d=True)
            rate = f.samplerate
    except (RuntimeError, sf.LibsndfileError, ValueError, TypeError, OSError) as e:
        raise AudioError(f"{path}: cannot read audio ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: no audio at {start:.1f} s")
    return Audio(np.nan_to_num(data.T), rate)


def measure_file(path: str | os.PathLike, duration: float | None = None) -> list[dict]:
    """Measurements of an audio file: one dict (``start`` 0) for a clip up to WHOLE_MAX_SECONDS, else one
    per excerpt of EXCERPT_SECONDS, spread evenly (only those are decoded)."""
    if duration is None:
        from ..audio import info

        duration = info(path)["duration"]
    if duration <= WHOLE_MAX_SECONDS:
        return [{"start": 0.0, **measure(_read(path))}]
    out = []
    for i in range(EXCERPTS):
        start = round((duration - EXCERPT_SECONDS) * (i + 0.5) / EXCERPTS, 3)
        out.append({"start": start, **measure(_read(path, start, EXCERPT_SECONDS))})
    return out


# --- words -------------------------------------------------------------------------------------
def _onsets(m: dict) -> float:
    return m["onset_rate"] * m["seconds"]


def _linearity(m: dict) -> float:
    """|slope| x duration / (sqrt(12) x spread) of the level difference: 1 for a straight sweep across the
    clip, near 0 for back-and-forth movement (the spread of a straight line is its span / sqrt(12))."""
    if m["stereo_motion"] <= 0:
        return 0.0
    return abs(m["stereo_direction"]) * m["seconds"] / (math.sqrt(12) * m["stereo_motion"])


def _steady_words(m: dict) -> dict[str, str]:
    words = {}
    c = m["spectral_centroid"]
    if 0 < c < DEEP_HZ:
        words["brightness"] = "deep"
    elif DEEP_HZ <= c < DARK_HZ:
        words["brightness"] = "dark"
    elif c >= BRIGHT_HZ:
        words["brightness"] = "bright"
    flat, sounding = m["spectral_flatness"], m["sounding_s"]
    if flat >= NOISY_FLATNESS:
        words["texture"] = "noisy"
    elif (sounding >= TONAL_MIN_SOUNDING and flat < TONAL_FLATNESS
          and m["voiced_s"] >= max(TONAL_VOICED * sounding, TONAL_MIN_VOICED)):
        words["texture"] = "tonal"
    rate = m["onset_rate"]
    if rate >= RAPID_PER_S:
        words["rate"] = "rapid"
    elif REPEATED_PER_S[0] <= rate < REPEATED_PER_S[1] and _onsets(m) >= REPEATED_MIN:
        words["rate"] = "repeated"
    return words


def _whole_clip_words(m: dict) -> dict[str, str]:
    words = _steady_words(m)
    onsets, sounding = _onsets(m), m["sounding_s"]
    if m["seconds"] <= SHORT_FILE_SECONDS or (0 < sounding <= SHORT_SOUNDING_SECONDS and onsets <= 1.5):
        words["length"] = "short"
    elif m["seconds"] >= LONG_SECONDS and sounding >= 0.5 * m["seconds"]:
        words["length"] = "long"
    if m["impulsiveness"] >= HIT_IMPULSIVENESS and onsets <= HIT_MAX_ONSETS + 0.5:
        words["attack"] = "sharp hit"
    thirds = m.get("pitch_thirds") or []
    if len(thirds) == 3 and m["voiced_s"] >= GLIDE_VOICED_SECONDS:
        steps = (thirds[1] - thirds[0], thirds[2] - thirds[1])
        if min(steps) >= GLIDE_STEP_ST and thirds[2] >= GLIDE_TOTAL_ST:
            words["pitch"] = "rising"
        elif max(steps) <= -GLIDE_STEP_ST and thirds[2] <= -GLIDE_TOTAL_ST:
            words["pitch"] = "falling"
    trend, inner = m["loudness_trend"], m.get("sounding_trend", 0.0)  # the clip's trend, and its sounding span's
    if trend <= -FADE_DB_PER_S and inner <= -FADE_DB_PER_S and sounding >= FADE_SOUNDING_SECONDS:
        words["loudness"] = "fading out"
    elif trend >= FADE_DB_PER_S and inner >= FADE_DB_PER_S:
        words["loudness"] = "getting louder"
    if abs(m["stereo_direction"]) >= PAN_DB_PER_S and _linearity(m) >= PAN_LINEARITY:
        words["motion"] = "left to right" if m["stereo_direction"] > 0 else "right to left"
    return {g: words[g] for g in GROUPS if g in words}


def attribute_words(measurements: list[dict], duration: float | None = None) -> dict[str, str]:
    """{group: word} that the measurements support (groups in GROUPS order; empty when nothing is sure).

    One measurement (a whole clip): every group. Several (excerpts of a long clip): the STEADY_GROUPS words
    that every excerpt gives, plus "long" when the clip lasts LONG_SECONDS and every excerpt is sounding
    for at least half of its length."""
    if not measurements:
        return {}
    if len(measurements) == 1 and measurements[0].get("start", 0.0) == 0.0 and (
            duration is None or duration <= WHOLE_MAX_SECONDS + 1e-6):
        return _whole_clip_words(measurements[0])
    each = [_steady_words(m) for m in measurements]
    words = {g: each[0][g] for g in STEADY_GROUPS if g in each[0] and all(e.get(g) == each[0][g] for e in each)}
    if (duration or 0) >= LONG_SECONDS and all(m["sounding_s"] >= 0.5 * m["seconds"] for m in measurements):
        words["length"] = "long"
    return {g: words[g] for g in GROUPS if g in words}


# --- ground truth of the procedural corpus ------------------------------------------------------
# Recipes whose texture is itself a train of events (what "rapid"/"repeated" hear even at rate "steady").
EVENT_TEXTURES = {"crackle", "rain", "granular", "cricket", "glitch"}

TRUTH: dict[str, Callable[[dict], bool]] = {
    "short": lambda a: a["rate"] == "single" or a["envelope"] == "hit",
    "sharp hit": lambda a: a["rate"] == "single" or a["envelope"] == "hit",
    "deep": lambda a: a["register"] in ("deep", "low"),
    "dark": lambda a: a["register"] in ("deep", "low") or a["brightness"] == "dark",
    "bright": lambda a: a["register"] == "high" or a["brightness"] == "bright",
    "rising": lambda a: a["pitch"] == "rising",
    "falling": lambda a: a["pitch"] == "falling",
    "fading out": lambda a: a["envelope"] in ("fade_out", "decay"),
    "getting louder": lambda a: a["envelope"] == "fade_in",
    "rapid": lambda a: a["rate"] == "rapid" or (a["rate"] == "steady" and (a["recipe"] in EVENT_TEXTURES
                                                                            or bool(a.get("tremolo")))),
    "repeated": lambda a: a["rate"] in ("slow", "rapid") or (a["rate"] == "steady" and (
        a["recipe"] in EVENT_TEXTURES or bool(a.get("tremolo")))),
    "noisy": lambda a: a["texture"] == "noisy",
    "tonal": lambda a: a["texture"] == "tonal",
    "left to right": lambda a: a["motion"] == "left_to_right",
    "right to left": lambda a: a["motion"] == "right_to_left",
}
"""word -> does a procedural clip's ground truth (its manifest ``attributes``) make the word true?
("long" has no rule: every procedural clip lasts 4 s.)"""


def has_synth_truth(attributes: dict | None) -> bool:
    """Does a manifest line carry the procedural corpus' ground truth (so TRUTH applies)?"""
    return bool(attributes) and {"recipe", "register", "rate", "envelope", "motion", "texture"} <= set(attributes)


def agrees(word: str, attributes: dict) -> bool | None:
    """TRUTH[word] on a procedural clip's attributes; None for a word without a rule."""
    rule = TRUTH.get(word)
    return None if rule is None else bool(rule(attributes))


# --- phrasing ----------------------------------------------------------------------------------
def _bank(key: tuple[str, object], drop: tuple[str, ...] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    adjectives, clauses = PHRASES[key]
    return tuple(a for a in adjectives if a not in drop), tuple(c for c in clauses if c not in drop)


# word -> (adjectives said before the noun, clauses said after it). The procedural corpus' banks where
# they mean the same (minus phrases that promise more than the measurement: "about once or twice a
# second", "sharp" for bright, which "a sharp hit" uses), plus a few of ours.
BANKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "short": (("short", "brief"), ("lasting only a moment", "over in an instant")),
    "long": (("long", "lengthy"), ("lasting a long time", "going on for a long time")),
    "sharp hit": (("sharp", "percussive", "punchy"), ("with a sharp attack", "as a single sharp hit")),
    "rapid": _bank(("rate", "rapid"), drop=("quick",)),  # "a quick sound" would say short, not rapid
    "repeated": (("repeated", "repeating", "recurring"), ("repeated several times", "repeating a few times a second",
                                                          "over and over")),
    "deep": _bank(("register", "deep")),
    "dark": _bank(("brightness", "dark")),
    "bright": _bank(("brightness", "bright"), drop=("sharp",)),
    "noisy": _bank(("texture", "noisy")),
    "tonal": (("tonal", "pitched"), ("with a clear pitch", "clearly pitched")),
    "rising": _bank(("pitch", "rising")),
    "falling": _bank(("pitch", "falling")),
    "fading out": (("fading",), _bank(("envelope", "fade_out"))[1]),
    "getting louder": (("growing", "building"), _bank(("envelope", "fade_in"))[1]),
    "left to right": _bank(("motion", "left_to_right")),
    "right to left": _bank(("motion", "right_to_left")),
}
# Templates of a variant; {adj}: adjectives ("short, bright"), {clauses}: clauses joined with "and",
# {words}: the plain words, {base}: the description, {np}: the description without its leading article
# (noun templates only for a description that is a lower-case noun phrase: "sword attack", "a voice ...").
NOUN_TEMPLATES = ("{article} {adj} {np}", "{article} {adj} {np}, {clauses}", "the sound of {article} {adj} {np}",
                  "the sound of {np}, {clauses}", "{np}, {adj}", "{adj} {np}")
ANY_TEMPLATES = ("{base}, {clauses}", "{base} ({words})", "{base}; {words}")
NO_COLON_TEMPLATES = ("{adj} sound: {base}",)


def _is_noun_phrase(text: str) -> bool:
    """Can adjectives go in front ("sword attack", "a voice saying ...")? Not for sentences or "x: y"."""
    return not any(c in text for c in ":;.!?") and len(text.split()) <= 14 and not text[:1].isupper()


def _article(first_word: str) -> str:
    return "an" if first_word[:1].lower() in "aeiou" else "a"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def phrase_variants(description: str, words: dict[str, str], rng: np.random.Generator, n: int = 4) -> list[str]:
    """``n`` (or fewer, when they coincide) captions that say ``description`` plus some of ``words``.

    Each variant picks a non-empty subset of the words (all of them half of the time), one phrase per word
    from BANKS and one template; the same generator state gives the same variants."""
    if not words or n <= 0 or not description.strip():
        return []
    base = description.strip().rstrip(".")
    noun = _is_noun_phrase(base)
    first, _, rest = base.partition(" ")
    np_ = rest if first.lower() in ("a", "an", "the") and rest else base
    out: list[str] = []
    values = [words[g] for g in GROUPS if g in words]
    for _ in range(4 * n):
        if len(out) == n:
            break
        k = len(values) if rng.random() < 0.5 else int(rng.integers(1, len(values) + 1))
        chosen = sorted(rng.choice(len(values), size=k, replace=False))
        picked = [values[i] for i in chosen]
        adjs, clauses = [], []
        for w in picked:
            a, c = BANKS[w]
            use_clause = not a or (c and rng.random() < 0.5)
            (clauses if use_clause else adjs).append(str(rng.choice(c if use_clause else a)))
        all_adj = [str(rng.choice(BANKS[w][0] or BANKS[w][1])) for w in picked]
        templates = ANY_TEMPLATES + (NOUN_TEMPLATES if noun else ()) + (() if ":" in base else NO_COLON_TEMPLATES)
        t = str(rng.choice(templates))
        if "{clauses}" in t and not clauses:
            clauses = [str(rng.choice(BANKS[w][1] or BANKS[w][0])) for w in picked]
            adjs = []
        if "{adj}" in t and "{clauses}" not in t:
            adjs, clauses = all_adj, []
        adj = ", ".join(adjs) if adjs else ""
        fill = {"adj": adj, "clauses": _join(clauses) if clauses else "", "words": ", ".join(picked),
                "base": base, "np": np_,
                "article": _article(adj or np_)}
        text = " ".join(t.format(**fill).split()).replace(" ,", ",").strip(" ,")
        if "{adj}" in t and not adj:
            continue
        if text and text not in out and text != base:
            out.append(text)
    return out


def clip_seed(seed: int, key: str) -> np.random.Generator:
    """The variants' generator of one clip: from the seed and the clip's path, so neither the order of the
    manifest nor the other clips change a clip's captions."""
    digest = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big")
    return np.random.default_rng([seed, digest])


# --- a manifest --------------------------------------------------------------------------------
@dataclass
class CaptionReport:
    clips: int = 0
    captioned: int = 0  # clips that got at least one word
    failed: list[str] = field(default_factory=list)  # "path: reason" of clips that could not be measured
    words: Counter = field(default_factory=Counter)  # word -> clips
    vetoed: Counter = field(default_factory=Counter)  # word -> procedural clips whose ground truth contradicts it
    agreement: dict[str, tuple[int, int]] = field(default_factory=dict)  # word -> (true, judged) on procedural clips


def _measure_row(args: tuple[str, float]) -> tuple[list[dict] | None, str | None]:
    import warnings

    path, duration = args
    try:
        with warnings.catch_warnings():  # librosa warns that a clip shorter than its frame is padded: expected
            warnings.simplefilter("ignore", UserWarning)
            return measure_file(path, duration), None
    except (AudioError, ValueError, RuntimeError) as e:
        return None, str(e)


def caption_rows(rows: list[dict], base_dir: Path, variants: int = 4, seed: int = 0, jobs: int = 1,
                 on_clip: Callable[[], None] | None = None) -> tuple[list[dict], CaptionReport]:
    """Caption manifest rows (dicts, paths relative to ``base_dir``); returns new rows and the counts.

    Each row keeps every field; it gains ``measured`` (the measurements), ``measured_words`` ({group:
    word}) and, appended to ``captions``, up to ``variants`` phrasings of its description with those
    words. On procedural rows (with ground-truth attributes) a word the truth contradicts is dropped and
    counted in ``vetoed``. A clip that cannot be read keeps its captions and gets no measurements."""
    report = CaptionReport(clips=len(rows))
    tasks = []
    for r in rows:
        p = Path(os.path.expanduser(r["path"]))
        tasks.append((str(p if p.is_absolute() else base_dir / p), float(r["duration"])))
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        from ..numba_warm import warm

        warm()  # the workers share librosa's numba cache: compiled once, before they start (numba#10128)
        with ProcessPoolExecutor(jobs) as ex:
            results = []
            for res in ex.map(_measure_row, tasks, chunksize=8):
                results.append(res)
                if on_clip:
                    on_clip()
    else:
        results = []
        for t in tasks:
            results.append(_measure_row(t))
            if on_clip:
                on_clip()
    out = []
    for r, (measured, error) in zip(rows, results, strict=True):
        row = dict(r)
        if measured is None:
            report.failed.append(f"{r['path']}: {error}")
            out.append(row)
            continue
        words = attribute_words(measured, float(r["duration"]))
        attrs = r.get("attributes") if r.get("source") == "synth" else None
        if attrs is not None and has_synth_truth(attrs):
            for g, w in list(words.items()):
                verdict = agrees(w, attrs)
                if verdict is not None:
                    true, judged = report.agreement.get(w, (0, 0))
                    report.agreement[w] = (true + verdict, judged + 1)
                if verdict is False:
                    report.vetoed[w] += 1
                    del words[g]
        report.words.update(words.values())
        report.captioned += bool(words)
        old = [c for c in (r.get("captions") or []) if isinstance(c, str)]
        new = phrase_variants(r.get("description") or (old[0] if old else ""), words,
                              clip_seed(seed, str(r["path"])), variants)
        row["captions"] = list(dict.fromkeys(old + new))
        row["measured"] = measured
        row["measured_words"] = words
        out.append(row)
    return out, report


def read_rows(path: str | os.PathLike) -> list[dict]:
    """A manifest's lines as dicts, unchanged (validated as manifest clips)."""
    from .manifest import read_manifest

    return [c.to_json() for c in read_manifest(path)]


def rebase(rows: Iterable[dict], src_dir: Path, dst_dir: Path) -> list[dict]:
    """Rows whose relative paths resolve from ``dst_dir`` as they did from ``src_dir``."""
    if src_dir.resolve() == dst_dir.resolve():
        return list(rows)
    out = []
    for r in rows:
        p = Path(os.path.expanduser(r["path"]))
        if not p.is_absolute():
            r = {**r, "path": os.path.relpath((src_dir / p).resolve(), dst_dir.resolve())}
        out.append(r)
    return out


def caption_manifest(manifest: str | os.PathLike, output: str | os.PathLike, variants: int = 4, seed: int = 0,
                     jobs: int = 1, on_clip: Callable[[], None] | None = None,
                     on_start: Callable[[int], None] | None = None) -> CaptionReport:
    """Write ``output``: ``manifest`` with measured attribute words and caption variants (atomic write;
    relative paths rewritten when ``output`` is in another folder)."""
    from .manifest import write_manifest

    manifest, output = Path(manifest), Path(output)
    if output.resolve() == manifest.resolve():
        raise ManifestError(f"{output}: would overwrite the input manifest; choose another output")
    rows = read_rows(manifest)
    if on_start:
        on_start(len(rows))
    out, report = caption_rows(rows, manifest.resolve().parent, variants, seed, jobs, on_clip)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(output, rebase(out, manifest.resolve().parent, output.resolve().parent))
    return report

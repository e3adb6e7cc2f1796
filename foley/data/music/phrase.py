"""Clip plans and the notes they play: a `ClipSpec` is the ground truth; `phrase_notes` realises it.

Times are in beats (quarter notes) at the spec's tempo; a clip starts at beat 0 and lasts
``duration`` seconds. Randomness comes only from ``numpy.random.default_rng([seed, index])`` so a
clip is the same whatever the number of clips or workers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .instruments import (
    DRUM_STYLES,
    DRUM_STYLES_BY_KEY,
    DYNAMICS,
    INSTRUMENTS,
    INSTRUMENTS_BY_KEY,
    REGISTERS,
    SCALES,
    SHAPES,
    TEMPO_RANGE,
    Instrument,
)

DRUM_CHANNEL = 9  # General MIDI channel 10
DRUM_KITS = {"standard": 0, "room": 8, "power": 16, "electronic": 24, "TR-808": 25, "jazz": 32, "brush": 40}
MIN_NOTES, MAX_NOTES = 4, 12  # notes per linear shape (ascending, arch, ...)
# Chord progressions in scale degrees (0 = tonic): I-V-vi-IV in major, i-VI-III-VII in minor.
PROGRESSIONS = {"major": (0, 4, 5, 3), "minor": (0, 5, 2, 6)}


@dataclass(frozen=True)
class ClipSpec:
    """Everything that defines one clip (the manifest's ``attributes`` are derived from it).

    ``instrument`` is None for a drums-only clip, ``drums`` None for a clip without drums; the
    melodic fields (register, root, mode, shape) are None exactly when ``instrument`` is None.
    """

    index: int
    seed: int
    duration: float  # seconds
    tempo_bpm: int
    dynamics: str
    instrument: str | None = None
    register: str | None = None
    root: int | None = None  # pitch class 0-11, 0 = C
    mode: str | None = None
    shape: str | None = None
    drums: str | None = None
    kit: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Note:
    start: float  # beats
    length: float  # beats
    pitch: int  # MIDI note number
    velocity: int  # 1-127
    channel: int


def plan_clip(seed: int, index: int, duration: float) -> ClipSpec:
    """The ``index``-th clip of the corpus for ``seed``: instrument, key, tempo, shape, drums, ..."""
    rng = np.random.default_rng([seed, index])
    kind = rng.choice(["melodic", "melodic+drums", "drums"], p=[0.6, 0.25, 0.15])
    tempo = int(rng.integers(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1))
    dynamics = str(rng.choice(list(DYNAMICS)))
    fields: dict = {}
    if kind != "drums":
        inst = INSTRUMENTS[int(rng.integers(len(INSTRUMENTS)))]
        fields = dict(instrument=inst.key, register=str(rng.choice(REGISTERS)), root=int(rng.integers(12)),
                      mode=str(rng.choice(list(SCALES))), shape=str(rng.choice(allowed_shapes(inst))))
    if kind != "melodic":
        fields["drums"] = DRUM_STYLES[int(rng.integers(len(DRUM_STYLES)))].key
        fields["kit"] = str(rng.choice(list(DRUM_KITS))) if kind == "drums" else "standard"
    return ClipSpec(index=index, seed=seed, duration=float(duration), tempo_bpm=tempo, dynamics=dynamics,
                    **fields)


def plan_clips(n: int, seed: int, duration: float) -> list[ClipSpec]:
    return [plan_clip(seed, i, duration) for i in range(n)]


MONOPHONIC = {"trumpet", "trombone", "tuba", "french_horn", "alto_sax", "tenor_sax", "oboe", "bassoon", "clarinet",
              "flute", "piccolo", "pan_flute", "violin", "viola", "cello", "contrabass", "timpani", "harmonica"}


def allowed_shapes(inst: Instrument) -> tuple[str, ...]:
    """Basses and single-voice instruments play lines, not chords; a held chord needs a sustaining one."""
    shapes = SHAPES
    if inst.family == "bass" or inst.key in MONOPHONIC:
        shapes = tuple(s for s in shapes if s not in ("chords", "sustained"))
    if not inst.sustained:
        shapes = tuple(s for s in shapes if s != "sustained")
    return shapes


def register_window(inst: Instrument, register: str) -> tuple[int, int]:
    """MIDI note range [lo, hi] of a register: a third of the instrument's range, at least a fifth wide."""
    k = REGISTERS.index(register)
    span = inst.high - inst.low
    lo, hi = inst.low + span * k / 3, inst.low + span * (k + 1) / 3
    while hi - lo < 7:
        lo, hi = max(inst.low, lo - 1), min(inst.high, hi + 1)
    return int(round(lo)), int(round(hi))


def scale_notes(root: int, mode: str, lo: int, hi: int) -> list[int]:
    return [n for n in range(lo, hi + 1) if (n - root) % 12 in SCALES[mode]]


def phrase_notes(spec: ClipSpec) -> list[Note]:
    """All notes of the clip (melodic part on channel 0, drums on channel 9), sorted by start."""
    rng = np.random.default_rng([spec.seed, spec.index, 1])
    beats_total = spec.duration * spec.tempo_bpm / 60
    notes: list[Note] = []
    if spec.instrument is not None:
        release = min(0.8, 0.2 * spec.duration)  # seconds left at the end for the last note to ring
        beats = (spec.duration - release) * spec.tempo_bpm / 60
        notes += _melodic(spec, INSTRUMENTS_BY_KEY[spec.instrument], beats, rng)
    if spec.drums is not None:
        notes += _drums(spec, beats_total - 0.25, rng)
    return sorted(notes, key=lambda n: (n.start, n.channel, n.pitch))


def _velocity(spec: ClipSpec, rng, accent: bool = False, scale: float = 1.0) -> int:
    v = DYNAMICS[spec.dynamics] * scale + rng.normal(0, 4) + (8 if accent else 0)
    return int(np.clip(round(v), 20, 127))


NOTE_VALUES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)  # note lengths in beats: eighth to whole note


def _note_grid(beats: float, count: int) -> tuple[int, float]:
    """Fit ``count`` equal notes into ``beats`` with the longest note value that fits: (count, length)."""
    count = max(2, min(count, int(beats / NOTE_VALUES[0])))
    return count, max([v for v in NOTE_VALUES if v * count <= beats], default=NOTE_VALUES[0])


def _melodic(spec: ClipSpec, inst: Instrument, beats: float, rng) -> list[Note]:
    lo, hi = register_window(inst, spec.register)
    pool = scale_notes(spec.root, spec.mode, lo, hi)
    legato = 0.95 if inst.sustained else 0.9
    shape = spec.shape
    if shape in ("chords", "sustained", "arpeggio"):
        return _harmonic(spec, inst, pool, beats, rng)
    if shape == "repeated":
        pitch = min(pool, key=lambda p: (abs(p - (lo + hi) / 2), p))
        count, length = _note_grid(beats, int(beats / (0.5 if beats < 16 else 1.0)))
        return [Note(i * length, length * 0.8, pitch, _velocity(spec, rng, i % 2 == 0), 0)
                for i in range(count)]
    count = int(np.clip(np.floor(beats), MIN_NOTES, MAX_NOTES))
    count, length = _note_grid(beats, min(count, len(pool)) if shape in ("ascending", "descending") else count)
    idx = _contour(shape, count, len(pool), rng)
    return [Note(i * length, length * legato, pool[j], _velocity(spec, rng, i == 0), 0)
            for i, j in enumerate(idx)]


def _contour(shape: str, count: int, size: int, rng) -> list[int]:
    """Indices into a scale pool of ``size`` notes tracing the shape over ``count`` notes."""
    if shape == "ascending":
        start = (size - count) // 2
        return [start + i for i in range(count)]
    if shape == "descending":
        return _contour("ascending", count, size, rng)[::-1]
    if shape in ("arch", "valley"):
        up = (count + 1) // 2
        height = min(up - 1, size - 1)
        base = (size - 1 - height) // 2
        tri = [base + min(i, count - 1 - i) * height // max(1, up - 1) for i in range(count)]
        return tri if shape == "arch" else [2 * base + height - t for t in tri]
    # "melody": a random walk of small steps that ends on a stable note
    j = int(rng.integers(size // 4, max(size // 4 + 1, 3 * size // 4)))
    out = [j]
    for _ in range(count - 1):
        step = int(rng.choice([-2, -1, 1, 2, 3, -3], p=[0.2, 0.3, 0.3, 0.12, 0.04, 0.04]))
        j = j + step if 0 <= j + step < size else j - step
        out.append(int(np.clip(j, 0, size - 1)))
    return out


def _harmonic(spec: ClipSpec, inst: Instrument, pool: list[int], beats: float, rng) -> list[Note]:
    """Chords, held chords and arpeggios over the mode's progression, voiced in the register."""
    full = scale_notes(spec.root, spec.mode, inst.low, inst.high)
    base = full.index(pool[0])
    degrees = PROGRESSIONS[spec.mode]

    def chord(degree: int, size: int) -> list[int]:
        steps = [0, 2, 4, 7][:size]
        return [full[min(base + degree + s, len(full) - 1)] for s in steps]

    notes: list[Note] = []
    if spec.shape == "sustained":
        n_chords = 2 if beats >= 8 else 1
        length = beats / n_chords
        for c, d in enumerate(degrees[:n_chords]):
            notes += [Note(c * length, length * 0.97, p, _velocity(spec, rng, scale=0.9), 0)
                      for p in chord(d, 3)]
    elif spec.shape == "chords":
        per = 4.0 if beats >= 12 else (2.0 if beats >= 4 else 1.0)
        for c in range(max(1, int(beats // per))):
            d = degrees[c % len(degrees)]
            notes += [Note(c * per, per * 0.9, p, _velocity(spec, rng, scale=0.85), 0) for p in chord(d, 3)]
    else:  # arpeggio: root, third, fifth, octave, eighth notes, one chord per four notes
        count, length = _note_grid(beats, int(beats / 0.5))
        for i in range(count):
            tones = chord(degrees[(i // 4) % len(degrees)], 4)
            ring = length * (0.95 if inst.key in MONOPHONIC else 1.5)  # let chord tones overlap where possible
            notes.append(Note(i * length, ring, tones[i % 4], _velocity(spec, rng, i % 4 == 0), 0))
    return notes


def _drums(spec: ClipSpec, beats: float, rng) -> list[Note]:
    style = DRUM_STYLES_BY_KEY[spec.drums]
    step_beats = 4.0 / style.steps
    notes = []
    bar = 0
    while bar * 4.0 < beats:
        for step, key, vel in style.hits:
            t = bar * 4.0 + step * step_beats
            if t < beats:
                scale = vel * (0.85 if spec.instrument is not None else 1.0)
                notes.append(Note(t, step_beats, key, _velocity(spec, rng, step == 0, scale), DRUM_CHANNEL))
        bar += 1
    return notes


def median_pitch(notes: list[Note]) -> float | None:
    """Median MIDI pitch of the melodic notes (channel 0), None when there are none."""
    pitches = [n.pitch for n in notes if n.channel != DRUM_CHANNEL]
    return float(np.median(pitches)) if pitches else None

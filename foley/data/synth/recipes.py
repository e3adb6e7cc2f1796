"""Recipe registry, attribute vocabularies and the render chain of the procedural corpus.

A clip is described by an attributes dict with fixed vocabularies (the ground truth written to the
manifest) plus the numbers that realise them (``f0_hz``, ``rate_hz``, ...). Rendering is a pure
function of (attributes, random stream, duration, sample rate):

    source (per recipe kind, mono) -> brightness tilt -> loudness contour -> tremolo
    -> stereo motion (constant-power pan) -> space (convolution reverb) -> level

and returns float32 stereo [2, T]. Every frequency is in Hz and every length in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import dsp, sources

CATEGORIES = ("drone", "noise", "glitch", "beep", "impact", "pluck", "bell", "sweep", "insect")
REGISTERS = ("deep", "low", "mid", "high")
PITCHES = ("steady", "rising", "falling", "wobbling", "rise_fall", "none")
RATES = ("steady", "slow", "rapid", "single")
TEXTURES = ("tonal", "noisy")
MOTIONS = ("static", "left_to_right", "right_to_left", "back_and_forth", "wander")
ENVELOPES = ("sustained", "hit", "fade_in", "fade_out", "swell", "decay")
SPACES = ("dry", "reverberant")
BRIGHTNESS = ("dark", "neutral", "bright")
LOUDNESS = ("soft", "medium", "loud")
POSITIONS = ("left", "centre", "right")
VOCABULARY = {"category": CATEGORIES, "register": REGISTERS, "pitch": PITCHES, "rate": RATES,
              "texture": TEXTURES, "motion": MOTIONS, "envelope": ENVELOPES, "tremolo": (False, True),
              "space": SPACES, "brightness": BRIGHTNESS, "loudness": LOUDNESS, "position": POSITIONS}

REGISTER_F0 = {"deep": (32.0, 62.0), "low": (70.0, 140.0), "mid": (160.0, 420.0), "high": (560.0, 1400.0)}
NOISE_CENTRE = {"deep": (60.0, 140.0), "low": (180.0, 450.0), "mid": (600.0, 1600.0), "high": (2400.0, 5000.0)}
RATE_HZ = {"slow": (1.0, 2.5), "rapid": (6.0, 11.0)}
LEVEL_DB = {"soft": -30.0, "medium": -23.0, "loud": -17.0}   # RMS dBFS before the peak ceiling
PEAK_MAX = 0.9
PAN_STATIC = {"left": -0.6, "centre": 0.0, "right": 0.6}

CONTINUOUS_ENVELOPES = ("sustained", "fade_in", "fade_out", "swell")
_ALL_ENVELOPES = CONTINUOUS_ENVELOPES + ("hit", "decay")


@dataclass(frozen=True)
class Recipe:
    """One recipe kind: its source renderer and the attribute values it can take.

    ``events`` kinds render pulses or single hits themselves (rates slow / rapid / single);
    ``pitched`` kinds follow the pitch contour ``f0``; the others get a noise centre frequency.
    ``octave`` shifts the register table (beeps and chimes sit higher than hums).
    """

    name: str
    category: str
    render: Callable[[sources.Ctx], np.ndarray]
    registers: tuple = REGISTERS
    pitches: tuple = ("steady",)
    rates: tuple = ("steady",)
    textures: tuple = ("tonal",)
    envelopes: tuple = CONTINUOUS_ENVELOPES
    tremolo: bool = False
    events: bool = False
    pitched: bool = True
    octave: float = 0.0
    span_st: tuple = (5.0, 12.0)

    def envelopes_for(self, rate: str) -> tuple:
        if rate == "single":
            allowed = ("hit", "decay") if self.events else ("hit",)
        elif rate in ("slow", "rapid"):
            allowed = CONTINUOUS_ENVELOPES
        else:
            allowed = CONTINUOUS_ENVELOPES + ("decay",)
        return tuple(e for e in self.envelopes if e in allowed)

    def default(self, attribute: str):
        """The value a caption may leave unsaid for this kind (its most ordinary value)."""
        if attribute == "pitch":
            return "steady" if "steady" in self.pitches else self.pitches[0]
        if attribute == "rate":
            return self.rates[0]
        if attribute == "texture":
            return self.textures[0]
        if attribute == "register":
            return "mid" if "mid" in self.registers else self.registers[0]
        return {"motion": "static", "position": "centre", "envelope": "sustained", "tremolo": False, "space": "dry",
                "brightness": "neutral", "loudness": "medium"}[attribute]


_DRONE_PITCH = ("steady", "rising", "falling", "wobbling", "rise_fall")
_SUSTAIN_HIT = CONTINUOUS_ENVELOPES + ("decay", "hit")
_R = Recipe
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    _R("hum", "drone", sources.hum, pitches=_DRONE_PITCH, rates=("steady", "single"), textures=TEXTURES,
       envelopes=_SUSTAIN_HIT, tremolo=True),
    _R("drone", "drone", sources.drone, pitches=_DRONE_PITCH, textures=TEXTURES,
       envelopes=CONTINUOUS_ENVELOPES + ("decay",), tremolo=True),
    _R("buzz", "drone", sources.buzz, registers=("low", "mid", "high"), pitches=_DRONE_PITCH,
       rates=("steady", "single"), textures=TEXTURES, envelopes=_SUSTAIN_HIT, tremolo=True),
    _R("hollow", "drone", sources.hollow, pitches=_DRONE_PITCH, textures=TEXTURES, tremolo=True),
    _R("hiss", "noise", sources.hiss, registers=("mid", "high"), pitches=("none",), rates=("steady", "single"),
       textures=("noisy",), envelopes=CONTINUOUS_ENVELOPES + ("hit",), tremolo=True, pitched=False),
    _R("sizzle", "noise", sources.sizzle, registers=("mid", "high"), pitches=("none",), textures=("noisy",),
       tremolo=True, pitched=False),
    _R("crackle", "noise", sources.crackle, registers=("mid", "high"), pitches=("none",), textures=("noisy",),
       pitched=False),
    _R("rumble", "noise", sources.rumble, registers=("deep", "low"), pitches=("none",),
       rates=("steady", "single"), textures=("noisy",), envelopes=CONTINUOUS_ENVELOPES + ("hit",),
       tremolo=True, pitched=False),
    _R("wind", "noise", sources.wind, registers=("low", "mid", "high"), pitches=("none",), textures=("noisy",),
       pitched=False),
    _R("rain", "noise", sources.rain, registers=("mid", "high"), pitches=("none",), textures=("noisy",),
       pitched=False),
    _R("glitch", "glitch", sources.glitch, pitches=("steady", "rising", "falling", "wobbling"),
       rates=("rapid", "slow"), textures=("noisy", "tonal"), events=True, span_st=(12.0, 24.0)),
    _R("granular", "glitch", sources.granular, pitches=("steady", "rising", "falling", "wobbling"),
       textures=TEXTURES, tremolo=True),
    _R("beep", "beep", sources.beep, registers=("low", "mid", "high"), pitches=("steady", "rising", "falling"),
       rates=("slow", "rapid", "single", "steady"), events=True, octave=1.0,
       envelopes=CONTINUOUS_ENVELOPES + ("hit",)),
    _R("alarm", "beep", sources.alarm, registers=("mid", "high"), rates=("rapid", "slow"), events=True,
       octave=1.0),
    _R("siren", "beep", sources.siren, registers=("mid", "high"), pitches=("wobbling", "rising", "falling"),
       octave=1.0, span_st=(5.0, 10.0)),
    _R("metallic", "impact", sources.metallic, registers=("mid", "high"), rates=("single", "slow", "rapid"),
       envelopes=_ALL_ENVELOPES, events=True, octave=0.5),
    _R("wooden", "impact", sources.wooden, registers=("low", "mid", "high"), rates=("single", "slow", "rapid"),
       textures=("noisy",), envelopes=CONTINUOUS_ENVELOPES + ("hit",), events=True, octave=1.0),
    _R("thump", "impact", sources.thump, registers=("deep", "low"), pitches=("none",),
       rates=("single", "slow", "rapid"), envelopes=CONTINUOUS_ENVELOPES + ("hit",), events=True,
       octave=0.5),
    _R("pluck", "pluck", sources.pluck, registers=("low", "mid", "high"), pitches=("steady", "rising", "falling"),
       rates=("single", "slow", "rapid"), envelopes=CONTINUOUS_ENVELOPES + ("hit",), events=True),
    _R("bell", "bell", sources.bell, registers=("low", "mid", "high"), rates=("single", "slow"),
       envelopes=("sustained", "fade_out", "hit", "decay"), events=True, octave=0.5),
    _R("chime", "bell", sources.chime, registers=("mid", "high"), pitches=("steady", "rising", "falling"),
       rates=("single", "slow"), envelopes=("sustained", "fade_out", "hit", "decay"), events=True,
       octave=1.5),
    _R("sweep", "sweep", sources.sweep, pitches=("rising", "falling", "rise_fall"), textures=TEXTURES,
       tremolo=True, span_st=(12.0, 30.0)),
    _R("riser", "sweep", sources.riser, registers=("low", "mid", "high"), pitches=("rising",),
       textures=TEXTURES, envelopes=("fade_in", "swell", "sustained"), span_st=(12.0, 24.0)),
    _R("whoosh", "sweep", sources.whoosh, registers=("low", "mid", "high"), pitches=("rising", "falling"),
       textures=("noisy",), envelopes=("swell", "fade_in", "fade_out"), span_st=(8.0, 18.0)),
    _R("cricket", "insect", sources.cricket, registers=("high",), rates=("slow", "rapid"), events=True,
       octave=2.0),
    _R("swarm", "insect", sources.swarm, registers=("low", "mid", "high"), pitches=("steady", "wobbling")),
    _R("cicada", "insect", sources.cicada, registers=("high",), pitches=("none",), textures=("noisy",),
       pitched=False),
)}


def _choice(rng: np.random.Generator, values, weights=None):
    values = tuple(values)
    if weights is not None:
        p = np.array([weights.get(v, 1.0) for v in values], dtype=np.float64)
        return values[int(rng.choice(len(values), p=p / p.sum()))]
    return values[int(rng.integers(len(values)))]


def _check(recipe: Recipe, key: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"recipe '{recipe.name}': {key}={value!r} is not one of {list(allowed)}")


def sample_attributes(rng: np.random.Generator, recipe: str | None = None, fixed: dict | None = None,
                      canonical: bool = False) -> dict:
    """Draw a full attributes dict (vocabulary values plus the numbers that realise them).

    ``fixed`` pins any attribute; with ``canonical`` the unpinned vocabulary attributes take the
    recipe's ordinary value (static, dry, sustained, ...) instead of a random one, which is what
    minimal pairs and presets need. Raises ValueError for a value the recipe cannot render.
    """
    fixed = dict(fixed or {})
    if recipe is None:
        cat = _choice(rng, CATEGORIES)
        recipe = _choice(rng, [r.name for r in RECIPES.values() if r.category == cat])
    r = RECIPES[recipe]

    def pick(key, allowed, weights=None):
        if key in fixed:
            _check(r, key, fixed[key], allowed)
            return fixed[key]
        if canonical:
            d = r.default(key)
            return d if d in allowed else allowed[0]
        return _choice(rng, allowed, weights)

    a: dict = {"category": r.category, "recipe": r.name}
    a["register"] = pick("register", r.registers)
    a["rate"] = pick("rate", r.rates)
    a["pitch"] = pick("pitch", r.pitches if a["rate"] != "single" else (r.default("pitch"),))  # one hit: no glide
    a["texture"] = pick("texture", r.textures)
    a["envelope"] = pick("envelope", r.envelopes_for(a["rate"]),
                         {"sustained": 2.0, "hit": 2.0, "decay": 1.5})
    can_tremolo = r.tremolo and a["rate"] == "steady" and a["envelope"] in CONTINUOUS_ENVELOPES
    a["tremolo"] = pick("tremolo", (False, True) if can_tremolo else (False,), {False: 2.5})
    a["motion"] = pick("motion", MOTIONS, {"static": 2.5})
    if a["motion"] == "static":
        a["position"] = pick("position", POSITIONS, {"centre": 5.0})
    a["space"] = pick("space", SPACES, {"dry": 1.3})
    a["brightness"] = pick("brightness", BRIGHTNESS, {"neutral": 1.5})
    a["loudness"] = pick("loudness", LOUDNESS, {"medium": 2.0})
    a.update(_numbers(r, a, rng, fixed))
    return a


def _log_uniform(rng, lo, hi) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _numbers(r: Recipe, a: dict, rng: np.random.Generator, fixed: dict) -> dict:
    """The continuous parameters behind the vocabulary values (rounded, so the manifest stays readable)."""
    num: dict = {}
    if r.pitched:
        lo, hi = REGISTER_F0[a["register"]]
        num["f0_hz"] = _log_uniform(rng, lo * 2 ** r.octave, hi * 2 ** r.octave)
    else:
        num["centre_hz"] = _log_uniform(rng, *NOISE_CENTRE[a["register"]])
    if a["pitch"] in ("rising", "falling", "rise_fall"):
        num["pitch_span_st"] = rng.uniform(*r.span_st)
    elif a["pitch"] == "wobbling":
        num["wobble_st"] = rng.uniform(4.0, 9.0) if r.name == "siren" else rng.uniform(0.7, 2.5)
        num["wobble_hz"] = rng.uniform(0.3, 1.2) if r.name == "siren" else rng.uniform(0.5, 4.0)
    if a["rate"] in RATE_HZ:
        num["rate_hz"] = rng.uniform(*RATE_HZ[a["rate"]])
    if a["rate"] == "single":
        num["onset_s"] = rng.uniform(0.05, 0.35)
    if a["tremolo"]:
        num["tremolo_hz"] = rng.uniform(3.5, 9.0)
        num["tremolo_depth"] = rng.uniform(0.5, 0.9)
    if a["motion"] == "back_and_forth":
        num["motion_hz"] = rng.uniform(0.3, 0.8)
    if a["motion"] != "static":
        num["pan_width"] = rng.uniform(0.75, 0.95)
    if a["space"] == "reverberant":
        num["rt60_s"] = rng.uniform(0.9, 2.5)
        num["wet"] = rng.uniform(0.35, 0.7)
    if r.name == "alarm":
        num["interval_ratio"] = float(_choice(rng, (1.0, 2 ** (3 / 12), 2 ** (4 / 12), 2 ** (7 / 12))))
    if r.name == "cricket":
        num["pulse_hz"] = rng.uniform(25.0, 45.0)
    if r.name == "granular":
        num["grain_rate_hz"] = rng.uniform(40.0, 140.0)
    num["level_db"] = LEVEL_DB[a["loudness"]] + rng.uniform(-2.0, 2.0)
    num = {k: round(float(v), 3) for k, v in num.items()}
    num.update({k: v for k, v in fixed.items() if k not in VOCABULARY and k != "recipe"})
    return num


# --- contours ----------------------------------------------------------------------------------
def pitch_contour(a: dict, t: np.ndarray, duration: float) -> np.ndarray:
    """Pitch offset in semitones over time [T] for the attribute ``pitch``."""
    u = t / duration
    span = a.get("pitch_span_st", 0.0)
    p = a["pitch"]
    if p == "rising":
        return span * (u - 0.5)
    if p == "falling":
        return -span * (u - 0.5)
    if p == "rise_fall":
        return span * (0.5 - np.abs(u - 0.5)) * 2 - span / 2
    if p == "wobbling":
        return a["wobble_st"] * np.sin(2 * np.pi * a["wobble_hz"] * t + 1.0)
    return np.zeros_like(t)


def loudness_contour(a: dict, r: Recipe, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Gain over time [T] for the attribute ``envelope`` (events shape their own hits and decays)."""
    t = dsp.times(n, sr)
    d = n / sr
    env = a["envelope"]
    edge = dsp.gate(n, sr, np.array([0.0]), d, 0.02, 0.03)
    if env == "fade_in":
        end = d * rng.uniform(0.8, 1.0)
        return dsp.db_to_amp(-40.0 * (1 - np.clip(t / end, 0, 1))) * edge
    if env == "fade_out":
        hold = d * rng.uniform(0.0, 0.15)
        return dsp.db_to_amp(-40.0 * np.clip((t - hold) / (d - hold), 0, 1)) * edge
    if env == "swell":
        return dsp.db_to_amp(-30.0 * (1 - np.sin(np.pi * t / d))) * edge
    if env in ("hit", "decay") and not r.events:
        onset = a.get("onset_s", 0.05)
        decay = rng.uniform(0.2, 0.5) if env == "hit" else d * rng.uniform(0.9, 1.3)
        return dsp.perc_env(n, sr, onset, 0.005, decay)
    if env == "sustained":
        return edge * dsp.db_to_amp(1.0 * dsp.unit_rms(dsp.lowpass(rng.standard_normal(n), sr, 0.5, 1)))
    return edge


def pan_trajectory(a: dict, t: np.ndarray, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Pan position over time in [-1, 1] (left to right) for the attribute ``motion``."""
    m = a["motion"]
    w = a.get("pan_width", 0.85)
    if m == "static":
        return np.full_like(t, PAN_STATIC[a.get("position", "centre")])
    if m == "left_to_right":
        return -w + 2 * w * t / duration
    if m == "right_to_left":
        return w - 2 * w * t / duration
    if m == "back_and_forth":
        hz = max(a.get("motion_hz", 0.5), 1.0 / duration)
        return w * np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
    low = max(0.08, 0.5 / duration)
    x = sum(np.sin(2 * np.pi * rng.uniform(low, 3 * low) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3))
    lo, hi = x.min(), x.max()
    return w * (2 * (x - lo) / max(hi - lo, 1e-9) - 1)


def _events(a: dict, r: Recipe, duration: float, rng: np.random.Generator) -> np.ndarray:
    if not r.events or a["rate"] == "steady":
        return np.zeros(0)
    if a["rate"] == "single":
        return np.array([a["onset_s"]])
    jitter = 0.2 if r.name == "glitch" else 0.02
    return dsp.event_times(duration, a["rate_hz"], rng, jitter=jitter)


def _tilt(x: np.ndarray, a: dict, sr: int) -> np.ndarray:
    """Brightness as a spectral tilt around the sound's own frequency region."""
    pivot = 4.0 * a.get("f0_hz", a.get("centre_hz", 500.0) / 4)
    if a["brightness"] == "dark":
        return dsp.lowpass(x, sr, min(max(pivot, 200.0), 0.4 * sr), 2)
    if a["brightness"] == "bright":
        return x + 1.0 * dsp.highpass(x, sr, min(pivot, 0.4 * sr), 2)
    return x


def render_mono(a: dict, rng: np.random.Generator, duration: float, sr: int) -> np.ndarray:
    """The source of ``a`` with brightness, loudness contour and tremolo applied: float64 mono [T]."""
    r = RECIPES[a["recipe"]]
    n = int(round(duration * sr))
    t = dsp.times(n, sr)
    f0 = None
    if r.pitched:
        f0 = np.minimum(a["f0_hz"] * 2 ** (pitch_contour(a, t, duration) / 12), 0.42 * sr)
    ctx = sources.Ctx(a, sr, n, rng, f0, _events(a, r, duration, rng))
    x = dsp.unit_rms(r.render(ctx))
    x = _tilt(x, a, sr) * loudness_contour(a, r, n, sr, rng)
    if a["tremolo"]:
        x = x * (1 + a["tremolo_depth"] * np.sin(2 * np.pi * a["tremolo_hz"] * t))
    return x


def spatialise(x: np.ndarray, a: dict, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Pan mono ``x`` [T] by ``a["motion"]``, add the space, set the level: float32 stereo [2, T]."""
    duration = len(x) / sr
    y = dsp.pan(x, pan_trajectory(a, dsp.times(len(x), sr), duration, rng))
    if a["space"] == "reverberant":
        y = dsp.add_reverb(y, sr, a["rt60_s"], a["wet"], rng)
    return dsp.finish(y, a["level_db"], PEAK_MAX).astype(np.float32)


def render_attributes(a: dict, rng: np.random.Generator, duration: float, sr: int) -> np.ndarray:
    """Render the attributes dict ``a`` to float32 stereo [2, T] (T = round(duration * sr)), peak <= 0.9."""
    return spatialise(render_mono(a, rng, duration, sr), a, rng, sr)

"""Minimal prompt pairs for the control test, worded with phrasings held out of every training caption.

A :class:`MinimalPair` is two prompts that differ in one attribute only ("a sub-bass hum" /
"a treble hum"); the analyzer named by the pair should give the LOW prompt's audio the lower value.
The attribute words come from :data:`HELDOUT_PHRASES`, which the caption generator never uses
(tests check that no rendered caption contains them), so a model that follows these prompts has
learnt the language of the attributes, not the templates of the corpus. Each pair also carries the
synth specs of its two sides, so the same test can be run on the corpus itself as an oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .captions import NOUNS, PHRASES

ANALYZER_OF = {"register": "spectral_centroid", "pitch": "pitch_slope", "rate": "onset_rate",
               "texture": "spectral_flatness", "motion": "stereo_motion", "envelope_hit": "impulsiveness",
               "fade": "loudness_trend", "tremolo": "tremolo_depth"}

# attribute -> parallel (low, high) templates; {n} is the noun (with its article when it starts the prompt)
HELDOUT_TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "register": (("{a} sub-bass {n}", "{a} treble {n}"), ("{a} low-frequency {n}", "{a} high-frequency {n}"),
                 ("{a} bottom-heavy {n}", "{a} squeaky {n}")),
    "pitch": (("{a} {n} gliding downward", "{a} {n} gliding upward"),
              ("{a} {n} decreasing in pitch", "{a} {n} increasing in pitch"),
              ("{a} {n} sliding downward", "{a} {n} sliding upward")),
    "rate": (("unhurried {n}", "speedy {n}"), ("leisurely {n}", "hurried {n}"), ("widely spaced {n}", "brisk {n}")),
    "texture": (("{a} pure-toned {n}", "{a} staticky {n}"), ("{a} clean-toned {n}", "{a} fuzzy {n}"),
                ("{a} sinusoidal {n}", "{a} noise-laden {n}")),
    "motion": (("{a} motionless {n}", "{a} roving {n}"),
               ("{a} {n} that is unmoving", "{a} {n} travelling across the stereo image"),
               ("{a} stock-still {n}", "{a} {n} circling around the listener")),
    "envelope_hit": (("{a} drawn-out {n}", "{a} momentary {n}"), ("{a} long-held {n}", "a brief stab of {n}"),
                     ("{a} unceasing {n}", "{a} instantaneous {n}")),
    "fade": (("{a} {n} dwindling away", "{a} {n} emerging from silence"),
             ("{a} {n} decreasing in volume", "{a} {n} increasing in volume"),
             ("{a} {n} trailing off into silence", "{a} {n} becoming ever louder")),
    "tremolo": (("{a} unwavering {n}", "{a} quivering {n}"), ("{a} {n}, level and even", "{a} trembling {n}"),
                ("{a} {n}, smooth in level", "{a} shuddering {n}")),
}

# The attribute words of the templates above: never in a training caption (see tests/test_synth.py).
HELDOUT_PHRASES: tuple[str, ...] = (
    "sub-bass", "treble", "low-frequency", "high-frequency", "bottom-heavy", "squeaky",
    "gliding downward", "gliding upward", "decreasing in pitch", "increasing in pitch", "sliding downward",
    "sliding upward", "downward", "upward", "unhurried", "speedy", "leisurely", "hurried", "widely spaced",
    "brisk", "pure-toned", "staticky", "clean-toned", "fuzzy", "sinusoidal", "noise-laden", "motionless",
    "roving", "unmoving", "travelling", "stereo image", "stock-still", "circling", "drawn-out", "momentary",
    "long-held", "brief stab", "unceasing", "instantaneous", "dwindling", "emerging from silence",
    "decreasing in volume", "increasing in volume", "trailing off", "ever louder", "unwavering",
    "level and even", "smooth in level", "quivering", "trembling", "shuddering",
)
# The phrase banks the caption generator draws from (for inspection; the generator is captions.py).
TRAIN_PHRASES: tuple[str, ...] = tuple(sorted({p for adj, post in PHRASES.values() for p in adj + post}))

# attribute -> (recipe, noun, extra spec for both sides, low spec, high spec); moving sides cycle motions
_MOVES = ("wander", "left_to_right", "back_and_forth")
CASES: dict[str, tuple[tuple[str, str, dict, dict, dict], ...]] = {
    "register": (
        ("hum", "hum", {}, {"register": "deep"}, {"register": "high"}),
        ("drone", "drone", {}, {"register": "deep"}, {"register": "high"}),
        ("beep", "beep tones", {"rate": "slow"}, {"register": "low"}, {"register": "high"}),
        ("pluck", "plucked note", {"rate": "single", "envelope": "hit"}, {"register": "low"}, {"register": "high"}),
        ("bell", "bell", {"rate": "single", "envelope": "decay"}, {"register": "low"}, {"register": "high"}),
        ("wind", "wind noise", {}, {"register": "low"}, {"register": "high"}),
        ("sweep", "sweep", {"pitch": "rising"}, {"register": "deep"}, {"register": "high"}),
        ("granular", "granular cloud", {}, {"register": "deep"}, {"register": "high"}),
    ),
    "pitch": (
        ("hum", "hum", {"register": "mid"}, {"pitch": "falling"}, {"pitch": "rising"}),
        ("hollow", "hollow tone", {"register": "mid"}, {"pitch": "falling"}, {"pitch": "rising"}),
        ("sweep", "sweep", {"register": "mid"}, {"pitch": "falling"}, {"pitch": "rising"}),
        ("siren", "siren", {}, {"pitch": "falling"}, {"pitch": "rising"}),
        ("beep", "beep tones", {"rate": "slow"}, {"pitch": "falling"}, {"pitch": "rising"}),
        ("pluck", "plucked notes", {"rate": "slow"}, {"pitch": "falling"}, {"pitch": "rising"}),
    ),
    "rate": (
        ("beep", "beeps", {}, {"rate": "slow"}, {"rate": "rapid"}),
        ("alarm", "warning beeps", {}, {"rate": "slow"}, {"rate": "rapid"}),
        ("glitch", "glitches", {}, {"rate": "slow"}, {"rate": "rapid"}),
        ("wooden", "wooden knocks", {}, {"rate": "slow"}, {"rate": "rapid"}),
        ("pluck", "plucked notes", {}, {"rate": "slow"}, {"rate": "rapid"}),
        ("cricket", "cricket chirps", {}, {"rate": "slow"}, {"rate": "rapid"}),
        ("thump", "thumps", {}, {"rate": "slow"}, {"rate": "rapid"}),
    ),
    "texture": (
        ("hum", "hum", {}, {"texture": "tonal"}, {"texture": "noisy"}),
        ("drone", "drone", {}, {"texture": "tonal"}, {"texture": "noisy"}),
        ("sweep", "sweep", {"pitch": "rising"}, {"texture": "tonal"}, {"texture": "noisy"}),
        ("granular", "granular cloud", {}, {"texture": "tonal"}, {"texture": "noisy"}),
        ("riser", "riser", {}, {"texture": "tonal"}, {"texture": "noisy"}),
        ("glitch", "glitches", {"rate": "rapid"}, {"texture": "tonal"}, {"texture": "noisy"}),
    ),
    "motion": (
        ("hum", "hum", {}, {"motion": "static"}, {}),
        ("hiss", "hiss", {}, {"motion": "static"}, {}),
        ("beep", "beeps", {"rate": "rapid"}, {"motion": "static"}, {}),
        ("glitch", "glitches", {"rate": "rapid"}, {"motion": "static"}, {}),
        ("swarm", "insect swarm", {}, {"motion": "static"}, {}),
        ("sizzle", "sizzle", {}, {"motion": "static"}, {}),
    ),
    "envelope_hit": (
        ("hum", "hum", {}, {"rate": "steady", "envelope": "sustained"}, {"rate": "single", "envelope": "hit"}),
        ("buzz", "buzz", {}, {"rate": "steady", "envelope": "sustained"}, {"rate": "single", "envelope": "hit"}),
        ("hiss", "hiss", {}, {"rate": "steady", "envelope": "sustained"}, {"rate": "single", "envelope": "hit"}),
        ("rumble", "rumble", {}, {"rate": "steady", "envelope": "sustained"},
         {"rate": "single", "envelope": "hit"}),
        ("beep", "beep", {}, {"rate": "steady", "envelope": "sustained"}, {"rate": "single", "envelope": "hit"}),
    ),
    "fade": (
        ("hum", "hum", {}, {"envelope": "fade_out"}, {"envelope": "fade_in"}),
        ("drone", "drone", {}, {"envelope": "fade_out"}, {"envelope": "fade_in"}),
        ("hiss", "hiss", {}, {"envelope": "fade_out"}, {"envelope": "fade_in"}),
        ("rain", "patter of rain", {}, {"envelope": "fade_out"}, {"envelope": "fade_in"}),
        ("beep", "beeps", {"rate": "rapid"}, {"envelope": "fade_out"}, {"envelope": "fade_in"}),
        ("glitch", "glitches", {"rate": "rapid"}, {"envelope": "fade_out"}, {"envelope": "fade_in"}),
        ("cricket", "cricket chirps", {"rate": "rapid"}, {"envelope": "fade_out"}, {"envelope": "fade_in"}),
    ),
    "tremolo": (
        ("hum", "hum", {}, {"tremolo": False}, {"tremolo": True}),
        ("drone", "drone", {}, {"tremolo": False}, {"tremolo": True}),
        ("hiss", "hiss", {}, {"tremolo": False}, {"tremolo": True}),
        ("sweep", "sweep", {"pitch": "rising"}, {"tremolo": False}, {"tremolo": True}),
        ("buzz", "buzz", {}, {"tremolo": False}, {"tremolo": True}),
        ("rumble", "rumble", {}, {"tremolo": False}, {"tremolo": True}),
    ),
}


@dataclass(frozen=True)
class MinimalPair:
    """Two prompts differing only in ``attribute``; ``analyzer`` should rate the low prompt's audio lower.

    ``low_spec`` / ``high_spec`` are synth specs ({"recipe": ..., attribute: value, ...}) that render
    each side with :func:`foley.data.synth.render.render_spec` (unsaid attributes take their ordinary
    value: static, dry, sustained, ...). ``seed`` numbers repeated generations of the same pair.
    """

    attribute: str
    low_prompt: str
    high_prompt: str
    analyzer: str
    seed: int = 0
    recipe: str = ""
    low_spec: dict = field(default_factory=dict, hash=False)
    high_spec: dict = field(default_factory=dict, hash=False)


def _a(noun: str) -> str:
    return "an" if noun[0].lower() in "aeiou" else "a"


def _fill(template: str, noun: str) -> str:
    if noun.split()[-1].endswith("s") and not noun.endswith("ss"):  # plurals take no article
        template = template.replace("{a} ", "")
    text = template.replace("{n}", noun)
    if "{a}" in text:
        following = text.split("{a}", 1)[1].split()[0]
        text = text.replace("{a}", _a(following))
    return text


def minimal_pairs(seeds: int = 1) -> list[MinimalPair]:
    """All minimal pairs (8 attributes x 5-8 sound kinds), each repeated for seeds 0..seeds-1."""
    out = []
    for attribute, cases in CASES.items():
        templates = HELDOUT_TEMPLATES[attribute]
        for i, (recipe, noun, common, low, high) in enumerate(cases):
            if recipe not in NOUNS:
                raise KeyError(recipe)
            lo_t, hi_t = templates[i % len(templates)]
            if attribute == "motion":
                high = {"motion": _MOVES[i % len(templates)]}
            low_spec = {"recipe": recipe, **common, **low}
            high_spec = {"recipe": recipe, **common, **high}
            for s in range(seeds):
                out.append(MinimalPair(attribute, _fill(lo_t, noun), _fill(hi_t, noun), ANALYZER_OF[attribute],
                                       s, recipe, dict(low_spec), dict(high_spec)))
    return out

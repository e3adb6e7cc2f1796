"""Captions for rendered clips: many phrasings of the same ground-truth attributes.

Every attribute value has a bank of adjectives (said before the noun) and of clauses (said after
it); a caption picks a style (tag list, short noun phrase, long phrase with clauses, sentence,
comma list in the manner of the thesis' descriptions) and, for each attribute it mentions, one
phrase. A word always means the same attribute value ("rising" is pitch, never loudness), so the
mapping from words to sound is consistent. Words reserved for the control test
(:data:`foley.data.synth.control.HELDOUT_PHRASES`) never appear here; a test checks it.
"""

from __future__ import annotations

import numpy as np

from .recipes import RECIPES

# kind -> (nouns for one sound or a continuous texture, nouns for a train of events)
NOUNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hum": (("hum", "humming tone", "humming sound", "hum tone"), ()),
    "drone": (("drone", "droning tone", "drone pad", "synth drone"), ()),
    "buzz": (("buzz", "buzzing tone", "buzzing drone", "electric buzz"), ()),
    "hollow": (("hollow hum", "hollow tone", "hollow drone", "hollow, reedy tone"), ()),
    "hiss": (("hiss", "hissing noise", "hissing sound", "steam-like hiss"), ()),
    "sizzle": (("sizzle", "sizzling noise", "sizzling sound", "frying sizzle"), ()),
    "crackle": (("crackle", "crackling noise", "crackling", "fire-like crackle"), ()),
    "rumble": (("rumble", "rumbling noise", "rumbling", "rumble of noise"), ()),
    "wind": (("wind", "wind noise", "gusting wind", "howling wind"), ()),
    "rain": (("rain", "rain-like patter", "patter of rain", "rainfall"), ()),
    "glitch": (("glitch", "digital glitch"), ("glitches", "glitchy elements", "digital glitches",
                                              "glitch sounds", "stuttering glitches")),
    "granular": (("granular cloud", "cloud of tiny grains", "granular texture", "granular swarm"), ()),
    "beep": (("beep", "electronic beep", "beep tone", "sine beep"), ("beeps", "beeping", "electronic beeps",
                                                                    "beep tones")),
    "alarm": (("alarm",), ("alarm", "alarm signal", "alarm-like beeping", "warning beeps")),
    "siren": (("siren", "wailing siren", "siren tone", "alarm siren"), ()),
    "metallic": (("metallic hit", "metal clang", "metallic impact", "clang"),
                 ("metallic hits", "metal clangs", "metallic knocks", "clangs")),
    "wooden": (("wooden knock", "wood block hit", "knock on wood", "wooden tap"),
               ("wooden knocks", "wood block hits", "knocks on wood", "wooden taps")),
    "thump": (("thump", "dull thud", "heavy thump", "thud"), ("thumps", "thuds", "heavy thumps",
                                                                     "dull thuds")),
    "pluck": (("plucked note", "pluck", "plucked string", "plucked synth note"),
              ("plucked notes", "plucks", "plucked string notes", "plucked synth notes")),
    "bell": (("bell", "bell strike", "ringing bell", "struck bell"), ("bell strikes", "bells", "tolling bell",
                                                                     "ringing bells")),
    "chime": (("chime", "chime tone", "small chime", "glassy chime"), ("chimes", "chime tones", "small chimes",
                                                                      "glassy chimes")),
    "sweep": (("sweep", "tone sweep", "glide", "synth sweep"), ()),
    "riser": (("riser", "build-up riser", "synth riser", "tension riser"), ()),
    "whoosh": (("whoosh", "swoosh", "rushing whoosh", "airy whoosh"), ()),
    "cricket": (("cricket",), ("cricket chirps", "chirping crickets", "cricket-like stridulation",
                               "stridulating insect")),
    "swarm": (("insect swarm", "buzzing swarm", "swarm of buzzing insects", "cloud of buzzing flies"), ()),
    "cicada": (("cicada-like buzz", "cicada drone", "buzzing cicada", "cicada noise"), ()),
}
NOISY_NOUNS = {"sweep": ("noise sweep", "filtered noise sweep", "sweeping noise band")}

# (attribute, value) -> (adjectives, clauses). Empty banks mean "nothing to say".
PHRASES: dict[tuple[str, object], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("register", "deep"): (("deep", "very low", "bassy", "deep, low"),
                           ("deep in the bass", "in a very low register", "pitched very deep")),
    ("register", "low"): (("low", "low-pitched", "lowish"), ("in a low register", "pitched low")),
    ("register", "mid"): (("mid-range", "mid-pitched", "medium-pitched"),
                          ("in the middle register", "in a mid register")),
    ("register", "high"): (("high", "high-pitched", "thin, high"),
                           ("in a high register", "pitched high", "up high")),
    ("pitch", "steady"): (("steady-pitched", "stable"), ("at a steady pitch", "holding one pitch",
                                                          "with a stable pitch")),
    ("pitch", "rising"): (("rising", "ascending", "climbing"),
                          ("rising in pitch", "climbing in pitch", "slowly going up in pitch",
                           "with a pitch that rises", "sweeping up")),
    ("pitch", "falling"): (("falling", "descending", "dropping"),
                           ("falling in pitch", "dropping in pitch", "going down in pitch",
                            "with a pitch that sinks", "sweeping down")),
    ("pitch", "wobbling"): (("wobbling", "wavering", "warbling"),
                            ("with a wobbling pitch", "with varying pitch", "with pitch modulation",
                             "with vibrato")),
    ("pitch", "rise_fall"): (("rising-and-falling",),
                             ("rising then falling in pitch", "with ascending and descending pitch",
                              "going up and then down in pitch")),
    ("rate", "steady"): (("continuous", "unbroken", "constant"), ("without pause", "with no pauses")),
    ("rate", "slow"): (("slow", "slowly repeating", "sparse"),
                       ("repeating slowly", "at a slow pace", "about once or twice a second",
                        "with long gaps")),
    ("rate", "rapid"): (("rapid", "fast", "quick", "rapid-fire"),
                        ("in quick succession", "repeating rapidly", "at a fast rate", "many times a second")),
    ("rate", "single"): ((), ("just once", "only once")),
    ("texture", "tonal"): (("tonal", "pure", "clean", "pitched"), ("with a pure tone", "clean and tonal")),
    ("texture", "noisy"): (("noisy", "grainy", "breathy", "rough"),
                           ("full of noise", "with a noisy texture", "made of noise")),
    ("motion", "static"): (("static", "centred", "stationary"),
                           ("staying in one place", "without stereo movement", "fixed in the stereo field")),
    ("motion", "left_to_right"): (("left-to-right",),
                                  ("moving from left to right", "panning from left to right",
                                   "drifting from the left speaker to the right", "passing from left to right")),
    ("motion", "right_to_left"): (("right-to-left",),
                                  ("moving from right to left", "panning from right to left",
                                   "drifting from the right speaker to the left", "passing from right to left")),
    ("motion", "back_and_forth"): (("ping-ponging", "side-to-side"),
                                   ("panning back and forth", "swinging between left and right",
                                    "bouncing between the speakers", "moving from side to side")),
    ("motion", "wander"): (("wandering", "drifting"),
                           ("slowly wandering around the stereo field", "drifting around the stereo field",
                            "with slowly moving panorama", "meandering between the speakers")),
    ("position", "left"): ((), ("on the left", "in the left speaker", "coming from the left")),
    ("position", "right"): ((), ("on the right", "in the right speaker", "coming from the right")),
    ("position", "centre"): ((), ()),
    ("envelope", "sustained"): (("sustained", "long", "held"), ("held steadily", "sustained throughout")),
    ("envelope", "hit"): (("short", "single short", "one-shot"),
                          ("struck once", "as a single short hit", "as one short burst")),
    ("envelope", "fade_in"): ((), ("fading in", "getting louder", "growing louder", "gradually getting louder",
                                   "building up from silence", "in a slow crescendo")),
    ("envelope", "fade_out"): ((), ("fading out", "fading away", "getting quieter", "growing quieter",
                                    "fading to silence")),
    ("envelope", "swell"): (("swelling",), ("swelling up and fading again", "swelling and then fading",
                                            "swelling in and out")),
    ("envelope", "decay"): (("decaying", "ringing"), ("ringing out", "decaying slowly", "with a long decay",
                                                      "dying away")),
    ("tremolo", True): (("throbbing", "pulsating", "fluttering"),
                        ("with tremolo", "with a throbbing tremolo", "pulsating in volume",
                         "with a fluttering amplitude")),
    ("tremolo", False): ((), ("steady in volume", "without tremolo")),
    ("space", "dry"): (("dry", "close", "intimate"), ("with no reverb", "dry and close", "heard up close")),
    ("space", "reverberant"): (("reverberant", "echoing", "spacious", "spatial", "cavernous"),
                               ("in a large hall", "with lots of reverb", "in a reverberant space",
                                "echoing in a big room")),
    ("brightness", "dark"): (("dark", "muffled", "mellow", "warm"), ("with a dark tone", "muffled and dark")),
    ("brightness", "neutral"): ((), ()),
    ("brightness", "bright"): (("bright", "crisp", "brilliant", "sharp"), ("with a bright, crisp tone",
                                                                          "bright and present")),
    ("loudness", "soft"): (("soft", "quiet", "faint", "gentle", "subtle"), ("played softly",
                                                                           "at a quiet level")),
    ("loudness", "medium"): ((), ()),
    ("loudness", "loud"): (("loud", "powerful", "strong", "intense"), ("played loudly", "at full volume")),
}
TAGS = {"left_to_right": "left to right", "right_to_left": "right to left", "back_and_forth": "back and forth",
        "wander": "wandering", "rise_fall": "rising and falling", "fade_in": "fade in", "fade_out": "fade out",
        True: "tremolo", False: "steady volume"}
# order of adjectives before the noun (English puts opinion/size/age/colour/... in a fixed order)
ADJ_ORDER = ("loudness", "rate", "envelope", "brightness", "register", "texture", "pitch", "tremolo", "space",
             "motion")
ATTRIBUTES = ADJ_ORDER + ("position",)
OPENERS = ("The sound of", "Synthesized", "Sound effect:", "Synthetic", "Recording of")


def salient(attrs: dict) -> list[str]:
    """Attributes whose value differs from what the recipe kind ordinarily is (worth saying)."""
    r = RECIPES[attrs["recipe"]]

    def worth(k) -> bool:
        v = attrs[k]
        if not _has_words(k, v) or (k == "rate" and v == "single" and attrs["envelope"] == "hit"):  # "hit" says it
            return False
        if k in ("pitch", "rate") and v != "steady" and len(r.pitches if k == "pitch" else r.rates) > 1:
            return True   # a sweep's direction or a beep's pace is always worth saying
        return v != r.default(k)

    out = [k for k in ADJ_ORDER if k in attrs and worth(k)]
    if attrs.get("position", "centre") != "centre":
        out.append("position")
    if "register" not in out:
        out.insert(0, "register")
    return out


def _has_words(key, value) -> bool:
    adj, post = PHRASES.get((key, value), ((), ()))
    return bool(adj or post)


def _noun(attrs: dict, rng: np.random.Generator) -> str:
    single, plural = NOUNS[attrs["recipe"]]
    if attrs["texture"] == "noisy" and attrs["recipe"] in NOISY_NOUNS:
        single = NOISY_NOUNS[attrs["recipe"]]
    bank = plural if attrs["rate"] in ("slow", "rapid") and plural else single
    return bank[int(rng.integers(len(bank)))]


def _pick(bank, rng) -> str:
    return bank[int(rng.integers(len(bank)))]


UNCOUNTABLE = ("rain", "wind", "rainfall", "crackling", "rumbling", "beeping", "sizzling", "wind noise")


def _article(phrase: str) -> str:
    first = phrase.split()[0].lower()
    if phrase.endswith(UNCOUNTABLE):
        return phrase
    if first.startswith("one"):
        return "a " + phrase
    plural = first.endswith("s") and not first.endswith(("ss", "us")) or phrase.split()[-1].endswith("s")
    if plural and not phrase.endswith(("hiss", "noise")):
        return phrase
    return ("an " if first[0] in "aeiou" else "a ") + phrase


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _realise(keys: list[str], attrs: dict, rng: np.random.Generator, max_adj: int) -> tuple[list, list]:
    """Split the chosen attributes into adjectives and clauses, each realised with one phrase."""
    adjs, posts = [], []
    for k in keys:
        adj, post = PHRASES[(k, attrs[k])]
        use_adj = adj and (not post or (len(adjs) < max_adj and rng.random() < 0.55))
        if use_adj:
            adjs.append((ADJ_ORDER.index(k) if k in ADJ_ORDER else 99, _pick(adj, rng)))
        elif post:
            posts.append(_pick(post, rng))
    adjs = list(dict.fromkeys(a for _, a in sorted(adjs)))
    rng.shuffle(posts)
    return adjs, posts


def _choose_keys(attrs: dict, rng: np.random.Generator, full: bool) -> list[str]:
    keys = salient(attrs)
    if not full:
        keep = [k for k in keys if rng.random() < 0.7]
        keys = keep or keys[:1]
        extras = [k for k in ("motion", "pitch", "space", "tremolo", "texture", "envelope")
                  if k not in keys and _has_words(k, attrs[k]) and rng.random() < 0.12
                  and not (k == "envelope" and attrs["rate"] != "steady")]  # a train of hits is not "held"
        keys += extras
    return keys


def caption(attrs: dict, rng: np.random.Generator, style: str | None = None, full: bool = False) -> str:
    """One caption for ``attrs``; ``full`` mentions every salient attribute (used for the description)."""
    keys = _choose_keys(attrs, rng, full)
    noun = _noun(attrs, rng)
    style = style or _pick(("tags", "short", "long", "long", "sentence", "list"), rng)
    if style == "tags":
        words = [TAGS.get(attrs[k], str(attrs[k]).replace("_", " ")) for k in keys if k != "position"]
        words = [noun] + [w for w in words if w not in ("steady", "none")]
        rng.shuffle(words)
        return ", ".join(dict.fromkeys(words))
    adjs, posts = _realise(keys, attrs, rng, max_adj=3 if style == "short" else 2)
    if style == "short":
        return " ".join(adjs + [noun]) + (" " + posts[0] if posts else "")
    np_ = _article(" ".join(adjs + [noun]))
    if style == "list":  # the thesis' manner: "Continuous, deep and spatial, stable and rumbly"
        head = adjs or [noun]
        text = _join(head) + (f", {noun}" if adjs else "") + ("" if not posts else ", " + ", ".join(posts))
        return text[0].upper() + text[1:]
    body = np_ + ("" if not posts else " " + _join(posts) if len(posts) <= 2 else " " + ", ".join(posts))
    if style == "sentence":
        opener = _pick(OPENERS, rng)
        if opener in ("Synthesized", "Synthetic"):
            return f"{opener} {' '.join(adjs + [noun])}" + (f", {_join(posts)}" if posts else "") + "."
        return f"{opener} {body}."
    return body


def captions_for(attrs: dict, rng: np.random.Generator, count: int | None = None,
                 first: str | None = None) -> list[str]:
    """4-8 distinct captions; the first is ``first`` or the full description."""
    count = count or int(rng.integers(4, 9))
    out = [first or caption(attrs, rng, style=_pick(("long", "sentence"), rng), full=True)]
    for _ in range(count * 6):
        if len(out) >= count:
            break
        c = caption(attrs, rng)
        if c.lower() not in {o.lower() for o in out}:
            out.append(c)
    return out


def keywords_for(attrs: dict) -> list[str]:
    """Keywords: the kind, its category and the words for every salient attribute."""
    words = [attrs["recipe"], attrs["category"]]
    for k in salient(attrs):
        if k == "position":
            words.append(attrs["position"])
        else:
            words.append(TAGS.get(attrs[k], str(attrs[k]).replace("_", " ")))
    return list(dict.fromkeys(w for w in words if w not in ("none", "steady")))

"""The General MIDI instruments, drum patterns and musical vocabulary the music corpus draws from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    """A General MIDI melodic instrument.

    Attributes:
        key: identifier used in attributes ("cello").
        program: GM program number, 0-based (0 = acoustic grand piano, 42 = cello).
        family: instrument family word used in captions and keywords ("strings").
        low, high: comfortable MIDI note range; registers are thirds of this range.
        names: caption nouns, the first is the canonical one ("cello", "violoncello").
        sustained: True when a held note keeps sounding (bowed, blown, organ, pad), False when it decays.
    """

    key: str
    program: int
    family: str
    low: int
    high: int
    names: tuple[str, ...]
    sustained: bool


def _i(key, program, family, low, high, names, sustained):
    return Instrument(key, program, family, low, high, tuple(names), sustained)


INSTRUMENTS: tuple[Instrument, ...] = (
    # keys
    _i("piano", 0, "keys", 36, 96, ["piano", "grand piano", "acoustic piano"], False),
    _i("electric_piano", 4, "keys", 40, 88, ["electric piano", "Rhodes-style electric piano"], False),
    _i("harpsichord", 6, "keys", 41, 89, ["harpsichord"], False),
    _i("celesta", 8, "keys", 60, 100, ["celesta"], False),
    # organ and reeds
    _i("church_organ", 19, "organ", 36, 88, ["church organ", "pipe organ"], True),
    _i("rock_organ", 18, "organ", 40, 88, ["rock organ", "electric organ"], True),
    _i("accordion", 21, "organ", 53, 89, ["accordion"], True),
    _i("harmonica", 22, "woodwinds", 60, 91, ["harmonica", "mouth organ"], True),
    # mallets and bells
    _i("glockenspiel", 9, "mallets", 79, 105, ["glockenspiel", "bell lyre"], False),
    _i("music_box", 10, "mallets", 60, 96, ["music box"], False),
    _i("vibraphone", 11, "mallets", 53, 89, ["vibraphone", "vibes"], False),
    _i("marimba", 12, "mallets", 45, 96, ["marimba"], False),
    _i("xylophone", 13, "mallets", 65, 105, ["xylophone"], False),
    _i("tubular_bells", 14, "mallets", 60, 79, ["tubular bells", "chimes"], False),
    _i("steel_drums", 114, "mallets", 55, 88, ["steel drums", "steel pan"], False),
    _i("kalimba", 108, "plucked", 60, 88, ["kalimba", "thumb piano"], False),
    # guitars and plucked
    _i("nylon_guitar", 24, "guitar", 40, 81, ["nylon-string guitar", "classical guitar"], False),
    _i("steel_guitar", 25, "guitar", 40, 81, ["steel-string acoustic guitar", "acoustic guitar"], False),
    _i("clean_guitar", 27, "guitar", 40, 84, ["clean electric guitar", "electric guitar"], False),
    _i("overdriven_guitar", 29, "guitar", 40, 84, ["overdriven electric guitar", "overdriven guitar"], True),
    _i("harp", 46, "plucked", 36, 96, ["harp", "concert harp"], False),
    _i("sitar", 104, "plucked", 48, 81, ["sitar"], False),
    _i("banjo", 105, "plucked", 48, 81, ["banjo"], False),
    _i("pizzicato_strings", 45, "strings", 40, 84, ["pizzicato strings", "plucked strings"], False),
    # basses
    _i("acoustic_bass", 32, "bass", 28, 55, ["acoustic bass", "upright bass", "plucked double bass"], False),
    _i("electric_bass", 33, "bass", 28, 60, ["electric bass", "bass guitar"], False),
    _i("slap_bass", 36, "bass", 28, 60, ["slap bass"], False),
    _i("synth_bass", 38, "bass", 28, 60, ["synth bass", "synthesizer bass"], False),
    # bowed strings
    _i("violin", 40, "strings", 55, 98, ["violin", "fiddle"], True),
    _i("viola", 41, "strings", 48, 84, ["viola"], True),
    _i("cello", 42, "strings", 36, 76, ["cello", "violoncello"], True),
    _i("contrabass", 43, "strings", 28, 60, ["contrabass", "bowed double bass"], True),
    _i("string_ensemble", 48, "strings", 36, 91, ["string ensemble", "string section", "strings"], True),
    _i("timpani", 47, "percussion", 40, 57, ["timpani", "kettle drums"], False),
    # voices
    _i("choir", 52, "voices", 48, 79, ["choir", "choir singing aah", "vocal ensemble"], True),
    # brass
    _i("trumpet", 56, "brass", 55, 82, ["trumpet"], True),
    _i("trombone", 57, "brass", 40, 72, ["trombone"], True),
    _i("tuba", 58, "brass", 28, 58, ["tuba"], True),
    _i("french_horn", 60, "brass", 41, 77, ["French horn", "horn"], True),
    _i("brass_section", 61, "brass", 41, 82, ["brass section", "brass ensemble"], True),
    # woodwinds
    _i("alto_sax", 65, "woodwinds", 49, 81, ["alto saxophone", "alto sax"], True),
    _i("tenor_sax", 66, "woodwinds", 44, 76, ["tenor saxophone", "tenor sax"], True),
    _i("oboe", 68, "woodwinds", 58, 91, ["oboe"], True),
    _i("bassoon", 70, "woodwinds", 34, 72, ["bassoon"], True),
    _i("clarinet", 71, "woodwinds", 50, 89, ["clarinet"], True),
    _i("flute", 73, "woodwinds", 60, 96, ["flute"], True),
    _i("piccolo", 72, "woodwinds", 74, 103, ["piccolo"], True),
    _i("pan_flute", 75, "woodwinds", 60, 91, ["pan flute", "pan pipes"], True),
    # synths
    _i("square_lead", 80, "synth", 48, 91, ["square-wave synth lead", "chiptune-like square lead"], True),
    _i("saw_lead", 81, "synth", 48, 91, ["sawtooth synth lead", "saw lead synthesizer"], True),
    _i("synth_strings", 50, "synth", 36, 88, ["synth strings", "synthesizer strings"], True),
    _i("warm_pad", 89, "synth", 36, 84, ["warm synth pad", "soft synthesizer pad"], True),
    _i("polysynth_pad", 90, "synth", 36, 84, ["polysynth pad", "polyphonic synth"], True),
    _i("halo_pad", 94, "synth", 48, 84, ["halo pad", "airy choir-like synth pad"], True),
)
INSTRUMENTS_BY_KEY = {i.key: i for i in INSTRUMENTS}

REGISTERS = ("low", "mid", "high")
MODES = ("major", "minor")
SHAPES = ("ascending", "descending", "arch", "valley", "repeated", "arpeggio", "chords", "sustained",
          "melody")
DYNAMICS = {"soft": 55, "medium": 82, "loud": 110}  # MIDI velocity per dynamic marking
TEMPO_RANGE = (60, 160)  # bpm

# Intervals of the scales in semitones above the tonic.
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Conventional spellings: flats for flat keys, sharps for sharp keys (per mode).
KEY_NAMES = {
    "major": ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"),
    "minor": ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"),
}

# General MIDI percussion keys (channel 10).
KICK, RIM, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT = 36, 37, 38, 39, 42, 44, 46
LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE, TAMBOURINE, SHAKER = 45, 47, 50, 49, 51, 54, 70


@dataclass(frozen=True)
class DrumStyle:
    """A one-bar 4/4 pattern on a 16-step grid (sixteenth notes), or 12 steps for triplet feels.

    Attributes:
        hits: (step, GM drum key, velocity scale 0-1) triples.
        steps: grid steps per bar (16 straight, 12 for triplet shuffle).
        names: caption phrases, the first canonical.
    """

    key: str
    steps: int
    hits: tuple[tuple[int, int, float], ...]
    names: tuple[str, ...]


def _pattern(steps: int, **lanes: tuple[str, int, float]) -> tuple[tuple[int, int, float], ...]:
    """Lanes as strings over the grid ('x' hit, 'o' soft hit, '.' rest) -> (step, key, velocity) hits."""
    out = []
    for _, (grid, key, vel) in lanes.items():
        assert len(grid) == steps, grid
        out += [(s, key, vel if c == "x" else vel * 0.6) for s, c in enumerate(grid) if c in "xo"]
    return tuple(sorted(out))


DRUM_STYLES: tuple[DrumStyle, ...] = (
    DrumStyle("rock", 16, _pattern(16, kick=("x.......x.x.....", KICK, 1.0),
                                   snare=("....x.......x...", SNARE, 0.95),
                                   hat=("x.o.x.o.x.o.x.o.", CLOSED_HAT, 0.7)),
              ("rock beat", "straight rock drum beat", "rock groove")),
    DrumStyle("four_on_the_floor", 16, _pattern(16, kick=("x...x...x...x...", KICK, 1.0),
                                                clap=("....x.......x...", CLAP, 0.85),
                                                hat=("..x...x...x...x.", OPEN_HAT, 0.6)),
              ("four-on-the-floor beat", "dance beat with a kick on every beat",
               "house-style four-on-the-floor")),
    DrumStyle("half_time", 16, _pattern(16, kick=("x..........x....", KICK, 1.0),
                                        snare=("........x.......", SNARE, 1.0),
                                        hat=("x.x.x.x.x.x.x.x.", CLOSED_HAT, 0.6)),
              ("half-time beat", "half-time groove", "slow half-time drum pattern")),
    DrumStyle("breakbeat", 16, _pattern(16, kick=("x.x.......xx....", KICK, 1.0),
                                        snare=("....x..o.o..x..o", SNARE, 0.95),
                                        hat=("x.x.x.x.x.x.x.x.", CLOSED_HAT, 0.65)),
              ("breakbeat", "syncopated breakbeat", "funky broken beat")),
    DrumStyle("shuffle", 12, _pattern(12, kick=("x.....x.....", KICK, 1.0),
                                      snare=("...x.....x..", SNARE, 0.9),
                                      hat=("x.ox.ox.ox.o", RIDE, 0.6)),
              ("shuffle beat", "swung shuffle groove", "triplet shuffle")),
    DrumStyle("tom_groove", 16, _pattern(16, kick=("x.......x.......", KICK, 0.9),
                                         low=("x..x..x...x..x..", LOW_TOM, 0.9),
                                         mid=("....x.......x...", MID_TOM, 0.8),
                                         shaker=("xoxoxoxoxoxoxoxo", SHAKER, 0.5)),
              ("tribal tom groove", "pounding tom-tom rhythm", "tom drum pattern")),
)
DRUM_STYLES_BY_KEY = {d.key: d for d in DRUM_STYLES}

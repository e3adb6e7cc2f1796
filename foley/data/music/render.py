"""Render clip plans to audio: MIDI (mido) -> FluidSynth with the General MIDI SoundFont -> `Audio`.

Each clip is its own FluidSynth run (no reverb tail or voice can leak from one clip into the next),
with dynamic sample loading so a run reads only the samples it plays (about 0.1 s per clip here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...audio import Audio
from ...errors import MissingDependencyError
from .phrase import DRUM_CHANNEL, DRUM_KITS, ClipSpec, Note, phrase_notes

INSTALL_HINT = "sudo apt-get install fluidsynth fluid-soundfont-gm"
SOUNDFONT_CANDIDATES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
                        "/usr/share/soundfonts/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2")
TICKS_PER_BEAT = 480
FLUIDSYNTH_GAIN = 0.4  # synth master gain; leaves headroom for chords before loudness normalisation
TARGET_LUFS = -23.0  # EBU R128 programme loudness, the project's default
FADE_OUT = 0.05  # seconds; the clip is cut at `duration`, so end it without a click
FLUIDR3_LICENCE = "MIT"
FLUIDR3_CREDIT = ("FluidR3_GM SoundFont, Copyright 2000-2002, 2008 Frank Wen, 2008 Toby Smithe; MIT licence "
                  "(Debian package fluid-soundfont-gm)")


def find_fluidsynth() -> str:
    """Absolute path of the `fluidsynth` program on PATH; MissingDependencyError when absent."""
    exe = shutil.which("fluidsynth", path=os.environ.get("PATH", ""))
    if exe is None:
        raise MissingDependencyError(f"the fluidsynth program is not on PATH; "
                                     f"install it with: {INSTALL_HINT}")
    return exe


def require_mido():
    """The mido module (MIDI files); MissingDependencyError naming the extra when it is not installed."""
    try:
        import mido
    except ModuleNotFoundError:
        raise MissingDependencyError("the Python package mido is not installed; install it with: "
                                     "pip install 'foley[music]'") from None
    return mido


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path:
    """The SoundFont to use: the argument, else $FOLEY_SOUNDFONT, else Debian's FluidR3_GM.sf2."""
    given = soundfont or os.environ.get("FOLEY_SOUNDFONT")
    if given:
        p = Path(given)
        if not p.is_file():
            raise MissingDependencyError(f"{p}: SoundFont not found; give an existing .sf2 file or install "
                                         f"the General MIDI one with: {INSTALL_HINT}")
        return p
    for c in SOUNDFONT_CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    raise MissingDependencyError(f"no General MIDI SoundFont found in /usr/share/sounds/sf2; "
                                 f"install it with: {INSTALL_HINT}")


def licence_of(soundfont: Path) -> tuple[str, str]:
    """(licence, credit) of the SoundFont's samples, as recorded in every manifest line."""
    if Path(os.path.realpath(soundfont)).name == "FluidR3_GM.sf2":
        return FLUIDR3_LICENCE, FLUIDR3_CREDIT
    return "unknown", f"SoundFont {soundfont.name}: check its licence before training on these renders"


def write_midi(spec: ClipSpec, notes: list[Note], path: str | os.PathLike) -> None:
    """A type-0 MIDI file: tempo, the instrument's program on channel 1, the drum kit on channel 10."""
    from .instruments import INSTRUMENTS_BY_KEY

    mido = require_mido()

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(spec.tempo_bpm), time=0))
    if spec.instrument is not None:
        program = INSTRUMENTS_BY_KEY[spec.instrument].program
        track.append(mido.Message("program_change", channel=0, program=program))
    if spec.drums is not None:
        kit = DRUM_KITS[spec.kit or "standard"]
        track.append(mido.Message("program_change", channel=DRUM_CHANNEL, program=kit))
    events = []  # (tick, order, message): note-offs before note-ons at the same tick
    for n in notes:
        on = int(round(n.start * TICKS_PER_BEAT))
        off = max(on + 1, int(round((n.start + n.length) * TICKS_PER_BEAT)))
        events.append((on, 1, mido.Message("note_on", channel=n.channel, note=n.pitch, velocity=n.velocity)))
        events.append((off, 0, mido.Message("note_off", channel=n.channel, note=n.pitch, velocity=0)))
    end = int(round(spec.duration * spec.tempo_bpm / 60 * TICKS_PER_BEAT))
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    mid = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    mid.tracks.append(track)
    mid.save(str(path))


def render_spec(spec: ClipSpec, sample_rate: int, soundfont: str | os.PathLike | None = None,
                normalize: bool = True) -> Audio:
    """Render one clip: stereo `Audio` [2, round(duration * sample_rate)] at ``sample_rate`` Hz,
    loudness-normalised to TARGET_LUFS (unless ``normalize`` is False) with a short fade at the end."""
    exe, sf2 = find_fluidsynth(), find_soundfont(soundfont)
    notes = phrase_notes(spec)
    with tempfile.TemporaryDirectory(prefix="foley-music-") as tmp:
        mid, wav = Path(tmp) / "clip.mid", Path(tmp) / "clip.wav"
        write_midi(spec, notes, mid)
        cmd = [exe, "-ni", "-q", "-o", "synth.dynamic-sample-loading=1", "-o", "synth.cpu-cores=1",
               "-F", str(wav), "-T", "wav", "-O", "float", "-r", str(int(sample_rate)),
               "-g", str(FLUIDSYNTH_GAIN), str(sf2), str(mid)]
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0 or not wav.exists() or wav.stat().st_size == 0:
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise MissingDependencyError(f"fluidsynth failed on clip {spec.index} "
                                         f"({msg[-1] if msg else f'exit {proc.returncode}'}); "
                                         f"check the SoundFont {sf2}")
        audio = Audio.load(wav)
    if audio.sample_rate != sample_rate:  # fluidsynth clamps rates outside its range (8-96 kHz)
        audio = audio.resample(sample_rate)
    audio = audio.to_stereo().pad_or_trim(int(round(spec.duration * sample_rate))).fade(fade_out=FADE_OUT)
    if normalize:
        audio = audio.normalize_loudness(TARGET_LUFS)
    return audio


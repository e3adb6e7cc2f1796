"""Music renders: plans, captions, notes, FluidSynth renders, the corpus command and its errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from foley.audio import Audio
from foley.data.music import (
    DRUM_STYLES,
    ClipSpec,
    describe,
    phrase_notes,
    plan_clip,
    plan_clips,
    register_window,
    render_corpus,
    render_spec,
    write_midi,
)
from foley.data.music.instruments import INSTRUMENTS_BY_KEY
from foley.errors import MissingDependencyError

HAVE_FLUIDSYNTH = shutil.which("fluidsynth") is not None and Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").exists()
needs_fluidsynth = pytest.mark.skipif(not HAVE_FLUIDSYNTH,
                                      reason="sudo apt-get install fluidsynth fluid-soundfont-gm")
RATE = 16000


def _spec(**kw) -> ClipSpec:
    base = dict(index=0, seed=0, duration=1.5, tempo_bpm=120, dynamics="medium", instrument="cello",
                register="mid", root=2, mode="minor", shape="ascending")
    return ClipSpec(**{**base, **kw})


def _centroid(audio: Audio) -> float:
    """Power-weighted mean frequency (Hz) of the mono mix."""
    x = audio.to_mono().samples[0].astype(np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    return float((np.fft.rfftfreq(len(x), 1 / audio.sample_rate) * power).sum() / power.sum())


def test_plans_are_deterministic_and_cover_the_vocabulary():
    a, b = plan_clips(300, seed=1, duration=6.0), plan_clips(300, seed=1, duration=6.0)
    assert a == b
    assert plan_clips(300, seed=2, duration=6.0) != a
    assert plan_clip(1, 17, 6.0) == a[17]  # clip i does not depend on n
    melodic = [s for s in a if s.instrument]
    assert len({s.instrument for s in melodic}) >= 20
    assert {s.drums for s in a if s.drums} == {d.key for d in DRUM_STYLES}
    assert {s.register for s in melodic} == {"low", "mid", "high"}
    assert {s.mode for s in melodic} == {"major", "minor"}
    assert len({s.shape for s in melodic}) >= 8
    assert len({s.root for s in melodic}) == 12
    tempos = [s.tempo_bpm for s in a]
    assert min(tempos) >= 60 and max(tempos) <= 160 and max(tempos) - min(tempos) > 80
    assert any(s.instrument is None for s in a) and any(s.instrument and s.drums for s in a)


def test_captions_say_the_attributes_in_several_ways():
    spec = _spec(duration=6.0, tempo_bpm=70, register="low", shape="melody")
    d = describe(spec)
    assert d["description"] == "a slow cello melody in a low register, D minor, 70 bpm"
    assert len(d["captions"]) == len({c.lower() for c in d["captions"]}) >= 5
    assert d["captions"][0] == d["description"]
    assert all("cello" in c for c in d["captions"])
    assert {"cello", "low register", "slow", "D minor", "minor"} <= set(d["keywords"])
    drums = describe(_spec(instrument=None, register=None, root=None, mode=None, shape=None,
                           drums="rock", kit="jazz"))
    assert "rock beat" in drums["description"] and "jazz" in drums["description"]
    with_drums = describe(_spec(drums="breakbeat", kit="standard"))
    assert "breakbeat" in with_drums["description"]


def test_notes_follow_the_shape_and_the_register():
    pitches = lambda spec: [n.pitch for n in phrase_notes(spec) if n.channel == 0]  # noqa: E731
    up, down = pitches(_spec(duration=4.0)), pitches(_spec(duration=4.0, shape="descending"))
    assert len(up) >= 4 and (np.diff(up) > 0).all()
    assert (np.diff(down) < 0).all()
    arch = pitches(_spec(duration=4.0, shape="arch"))
    assert max(arch) > arch[0] and max(arch) > arch[-1]
    rep = pitches(_spec(duration=4.0, shape="repeated"))
    assert len(set(rep)) == 1 and len(rep) >= 4
    medians = [np.median(pitches(_spec(register=r, shape="melody"))) for r in ("low", "mid", "high")]
    assert medians[0] < medians[1] < medians[2]
    cello = INSTRUMENTS_BY_KEY["cello"]
    lo, hi = register_window(cello, "high")
    assert cello.low <= lo < hi <= cello.high
    drum_notes = [n for n in phrase_notes(_spec(drums="four_on_the_floor", kit="standard")) if n.channel == 9]
    kicks = [n.start for n in drum_notes if n.pitch == 36]
    assert kicks[:3] == [0.0, 1.0, 2.0]  # a kick on every beat


def test_midi_file_carries_tempo_program_and_notes(tmp_path):
    import mido

    spec = _spec(tempo_bpm=90, drums="rock", kit="standard")
    notes = phrase_notes(spec)
    write_midi(spec, notes, tmp_path / "a.mid")
    mid = mido.MidiFile(tmp_path / "a.mid")
    msgs = list(mid.tracks[0])
    assert any(m.type == "set_tempo" and round(mido.tempo2bpm(m.tempo)) == 90 for m in msgs)
    assert any(m.type == "program_change" and m.channel == 0 and m.program == 42 for m in msgs)
    assert sum(m.type == "note_on" for m in msgs) == len(notes)
    assert mid.length == pytest.approx(spec.duration, abs=0.01)


@needs_fluidsynth
def test_low_register_sounds_lower_than_high_register():
    low = render_spec(_spec(register="low", shape="melody"), RATE)
    high = render_spec(_spec(register="high", shape="melody"), RATE)
    assert low.samples.shape == high.samples.shape == (2, int(1.5 * RATE))
    assert _centroid(low) < 0.7 * _centroid(high)


@needs_fluidsynth
def test_corpus_renders_clips_and_manifest_deterministically(tmp_path):
    manifest = render_corpus(3, tmp_path / "a", seed=5, duration=1.5, sample_rate=RATE, jobs=2)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    for r in rows:
        audio = Audio.load(manifest.parent / r["path"])
        assert not Path(r["path"]).is_absolute()
        assert (audio.channels, audio.sample_rate, audio.frames) == (2, RATE, int(1.5 * RATE))
        assert r["duration"] == 1.5 and r["sample_rate"] == RATE and r["channels"] == 2
        assert audio.rms_db() > -40
        assert audio.loudness() == pytest.approx(-23.0, abs=1.0)
        assert r["source"] == "music" and r["licence"] == "MIT" and len(r["captions"]) >= 5
        assert r["attributes"]["tempo_bpm"] == plan_clip(5, r["index"], 1.5).tempo_bpm
    mtimes = [p.stat().st_mtime_ns for p in sorted((tmp_path / "a" / "clips").iterdir())]
    # same seed, one worker, fresh folder: identical samples; same folder again: nothing re-rendered
    again = render_corpus(3, tmp_path / "b", seed=5, duration=1.5, sample_rate=RATE, jobs=1)
    for r in rows:
        a, b = Audio.load(manifest.parent / r["path"]), Audio.load(again.parent / r["path"])
        np.testing.assert_array_equal(a.samples, b.samples)
    assert again.read_text() == manifest.read_text()
    render_corpus(3, tmp_path / "a", seed=5, duration=1.5, sample_rate=RATE, jobs=1)
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "a" / "clips").iterdir())] == mtimes


def test_missing_fluidsynth_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    out = tmp_path / "out"
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(MissingDependencyError, match="sudo apt-get install fluidsynth fluid-soundfont-gm"):
        render_corpus(2, out, duration=1.0)
    assert not out.exists()
    env = {**os.environ, "PATH": str(empty)}
    proc = subprocess.run([sys.executable, "-m", "foley", "data", "music", "-n", "2", "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "apt-get install fluidsynth" in proc.stderr
    assert not out.exists()


@needs_fluidsynth
def test_missing_soundfont_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEY_SOUNDFONT", str(tmp_path / "nope.sf2"))
    with pytest.raises(MissingDependencyError, match="nope.sf2"):
        render_corpus(1, tmp_path / "out", duration=1.0)
    assert not (tmp_path / "out").exists()

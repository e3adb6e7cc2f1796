"""`foley data scan | validate | stats`: caption precedence, skipped files, exit codes and output."""

from __future__ import annotations

import json

import pytest

from foley.data.manifest import read_manifest, write_manifest
from foley.data.scan import caption_from_name, scan_folder


@pytest.mark.parametrize(("rel", "caption"), [
    ("sfx/doors/door_creak_heavy.ogg", "door creak heavy"),  # the folder adds nothing ("doors" ~ "door")
    ("footsteps/Gravel_Run_take3.wav", "gravel run footsteps"),  # a folder that adds a word is appended
    ("ambience/ForestBirds-Morning_01.flac", "forest birds morning ambience"),
    ("sounds/explosionBig2.wav", "explosion big"),  # generic folder, camelCase, trailing number
    ("door_take_2.wav", "door"),
    ("weapons/sword/SwordSwing03b.ogg", "sword swing"),
    ("sounds/0001.wav", ""),
])
def test_caption_from_name(rel, caption):
    assert caption_from_name(rel) == caption


@pytest.fixture
def folder(tmp_path, write_audio):
    """A folder exercising every caption source and every skip reason."""
    d = tmp_path / "sounds"
    for name in ("a.wav", "b.wav", "c.wav", "dog_bark_02.wav", "sfx/doors/door_creak_heavy.ogg", "0001.flac"):
        write_audio(d / name, seconds=0.3, rate=16000)
    (d / "a.json").write_text(json.dumps({"description": "from json", "keywords": ["k"], "bpm": 120}))
    (d / "a.txt").write_text("from txt a\n")
    (d / "b.txt").write_text("from txt\n\nanother phrasing\n")
    (d / "c.json").write_text(json.dumps({"title": "no description here"}))  # falls through to the CSV
    (tmp_path / "captions.csv").write_text("path,caption\na.wav,from csv a\nb.wav,from csv b\n"
                                           f"c.wav,from csv\n{d / 'c.wav'},second csv caption\n"
                                           "gone.wav,orphan\n")
    (d / "notes.md").write_text("hello")
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.ogg").write_bytes(b"OggS" + bytes(200))
    import soundfile as sf

    sf.write(str(d / "zero.wav"), [], 16000)
    return d


def test_caption_precedence(folder):
    r = scan_folder(folder, folder.parent / "captions.csv", relative_to=folder.parent)
    by_name = {c.path.rsplit("/", 1)[-1]: c for c in r.clips}
    assert by_name["a.wav"].description == "from json"
    assert by_name["a.wav"].keywords == ["k"] and by_name["a.wav"].attributes == {"bpm": 120}
    assert (by_name["b.wav"].description, by_name["b.wav"].captions) == ("from txt", ["another phrasing"])
    assert (by_name["c.wav"].description, by_name["c.wav"].captions) == ("from csv", ["second csv caption"])
    assert by_name["dog_bark_02.wav"].description == "dog bark"
    assert by_name["door_creak_heavy.ogg"].description == "door creak heavy"
    assert by_name["door_creak_heavy.ogg"].path == "sounds/sfx/doors/door_creak_heavy.ogg"
    assert r.caption_sources == {"json": 1, "txt": 1, "csv": 1, "name": 2}
    assert any("gone.wav" in w for w in r.warnings)
    assert [s.path.name for s in r.skipped if s.reason.startswith("no caption")] == ["0001.flac"]
    without_csv = {c.path.rsplit("/", 1)[-1]: c.description for c in scan_folder(folder).clips}
    assert "c.wav" not in without_csv  # without the CSV, the name "c" has no words


def test_scan_cli_reports_skips_and_writes(folder, tmp_path, foley_cli):
    out = tmp_path / "out" / "m.jsonl"
    r = foley_cli("data", "scan", folder, "-o", out, "--captions", tmp_path / "captions.csv")
    assert r.returncode == 0, r.stderr
    skipped = {line.split(": ", 1)[0].removeprefix("skipped "): line.split(": ", 1)[1]
               for line in r.stderr.splitlines() if line.startswith("skipped ")}
    assert skipped == {
        str(folder / "notes.md"): "not an audio file ('.md')",
        str(folder / "empty.wav"): "file is empty (0 bytes)",
        str(folder / "corrupt.ogg"): skipped[str(folder / "corrupt.ogg")],
        str(folder / "zero.wav"): "audio has zero length",
        str(folder / "0001.flac"): "no caption: no sidecar or CSV row, and the name has no words",
    }
    assert skipped[str(folder / "corrupt.ogg")].startswith("unreadable or corrupt audio")
    assert "5 clips" in r.stdout and "5 skipped" in r.stdout
    clips = read_manifest(out)
    assert {c.path for c in clips} == {"../sounds/a.wav", "../sounds/b.wav", "../sounds/c.wav",
                                      "../sounds/dog_bark_02.wav", "../sounds/sfx/doors/door_creak_heavy.ogg"}
    assert all(c.resolved_path().is_file() for c in clips)
    r = foley_cli("data", "scan", folder, "-o", tmp_path / "abs.jsonl", "--absolute", "-q")
    assert r.returncode == 0 and "skipped" not in r.stderr
    assert all(c.path.startswith("/") for c in read_manifest(tmp_path / "abs.jsonl"))


def test_scan_of_nothing_is_an_error(tmp_path, foley_cli):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.txt").write_text("no audio")
    r = foley_cli("data", "scan", tmp_path / "in", "-o", tmp_path / "m.jsonl")
    assert r.returncode == 2 and "no usable audio" in r.stderr
    assert not (tmp_path / "m.jsonl").exists()


def test_validate(folder, tmp_path, foley_cli):
    m = tmp_path / "m.jsonl"
    assert foley_cli("data", "scan", folder, "-o", m, "--captions", tmp_path / "captions.csv").returncode == 0
    r = foley_cli("data", "validate", m)
    assert r.returncode == 0 and "5 clips, no problems" in r.stdout
    clips = read_manifest(m)
    clips[0].duration += 0.5
    clips[1].sample_rate = 44100
    clips[2].description, clips[2].captions = None, []
    clips.append(clips[4].model_copy())
    (folder / "sfx" / "doors" / "door_creak_heavy.ogg").unlink()
    write_manifest(m, clips)
    r = foley_cli("data", "validate", m)
    assert r.returncode == 1
    problems = r.stdout.splitlines()
    assert len(problems) == 6, r.stdout
    assert "line 1: sounds/a.wav: duration 0.800 s in the manifest, 0.300 s in the file" in r.stdout
    assert "line 2: sounds/b.wav: sample rate 44100 Hz in the manifest, 16000 Hz in the file" in r.stdout
    assert "line 3: sounds/c.wav: no caption" in r.stdout
    assert "line 6: sounds/sfx/doors/door_creak_heavy.ogg: duplicate of line 5" in r.stdout
    assert sum("door_creak_heavy.ogg: file not found" in p for p in problems) == 2
    (tmp_path / "bad.jsonl").write_text('{"path": 1\n')
    r = foley_cli("data", "validate", tmp_path / "bad.jsonl")
    assert r.returncode == 2 and r.stderr.strip() == f"error: {tmp_path / 'bad.jsonl'}:1: not valid JSON " \
                                                      "(Expecting ',' delimiter)"


def test_stats(folder, tmp_path, foley_cli):
    m1, m2 = tmp_path / "one.jsonl", tmp_path / "two.jsonl.gz"
    foley_cli("data", "scan", folder, "-o", m1, "--captions", tmp_path / "captions.csv")
    clips = read_manifest(m1)
    for c in clips:
        c.duration, c.sample_rate, c.source = 12.0, 48000, "game"
    write_manifest(m2, clips)
    r = foley_cli("data", "stats", m1, m2, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["clips"] == 10 and s["manifests"] == {str(m1): 5, str(m2): 5}
    assert s["total_seconds"] == pytest.approx(5 * 0.3 + 5 * 12.0, abs=1e-6)
    assert {h["bin"]: h["clips"] for h in s["histogram"]}["0-1 s"] == 5
    assert {h["bin"]: h["clips"] for h in s["histogram"]}["10-30 s"] == 5
    assert s["sample_rates"] == {"16000": 5, "48000": 5} and s["channels"] == {"1": 10}
    assert s["sources"] == {"unknown": 5, "game": 5}
    assert dict(s["top_words"])["csv"] == 4 and "from" not in dict(s["top_words"])  # a stop word
    r = foley_cli("data", "stats", m1)
    assert r.returncode == 0 and "clips 5" in r.stdout and "door" in r.stdout and "####" in r.stdout

"""Manifests: AudioCraft's format read unchanged, unknown fields kept, bad lines named."""

from __future__ import annotations

import gzip
import json

import pytest

from foley.data.manifest import Clip, clip_captions, read_manifest, read_sidecar, write_manifest
from foley.errors import ManifestError

# A sidecar exactly as AudioCraft's egs/example ships them (MusicInfo fields).
SIDECAR = {"key": "", "artist": "Voyager I", "sample_rate": 48000, "file_extension": "wav",
           "description": "energetic EDM", "keywords": "", "duration": 1.0, "bpm": "", "genre": "electronic",
           "title": "Electro 1", "name": "electro_1", "instrument": "Mix", "moods": ["energetic"]}


@pytest.fixture
def audiocraft_set(tmp_path, write_audio):
    """Two wavs with sidecars and AudioCraft manifests (absolute paths) as data.jsonl and data.jsonl.gz."""
    audio = tmp_path / "audio"
    lines = []
    for name, desc in (("electro_1", "energetic EDM"), ("dog", "a dog barks twice")):
        write_audio(audio / f"{name}.wav", seconds=1.0, rate=48000, channels=2)
        (audio / f"{name}.json").write_text(json.dumps({**SIDECAR, "name": name, "description": desc}))
        lines.append({"path": str(audio / f"{name}.wav"), "duration": 1.0, "sample_rate": 48000,
                      "amplitude": None, "weight": None, "info_path": None})
    text = "".join(json.dumps(x) + "\n" for x in lines)
    (tmp_path / "egs").mkdir()
    (tmp_path / "egs" / "data.jsonl").write_text(text)
    with gzip.open(tmp_path / "egs" / "data.jsonl.gz", "wb") as f:  # as audiocraft's save_audio_meta does
        f.write(text.encode("utf-8"))
    return tmp_path, lines


@pytest.mark.parametrize("name", ["data.jsonl", "data.jsonl.gz"])
def test_audiocraft_manifest_loads_unchanged(audiocraft_set, name):
    root, lines = audiocraft_set
    clips = read_manifest(root / "egs" / name)
    assert [c.to_json() for c in clips] == lines
    assert clips[0].resolved_path() == root / "audio" / "electro_1.wav"
    assert read_sidecar(clips[1].resolved_path()) == {**SIDECAR, "name": "dog", "description": "a dog barks twice"}
    assert [clip_captions(c) for c in clips] == [["energetic EDM"], ["a dog barks twice"]]
    assert clip_captions(clips[0], use_sidecar=False) == []


def test_round_trip_keeps_unknown_fields(audiocraft_set, tmp_path):
    root, lines = audiocraft_set
    clips = read_manifest(root / "egs" / "data.jsonl.gz")
    clips[0].description = "loud synth"
    clips[1].meta = {"split": "test", "tags": [1, 2]}
    out = tmp_path / "out" / "copy.jsonl.gz"
    write_manifest(out, clips)
    with gzip.open(out, "rt") as f:  # still plain gzip'd JSONL for AudioCraft
        raw = [json.loads(line) for line in f]
    assert raw[0] == {**lines[0], "description": "loud synth"}
    assert raw[1] == {**lines[1], "meta": {"split": "test", "tags": [1, 2]}}
    assert [c.to_json() for c in read_manifest(out)] == raw
    assert [p.name for p in out.parent.iterdir()] == ["copy.jsonl.gz"]


def test_our_fields_and_relative_paths(tmp_path, monkeypatch):
    clip = Clip(path="sfx/a.wav", duration=2.5, sample_rate=16000, channels=2, description="rain on a roof",
                captions=["rain on a roof", "  roof rain  ", ""], attributes={"space": "dry"},
                source="synth", licence="CC0", file_path="x", info_path="a.zip:a.json")
    write_manifest(tmp_path / "set" / "m.jsonl", [clip])
    monkeypatch.chdir(tmp_path)  # relative paths resolve against the manifest's folder, not the cwd
    (back,) = read_manifest("set/m.jsonl")
    assert back.to_json() == clip.to_json()
    assert back.resolved_path() == (tmp_path / "set" / "sfx" / "a.wav")
    assert back.file_path == "x" and back.info_path == "a.zip:a.json"
    assert clip_captions(back) == ["rain on a roof", "roof rain"]


def test_keywords_are_the_last_resort(tmp_path):
    assert clip_captions(Clip(path="/x.wav", duration=1, sample_rate=8000, keywords=["dog", "bark"])) == [
        "dog, bark"]
    assert clip_captions(Clip(path=str(tmp_path / "x.wav"), duration=1, sample_rate=8000)) == []


@pytest.mark.parametrize(("line", "words"), [
    ('{"path": "a.wav", "duration": 1.0', ":3: not valid JSON"),
    ('["a.wav", 1.0, 16000]', ":3: expected a JSON object"),
    ('{"path": "a.wav", "sample_rate": 16000}', ":3: field 'duration'"),
    ('{"path": "a.wav", "duration": "long", "sample_rate": 16000}', ":3: field 'duration'"),
    ('{"path": "a.wav", "duration": 1.0, "sample_rate": 16000, "captions": "x"}', ":3: field 'captions'"),
])
def test_bad_line_names_file_and_line(tmp_path, line, words):
    good = json.dumps({"path": "a.wav", "duration": 1.0, "sample_rate": 16000})
    m = tmp_path / "m.jsonl"
    m.write_text(f"{good}\n\n{line}\n{good}\n")
    with pytest.raises(ManifestError) as e:
        read_manifest(m)
    assert str(e.value).startswith(f"{m}{words}") and "\n" not in str(e.value)


def test_missing_manifest_and_bad_sidecar(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.jsonl")
    (tmp_path / "a.json").write_text("{oops")
    with pytest.raises(ManifestError, match=r"a\.json: sidecar is not valid JSON"):
        read_sidecar(tmp_path / "a.wav")
    assert read_sidecar(tmp_path / "b.wav") == {}

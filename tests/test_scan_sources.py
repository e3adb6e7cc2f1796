"""`foley data scan` reads foley's own outputs: the manifest `data synth` writes, and the prompt in a generated
sound's provenance sidecar; it says how many captions came from each source."""

from __future__ import annotations

import json

from foley.data.manifest import read_manifest
from foley.data.scan import scan_folder


def test_scan_of_a_synth_corpus_takes_its_manifest_captions(tmp_path, foley_cli):
    corpus = tmp_path / "synth"
    r = foley_cli("data", "synth", "-n", 3, "-o", corpus, "--seed", 0)
    assert r.returncode == 0, r.stderr
    r = foley_cli("data", "scan", corpus, "-o", tmp_path / "mine.jsonl")
    assert r.returncode == 0, r.stderr
    assert "3 clips" in r.stdout and "3 from manifest in the folder" in r.stdout
    assert "no caption" not in r.stderr and "manifest.jsonl" not in r.stderr  # the manifest is used, not skipped
    original = {c.resolved_path().resolve(): c for c in read_manifest(corpus / "manifest.jsonl")}
    scanned = read_manifest(tmp_path / "mine.jsonl")
    assert len(scanned) == 3
    for c in scanned:
        o = original[c.resolved_path().resolve()]
        assert c.description == o.description and c.captions == [x for x in o.captions if x != o.description]
        assert c.attributes == o.attributes and c.keywords == o.keywords


def test_generated_sounds_are_captioned_by_their_prompt_not_their_name(tmp_path, write_audio):
    d = tmp_path / "out"
    write_audio(d / "drone_2.wav", seconds=0.3)
    (d / "drone_2.json").write_text(json.dumps({
        "file": "drone_2.wav", "seed": 7, "variation": 2, "model": {"name": "starter", "family": "ldm"},
        "request": {"prompt": "a deep drone slowly rising in pitch", "task": "generate", "duration": 0.3}}))
    write_audio(d / "door_creak.wav", seconds=0.3)  # no sidecar: the name
    r = scan_folder(d)
    by = {c.path.rsplit("/", 1)[-1]: c for c in r.clips}
    assert by["drone_2.wav"].description == "a deep drone slowly rising in pitch"
    assert by["drone_2.wav"].attributes == {"generated_by": "starter", "seed": 7, "task": "generate"}
    assert by["door_creak.wav"].description == "door creak"
    assert r.caption_sources == {"provenance": 1, "name": 1}


def test_sidecar_beats_manifest_and_bad_or_foreign_manifests_fall_back(tmp_path, write_audio):
    d = tmp_path / "d"
    for n in ("a.wav", "bell_ring.wav", "c_hum.wav"):
        write_audio(d / n, seconds=0.3)
    (d / "a.json").write_text(json.dumps({"description": "from sidecar"}))
    rows = [{"path": "a.wav", "duration": 0.3, "sample_rate": 16000, "description": "from manifest a"},
            {"path": "other/bell_ring.wav", "duration": 0.3, "sample_rate": 16000, "description": "not this file"},
            {"path": "c_hum.wav", "duration": 0.3, "sample_rate": 16000, "keywords": ["only", "keywords"]}]
    (d / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    (d / "broken.jsonl").write_text("{not json\n")
    r = scan_folder(d)
    by = {c.path.rsplit("/", 1)[-1]: c.description for c in r.clips}
    assert by == {"a.wav": "from sidecar", "bell_ring.wav": "bell ring", "c_hum.wav": "hum"}
    assert r.caption_sources == {"json": 1, "name": 2}
    assert any("broken.jsonl" in w and "not used" in w for w in r.warnings)
    assert not [s for s in r.skipped if s.path.suffix == ".jsonl"]

"""`data synth` and `data music` share one vocabulary: -j/--jobs (synth's old --workers hidden but working),
FLAC by default, --format, -d."""

from __future__ import annotations

import json

import soundfile as sf


def test_synth_defaults_to_flac_and_takes_jobs_and_format(tmp_path, foley_cli):
    r = foley_cli("data", "synth", "-n", 2, "-o", tmp_path / "a", "-d", 1, "-j", 1, "-q")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    assert [x["path"].rsplit(".", 1)[1] for x in rows] == ["flac", "flac"]
    assert sf.info(str(tmp_path / "a" / rows[0]["path"])).format == "FLAC" and rows[0]["duration"] == 1.0
    r = foley_cli("data", "synth", "-n", 2, "-o", tmp_path / "b", "-d", 1, "--workers", 2, "--format", "wav", "-q")
    assert r.returncode == 0, r.stderr
    rows_b = [json.loads(x) for x in (tmp_path / "b" / "manifest.jsonl").read_text().splitlines()]
    assert [x["path"] for x in rows_b] == [x["path"].replace(".flac", ".wav") for x in rows]
    a, _ = sf.read(str(tmp_path / "a" / rows[1]["path"]))
    b, _ = sf.read(str(tmp_path / "b" / rows_b[1]["path"]))
    assert abs(a - b).max() <= 1 / 32768 + 1e-9  # same sound (to one 16-bit step: libsndfile rounds FLAC and WAV
    assert abs(a).max() > 0.01                     # differently) whatever the format and the number of workers


def test_bad_format_is_one_line_and_writes_nothing(tmp_path, foley_cli):
    r = foley_cli("data", "synth", "-n", 1, "-o", tmp_path / "c", "--format", "mp3")
    assert r.returncode == 2 and "--format mp3" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "c").exists()
    r = foley_cli("data", "synth", "-n", 1, "-o", tmp_path / "c", "--jobs", -1)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_help_of_both_shows_jobs_not_workers(foley_cli):
    for cmd in ("synth", "music"):
        r = foley_cli("data", cmd, "--help")
        assert "--jobs" in r.stdout and "--workers" not in r.stdout and "--format" in r.stdout, cmd
        assert "--duration" in r.stdout and "-d" in r.stdout

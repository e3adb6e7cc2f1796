"""`foley generate` / `foley edit` through the real CLI: outputs, provenance, resumable batches, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(scope="module")
def model(tiny_ldm):
    return str(tiny_ldm[1])


def test_generate_writes_audio_sidecar_and_plot(foley_cli, model, tmp_path):
    out = tmp_path / "a.wav"
    r = foley_cli("generate", "a tone at 440 hertz", "-d", "1.5", "-m", model, "--seed", "4", "--plot", "-o", out)
    assert r.returncode == 0, r.stderr
    data, rate = sf.read(out)
    assert rate == 16000 and data.shape == (24000, 2)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["seed"] == 4 and meta["request"]["prompt"] == "a tone at 440 hertz"
    assert meta["request"]["duration"] == 1.5 and len(meta["model"]["weight_hash"]) == 12
    assert "torch" in meta["versions"] and "diffusers" in meta["versions"]
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    again = tmp_path / "b.wav"
    assert foley_cli("generate", "a tone at 440 hertz", "-d", "1.5", "-m", model, "--seed", "4",
                     "-o", again).returncode == 0
    assert np.array_equal(sf.read(out)[0], sf.read(again)[0])


def test_variations_and_formats(foley_cli, model, tmp_path):
    r = foley_cli("generate", "tone", "-d", "1", "-m", model, "-n", "2", "--seed", "1", "--format", "flac",
                  "-o", tmp_path / "v.wav")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in tmp_path.glob("v_*.flac"))
    assert names == ["v_001.flac", "v_002.flac"]
    seeds = [json.loads((tmp_path / n).with_suffix(".json").read_text())["seed"] for n in names]
    assert seeds == [1, 2]


def test_batch_file_resumes(foley_cli, model, tmp_path):
    batch = tmp_path / "prompts.txt"
    batch.write_text("# two sounds\na tone at 220 hertz\n\na steady tone\n")
    args = ("generate", "--batch-file", batch, "-d", "1", "-m", model, "--seed", "3", "-o", tmp_path / "b.wav")
    r = foley_cli(*args)
    assert r.returncode == 0, r.stderr
    first = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("b_*.wav")}
    assert len(first) == 2
    r2 = foley_cli(*args)
    assert r2.returncode == 0 and "nothing to do" in r2.stdout
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("b_*.wav")} == first


@pytest.mark.parametrize("args, message", [
    (["generate", "   ", "-d", "1"], "empty"),
    (["generate", "x" * 10000, "-d", "1"], "characters"),
    (["generate", "rain", "-d", "-2"], "positive"),
    (["generate", "rain", "-d", "100000"], "limit"),
    (["generate", "rain", "-d", "5", "--guidance", "nan"], "finite"),
    (["generate", "rain", "-d", "5", "--steps", "0"], "steps"),
    (["generate", "rain", "-d", "5", "-m", "no-such-model"], "unknown model"),
    (["generate", "rain", "-d", "5", "-o", "x.mp4"], "cannot write"),
    (["generate", "rain", "-d", "5", "--scheduler", "nope"], "scheduler"),
    (["generate"], "no prompt"),
])
def test_bad_requests_one_line_and_no_files(foley_cli, model, tmp_path, args, message):
    args = [a for a in args]
    if "-m" not in args:
        args += ["-m", model]
    if "-o" not in args:
        args += ["-o", "out.wav"]
    r = foley_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0].lower(), r.stderr
    assert not any(tmp_path.rglob("*.*")), list(tmp_path.rglob("*"))


def test_edit_bad_inputs(foley_cli, model, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    r = foley_cli("edit", bad, "rain", "-m", model, "-o", tmp_path / "o.wav")
    assert r.returncode == 2 and "broken.wav" in r.stderr and not (tmp_path / "o.wav").exists()
    good = tmp_path / "in.wav"
    sf.write(good, np.zeros((16000, 2), np.float32) + 0.1, 16000)
    r = foley_cli("edit", good, "rain", "--task", "inpaint", "--start", "0.5", "--end", "3", "-m", model,
                  "-o", tmp_path / "o.wav")
    assert r.returncode == 2 and "outside the clip" in r.stderr and not (tmp_path / "o.wav").exists()
    r = foley_cli("edit", good, "rain", "--task", "inpaint", "-m", model, "-o", tmp_path / "o.wav")
    assert r.returncode == 2 and "--start" in r.stderr


def test_edit_inpaint_cli(foley_cli, model, tmp_path):
    src = tmp_path / "in.wav"
    t = np.arange(32000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    sf.write(src, np.stack([x, x], axis=1), 16000, subtype="FLOAT")
    out = tmp_path / "o.wav"
    r = foley_cli("edit", src, "a steady tone", "--task", "inpaint", "--start", "0.8", "--end", "1.2", "-m", model,
                  "--seed", "1", "-o", out)
    assert r.returncode == 0, r.stderr
    y, _ = sf.read(out)
    assert y.shape == (32000, 2)
    assert np.max(np.abs(y[:12000, 0] - x[:12000])) < 1e-3  # PCM_16 output precision
    assert json.loads(out.with_suffix(".json").read_text())["request"]["task"] == "inpaint"


def test_an_output_left_inaudible_after_its_redraws_is_said_on_the_line():
    """The generator redraws an inaudible sound from derived seeds; when every draw stays silent the CLI's line
    says so (the sidecar's redrawn.silent) instead of reporting a silent file like any other."""
    import numpy as np

    from foley.audio import Audio
    from foley.cli.generate import _inaudible

    quiet = Audio(np.full((1, 1600), 1e-5, np.float32), 16000)
    quiet.meta = {"redrawn": {"from_seed": 1, "tries": 2, "silent": True}}
    assert _inaudible(quiet) == ("; inaudible (-100 dBFS) after 2 redraws: try another --seed, or name the sound's "
                                 "level in the prompt")
    quiet.meta["redrawn"]["silent"] = False  # the redraw found an audible one
    assert _inaudible(quiet) == ""

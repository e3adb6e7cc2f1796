"""No traceback reaches a user of the `foley` command: every bad input is one line, a non-zero exit, no file.

Each case runs the real entry point (`python -m foley`) in a subprocess with the tiny model of the test
session, so a refusal that stopped happening would let the command write its output and fail the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foley.codec.tokens import _FIXED, MAGIC


def _sys_is_read_only() -> bool:
    """/sys refuses new files even to root in a container (chmod cannot make a folder read-only for root)."""
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        return True
    os.close(fd)
    os.unlink(probe)
    return False


READ_ONLY = pytest.mark.skipif(not _sys_is_read_only(), reason="needs a read-only folder (/sys)")


def token_file(path: Path, **header) -> Path:
    """A token file whose header says ``header`` (over sane defaults); the payload fits the defaults."""
    h = {"codec": "x", "codec_hash": "abc", "sample_rate": 16000, "channels": 1, "frame_rate": 50.0, "n_q": 2,
         "codebook_size": 1024, "frames": 10, "length": 3200, "extra": {}, **header}
    blob = json.dumps(h).encode()
    payload = bytes(1 * 2 * 10 * 10 // 8)  # 2 codebooks x 10 frames x 10 bits of the default header
    path.write_bytes(_FIXED.pack(MAGIC, 1, len(blob)) + blob + payload)
    return path


@pytest.fixture(scope="module")
def model(tiny_ldm):
    return str(tiny_ldm[1])


@pytest.fixture
def inputs(tmp_path):
    """Every input file the cases below name, created before the command runs."""
    rate = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    sf.write(tmp_path / "in.wav", tone, rate)
    sf.write(tmp_path / "one.wav", tone[:1], rate)
    sf.write(tmp_path / "short.wav", tone[:800], rate)  # 50 ms
    for name, bad in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        x = tone.copy()
        x[100] = bad
        sf.write(tmp_path / name, x, rate, subtype="FLOAT")
    (tmp_path / "prompts.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "m.jsonl").write_text("")
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "folder.wav").mkdir()
    sf.write(tmp_path / "a_folder" / "door_creak.wav", tone, rate)
    token_file(tmp_path / "ok.foley")
    token_file(tmp_path / "frames.foley", frames=10**13)
    token_file(tmp_path / "length.foley", length=10**13)
    token_file(tmp_path / "cb0.foley", codebook_size=0)
    (tmp_path / "bad.toml").write_text("[unet]\nblock_out_channels = [16, 32]\n")
    (tmp_path / "bad_vae.toml").write_text("[vae]\nblock_out_channels = []\n")
    return tmp_path


def run(*args, cwd, env=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "foley", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_one_line(r, message: str, code: int = 2) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == code, r.stdout + r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert message in lines[0].lower(), lines[0]
    assert not r.stdout.strip(), r.stdout


# (arguments, words the one line must hold); "{M}" is the tiny model; every case exits 2 and writes nothing
CASES = {
    # usage errors (typer's vendored click)
    "duration-not-a-number": (["generate", "rain", "-d", "abc", "-m", "{M}", "-o", "o.wav"],
                              "invalid value for '--duration' ('abc')"),
    "variations-not-a-number": (["generate", "rain", "-n", "abc", "-m", "{M}", "-o", "o.wav"],
                                "invalid value for '--variations'"),
    "unknown-option": (["generate", "rain", "--bogus", "1", "-m", "{M}", "-o", "o.wav"], "no such option: --bogus"),
    "edit-without-output": (["edit", "in.wav", "rain", "-m", "{M}"], "missing option '--output'"),
    "unknown-command": (["rainify", "x"], "no such command 'rainify'"),
    "missing-argument": (["codec", "decode"], "missing argument"),
    "synth-zero-clips": (["data", "synth", "-o", "corpus", "-n", "0"], "invalid value for '--num'"),
    "synth-fraction-over-1": (["data", "synth", "-o", "corpus", "--preset-fraction", "2"],
                              "invalid value for '--preset-fraction'"),
    # inputs the commands refuse themselves
    "batch-file-binary": (["generate", "--batch-file", "prompts.bin", "-m", "{M}", "-o", "o.wav"],
                          "not a utf-8 text file"),
    "batch-file-folder": (["generate", "--batch-file", "a_folder", "-m", "{M}", "-o", "o.wav"], "not a file"),
    "negative-cutoff": (["edit", "in.wav", "--task", "super_resolution", "--cutoff", "-100", "-m", "{M}",
                         "-o", "o.wav"], "cutoff must be a positive"),
    "cutoff-over-nyquist": (["edit", "in.wav", "--task", "super_resolution", "--cutoff", "9000", "-m", "{M}",
                             "-o", "o.wav"], "nyquist"),
    "encode-to-folder": (["codec", "encode", "in.wav", "-o", "a_folder"], "is a folder"),
    "encode-under-a-file": (["codec", "encode", "in.wav", "-o", "in.wav/x.foley"], "is a file, not a folder"),
    "scan-to-folder": (["data", "scan", "a_folder", "-o", "a_folder"], "is a folder"),
    "decode-absurd-frames": (["codec", "decode", "frames.foley", "-o", "o.wav"], "truncated or damaged"),
    "decode-absurd-length": (["codec", "decode", "length.foley", "-o", "o.wav"], "length 10000000000000"),
    "decode-codebook-size-0": (["codec", "decode", "cb0.foley", "-o", "o.wav"], "codebook_size 0"),
    "decode-to-folder": (["codec", "decode", "ok.foley", "-o", "folder.wav"], "is a folder"),
    "generate-to-folder": (["generate", "rain", "-d", "1", "-m", "{M}", "-o", "folder.wav"], "is a folder"),
    "edit-to-folder": (["edit", "in.wav", "rain", "-m", "{M}", "-o", "folder.wav"], "is a folder"),
    "recipe-groups": (["train", "ldm", "--data", "m.jsonl", "--recipe", "bad.toml", "--run", "run"],
                      "[unet] block_out_channels = [16, 32]: 16 is not divisible by norm_num_groups = 32"),
    "recipe-empty-blocks": (["train", "ldm", "--data", "m.jsonl", "--recipe", "bad_vae.toml", "--run", "run"],
                            "[vae] block_out_channels must be a non-empty list"),
    # wrong acceptances (issue 12, section 3)
    "extend-shorter-than-input": (["edit", "in.wav", "rain", "--task", "extend", "-d", "0.5", "-m", "{M}",
                                   "-o", "o.wav"], "not longer than the input (1.00 s)"),
    "extend-zero": (["edit", "in.wav", "rain", "--task", "extend", "-d", "0", "-m", "{M}", "-o", "o.wav"],
                    "duration must be a positive"),
    "vocoder-unknown": (["generate", "rain", "-d", "1", "--vocoder", "bogus", "-m", "{M}", "-o", "o.wav"],
                        "unknown vocoder 'bogus'; choose one of auto, griffin-lim"),
    "edit-one-sample": (["edit", "one.wav", "rain", "-m", "{M}", "-o", "o.wav"], "needs at least 0.1 s"),
    "edit-50-ms": (["edit", "short.wav", "rain", "-m", "{M}", "-o", "o.wav"], "needs at least 0.1 s"),
    "validate-empty-manifest": (["data", "validate", "empty.jsonl"], "has no clips"),
    "edit-nan": (["edit", "nan.wav", "rain", "-m", "{M}", "-o", "o.wav"], "nan or infinite"),
    "edit-inf": (["edit", "inf.wav", "rain", "-m", "{M}", "-o", "o.wav"], "nan or infinite"),
}

READ_ONLY_CASES = {  # an output folder nobody may write: refused before any model loads
    "generate": (["generate", "rain", "-d", "1", "-m", "{M}", "-o", "/sys/o.wav"], "cannot write the output"),
    "edit": (["edit", "in.wav", "rain", "-m", "{M}", "-o", "/sys/o.wav"], "cannot write the output"),
    "codec-encode": (["codec", "encode", "in.wav", "-o", "/sys/x.foley"], "cannot write the token file"),
    "codec-decode": (["codec", "decode", "ok.foley", "-o", "/sys/o.wav"], "cannot write the output"),
    "data-scan": (["data", "scan", "a_folder", "-o", "/sys/m.jsonl"], "cannot write the manifest"),
    "stream": (["stream", "rain", "-d", "1", "-m", "{M}", "-o", "/sys/o.wav"], "cannot write the output"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_writes_nothing(case, model, inputs):
    args, message = CASES[case]
    before = snapshot(inputs)
    r = run(*[a.replace("{M}", model) for a in args], cwd=inputs)
    assert_one_line(r, message.lower())
    assert snapshot(inputs) == before, snapshot(inputs) - before


@READ_ONLY
@pytest.mark.parametrize("case", list(READ_ONLY_CASES))
def test_unwritable_output_is_refused_before_work(case, model, inputs):
    args, message = READ_ONLY_CASES[case]
    before = snapshot(inputs)
    r = run(*[a.replace("{M}", model) for a in args], cwd=inputs)
    assert_one_line(r, message)
    assert snapshot(inputs) == before


def test_decode_refuses_more_codebooks_than_the_codec_has(inputs):
    """A header that matches the codec's hash, rate and codebook size but claims extra codebooks."""
    from foley.codec.model import FoleyCodec
    from tests.test_codec import random_codec

    folder = random_codec().save(inputs / "codec")
    c = FoleyCodec.from_folder(folder)
    n_q, frames = c.num_quantizers + 1, 4
    bits = int(np.ceil(np.log2(c.codebook_size)))
    h = {"codec": str(folder), "codec_hash": c.weight_hash(), "sample_rate": c.sample_rate, "channels": 1,
         "frame_rate": c.frame_rate, "n_q": n_q, "codebook_size": c.codebook_size, "frames": frames,
         "length": frames * c.hop_length, "extra": {}}
    blob = json.dumps(h).encode()
    (inputs / "many.foley").write_bytes(_FIXED.pack(MAGIC, 1, len(blob)) + blob + bytes(-(-n_q * frames * bits // 8)))
    r = run("codec", "decode", "many.foley", "-o", "o.wav", cwd=inputs)
    assert_one_line(r, f"{n_q} codebooks but the codec has {c.num_quantizers}")
    assert not (inputs / "o.wav").exists()


def test_extend_writes_the_length_its_sidecar_records(model, inputs):
    for args, seconds in ((["-d", "2.5"], 2.5), ([], 6.0)):  # no -d: the input (1 s) and 5 s more
        out = inputs / f"ext{len(args)}.wav"
        r = run("edit", "in.wav", "a steady tone", "--task", "extend", *args, "--steps", "2", "-m", model,
                "-o", out, cwd=inputs)
        assert r.returncode == 0, r.stderr
        assert sf.info(str(out)).frames == round(seconds * 16000)
        assert json.loads(out.with_suffix(".json").read_text())["request"]["duration"] == seconds


CRASH = """
import sys
import foley.cli as cli
import foley.cli.generate as g

def boom(*a, **k):
    raise {exc}

g._prompts = boom  # an unexpected failure inside a real command
cli.main(sys.argv[1:])
"""


def crash(exc: str, *args, cwd, env):
    return subprocess.run([sys.executable, "-c", CRASH.format(exc=exc), *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **env}, timeout=60)


def test_internal_error_is_one_line_and_logs_the_traceback(tmp_path):
    home = tmp_path / "home"
    r = crash("ValueError('kaboom')", "generate", "rain", "-o", "o.wav", cwd=tmp_path,
              env={"FOLEY_HOME": str(home), "FOLEY_DEBUG": ""})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: internal error (ValueError: kaboom); details in ")
    assert "rerun with --debug" in lines[0]
    logs = list((home / "logs").glob("foley-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    text = logs[0].read_text()
    assert "Traceback" in text and "ValueError: kaboom" in text and "generate rain" in text


@READ_ONLY
def test_internal_error_log_falls_back_to_the_temp_folder(tmp_path):
    r = crash("ValueError('kaboom')", "generate", "rain", cwd=tmp_path,
              env={"FOLEY_HOME": "/sys/foley", "TMPDIR": str(tmp_path), "FOLEY_DEBUG": ""})
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    logs = list((tmp_path / "foley-logs").glob("foley-*.log"))
    assert len(logs) == 1 and str(logs[0]) in r.stderr


@pytest.mark.parametrize("how", ["--debug", "FOLEY_DEBUG=1"])
def test_debug_shows_the_traceback(tmp_path, how):
    args = ["--debug", "generate", "rain"] if how == "--debug" else ["generate", "rain"]
    env = {"FOLEY_HOME": str(tmp_path / "home"), "FOLEY_DEBUG": "1" if how != "--debug" else ""}
    r = crash("ValueError('kaboom')", *args, cwd=tmp_path, env=env)
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr and "ValueError: kaboom" in r.stderr
    assert not (tmp_path / "home" / "logs").exists()


def test_interrupt_exits_130(tmp_path):
    r = crash("KeyboardInterrupt()", "generate", "rain", cwd=tmp_path, env={"FOLEY_DEBUG": ""})
    assert r.returncode == 130 and r.stderr.strip() == "interrupted"


def test_debug_is_a_root_option(tmp_path):
    r = run("--help", cwd=tmp_path)
    assert r.returncode == 0 and "--debug" in r.stdout

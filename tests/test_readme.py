"""Every shell command of the README runs (with small sizes), in order, in a fresh folder; so does its Python snippet.

Rewrites (README -> test): `-n` clips/variations to 2 (data synth: 12), `-d` to 2 s (edits that extend: 4 s),
`--steps` to 2, the shipped diffusion model `starter` to the session's tiny model (the token LM `starter-lm` is
the shipped one: it is fast), `--port` to a free port, training to a few steps (`--set`). Only commands that
need the network (`models pull`, a Hub codec), an audio device (the `aplay` end of a pipe: the PCM on stdout
is checked instead), a long training (codec, LM) or an installer (`make`) are not run; for those the command
must at least parse (`--help` of the subcommand, `make -n`). A README command no rule knows fails the test,
so a new command cannot slip in untested.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
NETWORK = {("models", "pull")}
LONG_TRAINING = {("train", "codec"), ("train", "lm")}
SMOKE_OVERRIDES = ["--set", "vae.steps=3", "--set", "unet.steps=3", "--set", "train.save_every=3",
                   "--set", "train.valid_every=3", "--set", "audio.valid_fraction=0.2"]


def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def readme_commands() -> list[str]:
    """Each non-empty line of the ```bash blocks (comments stripped by the shell's rules)."""
    lines = []
    for block in readme_blocks("bash"):
        for line in block.splitlines():
            if shlex.split(line, comments=True):
                lines.append(line)
    return lines


def segments(line: str) -> list[list[str]]:
    """Split a command line on `&&` and `|` (kept as one-token segments)."""
    lex = shlex.shlex(line, posix=True, punctuation_chars="|&")
    lex.whitespace_split, lex.commenters = True, "#"
    out: list[list[str]] = [[]]
    for tok in lex:
        if tok in ("&&", "|"):
            out += [[tok], []]
        else:
            out[-1].append(tok)
    return out


def _set(args: list[str], names: tuple[str, ...], value: str) -> list[str]:
    return [value if i > 0 and args[i - 1] in names else a for i, a in enumerate(args)]




class Session:
    """Runs README commands in one folder, in README order, with the rewrites of the module docstring."""

    def __init__(self, cwd: Path, tiny_model: Path):
        self.cwd, self.tiny = cwd, str(tiny_model)
        self.env = {**os.environ, "HOME": str(cwd / "home"), "FOLEY_HOME": str(cwd / "foley-home"),
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                    "FOLEY_THREADS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "COLUMNS": "200"}
        self.ran: list[str] = []
        self.checked: list[str] = []
        self.study_id: str | None = None

    def rewrite(self, args: list[str]) -> list[str]:
        if args[0] != "foley":
            return args
        cmd = tuple(args[1:3])
        args = _set(args, ("--steps",), "2")
        args = _set(args, ("-n",), "12" if cmd == ("data", "synth") else "2")
        extending = cmd[0] == "edit" and ("extend" in args or "continue" in args)
        args = _set(args, ("-d", "--duration"), "4" if extending else "2")
        args = _set(args, ("--port",), str(free_port()))
        args = [self.study_id if a == "STUDY_ID" and self.study_id else a for a in args]
        args = [self.env["HOME"] + a[1:] if a.startswith("~/") else a for a in args]  # the shell's tilde
        if cmd[0] in ("generate", "edit"):
            if "-m" not in args and "--model" not in args:
                args += ["-m", self.tiny]
            args = [self.tiny if a == "starter" and args[i - 1] in ("-m", "--model") else a
                    for i, a in enumerate(args)]
        if cmd == ("train", "ldm"):
            assert "recipes/smoke-ldm.toml" in args, "the README's training command must be the smoke recipe"
            args += SMOKE_OVERRIDES
        return args

    def run(self, line: str, timeout: float = 300) -> subprocess.CompletedProcess:
        segs = [self.rewrite(s) if s[0] not in ("&&", "|") else s for s in segments(line)]
        if ["|"] in segs and segs[segs.index(["|"]) + 1][0] == "aplay":  # no sound device: check the PCM
            segs = segs[:segs.index(["|"])]
            r = subprocess.run(shlex.join(segs[0]), shell=True, cwd=self.cwd, env=self.env, capture_output=True,
                               timeout=timeout)
            assert r.returncode == 0, (line, r.stderr.decode()[-2000:])
            assert len(r.stdout) > 16000 and len(r.stdout) % 4 == 0, (line, len(r.stdout))  # 16-bit stereo
            self.ran.append(line)
            return r
        cmd = " ".join(s[0] if s[0] in ("&&", "|") else shlex.join(s) for s in segs)
        r = subprocess.run(["bash", "-c", cmd], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        assert r.returncode == 0, (line, cmd, r.stdout[-1000:], r.stderr[-3000:])
        self.ran.append(line)
        return r

    def parses(self, line: str) -> None:
        """Commands not run here: the subcommand exists and accepts --help (make: its dry run)."""
        for seg in segments(line):
            if seg[0] in ("&&", "|"):
                continue
            if seg[0] == "make":
                r = subprocess.run(["make", "-n", *seg[1:]], cwd=ROOT, capture_output=True, text=True,
                                   env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
            else:
                words = [w for w in seg[1:3] if not w.startswith("-")]
                r = subprocess.run(["foley", *words[:2], "--help"], cwd=self.cwd, env=self.env, capture_output=True,
                                   text=True)
            assert r.returncode == 0, (line, r.stdout[-500:], r.stderr[-500:])
        self.checked.append(line)


def _inputs(cwd: Path) -> None:
    """The files the README's commands take as given: in.wav, lowpassed.wav, prompts.txt, ~/my_sounds."""
    from foley.audio import Audio

    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    Audio(np.stack([x, x * 0.8]).astype(np.float32), 16000).save(cwd / "in.wav")
    from scipy.signal import butter, sosfiltfilt

    low = sosfiltfilt(butter(8, 2000, fs=16000, output="sos"), x + 0.2 * rng.standard_normal(t.size))
    Audio(np.stack([low, low]).astype(np.float32), 16000).save(cwd / "lowpassed.wav")
    (cwd / "prompts.txt").write_text("rain on a tin roof\na cat purring\n")
    mine = cwd / "home" / "my_sounds"
    for i, name in enumerate(("door_creak_heavy.wav", "dog_bark.wav", "glass_break.wav", "wind_gust.wav")):
        y = 0.3 * np.sin(2 * np.pi * 110 * (i + 1) * t) + 0.05 * rng.standard_normal(t.size)
        Audio(np.stack([y, y]).astype(np.float32), 16000).save(mine / name)


@pytest.fixture(scope="module")
def session(tiny_ldm):
    # its own folder, not pytest's numbered tmp dirs, which a concurrent pytest run may rotate away mid-test
    import tempfile

    with tempfile.TemporaryDirectory(prefix="foley-readme-") as d:
        cwd = Path(d)
        _inputs(cwd)
        yield Session(cwd, tiny_ldm[1])


def test_readme_has_the_commands_we_expect():
    cmds = readme_commands()
    assert len(cmds) >= 25
    assert any("recipes/smoke-ldm.toml" in c for c in cmds)
    assert not any("recipes/starter-ldm.toml" in c for c in cmds)  # needs bash recipes/starter-ldm.sh first


def test_every_readme_command_runs(session):
    server = None
    try:
        for line in readme_commands():
            first = segments(line)[0]
            if first[0] == "make":
                session.parses(line)
                continue
            assert first[0] == "foley", f"README command not covered by this test: {line}"
            cmd = tuple(first[1:3])
            hub_codec = "-c" in first and any("/" in a for a in first[first.index("-c") + 1:][:1])
            if cmd in NETWORK or cmd in LONG_TRAINING or hub_codec:
                session.parses(line)
            elif cmd[0] == "serve":
                args = session.rewrite(first)
                port = args[args.index("--port") + 1]
                server = subprocess.Popen(args, cwd=session.cwd, env=session.env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True)
                _wait_for(f"http://127.0.0.1:{port}/openapi.json", server)
                session.ran.append(line)
            else:
                r = session.run(line)
                m = re.search(r"^study (\w+):", r.stdout if isinstance(r.stdout, str) else "", flags=re.M)
                if m:
                    session.study_id = m.group(1)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    cwd = session.cwd
    # what the commands promised exists
    assert (cwd / "steps.wav").exists() and (cwd / "steps.png").exists() and (cwd / "steps.json").exists()
    assert len(list(cwd.glob("drone*.wav"))) == 2 and len(list((cwd / "out").glob("batch*.wav"))) == 2
    glide = json.loads((cwd / "glide.json").read_text())["control"]  # --steer 10 towards the prompt's shape words
    assert set(glide["targets"]) == {"pitch", "pan"} and glide["steering"]["iterations"] == 10
    for name in ("rainy", "fixed", "longer", "restored", "rain", "back"):
        assert (cwd / f"{name}.wav").exists(), name
    assert (cwd / "corpora" / "synth" / "manifest.jsonl").exists() and (cwd / "mine.jsonl").exists()
    assert (cwd / "runs" / "smoke" / "model" / "foley.json").exists()
    assert (cwd / "report" / "report.json").exists() and session.study_id
    assert len(session.ran) >= 20 and len(session.checked) >= 4


def _wait_for(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    import urllib.request

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stdout.read()
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                assert r.status == 200 and b"openapi" in r.read()
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"foley serve did not answer {url}")


def test_readme_python_snippet_runs(tiny_ldm, tmp_path):
    (block,) = readme_blocks("python")
    code = block.replace('foley.load("starter")', f"foley.load({str(tiny_ldm[1])!r})").replace("duration=5",
                                                                                                 "duration=1")
    assert code != block
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "FOLEY_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "rain.wav").exists() and (tmp_path / "storm.wav").exists()

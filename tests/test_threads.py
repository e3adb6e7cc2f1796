"""CPU threads (foley.threads, --threads, FOLEY_THREADS) and the generators' step progress (on_step, the CLI bar)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from foley import threads
from foley.errors import FoleyError

torch = pytest.importorskip("torch")


@pytest.fixture
def clean_env(monkeypatch):
    """No thread settings from the caller; whatever a test or command writes is undone afterwards."""
    for name in (threads.ENV, "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    monkeypatch.setitem(threads._state, "choice", None)
    monkeypatch.setitem(threads._state, "flag", None)
    monkeypatch.setitem(threads._state, "omp_written", None)
    before = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(before)


# --- parsing and choosing ---------------------------------------------------------------------------
@pytest.mark.parametrize("value, words", [
    ("abc", "whole number"), ("1.5", "whole number"), ("", None), ("0", "1 or more"), ("-2", "1 or more"),
    ("100000", "at most"),
])
def test_bad_thread_counts_are_one_line_errors(value, words):
    if words is None:  # empty means auto, like an unset variable
        assert threads.parse(value) is None
        return
    with pytest.raises(FoleyError) as e:
        threads.parse(value)
    assert words in str(e.value) and "\n" not in str(e.value) and threads.ENV in str(e.value)


def test_numbers_and_auto_parse():
    assert threads.parse(" 2 ") == 2 and threads.parse("AUTO") is None and threads.parse(1) == 1


def test_auto_leaves_one_usable_core_and_does_not_follow_the_load():
    n, reason = threads.auto()
    assert n == max(1, threads.cores() - 1) and "one left for other processes" in reason
    assert threads.auto() == (n, reason)  # the same on every call: a seed gives the same sound on every run


def test_precedence_flag_env_recipe_omp_auto(clean_env):
    clean_env.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose().describe()["source"] == "OMP_NUM_THREADS" and threads.choose().threads == 3
    assert (threads.choose(fallback=2).threads, threads.choose(fallback=2).source) == (2, "recipe")
    clean_env.setenv(threads.ENV, "1")
    assert (threads.choose(fallback=2).threads, threads.choose(fallback=2).source) == (1, threads.ENV)
    assert (threads.choose("2").threads, threads.choose("2").source) == (2, "--threads")
    clean_env.setenv(threads.ENV, "auto")  # an explicit auto beats the recipe
    assert threads.choose(fallback=2).source == threads.ENV


def test_apply_sets_torch_and_the_training_helper_delegates(clean_env):
    from foley.train.loop import set_threads

    assert threads.apply("1").threads == 1 and torch.get_num_threads() == 1
    set_threads(2)  # the recipe's number when the user gave none
    assert torch.get_num_threads() == 2 and threads.describe()["source"] == "recipe"
    clean_env.setenv(threads.ENV, "1")
    set_threads(2)  # FOLEY_THREADS (or --threads) beats the recipe
    assert torch.get_num_threads() == 1 and threads.describe() == {
        "threads": 1, "source": threads.ENV, "reason": "FOLEY_THREADS=1",
        "wait_policy": threads.os.environ.get("OMP_WAIT_POLICY", "default")}


# --- through the CLI --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(tiny_ldm):
    return str(tiny_ldm[1])


def _invoke(args):
    from typer.testing import CliRunner

    from foley.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_threads_option_reaches_torch_and_the_sidecar(clean_env, model, tmp_path):
    base = ["generate", "a tone", "-m", model, "-d", "0.5", "--steps", "2", "--seed", "1"]
    r = _invoke([*base, "-o", tmp_path / "a.wav", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert torch.get_num_threads() == 1
    meta = json.loads((tmp_path / "a.json").read_text())
    assert meta["threads"]["threads"] == 1 and meta["threads"]["source"] == "--threads"
    r = _invoke(["--threads", "2", *base, "-o", tmp_path / "b.wav"])  # the root-level spelling
    assert r.exit_code == 0, r.output
    assert torch.get_num_threads() == 2
    assert json.loads((tmp_path / "b.json").read_text())["threads"]["threads"] == 2
    assert "generating" not in r.output and "%|" not in r.output  # not a terminal: no progress bar


@pytest.mark.parametrize("args, env, words", [
    (["generate", "rain", "-o", "x.wav"], {"FOLEY_THREADS": "abc"}, "FOLEY_THREADS='abc'"),
    (["generate", "rain", "-o", "x.wav"], {"FOLEY_THREADS": "0"}, "1 or more"),
    (["--threads", "lots", "generate", "rain", "-o", "x.wav"], {}, "--threads='lots'"),
    (["codec", "decode", "in.foley", "-o", "x.wav", "--threads", "-1"], {}, "1 or more"),
])
def test_bad_threads_through_the_cli_are_one_line(args, env, words, tmp_path, monkeypatch):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "foley", *args], capture_output=True, text=True, cwd=tmp_path,
                       env={**threads.os.environ, "HF_HUB_OFFLINE": "1", **env}, timeout=120)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.wav").exists()


def test_every_model_command_has_the_option():
    for args in (["generate"], ["edit"], ["stream"], ["codec", "encode"], ["codec", "decode"], ["eval", "run"],
                 ["eval"], ["eval", "control"], ["train", "ldm"], ["train", "lm"], ["train", "codec"], ["serve"]):
        r = _invoke([*args, "--help"])
        assert r.exit_code == 0 and "--threads" in r.output, args


# --- progress -------------------------------------------------------------------------------------
def test_diffusion_calls_on_step_once_per_step(tiny_ldm):
    from foley.families.ldm.pipeline import LDMGenerator

    gen = LDMGenerator.from_folder(tiny_ldm[1])
    gen.silence_retries = 0  # one sampling pass, whatever the tiny model draws
    seen = []
    gen.on_step = lambda i, n: seen.append((i, n))
    gen.generate("a tone", duration=0.5, steps=3, seed=0)
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_token_lm_calls_on_step_once_per_frame(tmp_path):
    from foley.families.lm.pipeline import LMGenerator
    from tests.test_lm import build_lm

    gen = LMGenerator.from_folder(build_lm(tmp_path / "lm"))
    gen.silence_retries = 0
    seen = []
    gen.on_step = lambda i, n: seen.append((i, n))
    gen.generate("a tone", duration=1.1, seed=0)  # two windows of the 0.6 s context
    frames = gen.lm.frames(1.1)
    assert seen == [(i, frames) for i in range(1, frames + 1)]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(tiny_ldm):
    from foley.cli.options import step_progress
    from foley.families.ldm.pipeline import LDMGenerator

    gen = LDMGenerator.from_folder(tiny_ldm[1])
    gen.silence_retries = 0
    term, pipe = _Terminal(), io.StringIO()
    with step_progress(gen, "generating", stream=term):
        a = gen.generate("a tone", duration=0.5, steps=3, seed=0)[0]
    assert "generating" in term.getvalue() and "3/3" in term.getvalue() and gen.on_step is None
    with step_progress(gen, "generating", stream=pipe):
        b = gen.generate("a tone", duration=0.5, steps=3, seed=0)[0]
    assert pipe.getvalue() == "" and np.array_equal(a.samples, b.samples)

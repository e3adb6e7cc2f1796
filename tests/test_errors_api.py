"""The Python API refuses wrong arguments with foley errors that say what to pass, never AttributeError or
TypeError from deep inside; edit accepts a path as well as an Audio. Uses the session's tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import foley
from foley.errors import AudioError, FoleyError, ModelError, RequestError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gen(tiny_ldm):
    return foley.load(str(tiny_ldm[1]))


def tone(seconds: float = 1.0, rate: int = 16000) -> foley.Audio:
    t = np.arange(int(seconds * rate)) / rate
    return foley.Audio((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], rate)


def with_sample(value: float) -> foley.Audio:
    a = tone()
    a.samples[0, 100] = value
    return a


LOAD_CASES = {
    "none": ((None,), {}, ModelError, "takes a model name or folder"),
    "int": ((3,), {}, ModelError, "got int 3"),
    "empty": (("  ",), {}, ModelError, "takes a model name or folder"),
    "unknown-option": (("{M}",), {"bogus": 1}, ModelError, "takes no option 'bogus'"),
    "unknown-vocoder": (("{M}",), {"vocoder": "bogus"}, ModelError, "unknown vocoder 'bogus'"),
}


@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_load_refuses_wrong_arguments(case, tiny_ldm):
    args, kwargs, error, words = LOAD_CASES[case]
    args = tuple(str(tiny_ldm[1]) if a == "{M}" else a for a in args)
    with pytest.raises(error, match=words):
        foley.load(*args, **kwargs)


GENERATE_CASES = {
    "none": (None, "must be a string, a generationrequest or a list"),
    "int": (3, "got int"),
    "bytes": (b"rain", "got bytes"),
    "list-of-int": ([3], "prompt: input should be a valid string"),
    "empty-list": ([], "no prompts given"),
}


@pytest.mark.parametrize("case", list(GENERATE_CASES))
def test_generate_refuses_wrong_prompt_types(case, gen):
    prompt, words = GENERATE_CASES[case]
    with pytest.raises(RequestError) as e:
        gen.generate(prompt, duration=1.0)
    assert words in str(e.value).lower()


EDIT_CASES = {  # (audio, prompt, kwargs) -> error class and words
    "audio-int": (3, "rain", {}, RequestError, "a foley.audio or a file path"),
    "audio-none": (None, "rain", {}, RequestError, "got nonetype"),
    "missing-path": ("no/such.wav", "rain", {}, AudioError, "no/such.wav"),
    "prompt-none": ("{tone}", None, {}, RequestError, "prompt must be a string"),
    "one-sample": (foley.Audio(np.zeros((1, 1), np.float32), 16000), "rain", {}, RequestError,
                   "needs at least 0.1 s"),
    "nan": (with_sample(np.nan), "rain", {}, RequestError, "nan or infinite"),
    "inf": (with_sample(np.inf), "rain", {}, RequestError, "nan or infinite"),
    "negative-cutoff": ("{tone}", "x", {"task": "super_resolution", "cutoff_hz": -100}, RequestError,
                        "cutoff must be a positive"),
    "cutoff-over-nyquist": ("{tone}", "x", {"task": "super_resolution", "cutoff_hz": 8000}, RequestError,
                            "nyquist"),
    "extend-shorter": ("{tone}", "x", {"task": "extend", "duration": 0.5}, RequestError,
                       "not longer than the input"),
}


@pytest.mark.parametrize("case", list(EDIT_CASES))
def test_edit_refuses_wrong_inputs(case, gen):
    audio, prompt, kwargs, error, words = EDIT_CASES[case]
    audio = tone() if isinstance(audio, str) and audio == "{tone}" else audio
    with pytest.raises(error) as e:
        gen.edit(audio, prompt, **kwargs)
    assert isinstance(e.value, FoleyError) and words in str(e.value).lower()


def test_edit_takes_a_path_and_extend_records_the_length_it_writes(gen, tmp_path):
    src = tone()
    sf.write(tmp_path / "in.wav", src.samples.T, src.sample_rate, subtype="FLOAT")
    out = gen.edit(str(tmp_path / "in.wav"), "a steady tone", task="extend", steps=2, seed=1)[0]
    assert out.duration == pytest.approx(6.0) and out.meta["request"]["duration"] == pytest.approx(6.0)
    assert np.allclose(out.samples[:, :8000].mean(0), src.samples[0, :8000], atol=1e-5)  # the input comes first

"""Long-form joins of the token LM on a tiny random model: the prompt codes really reach the decoder, the window
plan (context, sampled, kept frames) and its boundaries, and each window continues from exactly the codes kept."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from tests.test_lm import build_lm  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_lm(tmp_path_factory.mktemp("lm") / "tiny")


def fresh(folder, **card):
    """A generator of its own (card settings changed on it only)."""
    from foley.families.lm.pipeline import LMGenerator

    gen = LMGenerator.from_folder(folder)
    for k, v in card.items():
        setattr(gen.lm.cfg, k, v)
    return gen


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_a_prompt_is_continued_as_if_it_had_been_sampled(folder, guidance):
    """Greedy sampling after the first M of N frames as prompt gives the other N - M frames of one N-frame run.
    Fails when the decoder sees only the prompt's last column (transformers' MusicGen feeds the last column
    once a cache object exists, and generate always has one)."""
    gen = fresh(folder)
    lm = gen.lm
    states, mask = lm.condition(["a tone"], guidance=guidance > 1)
    greedy = {**gen.sampling, "top_k": 1, "guidance_scale": guidance}
    whole = lm.sample(states, mask, 24, seed=1, sampling=greedy)
    for m in (1, 10, 20):
        rest = lm.sample(states, mask, 24 - m, seed=2, sampling=greedy, prompt=whole[:, :m])
        assert torch.equal(rest, whole), m


def test_window_plan_and_boundaries(folder):
    gen = fresh(folder, discard_frames=2)
    lm = gen.lm
    assert (lm.window_frames, lm.context_frames, lm.discard_frames) == (30, 15, 2)
    plan = gen.windows(100)
    assert plan[0] == (0, 30, 28) and plan[1] == (15, 15, 13) and plan[-1][1] == plan[-1][2]
    assert sum(kept for _, _, kept in plan) == 100 and all(c + n <= 30 for c, n, _ in plan)
    assert gen.seams(2.0) == pytest.approx([28 / 50, 41 / 50, 54 / 50, 67 / 50, 80 / 50, 93 / 50])
    assert gen.seams(0.6) == [] and gen.seams(0.5) == []
    assert gen.windows(20, prompt_frames=40) == [(15, 15, 13), (15, 7, 7)]  # continuation: context from the prompt
    assert fresh(folder, discard_frames=None).lm.discard_frames == 0  # 2 codebooks: the closing pad touches none
    assert fresh(folder, discard_frames=99).lm.discard_frames == 14   # a window keeps at least one frame


@pytest.mark.parametrize("discard", [0, 2])
def test_each_window_continues_from_the_codes_kept(folder, monkeypatch, discard):
    """Every window's prompt is the last context_frames of the codes emitted before it; dropped frames are not
    emitted; streaming joins the windows the same way."""
    gen = fresh(folder, discard_frames=discard)
    lm = gen.lm
    calls = []
    real = lm.sample

    def spy(states, mask, frames, seed, sampling, prompt=None, **kw):
        out = real(states, mask, frames, seed, sampling, prompt=prompt, **kw)
        calls.append((None if prompt is None else prompt.clone(), out.clone()))
        return out

    monkeypatch.setattr(lm, "sample", spy)
    from foley.request import make_request

    r = make_request(prompt="a tone", duration=1.5)
    frames = lm.frames(1.5)
    blocks = list(gen._blocks(r, 5, gen._settings(r), frames, False, None))
    emitted = torch.cat(blocks, dim=-1)
    plan = gen.windows(frames)
    assert emitted.shape[-1] == frames and len(calls) == len(plan) > 2
    done = 0
    for (ctx, n, keep), (prompt, out), block in zip(plan, calls, blocks, strict=True):
        if done == 0:
            assert prompt is None
        else:
            assert torch.equal(prompt, emitted[:, max(0, done - lm.context_frames):done]) and prompt.shape[-1] == ctx
        assert out.shape[-1] == ctx + n and torch.equal(block, out[:, ctx:ctx + keep])
        done += keep
    monkeypatch.undo()
    whole = gen.generate("a tone", duration=1.5, seed=5)[0]
    streamed = np.concatenate([c.samples for c in gen.stream("a tone", duration=1.5, seed=5)], axis=-1)
    assert np.array_equal(streamed, whole.samples)
    assert np.array_equal(gen.generate("a tone", duration=1.5, seed=5)[0].samples, whole.samples)

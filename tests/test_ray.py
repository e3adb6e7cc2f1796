"""`foley generate --batch-file ... --ray` and `foley eval --ray` on a local Ray instance (one per module: ray.init
is slow), 2 actors, the tiny model: every sound written once with its sidecar, both actors used, the same sounds
as in-process generation, resume after a lost output, a killed actor, one-line errors, eval features."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("torch")

PROMPTS = ["a tone at 110 hertz", "a steady tone", "tone 440", "a tone at 220 hertz", "tone 880"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, object_store_memory=80 * 1024 * 1024, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


def _run(args, capsys):
    from foley.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_batch_on_two_actors_writes_each_sound_once_and_resumes(local_ray, tiny_ldm, tmp_path, capsys):
    model = str(tiny_ldm[1])
    batch = tmp_path / "prompts.txt"
    batch.write_text("\n".join(PROMPTS) + "\n")
    out = tmp_path / "out" / "b.wav"
    args = ["generate", "--batch-file", str(batch), "-m", model, "-d", "1", "--seed", "3", "-o", str(out), "--ray",
            "--actors", "2"]
    code, stdout, err = _run(args, capsys)
    assert code == 0, err
    assert "5 sound(s) from 5 request(s) on 2 Ray actor(s)" in stdout
    wavs = sorted(out.parent.glob("*.wav"))
    assert [p.name for p in wavs] == [f"b_{i:03d}.wav" for i in range(1, 6)]
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([p.name for p in wavs] +
                                                                  [p.with_suffix(".json").name for p in wavs])
    metas = [json.loads(p.with_suffix(".json").read_text()) for p in wavs]
    assert [m["request"]["prompt"] for m in metas] == PROMPTS  # each output in its own slot, whatever the order
    assert len({m["ray_actor"] for m in metas}) == 2  # both actors generated

    import foley

    # the same batch without Ray, in a fresh process on one thread as the actors have, gives the same sounds
    # (a fresh process: models cached or changed by earlier tests in this one must not decide the reference)
    plain = tmp_path / "plain" / "b.wav"
    no_ray = [a for a in args if a not in ("--ray", "--actors", "2")]
    no_ray[no_ray.index("-o") + 1] = str(plain)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FOLEY_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "foley", *no_ray], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    for i in (0, 3):
        here, there = foley.Audio.load(plain.parent / wavs[i].name), foley.Audio.load(wavs[i])
        assert here.samples.shape == there.samples.shape
        assert np.abs(here.samples - there.samples).max() < 1e-4  # the files' 16-bit rounding (3e-5 seen)

    # resume: one output lost (its sidecar left behind), one cut to a sound without sidecar: only those two again
    before = {p.name: p.stat().st_mtime_ns for p in wavs}
    wavs[1].unlink()
    wavs[4].with_suffix(".json").unlink()
    code, stdout, err = _run(args, capsys)
    assert code == 0, err
    assert "2 sound(s) from 2 request(s)" in stdout
    after = {p.name: p.stat().st_mtime_ns for p in sorted(out.parent.glob("*.wav"))}
    assert sorted(after) == sorted(before)
    assert [n for n in after if after[n] != before.get(n)] == ["b_002.wav", "b_005.wav"]
    code, stdout, _ = _run(args, capsys)
    assert code == 0 and "nothing to do" in stdout


def test_one_line_errors(local_ray, tiny_ldm, tmp_path, capsys, monkeypatch):
    batch = tmp_path / "p.txt"
    batch.write_text("a tone\n")
    base = ["generate", "--batch-file", str(batch), "-m", str(tiny_ldm[1]), "-d", "1", "-o", str(tmp_path / "x.wav")]
    code, _, err = _run([*base, "--actors", "2"], capsys)
    assert code == 2 and err.strip() == "error: --actors and --actor-cpus go with --ray"
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    code, _, err = _run([*base, "--ray"], capsys)
    assert code == 2 and err.strip() == "error: Ray is not installed: pip install 'foley[ray]'"
    assert not (tmp_path / "x.wav").exists()


def test_unreachable_cluster_is_one_line_at_once():
    from foley.errors import FoleyError
    from foley.raycluster import _reachable

    with pytest.raises(FoleyError, match=r"^cannot reach the Ray cluster at 127\.0\.0\.1:1: "):
        _reachable("127.0.0.1:1")  # Ray itself would retry for minutes
    with pytest.raises(FoleyError, match="not HOST:PORT"):
        _reachable("somewhere:port")


def test_a_killed_actor_is_restarted_and_its_request_retried(local_ray, tiny_ldm):
    """SIGKILL one actor's process after the first result: Ray restarts it, it loads the model again, every
    request still comes back exactly once."""
    import os
    import signal

    from foley.cli import ray_batch
    from foley.request import make_request

    requests = [make_request(prompt=p, duration=1, seed=i) for i, p in enumerate(PROMPTS)]
    got, killed, makers = [], [], set()

    def on_result(i, audios):
        got.append(i)
        makers.add(audios[0].meta["ray_actor"])
        if not killed:
            pid = int(audios[0].meta["ray_actor"].rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    assert ray_batch.run(None, str(tiny_ldm[1]), {}, requests, on_result, actors=2) == 2
    assert sorted(got) == list(range(len(PROMPTS))) and killed
    assert len(makers) == 3  # the two actors, and the killed one's restart (which took its pending request)


def test_eval_features_on_two_actors_equal_the_in_process_ones(local_ray, tmp_path, capsys):
    """`foley eval --ray`: the log-mel features computed on 2 actors are the in-process ones, row for row (the
    stereo file at another rate included), and so are the metrics."""
    from foley.eval.prepare import EvalSettings
    from foley.eval.remote import RayFeatures
    from foley.eval.run import evaluate
    from tests.test_eval_cli import make_set

    gen = make_set(tmp_path / "gen", shift=30, n=7, stereo_rate=22_050)
    ref = make_set(tmp_path / "ref", n=7)
    metrics = ["fd_logmel", "kid_logmel"]
    here = evaluate(gen, ref, metrics, EvalSettings(n_bootstrap=50, n_subsets=3))
    remote = RayFeatures(None, actors=2)
    try:
        there = evaluate(gen, ref, metrics, EvalSettings(n_bootstrap=50, n_subsets=3), remote=remote)
    finally:
        remote.close()
    for a, b in ((here.generated, there.generated), (here.reference, there.reference)):
        fa, fb = a.features["logmel"], b.features["logmel"]
        assert fa.embeddings.shape == fb.embeddings.shape == (7, fa.embeddings.shape[1])
        assert np.array_equal(fa.embeddings, fb.embeddings)
        assert all(np.array_equal(x, y) for x, y in zip(fa.frames, fb.frames, strict=True))
    assert here.report["metrics"]["fd_logmel"]["value"] == there.report["metrics"]["fd_logmel"]["value"]

    code, stdout, err = _run(["eval", "--generated", str(gen), "--reference", str(ref), "-m", "fd_logmel",
                              "--no-html", "--no-cache", "-o", str(tmp_path / "report"), "--ray", "--actors", "2"],
                             capsys)
    assert code == 0, err
    assert (tmp_path / "report" / "report.json").exists()

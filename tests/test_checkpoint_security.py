"""Training checkpoints (last.pt) are read with weights_only=True: a crafted pickle never runs, and what every
trainer saves (model, optimizer, EMA, LR schedule, RNG state) still resumes."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from foley.errors import FoleyError  # noqa: E402
from foley.train.loop import Checkpointer, warmup_cosine  # noqa: E402


class Evil:
    """Unpickling this runs `touch <marker>` (what a crafted last.pt in a copied run folder would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _plant(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 5, "rng": torch.get_rng_state(), "model": Evil(marker)}, path)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = Checkpointer(tmp_path / "ckpt")
    _plant(ckpt.path, marker)
    with pytest.raises(FoleyError) as e:
        ckpt.load(model=torch.nn.Linear(2, 2))
    assert not marker.exists()
    msg = str(e.value)
    assert "\n" not in msg and str(ckpt.path) in msg and "delete it" in msg
    # control: the file really is malicious (full unpickling runs it), so the refusal above is what saved us
    torch.load(ckpt.path, weights_only=False)
    assert marker.exists()


def test_malicious_checkpoint_through_foley_train_is_one_line(tmp_path, foley_cli):
    """The real CLI resuming a run whose VAE checkpoint was replaced: exit 2, one line, nothing executed."""
    from tests.ldm_tiny import tiny_corpus

    manifest = tiny_corpus(tmp_path)
    recipe = tmp_path / "r.toml"
    recipe.write_text('seed = 0\n[audio]\nvalid_fraction = 0.2\n[vae]\nblock_out_channels = [8, 16]\n'
                      'latent_channels = 4\nnorm_num_groups = 4\ncrop_seconds = 0.512\nbatch_size = 4\nsteps = 2\n'
                      '[train]\nthreads = 1\n')
    marker = tmp_path / "pwned"
    _plant(tmp_path / "run" / "vae" / "ckpt" / "last.pt", marker)
    r = foley_cli("train", "ldm", "--data", manifest, "--recipe", recipe, "--run", tmp_path / "run", "--stages", "vae")
    assert r.returncode != 0 and not marker.exists()
    assert "Traceback" not in r.stderr and "last.pt" in r.stderr
    assert len([x for x in r.stderr.splitlines() if x.strip() and "%|" not in x]) == 1, r.stderr


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04 truncated"])
def test_corrupt_checkpoint_is_one_line_error(tmp_path, content):
    ckpt = Checkpointer(tmp_path)
    ckpt.path.write_bytes(content)
    with pytest.raises(FoleyError, match="delete it"):
        ckpt.load(model=torch.nn.Linear(2, 2))


def test_checkpoint_without_step_is_refused(tmp_path):
    ckpt = Checkpointer(tmp_path)
    torch.save([1, 2, 3], ckpt.path)
    with pytest.raises(FoleyError, match="no 'step'"):
        ckpt.load()


def test_every_trainer_state_kind_resumes_with_weights_only(tmp_path):
    """AdamW + LambdaLR + diffusers EMAModel + torch AveragedModel + RNG: saved, reloaded safely, equal."""
    from diffusers.training_utils import EMAModel
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    def build():
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
        return m, opt, warmup_cosine(opt, 2, 10), EMAModel(m.parameters(), use_ema_warmup=True), \
            AveragedModel(m, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)

    m, opt, sched, ema, avg = build()
    for _ in range(3):
        m(torch.randn(5, 3)).pow(2).mean().backward()
        opt.step(), sched.step(), ema.step(m.parameters()), avg.update_parameters(m)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(3, model=m, opt=opt, sched=sched, ema=ema, avg=avg)
    expected_draw = torch.rand(3)

    m2, opt2, sched2, ema2, avg2 = build()
    assert ckpt.load(model=m2, opt=opt2, sched=sched2, ema=ema2, avg=avg2) == 3
    assert torch.equal(torch.rand(3), expected_draw)  # RNG state restored
    for a, b in zip(m.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt2.state_dict()["state"][0]["exp_avg"])
    assert sched2.last_epoch == 3 and ema2.optimization_step == ema.optimization_step
    assert all(torch.equal(a, b) for a, b in zip(ema.shadow_params, ema2.shadow_params, strict=True))
    assert torch.equal(avg.n_averaged, avg2.n_averaged)

"""The training harness (foley.train.solver): exact resume, EMA and validation cadence, 2 processes, LDM resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tests.conftest import free_port  # noqa: E402
from tests.solver_toy import TOY, ToySolver  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _recipe(**toy):
    recipe = json.loads(json.dumps(TOY))
    recipe["toy"].update(toy)
    return recipe


def _log(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "toy" / "log.jsonl").read_text().splitlines()]


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in _log(out) if "loss" in r}


class Killed(Exception):
    pass


class KilledAt(ToySolver):
    """Dies inside step ``kill`` (after a checkpoint at 5 and log lines for 6 and 7)."""

    kill = 8

    def train_step(self, batch):
        if self.step + 1 == self.kill:
            raise Killed
        return super().train_step(batch)


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    whole = ToySolver([], _recipe(), tmp_path / "whole").run()
    with pytest.raises(Killed):
        KilledAt([], _recipe(), tmp_path / "cut").run()
    assert max(_losses(tmp_path / "cut")) == 7  # logged past the checkpoint at step 5
    assert torch.load(tmp_path / "cut" / "toy" / "ckpt" / "last.pt", weights_only=True)["step"] == 5
    resumed = ToySolver([], _recipe(), tmp_path / "cut").run()
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "whole")  # exact: model, optimiser, RNG, data position
    jit = [[r["jitter"] for r in _log(p) if "jitter" in r] for p in (tmp_path / "whole", tmp_path / "cut")]
    assert jit[0] == jit[1]  # the solver's own random stream too
    steps = [r["step"] for r in _log(tmp_path / "cut") if "loss" in r]
    assert steps == list(range(1, 13))  # no step twice
    assert json.loads((resumed / "weights.json").read_text()) == json.loads((whole / "weights.json").read_text())


def test_ema_and_validation_cadence(tmp_path):
    solver = ToySolver([], _recipe(steps=10), tmp_path)
    solver.run()
    assert solver.validations == [4, 8, 10]  # every valid_every steps and at the end
    valid = [r["step"] for r in _log(tmp_path) if "valid_loss" in r]
    assert valid == [4, 8, 10]
    state = torch.load(tmp_path / "toy" / "ckpt" / "last.pt", weights_only=True)
    assert state["step"] == 10 and state["ema"]["optimization_step"] == 10
    shadow = state["ema"]["shadow_params"]
    live = [p.detach() for p in solver.model.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(shadow, live, strict=True))  # an average, not a copy
    exported = json.loads((tmp_path / "toy" / "final" / "weights.json").read_text())
    assert torch.allclose(torch.tensor(exported["0.weight"]), shadow[0])  # export writes the EMA weights
    assert ToySolver([], _recipe(steps=10), tmp_path).run() == tmp_path / "toy" / "final"  # finished: no work


def test_batch_that_does_not_split_and_changed_data_are_refused(tmp_path, monkeypatch):
    from foley.errors import FoleyError

    ToySolver([], _recipe(steps=5), tmp_path).run()
    (tmp_path / "toy" / "final" / "weights.json").unlink()

    class Smaller(ToySolver):
        def build(self):
            super().build()
            self.data = self.data[:40]

    with pytest.raises(FoleyError, match="trained on 64 items"):
        Smaller([], _recipe(steps=6), tmp_path).run()
    (tmp_path / "toy" / "ckpt" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FoleyError, match="not a loadable foley checkpoint"):
        ToySolver([], _recipe(steps=6), tmp_path).run()
    monkeypatch.setenv("FOLEY_DEVICE", "quantum")
    with pytest.raises(FoleyError, match="unknown device"):
        ToySolver([], _recipe(steps=6), tmp_path / "other").run()


def test_two_processes_match_one(tmp_path):
    """accelerate launch with 2 CPU processes (gloo), same global batch: the same curve within tolerance."""
    one = ToySolver([], _recipe(noise=0.0), tmp_path / "one").run()  # no per-process noise: same maths
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    launcher = Path(sys.executable).with_name("accelerate")
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--main_process_port", str(free_port()),  # another test may be launching beside this one
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "tests.solver_toy",
           str(tmp_path / "two"), "12", "0"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert sorted(b) == list(range(1, 13))  # one log, written once (main process only)
    assert all(abs(a[s] - b[s]) < 1e-4 * max(1.0, a[s]) for s in a)  # gradients all-reduced over the halves
    wa = json.loads((one / "weights.json").read_text())
    wb = json.loads((tmp_path / "two" / "toy" / "final" / "weights.json").read_text())
    assert (wa["processes"], wb["processes"]) == (1, 2)  # really two processes
    assert torch.allclose(torch.tensor(wa["2.weight"]), torch.tensor(wb["2.weight"]), atol=1e-4)


def test_ldm_unet_resume_after_kill_equals_uninterrupted(tiny_ldm, tmp_path):
    """The ported UNet stage: killed after its step-2 checkpoint, resumed: same losses, one record per step."""
    import shutil

    from foley.families.ldm.solvers import UNetSolver
    from foley.families.ldm.train import train_unet
    from tests.ldm_tiny import TINY

    recipe = json.loads(json.dumps(TINY))
    recipe["unet"]["steps"] = 4
    runs = {}
    for name in ("whole", "cut"):
        runs[name] = tmp_path / name
        shutil.copytree(tiny_ldm[0] / "run", runs[name])
        shutil.rmtree(runs[name] / "unet")

    class Dies(UNetSolver):
        def train_step(self, idx):
            if self.step == 3:
                raise Killed
            return super().train_step(idx)

    train_unet(recipe, runs["whole"])
    with pytest.raises(Killed):
        Dies([], recipe, runs["cut"]).run()
    train_unet(recipe, runs["cut"])

    def losses(run):
        return [(r["step"], r["loss"]) for r in map(json.loads, (run / "unet" / "log.jsonl").read_text().splitlines())
                if "loss" in r]

    assert losses(runs["cut"]) == losses(runs["whole"]) and [s for s, _ in losses(runs["whole"])] == [1, 2, 3, 4]
    a, b = (torch.load(r / "unet" / "ckpt" / "last.pt", weights_only=True) for r in runs.values())
    assert a["step"] == b["step"] == 4
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_stage_stopped_by_its_time_budget_continues_when_run_again(tmp_path):
    """[train] max_minutes ends a sitting, not the training: each run exports what it has and the next one
    continues from the checkpoint until every step is done; then a run trains no more."""
    recipe = json.loads(json.dumps(TOY))
    recipe["train"]["max_minutes"] = 0.0  # one step per sitting
    sittings = []
    for _ in range(3):
        ToySolver([], recipe, tmp_path).run()
        sittings.append(json.loads((tmp_path / "toy" / "stopped_at_budget.json").read_text())["step"])
        assert (tmp_path / "toy" / "final" / "weights.json").exists()  # usable after every sitting
    assert sittings == [1, 2, 3]
    recipe["train"]["max_minutes"] = None
    ToySolver([], recipe, tmp_path).run()  # the rest of the 12 steps
    assert not (tmp_path / "toy" / "stopped_at_budget.json").exists()
    steps = [r["step"] for r in map(json.loads, (tmp_path / "toy" / "log.jsonl").read_text().splitlines())
             if "loss" in r]
    assert steps[-1] == 12 and len(steps) == len(set(steps))
    before = (tmp_path / "toy" / "log.jsonl").read_text()
    ToySolver([], recipe, tmp_path).run()  # finished: nothing trains
    assert (tmp_path / "toy" / "log.jsonl").read_text() == before

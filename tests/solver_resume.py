"""The resume check every solver-based training shares: kill a run inside a step after its first checkpoint,
run it again, and compare with an uninterrupted run (exact losses, each step logged once, same weights)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


class Killed(Exception):
    pass


def _losses(stage: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (stage / "log.jsonl").read_text().splitlines())
            if "loss" in r]


def check_resume(solver_cls, manifests, recipe: dict, tmp_path: Path, kill: int) -> dict:
    """Train ``solver_cls`` twice into ``tmp_path/{whole,cut}``; the second is killed inside step ``kill``
    (``[train] save_every`` must checkpoint before it) and run again. Asserts the resumed run's loss records
    equal the uninterrupted run's, every step is logged once, and the last checkpoints hold the same weights.
    Returns ``{"whole": result, "cut": result}`` (what ``run()`` returned)."""
    steps = int(recipe[solver_cls.section]["steps"])
    assert kill < steps and int(recipe["train"]["save_every"]) < kill

    class Dies(solver_cls):
        def train_step(self, batch):
            if self.step + 1 == kill:
                raise Killed
            return super().train_step(batch)

    results = {"whole": solver_cls(manifests, json.loads(json.dumps(recipe)), tmp_path / "whole").run()}
    try:
        Dies(manifests, json.loads(json.dumps(recipe)), tmp_path / "cut").run()
        raise AssertionError("the killed run was not killed")
    except Killed:
        pass
    stage = solver_cls.stage
    assert max(s for s, _ in _losses(tmp_path / "cut" / stage)) == kill - 1  # it logged past its checkpoint
    results["cut"] = solver_cls(manifests, json.loads(json.dumps(recipe)), tmp_path / "cut").run()
    whole, cut = _losses(tmp_path / "whole" / stage), _losses(tmp_path / "cut" / stage)
    log_every = int(recipe["train"].get("log_every", 50))
    assert [s for s, _ in cut] == sorted({*range(log_every, steps + 1, log_every), steps})  # each step once
    assert cut == whole  # exact: model, optimiser, schedule, random streams, data position
    a, b = (torch.load(tmp_path / run / stage / "ckpt" / "last.pt", weights_only=True) for run in ("whole", "cut"))
    assert a["step"] == b["step"] == steps
    assert a["model"].keys() == b["model"].keys() and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    return results

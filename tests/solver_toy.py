"""A toy solver (a small MLP on synthetic data) for tests/test_solver.py; also runnable under
``accelerate launch -m tests.solver_toy OUT STEPS [NOISE]`` (writes OUT/toy/log.jsonl, OUT/toy/final/weights.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from foley.train.loop import warmup_cosine
from foley.train.solver import Solver

TOY = {"seed": 0, "toy": {"steps": 12, "batch_size": 4, "lr": 0.05, "ema_decay": 0.9, "noise": 0.01},
       "train": {"threads": 1, "log_every": 1, "valid_every": 4, "save_every": 5}}


class ToySolver(Solver):
    stage = section = "toy"

    def build(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(64, 3, generator=g)
        y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(64, 1, generator=g)
        self.data = list(zip(x, y, strict=True))
        self.model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=float(self.settings["lr"]))
        self.scheduler = warmup_cosine(self.optimizer, 2, self.steps)
        self.validations: list[int] = []

    def train_step(self, batch):
        x, y = batch
        noise = float(self.settings["noise"]) * torch.randn(x.shape)  # uses the torch RNG: resume must restore it
        loss = ((self.train_model(x + noise) - y) ** 2).mean()
        return {"loss": loss, "jitter": float(self.rng.random())}  # and the solver's own stream

    def validate(self):
        self.validations.append(self.step)
        x = torch.stack([d[0] for d in self.data[:16]])
        y = torch.stack([d[1] for d in self.data[:16]])
        return {"valid_loss": float(((self.model(x) - y) ** 2).mean())}

    def export(self, dest: Path):
        from foley.fsutil import write_json_atomic

        with self.ema_weights():
            write_json_atomic(dest / "weights.json", {"processes": self.accelerator.num_processes,
                                                      **{k: v.tolist() for k, v in self.model.state_dict().items()}})
        return dest

    def finished(self):
        return (self.final / "weights.json").exists()


if __name__ == "__main__":
    recipe = json.loads(json.dumps(TOY))
    recipe["toy"]["steps"] = int(sys.argv[2])
    if len(sys.argv) > 3:
        recipe["toy"]["noise"] = float(sys.argv[3])
    ToySolver([], recipe, Path(sys.argv[1])).run()

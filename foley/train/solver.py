"""One training harness: a :class:`Solver` owns the loop, every training stage is a subclass.

Audiocraft-style: a subclass says *what* to train (:meth:`Solver.build`: model, optimiser, schedule, data;
:meth:`Solver.train_step`: one batch to a dict of losses; :meth:`Solver.validate`, :meth:`Solver.preview`,
:meth:`Solver.export`); the base says *how*, the same for every stage, on Hugging Face ``accelerate``:

- device placement (``[train] device`` or ``FOLEY_DEVICE``; the CPU when neither is set), mixed precision
  (``[train] mixed_precision``; ignored on the CPU, which has none), data parallelism over processes
  (``accelerate launch --num_processes N``; gloo on the CPU): every process draws the same global batch from
  the seeded sampler and trains on its share, so N processes compute the single-process update;
- gradient clipping, the LR schedule, one weight EMA (diffusers' ``EMAModel``, or torch's ``AveragedModel``
  with ``ema_kind = "averaged"``, also averaging buffers such as BatchNorm statistics with ``ema_buffers``);
  a stage with several optimisers (a GAN) sets ``manual_optimization`` and steps them in ``train_step``;
- validation every ``valid_every`` steps (and at the end), previews every ``preview_every``, a progress bar
  and ``<stage>/log.jsonl``, checkpoints every ``save_every`` steps;
- exact resume: ``<stage>/ckpt/last.pt`` (written atomically, read with ``weights_only=True``) holds model,
  EMA, optimiser, schedule, every process's RNG (torch, python, numpy, the solver's own) and the sampler's
  epoch and offset; a resumed run's losses equal the uninterrupted run's, and log records past the
  checkpoint's step are dropped on resume, so ``log.jsonl`` never holds a step twice;
- ``[train] max_minutes``: stop at a step boundary after that much wall time, validating, saving and exporting;
  such a stage is not finished: running it again continues from its checkpoint for another ``max_minutes``
  (``<stage>/stopped_at_budget.json`` says where it stopped), so a long training spans several sittings
  (fine-tunes, whose budget is the user's limit, opt out: ``resume_after_budget = False``);
  :meth:`Solver.should_stop` (asked after each validation) ends a stage early the same way (early stopping);
  ``[train] preview_minutes``: a preview every N minutes of wall time (besides ``preview_every`` steps).

Only the main process writes logs, checkpoints, previews and exports. With several processes each checkpoint
also logs every process's host:pid and a sha256 of its weights (``in_sync``: data parallelism kept them equal).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import FoleyError
from ..fsutil import atomic_path
from .loop import Checkpointer, append_log, progress, set_threads


class ResumableSampler:
    """Seeded, endless shuffling of ``range(n)``: epoch ``e`` is ``randperm(n)`` drawn from ``seed + e``.

    The position is two integers (epoch, offset), so a checkpoint restores the exact next batch."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        if n < 1:
            raise FoleyError("the training split is empty: the manifests hold too few clips")
        self.n, self.seed, self.shuffle = int(n), int(seed), shuffle
        self.epoch, self.offset = 0, 0
        self._order: list[int] | None = None

    def _epoch_order(self) -> list[int]:
        if self._order is None:
            if self.shuffle:
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
                self._order = torch.randperm(self.n, generator=g).tolist()
            else:
                self._order = list(range(self.n))
        return self._order

    def take(self, k: int) -> list[int]:
        """The next ``k`` indices (crossing into the next epoch when this one runs out)."""
        out: list[int] = []
        while len(out) < k:
            order = self._epoch_order()
            grab = order[self.offset:self.offset + k - len(out)]
            out += grab
            self.offset += len(grab)
            if self.offset >= self.n:
                self.epoch, self.offset, self._order = self.epoch + 1, 0, None
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset, "n": self.n, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if int(state["n"]) != self.n:
            raise FoleyError(f"the checkpoint was trained on {state['n']} items, the data now holds {self.n}; "
                             f"delete the stage's ckpt/ to start over")
        self.epoch, self.offset, self._order = int(state["epoch"]), int(state["offset"]), None


class DrawSampler:
    """The draws of the loops before the solver, kept so their recipes train the same models bit for bit:
    ``mode="randint"``: ``torch.randint(0, n, (k,))`` (with replacement); ``mode="loader"``: a
    ``DataLoader(shuffle=True, drop_last=True)`` (an epoch's permutation seeded by one draw, whole batches).

    The draws come from ``generator``: torch's global RNG when None (one process; the checkpoint restores it),
    else a generator seeded alike in every process, whose state is saved here."""

    def __init__(self, n: int, mode: str, batch: int, generator=None):
        if n < 1:
            raise FoleyError("the training split is empty: the manifests hold too few clips")
        self.n, self.mode, self.batch, self.gen = int(n), mode, int(batch), generator
        self.order: list[int] = []

    def take(self, k: int) -> list[int]:
        if self.mode == "randint":
            return torch.randint(0, self.n, (k,), generator=self.gen).tolist()
        if len(self.order) < k:  # a new epoch, drawn as a DataLoader iterator and its RandomSampler draw it
            torch.empty((), dtype=torch.int64).random_(generator=self.gen)  # the iterator's worker base seed
            seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.gen).item())
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed)).tolist()
            self.order = perm[: (self.n // self.batch) * self.batch]
        out, self.order = self.order[:k], self.order[k:]
        return out

    def state_dict(self) -> dict:
        return {"order": list(self.order), "n": self.n,
                "gen": self.gen.get_state() if self.gen is not None else None}

    def load_state_dict(self, state: dict) -> None:
        if int(state["n"]) != self.n:
            raise FoleyError(f"the checkpoint was trained on {state['n']} items, the data now holds {self.n}; "
                             f"delete the stage's ckpt/ to start over")
        self.order = [int(i) for i in state["order"]]
        if self.gen is not None and state.get("gen") is not None:
            self.gen.set_state(state["gen"])


class NumpyRandomness:
    """A numpy ``Generator`` (or a callable returning one, e.g. a dataset's lazily made crop generator) as a
    checkpointable object (its bit-generator state), for :meth:`Solver.extra_state`."""

    def __init__(self, gen):
        self._get = gen if callable(gen) else (lambda: gen)

    def state_dict(self) -> dict:
        def plain(v):  # numpy scalars would not load with weights_only=True
            return {k: plain(x) for k, x in v.items()} if isinstance(v, dict) else getattr(v, "item", lambda: v)()

        return plain(self._get().bit_generator.state)

    def load_state_dict(self, state: dict) -> None:
        self._get().bit_generator.state = state


class AveragedEMA:
    """torch's ``AveragedModel`` (exponential averaging) behind the calls the solver makes of diffusers'
    ``EMAModel`` (``step``, ``store``/``copy_to``/``restore``, ``to``, state dicts). ``buffers=True`` averages
    the buffers too (BatchNorm running statistics), and ``copy_to`` then copies them as well."""

    def __init__(self, model: torch.nn.Module, decay: float, buffers: bool = False):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.model, self.buffers = model, buffers
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=buffers)
        self._stored: dict | None = None

    @property
    def module(self) -> torch.nn.Module:
        return self.averaged.module

    def _tensors(self, module: torch.nn.Module) -> list[torch.Tensor]:
        return list(module.parameters()) + (list(module.buffers()) if self.buffers else [])

    def step(self, parameters=None) -> None:
        self.averaged.update_parameters(self.model)

    @torch.no_grad()
    def store(self, parameters=None) -> None:
        self._stored = [t.detach().clone() for t in self._tensors(self.model)]

    @torch.no_grad()
    def copy_to(self, parameters=None) -> None:
        for dst, src in zip(self._tensors(self.model), self._tensors(self.module), strict=True):
            dst.copy_(src)

    @torch.no_grad()
    def restore(self, parameters=None) -> None:
        for dst, src in zip(self._tensors(self.model), self._stored or [], strict=True):
            dst.copy_(src)
        self._stored = None

    def to(self, device) -> AveragedEMA:
        self.averaged.to(device)
        return self

    def state_dict(self) -> dict:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)


def _fingerprint(model: torch.nn.Module) -> str:
    """sha256 of a network's parameters and buffers: equal on every process while data parallelism holds."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _whoami() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def training_device(setting: str | None = None) -> str:
    """``[train] device``, else ``FOLEY_DEVICE``, else the CPU; checked by :func:`foley.device.choose`."""
    from ..device import choose

    want = setting or os.environ.get("FOLEY_DEVICE") or "cpu"
    return choose(device=str(want)).device


def _rng_state(solver_rng: random.Random) -> dict:
    """Every random stream of this process, as tensors/ints/lists (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "python": [version, list(internal), py_gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "solver": [solver_rng.getstate()[0], list(solver_rng.getstate()[1]), solver_rng.getstate()[2]]}


def _set_rng_state(state: dict, solver_rng: random.Random) -> None:
    torch.set_rng_state(state["torch"])
    v, internal, g = state["python"]
    random.setstate((v, tuple(internal), g))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    v, internal, g = state["solver"]
    solver_rng.setstate((v, tuple(internal), g))


class Solver:
    """Base of every training stage; a subclass implements :meth:`build` and :meth:`train_step` (and may
    implement :meth:`validate`, :meth:`preview`, :meth:`export`, :meth:`finished`).

    ``Solver(manifests, recipe, out).run()`` trains (or resumes) the stage in ``<out>/<stage>/`` and returns
    what :meth:`export` returns. Settings: the stage's recipe section ``[<section>]`` (``steps``,
    ``batch_size``, ``ema_decay``, ``clip``) and ``[train]`` (``threads``, ``log_every``, ``valid_every``,
    ``save_every``, ``preview_every``, ``device``, ``mixed_precision``).

    In :meth:`build`, set ``self.model`` (an ``nn.Module``: everything trained and checkpointed),
    ``self.optimizer``, optionally ``self.scheduler`` (stepped once per step) and ``self.data`` (a sequence
    whose items :meth:`collate` turns into a batch; the default collate stacks with torch's
    ``default_collate``). In :meth:`train_step`, run the model as ``self.train_model`` (the process-parallel
    wrapper) and return ``{"loss": tensor, ...}``; other entries are logged. With ``manual_optimization``,
    :meth:`train_step` steps its optimisers itself (:meth:`optimizer_step`); the base then steps the schedule
    and the EMA. :meth:`begin` runs once before the loop (after a resume): initialisations, baselines.
    """

    stage = "stage"                # <out>/<stage>/ and the progress bar's label
    section = "stage"              # the recipe section holding the stage's settings
    defaults: dict = {}            # the section's defaults
    ema_warmup = True              # diffusers EMAModel(use_ema_warmup=...)
    ema_kind = "diffusers"         # "diffusers": EMAModel; "averaged": torch's AveragedModel (AveragedEMA)
    ema_buffers = False            # "averaged" only: average buffers (BatchNorm statistics) too
    manual_optimization = False    # True: train_step steps the optimiser(s) itself (e.g. a GAN's two)
    clip = 1.0                     # gradient-norm clip (None: no clipping); the section's "clip" wins
    shuffle = True
    sampling = "shuffle"           # ResumableSampler; "randint"/"loader": see DrawSampler
    find_unused_parameters = False  # DDP: True when some parameters get no gradient at some steps

    def __init__(self, manifests, recipe: dict, out: str | os.PathLike):
        self.manifests = [Path(m) for m in (manifests or [])]
        self.recipe = recipe
        self.out = Path(out)
        self.dir = self.out / self.stage
        self.final = self.dir / "final"
        self.settings = {**self.defaults, **(recipe.get(self.section) or {})}
        self.train_settings = recipe.get("train") or {}
        self.seed = int(recipe.get("seed", 0))
        self.steps = int(self.settings.get("steps", 1000))
        self.batch_size = int(self.settings.get("batch_size", 16))
        self.rng = random.Random(self.seed)
        self.model = self.optimizer = self.scheduler = self.ema = self.data = None
        self.step = 0
        self.log_path = self.dir / "log.jsonl"
        self.ckpt = Checkpointer(self.dir / "ckpt")

    # --- what a subclass implements ------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def train_step(self, batch) -> dict:
        raise NotImplementedError

    def validate(self) -> dict:
        """Validation metrics (run on the main process, model in eval mode under :meth:`ema_weights`)."""
        return {}

    def preview(self, step: int) -> None:
        """Write examples for ears and eyes (main process only)."""

    def export(self, dest: Path):
        """Write the trained result to ``dest`` (main process only); returns what :meth:`run` returns."""
        return dest

    def finished(self) -> bool:
        """True when the stage's output already exists (then :meth:`run` returns it without training)."""
        return (self.final / "config.json").exists()

    resume_after_budget = True  # a stage stopped by [train] max_minutes trains on when run again

    @property
    def budget_marker(self) -> Path:
        return self.dir / "stopped_at_budget.json"

    def _done(self) -> bool:
        return self.finished() and not (self.resume_after_budget and self.budget_marker.exists())

    def collate(self, items: list):
        return torch.utils.data.default_collate(items)

    def uses_ema(self) -> bool:
        return self.settings.get("ema_decay") is not None

    def make_ema(self):
        """The weight average of ``self.model`` (called after :meth:`build` when :meth:`uses_ema`)."""
        decay = float(self.settings["ema_decay"])
        if self.ema_kind == "averaged":
            return AveragedEMA(self.model, decay, buffers=self.ema_buffers)
        from diffusers.training_utils import EMAModel

        return EMAModel(self.model.parameters(), decay=decay, use_ema_warmup=self.ema_warmup)

    def begin(self) -> None:
        """Runs once before the loop (fresh or resumed: ``self.step`` says which), after :meth:`build`."""

    def should_stop(self) -> str | None:
        """Asked on the main process after each validation: a reason to end the stage now (early stopping; the
        stage then saves and exports as at its last step), else None."""
        return None

    # --- helpers for subclasses ----------------------------------------------------------------------
    @contextlib.contextmanager
    def ema_weights(self):
        """The EMA weights in the (unwrapped) model, eval mode; restored afterwards."""
        was = self.model.training
        if self.ema is not None:
            self.ema.store(self.model.parameters())
            self.ema.copy_to(self.model.parameters())
        self.model.eval()
        try:
            with torch.no_grad():
                yield self.model
        finally:
            if self.ema is not None:
                self.ema.restore(self.model.parameters())
            self.model.train(was)

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def log(self, record: dict) -> None:
        if self.is_main:
            append_log(self.log_path, record)

    # --- the loop ------------------------------------------------------------------------------------
    def _accelerator(self):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        device = training_device(self.train_settings.get("device"))
        precision = str(self.train_settings.get("mixed_precision", "no"))
        if device == "cpu":
            precision = "no"  # the CPU has no half-precision speed-up to offer
        if device.startswith("cuda:"):
            import torch.cuda

            torch.cuda.set_device(int(device.split(":")[1]))
        return Accelerator(cpu=device == "cpu", mixed_precision=precision,
                           kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=self.find_unused_parameters)])

    def _truncate_log(self, step: int) -> None:
        """Drop records of steps after ``step`` (a killed run logged beyond its last checkpoint)."""
        if not self.is_main or not self.log_path.exists():
            return
        keep = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the kill
            if not (isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] > step):
                keep.append(line)
        with atomic_path(self.log_path) as tmp:
            tmp.write_text("".join(f"{ln}\n" for ln in keep), encoding="utf-8")

    def _save(self) -> None:
        from accelerate.utils import gather_object

        world = self.accelerator.num_processes
        mine = [(_rng_state(self.rng), _fingerprint(self.model) if world > 1 else None, _whoami())]
        gathered = gather_object(mine)  # every process's streams (and weights' hash, host, pid), in rank order
        rngs = [g[0] for g in gathered]
        if self.is_main and world > 1:
            hashes = [g[1] for g in gathered]
            self.log({"step": self.step, "processes": world, "ranks": [g[2] for g in gathered],
                      "weights_sha256": hashes, "in_sync": len(set(hashes)) == 1})
            if len(set(hashes)) != 1:
                print(f"warning: step {self.step}: the {world} processes' weights differ ({self.stage})", flush=True)
        if self.is_main:
            objects = {"model": self.model, "opt": self.optimizer, "rngs": rngs,
                       "world": self.accelerator.num_processes}
            if self.sampler is not None:  # None: train_step draws its own batches (see extra_state)
                objects["sampler"] = self.sampler.state_dict()
            if self.ema is not None:
                objects["ema"] = self.ema
            if self.scheduler is not None:
                objects["sched"] = self.scheduler
            objects.update(self.extra_state())
            self.ckpt.save(self.step, **objects)
        self.accelerator.wait_for_everyone()

    def extra_state(self) -> dict:
        """More objects (with ``state_dict``/``load_state_dict``) to checkpoint, e.g. a second network."""
        return {}

    def _resume(self) -> int:
        if not self.ckpt.exists():
            return 0
        state = self.ckpt.read()
        names = {"model": self.model, "opt": self.optimizer}
        if self.ema is not None:
            names["ema"] = self.ema
        if self.scheduler is not None:
            names["sched"] = self.scheduler
        for name, obj in names.items():
            if name not in state:
                raise FoleyError(f"{self.ckpt.path}: checkpoint lacks '{name}'; delete it to start over")
            obj.load_state_dict(state[name])
        for name, obj in self.extra_state().items():  # optional: older checkpoints may lack them
            if name in state:
                obj.load_state_dict(state[name])
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        if "sampler" in state and self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])
        rngs = state.get("rngs")
        if rngs is not None and len(rngs) == world:
            _set_rng_state(rngs[rank], self.rng)
        else:  # an older checkpoint, or another number of processes: fresh streams derived from the step
            torch.manual_seed(self.seed * 1_000_003 + int(state["step"]) * 7919 + rank)
            random.seed(self.seed + int(state["step"]) + rank)
            self.rng.seed(self.seed + int(state["step"]))
            if "rng" in state and world == 1:
                torch.set_rng_state(state["rng"])
        return int(state["step"])

    def _sampler(self):
        if self.sampling == "shuffle":
            return ResumableSampler(len(self.data), self.seed, self.shuffle)
        gen = torch.Generator().manual_seed(self.seed) if self.accelerator.num_processes > 1 else None
        return DrawSampler(len(self.data), self.sampling, self.batch_size, gen)

    def next_batch(self):
        """The next batch of this process's share (what :meth:`train_step` receives), on the device."""
        return self._batch()

    def _batch(self):
        idx = self.sampler.take(self.batch_size)
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        mine = idx[rank::world]
        from accelerate.utils import send_to_device

        return send_to_device(self.collate([self.data[i] for i in mine]), self.accelerator.device)

    def optimizer_step(self, loss: torch.Tensor, optimizer, parameters, clip: float | None) -> None:
        """Backward ``loss`` (across processes), clip ``parameters``' gradient norm, step ``optimizer``."""
        optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if clip is not None:
            self.accelerator.clip_grad_norm_(parameters, float(clip))
        optimizer.step()

    def _optimize(self, loss: torch.Tensor | None) -> None:
        if loss is not None:
            clip = self.settings.get("clip", self.clip)
            self.optimizer_step(loss, self.optimizer, list(self.model.parameters()), clip)
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.step(self.model.parameters())

    def _reduce(self, losses: dict) -> dict:
        """Loss values averaged over processes (the global batch's loss), as floats."""
        keys = sorted(k for k, v in losses.items() if isinstance(v, (int, float, torch.Tensor)))
        vals = torch.tensor([float(losses[k].detach()) if isinstance(losses[k], torch.Tensor) else float(losses[k])
                             for k in keys], device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            vals = self.accelerator.reduce(vals, reduction="mean")
        return dict(zip(keys, vals.tolist(), strict=True))

    def run(self):
        """Train to ``steps`` (resuming from the last checkpoint), then export; returns :meth:`export`'s value."""
        if self._done():
            return self.final
        set_threads(self.train_settings.get("threads"))
        self.accelerator = self._accelerator()
        torch.manual_seed(self.seed)
        random.seed(self.seed)
        np.random.seed(self.seed)
        self.build()
        if self.model is None or self.optimizer is None:
            raise FoleyError(f"{type(self).__name__}.build() must set self.model and self.optimizer")
        world = self.accelerator.num_processes
        if self.batch_size % world:
            raise FoleyError(f"batch_size {self.batch_size} does not split over {world} processes; use a multiple "
                             f"of {world}")
        if self.uses_ema() and self.ema is None:
            self.ema = self.make_ema()
        self.sampler = self._sampler() if self.data is not None else None
        if self.accelerator.process_index:  # other processes draw other noise; the main one keeps the seed's
            torch.manual_seed(self.seed * 1_000_003 + self.accelerator.process_index)
            random.seed(self.seed + self.accelerator.process_index)
        self.step = self._resume()
        self._truncate_log(self.step)
        self.train_model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        if self.ema is not None:
            self.ema.to(self.accelerator.device)
        self.model.train()
        self.begin()
        self.loop()
        self.accelerator.wait_for_everyone()
        result = self.export(self.final) if self.is_main else self.final
        self.accelerator.wait_for_everyone()
        return result

    def loop(self) -> None:
        t = self.train_settings
        log_every, valid_every = int(t.get("log_every", 50)), int(t.get("valid_every", 500))
        save_every, preview_every = int(t.get("save_every", 250)), int(t.get("preview_every") or 0)
        preview_minutes = float(t.get("preview_minutes") or 0)  # also (or instead) a preview every N minutes
        bar = progress(self.steps, self.step, self.stage)
        bar.disable = not self.is_main
        t0, step0 = time.time(), self.step
        t_preview = t0
        max_minutes = t.get("max_minutes")
        while self.step < self.steps:
            with self.accelerator.autocast():
                losses = self.train_step(self._batch() if self.data is not None else None)
            if self.manual_optimization:
                self._optimize(None)
            elif "loss" in losses and isinstance(losses["loss"], torch.Tensor) and losses["loss"].requires_grad:
                self._optimize(losses["loss"])
            self.step += 1
            bar.update(1)
            last = self.step == self.steps or (max_minutes is not None and self._over(t0, float(max_minutes)))
            if self.step % log_every == 0 or last:
                record = self._reduce(losses)
                if self.scheduler is not None:
                    record["lr"] = self.scheduler.get_last_lr()[0]
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "lr"})
                self.log({"step": self.step, **record,
                          "steps_per_s": (self.step - step0) / max(1e-9, time.time() - t0)})
            stop = None
            if self.step % valid_every == 0 or last:
                if self.is_main:
                    with self.ema_weights():
                        metrics = self.validate()
                    if metrics:
                        self.log({"step": self.step, **metrics})
                        if any(isinstance(v, float) for v in metrics.values()):
                            bar.write(f"step {self.step}: " + ", ".join(
                                f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
                    stop = self.should_stop()
                stop = self._shared(stop)
                self.accelerator.wait_for_everyone()
            if self.step % save_every == 0 or last or stop:
                self._save()
            due = preview_minutes and self._shared(time.time() - t_preview > 60 * preview_minutes)
            if preview_every and self.step % preview_every == 0 or due:
                if self.is_main:
                    self.preview(self.step)
                t_preview = time.time()
                self.accelerator.wait_for_everyone()
            if stop and self.step < self.steps:
                bar.write(f"stopping at step {self.step}: {stop}")
                if self.is_main:  # ended by its own rule: done, whatever budget stopped it before
                    self.budget_marker.unlink(missing_ok=True)
                break
            if last and self.step < self.steps:
                again = "; run it again to continue" if self.resume_after_budget else ""
                bar.write(f"stopping at step {self.step}: [train] max_minutes = {max_minutes} reached{again}")
                if self.is_main:
                    from ..fsutil import write_json_atomic

                    write_json_atomic(self.budget_marker, {"step": self.step, "steps": self.steps,
                                                           "max_minutes": max_minutes})
                break
        else:  # all steps done: no longer a budget stop
            if self.is_main:
                self.budget_marker.unlink(missing_ok=True)
        bar.close()

    def _shared(self, value):
        """The main process's ``value``, in every process."""
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            box = [value]
            broadcast_object_list(box)
            return box[0]
        return value

    def _over(self, t0: float, minutes: float) -> bool:
        """The wall-time limit is reached (the main process decides, so every process stops at the same step)."""
        from accelerate.utils import broadcast_object_list

        flag = [time.time() - t0 > 60 * minutes]
        if self.accelerator.num_processes > 1:
            broadcast_object_list(flag)
        return bool(flag[0])

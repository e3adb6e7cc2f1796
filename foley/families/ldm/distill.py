"""Few-step sampling by distillation: ``foley train distill --from starter --data M.jsonl -o models/starter-fast``.

Guided trajectory distillation (progressive distillation's target, several teacher steps per student step in one
round, classifier-free guidance folded in as in guided distillation): the teacher samples with its own solver
(DPM-Solver++, 20 steps, guidance 3) from captions of its training corpora and records its latent at the student's
K boundaries (the teacher's "trailing" timestep grid contains the student's K-step DDIM grid); the student, the
teacher's UNet trained further, learns from each recorded state the single deterministic DDIM step that lands on the
teacher's next recorded state, with one UNet pass and no guidance. So a K-step student does K passes where the
teacher does 2 x 20.

Stages in ``<run>/``: ``teacher`` (trajectories in resumable chunks, the first ``valid`` ones held out) and
``distill`` (:class:`DistillSolver` on the shared training harness). The result is a model folder like the
teacher's with the student UNet and the defaults ``steps = K, guidance_scale = 1, scheduler = ddim``.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import torch

from ...errors import FoleyError
from ...fsutil import write_json_atomic
from ...train.chunks import load_chunks, write_chunks
from ...train.loop import warmup_cosine
from ...train.solver import Solver

DEFAULTS = {"student_steps": 4, "teacher_steps": 20, "teacher_scheduler": "dpm++", "guidance": 3.0,
            "trajectories": 2000, "valid": 64, "seconds": 4.0, "chunk": 16}


def _settings(recipe: dict) -> dict:
    return {**DEFAULTS, **(recipe.get("teacher") or {})}


def student_grid(model, k: int) -> tuple[list[int], list[float]]:
    """The student's K DDIM timesteps and the K + 1 cumulative alphas of its boundaries (the last: the solver's
    final alpha), from the teacher's own scheduler configuration."""
    sched = model.scheduler("ddim")
    sched.set_timesteps(k)
    ts = [int(t) for t in sched.timesteps]
    alphas = [float(sched.alphas_cumprod[t]) for t in ts] + [float(sched.final_alpha_cumprod)]
    return ts, alphas


def teacher_boundaries(model, s: dict) -> list[int]:
    """Indices of the teacher's steps after which its latent sits on the student's next boundary; a one-line error
    when the teacher's grid does not contain the student's."""
    k, n = int(s["student_steps"]), int(s["teacher_steps"])
    if k < 1 or n % k:
        raise FoleyError(f"teacher_steps ({n}) must be a multiple of student_steps ({k})")
    teacher = model.scheduler(s["teacher_scheduler"])
    teacher.set_timesteps(n)
    tt = [int(t) for t in teacher.timesteps]
    student, _ = student_grid(model, k)
    every = n // k
    if [tt[j * every] for j in range(k)] != student:
        raise FoleyError(f"the teacher's {n}-step grid {tt[:every * 2]}... does not contain the student's {k}-step "
                         f"DDIM grid {student}; use a 'trailing' timestep spacing and teacher_steps a multiple of "
                         f"student_steps")
    return [every * (j + 1) - 1 for j in range(k)]


def read_prompts(manifests: list[Path], seed: int) -> list[str]:
    """Every caption of the manifests (each clip's captions), shuffled by ``seed``; one-line error when none."""
    import random

    from ...data.manifest import read_manifest

    prompts: list[str] = []
    for m in manifests:
        if not Path(m).exists():
            raise FoleyError(f"{m}: manifest not found (the teacher's prompts come from its training captions)")
        for clip in read_manifest(m):
            prompts += [c for c in (clip.captions or [clip.description]) if c and c.strip()]
    if not prompts:
        raise FoleyError("the manifests hold no captions; the teacher needs prompts (give captioned manifests)")
    random.Random(seed).shuffle(prompts)
    return prompts


def make_trajectories(teacher: Path, manifests: list[Path], recipe: dict, out: Path, say=print) -> Path:
    """Stage ``teacher``: ``<out>/teacher/chunk-NNNNN.pt`` with the states [B, K + 1, C, H, W] (float16) at the
    student's boundaries (noise first, the teacher's sample last), their prompts and seeds. Resumable: finished
    chunks are kept; ``done.json`` marks the stage finished."""
    from .model import Conditioning, LatentAudioModel

    s = _settings(recipe)
    d = Path(out) / "teacher"
    if (d / "done.json").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    model = LatentAudioModel.from_folder(teacher)
    marks = teacher_boundaries(model, s)
    prompts = read_prompts(manifests, int(recipe.get("seed", 0)))
    total, chunk = int(s["trajectories"]) + int(s["valid"]), int(s["chunk"])
    width = model.latent_frames(float(s["seconds"]))
    shape = (model.vae.config.latent_channels, model.latent_height, width)

    def make(c: int) -> dict:
        idx = list(range(c * chunk, min(total, (c + 1) * chunk)))
        texts = [prompts[i % len(prompts)] for i in idx]
        seeds = [int(recipe.get("seed", 0)) * 1_000_003 + i for i in idx]
        noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(sd)) for sd in seeds])
        emb = model.encode_text(texts + [""] * len(texts))
        n = len(texts)
        cond = Conditioning(emb.tokens[:n], emb.mask[:n], emb.pooled[:n])
        uncond = Conditioning(emb.tokens[n:], emb.mask[n:], emb.pooled[n:])
        trace: list[torch.Tensor] = []
        model.denoise(cond, uncond, noise, steps=int(s["teacher_steps"]), guidance=float(s["guidance"]),
                      scheduler=s["teacher_scheduler"], trace=trace)
        return {"states": torch.stack([noise] + [trace[m] for m in marks], dim=1).half(), "prompts": texts,
                "seeds": seeds}

    minutes = write_chunks(d, math.ceil(total / chunk), make, "teacher trajectories", total, say=say)
    write_json_atomic(d / "done.json", {"trajectories": total, "teacher": str(teacher), "settings": s,
                                        "boundaries": marks, "latent": list(shape), "minutes": minutes})
    return d


def _load_trajectories(d: Path) -> dict:
    return load_chunks(d, "teacher trajectories; run the teacher stage first")


LOSSES = ("state", "v", "rollout")


class DistillSolver(Solver):
    """Stage ``distill``: the student UNet (from the teacher's) regressed on the DDIM step between boundaries."""

    stage = section = "distill"
    # loss = "state": squared error of the DDIM step's landing point (each boundary weighted by what its error does
    # to the sample); "v": of the v target (weights the first, noise-level step ~70x more than the last at K = 4);
    # "rollout": the student runs its own K steps from the teacher's noise (gradients through all of them) and the
    # error of every state it lands on is counted - its own errors compound in training as they do when it samples
    defaults = {"lr": 1e-4, "weight_decay": 0.0, "steps": 3000, "warmup": 100, "ema_decay": 0.999,
                "batch_size": 16, "loss": "state", "init": None}

    def __init__(self, teacher: Path, recipe: dict, out: Path):
        super().__init__([], recipe, out)
        self.teacher = Path(teacher)

    def build(self) -> None:
        from .components import load_component
        from .model import LatentAudioModel

        s = _settings(self.recipe)
        self.k = int(s["student_steps"])
        self.lm = LatentAudioModel.from_folder(self.teacher)
        self.grid, alphas = student_grid(self.lm, self.k)
        self.a = torch.tensor(alphas).sqrt()
        self.s = (1 - torch.tensor(alphas)).sqrt()
        traj = _load_trajectories(self.out / "teacher")
        nv = int(s["valid"])
        if traj["states"].shape[1] != self.k + 1:
            raise FoleyError(f"{self.out / 'teacher'}: trajectories for {traj['states'].shape[1] - 1} steps, the "
                             f"recipe asks {self.k}; delete the folder and run the teacher stage again")
        self.valid = {"states": traj["states"][:nv], "prompts": traj["prompts"][:nv]}
        self.train_set = {"states": traj["states"][nv:], "prompts": traj["prompts"][nv:]}
        r = self.settings
        if r["loss"] not in LOSSES:
            raise FoleyError(f"[distill] loss must be one of {', '.join(LOSSES)}, got {r['loss']!r}")
        # the student starts from the teacher's UNet, or from an earlier student (``init``: a model folder)
        start = Path(r["init"]) if r.get("init") else self.teacher
        self.model = load_component("UNet2DConditionModel", start / "unet").float()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=float(r["lr"]),
                                           weight_decay=float(r["weight_decay"]))
        self.scheduler = warmup_cosine(self.optimizer, int(r["warmup"]), self.steps)
        # (trajectory, boundary) pairs; a rollout takes whole trajectories
        self.data = range(self.train_set["states"].shape[0] * (1 if r["loss"] == "rollout" else self.k))

    def collate(self, items: list):
        return torch.tensor(items)

    def targets(self, x: torch.Tensor, y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The v the student must output at boundary ``k`` from state ``x`` so that a deterministic DDIM step lands on
        ``y`` (the teacher's state at boundary k + 1): solve y = a' x0 + s' (x - a x0) / s for x0, then
        v = (a x - x0) / s."""
        a, s = self.a[k][:, None, None, None], self.s[k][:, None, None, None]
        a2, s2 = self.a[k + 1][:, None, None, None], self.s[k + 1][:, None, None, None]
        x0 = (y - (s2 / s) * x) / (a2 - s2 * a / s)
        return (a * x - x0) / s

    def landing(self, x: torch.Tensor, v: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Where a deterministic DDIM step from ``x`` at boundary ``k`` with the model output ``v`` lands."""
        a, s = self.a[k][:, None, None, None], self.s[k][:, None, None, None]
        a2, s2 = self.a[k + 1][:, None, None, None], self.s[k + 1][:, None, None, None]
        return a2 * (a * x - s * v) + s2 * (s * x + a * v)

    def _loss(self, model, states, prompts, k: torch.Tensor, space: str | None = None) -> torch.Tensor:
        rows = torch.arange(states.shape[0])
        x, y = states[rows, k].float(), states[rows, k + 1].float()
        emb = self.lm.encode_text(prompts)
        t = torch.tensor(self.grid)[k]
        pred = model(x, t, encoder_hidden_states=emb.tokens, encoder_attention_mask=emb.mask,
                     class_labels=emb.pooled).sample
        if (space or self.settings["loss"]) == "v":
            return torch.nn.functional.mse_loss(pred, self.targets(x, y, k))
        return torch.nn.functional.mse_loss(self.landing(x, pred, k), y)

    def rollout_loss(self, model, states, prompts) -> torch.Tensor:
        """The student's own K-step path from the teacher's noise: the mean over its boundaries of the squared error
        of the state it lands on against the teacher's state there."""
        x, emb = states[:, 0].float(), self.lm.encode_text(prompts)
        total = x.new_zeros(())
        for k in range(self.k):
            kk = torch.full((x.shape[0],), k)
            pred = model(x, torch.tensor(self.grid[k]), encoder_hidden_states=emb.tokens,
                         encoder_attention_mask=emb.mask, class_labels=emb.pooled).sample
            x = self.landing(x, pred, kk)
            total = total + torch.nn.functional.mse_loss(x, states[:, k + 1].float())
        return total / self.k

    def train_step(self, idx: torch.Tensor) -> dict:
        idx = idx.cpu()
        if self.settings["loss"] == "rollout":
            prompts = [self.train_set["prompts"][i] for i in idx.tolist()]
            return {"loss": self.rollout_loss(self.train_model, self.train_set["states"][idx], prompts)}
        traj, k = idx // self.k, idx % self.k
        prompts = [self.train_set["prompts"][i] for i in traj.tolist()]
        return {"loss": self._loss(self.train_model, self.train_set["states"][traj], prompts, k)}

    def validate(self) -> dict:
        """Per-boundary loss on the held-out trajectories, and the student's own K-step sample against the teacher's
        (latent MSE; the number that matters)."""
        st, pr = self.valid["states"], self.valid["prompts"]
        n = st.shape[0]
        out = {}
        for k in range(self.k):  # the landing point's error at each boundary (whatever the training loss)
            out[f"valid_loss_{k}"] = float(self._loss(self.model, st, pr, torch.full((n,), k), space="state"))
        out["valid_loss"] = sum(out.values()) / self.k
        out["valid_sample_mse"] = float(((self.sample(self.model, st[:, 0].float(), pr) - st[:, -1].float()) ** 2)
                                        .mean())
        return out

    @torch.no_grad()
    def sample(self, unet, noise: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """The student's K-step sample through the family's own sampler (DDIM, no guidance)."""
        lm = copy.copy(self.lm)
        lm.unet = unet
        emb = lm.encode_text(prompts)
        return lm.denoise(emb, emb, noise, steps=self.k, guidance=1.0, scheduler="ddim")

    def export(self, dest: Path) -> Path:
        from .components import save_component

        if self.ema is not None:
            self.ema.copy_to(self.model.parameters())
        save_component(copy.deepcopy(self.model).eval().half(), dest)
        return dest


def distill_ldm(teacher: Path, teacher_name: str, manifests: list[Path], recipe: dict, run: Path, dest: Path,
                force: bool = False, say=print) -> Path:
    """Both stages, then the student model folder at ``dest`` (written whole or not at all)."""
    from ...hashing import folder_hash

    run, dest, teacher = Path(run), Path(dest), Path(teacher)
    if dest.exists() and not force:
        raise FoleyError(f"{dest}: already exists; choose another --output or pass --force to replace it")
    run.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run / "recipe.json", recipe)
    t_teacher = json.loads((make_trajectories(teacher, manifests, recipe, run, say=say) / "done.json").read_text())
    solver = DistillSolver(teacher, recipe, run)
    unet_dir = solver.run()
    s = _settings(recipe)
    log = [json.loads(ln) for ln in (run / "distill" / "log.jsonl").read_text().splitlines() if ln.strip()]
    valid = [r for r in log if "valid_sample_mse" in r]
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(teacher, tmp, ignore=shutil.ignore_patterns("unet", "README.md"))
    shutil.copytree(unet_dir, tmp / "unet")
    cfg = json.loads((tmp / "foley.json").read_text())
    cfg["defaults"] = {"steps": int(s["student_steps"]), "guidance_scale": 1.0, "scheduler": "ddim"}
    cfg.setdefault("extra", {})["distilled"] = {
        "teacher": teacher_name, "teacher_weights": folder_hash(teacher), "teacher_steps": int(s["teacher_steps"]),
        "teacher_scheduler": s["teacher_scheduler"], "guidance": float(s["guidance"]),
        "student_steps": int(s["student_steps"]), "trajectories": int(s["trajectories"]),
        "loss": solver.settings["loss"], "init": solver.settings.get("init"),
        "steps": valid[-1]["step"] if valid else None,
        "valid_sample_mse": valid[-1]["valid_sample_mse"] if valid else None,
        "teacher_minutes": t_teacher.get("minutes"), "recipe": recipe.get("name")}
    cfg["extra"]["recipe"] = recipe.get("name") or cfg["extra"].get("recipe")
    write_json_atomic(tmp / "foley.json", cfg)
    (tmp / "README.md").write_text(_card(teacher_name, cfg["extra"]["distilled"], recipe), encoding="utf-8")
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


def _card(teacher: str, d: dict, recipe: dict) -> str:
    return (f"# {recipe.get('name') or 'distilled'} — {teacher} distilled to {d['student_steps']} steps\n\n"
            f"The UNet of `{teacher}` (weights {d['teacher_weights']}, as `foley models info` prints) distilled "
            f"from its own sampler "
            f"({d['teacher_scheduler']}, {d['teacher_steps']} steps, guidance {d['guidance']}) into a "
            f"{d['student_steps']}-step DDIM sampler without guidance (one UNet pass per step). VAE, vocoder, text "
            f"encoder and scheduler configuration are the teacher's, unchanged.\n\n"
            f"- trajectories: {d['trajectories']} teacher samples from its training captions "
            f"({d['teacher_minutes']} min)\n- training steps: {d['steps']}; held-out latent MSE of the student's "
            f"sample against the teacher's: {d['valid_sample_mse']}\n- recipe: `{recipe.get('name')}`; command: "
            f"`foley train distill --from {teacher} --recipe <recipe> --data <its training manifests> -o <folder>`\n\n"
            f"Defaults: `--steps {d['student_steps']} --guidance 1`. `--steps` and `--guidance` are honoured "
            f"(other step counts run the same DDIM sampler on other timesteps; the student was trained on its "
            f"{d['student_steps']} only). Licence: the teacher's (its card).\n")

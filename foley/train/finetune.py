"""Fine-tuning a shipped model on the user's own sounds: what every family's ``finetune`` entry shares.

A family's fine-tuning is a subclass of its own training stage (the LDM's UNet solver, the token LM's decoder
solver) with :class:`FinetuneMixin`: the base model's VAE/codec and text encoder are frozen and adopted, the
network starts from the base's weights, and either all of it trains (full) or only LoRA matrices (peft) on its
attention and projection layers. This module holds the rest: reading the user's data (a manifest, or a plain
folder of audio with captions from sidecars, a manifest or the file names), the held-out split, defaults from
the folder's size, early stopping on the held-out loss, the preview sheet, the output folder (written whole or
not at all, never over an existing one without ``force``) and the cards.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import FoleyError
from ..fsutil import write_json_atomic

MIN_CLIPS = 5          # fewer clips cannot give both a training and a held-out split
HELDOUT_SHARE = 0.1    # held-out share of the user's clips ...
HELDOUT_MIN = 3        # ... but at least this many (and at most a third of them)


@dataclass
class UserData:
    """The user's clips as a manifest the stages read, and what the card says about them."""

    manifest: Path
    clips: int
    minutes: float
    captions: str                  # where the captions came from, in words
    heldout: int                   # clips held out
    valid_fraction: float          # the split threshold that holds out exactly those (see heldout_split)
    descriptions: list[str] = field(default_factory=list)  # distinct first captions, most frequent first

    def summary(self) -> dict:
        return {"clips": self.clips, "minutes": round(self.minutes, 2), "captions": self.captions,
                "heldout_clips": self.heldout, "descriptions": len(self.descriptions)}


def read_user_data(data: Path, run: Path) -> UserData:
    """``--data``: a manifest (JSONL) or a folder of audio (scanned into ``<run>/data.jsonl``). One-line errors for
    missing, empty or too small data."""
    from collections import Counter

    from ..data.manifest import read_manifest, write_manifest
    from ..data.scan import SOURCE_NAMES, scan_folder

    data = Path(data)
    if data.is_dir():
        result = scan_folder(data)
        if not result.clips:
            raise FoleyError(f"{data}: no usable audio files found ({len(result.skipped)} skipped); give a folder "
                             "of .wav/.flac/.ogg/.mp3 clips or a manifest (foley data scan)")
        manifest = write_manifest(Path(run) / "data.jsonl", result.clips)
        src = result.caption_sources
        captions = ", ".join(f"{SOURCE_NAMES.get(k, k)} ({n})" for k, n in src.most_common())
        clips = result.clips
    elif data.is_file():
        manifest, clips = data, read_manifest(data)
        captions = "manifest"
    else:
        raise FoleyError(f"{data}: not found; give a folder of audio clips or a manifest (JSONL, foley data scan)")
    if len(clips) < MIN_CLIPS:
        raise FoleyError(f"{data}: {len(clips)} clip(s); fine-tuning needs at least {MIN_CLIPS} (some are held out "
                         "to measure progress)")
    k, threshold = heldout_split(clips)
    firsts = Counter(c.description for c in clips if c.description)
    return UserData(manifest=Path(manifest), clips=len(clips), minutes=sum(c.duration for c in clips) / 60,
                    captions=captions, heldout=k, valid_fraction=threshold,
                    descriptions=[d for d, _ in firsts.most_common()])


def heldout_split(clips) -> tuple[int, float]:
    """(k, valid_fraction) such that :func:`foley.data.dataset.select_split` holds out exactly the k clips with the
    lowest split scores: 10 % of the clips, at least 3, at most a third."""
    from ..data.dataset import split_score

    n = len(clips)
    k = max(1, min(max(HELDOUT_MIN, round(HELDOUT_SHARE * n)), n // 3))
    scores = sorted(split_score(c) for c in clips)
    return k, (scores[k - 1] + scores[k]) / 2


def choose(user: UserData, lora: int | None, steps: int | None, lr: float | None, minutes: float | None,
           family_lr: tuple[float, float]) -> dict:
    """Defaults from the folder's size: steps (about 40 passes over the training clips, 200..4000), batch (16, fewer
    for tiny folders), learning rate (``family_lr`` = (LoRA, full)), rank (8; 16 past 2,000 clips), budget."""
    train = user.clips - user.heldout
    batch = max(2, min(16, train))
    auto_steps = int(min(4000, max(200, round(40 * train / batch))))
    return {"steps": int(steps) if steps else auto_steps, "batch_size": batch,
            "lr": float(lr) if lr else family_lr[0 if lora else 1],
            "rank": int(lora) if lora else None, "minutes": float(minutes) if minutes else 20.0}


def settle(user: UserData, opts: dict, family_lr: tuple[float, float], say=print) -> dict:
    """The options with every unset value chosen by :func:`choose`, said in one line."""
    chosen = choose(user, opts.get("lora"), opts.get("steps"), opts.get("lr"), opts.get("minutes"), family_lr)
    out = {**opts, **chosen}
    say(f"settings: {'LoRA rank ' + str(out['rank']) if out['rank'] else 'full fine-tuning'}, up to {out['steps']} "
        f"steps of batch {out['batch_size']}, lr {out['lr']:g}, budget {out['minutes']:g} min, early stop after "
        f"{int(opts.get('patience', 4))} validations without gain")
    return out


def finetune(base: Path, base_name: str, family: str, data: Path, dest: Path, run: Path | None = None,
             force: bool = False, say=print, **options) -> Path:
    """Fine-tune the model in ``base`` (registry name ``base_name``, family ``family``) on ``data`` (a manifest or a
    folder of audio) into ``dest``: an adapter folder with ``lora=RANK``, else a complete model folder.

    ``options``: ``lora``, ``steps``, ``lr``, ``minutes`` (budget), ``patience``, ``preview_minutes``, ``seed``,
    ``threads``, ``licence`` (of the user's data, for the card), ``targets`` (peft target modules). Resumes from
    ``run`` (default ``runs/finetune-<dest name>``) after a kill."""
    from ..family import get

    dest = Path(dest)
    check_output(dest, force)
    fn = get(family).finetune_function()
    run = Path(run) if run is not None else Path("runs") / f"finetune-{dest.name}"
    user = read_user_data(Path(data), run)
    say(f"data: {user.clips} clips, {user.minutes:.1f} min, {len(user.descriptions)} distinct descriptions; "
        f"captions from {user.captions}; {user.heldout} clips held out")
    if "file names" in user.captions:
        say("note: captions from file and folder names were used where no sidecar (.txt/.json), manifest or CSV "
            "gave one; name your files by what they sound like, or add sidecars")
    final = fn(user, Path(base), base_name, run, {**options, "dest": str(dest)}, say)
    tmp = staging(dest)
    shutil.copytree(final, tmp, dirs_exist_ok=True)
    return publish(tmp, dest)


def check_output(dest: Path, force: bool) -> None:
    """Nothing a user made is lost: an existing, non-empty output folder needs ``force``."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())) and not force:
        raise FoleyError(f"{dest}: already exists; choose another -o folder or pass --force to replace it")


def publish(tmp: Path, dest: Path) -> Path:
    """Move a finished folder into place (the old one, with --force, only goes once the new one is complete)."""
    dest = Path(dest)
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{int(time.time())}")
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(dest)
    return dest


def staging(dest: Path) -> Path:
    """A fresh temporary folder beside ``dest`` (same file system, so :func:`publish` is a rename)."""
    tmp = Path(dest).with_name(f".{Path(dest).name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def reconstruction_line(user_db: float, ref_db: float | None, what: str, ref_what: str) -> str:
    """"your sounds reconstruct at X dB; the base's reference at Y dB", and a warning when X is much worse."""
    line = f"reconstruction through the base {what} (log-mel SNR): your sounds {user_db:.1f} dB"
    if ref_db is None:
        return line
    line += f"; {ref_what} {ref_db:.1f} dB"
    if user_db < ref_db - 3.0:
        line += (f" -- {ref_db - user_db:.1f} dB worse: the {what} itself misses part of your sounds, so "
                 f"fine-tuning the generator alone cannot reach them fully (a {what} adapter is not built yet)")
    return line


def mel_snr_db(x: torch.Tensor, y: torch.Tensor) -> float:
    """Log-mel SNR in dB of a reconstruction ``y`` of ``x`` (both log-mels): variance of x over the error's power."""
    err = float(((x - y) ** 2).mean())
    return 10 * math.log10(float(x.var()) / max(err, 1e-12))


class EarlyStopping:
    """Held-out loss after each validation; stops after ``patience`` validations without a 0.2 % improvement."""

    def __init__(self, patience: int):
        self.patience, self.best, self.bad, self.best_step = int(patience), math.inf, 0, 0

    def update(self, loss: float, step: int) -> bool:
        """True when this loss is the best so far."""
        if loss < self.best * (1 - 2e-3):
            self.best, self.bad, self.best_step = loss, 0, step
            return True
        self.bad += 1
        return False

    def reason(self) -> str | None:
        if self.patience and self.bad >= self.patience:
            return (f"held-out loss has not improved for {self.bad} validations (best {self.best:.4f} at step "
                    f"{self.best_step}); early stop")
        return None

    def state_dict(self) -> dict:
        return {"best": self.best, "bad": self.bad, "best_step": self.best_step}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad, self.best_step = float(state["best"]), int(state["bad"]), int(state["best_step"])


class FinetuneMixin:
    """Mixed into a family's training stage (before it: ``class F(FinetuneMixin, UNetSolver)``).

    The recipe's ``[finetune]`` section: ``base`` (the model folder), ``rank`` (None: full fine-tuning),
    ``targets`` (peft target modules), ``patience`` (validations). The subclass's :meth:`build` calls
    :meth:`adapt` on the network it trains (after loading the base weights) and builds its optimiser over
    :meth:`trainable`; the best held-out weights are kept in ``best.pt`` and exported.
    """

    lora_targets: tuple[str, ...] = ()

    @property
    def ft(self) -> dict:
        return self.recipe.get("finetune") or {}

    def adapt(self, net: torch.nn.Module) -> torch.nn.Module:
        """LoRA (peft) on ``net``'s target layers with everything else frozen, or ``net`` unchanged (full)."""
        self.net = net
        self.stopper = EarlyStopping(int(self.ft.get("patience", 4)))
        rank = self.ft.get("rank")
        if not rank:
            return net
        from peft import LoraConfig, inject_adapter_in_model

        self.lora_config = LoraConfig(r=int(rank), lora_alpha=int(rank), lora_dropout=0.0,
                                      init_lora_weights="gaussian" if self.ft.get("gaussian_init") else True,
                                      target_modules=list(self.ft.get("targets") or self.lora_targets))
        net.requires_grad_(False)
        inject_adapter_in_model(self.lora_config, net)  # the LoRA matrices are the only trainable parameters
        return net

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def extra_state(self) -> dict:
        return {**super().extra_state(), "stopper": self.stopper}

    def held_out(self, metrics: dict) -> dict:
        """Record the validation's held-out loss; keeps the best weights (trainable ones) in ``best.pt``."""
        loss = metrics.get("valid_loss")
        if loss is not None and self.stopper.update(float(loss), self.step):
            from ..fsutil import atomic_path

            state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()
                     if not self.ft.get("rank") or "lora_" in k}
            with atomic_path(self.dir / "best.pt") as tmp:
                torch.save({"step": self.step, "loss": float(loss), "state": state}, tmp)
        return metrics

    def should_stop(self) -> str | None:
        return self.stopper.reason()

    def load_best(self) -> dict:
        """Put the best held-out weights into the model (the EMA weights of that validation); returns their record."""
        path = self.dir / "best.pt"
        if not path.exists():
            return {}
        rec = torch.load(path, weights_only=True)
        self.model.load_state_dict(rec["state"], strict=False)
        return {"best_step": int(rec["step"]), "best_heldout_loss": float(rec["loss"])}

    def training_record(self) -> dict:
        """Steps, minutes and held-out losses for the card (from the stage's log)."""
        log = [json.loads(x) for x in self.log_path.read_text(encoding="utf-8").splitlines() if x.strip()] \
            if self.log_path.exists() else []
        valid = [r for r in log if "valid_loss" in r]
        speed = [r["steps_per_s"] for r in log if "steps_per_s" in r]
        last = max((r["step"] for r in log if "step" in r), default=self.step)
        return {"steps": int(last), "minutes": round(last / speed[-1] / 60, 2) if speed and speed[-1] else None,
                "heldout_loss_first": valid[0]["valid_loss"] if valid else None,
                "heldout_loss_best": min((r["valid_loss"] for r in valid), default=None)}


def preview_sheet(gen, prompts: list[str], folder: Path, step: int, duration: float, seed: int = 0) -> Path:
    """Audio and a spectrogram PNG per prompt in ``folder/stepNNNNNN/`` (and an index.md listing them)."""
    from ..plot import save_spectrogram

    out = Path(folder) / f"step{step:06d}"
    lines = [f"# Preview at step {step}", ""]
    for i, (p, a) in enumerate(zip(prompts, gen.generate(prompts, duration=duration, seed=seed), strict=True)):
        a.save(out / f"{i:02d}.wav")
        save_spectrogram(a, out / f"{i:02d}.png", title=p[:60])
        lines.append(f"- `{i:02d}.wav` / `{i:02d}.png`: {p}")
    (out / "index.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def card_text(kind: str, card: dict) -> str:
    """The README.md of an adapter or fine-tuned model from its card."""
    base, data, tr = card["base"], card["data"], card["training"]
    lines = [f"# {card.get('name', 'fine-tuned')}: {kind} of {base['name']}", "",
             f"- base: {base['name']} ({base['family']}), weights {base['weight_hash']}",
             f"- method: {'LoRA rank ' + str(card['rank']) if card.get('rank') else 'full fine-tuning'}"
             + (f" on {', '.join(card['target_modules'])}" if card.get("target_modules") else ""),
             f"- data: {data['clips']} clips, {data['minutes']:.1f} min, captions from {data['captions']}; "
             f"{data['heldout_clips']} clips held out",
             f"- licence of the data: {card.get('licence', 'unknown')} (the base's licence applies too: "
             f"{base.get('licence', 'see its card')})",
             f"- training: {tr.get('steps')} steps" + (f", {tr['minutes']} min" if tr.get("minutes") else "")
             + (f"; held-out loss {tr['heldout_loss_first']:.4f} -> best {tr['heldout_loss_best']:.4f}"
                if tr.get("heldout_loss_first") is not None and tr.get("heldout_loss_best") is not None else ""),
             ]
    if card.get("reconstruction"):
        lines.append(f"- {card['reconstruction']}")
    if kind == "LoRA adapter":
        where = card.get("path", "FOLDER")
        lines += ["", "Use it:", "", f"    foley generate \"...\" -m {base['name']} --lora {where} [--lora-scale 0.8]",
                  f"    foley.load(\"{base['name']}\", lora=[(\"{where}\", 0.8)])",
                  f"    foley generate \"...\" -m {base['name']}+{Path(where).name}@0.8   (the name form; server too)"]
    return "\n".join(lines) + "\n"


def write_card_json(folder: Path, card: dict) -> None:
    write_json_atomic(Path(folder) / "finetune.json", card)


def base_entry(folder: Path, family: str, name: str) -> dict:
    from ..hashing import folder_hash

    licence = None
    try:
        from ..generator import read_foley_json

        licence = (read_foley_json(folder).get("extra") or {}).get("licence")
    except FoleyError:
        pass
    return {"name": name, "family": family, "folder": str(folder), "weight_hash": folder_hash(folder),
            "licence": licence or "see the base model's README.md"}


def dump(obj) -> str:
    return json.dumps(obj, indent=1)

"""Fine-tuning a shipped model on the user's own sounds: what every family's ``finetune`` entry shares.

A family's fine-tuning is a subclass of its own training stage (the LDM's UNet solver, the token LM's decoder
solver) with :class:`FinetuneMixin`: the base model's VAE/codec and text encoder are frozen and adopted, the
network starts from the base's weights, and either all of it trains (full) or only LoRA matrices (peft) on its
attention and projection layers. This module holds the rest: reading the user's data (a manifest, or a plain
folder of audio with captions from sidecars, a manifest or the file names), the held-out split, defaults from
the folder's size, early stopping on the held-out loss, the preview sheet, the output folder (written whole or
not at all, never over an existing one without ``force``) and the cards.

Replay (against forgetting): a share of every training batch comes from the base's own training corpora (found in
its foley.json ``extra.training_data`` or its registry entry's ``data``, or given as ``replay_data``): up to
:data:`REPLAY_CLIPS` clips of their training split (the base's held-out clips and the user's are left out), encoded
once with the same frozen VAE/codec into ``<run>/replay/all.pt``, drawn by :class:`ReplaySampler`; never in the
held-out split nor its loss. A replayed item is learnt as its clip (``replay_target = "data"``) or as the frozen
base model's own prediction for it (``"base"``: self-distillation, as in learning-without-forgetting; the family's
loss takes the base's output as the target of those items).
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
from .solver import DrawSampler, ResumableSampler

MIN_CLIPS = 5          # fewer clips cannot give both a training and a held-out split
HELDOUT_SHARE = 0.1    # held-out share of the user's clips ...
HELDOUT_MIN = 3        # ... but at least this many (and at most a third of them)
REPLAY_SHARE = 0.5     # default share of every batch replayed from the base's corpora (when they are on disk)
REPLAY_CLIPS = 1000    # most clips of the base's corpora encoded for replay (a seeded sample of their training split)
# what a replayed item is learnt as: "data" (the clip itself, as the base learnt it) or "base" (the base model's own
# prediction for it: self-distillation that anchors what the model does outside the user's sounds)
REPLAY_TARGETS = ("data", "base")
REPLAY_TARGET = "base"  # measured: docs/finetune.md "Forgetting and replay"
BASE_VALID_FRACTION = 0.03  # the held-out share of `foley train` when a base's recipe does not say


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
           family_lr: tuple[float, float], replay: float = 0.0) -> dict:
    """Defaults from the folder's size: steps (about 40 passes over the training clips, 200..4000; with a
    ``replay`` share of each batch from the base's corpora, as many more steps as keep 40 passes), batch (16, fewer
    for tiny folders), learning rate (``family_lr`` = (LoRA, full)), rank, budget."""
    train = user.clips - user.heldout
    batch = max(2, min(16, train))
    auto_steps = int(min(4000, max(200, round(40 * train / (batch * (1.0 - replay))))))
    return {"steps": int(steps) if steps else auto_steps, "batch_size": batch,
            "lr": float(lr) if lr else family_lr[0 if lora else 1],
            "rank": int(lora) if lora else None, "minutes": float(minutes) if minutes else 20.0}


def settle(user: UserData, opts: dict, family_lr: tuple[float, float], say=print) -> dict:
    """The options with every unset value chosen by :func:`choose`, said in one line."""
    replay = opts.get("replay")
    share = replay.fraction if replay is not None else 0.0
    chosen = choose(user, opts.get("lora"), opts.get("steps"), opts.get("lr"), opts.get("minutes"), family_lr,
                    share)
    out = {**opts, **chosen}
    say(f"settings: {'LoRA rank ' + str(out['rank']) if out['rank'] else 'full fine-tuning'}, up to {out['steps']} "
        f"steps of batch {out['batch_size']}" + (f" ({share:.0%} replayed from the base's corpora)" if share else "")
        + f", lr {out['lr']:g}, budget {out['minutes']:g} min, early stop after "
        f"{int(opts.get('patience', 4))} validations without gain")
    return out


def finetune(base: Path, base_name: str, family: str, data: Path, dest: Path, run: Path | None = None,
             force: bool = False, say=print, **options) -> Path:
    """Fine-tune the model in ``base`` (registry name ``base_name``, family ``family``) on ``data`` (a manifest or a
    folder of audio) into ``dest``: an adapter folder with ``lora=RANK``, else a complete model folder.

    ``options``: ``lora``, ``steps``, ``lr``, ``minutes`` (budget), ``patience``, ``preview_minutes``, ``seed``,
    ``threads``, ``licence`` (of the user's data, for the card), ``targets`` (peft target modules), ``replay``
    (share of every batch from the base's corpora; None: :data:`REPLAY_SHARE` when they are on disk, else off),
    ``vae`` (off, on or auto: a decoder adapter for sounds the base's VAE reconstructs poorly; latent diffusion),
    ``replay_data`` (their manifests, when the base does not record them), ``replay_clips``, ``replay_target``
    (:data:`REPLAY_TARGETS`: a replayed item is learnt as its clip or as the base's own prediction). Resumes from
    ``run`` (default ``runs/finetune-<dest name>``) after a kill."""
    from ..family import get

    dest = Path(dest)
    check_output(dest, force)
    fn = get(family).finetune_function()  # a family that cannot be fine-tuned is refused before any other note
    target = check_replay_target(options.pop("replay_target", None))
    replay = resolve_replay(Path(base), base_name, options.pop("replay", None), options.pop("replay_data", None),
                            say)
    if replay is not None:
        replay.limit = int(options.pop("replay_clips", None) or REPLAY_CLIPS)
        replay.target = target
    options.pop("replay_clips", None)
    run = Path(run) if run is not None else Path("runs") / f"finetune-{dest.name}"
    user = read_user_data(Path(data), run)
    say(f"data: {user.clips} clips, {user.minutes:.1f} min, {len(user.descriptions)} distinct descriptions; "
        f"captions from {user.captions}; {user.heldout} clips held out")
    if "file names" in user.captions:
        say("note: captions from file and folder names were used where no sidecar (.txt/.json), manifest or CSV "
            "gave one; name your files by what they sound like, or add sidecars")
    final = fn(user, Path(base), base_name, run, {**options, "replay": replay, "dest": str(dest)}, say)
    tmp = staging(dest)
    shutil.copytree(final, tmp, dirs_exist_ok=True)
    return publish(tmp, dest)


# --- replay of the base's corpora --------------------------------------------------------------------------------
@dataclass
class Replay:
    """Replay settings: the share of every batch, the manifests and where they were found."""

    fraction: float
    manifests: list[Path]
    origin: str                    # where the manifests were found, in words
    valid_fraction: float          # the base's held-out share: those clips are never replayed
    missing: list[str] = field(default_factory=list)   # recorded manifests not on disk
    limit: int = REPLAY_CLIPS
    clips: int = 0                 # clips in the pool (set by replay_pool)
    per_source: dict = field(default_factory=dict)
    target: str = REPLAY_TARGET    # what a replayed item is learnt as (REPLAY_TARGETS)

    def record(self) -> dict:
        """What the card and the recipe say about it."""
        return {"fraction": self.fraction, "sources": [str(m) for m in self.manifests], "origin": self.origin,
                "clips": self.clips, "clips_per_source": dict(self.per_source),
                "base_valid_fraction": self.valid_fraction, "missing": list(self.missing), "target": self.target}


def _on_disk(path: str | Path) -> Path | None:
    """A recorded manifest: absolute, else relative to the working folder, else to the repository."""
    from ..paths import REPO_MODELS

    p = Path(path).expanduser()
    for cand in ([p] if p.is_absolute() else [p, REPO_MODELS.parent / p]):
        if cand.is_file():
            return cand
    return None


def _recipe_valid_fraction(recipe: str | None) -> float:
    """``[audio] valid_fraction`` of a shipped model's TOML recipe (repository-relative), else the default."""
    import tomllib

    from ..paths import REPO_MODELS

    path = REPO_MODELS.parent / recipe if recipe else None
    if path is None or path.suffix != ".toml" or not path.is_file():
        return BASE_VALID_FRACTION
    try:
        return float((tomllib.loads(path.read_text(encoding="utf-8")).get("audio") or {}).get(
            "valid_fraction", BASE_VALID_FRACTION))
    except (tomllib.TOMLDecodeError, OSError, TypeError, ValueError):
        return BASE_VALID_FRACTION


def base_corpora(base: Path, base_name: str) -> tuple[list[str], float, str] | None:
    """The manifests ``base`` was trained on, its held-out share and where that is recorded: its foley.json
    (``extra.training_data``, ``extra.valid_fraction``), else the registry entry of the shipped model it is (by name
    or folder) or was fine-tuned from (``extra.finetuned_from``). None when nothing records them."""
    from ..generator import read_foley_json
    from ..paths import models_dir
    from ..shipped import SHIPPED

    try:
        extra = read_foley_json(base).get("extra") or {}
    except FoleyError:
        extra = {}
    data = extra.get("training_data")
    if data:
        return ([str(d) for d in ([data] if isinstance(data, str) else data)],
                float(extra.get("valid_fraction", BASE_VALID_FRACTION)), f"{Path(base) / 'foley.json'}")
    names = [base_name]
    parent = extra.get("finetuned_from")
    if isinstance(parent, dict) and parent.get("name"):
        names.append(str(parent["name"]))
    here = Path(base).resolve()
    names += [n for n, e in SHIPPED.items()
              if (models_dir() / Path(e["weights"]).relative_to("models")).resolve() == here]
    for n in names:
        entry = SHIPPED.get(n) or {}
        if entry.get("data"):
            return (list(entry["data"]), _recipe_valid_fraction(entry.get("recipe")),
                    f"the {n} model's card (trained on them by {entry.get('recipe')})")
    return None


def check_replay_target(target: str | None) -> str:
    """``--replay-target`` checked (one-line error); None: :data:`REPLAY_TARGET`."""
    if target is None:
        return REPLAY_TARGET
    if target not in REPLAY_TARGETS:
        raise FoleyError(f"--replay-target {target!r}: give one of {', '.join(REPLAY_TARGETS)} (data: learn the "
                         "replayed clips; base: learn the base model's own prediction for them)")
    return target


def resolve_replay(base: Path, base_name: str, fraction: float | None, data, say=print) -> Replay | None:
    """``--replay`` / ``--replay-data`` checked and completed (one-line errors, before anything is written): None
    when replay is off. Unset ``fraction``: :data:`REPLAY_SHARE` when the base's corpora are known and on disk (or
    given), else off with a note saying how to turn it on."""
    if fraction is not None:
        try:
            fraction = float(fraction)
        except (TypeError, ValueError):
            raise FoleyError(f"--replay {fraction!r}: give a number from 0 (off) to below 1, e.g. 0.25") from None
        if not 0.0 <= fraction < 1.0 or math.isnan(fraction):
            raise FoleyError(f"--replay {fraction:g}: the share of every batch replayed from the base's corpora must "
                             "be from 0 (off) to below 1, e.g. 0.25")
    given = [Path(d) for d in ([data] if isinstance(data, (str, Path)) else (data or []))]
    for d in given:
        if not d.is_file():
            raise FoleyError(f"--replay-data {d}: manifest not found; give the JSONL manifest(s) the base was "
                             "trained on")
    if fraction == 0.0:
        return None
    known = base_corpora(base, base_name)
    if given:
        vf = known[1] if known else BASE_VALID_FRACTION
        return Replay(fraction if fraction is not None else REPLAY_SHARE, given, "--replay-data", vf)
    turn_on = f"--replay {REPLAY_SHARE:g} --replay-data MANIFEST (the manifests {base_name} was trained on)"
    if known is None:
        if fraction is not None:
            raise FoleyError(f"--replay {fraction:g}: {base_name} does not record the corpora it was trained on; "
                             "pass their manifests with --replay-data MANIFEST (repeat it for several)")
        say(f"note: replay is off: {base_name} does not record its training corpora, so fine-tuning may forget "
            f"some of what it knows; to replay them, add {turn_on}")
        return None
    manifests, vf, origin = known
    present = [(m, _on_disk(m)) for m in manifests]
    missing = [m for m, p in present if p is None]
    found = [p for _, p in present if p is not None]
    if not found:
        if fraction is not None:
            raise FoleyError(f"--replay {fraction:g}: {base_name}'s training corpora are not on disk "
                             f"({', '.join(missing)}); build them (the starters: bash recipes/corpora.sh) or pass "
                             "--replay-data MANIFEST")
        say(f"note: replay is off: {base_name}'s training corpora are not on disk ({', '.join(missing)}); build them "
            f"(the starters: bash recipes/corpora.sh) or add {turn_on}")
        return None
    if missing:
        say(f"note: replay without {', '.join(missing)} (recorded for {base_name}, not on disk)")
    return Replay(fraction if fraction is not None else REPLAY_SHARE, found, origin, vf, missing)


def replay_pool(replay: Replay, run: Path, user_manifest: Path, seed: int = 0, what: str = "VAE",
                say=print) -> Path:
    """``<run>/replay/pool.jsonl``: up to ``replay.limit`` clips (a seeded sample) of the training split of the
    base's corpora (their held-out clips, at the base's own ``valid_fraction``, are left out, so a forgetting
    measurement on them stays fair) minus any of the user's clips, with absolute paths. A pool made from other
    sources is discarded with its encoded windows."""
    import random
    from collections import Counter

    from ..data.dataset import select_split
    from ..data.manifest import read_manifest, write_manifest

    folder = Path(run) / "replay"
    sources = {"manifests": [str(m.resolve()) for m in replay.manifests], "valid_fraction": replay.valid_fraction,
               "limit": int(replay.limit), "seed": int(seed)}
    if (folder / "sources.json").exists() and json.loads((folder / "sources.json").read_text()) != sources:
        shutil.rmtree(folder)
    mine = {str(c.resolved_path().resolve()) for c in read_manifest(user_manifest)}
    everything = [(m, c) for m in replay.manifests for c in read_manifest(m)]
    keep = {id(c) for c in select_split([c for _, c in everything], "train", replay.valid_fraction)}
    pool, absent = [], 0
    for m, c in everything:
        if id(c) not in keep:
            continue
        path = c.resolved_path().resolve()
        if str(path) in mine:
            continue
        if not path.is_file():
            absent += 1
            continue
        c = c.model_copy()
        c.path = str(path)
        pool.append((m, c))
    if not pool:
        raise FoleyError(f"replay: no usable clips in {', '.join(map(str, replay.manifests))} (audio files missing, "
                         "or every clip is held out or yours); pass other --replay-data or --replay 0")
    if len(pool) > replay.limit:
        pick = sorted(random.Random(seed).sample(range(len(pool)), int(replay.limit)))
        pool = [pool[i] for i in pick]
    replay.clips = len(pool)
    replay.per_source = dict(Counter(str(m) for m, _ in pool))
    if not (folder / "pool.jsonl").exists():
        write_manifest(folder / "pool.jsonl", [c for _, c in pool])
        write_json_atomic(folder / "sources.json", sources)
    say(f"replay: {replay.fraction:.0%} of every batch from {len(pool)} clips of the base's corpora ("
        + ", ".join(f"{Path(m).parent.name}/{Path(m).name} {n}" for m, n in replay.per_source.items())
        + f"; their held-out clips and yours left out{f', {absent} missing files skipped' if absent else ''}), "
        f"encoded once with the base {what}; never in your held-out split")
    return folder / "pool.jsonl"


class ReplaySampler:
    """Training batches of the user's items (indices ``0..n_user-1``) with a ``fraction`` of replayed items
    (``n_user..n_user+n_replay-1``): batch ``b`` holds ``floor((b+1) f B) - floor(b f B)`` of them, so the share is
    exact over the run (every batch when ``f B`` is whole). Each side is drawn by its own sampler (the solver's kind);
    counts of both are kept (and checkpointed) for the card."""

    def __init__(self, user, replay, n_user: int, n_replay: int, fraction: float):
        self.user, self.replay, self.n_user, self.n_replay = user, replay, int(n_user), int(n_replay)
        self.fraction = float(fraction)
        self.batches = self.user_drawn = self.replay_drawn = 0

    def take(self, k: int) -> list[int]:
        r = math.floor((self.batches + 1) * self.fraction * k + 1e-9) - math.floor(self.batches * self.fraction * k
                                                                                     + 1e-9)
        r = max(0, min(k, r))
        out = self.user.take(k - r) if k - r else []
        out += [self.n_user + i for i in (self.replay.take(r) if r else [])]
        self.batches, self.user_drawn, self.replay_drawn = self.batches + 1, self.user_drawn + k - r, \
            self.replay_drawn + r
        return out

    def state_dict(self) -> dict:
        return {"n": self.n_user + self.n_replay, "user": self.user.state_dict(), "replay": self.replay.state_dict(),
                "batches": self.batches, "user_drawn": self.user_drawn, "replay_drawn": self.replay_drawn}

    def load_state_dict(self, state: dict) -> None:
        if "replay" not in state:
            raise FoleyError("the checkpoint was trained without replay; delete the finetune stage's ckpt/ (or the "
                             "run folder) to start over with it, or run with --replay 0")
        if int(state["n"]) != self.n_user + self.n_replay:
            raise FoleyError(f"the checkpoint was trained on {state['n']} items, the data now holds "
                             f"{self.n_user + self.n_replay}; delete the stage's ckpt/ to start over")
        self.user.load_state_dict(state["user"])
        self.replay.load_state_dict(state["replay"])
        self.batches, self.user_drawn = int(state["batches"]), int(state["user_drawn"])
        self.replay_drawn = int(state["replay_drawn"])


def join_items(user: dict, extra: dict, what: Path) -> dict:
    """The user's encoded training items followed by the replayed ones (tensors concatenated, lists joined; other
    entries, such as the conditioning model's hash, must agree)."""
    out = {}
    for k, v in user.items():
        if k not in extra:
            raise FoleyError(f"{what}: lacks '{k}' (encoded with other settings); delete it and run again")
        w = extra[k]
        if isinstance(v, torch.Tensor):
            if tuple(v.shape[1:]) != tuple(w.shape[1:]):
                raise FoleyError(f"{what}: items of shape {tuple(w.shape[1:])}, the user's are {tuple(v.shape[1:])}; "
                                 "delete it and run again")
            out[k] = torch.cat([v, w.to(v.dtype)])
        elif isinstance(v, list):
            out[k] = list(v) + list(w)
        elif v != w:
            raise FoleyError(f"{what}: '{k}' differs from the user's items ({w!r} vs {v!r}); delete it and run again")
        else:
            out[k] = v
    return out


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
                 f"fine-tuning the generator alone cannot reach them fully (--vae on adds a decoder adapter, "
                 f"which only recovers what the {what}'s encoder keeps)")
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
    ``targets`` (peft target modules), ``patience`` (validations), ``replay`` (:meth:`Replay.record`, or None).
    The subclass's :meth:`build` calls :meth:`adapt` on the network it trains (after loading the base weights) and
    builds its optimiser over :meth:`trainable`; the best held-out weights are kept in ``best.pt`` and exported.
    With replay, the encoded replay items (``<out>/replay/all.pt``) are appended to the training items (the family's
    ``items_attr``) and :class:`ReplaySampler` draws the batches; the held-out items are the user's alone.
    """

    lora_targets: tuple[str, ...] = ()
    resume_after_budget = False  # --minutes is the user's limit: a finished fine-tune stays finished
    items_attr = ""   # the family's training items (a dict of tensors and caption lists) that replay extends

    @property
    def replay_share(self) -> float:
        return float((self.ft.get("replay") or {}).get("fraction") or 0.0)

    def taught(self, idx: torch.Tensor) -> torch.Tensor | None:
        """[B] bool: the batch's replayed items whose target is the base model's prediction (``replay_target =
        "base"``), or None when there are none (every item then learns its own clip)."""
        if not self.n_replay or (self.ft.get("replay") or {}).get("target", REPLAY_TARGET) != "base":
            return None
        mask = torch.as_tensor(idx).cpu() >= self.n_user
        return mask if bool(mask.any()) else None

    def build(self) -> None:
        super().build()
        self.n_user, self.n_replay = len(self.data), 0
        if self.replay_share:
            path = self.out / "replay" / "all.pt"
            extra = torch.load(path, weights_only=True)
            setattr(self, self.items_attr, join_items(getattr(self, self.items_attr), extra, path))
            self.n_replay = len(extra["captions"])
            self.data = range(self.n_user + self.n_replay)

    def _sampler(self):
        if not self.n_replay:
            return super()._sampler()
        world = self.accelerator.num_processes

        def one(n: int, offset: int):
            if self.sampling == "shuffle":
                return ResumableSampler(n, self.seed + offset, self.shuffle)
            gen = torch.Generator().manual_seed(self.seed + offset) if world > 1 else None
            return DrawSampler(n, self.sampling, min(self.batch_size, n), gen)

        return ReplaySampler(one(self.n_user, 0), one(self.n_replay, 1), self.n_user, self.n_replay,
                             self.replay_share)

    def replay_record(self) -> dict:
        """The card's ``replay``: share, sources and pool (``fraction`` 0 when off), and the items drawn."""
        rec = dict(self.ft.get("replay") or {"fraction": 0.0})
        if isinstance(getattr(self, "sampler", None), ReplaySampler):
            rec.update(items_drawn=self.sampler.replay_drawn, user_items_drawn=self.sampler.user_drawn)
        return rec

    def card(self, best: dict) -> dict:
        """The card written with the result: the recipe's, the training record and replay."""
        return {**self.recipe["card"], "training": {**self.training_record(), **best}, "replay": self.replay_record()}

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
    rp = card.get("replay") or {}
    if rp.get("fraction"):
        drawn = (f"; {rp['items_drawn']} of {rp['items_drawn'] + rp.get('user_items_drawn', 0)} training items "
                 "drawn" if rp.get("items_drawn") is not None else "")
        lines.append(f"- replay against forgetting: {rp['fraction']:.0%} of every batch from {rp.get('clips')} clips "
                     f"of the base's corpora ({', '.join(rp.get('sources', []))}; from {rp.get('origin')}; their "
                     f"held-out clips left out){drawn}")
    elif "replay" in card:
        lines.append("- replay of the base's corpora: off")
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

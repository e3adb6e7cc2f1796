"""`foley train finetune`: a shipped model (or a model folder) trained further on your own sounds, full or LoRA."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import with_threads
from .train import train_app


@train_app.command("finetune")
@with_threads
def finetune(
    base: str = typer.Option("starter", "--from", help="The model to start from: starter, starter-lm or a model "
                             "folder."),
    data: Path = typer.Option(..., "--data", help="Your sounds: a folder of audio (captions from sidecar .txt/.json, "
                              "a manifest in it, else the file and folder names) or a manifest (JSONL)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the adapter (--lora) or the model "
                                "folder, e.g. models/my-sounds."),
    lora: int = typer.Option(None, "--lora", min=1, max=256, help="Train a LoRA adapter of this rank (e.g. 8) "
                             "instead of all the weights."),
    minutes: float = typer.Option(None, "--minutes", min=0.1, help="Time budget in minutes (default 20); training "
                                  "stops earlier when the held-out loss stops improving."),
    steps: int = typer.Option(None, "--steps", min=1, help="Most steps (default: from the number of clips)."),
    lr: float = typer.Option(None, "--lr", min=0.0, help="Learning rate (default: LoRA 5e-4 / full 2e-5 for "
                             "latent diffusion; 1e-3 / 4e-5 for token LMs)."),
    patience: int = typer.Option(4, "--patience", min=0, help="Stop after this many validations without a held-out "
                                 "gain (0: never)."),
    licence: str = typer.Option(None, "--licence", help="Licence of your sounds, written into the card."),
    run: Path = typer.Option(None, "--run", help="Working folder (default runs/finetune-<output name>); a killed "
                             "run resumes from it."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split-independent random choices."),
    replay: float = typer.Option(None, "--replay", help="Share of every batch replayed from the base's own training "
                                 "corpora, against forgetting (0: off; default 0.5 when the base records its corpora "
                                 "and they are on disk, else off)."),
    replay_data: list[Path] = typer.Option(None, "--replay-data", help="A manifest of the base's training corpora to "
                                           "replay (repeat for several); needed when the base does not record "
                                           "them."),
    replay_target: str = typer.Option(None, "--replay-target", help="What a replayed item is learnt as: base (the "
                                      "base model's own prediction for it: self-distillation that keeps what it "
                                      "does outside your sounds; default) or data (the clip itself)."),
    vae: str = typer.Option("off", "--vae", help="off, on or auto: also train a LoRA on the VAE's decoder so it "
                            "reconstructs your sounds (latent diffusion; auto: when they reconstruct 3 dB or more "
                            "under the base's own corpus; kept only if held-out reconstruction gains 0.5 dB)."),
):
    """Fine-tune a model on your own sounds: reports how well the base reconstructs them, holds out 10 % (at least 3
    clips), replays a share of the base's own corpora in every batch (--replay), trains with progress, ETA, previews
    every 3 minutes and early stopping, and writes an adapter (--lora) or a complete model with its card. Use it:
    foley generate "..." -m starter --lora models/my-sounds."""
    from ..registry import family_of, resolve
    from ..train.finetune import finetune as _finetune

    folder, card = resolve(base)
    family = card.family if card is not None else family_of(folder)
    name = card.name if card is not None else str(folder)
    dest = _finetune(folder, name, family, data, output, run=run, force=force, say=typer.echo, lora=lora,
                     steps=steps, lr=lr, minutes=minutes, patience=patience, licence=licence, seed=seed,
                     threads=None, replay=replay, replay_data=replay_data or None, vae=vae,
                     replay_target=replay_target)
    kind = "adapter" if lora else "model"
    typer.echo(f"{kind} written to {dest}")
    if lora:
        typer.echo(f"use it: foley generate \"...\" -m {name} --lora {dest}")

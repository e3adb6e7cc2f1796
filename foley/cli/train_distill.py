"""`foley train distill`: a shipped model (or a model folder) distilled into a few-step sampler."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import with_threads
from .train import train_app


@train_app.command("distill")
@with_threads
def distill(
    base: str = typer.Option("starter", "--from", help="The teacher: starter or a latent-diffusion model folder."),
    data: list[Path] = typer.Option(..., "--data", help="Captioned manifest(s) (JSONL) whose captions prompt the "
                                    "teacher: its own training manifests; repeat for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the student model folder, e.g. "
                                "models/starter-fast."),
    recipe: Path = typer.Option(Path("recipes/starter-fast.toml"), "--recipe", help="Recipe (TOML): [teacher] "
                                "steps, guidance, number of trajectories; [distill] training settings."),
    run: Path = typer.Option(None, "--run", help="Working folder (default runs/distill-<output name>); a killed run "
                             "resumes from it."),
    minutes: float = typer.Option(None, "--minutes", min=0.1, help="Time budget of the training stage in minutes."),
    overrides: list[str] = typer.Option([], "--set", help="Override a recipe value: --set distill.steps=500 "
                                        "(repeat)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
):
    """Distil a diffusion model into a few-step sampler: the teacher samples from its own training captions (its
    solver, steps and guidance) and records its trajectories; the student learns to take each span in one
    unguided DDIM step. Writes a complete model folder with its card; generate with it as with the teacher."""
    from ..family import get
    from ..registry import family_of, resolve
    from ..train.loop import load_recipe

    folder, card = resolve(base)
    family = card.family if card is not None else family_of(folder)
    name = card.name if card is not None else str(folder)
    r = load_recipe(recipe, overrides)
    if minutes is not None:
        r.setdefault("train", {})["max_minutes"] = minutes
    run = run or Path("runs") / f"distill-{output.name}"
    dest = get(family).distill_function()(folder, name, list(data), r, run, output, force=force, say=typer.echo)
    typer.echo(f"model written to {dest}")
    typer.echo(f"use it: foley generate \"...\" -m {dest}")

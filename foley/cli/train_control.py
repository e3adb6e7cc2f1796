"""`foley train control`: a control adapter (ControlNet over the five control curves) for a shipped model."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import with_threads
from .train import train_app


@train_app.command("control")
@with_threads
def control(
    base: str = typer.Option("starter", "--from", help="The model to control: starter or a latent-diffusion model "
                             "folder."),
    data: list[Path] = typer.Option(..., "--data", help="Manifest(s) (JSONL) of sounds to learn the curves from: its "
                                    "own training manifests; repeat for several. No labels needed: the curves are "
                                    "measured from the audio."),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the adapter (default: the model "
                                "folder's control/, where its sampler finds it)."),
    recipe: Path = typer.Option(Path("recipes/starter-control.toml"), "--recipe", help="Recipe (TOML): [windows] "
                                "how many training windows; [control] training settings."),
    run: Path = typer.Option(None, "--run", help="Working folder (default runs/control-<model name>); a killed run "
                             "resumes from it."),
    minutes: float = typer.Option(None, "--minutes", min=0.1, help="Time budget of the training stage in minutes."),
    overrides: list[str] = typer.Option([], "--set", help="Override a recipe value: --set control.steps=500 "
                                        "(repeat)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing adapter."),
):
    """Train a control adapter: a ControlNet that reads loudness, brightness, pitch, density and pan curves. The
    curves are measured from the training sounds themselves; each is dropped at random so any subset works. Once in
    the model folder, every request with target curves (--control, --like, shape words of the prompt) uses it."""
    from ..family import get
    from ..registry import family_of, resolve
    from ..train.loop import load_recipe

    folder, card = resolve(base)
    family = card.family if card is not None else family_of(folder)
    name = card.name if card is not None else str(folder)
    train = get(family).control_function()
    r = load_recipe(recipe, overrides)
    if minutes is not None:
        r.setdefault("train", {})["max_minutes"] = minutes
    run = run or Path("runs") / f"control-{Path(folder).name}"
    dest = train(folder, name, list(data), r, run, output, force=force, say=typer.echo)
    typer.echo(f"control adapter written to {dest}")
    typer.echo(f"use it: foley generate \"a synth tone\" -m {base} --control \"pitch=rise 300Hz->1200Hz\"")
